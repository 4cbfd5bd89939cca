"""Annotations are kept only while true: a manifest carries a layer's source annotations
(zstd:chunked's TOC, an eStargz TOC digest) when the blob is the source's own bytes, and
only the new blob's own when the pusher compresses; push --compression zstd:chunked
writes layers that skopeo reads back."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from layerlab.digest import Digest
from layerlab.manifest import Descriptor
from layerlab.pusher.engine import _descriptors
from layerlab.pusher.plan import LayerTask
from layerlab.pusher.result import LayerOutcome
from layerlab.pusher.zstdchunked import TOC_CHECKSUM, TOC_POSITION, read_toc
from layerlab.sources import open_image
from layerlab.sources.remote import RegistryClient

from conftest import SAMPLES, require_tool
from zstdchunked_images import blob_path, layout_manifest, oci_layout, sha, skopeo

pytestmark = pytest.mark.interop

APP = SAMPLES / "docker-archive" / "app-v1.tar"
ESTARGZ = "containerd.io/snapshot/stargz/toc.digest"
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
# what layerlab's writer makes of app-v1's four layers at level 3 (deterministic)
PUSHED = [
    ("sha256:a996691de38839e1abbe48fedbd9c5b4d4ef72be82c0ec718629206c59747138",
     "62451:1005:5519:1"),
    ("sha256:1b0ee4cd4cb02b517b242e29e8d7610dd0244a8954575ab9f22eb77f831b09b8",
     "29658:507:2524:1"),
    ("sha256:da2053372cf476d7e675cf475eb24bf70c18a5a9ad54533240074ba03ebf5cd0",
     "26349:556:2620:1"),
    ("sha256:d9499be1b7a2e13c9210577dd074a61e314c20254c95078b6c556f8594addb4d",
     "9677:458:1616:1"),
]


def cli(*args: str, cache: Path | None = None) -> dict:
    env = dict(os.environ)
    if cache is not None:
        env["LAYERLAB_CACHE_DIR"] = str(cache)
    out = subprocess.run([sys.executable, "-m", "layerlab", *args, "--json"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def registry_manifest(host: str, repository: str, reference: str) -> bytes:
    with RegistryClient(host) as client:
        return client.get_manifest(repository, reference).raw


@pytest.fixture(scope="module")
def chunked_layout(tmp_path_factory) -> tuple[Path, bytes]:
    """skopeo's zstd:chunked image of app-v1, in an OCI layout; its manifest bytes."""
    path = tmp_path_factory.mktemp("skopeo") / "layout"
    skopeo("copy", "-q", "--dest-compress-format", "zstd:chunked", f"docker-archive:{APP}",
           f"oci:{path}:app")
    raw, manifest = layout_manifest(path)
    assert all(sorted(d["annotations"]) == [TOC_CHECKSUM, TOC_POSITION]
               for d in manifest["layers"])
    return path, raw


@pytest.fixture(scope="module")
def mixed_layout(chunked_layout, tmp_path_factory) -> tuple[Path, bytes]:
    """A zstd:chunked layer (skopeo's) and a gzip layer with an eStargz TOC annotation."""
    path, raw = chunked_layout
    first = json.loads(raw)["layers"][0]
    blob = blob_path(path, first["digest"]).read_bytes()
    tar = open_image(f"docker-archive:{APP}").layers[1].open_uncompressed().read()
    packed = gzip.compress(tar, mtime=0)
    out = tmp_path_factory.mktemp("mixed") / "layout"
    manifest = oci_layout(out, [(blob, ZSTD_LAYER, first["annotations"]),
                                (packed, GZIP_LAYER, {ESTARGZ: "sha256:" + "ab" * 32})])
    return out, manifest


def test_inspect_json_shows_annotations(chunked_layout, tmp_path):
    path, raw = chunked_layout
    data = cli("inspect", f"oci:{path}:app")
    assert [layer["annotations"] for layer in data["layers"]] == \
        [d["annotations"] for d in json.loads(raw)["layers"]]
    assert data["annotations"] == {}
    plain = cli("inspect", f"docker-archive:{APP}")
    assert [layer["annotations"] for layer in plain["layers"]] == [{}] * 4
    body = json.loads(raw)
    body["annotations"] = {"org.opencontainers.image.title": "app", "a": "1"}
    manifest = json.dumps(body).encode()
    (path / "blobs" / "sha256" / sha(manifest)[7:]).write_bytes(manifest)
    (tmp_path / "l").mkdir()
    import shutil
    shutil.copytree(path / "blobs", tmp_path / "l" / "blobs")
    (tmp_path / "l" / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (tmp_path / "l" / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": body["mediaType"], "digest": sha(manifest), "size": len(manifest)}]}))
    assert cli("inspect", f"oci:{tmp_path / 'l'}")["annotations"] == \
        {"a": "1", "org.opencontainers.image.title": "app"}


def test_copy_keeps_skopeo_manifest_byte_for_byte(chunked_layout, local_registry,
                                                   distribution, tmp_path):
    path, raw = chunked_layout
    for host in (local_registry.host, distribution):
        result = cli("copy", f"oci:{path}:app", f"docker://{host}/zc/app:v1", "--no-cache")
        assert result["manifest_digest"] == sha(raw)
        assert registry_manifest(host, "zc/app", "v1") == raw
    out = cli("copy", f"oci:{path}:app", f"oci:{tmp_path / 'out'}:y")
    assert out["manifest_digest"] == sha(raw)
    assert layout_manifest(tmp_path / "out")[0] == raw
    # registry to registry, same registry: every layer mounted, the manifest unchanged
    again = cli("copy", f"docker://{local_registry.host}/zc/app:v1",
                f"docker://{local_registry.host}/zc/mounted:v1", "--no-cache")
    assert [layer["outcome"] for layer in again["layers"]] == ["mounted"] * 4
    assert registry_manifest(local_registry.host, "zc/mounted", "v1") == raw
    # and to another registry: pushed as stored, the manifest unchanged
    across = cli("copy", f"docker://{local_registry.host}/zc/app:v1",
                 f"docker://{distribution}/zc/across:v1", "--no-cache", "--no-mount")
    assert registry_manifest(distribution, "zc/across", "v1") == raw
    assert across["manifest_digest"] == sha(raw)


def test_recompressed_layers_lose_the_old_annotations(mixed_layout, local_registry, tmp_path):
    path, manifest = mixed_layout
    source = json.loads(manifest)["layers"]
    result = cli("copy", f"oci:{path}:x", f"docker://{local_registry.host}/zc/v2:1",
                 "--format", "v2s2", "--no-cache")
    pushed = json.loads(registry_manifest(local_registry.host, "zc/v2", "1"))
    assert pushed["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    zstd_layer, gzip_layer = pushed["layers"]
    # the zstd:chunked layer cannot go into schema2: gzip, and no TOC annotations
    assert zstd_layer["digest"] != source[0]["digest"]
    assert zstd_layer["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert "annotations" not in zstd_layer
    assert result["layers"][0]["digest_from"] == "compressed"
    # the gzip layer went as stored: its eStargz annotation is still true
    assert gzip_layer["digest"] == source[1]["digest"]
    assert gzip_layer["annotations"] == {ESTARGZ: "sha256:" + "ab" * 32}
    # written to an OCI layout (schema2 converted to OCI, blobs as stored): kept as pushed
    cli("copy", f"docker://{local_registry.host}/zc/v2:1", f"oci:{tmp_path / 'v2'}:1")
    written = layout_manifest(tmp_path / "v2")[1]["layers"]
    assert [(d["digest"], d.get("annotations")) for d in written] == [
        (zstd_layer["digest"], None), (gzip_layer["digest"], gzip_layer["annotations"])]
    # as OCI both go as stored and keep everything
    cli("copy", f"oci:{path}:x", f"docker://{local_registry.host}/zc/oci:1", "--no-cache")
    assert registry_manifest(local_registry.host, "zc/oci", "1") == manifest


def test_descriptor_rule():
    layer = open_image(f"docker-archive:{APP}").layers[0]
    import dataclasses
    annotated = dataclasses.replace(layer, annotations={ESTARGZ: "sha256:" + "cd" * 32})
    task = LayerTask(0, annotated, False, GZIP_LAYER)
    same = LayerOutcome(str(layer.digest), None, layer.size, GZIP_LAYER, "exists")
    other = LayerOutcome("sha256:" + "12" * 32, None, 10, ZSTD_LAYER, "pushed",
                         annotations={TOC_POSITION: "1:2:3:1"})
    bare = LayerOutcome("sha256:" + "34" * 32, None, 10, GZIP_LAYER, "pushed")
    got = _descriptors([task, task, task], [same, other, bare])
    assert [dict(d.annotations) for d in got] == [
        {ESTARGZ: "sha256:" + "cd" * 32}, {TOC_POSITION: "1:2:3:1"}, {}]
    assert got[1] == Descriptor(ZSTD_LAYER, Digest("sha256:" + "12" * 32), 10)


def test_push_zstd_chunked_counts_only_the_layer_being_written(local_registry, tmp_path,
                                                                monkeypatch):
    """Layers waiting for the one zstd:chunked writer are not counted as streaming (the
    count decides whether gzip blocks are handed to the compression pool)."""
    import layerlab
    from layerlab.pusher import engine, zstdchunked

    pushers: list = []
    seen: list[int] = []
    frames = zstdchunked.ChunkedWriter.frames
    init = engine.Pusher.__init__

    def remember(self, *args, **kwargs):
        init(self, *args, **kwargs)
        pushers.append(self)

    def counted(self, blocks):
        seen.append(pushers[0]._streaming)
        yield from frames(self, blocks)

    monkeypatch.setattr(engine.Pusher, "__init__", remember)
    monkeypatch.setattr(zstdchunked.ChunkedWriter, "frames", counted)
    result = layerlab.push(f"docker-archive:{APP}", f"{local_registry.host}/zc/count:v1",
                           compression="zstd:chunked", progress=False, cache=False)
    assert [o.outcome for o in result.layers] == ["pushed"] * 4
    assert seen == [1, 1, 1, 1]
    assert pushers[0]._streaming == 0


def test_push_zstd_chunked_read_back_by_skopeo(local_registry, distribution, tmp_path):
    zstd = require_tool("zstd")
    cache = tmp_path / "cache"
    result = cli("push", f"docker-archive:{APP}", f"{local_registry.host}/zc/pushed:v1",
                 "--compression", "zstd:chunked", cache=cache)
    assert result["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert result["settings"]["compression"] == "zstd:chunked/zstandard/3/c1"
    # one zstd:chunked writer at a time (engine._CHUNKED_WRITERS): the uploads never overlap
    uploads = sorted((e["start"], e["end"]) for e in result["events"]
                     if e["phase"] == "upload" and e["layer"] != "config")
    assert len(uploads) == 4
    assert all(b[0] >= a[1] for a, b in zip(uploads, uploads[1:]))
    manifest = json.loads(registry_manifest(local_registry.host, "zc/pushed", "v1"))
    layers = manifest["layers"]
    assert [d["mediaType"] for d in layers] == [ZSTD_LAYER] * 4
    assert [(d["digest"], d["annotations"][TOC_POSITION]) for d in layers] == PUSHED
    skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{local_registry.host}/zc/pushed:v1",
           f"oci:{tmp_path / 'back'}:x")
    raw, back = layout_manifest(tmp_path / "back")
    assert back["layers"] == layers
    source = open_image(f"docker-archive:{APP}")
    for descriptor, layer in zip(layers, source.layers):
        path = blob_path(tmp_path / "back", descriptor["digest"])
        out = subprocess.run([zstd, "-dc", str(path)], capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert sha(out.stdout) == str(layer.diff_id)
        entries = read_toc(str(path), descriptor["annotations"])
        files = [e for e in entries if e["type"] != "chunk"]
        assert len(files) == len(list(layer.entries()))
    # the digest cache knows the blobs and their annotations: a push to another
    # repository mounts them and writes the same manifest
    second = cli("push", f"docker-archive:{APP}", f"{local_registry.host}/zc/second:v1",
                 "--compression", "zstd:chunked", cache=cache)
    assert [layer["outcome"] for layer in second["layers"]] == ["mounted"] * 4
    assert second["manifest_digest"] == result["manifest_digest"]
    # plain zstd is another blob (another cache key): no TOC annotations invented
    plain = cli("push", f"docker-archive:{APP}", f"{local_registry.host}/zc/plain:v1",
                "--compression", "zstd", cache=cache)
    assert [layer["outcome"] for layer in plain["layers"]] == ["pushed"] * 4
    plain_layers = json.loads(registry_manifest(local_registry.host, "zc/plain", "v1"))["layers"]
    assert not any("annotations" in d for d in plain_layers)
    assert not {d["digest"] for d in plain_layers} & {d for d, _ in PUSHED}
    # Distribution takes the same manifest
    cli("push", f"docker-archive:{APP}", f"{distribution}/zc/pushed:v1",
        "--compression", "zstd:chunked", cache=cache)
    assert json.loads(registry_manifest(distribution, "zc/pushed", "v1"))["layers"] == layers
