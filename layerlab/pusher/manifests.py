"""The manifest a push writes: schema2 or OCI, deterministic bytes.

Where the source already has a manifest describing exactly the blobs pushed (an OCI
layout or a registry pushed as stored) its raw bytes are kept, so the manifest digest
is unchanged. Otherwise a manifest is built; its serialisation is fixed (key order,
3-space indent like Docker's), so the same blobs always give the same manifest digest
and a re-push leaves the tag untouched.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from .. import mediatypes as mt
from ..errors import PushError
from ..manifest import Descriptor, ImageManifest
from ..model import Image

__all__ = ["choose_format", "config_descriptor", "build_manifest", "same_content"]


def choose_format(image: Image, wanted: str, compression: str, stored: Sequence[str]) -> str:
    """The manifest media type to write.

    ``wanted`` is the profile's ``manifest_format`` (``source``, ``v2s2``, ``oci``);
    ``compression`` what new compressions produce; ``stored`` the compressions of layers
    pushed as stored. ``source`` keeps the source's kind (docker-save archives and
    schema1 give schema2) unless zstd forces OCI.
    """
    if wanted == "oci":
        return mt.OCI_MANIFEST
    zstd = compression in ("zstd", "zstd:chunked")
    if wanted == "v2s2":
        if zstd:
            raise PushError("zstd layers need an OCI manifest (use --format oci or source)")
        return mt.DOCKER_MANIFEST_V2
    if wanted != "source":
        raise ValueError(f"unknown manifest format {wanted!r} (source, v2s2 or oci)")
    kind = image.manifest.media_type
    if kind == mt.OCI_MANIFEST:
        return mt.OCI_MANIFEST
    if zstd or "zstd" in stored:
        return mt.OCI_MANIFEST
    return mt.DOCKER_MANIFEST_V2


def config_descriptor(image: Image, media_type: str) -> Descriptor:
    """The config descriptor for a manifest of ``media_type``."""
    source = image.manifest
    if isinstance(source, ImageManifest) and source.media_type == media_type:
        config_type = source.config.media_type
    elif media_type == mt.DOCKER_MANIFEST_V2:
        config_type = mt.DOCKER_CONFIG
    else:
        config_type = mt.OCI_CONFIG
    return Descriptor(config_type, image.config.digest, image.config.size)


def _descriptor_json(d: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": d.media_type, "digest": str(d.digest), "size": d.size}
    if d.urls:
        out["urls"] = list(d.urls)
    if d.annotations:
        out["annotations"] = {k: d.annotations[k] for k in sorted(d.annotations)}
    return out


def same_content(manifest: ImageManifest, media_type: str, config: Descriptor,
                 layers: Sequence[Descriptor]) -> bool:
    """Does ``manifest`` describe exactly these blobs (digests, sizes, media types)?"""
    def key(d: Descriptor) -> tuple:
        return (str(d.digest), d.size, d.media_type)

    return (manifest.media_type == media_type and key(manifest.config) == key(config)
            and [key(d) for d in manifest.layers] == [key(d) for d in layers])


def build_manifest(image: Image, media_type: str, config: Descriptor,
                   layers: Sequence[Descriptor]) -> bytes:
    """The manifest bytes: the source's own when it describes exactly these blobs,
    else a deterministic schema2/OCI manifest keeping the source's annotations."""
    source = image.manifest
    if isinstance(source, ImageManifest) and same_content(source, media_type, config, layers):
        return source.raw
    body: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type,
                            "config": _descriptor_json(config),
                            "layers": [_descriptor_json(d) for d in layers]}
    if media_type == mt.OCI_MANIFEST and isinstance(source, ImageManifest):
        if source.subject is not None:
            body["subject"] = _descriptor_json(source.subject)
        if source.annotations:
            body["annotations"] = {k: source.annotations[k] for k in sorted(source.annotations)}
    return json.dumps(body, indent=3, ensure_ascii=False).encode()


