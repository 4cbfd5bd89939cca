"""Docker and OCI media types, and what each one means.

Shared by the client side and the registry server; nothing here depends on the rest.
"""

from __future__ import annotations

# Docker (distribution) media types
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"  # uncompressed (rare)
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"

# OCI image spec media types
OCI_LAYOUT_VERSION = "1.0.0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

SCHEMA1_MANIFESTS = frozenset({DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED})
IMAGE_MANIFESTS = frozenset({DOCKER_MANIFEST_V2, OCI_MANIFEST})
INDEXES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFESTS = SCHEMA1_MANIFESTS | IMAGE_MANIFESTS | INDEXES
CONFIGS = frozenset({DOCKER_CONFIG, OCI_CONFIG})

LAYERS = frozenset(
    {
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
        DOCKER_LAYER_FOREIGN_GZIP,
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        OCI_LAYER_NONDIST,
        OCI_LAYER_NONDIST_GZIP,
        OCI_LAYER_NONDIST_ZSTD,
    }
)

# Accept header a client sends to get any manifest kind, most preferred first.
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_INDEX,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        DOCKER_MANIFEST_V2,
        DOCKER_MANIFEST_V1_SIGNED,
        DOCKER_MANIFEST_V1,
    ]
)


def is_manifest(media_type: str) -> bool:
    """Any manifest or index media type (schema1 included)."""
    return media_type in MANIFESTS


def is_index(media_type: str) -> bool:
    """A Docker manifest list or an OCI image index."""
    return media_type in INDEXES


def is_layer(media_type: str) -> bool:
    """A known Docker or OCI layer media type."""
    return media_type in LAYERS


def layer_compression(media_type: str) -> str:
    """What a layer media type claims its compression is: ``gzip``, ``zstd`` or ``none``.

    Unknown types (artifacts) with a ``+gzip``/``+zstd`` suffix follow the suffix.
    """
    if media_type.endswith("+zstd") or media_type.endswith(".zstd"):
        return "zstd"
    if media_type.endswith("gzip"):
        return "gzip"
    return "none"


def layer_media_type(oci: bool, compression: str) -> str:
    """The layer media type for a manifest flavour and a compression."""
    if oci:
        return {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}[compression]
    if compression == "zstd":
        raise ValueError("Docker schema2 manifests cannot carry zstd layers; use OCI")
    return {"gzip": DOCKER_LAYER_GZIP, "none": DOCKER_LAYER}[compression]


def detect_compression(head: bytes) -> str:
    """Sniff the real compression from a blob's first bytes: ``gzip``, ``zstd`` or ``none``."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "none"


DESCRIPTIONS: dict[str, str] = {
    DOCKER_MANIFEST_V1: "Docker v2 schema1 manifest (unsigned)",
    DOCKER_MANIFEST_V1_SIGNED: "Docker v2 schema1 manifest (JWS signed)",
    DOCKER_MANIFEST_V2: "Docker v2 schema2 image manifest",
    DOCKER_MANIFEST_LIST: "Docker manifest list (multi-platform)",
    DOCKER_CONFIG: "Docker image config",
    DOCKER_LAYER: "Docker layer, uncompressed tar",
    DOCKER_LAYER_GZIP: "Docker layer, gzip tar",
    DOCKER_LAYER_FOREIGN_GZIP: "Docker foreign layer, gzip tar",
    OCI_MANIFEST: "OCI image manifest",
    OCI_INDEX: "OCI image index",
    OCI_CONFIG: "OCI image config",
    OCI_EMPTY: "OCI empty descriptor ({})",
    OCI_LAYER: "OCI layer, uncompressed tar",
    OCI_LAYER_GZIP: "OCI layer, gzip tar",
    OCI_LAYER_ZSTD: "OCI layer, zstd tar",
    OCI_LAYER_NONDIST: "OCI non-distributable layer, tar",
    OCI_LAYER_NONDIST_GZIP: "OCI non-distributable layer, gzip tar",
    OCI_LAYER_NONDIST_ZSTD: "OCI non-distributable layer, zstd tar",
}


def describe(media_type: str) -> str:
    """A short human description of a media type."""
    return DESCRIPTIONS.get(media_type, f"unknown media type {media_type}")
