"""Small hand-built image media for the reader tests: tars, OCI layouts, docker archives.

Independent of layerlab on purpose (standard library only, plus zstandard): the tests
check layerlab against bytes made here, and digests against plain hashlib.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Iterable

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
REF_NAME = "org.opencontainers.image.ref.name"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def tar_of(members: Iterable[tuple]) -> bytes:
    """A tar from ``(name, data)`` files, ``(name, "dir")``, ``(name, "symlink", target)``
    and ``(name, "hardlink", target)`` members (mtime 0, uid/gid 0)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            name, what = member[0], member[1]
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if what == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif what in ("symlink", "hardlink"):
                info.type = tarfile.SYMTYPE if what == "symlink" else tarfile.LNKTYPE
                info.linkname = member[2]
                tar.addfile(info)
            else:
                info.size, info.mode = len(what), 0o644
                tar.addfile(info, io.BytesIO(what))
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def compress(data: bytes, how: str) -> bytes:
    return {"gzip": gz, "zstd": zst, "none": lambda d: d}[how](data)


MEDIA = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}


def config_json(layer_tars: list[bytes], arch: str = "amd64", variant: str | None = None,
                history: list[dict] | None = None) -> bytes:
    config = {
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in layer_tars]},
        "history": history if history is not None else
        [{"created_by": f"step {i}"} for i in range(len(layer_tars))],
    }
    if variant:
        config["variant"] = variant
    return compact(config)


class Layout:
    """An OCI image layout being built: blobs in memory, written by :meth:`write`."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def blob(self, media_type: str, data: bytes, **extra: object) -> dict:
        digest = sha256(data)
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def image(self, layer_tars: list[bytes], compressions: list[str] | str = "gzip",
              media_types: list[str] | None = None, config: bytes | None = None,
              config_media_type: str = OCI_CONFIG, **extra: object) -> dict:
        """Store an image; return its manifest descriptor (``extra``: annotations, platform)."""
        if isinstance(compressions, str):
            compressions = [compressions] * len(layer_tars)
        config_desc = self.blob(config_media_type, config or config_json(layer_tars))
        layers = []
        for i, (tar, how) in enumerate(zip(layer_tars, compressions)):
            media_type = media_types[i] if media_types else MEDIA[how]
            layers.append(self.blob(media_type, compress(tar, how)))
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                    "layers": layers}
        return self.blob(OCI_MANIFEST, compact(manifest), **extra)

    def index(self, descriptors: list[dict], **extra: object) -> dict:
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        return self.blob(OCI_INDEX, compact(body), **extra)

    def files(self, roots: list[dict]) -> dict[str, bytes]:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": roots}
        out = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": compact(index)}
        for digest, data in self.blobs.items():
            out["blobs/" + digest.replace(":", "/")] = data
        return out

    def write(self, directory: Path, roots: list[dict]) -> Path:
        for name, data in self.files(roots).items():
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return directory


def write_tar(path: Path, files: dict[str, bytes | tuple]) -> Path:
    """A tar of ``files``: bytes are regular files, tuples ``("symlink", target)`` etc."""
    members = []
    for name, value in files.items():
        members.append((name, *value) if isinstance(value, tuple) else (name, value))
    path.write_bytes(tar_of(members))
    return path


def docker_archive_files(images: list[tuple[list[bytes], list[str]]], gzip_layers: bool = False
                         ) -> dict[str, bytes | tuple]:
    """Files of a classic docker-save archive: ``images`` are (layer tars, tags)."""
    files: dict[str, bytes | tuple] = {}
    manifest = []
    for layer_tars, tags in images:
        config = config_json(layer_tars)
        config_name = sha256(config).split(":")[1] + ".json"
        files[config_name] = config
        paths = []
        for tar in layer_tars:
            hex_id = sha256(tar).split(":")[1]
            path = f"{hex_id}/layer.tar"
            files[path] = gz(tar) if gzip_layers else tar
            paths.append(path)
        manifest.append({"Config": config_name, "RepoTags": tags, "Layers": paths})
    files["manifest.json"] = compact(manifest)
    return files


SIMPLE_LAYER = tar_of([("etc", "dir"), ("etc/hello", b"hello\n"), ("bin", "dir"),
                       ("bin/sh", b"#!shell\n" * 100)])
SECOND_LAYER = tar_of([("etc", "dir"), ("etc/.wh.hello", b""), ("opt", "dir"),
                       ("opt/.wh..wh..opq", b""), ("opt/new", b"new\n"),
                       ("opt/link", "symlink", "new"), ("opt/hard", "hardlink", "opt/new")])
