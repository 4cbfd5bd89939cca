"""The core model (layerlab.model, config, tarstream, blobio, platform) on small
hand-made layers and on the samples."""

from __future__ import annotations

import io
import json

import pytest

from layerlab import mediatypes as mt
from layerlab.blobio import FileSection, VerifyingReader, decompressed
from layerlab.config import parse_config
from layerlab.digest import Digest, digest_bytes
from layerlab.errors import (CorruptArchiveError, DigestMismatchError, PlatformError,
                             SizeMismatchError, UnsafePathError)
from layerlab.model import Layer
from layerlab.platform import Platform, choose
from layerlab.sources import open_image
from layerlab.tarstream import iter_tar

from local_images import SECOND_LAYER, SIMPLE_LAYER, gz, sha256, tar_of, zst


def make_layer(stored: bytes, tar: bytes, compression: str, **overrides) -> Layer:
    fields = dict(digest=Digest(sha256(stored)), diff_id=Digest(sha256(tar)), size=len(stored),
                  media_type=mt.layer_media_type(True, compression), compression=compression,
                  opener=lambda: io.BytesIO(stored))
    fields.update(overrides)
    return Layer(**fields)


@pytest.mark.parametrize("compression, pack", [("none", lambda b: b), ("gzip", gz), ("zstd", zst)])
def test_layer_verify_and_streams(compression, pack):
    stored = pack(SECOND_LAYER)
    layer = make_layer(stored, SECOND_LAYER, compression)
    assert layer.verify() == (sha256(SECOND_LAYER), len(SECOND_LAYER))
    with layer.open() as f:
        assert f.read() == stored
    with layer.open_uncompressed() as f:
        assert f.read() == SECOND_LAYER


def test_entries_whiteouts_links_and_opaque_dirs():
    layer = make_layer(gz(SECOND_LAYER), SECOND_LAYER, "gzip")
    entries = {e.path: e for e in layer.entries()}
    assert list(entries) == ["etc", "etc/.wh.hello", "opt", "opt/.wh..wh..opq", "opt/new",
                             "opt/link", "opt/hard"]
    assert entries["etc/.wh.hello"].whiteout == "etc/hello" and not entries["etc/.wh.hello"].opaque
    assert entries["opt/.wh..wh..opq"].whiteout == "opt" and entries["opt/.wh..wh..opq"].opaque
    assert entries["opt/new"].is_file and entries["opt/new"].size == 4
    assert entries["opt/new"].mode == 0o644 and entries["opt/new"].uid == 0
    assert (entries["opt/link"].type, entries["opt/link"].linkname) == ("symlink", "new")
    assert (entries["opt/hard"].type, entries["opt/hard"].linkname) == ("hardlink", "opt/new")
    assert entries["opt"].is_dir and entries["opt"].whiteout is None


def test_walk_gives_file_contents():
    layer = make_layer(zst(SIMPLE_LAYER), SIMPLE_LAYER, "zstd")
    contents = {e.path: f.read() for e, f in layer.walk(verify=True) if f is not None}
    assert contents == {"etc/hello": b"hello\n", "bin/sh": b"#!shell\n" * 100}


def test_seekable_entries_of_a_file_section(tmp_path):
    path = tmp_path / "outer"
    path.write_bytes(b"x" * 700 + SIMPLE_LAYER + b"y" * 300)
    layer = make_layer(SIMPLE_LAYER, SIMPLE_LAYER, "none",
                       opener=lambda: FileSection(str(path), 700, len(SIMPLE_LAYER)), seekable=True)
    assert [e.path for e in layer.entries()] == ["etc", "etc/hello", "bin", "bin/sh"]
    assert [e.path for e in layer.entries(verify=True)] == ["etc", "etc/hello", "bin", "bin/sh"]
    layer.verify()


def test_lying_layers_are_caught():
    stored = gz(SIMPLE_LAYER)
    with pytest.raises(DigestMismatchError, match="layer sha256:0000"):
        make_layer(stored, SIMPLE_LAYER, "gzip", digest=Digest("sha256:" + "0" * 64)).verify()
    with pytest.raises(DigestMismatchError, match=r"\(diff_id\)"):
        make_layer(stored, SIMPLE_LAYER, "gzip", diff_id=Digest("sha256:" + "1" * 64)).verify()
    with pytest.raises(SizeMismatchError, match="expected 5 bytes"):
        make_layer(stored, SIMPLE_LAYER, "gzip", size=5).verify()
    with pytest.raises(DigestMismatchError, match=r"\(diff_id\)"):
        make_layer(SIMPLE_LAYER, SIMPLE_LAYER, "none", diff_id=Digest("sha256:" + "1" * 64)).verify()
    with pytest.raises(SizeMismatchError):
        make_layer(SIMPLE_LAYER, SIMPLE_LAYER, "none", size=len(SIMPLE_LAYER) + 1).verify()
    # reading the entries with verify checks the digests too, padding included
    padded = SIMPLE_LAYER + b"\0" * 512
    bad = make_layer(padded, padded, "none", digest=Digest(sha256(SIMPLE_LAYER)),
                     size=len(padded))
    with pytest.raises(DigestMismatchError):
        list(bad.entries(verify=True))


def test_corrupt_and_truncated_compressed_data():
    stored = gz(SIMPLE_LAYER)
    truncated = stored[: len(stored) // 2]
    with pytest.raises(CorruptArchiveError, match="truncated gzip"):
        make_layer(truncated, SIMPLE_LAYER, "gzip").verify()
    flipped = bytearray(stored)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises((CorruptArchiveError, DigestMismatchError)):
        make_layer(bytes(flipped), SIMPLE_LAYER, "gzip").verify()
    packed = zst(SIMPLE_LAYER)
    with pytest.raises(CorruptArchiveError, match="layer x: corrupt zstd"):
        decompressed(io.BytesIO(packed + b"garbage!"), "zstd", "layer x").read()
    # a truncated zstd frame reads as a short stream (the zstd engine does not say):
    # verification catches it by the declared size
    with pytest.raises(SizeMismatchError, match=f"expected {len(packed)} bytes"):
        make_layer(packed[:-10], SIMPLE_LAYER, "zstd", digest=Digest(sha256(packed)),
                   size=len(packed)).verify()


def test_unsafe_paths_in_a_layer():
    for name in ("../etc/passwd", "/etc/passwd", "a/../../b"):
        data = tar_of([(name, b"x")])
        with pytest.raises(UnsafePathError, match="layer L"):
            list(iter_tar(io.BytesIO(data), "layer L"))
    with pytest.raises(CorruptArchiveError, match="layer L: not a valid tar"):
        list(iter_tar(io.BytesIO(b"this is not a tar archive" * 40), "layer L"))


def test_verifying_reader_checks_at_end():
    data = b"abc" * 1000
    reader = VerifyingReader(io.BytesIO(data), digest_bytes(data), "blob b", len(data))
    assert reader.read() == data
    reader = VerifyingReader(io.BytesIO(data), digest_bytes(b"other"), "blob b")
    with pytest.raises(DigestMismatchError, match="blob b"):
        reader.read()


def test_config_history_and_runtime():
    raw = json.dumps({
        "architecture": "arm", "os": "linux", "variant": "v7",
        "config": {"Env": ["A=1"], "Entrypoint": "/init", "Cmd": ["run"], "User": "1000",
                   "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}, "Labels": {"k": "v"},
                   "WorkingDir": "/app", "Volumes": {"/data": {}}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(b"a"), sha256(b"b")]},
        "history": [{"created_by": "ADD"}, {"created_by": "ENV", "empty_layer": True},
                    {"created_by": "RUN"}],
    }).encode()
    config = parse_config(raw)
    assert config.digest == sha256(raw) and config.size == len(raw)
    assert config.platform == Platform("linux", "arm", "v7")
    assert [h.created_by if h else None for h in config.layer_history()] == ["ADD", "RUN"]
    assert config.runtime() == {"env": ["A=1"], "entrypoint": ["/init"], "cmd": ["run"],
                                "labels": {"k": "v"}, "exposed_ports": ["443/tcp", "80/tcp"],
                                "volumes": ["/data"], "user": "1000", "working_dir": "/app",
                                "stop_signal": None}


def test_platforms():
    assert Platform.parse("linux/arm64") == Platform("linux", "arm64")
    assert Platform.parse("x86_64") == Platform("linux", "amd64")
    assert str(Platform.parse("linux/arm/v7")) == "linux/arm/v7"
    assert Platform("linux", "arm64").matches(Platform.parse("linux/arm64/v8"))
    assert not Platform("linux", "arm", "v6").matches(Platform.parse("linux/arm/v7"))
    with pytest.raises(PlatformError, match="invalid platform"):
        Platform.parse("a/b/c/d")
    items = [(Platform("linux", "amd64"), "x"), (Platform("linux", "arm64", "v8"), "y")]
    assert choose(items, "linux/arm64", "idx") == "y"
    with pytest.raises(PlatformError, match=r"idx: no image for platform linux/s390x "
                                            r"\(available: linux/amd64, linux/arm64/v8\)"):
        choose(items, "linux/s390x", "idx")


def test_image_json_shape_and_verify(samples):
    image = open_image(f"oci:{samples}/oci/multi:latest", platform="linux/arm/v7")
    data = image.to_json()
    assert {"manifest_digest", "media_type", "config_digest", "layers", "index_digest",
            "platform"} <= set(data)
    assert data["platform"] == "linux/arm/v7"
    assert set(data["layers"][0]) == {"digest", "diff_id", "size", "uncompressed_size",
                                      "media_type", "compression", "created_by",
                                      "annotations"}
    assert data["layers"][0]["annotations"] == {}
    assert data["annotations"] == {}
    assert data["uncompressed_size"] is None
    verified = image.verify(workers=2)
    assert verified.uncompressed_size == sum(layer.uncompressed_size for layer in verified.layers)
    assert [layer.digest for layer in verified.layers] == [layer.digest for layer in image.layers]
    assert image.verify(workers=1).uncompressed_size == verified.uncompressed_size
    assert [h.created_by for h in image.empty_history()] == [
        '/bin/sh -c #(nop)  ENTRYPOINT ["/bin/hello"]']
    assert len(image.to_frame()) == 2
