"""The pull model's inputs: layers, client profiles, what a node holds.

Plain frozen dataclasses (sizes in bytes, times in seconds): :class:`PullLayer` (and its
:class:`PullFile` values, for lazy pulls), :class:`PullProfile` (one per client:
:data:`PULL_PROFILES`), :class:`Node`; :func:`pull_layers` reads them from an Image and
:func:`chain_ids` computes Docker's ChainIDs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from .machine import MachineProfile, load_machine

if TYPE_CHECKING:
    from ..model import Image

__all__ = ["PullFile", "PullLayer", "PullProfile", "PULL_PROFILES", "Node",
           "get_pull_profile", "pull_layers", "chain_ids", "ESTARGZ_FOOTER",
           "ZSTD_CHUNKED_FOOTER", "TOC_BYTES_PER_ENTRY", "MANIFEST_BYTES", "PING_BYTES"]

ESTARGZ_FOOTER = 51
"""Bytes of an eStargz footer (a gzip member whose extra field points at the TOC)."""
ZSTD_CHUNKED_FOOTER = 48
"""Bytes of a zstd:chunked footer: a skippable zstd frame holding the 40-byte footer
(skopeo 1.9.3's, and :mod:`layerlab.pusher.zstdchunked`'s). A client that finds the TOC
from the layer's ``manifest-position`` annotation does not read it."""
TOC_BYTES_PER_ENTRY = 100
"""Compressed TOC bytes per tar entry, when the layer does not say how big its TOC is."""
PING_BYTES = 2
"""Bytes of a registry's answer to ``GET /v2/`` (``{}``)."""
MANIFEST_BYTES = 1000
"""Manifest and config bytes assumed when the image does not give them."""

ESTARGZ_TOC_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest"
ZSTD_CHUNKED_ANNOTATIONS = tuple(f"{prefix}.zstd-chunked.manifest-{what}"
                                 for prefix in ("io.containers", "io.github.containers")
                                 for what in ("checksum", "position"))


# -- inputs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PullFile:
    """One regular file of a layer: ``path`` (no leading ``/``), uncompressed ``size``,
    and, when a TOC says so, ``compressed`` bytes of its range in the blob."""

    path: str
    size: int
    compressed: int | None = None


@dataclass(frozen=True)
class PullLayer:
    """One layer as the pull model sees it.

    * ``size``: bytes stored (and downloaded); ``uncompressed_size``: bytes of its tar;
    * ``compression``: ``gzip``, ``zstd`` or ``none``;
    * ``lazy_format``: ``""``, ``"estargz"`` or ``"zstd:chunked"`` (a TOC lets a lazy
      client fetch single files);
    * ``files``: its regular files (for lazy pulls); ``toc_size``: compressed bytes of its
      TOC when known (else :data:`TOC_BYTES_PER_ENTRY` per file); ``footer_size``: bytes
      read to find the TOC (``None``: the format's footer; 0 when an annotation says
      where the TOC is);
    * ``digest``/``diff_id``: to match the node's contents; ``name``: the label in events.
    """

    size: int
    uncompressed_size: int
    compression: str = "gzip"
    lazy_format: str = ""
    digest: str = ""
    diff_id: str | None = None
    name: str = ""
    files: tuple[PullFile, ...] = ()
    toc_size: int | None = None
    footer_size: int | None = None

    def __post_init__(self) -> None:
        if self.size < 0 or self.uncompressed_size < 0:
            raise ValueError("layer sizes cannot be negative")
        if self.compression not in ("gzip", "zstd", "none"):
            raise ValueError(f"compression must be gzip, zstd or none, not {self.compression!r}")
        if self.lazy_format not in ("", "estargz", "zstd:chunked"):
            raise ValueError(f"lazy_format must be '', 'estargz' or 'zstd:chunked', "
                             f"not {self.lazy_format!r}")
        object.__setattr__(self, "files", tuple(self.files))

    @property
    def key(self) -> str:
        """What identifies the layer in events: its name, else its digest."""
        return self.name or self.digest

    def to_json(self) -> dict[str, Any]:
        return {"name": self.key, "digest": self.digest, "diff_id": self.diff_id,
                "size": self.size, "uncompressed_size": self.uncompressed_size,
                "compression": self.compression, "lazy_format": self.lazy_format,
                "files": len(self.files), "toc_size": self.toc_size,
                "footer_size": self.footer_size}


@dataclass(frozen=True)
class PullProfile:
    """How a client pulls.

    * ``max_concurrent_downloads``: layers downloading at once;
    * ``dedup``: ``"blob"`` (skip a layer whose stored digest the destination holds),
      ``"chain"`` (Docker: skip the layer when its digest is known and its chain
      unpacked) or ``"content"`` (containerd: skip the download when the blob is in the
      content store, the extract when the chain is unpacked); see :func:`layer_plan`;
    * ``unpack``: ``True`` when the client extracts layers (in order, after download);
      ``temp_file``: downloads go to a temporary file read back when extracting;
    * ``verify``: the stored bytes are hashed while downloaded; ``fsync``: each blob is
      flushed to disk before it counts; ``inline_decompress``: the download is
      decompressed, its diff_id hashed and the uncompressed tar written while it streams
      (``layerlab copy docker://... docker-archive:FILE``);
    * ``lazy``: the client mounts eStargz / zstd:chunked layers lazily (TOC + files read);
      ``file_dedup``: files the node holds (by path) are not fetched (zstd:chunked in
      containers/storage); ``ranges_per_request``: ranges one GET carries;
    * ``ping``: the client first asks ``GET /v2/`` (skopeo, Docker do);
    * ``start_cost``: fixed seconds per pull; ``request_cost``: client seconds per
      request; ``byte_cost``: client seconds per byte, all streams together (0: none).
    """

    name: str
    max_concurrent_downloads: int = 3
    dedup: str = "chain"
    unpack: bool = True
    temp_file: bool = True
    verify: bool = True
    fsync: bool = False
    inline_decompress: bool = False
    lazy: bool = False
    file_dedup: bool = False
    ranges_per_request: int = 64
    ping: bool = False
    start_cost: float = 0.0
    request_cost: float = 0.0
    byte_cost: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        if self.max_concurrent_downloads < 1:
            raise ValueError("max_concurrent_downloads must be at least 1")
        if self.dedup not in ("blob", "chain", "content"):
            raise ValueError(f"dedup must be 'blob', 'chain' or 'content', not {self.dedup!r}")
        if self.ranges_per_request < 1:
            raise ValueError("ranges_per_request must be at least 1")

    def with_options(self, **changes: Any) -> "PullProfile":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


PULL_PROFILES: Mapping[str, PullProfile] = {
    "docker": PullProfile(
        "docker", 3, "chain", unpack=True, temp_file=True, ping=True,
        description="dockerd: 3 downloads (--max-concurrent-downloads), each to a temporary "
                    "file, then extracted in layer order (decompress, diff_id, files)"),
    "containerd": PullProfile(
        "containerd", 3, "content", unpack=True, temp_file=True,
        description="containerd (CRI max_concurrent_downloads 3): blobs into the content "
                    "store, unpacked in layer order into snapshots"),
    "skopeo": PullProfile(
        "skopeo", 6, "blob", unpack=False, temp_file=False, fsync=True, ping=True,
        description="skopeo copy docker://... oci:DIR (containers/image: 6 parallel "
                    "copies, each blob hashed, synced and renamed; present blobs skipped)"),
    "layerlab": PullProfile(
        "layerlab", 1, "blob", unpack=False, temp_file=False,
        description="layerlab copy docker://... oci:DIR: one blob at a time, hashed while "
                    "written; a blob already there with its size is skipped"),
    "layerlab-archive": PullProfile(
        "layerlab-archive", 1, "blob", unpack=False, temp_file=False, inline_decompress=True,
        description="layerlab copy docker://... docker-archive:FILE: one layer at a time, "
                    "decompressed while downloaded (diff_id checked), written uncompressed"),
    "stargz": PullProfile(
        "stargz", 3, "content", unpack=True, temp_file=True, lazy=True, ranges_per_request=1,
        description="containerd with the stargz snapshotter: eStargz / zstd:chunked layers "
                    "mounted lazily (TOC, then each file read); others as containerd"),
    "podman-chunked": PullProfile(
        "podman-chunked", 6, "content", unpack=True, temp_file=False, lazy=True,
        file_dedup=True, ranges_per_request=64,
        description="podman / containers/storage with zstd:chunked: only missing files "
                    "fetched (multi-range GETs), files the node holds reused"),
}


def get_pull_profile(profile: str | PullProfile) -> PullProfile:
    """A profile by name (``docker``, ``containerd``, ``skopeo``, ``layerlab``,
    ``stargz``, ``podman-chunked``) or as given."""
    if isinstance(profile, PullProfile):
        return profile
    try:
        return PULL_PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown pull profile {profile!r} "
                         f"(known: {', '.join(PULL_PROFILES)})") from None


def chain_ids(layers: Sequence[PullLayer]) -> list[str]:
    """Docker's ChainIDs: the first layer's diff_id, then ``sha256(parent + " " +
    diff_id)`` (a layer without a diff_id stands for itself by its digest)."""
    out: list[str] = []
    for layer in layers:
        diff_id = layer.diff_id or layer.digest or layer.key
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


@dataclass(frozen=True)
class Node:
    """What a node already holds before the pull.

    * ``layers``: digests or diff_ids of layers the node holds unpacked (a digest: its
      blob too; a diff_id alone: the unpacked layer, under a digest Docker cannot know);
    * ``blobs``: stored digests it holds (a content store, an OCI layout's blobs, Docker's
      digest metadata) without their being unpacked;
    * ``chains``: ChainIDs of unpacked layers (from :meth:`holding`);
    * ``files``: paths of files it holds (reused by zstd:chunked clients).
    """

    layers: frozenset[str] = frozenset()
    blobs: frozenset[str] = frozenset()
    chains: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()
    label: str = ""

    def __post_init__(self) -> None:
        for name in ("layers", "blobs", "chains", "files"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))

    @classmethod
    def cold(cls) -> "Node":
        """A node holding nothing."""
        return cls(label="cold")

    @classmethod
    def holding(cls, *images: "Image | Sequence[PullLayer]", layers: Iterable[str] = (),
                files: Iterable[str] = (), label: str = "") -> "Node":
        """A node that pulled ``images`` before (each an Image or its PullLayer values):
        their blobs, their chains, and the files of their layers when known (PullLayer
        ``files``; an Image's files are not read), plus ``layers`` and ``files`` given."""
        blobs: set[str] = set()
        chains: set[str] = set()
        paths: set[str] = set(files)
        for image in images:
            specs = image if _is_specs(image) else pull_layers(image)  # type: ignore[arg-type]
            blobs.update(layer.digest for layer in specs if layer.digest)
            chains.update(chain_ids(specs))
            paths.update(f.path for layer in specs for f in layer.files)
        return cls(frozenset(layers), frozenset(blobs), frozenset(chains), frozenset(paths),
                   label=label or "warm")

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "layers": sorted(self.layers), "blobs": sorted(self.blobs),
                "chains": sorted(self.chains), "files": len(self.files)}


def _is_specs(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, PullLayer) for v in value)


def _normal(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


def pull_layers(image: "Image", files_read: Iterable[str] | None = None,
                machine: MachineProfile | None = None) -> tuple[PullLayer, ...]:
    """:class:`PullLayer` values for an image's layers: stored sizes, compression and
    lazy format from the manifest (annotations), uncompressed sizes from the layer when
    known (else the stored size times the machine's typical ratio). With ``files_read``,
    each lazy layer's regular files are read from its tar entries (``Layer.entries()``:
    this reads the layer)."""
    from .machine import REFERENCE_KEY

    mach = load_machine(machine)
    wanted = files_read is not None
    specs = []
    for index, layer in enumerate(image.layers):
        annotations = dict(layer.annotations or {})
        toc_size = footer_size = None
        if ESTARGZ_TOC_ANNOTATION in annotations:
            lazy = "estargz"
        elif any(a in annotations for a in ZSTD_CHUNKED_ANNOTATIONS):
            lazy = "zstd:chunked"
            position = next((annotations[a] for a in ZSTD_CHUNKED_ANNOTATIONS
                             if a.endswith("position") and a in annotations), None)
            parts = position.split(":") if position else []
            if len(parts) >= 2 and parts[1].isdigit():  # offset:length:uncompressed:type
                toc_size, footer_size = int(parts[1]), 0
        else:
            lazy = ""
        compression = layer.compression if layer.compression in ("gzip", "zstd") else "none"
        uncompressed = layer.uncompressed_size
        if uncompressed is None:
            uncompressed = (layer.size if compression == "none"
                            else int(round(layer.size * mach.typical_ratio(REFERENCE_KEY))))
        files: tuple[PullFile, ...] = ()
        if wanted and lazy:
            files = tuple(PullFile(_normal(e.path), e.size) for e in layer.entries()
                          if e.type == "file")
        specs.append(PullLayer(layer.size, uncompressed, compression, lazy, str(layer.digest),
                               str(layer.diff_id) if layer.diff_id else None,
                               str(layer.digest), files, toc_size, footer_size))
    return tuple(specs)
