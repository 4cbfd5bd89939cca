"""Byte-reproducible writers for container image archives (standard library only).

Shared by :mod:`layerlab.samples.build` (the small sample images) and
``benchmarks/genimage.py`` (the big benchmark images), so the tar and archive layout
logic lives in one place.  Like all of :mod:`layerlab.samples`, independent of the rest
of the ``layerlab`` package on purpose: the samples are fixtures that the package is
tested against.

Reproducibility rules: every tar entry has a fixed mtime, uid/gid 0, fixed user/group
names, and entries are written sorted by name; gzip has mtime 0, no file name and a
fixed level; JSON we choose is compact with sorted keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

EPOCH = 1704067200  # 2024-01-01T00:00:00Z, the mtime of every generated tar entry
CHUNK = 1 << 20

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
REF_NAME = "org.opencontainers.image.ref.name"


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: object) -> bytes:
    """Compact JSON with sorted keys (our choice wherever the format leaves it open)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """OCI ChainIDs: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else "sha256:" + sha256_hex(f"{out[-1]} {diff_id}".encode()))
    return out


# --------------------------------------------------------------------------- tar streams


class _CountingHasher:
    """A write-only file wrapper that counts and sha256-hashes what passes through."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.size, self.hash = raw, 0, hashlib.sha256()

    def write(self, data: bytes | memoryview) -> None:
        self.raw.write(data)
        self.hash.update(data)
        self.size += len(data)


class TarWriter:
    """Streams a tar archive with fixed metadata; the caller gives entries in order.

    PAX format (plain ustar headers unless a name is too long), no record padding
    after the two closing zero blocks (as Go's archive/tar writes it).
    """

    def __init__(self, raw: BinaryIO, *, uname: str = "", gname: str = "", mtime: int = EPOCH):
        self.out = _CountingHasher(raw)
        self.uname, self.gname, self.mtime = uname, gname, mtime

    def _header(self, name: str, type_: bytes, mode: int, size: int = 0,
                linkname: str = "", mtime: int | None = None) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.linkname = type_, mode, size, linkname
        info.mtime = self.mtime if mtime is None else mtime
        info.uid = info.gid = 0
        info.uname, info.gname = self.uname, self.gname
        self.out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size: int) -> None:
        if size % 512:
            self.out.write(b"\0" * (512 - size % 512))

    def add_dir(self, name: str, mode: int = 0o755, mtime: int | None = None) -> None:
        """A directory entry (tarfile adds the trailing slash)."""
        self._header(name, tarfile.DIRTYPE, mode, mtime=mtime)

    def add_file(self, name: str, data: bytes | memoryview, mode: int = 0o644,
                 mtime: int | None = None) -> None:
        """A regular file from bytes."""
        self._header(name, tarfile.REGTYPE, mode, len(data), mtime=mtime)
        self.out.write(data)
        self._pad(len(data))

    def add_chunks(self, name: str, size: int, chunks: Iterable[bytes | memoryview],
                   mode: int = 0o644, mtime: int | None = None) -> None:
        """A regular file whose ``size`` bytes come as a sequence of chunks."""
        self._header(name, tarfile.REGTYPE, mode, size, mtime=mtime)
        written = 0
        for chunk in chunks:
            self.out.write(chunk)
            written += len(chunk)
        if written != size:
            raise ValueError(f"{name}: {written} bytes written, {size} declared")
        self._pad(size)

    def add_stream(self, name: str, size: int, reader: BinaryIO, mode: int = 0o644) -> None:
        """A regular file copied from a stream in bounded chunks; exactly ``size`` bytes."""
        self._header(name, tarfile.REGTYPE, mode, size)
        left = size
        while left:
            chunk = reader.read(min(CHUNK, left))
            if not chunk:
                raise ValueError(f"{name}: stream ended {left} bytes early")
            self.out.write(chunk)
            left -= len(chunk)
        self._pad(size)

    def add_symlink(self, name: str, target: str, mtime: int | None = None) -> None:
        """A symbolic link (mode 0777 as Linux reports them)."""
        self._header(name, tarfile.SYMTYPE, 0o777, linkname=target, mtime=mtime)

    def add_hardlink(self, name: str, target: str, mode: int = 0o644,
                     mtime: int | None = None) -> None:
        """A hard link to an earlier entry of the same archive."""
        self._header(name, tarfile.LNKTYPE, mode, linkname=target, mtime=mtime)

    def close(self) -> tuple[str, int]:
        """Write the end-of-archive blocks; return (``sha256:...``, size)."""
        self.out.write(b"\0" * 1024)
        return "sha256:" + self.out.hash.hexdigest(), self.out.size


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class Entry:
    """One member of a layer tar: kind is ``file``, ``dir``, ``symlink`` or ``hardlink``."""

    path: str
    kind: str = "file"
    data: bytes = b""
    mode: int | None = None
    target: str = ""
    mtime: int = EPOCH

    @property
    def file_mode(self) -> int:
        """The explicit mode, or 0755 for directories and 0644 otherwise."""
        if self.mode is not None:
            return self.mode
        return 0o755 if self.kind == "dir" else 0o644


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """The entries plus any missing parent directories (0755), sorted by path."""
    by_path = {e.path: e for e in entries}
    for path in list(by_path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            by_path.setdefault(parent, Entry(parent, "dir"))
    return [by_path[p] for p in sorted(by_path)]


def write_layer(raw: BinaryIO, entries: Iterable[Entry]) -> tuple[str, int]:
    """Write a layer tar (uid/gid 0, user/group root) from entries in the given order."""
    tar = TarWriter(raw, uname="root", gname="root")
    seen: set[str] = set()
    for e in entries:
        if e.kind == "dir":
            tar.add_dir(e.path, e.file_mode, e.mtime)
        elif e.kind == "file":
            tar.add_file(e.path, e.data, e.file_mode, e.mtime)
        elif e.kind == "symlink":
            tar.add_symlink(e.path, e.target, e.mtime)
        elif e.kind == "hardlink":
            if e.target not in seen:
                raise ValueError(f"hard link {e.path} -> {e.target}: target not earlier in the layer")
            tar.add_hardlink(e.path, e.target, e.file_mode, e.mtime)
        else:
            raise ValueError(f"unknown entry kind {e.kind!r}")
        seen.add(e.path)
    return tar.close()


@dataclass(frozen=True)
class Layer:
    """An uncompressed layer tar, held in memory (``data``) or in a file (``path``)."""

    diff_id: str
    size: int
    data: bytes | None = None
    path: Path | None = None

    def open(self) -> BinaryIO:
        """A fresh reader over the layer tar bytes."""
        return io.BytesIO(self.data) if self.data is not None else open(self.path, "rb")

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> "Layer":
        """Build an in-memory layer from entries (parents added, sorted)."""
        buf = io.BytesIO()
        diff_id, size = write_layer(buf, with_parents(entries))
        return cls(diff_id, size, data=buf.getvalue())


@dataclass(frozen=True)
class Image:
    """A single-platform image: config JSON bytes, its layers, and its tags."""

    config: bytes
    layers: tuple[Layer, ...]
    tags: tuple[str, ...] = ()

    @property
    def config_digest(self) -> str:
        """``sha256:`` of the config bytes (the image ID)."""
        return "sha256:" + sha256_hex(self.config)


# --------------------------------------------------------------------------- docker save


@dataclass
class _Member:
    kind: str  # dir, bytes, layer, symlink
    data: bytes = b""
    layer: Layer | None = None
    target: str = ""


def _v1_ids(image: Image) -> list[tuple[str, bytes]]:
    """Legacy per-layer (ID, json) pairs, ID derived from the chain as Docker does."""
    config = json.loads(image.config)
    chains = chain_ids([layer.diff_id for layer in image.layers])
    out: list[tuple[str, bytes]] = []
    parent = ""
    for i, chain in enumerate(chains):
        if i == len(chains) - 1:
            v1 = {k: v for k, v in config.items() if k not in ("history", "rootfs")}
        else:
            v1 = {"container_config": {"Cmd": None}, "created": "1970-01-01T00:00:00Z"}
        v1id = sha256_hex(canonical_json({**v1, "layer_id": chain, "parent": parent}))
        v1["id"] = v1id
        if parent:
            v1["parent"] = parent
        out.append((v1id, canonical_json(v1)))
        parent = "sha256:" + v1id
    return out


def write_docker_archive(path: Path, images: Sequence[Image]) -> tuple[str, int]:
    """A classic ``docker save`` archive: manifest.json, <id>/layer.tar (uncompressed),
    <id>/VERSION, <id>/json, <config hex>.json, repositories.

    A layer already written for another image becomes a symlink ``../<id>/layer.tar``,
    as Docker does.  Layers are streamed from their sources, never held whole.
    """
    members: dict[str, _Member] = {}
    written: dict[str, str] = {}
    manifest, repositories = [], {}
    for image in images:
        config_name = image.config_digest.split(":")[1] + ".json"
        members[config_name] = _Member("bytes", image.config)
        layer_paths = []
        for layer, (v1id, v1json) in zip(image.layers, _v1_ids(image)):
            name = f"{v1id}/layer.tar"
            layer_paths.append(name)
            if v1id in members:
                continue
            members[v1id] = _Member("dir")
            members[f"{v1id}/VERSION"] = _Member("bytes", b"1.0")
            members[f"{v1id}/json"] = _Member("bytes", v1json)
            if layer.diff_id in written:
                members[name] = _Member("symlink", target="../" + written[layer.diff_id])
            else:
                members[name] = _Member("layer", layer=layer)
                written[layer.diff_id] = name
        manifest.append({"Config": config_name, "RepoTags": list(image.tags), "Layers": layer_paths})
        for tag in image.tags:
            repo, _, tag_name = tag.rpartition(":")
            repositories.setdefault(repo, {})[tag_name] = layer_paths[-1].split("/")[0]
    members["manifest.json"] = _Member("bytes", json.dumps(manifest, separators=(",", ":")).encode())
    members["repositories"] = _Member("bytes", canonical_json(repositories) + b"\n")
    return _write_members(path, members)


def _write_members(path: Path, members: dict[str, _Member]) -> tuple[str, int]:
    with open(path, "wb") as raw:
        tar = TarWriter(raw)
        for name in sorted(members):
            m = members[name]
            if m.kind == "dir":
                tar.add_dir(name)
            elif m.kind == "bytes":
                tar.add_file(name, m.data)
            elif m.kind == "symlink":
                tar.add_symlink(name, m.target)
            else:
                with m.layer.open() as reader:
                    tar.add_stream(name, m.layer.size, reader)
        return tar.close()


# --------------------------------------------------------------------------- OCI


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    """Deterministic gzip member: mtime 0, no file name, XFL 0, OS 255 (unknown)."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff"
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def zstd_bytes(data: bytes, level: int = 3) -> bytes:
    """Deterministic zstd frame (single-threaded, content size written, no checksum)."""
    import zstandard

    return zstandard.ZstdCompressor(level=level, threads=0).compress(data)


def compress(layer: Layer, compression: str) -> tuple[str, bytes]:
    """(OCI media type, blob bytes) of an in-memory layer: ``gzip``, ``zstd`` or ``none``."""
    if compression == "gzip":
        return OCI_LAYER_GZIP, gzip_bytes(layer.data)
    if compression == "zstd":
        return OCI_LAYER_ZSTD, zstd_bytes(layer.data)
    return OCI_LAYER, layer.data


@dataclass
class BlobStore:
    """Content-addressed blobs in memory, for writing OCI layouts and archives."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def add(self, media_type: str, data: bytes, **extra: object) -> dict:
        """Store a blob; return its descriptor (extra keys such as platform, annotations)."""
        digest = "sha256:" + sha256_hex(data)
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def add_image(self, image: Image, compressions: Sequence[str], **extra: object) -> dict:
        """Store config, layers (one compression per layer) and an OCI manifest."""
        config = self.add(OCI_CONFIG, image.config)
        layers = [self.add(*compress(layer, c)) for layer, c in zip(image.layers, compressions)]
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
        return self.add(OCI_MANIFEST, canonical_json(manifest), **extra)

    def add_index(self, manifests: Sequence[dict], **extra: object) -> dict:
        """Store an OCI image index over the given descriptors."""
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(manifests)}
        return self.add(OCI_INDEX, canonical_json(index), **extra)

    def layout_files(self, roots: Sequence[dict]) -> dict[str, bytes]:
        """The files of an OCI image layout whose index.json lists ``roots``."""
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(roots)}
        files = {"oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}),
                 "index.json": canonical_json(index)}
        for digest, data in self.blobs.items():
            files["blobs/" + digest.replace(":", "/")] = data
        return files


def write_layout_dir(directory: Path, files: dict[str, bytes]) -> None:
    """Write layout files under ``directory`` (which must not hold stale blobs)."""
    for name, data in sorted(files.items()):
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def write_files_tar(path: Path, files: dict[str, bytes]) -> tuple[str, int]:
    """A tar of the given files plus their parent directories, sorted."""
    members = {name: _Member("bytes", data) for name, data in files.items()}
    for name in list(members):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            members.setdefault("/".join(parts[:i]), _Member("dir"))
    return _write_members(path, members)


def docker25_files(images: Sequence[Image]) -> dict[str, bytes]:
    """Files of a Docker >= 25 ``docker save``: an OCI layout with uncompressed layers,
    plus manifest.json (paths ``blobs/sha256/<hex>``) and repositories."""
    store, roots, manifest, repositories = BlobStore(), [], [], {}
    for image in images:
        config = json.loads(image.config)
        platform = {"architecture": config["architecture"], "os": config["os"]}
        for tag in image.tags:
            repo, _, tag_name = tag.rpartition(":")
            annotations = {"io.containerd.image.name": f"docker.io/library/{tag}", REF_NAME: tag_name}
            roots.append(store.add_image(image, ["none"] * len(image.layers),
                                         annotations=annotations, platform=platform))
            repositories.setdefault(repo, {})[tag_name] = image.config_digest.split(":")[1]
        manifest.append({
            "Config": "blobs/sha256/" + image.config_digest.split(":")[1],
            "RepoTags": list(image.tags),
            "Layers": ["blobs/sha256/" + layer.diff_id.split(":")[1] for layer in image.layers],
        })
    files = store.layout_files(roots)
    files["manifest.json"] = json.dumps(manifest, separators=(",", ":")).encode()
    files["repositories"] = canonical_json(repositories) + b"\n"
    return files

