"""zstd:chunked output: valid zstd that decompresses to the input, c/storage's TOC and
footer, and the same TOC as Debian's skopeo (containers/storage 1.43) writes."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import tarfile

import pytest
import zstandard

from layerlab.errors import ZstdChunkedError
from layerlab.pusher.compress import CompressingStream, CompressionSettings
from layerlab.pusher.zstdchunked import TOC_CHECKSUM, TOC_POSITION, read_toc

from conftest import SAMPLES, require_tool
from zstdchunked_images import (OCI_LAYER, blob_path, boundary_tar, feature_tar,
                                layout_manifest, oci_layout, sha, skopeo)

CHUNKED = CompressionSettings("zstd:chunked", "zstandard", 3)
TAR_DIGEST = "sha256:32d707b14a3001e04cef2a20f39e2b003bda1dc401200407a949c8bf1661ade8"
BLOB_DIGEST = "sha256:afe01f15c1576aadb22fdf942fd2a1ccf7c08b2c6b6a9783fabdc8a61474787c"
BLOB_SIZE = 403122
ANNOTATIONS = {
    TOC_CHECKSUM: "sha256:ed15469b1069699e7d6616945871a20aae01bc727d4cb03f70069bfaaa399dc6",
    TOC_POSITION: "401242:1832:6404:1",
}
# fields that depend on the compressed bytes (blob offsets): the only ones that differ
# from skopeo's TOC, whose frames come from another zstd encoder
OFFSETS = {"offset", "endOffset"}


@pytest.fixture(scope="module")
def tar() -> bytes:
    return feature_tar()


@pytest.fixture(scope="module")
def chunked(tar) -> tuple[bytes, CompressingStream]:
    stream = CompressingStream(io.BytesIO(tar), CHUNKED)
    return b"".join(stream), stream


def unzstd(blob: bytes) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob),
                                                        read_across_frames=True)
    return reader.read()


def without_offsets(entries: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in OFFSETS} for e in entries]


def test_settings_key_and_media_type():
    assert CHUNKED.key == "zstd:chunked/zstandard/3/c1"
    assert CompressionSettings("zstd", "zstandard", 3).key == "zstd/zstandard/3/mt"
    assert CHUNKED.blob_compression == "zstd"
    with pytest.raises(ValueError, match=r"unknown compression 'zstd:gzip' "
                                         r"\(gzip, zstd, zstd:chunked or none\)"):
        CompressionSettings("zstd:gzip")


def test_stream_hashes_and_annotations(tar, chunked):
    blob, stream = chunked
    assert sha(tar) == TAR_DIGEST
    assert (str(stream.digest), stream.size_out) == (BLOB_DIGEST, BLOB_SIZE)
    assert (str(stream.diff_id), stream.size_in) == (TAR_DIGEST, len(tar))
    assert sha(blob) == BLOB_DIGEST
    assert stream.annotations == ANNOTATIONS
    plain = CompressingStream(io.BytesIO(tar), CompressionSettings("zstd", "zstandard", 3))
    b"".join(plain)
    assert plain.annotations == {}


def test_output_is_zstd_of_the_input(tar, chunked, tmp_path):
    blob, _ = chunked
    assert unzstd(blob) == tar
    zstd = require_tool("zstd")
    (tmp_path / "layer.zst").write_bytes(blob)
    out = subprocess.run([zstd, "-dc", str(tmp_path / "layer.zst")], capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == tar
    padded = feature_tar(record_padding=True)  # whatever follows the end blocks is kept
    assert len(padded) == 696320
    assert unzstd(b"".join(CompressingStream(io.BytesIO(padded), CHUNKED))) == padded


def test_footer_and_toc_frame(chunked):
    blob, stream = chunked
    offset, length, size, kind = 401242, 1832, 6404, 1
    footer = blob[-48:]
    assert footer[:8] == struct.pack("<II", 0x184D2A50, 40)
    assert struct.unpack("<QQQQ", footer[8:40]) == (offset, length, size, kind)
    assert footer[40:] == b"GnUlInUx"
    assert blob[offset - 8:offset] == struct.pack("<II", 0x184D2A50, length)
    assert offset + length + 48 == len(blob)
    toc = json.loads(zstandard.ZstdDecompressor().decompress(blob[offset:offset + length]))
    assert toc["version"] == 1
    assert toc["entries"] == read_toc(io.BytesIO(blob), stream.annotations)
    assert read_toc(io.BytesIO(blob)) == toc["entries"]  # from the footer alone


def test_toc_entries(chunked):
    blob, stream = chunked
    entries = read_toc(io.BytesIO(blob), stream.annotations)
    assert [(e["type"], e["name"]) for e in entries if e["type"] != "chunk"] == [
        ("dir", "d/"), ("reg", "d/big"), ("reg", "d/holes"), ("reg", "d/empty"),
        ("hardlink", "d/link"), ("symlink", "d/sym"), ("char", "dev/null"),
        ("fifo", "dev/fifo"), ("reg", "d/" + "long" * 40), ("reg", "d/xattr"),
        ("reg", "d/text"), ("reg", "d/zeros")]
    big = [e for e in entries if e["name"] == "d/big"]
    assert [e.get("chunkSize") for e in big] == [
        1854, 22110, 24510, 5129, 21540, 38545, 1876, 74893, 1205, 988, 6051, 104882,
        8048, 16916, 13478, 35368, 22607]
    assert sum(e["chunkSize"] for e in big) == 400000
    assert big[0] == {
        "type": "reg", "name": "d/big", "mode": 0o644, "size": 400000, "uid": 1000,
        "gid": 1001, "modtime": "2023-11-14T22:13:20Z", "accesstime": "0001-01-01T00:00:00Z",
        "changetime": "0001-01-01T00:00:00Z",
        "digest": "sha256:c99f45a803a8a780c6017c414a395f0f14510679ca6e3c4d46c78b414857801d",
        "offset": 106, "endOffset": 400327, "chunkSize": 1854,
        "chunkDigest": "sha256:8c952fa2eb04d21489e1bf5f0011f77dec83bca6f2bcae34be55f7875fdcf92a"}
    holes = [(e.get("chunkOffset", 0), e["chunkSize"], e.get("chunkType", "data"))
             for e in entries if e["name"] == "d/holes"]
    assert holes == [(0, 3000, "data"), (3000, 5000, "zeros"), (8000, 3024, "data"),
                     (11024, 2048, "zeros")]
    by_name = {e["name"]: e for e in entries if e["type"] != "chunk"}
    assert by_name["d/xattr"]["xattrs"] == {"user.k": "dgE="}
    assert by_name["d/xattr"]["modtime"] == "2023-11-14T22:13:20.25Z"
    assert (by_name["dev/null"]["devMajor"], by_name["dev/null"]["devMinor"]) == (1, 3)
    assert by_name["d/link"]["linkName"] == "d/big"
    assert "digest" not in by_name["d/empty"] and "offset" not in by_name["d/empty"]
    assert "chunkSize" not in by_name["d/text"]  # periodic text: no cut point, one chunk
    assert "chunkSize" not in by_name["d/zeros"]  # one zero run: one chunk
    # a file's frames hold exactly its content
    text = by_name["d/text"]
    assert unzstd(blob[text["offset"]:text["endOffset"]]) == b"hello world, " * 20000
    chunk = big[3]
    piece = unzstd(blob[chunk["offset"]:big[4]["offset"]])
    assert len(piece) == 5129 and sha(piece) == chunk["chunkDigest"]


def test_deterministic_whatever_the_reads(tar, chunked):
    class Dribble(io.RawIOBase):
        """Returns at most 4,097 bytes per read."""

        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            return self.inner.read(min(n, 4097) if n >= 0 else 4097)

    stream = CompressingStream(Dribble(tar), CompressionSettings(
        "zstd:chunked", "zstandard", 3, block_size=65536 + 3))
    assert sha(b"".join(stream)) == BLOB_DIGEST
    resumed = CompressingStream(io.BytesIO(tar), CHUNKED, skip=100000)
    assert sha(chunked[0][:100000] + b"".join(resumed)) == BLOB_DIGEST
    assert resumed.annotations == ANNOTATIONS
    level9 = CompressingStream(io.BytesIO(tar), CompressionSettings("zstd:chunked", level=9))
    assert unzstd(b"".join(level9)) == tar
    assert level9.digest != BLOB_DIGEST


def test_read_toc_refuses_what_does_not_match(chunked):
    blob, stream = chunked
    wrong = dict(stream.annotations, **{TOC_CHECKSUM: "sha256:" + "0" * 64})
    with pytest.raises(ZstdChunkedError, match="TOC checksum sha256:ed15469b"):
        read_toc(io.BytesIO(blob), wrong)
    with pytest.raises(ZstdChunkedError, match="no zstd:chunked footer"):
        read_toc(io.BytesIO(blob[:-1]))
    with pytest.raises(ZstdChunkedError, match="bad io.containers.zstd-chunked.manifest-"
                                               "position 'x'"):
        read_toc(io.BytesIO(blob), {TOC_POSITION: "x"})


def test_entries_the_format_cannot_hold():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "global"}) as t:
        t.addfile(tarfile.TarInfo("a"), io.BytesIO(b""))
    stream = CompressingStream(io.BytesIO(buf.getvalue()), CHUNKED)
    with pytest.raises(ZstdChunkedError, match="a global PAX header cannot be written as "
                                               "zstd:chunked"):
        b"".join(stream)
    broken = bytearray(feature_tar()[:1024])
    broken[0] ^= 1
    with pytest.raises(ZstdChunkedError, match="invalid header checksum"):
        b"".join(CompressingStream(io.BytesIO(bytes(broken)), CHUNKED))


# ------------------------------------------------------------------ against skopeo
@pytest.mark.interop
def test_same_toc_as_skopeo(tar, chunked, tmp_path):
    """skopeo compresses the same tar: every TOC field but the blob offsets agrees
    (type, name, linkName, mode, size, uid/gid, times, devices, xattrs, digest, chunk
    sizes, offsets in the file, chunk digests and types), and both blobs decompress to
    the tar."""
    oci_layout(tmp_path / "plain", [(tar, OCI_LAYER, {})])
    skopeo("copy", "-q", "--dest-compress-format", "zstd:chunked",
           f"oci:{tmp_path / 'plain'}:x", f"oci:{tmp_path / 'theirs'}:x")
    _, manifest = layout_manifest(tmp_path / "theirs")
    layer = manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert sorted(layer["annotations"]) == [TOC_CHECKSUM, TOC_POSITION]
    theirs = blob_path(tmp_path / "theirs", layer["digest"])
    their_entries = read_toc(str(theirs), layer["annotations"])
    blob, stream = chunked
    ours = read_toc(io.BytesIO(blob), stream.annotations)
    assert len(ours) == len(their_entries) == 31
    assert without_offsets(ours) == without_offsets(their_entries)
    assert unzstd(theirs.read_bytes()) == tar == unzstd(blob)
    # the TOC JSON has the same length: same fields, offsets with as many digits
    assert layer["annotations"][TOC_POSITION].split(":")[2] == "6404"


@pytest.mark.interop
def test_same_chunks_as_skopeo_across_read_pieces(tmp_path):
    tar = boundary_tar()
    oci_layout(tmp_path / "plain", [(tar, OCI_LAYER, {})])
    skopeo("copy", "-q", "--dest-compress-format", "zstd:chunked",
           f"oci:{tmp_path / 'plain'}:x", f"oci:{tmp_path / 'theirs'}:x")
    layer = layout_manifest(tmp_path / "theirs")[1]["layers"][0]
    theirs = read_toc(str(blob_path(tmp_path / "theirs", layer["digest"])), layer["annotations"])
    stream = CompressingStream(io.BytesIO(tar), CHUNKED)
    blob = b"".join(stream)
    ours = read_toc(io.BytesIO(blob), stream.annotations)
    assert without_offsets(ours) == without_offsets(theirs)
    chunks = {}
    for e in ours:
        chunks.setdefault(e["name"], []).append((e["chunkSize"] if "chunkSize" in e else e["size"],
                                                 e.get("chunkType", "data")))
    assert {kind for _, kind in chunks["short"]} == {"data"}  # 100 zeros stay data
    assert sum(size for size, _ in chunks["short"]) == 256 * 1024 + 30_050
    assert (2000, "zeros") in chunks["long"]
    assert chunks["huge"] == [(1, "data"), (786432, "zeros"), (3, "data")]
    assert chunks["exact"] == [(262144, "zeros"), (10, "data")]
    assert chunks["only"] == [(524288, "data")]  # one chunk: no chunk fields at all
    assert unzstd(blob) == tar


@pytest.mark.interop
def test_same_toc_as_skopeo_for_the_sample_layers(tmp_path):
    from layerlab.sources import open_image

    archive = SAMPLES / "docker-archive" / "app-v1.tar"
    skopeo("copy", "-q", "--dest-compress-format", "zstd:chunked",
           f"docker-archive:{archive}", f"oci:{tmp_path / 'theirs'}:x")
    _, manifest = layout_manifest(tmp_path / "theirs")
    image = open_image(f"docker-archive:{archive}")
    assert len(manifest["layers"]) == len(image.layers) == 4
    for layer, descriptor in zip(image.layers, manifest["layers"]):
        with layer.open_uncompressed() as f:
            tar = f.read()
        stream = CompressingStream(io.BytesIO(tar), CHUNKED)
        blob = b"".join(stream)
        theirs = blob_path(tmp_path / "theirs", descriptor["digest"])
        assert without_offsets(read_toc(io.BytesIO(blob), stream.annotations)) == \
            without_offsets(read_toc(str(theirs), descriptor["annotations"]))
        assert unzstd(blob) == tar == unzstd(theirs.read_bytes())


@pytest.mark.interop
def test_skopeo_copies_our_blobs_onward(tar, chunked, tmp_path):
    blob, stream = chunked
    manifest = oci_layout(tmp_path / "ours", [
        (blob, "application/vnd.oci.image.layer.v1.tar+zstd", stream.annotations)])
    skopeo("copy", "-q", f"oci:{tmp_path / 'ours'}:x", f"oci:{tmp_path / 'copy'}:x")
    raw, copied = layout_manifest(tmp_path / "copy")
    assert raw == manifest  # blobs reused, manifest (and its annotations) kept
    assert blob_path(tmp_path / "copy", BLOB_DIGEST).read_bytes() == blob
    # skopeo's own zstd decoder reads every frame back to the tar
    skopeo("copy", "-q", "--dest-decompress", f"oci:{tmp_path / 'ours'}:x",
           f"dir:{tmp_path / 'dir'}")
    written = json.loads((tmp_path / "dir" / "manifest.json").read_text())["layers"][0]
    assert written["digest"] == TAR_DIGEST
    assert (tmp_path / "dir" / TAR_DIGEST[7:]).read_bytes() == tar
