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

from ..model import Image, ImageIndex
from ..reference import ArchiveReference, LayoutReference
from .result import EventLog, LayerOutcome, PushResult

__all__ = ["write_local"]


def write_local(image: Image | ImageIndex, target: ArchiveReference | LayoutReference, *,
                progress: bool = True, cache: Any = True, cache_dir: Any = None,
                **options: Any) -> PushResult:
    """Write ``image`` (or a whole index, to an OCI layout) to an OCI layout or a
    docker-archive (see :func:`layerlab.copy`). ``cache``/``cache_dir`` as for
    :func:`layerlab.push`: a pull records its layers. Blobs are copied as stored: push
    options (compression, workers...) are refused rather than ignored."""
    from ..errors import PushError
    from ..sources import open_all_platforms
    from ..sources.writers import write_docker_archive, write_oci_layout
    from .api import CLIENT_OPTIONS

    unsupported = sorted(set(options) - CLIENT_OPTIONS)
    if unsupported:
        raise PushError(f"{', '.join(unsupported)}: not supported when copying to {target} "
                        "(a local copy writes the blobs as stored)")
    is_index = isinstance(image, ImageIndex)
    if is_index and not isinstance(target, LayoutReference):
        raise PushError(f"{target}: a docker-archive holds single images; copy every platform "
                        f"of {image.reference} to an OCI layout, or pick one with platform= "
                        "(--platform)")
    images = image.images if is_index else (image,)
    log = EventLog()
    start = log.now()
    if isinstance(target, LayoutReference):
        write_oci_layout([(image, target.ref)], target.path, archive=target.archive)
    else:
        write_docker_archive([(image, target.name or image.name)], target.path)
    total = sum(layer.size for one in images for layer in one.layers) \
        + sum(one.config.size for one in images)
    log.add("image", None, "upload", start, bytes=total, outcome="written", detail=str(target))
    warnings = _remember_pull(images, cache, cache_dir)
    written = open_all_platforms(target)  # read back: what the sink really holds
    results = [_written(one, str(target)) for one in
               (written.images if isinstance(written, ImageIndex) else (written,))]
    return PushResult(source=image.reference, destination=str(target),
                      manifest_digest=str(written.digest), media_type=written.media_type,
                      profile="local", layers=tuple(layer for r in results for layer in r.layers),
                      config=None if is_index else results[0].config,
                      manifest_outcome="written", events=tuple(log.events),
                      wall_seconds=log.now(), started_at=log.wall0,
                      warnings=tuple(dict.fromkeys(warnings)),
                      platforms=tuple(results) if is_index else ())


def _written(image: Image, destination: str) -> PushResult:
    """What the sink holds of one image, as a (timeless) result."""
    def outcome(digest: Any, diff_id: Any, size: int, media_type: str) -> LayerOutcome:
        return LayerOutcome(str(digest), str(diff_id) if diff_id else None, size, media_type,
                            "written")

    return PushResult(source=image.reference, destination=destination,
                      manifest_digest=str(image.digest), media_type=image.media_type,
                      profile="local",
                      layers=tuple(outcome(layer.digest, layer.diff_id, layer.size,
                                           layer.media_type) for layer in image.layers),
                      config=outcome(image.config.digest, None, image.config.size,
                                     image.config.media_type),
                      manifest_outcome="written", events=(), wall_seconds=0.0,
                      manifest_size=image.manifest.size,
                      platform=str(image.platform or image.config.platform))


def _remember_pull(images: tuple[Image, ...], cache: Any, cache_dir: Any) -> tuple[str, ...]:
    """Record the layers of images read (and verified) from a registry in the digest
    cache, in one write; return the cache's warnings."""
    from .api import _cache
    from .cache import CacheRecord
    from .plan import source_registry

    records = []
    for image in images:
        origin = source_registry(image)
        if origin is not None:
            records.extend(CacheRecord(str(layer.diff_id), str(layer.digest), layer.size,
                                       layer.media_type, layer.compression, "",
                                       origin.registry, origin.repository,
                                       dict(layer.annotations))
                           for layer in image.layers
                           if layer.diff_id is not None and layer.digest != layer.diff_id)
    store = _cache(cache, cache_dir) if records else None
    if store is None:
        return ()
    store.record(records)
    return tuple(store.warnings)
