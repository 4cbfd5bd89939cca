"""Just enough manifest parsing for a registry: kind, digest, what it references, its subject.

The registry stores manifests byte for byte; it only reads them to find the blobs and
child manifests that must already be in the repository, the ``subject`` for the referrers
API, and the platform of an index's children for ``Accept`` fallback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .. import mediatypes as mt
from ..digest import Digest
from ..errors import InvalidDigestError, InvalidManifestError
from ..manifest import load_json_object
from .codes import APIError
from .jws import verified_payload


@dataclass(frozen=True)
class ChildManifest:
    """One entry of an index: digest, media type and platform."""

    digest: Digest
    media_type: str
    os: str | None
    architecture: str | None


@dataclass(frozen=True)
class ParsedManifest:
    """What the registry needs to know of an uploaded manifest."""

    media_type: str
    digest: Digest
    blobs: tuple[Digest, ...] = ()
    manifests: tuple[ChildManifest, ...] = ()
    subject: Digest | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = field(default=None, hash=False, compare=False)

    def referrer_descriptor(self, size: int) -> dict[str, Any]:
        """The descriptor the referrers API lists for this manifest."""
        desc: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": size}
        if self.artifact_type:
            desc["artifactType"] = self.artifact_type
        if self.annotations:
            desc["annotations"] = self.annotations
        return desc


def _invalid(message: str) -> APIError:
    return APIError("MANIFEST_INVALID", message)


def _digest_of(desc: Any, where: str) -> Digest:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise _invalid(f"{where}: descriptor without a digest")
    try:
        return Digest(desc["digest"])
    except InvalidDigestError as exc:
        raise _invalid(f"{where}: {exc}") from None


def bare_media_type(content_type: str | None) -> str:
    """``application/x; charset=y`` -> ``application/x``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _hash(data: bytes, algorithm: str) -> Digest:
    return Digest(f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")


def parse_manifest(body: bytes, content_type: str | None, algorithm: str = "sha256") -> ParsedManifest:
    """Parse an uploaded manifest; raise ``MANIFEST_INVALID`` when it cannot be used."""
    try:
        doc = load_json_object(body, "manifest")
    except InvalidManifestError as exc:
        raise _invalid(str(exc)) from None
    declared = bare_media_type(content_type)
    if doc.get("schemaVersion") == 1:
        return _parse_schema1(body, doc, declared, algorithm)
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 1 or 2")
    if declared not in mt.MANIFESTS:  # as Distribution 2.8.2: no guessing from the body
        raise _invalid(f"Content-Type {declared or '(none)'} is not a manifest media type")
    media_type = doc.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise _invalid("mediaType must be a string")
    if media_type and declared != media_type:
        raise _invalid(f"Content-Type {declared} does not match mediaType {media_type}")
    media_type = media_type or declared
    digest = _hash(body, algorithm)
    subject = None
    if doc.get("subject") is not None:
        subject = _digest_of(doc["subject"], "subject")
    annotations = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else None
    artifact_type = doc.get("artifactType") if isinstance(doc.get("artifactType"), str) else None
    if media_type in mt.IMAGE_MANIFESTS:
        config = doc.get("config")
        blobs = [_digest_of(config, "config")]
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise _invalid("layers must be a list")
        for n, layer in enumerate(layers):
            d = _digest_of(layer, f"layers[{n}]")
            if not layer.get("urls"):  # foreign layers live elsewhere
                blobs.append(d)
        if not artifact_type and isinstance(config.get("mediaType"), str):
            artifact_type = config["mediaType"]
        return ParsedManifest(media_type, digest, tuple(blobs), (), subject, artifact_type, annotations)
    if media_type in mt.INDEXES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise _invalid("manifests must be a list")
        children = []
        for n, entry in enumerate(entries):
            d = _digest_of(entry, f"manifests[{n}]")
            platform = entry.get("platform") if isinstance(entry.get("platform"), dict) else {}
            children.append(ChildManifest(d, str(entry.get("mediaType", "")),
                                          platform.get("os"), platform.get("architecture")))
        return ParsedManifest(media_type, digest, (), tuple(children), subject, artifact_type,
                              annotations)
    raise _invalid(f"unsupported manifest media type {media_type!r}")


def _parse_schema1(body: bytes, doc: dict, declared: str, algorithm: str) -> ParsedManifest:
    # only signed ones are stored, as Distribution does: the body decides the type
    media_type = declared if declared in mt.SCHEMA1_MANIFESTS else mt.DOCKER_MANIFEST_V1_SIGNED
    layers = doc.get("fsLayers")
    if not isinstance(layers, list):
        raise _invalid("schema1 manifest without fsLayers")
    blobs = []
    for n, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("blobSum"), str):
            raise _invalid(f"fsLayers[{n}] has no blobSum")
        try:
            blobs.append(Digest(layer["blobSum"]))
        except InvalidDigestError as exc:
            raise _invalid(f"fsLayers[{n}]: {exc}") from None
    payload = verified_payload(body, doc.get("signatures"))
    return ParsedManifest(media_type, _hash(payload, algorithm), tuple(dict.fromkeys(blobs)))


def accepted_types(accept_values: list[str]) -> set[str] | None:
    """The media types an ``Accept`` header lists; ``None`` means "anything"."""
    types = {bare_media_type(part) for value in accept_values for part in value.split(",")}
    types.discard("")
    if not types or "*/*" in types or "application/*" in types:
        return None
    return types
