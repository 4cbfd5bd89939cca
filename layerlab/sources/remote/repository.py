"""Whole repositories: list their tags, and load every tag's image concurrently.

:func:`load_repository` fetches manifests and configs only (no layer bytes), with a
bounded thread pool sharing one client (one connection pool, one token cache), and
fetches each distinct config blob once. It is what the shared-layer analysis of many
tags needs.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, Iterable

from ... import mediatypes as mt
from ...config import ImageConfig, parse_config
from ...digest import Digest
from ...manifest import ImageManifest, ManifestIndex
from ...model import Image
from ...platform import Platform
from ...reference import RegistryReference
from .. import ImageSummary
from .client import RegistryClient
from .image import client_for, image_from_manifest, registry_reference, resolve_platform

__all__ = ["list_remote_images", "load_repository", "load_repositories"]


def _client(ref: RegistryReference, client: RegistryClient | None, workers: int,
            options: dict[str, Any]) -> RegistryClient:
    if client is not None:
        return client
    options = dict(options)
    options["pool_size"] = max(int(options.get("pool_size", 32)), workers)
    return client_for(ref, **options)


def _run(items: list[str], work, workers: int, progress: bool, desc: str) -> list[Any]:
    """Apply ``work`` to every item with at most ``workers`` threads; results in order.
    The first failure cancels what has not started and is raised."""
    from tqdm.auto import tqdm

    results: list[Any] = [None] * len(items)
    if not items:
        return results
    with tqdm(total=len(items), desc=desc, unit="tag", disable=not progress, leave=False) as bar, \
            ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))),
                               thread_name_prefix="layerlab-remote") as pool:
        futures: dict[Future, int] = {pool.submit(work, item): i for i, item in enumerate(items)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                results[futures[future]] = future.result()
                bar.update(1)
    return results


def list_remote_images(ref: RegistryReference | str, *, workers: int = 8, progress: bool = False,
                       **client_options: Any) -> list[ImageSummary]:
    """The tags of ``ref``'s repository, each with its manifest digest and media type
    (one ``HEAD`` per tag) and, for indexes, the platforms they hold."""
    ref = registry_reference(ref)
    client = _client(ref, client_options.pop("client", None), workers, client_options)
    tags = sorted(client.list_tags(ref.repository))

    def summary(tag: str) -> ImageSummary:
        descriptor = client.head_manifest(ref.repository, tag)
        reference = f"docker://{ref.registry}/{ref.repository}:{tag}"
        if descriptor is None:  # deleted between listing and HEAD
            return ImageSummary(reference, f"{ref.repository}:{tag}", None, None)
        platforms: tuple[str, ...] = ()
        if mt.is_index(descriptor.media_type):
            index = client.get_manifest(ref.repository, str(descriptor.digest))
            if isinstance(index, ManifestIndex):
                platforms = tuple(str(d.platform) for d in index.manifests if d.platform is not None)
        return ImageSummary(reference, f"{ref.repository}:{tag}", descriptor.digest,
                            descriptor.media_type, platforms)

    return _run(tags, summary, workers, progress, f"{ref.repository} tags")


def load_repository(ref_or_repo: RegistryReference | str, *, tags: list[str] | None = None,
                    workers: int = 16, progress: bool = True, client: RegistryClient | None = None,
                    platform: str | Platform | None = None, **client_options: Any) -> list[Image]:
    """Every tag of a repository (or the given ``tags``) as :class:`Image` values, in
    tag order, fetched with ``workers`` threads: manifests and configs only.

    ``ref_or_repo`` is ``host/repo`` or ``docker://host/repo`` (a tag in it is ignored).
    Indexes resolve to ``platform`` (default: this machine's). A tqdm progress bar
    shows unless ``progress=False``. Raises the first error met.
    """
    ref = registry_reference(ref_or_repo)
    client = _client(ref, client, workers, client_options)
    names = list(tags) if tags is not None else sorted(client.list_tags(ref.repository))
    configs: dict[Digest, Future] = {}
    lock = threading.Lock()

    def config_of(manifest: ImageManifest, tag_ref: RegistryReference) -> ImageConfig:
        digest = manifest.config.digest
        with lock:
            future = configs.get(digest)
            owner = future is None
            if owner:
                future = configs[digest] = Future()
        if not owner:
            return future.result()
        try:
            raw = client.get_blob_bytes(ref.repository, digest)
            config = parse_config(raw, manifest.config.media_type,
                                  what=f"config {digest} of docker://{tag_ref}", digest=digest)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        future.set_result(config)
        return config

    def load(tag: str) -> Image:
        tag_ref = ref.with_tag(tag)
        manifest = client.get_manifest(ref.repository, tag)
        manifest, index_digest, chosen = resolve_platform(client, ref.repository, manifest,
                                                          platform, f"docker://{tag_ref}")
        config = config_of(manifest, tag_ref) if isinstance(manifest, ImageManifest) else None
        return image_from_manifest(client, tag_ref, manifest, config=config,
                                   index_digest=index_digest, platform=chosen)

    return _run(names, load, workers, progress, ref.repository)


def load_repositories(refs: Iterable[RegistryReference | str], **options: Any) -> list[Image]:
    """:func:`load_repository` for several repositories, concatenated in order."""
    images: list[Image] = []
    for ref in refs:
        images.extend(load_repository(ref, **options))
    return images
