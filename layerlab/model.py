"""The core types: :class:`Layer` and :class:`Image`, tying manifest, config and blobs.

Re-exports :class:`Descriptor`, the manifests, :class:`ImageConfig` and :class:`TarEntry`
so that ``layerlab.model`` is the one place to import the model from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, BinaryIO, Callable, Iterator, Mapping

from . import mediatypes as mt
from .blobio import VerifyingReader, decompressed
from .config import HistoryEntry, ImageConfig, parse_config
from .digest import CHUNK_SIZE, Digest, digest_stream
from .errors import CorruptArchiveError, DigestMismatchError, LayerlabError, SizeMismatchError
from .manifest import (Descriptor, ImageManifest, Manifest, ManifestIndex, Schema1Manifest,
                       parse_manifest)
from .platform import Platform
from .tarstream import TarEntry, iter_tar

__all__ = [
    "BlobOpener", "Descriptor", "HistoryEntry", "Image", "ImageConfig", "ImageIndex",
    "ImageManifest",
    "Layer", "Manifest", "ManifestIndex", "Platform", "Schema1Manifest", "TarEntry",
    "parse_config", "parse_manifest",
]

BlobOpener = Callable[[], BinaryIO]
"""A zero-argument callable that opens a blob's stored bytes as a binary stream."""


def _no_blob() -> BinaryIO:
    raise LayerlabError("this layer has no blob source attached")


@dataclass(frozen=True)
class Layer:
    """One filesystem layer of an image.

    ``digest`` identifies the bytes as stored and transferred (often gzip); ``diff_id``
    identifies the uncompressed tar (``rootfs.diff_ids`` in the config). They are equal
    only for uncompressed layers. ``compression`` is what the bytes really are (sniffed
    where the reader could), which may differ from what ``media_type`` claims.
    """

    digest: Digest
    diff_id: Digest | None
    size: int
    media_type: str
    uncompressed_size: int | None = None
    compression: str = "gzip"
    history: HistoryEntry | None = None
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    urls: tuple[str, ...] = ()
    opener: BlobOpener = field(default=_no_blob, compare=False, repr=False)
    seekable: bool = field(default=False, compare=False, repr=False)

    def __hash__(self) -> int:
        return hash((self.digest, self.diff_id))

    @property
    def created_by(self) -> str:
        """The build instruction that made this layer ('' if unknown)."""
        return self.history.created_by if self.history else ""

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size,
                          annotations=self.annotations, urls=self.urls)

    def open(self, verify: bool = True) -> BinaryIO:
        """A stream of the stored bytes; with ``verify`` (default), reading it to the end
        checks ``digest`` and ``size`` and raises :class:`DigestMismatchError` on a lie."""
        stream = self.opener()
        if verify:
            return VerifyingReader(stream, self.digest, f"layer {self.digest}", self.size)  # type: ignore[return-value]
        return stream

    def open_uncompressed(self, verify: bool = True) -> BinaryIO:
        """A stream of the uncompressed tar. With ``verify``, both ``digest`` (of the stored
        bytes) and ``diff_id`` (of the tar) are checked when it is read to the end."""
        what = f"layer {self.digest}"
        stream = decompressed(self.open(verify=verify), self.compression, what)
        if verify and self.diff_id is not None and self.compression != "none":
            return VerifyingReader(stream, self.diff_id, f"{what} (diff_id)")  # type: ignore[return-value]
        return stream

    def entries(self, verify: bool = False) -> Iterator[TarEntry]:
        """The layer's tar entries (headers only), streaming."""
        fast = self.seekable and self.compression == "none" and not verify
        with (self.opener() if fast else self.open_uncompressed(verify=verify)) as stream:
            for entry, _ in iter_tar(stream, f"layer {self.digest}", seekable=fast):
                yield entry
            if verify:  # the tar ends before its padding: read to the end to check digests
                while stream.read(CHUNK_SIZE):
                    pass

    def walk(self, verify: bool = False) -> Iterator[tuple[TarEntry, BinaryIO | None]]:
        """``(entry, content)`` pairs; ``content`` reads a regular file's bytes and is valid
        only until the next pair."""
        with self.open_uncompressed(verify=verify) as stream:
            yield from iter_tar(stream, f"layer {self.digest}", with_content=True)
            if verify:
                while stream.read(CHUNK_SIZE):
                    pass

    def verify(self) -> tuple[Digest, int]:
        """Read everything, checking ``digest``, ``size`` and ``diff_id``; return the
        computed ``(diff_id, uncompressed_size)``.

        An uncompressed layer is hashed in a single pass (its stored bytes are the tar);
        a compressed one is decompressed while both digests are computed.
        """
        what = f"layer {self.digest}"
        diff_algorithm = self.diff_id.algorithm if self.diff_id is not None else "sha256"
        if self.compression == "none":
            with self.opener() as stream:
                computed, n = digest_stream(stream, self.digest.algorithm)
            if n != self.size:
                raise SizeMismatchError(what, self.size, n)
            if computed != self.digest:
                raise DigestMismatchError(what, self.digest, computed)
            if diff_algorithm != computed.algorithm:
                with self.opener() as stream:
                    computed, n = digest_stream(stream, diff_algorithm)
        else:
            raw = self.open(verify=True)
            try:
                with decompressed(raw, self.compression, what) as tar:
                    computed, n = digest_stream(tar, diff_algorithm)
                    while raw.read(CHUNK_SIZE):  # the stored digest is checked at raw's end
                        pass
            except CorruptArchiveError:
                self.verify_stored()  # bytes that are not the declared blob: say so first
                raise
        if self.diff_id is not None and computed != self.diff_id:
            raise DigestMismatchError(f"{what} (diff_id)", self.diff_id, computed)
        return computed, n

    def verify_stored(self) -> None:
        """Hash the stored bytes only; raise :class:`SizeMismatchError` or
        :class:`DigestMismatchError` unless they are the declared blob."""
        what = f"layer {self.digest}"
        with self.opener() as stream:
            actual, n = digest_stream(stream, self.digest.algorithm)
        if n != self.size:
            raise SizeMismatchError(what, self.size, n) from None
        if actual != self.digest:
            raise DigestMismatchError(what, self.digest, actual) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": str(self.digest),
            "diff_id": str(self.diff_id) if self.diff_id else None,
            "size": self.size,
            "uncompressed_size": self.uncompressed_size,
            "media_type": self.media_type,
            "compression": self.compression,
            "created_by": self.created_by,
            "annotations": {k: self.annotations[k] for k in sorted(self.annotations)},
        }


def _manifest_annotations(manifest: Manifest) -> dict[str, str]:
    """A manifest's own annotations, sorted by key (none for schema1 and schema2 without)."""
    found = getattr(manifest, "annotations", None) or {}
    return {k: found[k] for k in sorted(found)}


class _ManifestNamed:
    """What an :class:`Image` and an :class:`ImageIndex` share: a manifest names them."""

    reference: str
    manifest: Manifest

    def __hash__(self) -> int:
        return hash((self.reference, self.manifest.digest))

    @property
    def digest(self) -> Digest:
        """The manifest digest (what ``repo@sha256:...`` pins)."""
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return self.manifest.media_type


@dataclass(frozen=True)
class Image(_ManifestNamed):
    """A single-platform image: manifest, config and layers (oldest first).

    ``reference`` is what it was opened from; ``name`` the ``repo:tag`` it carries where
    known; ``index_digest`` and ``platform`` are set when it was chosen from an index or
    manifest list. ``warnings`` lists oddities that are not errors (a media type that
    lies about compression, ...).
    """

    reference: str
    manifest: Manifest
    config: ImageConfig
    layers: tuple[Layer, ...]
    name: str | None = None
    index_digest: Digest | None = None
    platform: Platform | None = None
    warnings: tuple[str, ...] = ()

    __hash__ = _ManifestNamed.__hash__

    @property
    def size(self) -> int:
        """Bytes of all layers as stored (compressed where they are)."""
        return sum(layer.size for layer in self.layers)

    @property
    def uncompressed_size(self) -> int | None:
        sizes = [layer.uncompressed_size for layer in self.layers]
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[misc]

    @property
    def diff_ids(self) -> tuple[Digest | None, ...]:
        return tuple(layer.diff_id for layer in self.layers)

    def empty_history(self) -> list[HistoryEntry]:
        """History steps that made no layer (ENV, CMD, LABEL ...)."""
        return [h for h in self.config.history if h.empty_layer]

    def verify(self, workers: int | None = None) -> "Image":
        """Hash every layer (decompressed to check diff_ids too); raise on a mismatch.

        Layers are verified in ``workers`` threads at once (default: one per CPU, at
        most 8), largest first: hashlib and the decompressors release the GIL. Returns
        this image with every layer's ``uncompressed_size`` filled in.
        """
        import dataclasses
        import os
        from concurrent.futures import ThreadPoolExecutor

        unique = {layer.digest: layer for layer in self.layers}
        order = sorted(unique.values(), key=lambda layer: -layer.size)
        workers = max(1, min(len(order), workers or min(os.cpu_count() or 1, 8)))
        results: dict[Digest, tuple[Digest, int]] = {}
        if workers == 1:
            for layer in order:
                results[layer.digest] = layer.verify()
        else:
            pool = ThreadPoolExecutor(workers, thread_name_prefix="verify")
            try:
                futures = [(layer.digest, pool.submit(layer.verify)) for layer in order]
                for digest, future in futures:
                    results[digest] = future.result()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        layers = tuple(dataclasses.replace(layer, uncompressed_size=results[layer.digest][1])
                       for layer in self.layers)
        return dataclasses.replace(self, layers=layers)

    def to_json(self) -> dict[str, Any]:
        """The stable ``layerlab inspect --json`` shape (documented in the README)."""
        out: dict[str, Any] = {
            "reference": self.reference,
            "name": self.name,
            "manifest_digest": str(self.manifest.digest),
            "media_type": self.manifest.media_type,
            "config_digest": str(self.config.digest),
            "platform": str(self.config.platform),
            "created": self.config.created,
            "size": self.size,
            "uncompressed_size": self.uncompressed_size,
            "layers": [layer.to_json() for layer in self.layers],
            "history": [h.to_json() for h in self.config.history],
            "config": self.config.runtime(),
            "warnings": list(self.warnings),
            "annotations": _manifest_annotations(self.manifest),
        }
        if self.index_digest is not None:
            out["index_digest"] = str(self.index_digest)
        return out

    def to_frame(self):
        """The layers as a pandas DataFrame (one row per layer, oldest first)."""
        import pandas as pd

        return pd.DataFrame([layer.to_json() for layer in self.layers])

    def _repr_html_(self) -> str:
        """Jupyter display: a summary line and the layer table (human-readable sizes)."""
        from ._html import html_card
        from .units import format_size

        kind = {mt.DOCKER_MANIFEST_V2: "Docker schema2", mt.OCI_MANIFEST: "OCI",
                mt.DOCKER_MANIFEST_V1: "Docker schema1",
                mt.DOCKER_MANIFEST_V1_SIGNED: "Docker schema1"}.get(self.media_type,
                                                                     self.media_type)
        facts = {"manifest": self.digest.short, "type": kind,
                 "platform": str(self.config.platform), "layers": len(self.layers),
                 "size": format_size(self.size),
                 "uncompressed": format_size(self.uncompressed_size)}
        rows = [{"#": n, "digest": str(layer.digest),
                 "diff_id": str(layer.diff_id) if layer.diff_id else None,
                 "size": layer.size, "uncompressed_size": layer.uncompressed_size,
                 "compression": layer.compression,
                 "created_by": (layer.created_by[:60] + "...") if len(layer.created_by) > 63
                 else layer.created_by}
                for n, layer in enumerate(self.layers, 1)]
        return html_card(f"Image {self.name or self.reference}", facts, rows,
                         note="; ".join(self.warnings) or None)

    def __repr__(self) -> str:
        return (f"<Image {self.name or self.reference} {self.digest.short} "
                f"{len(self.layers)} layers {self.size} bytes>")


@dataclass(frozen=True)
class ImageIndex(_ManifestNamed):
    """A multi-platform image: an index or manifest list and every image it lists.

    ``children`` follow ``manifest.manifests`` one for one: an :class:`Image` for each
    image manifest, an :class:`ImageIndex` for a nested index. Opened with
    :func:`layerlab.open_all_platforms`; pushed whole by :func:`layerlab.push`.
    """

    reference: str
    manifest: ManifestIndex
    children: tuple["Image | ImageIndex", ...]
    name: str | None = None

    __hash__ = _ManifestNamed.__hash__

    @property
    def images(self) -> tuple[Image, ...]:
        """Every image, nested indexes flattened, in index order."""
        out: list[Image] = []
        for child in self.children:
            out.extend(child.images if isinstance(child, ImageIndex) else (child,))
        return tuple(out)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w for image in self.images for w in image.warnings))

    def to_json(self) -> dict[str, Any]:
        """``layerlab inspect --all --json``: the index and each image's inspect shape."""
        return {"reference": self.reference, "name": self.name,
                "manifest_digest": str(self.digest), "media_type": self.media_type,
                "images": [image.to_json() for image in self.images]}

    def __repr__(self) -> str:
        platforms = ", ".join(str(image.platform or image.config.platform)
                              for image in self.images)
        return f"<ImageIndex {self.name or self.reference} {self.digest.short} [{platforms}]>"
