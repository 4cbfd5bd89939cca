"""Each push profile produces the request pattern it claims (read from the registry's log)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from layerlab.pusher import PROFILES, PushProfile, push
from layerlab.pusher.cache import DigestCache
from layerlab.registry import LocalRegistry

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())["images"]
APP24 = f"docker-archive:{SAMPLES / 'docker-archive' / 'app24.tar'}"
APP_V2 = f"docker-archive:{SAMPLES / 'docker-archive' / 'app-v2.tar'}"


@pytest.fixture()
def reg():
    with LocalRegistry(latency="10ms") as registry:
        yield registry


def _entries(reg, expected: int):
    deadline = time.monotonic() + 5
    while len(reg.log) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return reg.log.entries


def _max_overlap(entries, kinds: set[str]) -> int:
    """The most requests of these kinds the registry was serving at the same moment."""
    points = []
    for e in entries:
        if e.kind in kinds:
            points += [(e.start, 1), (e.start + e.duration, -1)]
    best = current = 0
    for _, step in sorted(points, key=lambda p: (p[0], p[1])):
        current += step
        best = max(best, current)
    return best


def _push(reg, profile: str, source: str, repo: str, cache) -> tuple:
    reg.log.clear()
    result = push(source, f"{reg.host}/{repo}:1", profile=profile, progress=False, cache=cache,
                  retry_backoff=0)
    entries = _entries(reg, result.requests)
    return result, entries, Counter(e.kind for e in entries)


def test_profiles_are_data():
    assert set(PROFILES) == {"serial", "docker-1.7", "docker", "fast"}
    assert all(isinstance(p, PushProfile) for p in PROFILES.values())
    assert PROFILES["docker"].workers == 5 and PROFILES["serial"].workers == 1
    assert PROFILES["docker-1.7"].to_json()["upload"] == "monolithic"


def test_docker_17_buffers_to_disk_and_puts_monolithically(reg, tmp_path):
    cache = DigestCache(tmp_path)
    layers = EXPECTED["app-v2"]["layer_count"]
    result, entries, kinds = _push(reg, "docker-1.7", APP_V2, "d17/app", cache)
    assert kinds == Counter({"upload_start": layers + 1, "upload_put": layers + 1,
                             "manifest_put": 1})  # no HEAD without a cached digest, no PATCH
    assert all(e.bytes_in > 0 for e in entries if e.kind == "upload_put")
    assert _max_overlap(entries, {"upload_start", "upload_put"}) == 1
    compress = result.phases("compress")
    assert len(compress) == layers and all(e.detail == "to a temporary file" for e in compress)
    for event in compress:  # each layer is compressed completely before its upload starts
        upload = next(u for u in result.phases("upload") if u.layer == event.layer)
        assert upload.start >= event.end
    # with a cached digest: HEAD, scoped to the target repository, and nothing else per layer
    again, entries, kinds = _push(reg, "docker-1.7", APP_V2, "d17/app", cache)
    assert kinds["blob_head"] == layers
    assert {e.repository for e in entries if e.kind == "blob_head"} == {"d17/app"}
    assert [o.outcome for o in again.layers] == ["exists"] * layers
    assert "upload_mount" not in kinds


def test_docker_streams_with_five_uploads_at_most(reg, tmp_path):
    cache = DigestCache(tmp_path)
    layers = EXPECTED["app24"]["layer_count"]
    result, entries, kinds = _push(reg, "docker", APP24, "dk/app", cache)
    # as dockerd 20.10 does (tests/test_docker_interop.py): the config HEADed first (its
    # digest is known), every blob HEADed again once committed
    assert kinds == Counter({"upload_start": layers + 1, "upload_patch": layers + 1,
                             "upload_put": layers + 1, "blob_head": 1 + layers + 1,
                             "manifest_put": 1})
    assert Counter(e.status for e in entries if e.kind == "blob_head") == {
        404: 1, 200: layers + 1}
    assert all(e.bytes_in == 0 for e in entries if e.kind == "upload_put")
    overlap = _max_overlap(entries, {"upload_start", "upload_patch", "upload_put"})
    assert 1 < overlap <= 5
    # existence checks come from its metadata cache only, then mounts to other repositories
    again, entries, kinds = _push(reg, "docker", APP24, "dk/other", cache)
    assert kinds["upload_mount"] == layers
    assert {o.summary for o in again.layers} == {"mounted from dk/app"}
    assert "tags_list" not in kinds and "manifest_get" not in kinds


def test_serial_is_one_at_a_time(reg):
    result, entries, kinds = _push(reg, "serial", APP24, "serial/app", False)
    layers = EXPECTED["app24"]["layer_count"]
    assert kinds["upload_patch"] == layers + 1
    assert _max_overlap(entries, {"upload_start", "upload_patch", "upload_put"}) == 1
    uploads = sorted(result.phases("upload"), key=lambda e: e.start)
    assert all(a.end <= b.start for a, b in zip(uploads, uploads[1:]))


def test_fast_looks_then_skips_mounts_or_uploads(reg, tmp_path):
    cache = DigestCache(tmp_path)
    layers = EXPECTED["app-v2"]["layer_count"]
    result, entries, kinds = _push(reg, "fast", APP_V2, "fast/app", cache)
    assert [e.kind for e in entries[:2]] == ["manifest_get", "tags_list"]
    assert kinds["upload_monolithic"] == layers + 1  # small blobs: one request each
    again, entries, kinds = _push(reg, "fast", APP_V2, "fast/app", cache)
    assert kinds == Counter({"blob_head": layers + 1, "manifest_head": 1})
    other, entries, kinds = _push(reg, "fast", APP_V2, "fast/other", cache)
    assert kinds["upload_mount"] == layers and kinds["blob_head"] == layers + 1
    # blobs that are not small: POST, one streamed PATCH, PUT
    stream, entries, kinds = _push(reg, PROFILES["fast"].with_options(small_blob_limit=0),
                                   APP_V2, "fast/stream", False)
    assert kinds["upload_patch"] == kinds["upload_start"] == kinds["upload_put"] == layers + 1
    assert kinds["upload_monolithic"] == 0


def test_layers_start_largest_first_or_top_first_as_the_profile_orders(reg):
    from layerlab import open_image

    image = open_image(APP24)
    diff_ids = [str(layer.diff_id) for layer in image.layers]
    sizes = {str(layer.diff_id): layer.uncompressed_size for layer in image.layers}
    for order, repo in (("largest", "order/largest"), ("top", "order/top")):
        profile = PROFILES["serial"].with_options(order=order)
        result = push(APP24, f"{reg.host}/{repo}:1", profile=profile, progress=False,
                      cache=False, retry_backoff=0)
        uploads = sorted((e for e in result.phases("upload") if e.diff_id in sizes),
                         key=lambda e: e.start)
        started = list(dict.fromkeys(e.diff_id for e in uploads))
        if order == "top":
            assert started == list(reversed(diff_ids))
        else:
            assert started == sorted(diff_ids, key=lambda d: (-sizes[d], diff_ids.index(d)))
            assert started != list(reversed(diff_ids))
