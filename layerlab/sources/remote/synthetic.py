"""Tiny synthetic images pushed straight through the client (tests, demos, benchmarks).

:func:`push_synthetic_repository` fills a repository with ``n`` tags, each a small
image made of a shared base layer plus one layer of its own - the shape of "many
releases of one application" that the shared-layer analysis is about. Everything is
deterministic (fixed mtimes, gzip without timestamps), so digests are stable.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Mapping

from ... import mediatypes as mt
from ...digest import Digest, digest_bytes
from .client import RegistryClient

__all__ = ["SyntheticImage", "synthetic_layer", "synthetic_image", "push_image",
           "push_synthetic_repository"]


def synthetic_layer(files: Mapping[str, bytes]) -> tuple[bytes, Digest]:
    """A gzip layer holding ``files`` (path -> content); returns ``(blob, diff_id)``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = buffer.getvalue()
    return gzip.compress(tar_bytes, compresslevel=6, mtime=0), digest_bytes(tar_bytes)


@dataclass(frozen=True)
class SyntheticImage:
    """A ready-to-push image: its blobs by digest, config and manifest bytes."""

    manifest: bytes
    media_type: str
    config: bytes
    layers: tuple[tuple[Digest, bytes], ...]

    @property
    def digest(self) -> Digest:
        return digest_bytes(self.manifest)

    @property
    def config_digest(self) -> Digest:
        return digest_bytes(self.config)


def synthetic_image(layers: Iterable[tuple[bytes, Digest]], *, oci: bool = False,
                    architecture: str = "amd64", env: tuple[str, ...] = (),
                    created_by: Iterable[str] | None = None, cmd: tuple[str, ...] = ("sh",)) -> SyntheticImage:
    """An image of the given ``(blob, diff_id)`` layers (oldest first)."""
    layers = list(layers)
    steps = list(created_by) if created_by is not None else [f"layer {i}" for i in range(len(layers))]
    config = {
        "architecture": architecture, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": list(env), "Cmd": list(cmd)},
        "rootfs": {"type": "layers", "diff_ids": [str(d) for _, d in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": s} for s in steps],
    }
    config_raw = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    layer_type = mt.OCI_LAYER_GZIP if oci else mt.DOCKER_LAYER_GZIP
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST_V2,
        "config": {"mediaType": mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG,
                   "digest": str(digest_bytes(config_raw)), "size": len(config_raw)},
        "layers": [{"mediaType": layer_type, "digest": str(digest_bytes(blob)), "size": len(blob)}
                   for blob, _ in layers],
    }
    raw = json.dumps(manifest, indent=3).encode()
    return SyntheticImage(raw, manifest["mediaType"], config_raw,
                          tuple((digest_bytes(blob), blob) for blob, _ in layers))


def push_image(client: RegistryClient, repository: str, tag: str, image: SyntheticImage,
               skip_existing: Iterable[Digest] = ()) -> Digest:
    """Upload an image's blobs (except ``skip_existing``) and put its manifest under ``tag``."""
    skip = set(skip_existing)
    for digest, blob in image.layers:
        if digest not in skip:
            client.upload_blob(repository, digest, blob)
    client.upload_blob(repository, image.config_digest, image.config)
    return client.put_manifest(repository, tag, image.manifest, image.media_type)


def push_synthetic_repository(client: RegistryClient, repository: str, count: int, *,
                              workers: int = 8, prefix: str = "v", oci: bool = False,
                              base_size: int = 4096) -> dict[str, Digest]:
    """Push ``count`` tags (``v0000``...) sharing one base layer; return tag -> digest."""
    base = synthetic_layer({"etc/os-release": b"ID=synthetic\n",
                            "usr/lib/base.bin": bytes(range(256)) * (base_size // 256)})
    client.upload_blob(repository, digest_bytes(base[0]), base[0])
    width = max(4, len(str(count - 1)))

    def push(i: int) -> tuple[str, Digest]:
        tag = f"{prefix}{i:0{width}d}"
        own = synthetic_layer({f"app/release-{tag}.txt": f"release {tag}\n".encode()})
        image = synthetic_image([base, own], oci=oci, env=(f"RELEASE={tag}",),
                                created_by=["ADD base /", f"COPY release-{tag}.txt /app/"])
        return tag, push_image(client, repository, tag, image, skip_existing=[digest_bytes(base[0])])

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(pool.map(push, range(count)))
