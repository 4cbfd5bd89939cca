"""Manifests of every kind a registry serves, parsed from (and keeping) their raw bytes.

* :class:`ImageManifest` - Docker v2 schema2 and OCI image manifests;
* :class:`ManifestIndex` - Docker manifest lists and OCI image indexes;
* :class:`Schema1Manifest` - Docker v2 schema1, signed (JWS) or not.

Every manifest keeps ``raw``, the exact bytes it was parsed from, so its ``digest`` is
always the hash of what was stored - except schema1, see :class:`Schema1Manifest`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from . import mediatypes as mt
from .digest import SCHEMA1_EMPTY_LAYER, Digest, digest_bytes
from .errors import InvalidDigestError, InvalidManifestError, UnknownMediaTypeError
from .platform import Platform

__all__ = [
    "Descriptor",
    "Manifest",
    "ImageManifest",
    "ManifestIndex",
    "Schema1Manifest",
    "Schema1Layer",
    "parse_manifest",
    "load_json_object",
]

_EMPTY: Mapping[str, str] = MappingProxyType({})


def load_json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse ``raw`` as a JSON object or raise :class:`InvalidManifestError` naming ``what``."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidManifestError(f"{what}: invalid JSON ({exc})") from None
    except RecursionError:  # '[' * 100000: nesting deeper than any real document
        raise InvalidManifestError(f"{what}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidManifestError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _digest_field(value: Any, what: str) -> Digest:
    try:
        return Digest(value)
    except InvalidDigestError as exc:
        raise InvalidManifestError(f"{what}: {exc}") from None


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a blob or manifest is, its digest and size."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY, compare=False)
    platform: Platform | None = None
    artifact_type: str | None = None
    urls: tuple[str, ...] = ()

    def __hash__(self) -> int:
        return hash((self.digest, self.media_type, self.size))

    @classmethod
    def from_json(cls, data: Any, what: str = "descriptor") -> "Descriptor":
        if not isinstance(data, dict):
            raise InvalidManifestError(f"{what}: expected an object")
        try:
            size = int(data["size"])
            media_type = str(data["mediaType"])
        except (KeyError, TypeError, ValueError):
            raise InvalidManifestError(f"{what}: needs mediaType and size") from None
        if size < 0:
            raise InvalidManifestError(f"{what}: negative size {size}")
        return cls(
            media_type=media_type,
            digest=_digest_field(data.get("digest"), what),
            size=size,
            annotations=MappingProxyType(dict(data.get("annotations") or {})),
            platform=Platform.from_json(data["platform"]) if data.get("platform") else None,
            artifact_type=data.get("artifactType"),
            urls=tuple(data.get("urls") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest),
                               "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out

    @property
    def ref_name(self) -> str | None:
        """The ``org.opencontainers.image.ref.name`` annotation (OCI layouts)."""
        return self.annotations.get("org.opencontainers.image.ref.name")


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Common part of all manifests: the raw bytes, the media type and the digest."""

    raw: bytes = field(repr=False)
    media_type: str
    digest: Digest
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY, compare=False)

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def size(self) -> int:
        return len(self.raw)

    def json(self) -> dict[str, Any]:
        """The parsed JSON body (a fresh copy)."""
        return json.loads(self.raw)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size)


@dataclass(frozen=True, kw_only=True)
class ImageManifest(Manifest):
    """A Docker v2 schema2 or OCI image manifest: one config and ordered layers."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    subject: Descriptor | None = None
    artifact_type: str | None = None

    @property
    def is_oci(self) -> bool:
        return self.media_type == mt.OCI_MANIFEST

    def __hash__(self) -> int:
        return hash(self.digest)


@dataclass(frozen=True, kw_only=True)
class ManifestIndex(Manifest):
    """A Docker manifest list or OCI image index: child manifests, often one per platform."""

    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None = None
    artifact_type: str | None = None

    def __hash__(self) -> int:
        return hash(self.digest)


@dataclass(frozen=True)
class Schema1Layer:
    """One ``fsLayers``/``history`` pair of a schema1 manifest, oldest first."""

    blob_sum: Digest
    v1_compatibility: Mapping[str, Any]

    @property
    def throwaway(self) -> bool:
        """True for no-op steps (ENV, CMD ...): the empty layer, or marked ``throwaway``."""
        return bool(self.v1_compatibility.get("throwaway")) or self.blob_sum == SCHEMA1_EMPTY_LAYER

    @property
    def created_by(self) -> str:
        cmd = (self.v1_compatibility.get("container_config") or {}).get("Cmd") or []
        return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


@dataclass(frozen=True, kw_only=True)
class Schema1Manifest(Manifest):
    """A Docker v2 schema1 manifest (deprecated, but registries of the seed's era served it).

    ``fs_layers`` and ``history`` are newest first, exactly as in the JSON; see
    :meth:`layers_oldest_first`. Every no-op step (ENV, CMD, ...) appears as the
    32-byte empty-layer blob ``sha256:a3ed95ca...`` (:data:`SCHEMA1_EMPTY_LAYER`).

    **Digest.** A signed schema1 manifest is a JWS: the registry may re-sign it on every
    GET, so the signed bytes change while the image does not. What identifies it is the
    *payload*: the body without the ``signatures`` member, i.e. the first
    ``formatLength`` bytes followed by the base64url-decoded ``formatTail`` of the
    signature's protected header. ``digest`` is the sha256 of that payload (this is what
    Distribution returns as ``Docker-Content-Digest``); for an unsigned manifest the
    payload is the body itself.
    """

    name: str
    tag: str
    architecture: str
    fs_layers: tuple[Digest, ...]
    history: tuple[str, ...] = field(repr=False)
    signed: bool = False
    payload: bytes = field(default=b"", repr=False)

    def __hash__(self) -> int:
        return hash(self.digest)

    def layers_oldest_first(self) -> list[Schema1Layer]:
        out = []
        for blob_sum, v1 in zip(reversed(self.fs_layers), reversed(self.history)):
            try:
                compat = json.loads(v1)
            except ValueError:
                raise InvalidManifestError(
                    f"schema1 manifest {self.digest}: invalid v1Compatibility JSON") from None
            out.append(Schema1Layer(blob_sum, MappingProxyType(compat)))
        return out


def index_with_children(index: ManifestIndex, children: Sequence[Descriptor],
                        media_type: str | None = None) -> bytes:
    """The bytes of ``index`` once its children became ``children`` (in order, as pushed
    or written): the index's own bytes when every child kept its digest, size and media
    type (and ``media_type`` is the index's), else the same document with each entry's
    ``digest``, ``size`` and ``mediaType`` updated and, given ``media_type``, the
    index's own; platforms, annotations and every other field are kept, and the
    serialisation is deterministic."""
    if len(children) != len(index.manifests):
        raise ValueError("one descriptor per index entry is needed")
    wanted = media_type or index.media_type
    if wanted == index.media_type and all(
            (d.digest, d.size, d.media_type) == (s.digest, s.size, s.media_type)
            for d, s in zip(children, index.manifests)):
        return index.raw
    body = json.loads(index.raw)
    body["mediaType"] = wanted
    for entry, child in zip(body["manifests"], children):
        entry.update({"mediaType": child.media_type, "digest": str(child.digest),
                      "size": child.size})
    return json.dumps(body, indent=3, ensure_ascii=False).encode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def schema1_payload(raw: bytes, data: dict[str, Any]) -> bytes:
    """The JWS payload of a signed schema1 manifest (the bytes its digest is taken over)."""
    signatures = data.get("signatures")
    if not signatures:
        return raw
    try:
        protected = json.loads(_b64url_decode(signatures[0]["protected"]))
        length = int(protected["formatLength"])
        tail = _b64url_decode(protected["formatTail"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise InvalidManifestError("schema1 manifest: unreadable JWS protected header") from None
    if not 0 < length <= len(raw):
        raise InvalidManifestError("schema1 manifest: formatLength out of range")
    return raw[:length] + tail


def _descriptors(data: dict[str, Any], key: str, what: str) -> tuple[Descriptor, ...]:
    items = data.get(key)
    if not isinstance(items, list):
        raise InvalidManifestError(f"{what}: '{key}' must be a list")
    return tuple(Descriptor.from_json(d, f"{what} {key}[{i}]") for i, d in enumerate(items))


def parse_manifest(raw: bytes, media_type: str | None = None, what: str = "manifest") -> Manifest:
    """Parse any manifest kind from its raw bytes.

    ``media_type`` is the Content-Type or descriptor media type, used when the body has
    no ``mediaType`` field (allowed by OCI). Raises :class:`InvalidManifestError` or
    :class:`UnknownMediaTypeError`.
    """
    data = load_json_object(raw, what)
    version = data.get("schemaVersion")
    body_type = data.get("mediaType")
    if version == 1:
        signed = bool(data.get("signatures"))
        payload = schema1_payload(raw, data)
        try:
            fs_layers = tuple(Digest(layer["blobSum"]) for layer in data["fsLayers"])
            history = tuple(h["v1Compatibility"] for h in data["history"])
        except (KeyError, TypeError, InvalidDigestError) as exc:
            raise InvalidManifestError(f"{what}: invalid schema1 fsLayers/history ({exc})") from None
        if len(fs_layers) != len(history):
            raise InvalidManifestError(f"{what}: schema1 fsLayers and history lengths differ")
        return Schema1Manifest(
            raw=raw,
            media_type=mt.DOCKER_MANIFEST_V1_SIGNED if signed else mt.DOCKER_MANIFEST_V1,
            digest=digest_bytes(payload),
            name=str(data.get("name", "")),
            tag=str(data.get("tag", "")),
            architecture=str(data.get("architecture", "")),
            fs_layers=fs_layers,
            history=history,
            signed=signed,
            payload=payload,
        )
    if version != 2:
        raise InvalidManifestError(f"{what}: unsupported schemaVersion {version!r}")
    kind = body_type or media_type
    if kind in (None, "", "application/json", "application/octet-stream"):
        kind = mt.OCI_INDEX if "manifests" in data else mt.OCI_MANIFEST
    common: dict[str, Any] = {
        "raw": raw,
        "media_type": kind,
        "digest": digest_bytes(raw),
        "annotations": MappingProxyType(dict(data.get("annotations") or {})),
    }
    subject = Descriptor.from_json(data["subject"], f"{what} subject") if data.get("subject") else None
    if kind in mt.IMAGE_MANIFESTS:
        if "config" not in data:
            raise InvalidManifestError(f"{what}: image manifest without config")
        return ImageManifest(
            **common,
            config=Descriptor.from_json(data["config"], f"{what} config"),
            layers=_descriptors(data, "layers", what),
            subject=subject,
            artifact_type=data.get("artifactType"),
        )
    if kind in mt.INDEXES:
        return ManifestIndex(
            **common,
            manifests=_descriptors(data, "manifests", what),
            subject=subject,
            artifact_type=data.get("artifactType"),
        )
    raise UnknownMediaTypeError(f"{what}: unknown manifest media type {kind!r}")
