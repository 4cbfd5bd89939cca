"""Header scans and merged filesystems, checked against tarfile, a reference extractor
and umoci's unpack of the OCI layouts."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile

import pytest

from analysis_images import extract_archive_image, layer_tar, tree_listing, write_archive
from conftest import require_tool
from layerlab.analysis.filesystem import MergedFilesystem
from layerlab.analysis.scan import scan_layer, scan_layers
from layerlab.tarstream import TarEntry
from layerlab.errors import CorruptArchiveError, UnsafePathError
from layerlab.model import Layer
from layerlab.sources import open_image
from layerlab.tarstream import iter_tar

NAMES = ["base", "app-v1", "app-v2", "app24", "app14", "wasted"]


def merged(image) -> tuple[MergedFilesystem, list]:
    scans = scan_layers(image.layers)
    fs = MergedFilesystem()
    for i, scan in enumerate(scans):
        fs.apply(scan.entries, i)
    return fs, scans


def content(scans, state) -> bytes:
    """A file's bytes, read back through the scan's offset (or by walking the layer)."""
    scan = scans[state.layer]
    if scan.seekable:
        with scan.layer.opener() as f:
            f.seek(state.entry.offset)
            return f.read(state.entry.size)
    for ordinal, (_, data) in enumerate(scan.layer.walk()):
        if ordinal == state.ordinal:
            return data.read()
    raise AssertionError("entry not found")


def listing(fs: MergedFilesystem, scans) -> dict[str, tuple]:
    out = {}
    for path, state in fs.files.items():
        e = state.entry
        if e.type == "dir":
            out[path] = ("dir", 0, None, None, None)
        elif e.type == "symlink":
            out[path] = ("symlink", 0, None, e.linkname, None)
        else:
            target = fs.get(e.linkname) if e.type == "hardlink" else state
            out[path] = ("file", target.entry.size, target.entry.mode & 0o7777, None,
                         content(scans, target))
    return out


def _raw_layer(data: bytes, compression: str = "none") -> Layer:
    from layerlab.digest import digest_bytes

    stored = gzip.compress(data, mtime=0) if compression == "gzip" else data
    return Layer(digest=digest_bytes(stored), diff_id=digest_bytes(data), size=len(stored),
                 media_type="application/vnd.oci.image.layer.v1.tar", compression=compression,
                 opener=lambda: io.BytesIO(stored), seekable=compression == "none")


@pytest.mark.parametrize("name", NAMES)
def test_scan_equals_tarfile(samples, name):
    image = open_image(str(samples / "docker-archive" / f"{name}.tar"))
    for layer in image.layers:
        scan = scan_layer(layer)
        with layer.opener() as f, tarfile.open(fileobj=f) as tar:
            members = [m for m in tar.getmembers() if m.name not in (".", "./")]
        assert scan.seekable and scan.tar_size == layer.size
        assert [(e.path, e.size, e.mode, e.uid, e.gid, e.mtime, e.linkname) for e in scan.entries] == \
            [(m.name.rstrip("/"), m.size if m.isreg() else 0, m.mode, m.uid, m.gid, m.mtime,
              m.linkname) for m in members]
        assert [e.offset for e in scan.entries if e.type == "file"] == \
            [m.offset_data for m in members if m.isreg()]
        with layer.opener() as f:
            reference = [e for e, _ in iter_tar(f, "x")]
        assert [(e.type, e.whiteout, e.opaque) for e in scan.entries] == \
            [(e.type, e.whiteout, e.opaque) for e in reference]


def test_scan_of_gzip_layers_streams(samples):
    image = open_image(f"oci:{samples}/oci/family:wasted")
    archive = open_image(str(samples / "docker-archive" / "wasted.tar"))
    for gz, plain in zip(scan_layers(image.layers), scan_layers(archive.layers)):
        assert not gz.seekable
        assert gz.entries == plain.entries
        assert gz.tar_size == plain.tar_size


def test_scan_long_names_pax_and_gnu():
    long = "d/" + "x" * 150 + "/file.txt"

    def member(info, data=b"", fmt=tarfile.GNU_FORMAT):
        pad = b"\0" * (-len(data) % 512)
        return info.tobuf(fmt, "utf-8", "surrogateescape") + data + pad

    info = tarfile.TarInfo(long)
    info.size = 3
    link = tarfile.TarInfo("l")
    link.type, link.linkname = tarfile.SYMTYPE, "t/" + "y" * 120
    pax = tarfile.TarInfo("p/" + "é" * 80)
    pax.size, pax.mtime, pax.uid = 2, 1.5, 4_000_000
    buf = io.BytesIO(member(info, b"abc") + member(link) + member(pax, b"hi", tarfile.PAX_FORMAT)
                     + b"\0" * 1024)
    entries = scan_layer(_raw_layer(buf.getvalue())).entries
    assert [(e.path, e.size, e.linkname) for e in entries] == [
        (long, 3, ""), ("l", 0, "t/" + "y" * 120), ("p/" + "é" * 80, 2, "")]
    assert entries[2].mtime == 1.5 and entries[2].uid == 4_000_000
    data = buf.getvalue()
    assert data[entries[0].offset:entries[0].offset + 3] == b"abc"


def test_scan_rejects_corrupt_and_truncated_tars():
    good = layer_tar([("file", "a", b"x" * 2000), ("file", "b", b"y")]).data
    bad_checksum = bytearray(good)
    bad_checksum[5] ^= 0xFF
    for data, message in ((bytes(bad_checksum), "checksum"), (good[:1000], "truncated"),
                          (good[:300], "truncated"), (b"not a tar at all" * 40, "not a valid tar")):
        with pytest.raises(CorruptArchiveError, match=message):
            scan_layer(_raw_layer(data))
    with pytest.raises(CorruptArchiveError):
        scan_layer(_raw_layer(good[:1000], "gzip"))
    with pytest.raises(CorruptArchiveError):
        scan_layer(_raw_layer(bytes(bad_checksum), "gzip"))


def test_scan_refuses_unsafe_paths():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("../escape"))
    with pytest.raises(UnsafePathError):
        scan_layer(_raw_layer(buf.getvalue()))


@pytest.mark.parametrize("name", NAMES)
def test_merged_filesystem_equals_reference_extraction(samples, tmp_path, name):
    archive = samples / "docker-archive" / f"{name}.tar"
    fs, scans = merged(open_image(str(archive)))
    reference = tree_listing(extract_archive_image(archive, tmp_path / "root"))
    assert listing(fs, scans) == reference


@pytest.mark.parametrize("name", ["wasted", "app-v2"])
def test_merged_filesystem_equals_umoci_unpack(samples, tmp_path, name):
    umoci = require_tool("umoci")
    layout = tmp_path / "layout"
    shutil.copytree(samples / "oci" / "family", layout)
    subprocess.run([umoci, "unpack", "--rootless", "--image", f"{layout}:{name}",
                    str(tmp_path / "bundle")], check=True, capture_output=True)
    reference = tree_listing(tmp_path / "bundle" / "rootfs")
    fs, scans = merged(open_image(f"oci:{layout}:{name}"))
    ours = listing(fs, scans)
    assert sorted(ours) == sorted(reference)
    # umoci --rootless may widen directory modes; compare files fully, others by kind
    for path, (kind, size, mode, target, data) in reference.items():
        assert ours[path][0] == kind and ours[path][3] == target
        if kind == "file":
            assert ours[path][1:] == (size, mode, None, data)


def test_edge_cases_against_reference_extraction(tmp_path):
    layers = [
        [("dir", "a"), ("file", "a/x", b"1" * 10), ("dir", "a/d"), ("file", "a/d/y", b"2"),
         ("file", "h", b"hard"), ("hardlink", "h2", "h"), ("symlink", "s", "a/x")],
        [("whiteout", "a/d"), ("whiteout", "nothing/here"), ("file", "a/d", b"now a file")],
        [("opaque", "a"), ("file", "a/z", b"z"), ("file", "s", b"was a link")],
        [("whiteout", "a"), ("dir", "a"), ("file", "a/new", b"new"), ("file", "x/y/z", b"deep")],
    ]
    archive = write_archive(tmp_path / "edge.tar", layers)
    fs, scans = merged(open_image(str(archive)))
    assert listing(fs, scans) == tree_listing(extract_archive_image(archive, tmp_path / "root"))
    assert sorted(fs.files) == ["a", "a/new", "h", "h2", "s", "x", "x/y", "x/y/z"]
    assert fs.get("x").ordinal == -1  # implicit parent
    assert fs.warnings == []


def test_write_fates_are_tracked():
    def e(path, size=1, kind="file", whiteout=None, opaque=False):
        return TarEntry(path, kind, size, 0o644, 0, 0, 0.0, "", whiteout, opaque)

    fs = MergedFilesystem(track=True)
    fs.apply([e("d", 0, "dir"), e("d/a", 10), e("d/b", 20), e("f", 5), e("g", 7)], 0)
    fs.apply([e("d/.wh..wh..opq", 0, whiteout="d", opaque=True), e("f", 6),
              e(".wh.g", 0, whiteout="g")], 1)
    fs.apply([e("f", 0, "dir"), e("f/x", 1)], 2)
    story = {p: [(w.layer, w.size, w.fate, w.by_layer) for w in ws] for p, ws in fs.writes.items()}
    assert story == {
        "d/a": [(0, 10, "hidden", 1)], "d/b": [(0, 20, "hidden", 1)],
        "f": [(0, 5, "overwritten", 1), (1, 6, "replaced", 2)],
        "g": [(0, 7, "deleted", 1)], "f/x": [(2, 1, "kept", None)]}


def test_hard_link_to_missing_target_is_a_warning(tmp_path):
    archive = write_archive(tmp_path / "hl.tar", [[("file", "a", b"a")]])
    image = open_image(str(archive))
    fs = MergedFilesystem()
    fs.apply([TarEntry("b", "hardlink", 0, 0o644, 0, 0, 0.0, "missing")], 0)
    assert fs.warnings == ["layer 0: hard link b -> missing: target does not exist"]
    assert image.layers  # the archive itself is fine


def test_gnu_sparse_falls_back_to_tarfile():
    info = tarfile.TarInfo("sparse")
    info.type, info.size = tarfile.GNUTYPE_SPARSE, 0
    header = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    plain = layer_tar([("file", "a", b"abc")]).data
    data = header + plain  # a GNU sparse member (no data), then a normal layer
    for compression in ("none", "gzip"):
        scan = scan_layer(_raw_layer(data, compression))
        assert [(e.path, e.offset) for e in scan.entries] == [("sparse", -1), ("a", -1)]
        assert scan.tar_size == len(data) and not scan.seekable
