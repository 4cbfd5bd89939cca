"""``copy`` to local transports: OCI layouts (directory or archive) and docker-archives.

The writers of :mod:`layerlab.sources.writers` copy blobs as stored (verified on the
way); from a registry source this is a pull. The result is a :class:`PushResult` with
one ``upload`` event covering the write (``outcome`` ``written``) and the layers as read
back from the written image (a docker-archive stores them uncompressed, so its layer
digests are the diff_ids and its manifest digest is the one skopeo would synthesise).

A pull (a registry source) feeds the local digest cache like Docker's pull does: each
layer's ``diff_id -> compressed digest`` and the repository holding it, so a later push
of the same layers to that registry (even from an uncompressed docker-archive) mounts
or skips them without compressing anything.
"""

from __future__ import annotations

from typing import Any

from ..model import Image
from ..reference import ArchiveReference, LayoutReference
from .result import EventLog, LayerOutcome, PushResult

__all__ = ["write_local"]


def write_local(image: Image, target: ArchiveReference | LayoutReference, *,
                progress: bool = True, cache: Any = True, cache_dir: Any = None,
                **options: Any) -> PushResult:
    """Write ``image`` to an OCI layout or a docker-archive (see :func:`layerlab.copy`).
    ``cache``/``cache_dir`` as for :func:`layerlab.push`: a pull records its layers.
    Blobs are copied as stored: push options (compression, workers...) are refused
    rather than ignored."""
    from ..errors import PushError
    from ..sources.writers import write_docker_archive, write_oci_layout
    from .api import CLIENT_OPTIONS

    unsupported = sorted(set(options) - CLIENT_OPTIONS)
    if unsupported:
        raise PushError(f"{', '.join(unsupported)}: not supported when copying to {target} "
                        "(a local copy writes the blobs as stored)")

    log = EventLog()
    start = log.now()
    if isinstance(target, LayoutReference):
        write_oci_layout([(image, target.ref)], target.path, archive=target.archive)
    else:
        write_docker_archive([(image, target.name or image.name)], target.path)
    total = sum(layer.size for layer in image.layers) + image.config.size
    log.add("image", None, "upload", start, bytes=total, outcome="written", detail=str(target))
    warnings = _remember_pull(image, cache, cache_dir)
    from ..sources import open_image

    written = open_image(target)  # read back: what the sink really holds
    layers = tuple(LayerOutcome(str(layer.digest), str(layer.diff_id) if layer.diff_id else None,
                                layer.size, layer.media_type, "written")
                   for layer in written.layers)
    digest, kind = str(written.digest), written.media_type
    config = LayerOutcome(str(image.config.digest), None, image.config.size,
                          image.config.media_type, "written")
    return PushResult(source=image.reference, destination=str(target), manifest_digest=digest,
                      media_type=kind, profile="local", layers=layers, config=config,
                      manifest_outcome="written", events=tuple(log.events),
                      wall_seconds=log.now(), started_at=log.wall0, warnings=warnings)


def _remember_pull(image: Image, cache: Any, cache_dir: Any) -> tuple[str, ...]:
    """Record the layers of an image read (and verified) from a registry in the digest
    cache; return the cache's warnings."""
    from .api import _cache
    from .cache import CacheRecord
    from .plan import source_registry

    origin = source_registry(image)
    store = _cache(cache, cache_dir) if origin is not None else None
    if store is None or origin is None:
        return ()
    records = [CacheRecord(str(layer.diff_id), str(layer.digest), layer.size, layer.media_type,
                           layer.compression, "", origin.registry, origin.repository)
               for layer in image.layers
               if layer.diff_id is not None and layer.digest != layer.diff_id]
    if records:
        store.record(records)
    return tuple(store.warnings)
