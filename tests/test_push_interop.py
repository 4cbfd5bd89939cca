"""Interop: push to Debian's Distribution (docker-registry), pull back with skopeo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import require_tool
from layerlab.pusher import push
from layerlab.pusher.cache import DigestCache
from layerlab.sources import open_image

pytestmark = pytest.mark.interop

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())["images"]
FORMS = [(name, form) for name, image in EXPECTED.items() if "config_digest" in image
         for form in image["forms"]]


def _ref(form: str) -> str:
    transport, _, rest = form.partition(":")
    return f"{transport}:{SAMPLES / rest}"


def _skopeo_pull(host: str, repo: str, tag: str, layout: Path) -> None:
    skopeo = require_tool("skopeo")
    out = subprocess.run([skopeo, "copy", "--src-tls-verify=false", "--quiet", "--preserve-digests",
                          f"docker://{host}/{repo}:{tag}", f"oci:{layout}:{tag}"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("name,form", FORMS, ids=[f"{n}-{f.split(':')[0]}-{i}"
                                                    for i, (n, f) in enumerate(FORMS)])
def test_push_to_distribution_and_pull_back_with_skopeo(distribution, tmp_path, name, form):
    expected = EXPECTED[name]
    tag = f"f{FORMS.index((name, form))}"
    result = push(_ref(form), f"{distribution}/interop/{name}:{tag}", progress=False,
                  cache=DigestCache(tmp_path / "cache"))
    _skopeo_pull(distribution, f"interop/{name}", tag, tmp_path / "layout")
    pulled = open_image(f"oci:{tmp_path / 'layout'}:{tag}")
    assert str(pulled.digest) == result.manifest_digest
    assert str(pulled.config.digest) == expected["config_digest"]
    assert [str(d) for d in pulled.config.diff_ids] == expected["diff_ids"]
    assert [str(layer.digest) for layer in pulled.layers] == [o.digest for o in result.layers]
    assert [layer.size for layer in pulled.layers] == [o.size for o in result.layers]
    pulled.verify()  # each blob hashes to its digest and decompresses to its diff_id


def test_repush_to_distribution_moves_nothing(distribution, tmp_path):
    src = _ref("docker-archive:docker-archive/app14.tar")
    dest = f"{distribution}/interop/repush:1"
    cache = DigestCache(tmp_path)
    first = push(src, dest, progress=False, cache=cache)
    assert first.totals["layers_pushed"] == EXPECTED["app14"]["layer_count"]
    for use_cache in (cache, False):
        again = push(src, dest, progress=False, cache=use_cache)
        assert again.manifest_digest == first.manifest_digest
        assert again.manifest_outcome == "exists"
        assert {o.outcome for o in again.layers} == {"exists"}
        assert not again.phases("compress") and not again.phases("upload")
        assert again.totals["bytes_uploaded"] == 0


def test_mount_and_historical_profiles_on_distribution(distribution, tmp_path):
    src = _ref("docker-archive:docker-archive/app-v2.tar")
    cache = DigestCache(tmp_path / "cache")
    fast = push(src, f"{distribution}/interop/mount-a:1", progress=False, cache=cache)
    mounted = push(src, f"{distribution}/interop/mount-b:1", progress=False, cache=cache)
    assert {o.summary for o in mounted.layers} == {"mounted from interop/mount-a"}
    for profile in ("docker-1.7", "docker", "serial"):
        repo = f"interop/{profile.replace('.', '')}"
        result = push(src, f"{distribution}/{repo}:1", profile=profile, progress=False, cache=False)
        assert result.totals["layers_pushed"] == EXPECTED["app-v2"]["layer_count"]
        _skopeo_pull(distribution, repo, "1", tmp_path / profile)
        pulled = open_image(f"oci:{tmp_path / profile}:1")
        assert [str(d) for d in pulled.config.diff_ids] == EXPECTED["app-v2"]["diff_ids"]
        pulled.verify()
    assert fast.manifest_digest == mounted.manifest_digest


def test_broken_upload_on_distribution(distribution, tmp_path):
    """Distribution refuses an upload URL whose state no longer matches what it holds,
    so after a cut mid-stream the pusher starts that blob again: the push still succeeds."""
    from test_push_faults import FaultProxy  # the same fault-injecting proxy

    proxy = FaultProxy(distribution)
    try:
        proxy.cut = (lambda m, p, n: m == "PATCH" and n == 1, 20_000)
        result = push(_ref("docker-archive:docker-archive/app14.tar"),
                      f"{proxy.host}/interop/broken:1", progress=False, cache=False,
                      small_blob_limit=0, retry_backoff=0, concurrency=1)
    finally:
        proxy.close()
    assert proxy.cuts == 1
    retry = next(e for e in result.events if e.outcome == "retry")
    assert "resuming at byte" in retry.detail or "restarting" in retry.detail
    _skopeo_pull(distribution, "interop/broken", "1", tmp_path / "layout")
    open_image(f"oci:{tmp_path / 'layout'}:1").verify()
