"""The pusher against layerlab's own registry: every sample image, re-pushes, mounts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import layerlab
from layerlab import mediatypes as mt
from layerlab.errors import PushError
from layerlab.pusher import EVENT_COLUMNS, PushResult, push
from layerlab.pusher.cache import DigestCache
from layerlab.registry import LocalRegistry
from layerlab.sources import open_image
from layerlab.sources.remote import RegistryClient

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())["images"]
FORMS = [(name, form) for name, image in EXPECTED.items() if "config_digest" in image
         for form in image["forms"]]
UPLOADS = {"upload_start", "upload_patch", "upload_put", "upload_monolithic", "upload_status"}


def _ref(form: str) -> str:
    transport, _, rest = form.partition(":")
    return f"{transport}:{SAMPLES / rest}"


@pytest.fixture(scope="module")
def reg():
    with LocalRegistry() as registry:
        yield registry


@pytest.fixture()
def cache(tmp_path) -> DigestCache:
    return DigestCache(tmp_path / "cache")


def _settle(reg, expected: int | None = None) -> None:
    """The registry logs a request just after answering it: wait for the stragglers."""
    import time

    deadline = time.monotonic() + 5
    previous = -1
    while time.monotonic() < deadline:
        n = len(reg.log)
        if (expected is not None and n >= expected) or (expected is None and n == previous):
            return
        previous = n
        time.sleep(0.02)


def _kinds(reg, repository: str | None = None, expected: int | None = None) -> list[str]:
    _settle(reg, expected)
    return [e.kind for e in reg.log.entries if repository is None or e.repository == repository]


def _read_back(host: str, repository: str, tag: str):
    return open_image(f"docker://{host}/{repository}:{tag}")


@pytest.mark.parametrize("name,form", FORMS, ids=[f"{n}-{f.split(':')[0]}-{i}"
                                                    for i, (n, f) in enumerate(FORMS)])
def test_push_every_sample_form(reg, cache, name, form):
    expected = EXPECTED[name]
    source = open_image(_ref(form))
    repository = f"samples/{name}"
    tag = f"f{FORMS.index((name, form))}"
    result = push(source, f"{reg.host}/{repository}:{tag}", progress=False, cache=cache)
    back = _read_back(reg.host, repository, tag)
    assert str(back.digest) == result.manifest_digest
    assert str(back.config.digest) == expected["config_digest"]
    assert [str(d) for d in back.config.diff_ids] == expected["diff_ids"]
    assert [layer.digest for layer in back.layers] == [o.digest for o in result.layers]
    assert [layer.size for layer in back.layers] == [o.size for o in result.layers]
    assert result.config is not None and result.config.digest == expected["config_digest"]
    back.verify()  # every pushed blob matches its digest, and decompresses to its diff_id
    for layer, pushed, read in zip(source.layers, result.layers, back.layers):
        if layer.compression != "none":  # compressed blobs go as they are stored
            assert pushed.digest == layer.digest and pushed.source in ("source", "cache")
            assert read.compression == layer.compression
        else:  # uncompressed layers are compressed on the way
            assert read.compression == "gzip" and pushed.digest != layer.digest
    if all(layer.compression != "none" for layer in source.layers) and \
            not form.startswith("docker-archive:"):
        assert result.manifest_digest == expected["forms"][form]["manifest_digest"]
        assert result.totals["bytes_compressed"] == 0


def test_repush_with_and_without_cache_moves_nothing(reg, cache):
    src = _ref("docker-archive:docker-archive/app-v2.tar")
    first = push(src, f"{reg.host}/repush/app:v2", progress=False, cache=cache)
    assert first.totals["layers_pushed"] == 5 and first.manifest_outcome == "pushed"
    assert first.totals["bytes_compressed"] == sum(layer["size"] for layer in EXPECTED["app-v2"][
        "forms"]["docker-archive:docker-archive/app-v2.tar"]["layers"])
    for use_cache in (cache, False):
        reg.log.clear()
        again = push(src, f"{reg.host}/repush/app:v2", progress=False, cache=use_cache)
        assert again.manifest_digest == first.manifest_digest
        assert again.manifest_outcome == "exists"
        assert [o.outcome for o in again.layers] == ["exists"] * 5
        assert [o.digest for o in again.layers] == [o.digest for o in first.layers]
        assert not again.phases("compress") and not again.phases("upload")
        assert again.totals["bytes_uploaded"] == 0 and again.totals["bytes_compressed"] == 0
        kinds = _kinds(reg, expected=again.requests)
        assert not UPLOADS & set(kinds)
        assert "manifest_put" not in kinds
        assert kinds.count("blob_head") == 6  # 5 layers and the config
        if use_cache is False:  # learned from the registry: the tag's manifest and config
            assert kinds.count("manifest_get") == 1 and kinds.count("blob_get") == 1
            assert {o.source for o in again.layers} == {"registry"}
        else:
            assert {o.source for o in again.layers} == {"cache"}
        assert again.requests == len(kinds)


def test_other_tags_of_the_repository_are_read(reg):
    push(_ref("docker-archive:docker-archive/app-v1.tar"), f"{reg.host}/tags/app:v1",
         progress=False, cache=False)
    reg.log.clear()
    result = push(_ref("docker-archive:docker-archive/app-v2.tar"), f"{reg.host}/tags/app:v2",
                  progress=False, cache=False)
    assert [o.outcome for o in result.layers] == ["exists"] * 3 + ["pushed"] * 2
    kinds = _kinds(reg)
    assert kinds[:2] == ["manifest_get", "tags_list"]
    assert kinds.count("upload_patch") + kinds.count("upload_monolithic") == 3  # 2 layers, config


def test_cross_repository_mount_from_the_cache(reg, cache):
    src = _ref("docker-archive:docker-archive/app-v1.tar")
    first = push(src, f"{reg.host}/mount/a:1", progress=False, cache=cache)
    reg.log.clear()
    second = push(src, f"{reg.host}/mount/b:1", progress=False, cache=cache)
    assert [o.summary for o in second.layers] == ["mounted from mount/a"] * 4
    assert [o.digest for o in second.layers] == [o.digest for o in first.layers]
    assert second.manifest_digest == first.manifest_digest
    mounts = [e for e in reg.log.entries if e.kind == "upload_mount"]
    assert [e.status for e in mounts] == [201] * 4
    assert all(e.repository == "mount/b" for e in mounts)
    assert "upload_patch" not in _kinds(reg)


def test_mount_through_lookup_without_cache(reg):
    src = _ref("docker-archive:docker-archive/base.tar")
    push(src, f"{reg.host}/lookup/one:1", progress=False, cache=False)
    reg.log.clear()
    result = push(src, f"{reg.host}/lookup/two:1", progress=False, cache=False,
                  lookup=["lookup/one:1"])
    assert {o.outcome for o in result.layers} == {"mounted"}
    assert {o.mounted_from for o in result.layers} == {"lookup/one"}
    assert not {"upload_patch", "upload_put"} & set(_kinds(reg))


def test_manifest_bytes_are_deterministic(reg, tmp_path):
    src = _ref("docker-archive:docker-archive/app14.tar")
    a = push(src, f"{reg.host}/det/a:1", progress=False, cache=False)
    with LocalRegistry() as other:
        b = push(src, f"{other.host}/det/b:1", progress=False, cache=DigestCache(tmp_path))
    assert a.manifest_digest == b.manifest_digest
    assert [o.digest for o in a.layers] == [o.digest for o in b.layers]


def test_zstd_and_forced_formats(reg):
    src = _ref("docker-archive:docker-archive/base.tar")
    zstd = push(src, f"{reg.host}/fmt/zstd:1", progress=False, cache=False,
                compression="zstd", level=3)
    assert zstd.media_type == mt.OCI_MANIFEST
    assert {o.media_type for o in zstd.layers} == {mt.OCI_LAYER_ZSTD}
    _read_back(reg.host, "fmt/zstd", "1").verify()
    # a zstd layout forced into schema2: zstd layers are recompressed with gzip
    v2 = push(_ref("oci:oci/zstd:app-v1"), f"{reg.host}/fmt/v2:1", progress=False, cache=False,
              manifest_format="v2s2")
    back = _read_back(reg.host, "fmt/v2", "1")
    assert back.media_type == mt.DOCKER_MANIFEST_V2
    assert {layer.media_type for layer in back.layers} == {mt.DOCKER_LAYER_GZIP}
    assert v2.config is not None and v2.config.media_type == mt.DOCKER_CONFIG
    back.verify()


def test_chunked_upload(reg):
    with LocalRegistry(chunk_min_length=1024) as small:
        result = push(_ref("docker-archive:docker-archive/app-v1.tar"), f"{small.host}/ch/app:1",
                      progress=False, cache=False, upload="chunked", chunk_size=16384,
                      small_blob_limit=0)
        _settle(small, result.requests)
        patches = [e for e in small.log.entries if e.kind == "upload_patch"]
        expected = sum(-(-o.size // 16384) for o in result.layers) + 1  # and the config
        assert len(patches) == expected
        assert all(e.bytes_in <= 16384 for e in patches)
        _read_back(small.host, "ch/app", "1").verify()


def test_result_views(reg):
    result = push(_ref("oci:oci/family:app-v1"), f"{reg.host}/views/app:1", progress=False,
                  cache=False)
    frame = result.to_frame()
    assert list(frame.columns) == list(EVENT_COLUMNS)
    assert set(frame["phase"]) <= {"lookup", "check", "mount", "compress", "upload", "commit",
                                   "manifest"}
    assert (frame["end"] >= frame["start"]).all()
    figure = result.plot()
    assert {trace.name for trace in figure.data} >= {"upload", "manifest"}
    data = result.to_json()
    assert set(data) == {"source", "destination", "manifest_digest", "media_type", "manifest",
                         "profile", "layers", "config", "totals", "warnings", "settings", "events",
                         "platforms"}
    assert data["platforms"] == []
    assert set(data["totals"]) == {"wall_seconds", "bytes_uploaded", "bytes_compressed", "layers",
                                   "layers_existing", "layers_mounted", "layers_pushed", "requests"}
    assert data["layers"][0]["outcome"] == "pushed"
    assert "pushed" in repr(result) and "<table>" in result._repr_html_()
    assert isinstance(result, PushResult)
    again = layerlab.push(_ref("oci:oci/family:app-v1"), f"{reg.host}/views/app:1",
                          progress=False, cache=False)  # the flat API function
    assert again.manifest_digest == result.manifest_digest and again.manifest_outcome == "exists"


def test_lying_source_is_refused_and_nothing_recorded(reg, tmp_path, cache):
    import hashlib
    import io
    import tarfile

    def tar_of(content: bytes) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            info = tarfile.TarInfo("data.txt")
            info.size, info.mtime = len(content), 1704067200
            tar.addfile(info, io.BytesIO(content))
        return buf.getvalue()

    layer = tar_of(b"hello world\n" * 5000)
    claimed = "sha256:" + hashlib.sha256(tar_of(b"something else")).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [claimed]}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    archive = tmp_path / "liar.tar"
    with tarfile.open(archive, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, body in [(f"{config_hex}.json", config), ("l1/layer.tar", layer),
                           ("manifest.json", json.dumps([{"Config": f"{config_hex}.json",
                                                           "RepoTags": ["liar:1"],
                                                           "Layers": ["l1/layer.tar"]}]).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    reg.log.clear()
    with pytest.raises(PushError, match="diff_id") as caught:
        push(f"docker-archive:{archive}", f"{reg.host}/liar/app:1", progress=False, cache=cache,
             small_blob_limit=0)
    assert type(caught.value.__cause__).__name__ == "DigestMismatchError"
    kinds = _kinds(reg)
    assert "manifest_put" not in kinds and "upload_put" not in kinds
    assert "upload_cancel" in kinds
    assert cache.lookup([claimed, "sha256:" + hashlib.sha256(layer).hexdigest()]) == {}
    with RegistryClient(reg.host) as client:
        assert client.head_manifest("liar/app", "1") is None


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "layerlab", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_push_text_and_json(reg, tmp_path):
    import os

    env = dict(os.environ, LAYERLAB_CACHE_DIR=str(tmp_path / "c"))
    src = str(SAMPLES / "docker-archive" / "base.tar")
    out = _cli("push", src, f"{reg.host}/cli/base:1", "-q", env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"docker-archive:{src} -> {reg.host}/cli/base:1"
    assert lines[1].split() == ["BLOB", "DIGEST", "SIZE", "RESULT"]
    assert sum(1 for line in lines if line.startswith("layer ") and line.endswith(" pushed")) == \
        EXPECTED["base"]["layer_count"]
    again = _cli("push", src, f"{reg.host}/cli/base:1", "--json", env=env)
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["manifest"] == "exists"
    assert [layer["outcome"] for layer in data["layers"]] == ["exists"] * EXPECTED["base"]["layer_count"]
    assert data["totals"]["bytes_uploaded"] == 0
    mounted = _cli("push", src, f"{reg.host}/cli/other:1", "-q", env=env)
    assert "mounted from cli/base" in mounted.stdout
    # requests is imported when a registry is used, and only then
    code = ("import sys\nfrom layerlab.cli import main\n"
            f"main(['inspect', {src!r}, '--json'])\n"
            "print('requests' in sys.modules, 'urllib3' in sys.modules)\n"
            f"main(['push', {src!r}, '{reg.host}/cli/base:1', '-q'])\n"
            "print('requests' in sys.modules, 'urllib3' in sys.modules)")
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                           timeout=120)
    assert quiet.stdout.splitlines()[-1] == "True True", quiet.stderr
    assert "False False" in quiet.stdout.splitlines()
    assert "(exists)" in quiet.stdout
    bad = _cli("push", src, "127.0.0.1:1/x/y:1", "-q", "--retries", "0", env=env)
    assert bad.returncode == 2
    assert bad.stderr.startswith("layerlab: error: push of ") and len(bad.stderr.splitlines()) == 1


def test_copy_between_transports(reg, tmp_path):
    from layerlab.pusher import copy

    pushed = copy(_ref("oci:oci/family:app-v2"), f"docker://{reg.host}/copy/app:v2",
                  progress=False, cache=False)
    reg.log.clear()
    same = copy(f"docker://{reg.host}/copy/app:v2", f"docker://{reg.host}/copy/again:v2",
                progress=False, cache=False)
    assert {o.outcome for o in same.layers} == {"mounted"}
    assert same.manifest_digest == pushed.manifest_digest
    assert _kinds(reg).count("blob_get") == 1  # the config, read to open the source; layers mounted
    pulled = copy(f"docker://{reg.host}/copy/app:v2", f"oci:{tmp_path / 'layout'}:v2",
                  progress=False)
    back = open_image(f"oci:{tmp_path / 'layout'}:v2")
    assert [str(layer.digest) for layer in back.layers] == [o.digest for o in pushed.layers]
    assert str(back.config.digest) == EXPECTED["app-v2"]["config_digest"]
    assert pulled.manifest_outcome == "written"
    back.verify()
    copy(f"oci:{tmp_path / 'layout'}:v2", f"docker-archive:{tmp_path / 'out.tar'}:app:v2",
         progress=False)
    archive = open_image(f"docker-archive:{tmp_path / 'out.tar'}")
    assert [str(d) for d in archive.diff_ids] == EXPECTED["app-v2"]["diff_ids"]
