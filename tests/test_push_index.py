"""Multi-platform pushes (``--all``) and pulls that feed the digest cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool
from layerlab import mediatypes as mt
from layerlab.digest import digest_bytes
from layerlab.errors import PushError
from layerlab.manifest import Descriptor, ManifestIndex, index_with_children, parse_manifest
from layerlab.model import ImageIndex
from layerlab.pusher import copy, push
from layerlab.pusher.cache import DigestCache
from layerlab.registry import LocalRegistry
from layerlab.sources import open_all_platforms, open_image
from layerlab.sources.remote import RegistryClient

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
MULTI = f"oci:{SAMPLES / 'oci' / 'multi'}:latest"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())["images"]["multi"]["forms"][
    "oci:oci/multi:latest"]
CHILDREN = [m["manifest_digest"] for m in EXPECTED["manifests"]]
SHARED = "sha256:8a0d07ce18415a6486038afcb61bff3544a6e91733e3694df0b56fbf3782de87"


@pytest.fixture()
def reg():
    with LocalRegistry() as registry:
        yield registry


def _settled_kinds(reg, repository: str) -> list[str]:
    import time

    deadline, previous = time.monotonic() + 5, -1
    while time.monotonic() < deadline and len(reg.log) != previous:
        previous = len(reg.log)
        time.sleep(0.02)
    return [e.kind for e in reg.log.entries if e.repository == repository]


def test_open_all_platforms_gives_every_image_of_the_index():
    index = open_all_platforms(MULTI)
    assert isinstance(index, ImageIndex)
    assert str(index.digest) == EXPECTED["manifest_digest"]
    assert [str(image.digest) for image in index.images] == CHILDREN
    assert [str(image.platform) for image in index.images] == [
        "linux/amd64", "linux/arm64/v8", str(index.images[2].platform)]
    single = open_all_platforms(f"docker-archive:{SAMPLES / 'docker-archive' / 'app14.tar'}")
    assert not isinstance(single, ImageIndex)


def test_push_all_platforms_keeps_the_index_and_every_digest(reg, tmp_path):
    result = push(MULTI, f"{reg.host}/multi/app:v1", all_platforms=True, progress=False,
                  cache=DigestCache(tmp_path))
    assert result.manifest_digest == EXPECTED["manifest_digest"]
    assert result.media_type == mt.OCI_INDEX
    assert result.manifest_outcome == "pushed"
    assert [p.manifest_digest for p in result.platforms] == CHILDREN
    assert [p.manifest_outcome for p in result.platforms] == ["pushed"] * 3
    # the layer every platform shares is uploaded once (by whichever image got to it
    # first: they push at once), then found
    shared = [layer.outcome for layer in result.layers if layer.digest == SHARED]
    assert sorted(shared) == ["exists", "exists", "pushed"]
    with RegistryClient(reg.host) as client:
        raw = client.get_manifest("multi/app", "v1")
        assert isinstance(raw, ManifestIndex)
        assert str(raw.digest) == EXPECTED["manifest_digest"]
        for digest in CHILDREN:
            assert str(client.get_manifest("multi/app", digest).digest) == digest
    kinds = _settled_kinds(reg, "multi/app")
    assert kinds.count("manifest_put") == 4  # three images by digest, then the index
    as_json = result.to_json()
    assert [p["platform"] for p in as_json["platforms"]][:2] == ["linux/amd64", "linux/arm64/v8"]
    assert as_json["manifest_digest"] == EXPECTED["manifest_digest"]

    again = push(MULTI, f"{reg.host}/multi/app:v1", all_platforms=True, progress=False,
                 cache=DigestCache(tmp_path))
    assert again.manifest_outcome == "exists"
    assert again.totals["layers_pushed"] == 0
    assert again.bytes_uploaded == 0


def test_platforms_push_at_once_and_a_shared_blob_is_sent_once(reg):
    reg.latency = "40 ms"  # every request waits, so the images' pushes overlap for sure
    result = push(MULTI, f"{reg.host}/multi/par:v1", all_platforms=True, progress=False,
                  cache=False)
    reg.latency = None
    assert result.manifest_digest == EXPECTED["manifest_digest"]
    spans = [(p.started_at, p.started_at + p.wall_seconds) for p in result.platforms]
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    records = [r for r in reg.log.entries if r.repository == "multi/par"]
    patched = [r for r in records if r.kind == "upload_patch"]
    shared_size = next(layer.size for layer in result.layers if layer.digest == SHARED)
    layers = {layer.digest: layer.size for layer in result.layers}
    # every distinct layer's bytes arrive once: the shared one is not sent three times
    assert sum(r.bytes_in for r in patched) <= sum(layers.values())
    assert sorted(layer.outcome for layer in result.layers if layer.digest == SHARED) == [
        "exists", "exists", "pushed"]
    assert shared_size == 181
    # each image counts the requests of its own connections: they add up to the registry's
    assert result.requests == len(records)
    # the timeline keeps each image's events at their time within the whole push
    first = min(e.start for e in result.events)
    assert 0 <= first < 0.2 and max(e.end for e in result.events) <= result.wall_seconds + 1e-3


def test_copy_all_between_repositories_mounts_and_keeps_the_digest(reg, tmp_path):
    push(MULTI, f"{reg.host}/multi/src:v1", all_platforms=True, progress=False,
         cache=DigestCache(tmp_path / "a"))
    reg.log.clear()
    result = copy(f"docker://{reg.host}/multi/src:v1", f"docker://{reg.host}/multi/dst:v1",
                  all_platforms=True, progress=False, cache=DigestCache(tmp_path / "b"))
    assert result.manifest_digest == EXPECTED["manifest_digest"]
    kinds = _settled_kinds(reg, "multi/dst")
    assert "upload_patch" not in kinds and "upload_monolithic" not in kinds
    assert kinds.count("upload_mount") >= 4  # the distinct layers, mounted from multi/src


def test_index_is_rewritten_when_an_image_changes_digest():
    index = open_all_platforms(MULTI)
    assert isinstance(index, ImageIndex)
    same = index_with_children(index.manifest, list(index.manifest.manifests))
    assert same == index.manifest.raw
    first = index.manifest.manifests[0]
    moved = Descriptor(mt.DOCKER_MANIFEST_V2, digest_bytes(b"{}"), 2)
    raw = index_with_children(index.manifest, [moved, *index.manifest.manifests[1:]])
    parsed = parse_manifest(raw, mt.OCI_INDEX)
    assert isinstance(parsed, ManifestIndex)
    assert parsed.manifests[0].digest == moved.digest
    assert parsed.manifests[0].size == 2
    assert parsed.manifests[0].media_type == mt.DOCKER_MANIFEST_V2
    assert parsed.manifests[0].platform == first.platform
    assert parsed.manifests[1:] == index.manifest.manifests[1:]


def test_cli_push_all_json_and_text(reg, tmp_path):
    base = [sys.executable, "-m", "layerlab", "push", "--all", "--quiet", "--cache-dir",
            str(tmp_path)]
    out = subprocess.run([*base, "--json", MULTI, f"{reg.host}/multi/cli:v1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["manifest_digest"] == EXPECTED["manifest_digest"]
    assert [p["manifest_digest"] for p in doc["platforms"]] == CHILDREN
    text = subprocess.run([*base, MULTI, f"{reg.host}/multi/cli:v1"],
                          capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    assert f"index {EXPECTED['manifest_digest']} (exists)" in text.stdout
    assert f"linux/amd64: manifest {CHILDREN[0]} (exists)" in text.stdout
    both = subprocess.run([*base, "--platform", "linux/amd64", MULTI, f"{reg.host}/m/x:1"],
                          capture_output=True, text=True, timeout=120)
    assert both.returncode == 2
    assert both.stderr.strip() == "layerlab: error: --all and --platform exclude each other"


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_copy_all_to_a_local_layout_keeps_the_index(reg, tmp_path, transport):
    push(MULTI, f"{reg.host}/multi/pull:v1", all_platforms=True, progress=False, cache=False)
    target = f"{transport}:{tmp_path / 'out'}:v1"
    result = copy(f"docker://{reg.host}/multi/pull:v1", target, all_platforms=True,
                  progress=False, cache=DigestCache(tmp_path / "cache"))
    assert result.manifest_digest == EXPECTED["manifest_digest"]
    assert result.media_type == mt.OCI_INDEX
    assert [p.manifest_digest for p in result.platforms] == CHILDREN
    assert [p.manifest_outcome for p in result.platforms] == ["written"] * 3
    back = open_all_platforms(target)
    assert isinstance(back, ImageIndex)
    assert back.manifest.raw == open_all_platforms(MULTI).manifest.raw
    for image in back.images:
        image.verify()


def test_an_index_is_refused_for_a_docker_archive(tmp_path):
    with pytest.raises(PushError, match="a docker-archive holds single images"):
        copy(MULTI, f"docker-archive:{tmp_path / 'out.tar'}", all_platforms=True,
             progress=False)
    assert not (tmp_path / "out.tar").exists()


def test_single_image_with_all_platforms_is_a_plain_push(reg, tmp_path):
    src = f"docker-archive:{SAMPLES / 'docker-archive' / 'app14.tar'}"
    result = push(src, f"{reg.host}/single/app:v1", all_platforms=True, progress=False,
                  cache=DigestCache(tmp_path))
    assert result.platforms == ()
    assert result.media_type == mt.DOCKER_MANIFEST_V2
    assert result.to_json()["platforms"] == []


def test_a_pull_feeds_the_digest_cache(reg, tmp_path):
    """After pulling an image, pushing its uncompressed docker-archive to another repository
    of that registry compresses nothing: every layer is mounted from where it was pulled."""
    src = f"docker-archive:{SAMPLES / 'docker-archive' / 'app14.tar'}"
    first = push(src, f"{reg.host}/pulled/a:v1", progress=False, cache=False)
    pull_cache = DigestCache(tmp_path / "cache")
    copy(f"docker://{reg.host}/pulled/a:v1", f"oci:{tmp_path / 'layout'}:v1", progress=False,
         cache=pull_cache)
    known = pull_cache.lookup([o.diff_id for o in first.layers])
    assert {d: [b.digest for b in blobs] for d, blobs in known.items()} == {
        o.diff_id: [o.digest] for o in first.layers}
    again = push(src, f"{reg.host}/pulled/b:v1", progress=False, cache=pull_cache,
                 registry_lookup=False)
    assert [o.outcome for o in again.layers] == ["mounted"] * len(first.layers)
    assert {o.mounted_from for o in again.layers} == {"pulled/a"}
    assert again.bytes_compressed == 0
    assert again.manifest_digest == first.manifest_digest


def test_push_all_to_distribution_pulls_back_whole_with_skopeo(distribution, tmp_path):
    skopeo = require_tool("skopeo")
    result = push(MULTI, f"{distribution}/interop/multi:v1", all_platforms=True,
                  progress=False, cache=DigestCache(tmp_path / "cache"))
    assert result.manifest_digest == EXPECTED["manifest_digest"]
    out = subprocess.run([skopeo, "copy", "--all", "--preserve-digests", "--quiet",
                          "--src-tls-verify=false", f"docker://{distribution}/interop/multi:v1",
                          f"oci:{tmp_path / 'back'}:v1"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    back = open_all_platforms(f"oci:{tmp_path / 'back'}:v1")
    assert isinstance(back, ImageIndex)
    assert str(back.digest) == EXPECTED["manifest_digest"]
    assert [str(image.digest) for image in back.images] == CHILDREN
    for image in back.images:
        image.verify()
    single = open_image(f"oci:{tmp_path / 'back'}:v1", platform="linux/arm64/v8")
    assert str(single.digest) == CHILDREN[1]


def test_push_options_are_refused_for_a_local_copy(tmp_path):
    with pytest.raises(PushError, match=r"compression, level: not supported when copying to"):
        copy(MULTI, f"oci:{tmp_path / 'out'}", progress=False, compression="zstd", level=3)
    assert not (tmp_path / "out").exists()


def test_index_media_type_can_be_changed_with_the_children_kept():
    index = open_all_platforms(MULTI)
    assert isinstance(index, ImageIndex)
    raw = index_with_children(index.manifest, list(index.manifest.manifests),
                              mt.DOCKER_MANIFEST_LIST)
    parsed = parse_manifest(raw, mt.DOCKER_MANIFEST_LIST)
    assert isinstance(parsed, ManifestIndex)
    assert parsed.media_type == mt.DOCKER_MANIFEST_LIST
    assert parsed.manifests == index.manifest.manifests
    with pytest.raises(ValueError, match="one descriptor per index entry"):
        index_with_children(index.manifest, [])
