"""Inputs for the zstd:chunked tests: a layer tar with every kind of entry the format
records, OCI layouts built by hand around given layer blobs, and skopeo's own
zstd:chunked output of them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
from pathlib import Path
from typing import Iterable

from conftest import require_tool

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def feature_tar(record_padding: bool = False) -> bytes:
    """A deterministic PAX tar: a 400 kB random file (several rolling-sum chunks), a file
    with zero runs (chunks of type ``zeros``, and a run too short to be one), a repetitive
    text file (no cut point at all), xattrs with a fractional mtime, owners, a device, a
    fifo, hard and symbolic links, an empty file and a long name.

    It ends after the two zero blocks, as Go's tar writer (and so Docker) ends layers,
    unless ``record_padding`` (Python's tarfile pads to 10,240-byte records: skopeo 1.9.3
    then fails with "short write", as its c/storage stops reading at the end blocks)."""
    rnd = random.Random(7)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, data: bytes | None = None, **fields) -> None:
            info = tarfile.TarInfo(name)
            info.mtime = fields.pop("mtime", 1700000000)
            for key, value in fields.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("d", type=tarfile.DIRTYPE, mode=0o755)
        add("d/big", rnd.randbytes(400_000), mode=0o644, uid=1000, gid=1001)
        add("d/holes", b"x" * 3000 + bytes(5000) + b"y" * 2000 + bytes(1023) + b"z"
            + bytes(2048), mode=0o600)
        add("d/empty", b"", mode=0o644)
        add("d/link", type=tarfile.LNKTYPE, linkname="d/big")
        add("d/sym", type=tarfile.SYMTYPE, linkname="big", mode=0o777)
        add("dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        add("dev/fifo", type=tarfile.FIFOTYPE, mode=0o644)
        add("d/" + "long" * 40, b"long name\n", mode=0o644)
        info = tarfile.TarInfo("d/xattr")
        info.size = 3
        info.pax_headers = {"SCHILY.xattr.user.k": "v\x01", "mtime": "1700000000.25"}
        tar.addfile(info, io.BytesIO(b"abc"))
        add("d/text", b"hello world, " * 20000, mode=0o644)
        add("d/zeros", bytes(4096), mode=0o644)
        end = tar.offset + 1024
    return buf.getvalue() if record_padding else buf.getvalue()[:end]


def boundary_tar() -> bytes:
    """Zero runs across the writer's 256 KiB read pieces: a long run (a chunk of its
    own), a short one (data), a run longer than a piece, and a file that is one run."""
    rnd = random.Random(11)
    piece = 256 * 1024
    files = {
        "long": rnd.randbytes(piece - 144) + bytes(2000) + rnd.randbytes(50_000),
        "short": rnd.randbytes(piece - 50) + bytes(100) + rnd.randbytes(30_000),
        "huge": b"a" + bytes(3 * piece) + b"end",
        "exact": bytes(piece - 1024) + bytes(1024) + rnd.randbytes(10),
        "only": bytes(2 * piece),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        end = tar.offset + 1024
    return buf.getvalue()[:end]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_layout(path: Path, layers: Iterable[tuple[bytes, str, dict]], ref: str = "x") -> bytes:
    """An OCI layout at ``path`` with one image of the given ``(blob, media type,
    annotations)`` layers (diff_ids: the blobs decompressed); returns its manifest."""
    import zstandard

    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = sha(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    descriptors, diff_ids = [], []
    for blob, media_type, annotations in layers:
        if media_type.endswith("+zstd"):
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob),
                                                                read_across_frames=True)
            tar = reader.read()
        elif media_type.endswith("+gzip"):
            import gzip
            tar = gzip.decompress(blob)
        else:
            tar = blob
        diff_ids.append(sha(tar))
        descriptor = {"mediaType": media_type, "digest": put(blob), "size": len(blob)}
        if annotations:
            descriptor["annotations"] = annotations
        descriptors.append(descriptor)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(config), "size": len(config)},
        "layers": descriptors}).encode()
    digest = put(manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": ref}}]}))
    return manifest


def skopeo(*args: str) -> bytes:
    """Run Debian's skopeo (UTC, so its TOC times read as ours)."""
    binary = require_tool("skopeo")
    proc = subprocess.run([binary, *args], capture_output=True, timeout=300,
                          env=dict(os.environ, TZ="UTC"))
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def layout_manifest(path: Path, index: int = 0) -> tuple[bytes, dict]:
    """The raw and parsed manifest of a layout's ``index``-th root."""
    root = json.loads((path / "index.json").read_text())["manifests"][index]
    raw = (path / "blobs" / "sha256" / root["digest"][7:]).read_bytes()
    return raw, json.loads(raw)


def blob_path(path: Path, digest: str) -> Path:
    return path / "blobs" / "sha256" / digest.split(":", 1)[1]
