"""``layerlab.push`` and ``layerlab.copy``: the public entry points."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from ..errors import LayerlabError, PushError, RegistryProtocolError
from ..digest import Digest
from ..model import Image, ImageIndex
from ..reference import ArchiveReference, LayoutReference, RegistryReference, parse_reference
from .cache import DigestCache
from .profiles import PushProfile, get_profile
from .progress import BlobClaims, Progress
from .result import PushResult

__all__ = ["push", "copy", "open_source", "CLIENT_OPTIONS"]

CLIENT_OPTIONS = frozenset({"plain_http", "insecure", "auth", "docker_config", "timeout"})
PLATFORM_WORKERS = 4  #: images of an index pushed at once
_ALIASES = {"workers": "concurrency", "format": "manifest_format", "threads": "compress_threads"}


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    profile_changes, client_options = {}, {}
    for key, value in options.items():
        if value is None:
            continue
        if key in CLIENT_OPTIONS:
            client_options[key] = value
        else:
            profile_changes[_ALIASES.get(key, key)] = value
    return profile_changes, client_options


def _destination(destination: str | RegistryReference) -> RegistryReference:
    if isinstance(destination, RegistryReference):
        return destination
    text = destination if destination.startswith("docker://") else "docker://" + destination
    parsed = parse_reference(text)
    assert isinstance(parsed, RegistryReference)
    return parsed


def _client(registry: str, profile: PushProfile, options: dict[str, Any]):
    from ..sources.remote import RegistryClient

    return RegistryClient(registry, retries=profile.retries,
                          backoff=min(0.25, profile.retry_backoff), **options)


def _cache(cache: bool | DigestCache | str | Path, cache_dir: str | Path | None) -> DigestCache | None:
    if cache is False or cache is None:
        return None
    if isinstance(cache, DigestCache):
        return cache
    if isinstance(cache, (str, Path)):
        return DigestCache(cache)
    return DigestCache(cache_dir)


def push(image: Image | ImageIndex | str, destination: str | RegistryReference, *,
         profile: str | PushProfile = "fast", progress: bool = True,
         cache: bool | DigestCache | str | Path = True, cache_dir: str | Path | None = None,
         lookup: Sequence[str] = (), platform: str | None = None, all_platforms: bool = False,
         temp_dir: str | None = None, client: Any = None, **options: Any) -> PushResult:
    """Push an image (or every platform of an index) to a registry; return a
    :class:`PushResult`.

    ``image`` is an :class:`Image`, an :class:`ImageIndex` or any reference layerlab
    reads (docker-archive, OCI layout or archive, another registry); a reference naming
    an index gives the image of ``platform`` (default: this machine's), or with
    ``all_platforms=True`` the whole index. ``destination`` is ``host/repo:tag`` (or
    ``docker://...``, or ``host/repo@sha256:...``). ``profile`` is ``fast`` (default),
    ``docker``, ``docker-1.7``, ``serial`` or a :class:`PushProfile`; keyword ``options``
    override its fields (``workers``/``concurrency``, ``level``, ``engine``,
    ``compression``, ``upload``, ``chunk_size``, ``format``/``manifest_format``,
    ``check_existing``, ``registry_lookup``, ``mount``, ``temp_file``, ``retries``,
    ``retry_backoff``, ``threads``/``compress_threads``...) or configure the registry client
    (``plain_http``, ``insecure``, ``auth=(user, password)``, ``docker_config``,
    ``timeout``). ``cache`` (default on) is the local digest cache, in ``cache_dir`` or
    the default directory (see :mod:`layerlab.pusher.cache`); ``lookup`` lists more
    ``repo:tag`` references of the destination registry whose layers may be reused.

    A schema1 source is converted to schema2 first (each layer read once for its diff_id,
    see :func:`~layerlab.sources.remote.image.schema1_as_schema2`).

    An index's images are pushed concurrently (up to :data:`PLATFORM_WORKERS` at once,
    each with its own connections; a blob two of them share is sent once, the other
    waiting for it; one after another when a ``client`` is given), each manifest under
    its digest, then the index under the tag: its bytes are the source's when every image kept its digest, else
    the same document pointing at the pushed manifests. The result's ``platforms``
    holds one :class:`PushResult` per image.

    Raises :class:`PushError` (its ``__cause__`` is the underlying registry, digest or
    source error); no manifest is written unless every blob was confirmed, and no index
    unless every image's manifest was.

    The first blob a process streams raises glibc's malloc mmap and trim thresholds for
    the whole process, so freed megabyte buffers are reused rather than faulted in again
    (:mod:`layerlab.pusher.memory`): a notebook that pushes keeps up to about 256 MiB of
    freed heap instead of returning it at once.
    """
    base = get_profile(profile)
    changes, client_options = _split(options)
    try:
        chosen = base.with_options(**changes) if changes else base
    except TypeError as exc:
        raise ValueError(f"unknown push option: {exc}") from None
    dest = _destination(destination)
    if isinstance(image, str):
        image = open_source(image, platform, all_platforms, client_options)
    session = _Session(dest, chosen, client, _cache(cache, cache_dir), tuple(lookup), progress,
                       temp_dir, client_options)
    try:
        if isinstance(image, ImageIndex):
            return session.push_index(image, dest)
        return session.push_image(image, by_digest=False)
    except PushError:
        raise
    except LayerlabError as exc:
        raise PushError(f"push of {image.reference} to {dest} failed, no manifest written: "
                        f"{exc}") from exc
    finally:
        session.close()


class _Session:
    """What the pushes of one :func:`push` call share: the profile, the registry client
    (one connection pool, one token cache), the digest cache."""

    def __init__(self, dest: RegistryReference, profile: PushProfile, client: Any,
                 cache: DigestCache | None, lookup: tuple[str, ...], progress: bool,
                 temp_dir: str | None, client_options: dict[str, Any]) -> None:
        self.dest, self.profile, self.cache, self.lookup = dest, profile, cache, lookup
        self.progress, self.temp_dir = progress, temp_dir
        self.client_options = client_options
        self.client = client
        self.own_client = client is None
        self.claims = BlobClaims()

    def _client(self) -> Any:
        if self.client is None:
            self.client = _client(self.dest.registry, self.profile, self.client_options)
        return self.client

    def push_image(self, image: Image, by_digest: bool, progress: bool | Progress | None = None,
                   own_client: bool = False) -> PushResult:
        """One image; with ``own_client`` on connections of its own (closed after), so
        its request count is its own while other images of the session push at once."""
        from ..manifest import Schema1Manifest
        from .engine import Pusher

        if isinstance(image.manifest, Schema1Manifest):
            from ..sources.remote.image import schema1_as_schema2

            image = schema1_as_schema2(image)
        clients: list[Any] = []

        def dedicated() -> Any:
            clients.append(_client(self.dest.registry, self.profile, self.client_options))
            return clients[-1]

        try:
            return Pusher(image, self.dest, self.profile, None if own_client else self.client,
                          self.cache, self.lookup,
                          progress=self.progress if progress is None else progress,
                          temp_dir=self.temp_dir,
                          client_factory=dedicated if own_client else self._client,
                          by_digest=by_digest, claims=self.claims).run()
        finally:
            for client in clients:
                client.close()

    def _push_children(self, index: ImageIndex, dest: RegistryReference) -> list[PushResult]:
        """Every image (or nested index) of ``index``, by digest: concurrently when the
        session owns its client, else one after another."""
        children = list(index.children)
        workers = min(PLATFORM_WORKERS, len(children)) if self.own_client else 1

        def one(child: Any, progress: Any = None, own: bool = False) -> PushResult:
            if isinstance(child, ImageIndex):
                return self.push_index(child, dest, nested=True)
            return self.push_image(child, by_digest=True, progress=progress, own_client=own)

        if workers <= 1:
            return [one(child) for child in children]
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        bars = Progress(self.progress, f"push {dest.repository}")
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="layerlab-platform") as pool:
                futures = [pool.submit(one, child, bars, True) for child in children]
                done, pending = wait(futures, return_when=FIRST_EXCEPTION)
                failed = [f for f in futures if f in done and f.exception() is not None]
                if failed:
                    for future in pending:
                        future.cancel()
                    wait(pending)
                    raise failed[0].exception()  # type: ignore[misc]
                return [f.result() for f in futures]
        finally:
            bars.close()

    def push_index(self, index: ImageIndex, dest: RegistryReference, nested: bool = False) -> PushResult:
        """Every image of ``index`` by digest, then the index itself (under the tag, or
        under its digest when ``nested``)."""
        from ..digest import digest_bytes
        from ..manifest import Descriptor, index_with_children
        from .result import EventLog

        log = EventLog()
        results = self._push_children(index, dest)
        events: list[Any] = []
        descriptors = []
        for result in results:
            offset = max(0.0, result.started_at - log.wall0)
            events.extend(dataclasses.replace(e, start=e.start + offset, end=e.end + offset)
                          for e in result.events)
            descriptors.append(Descriptor(result.media_type, Digest(result.manifest_digest),
                                          result.manifest_size))
        raw = index_with_children(index.manifest, descriptors)
        digest = digest_bytes(raw)
        reference = str(digest) if nested else dest.reference
        if not nested and dest.digest is not None and dest.digest != digest:
            raise PushError(f"cannot push to {dest}: the index's digest is {digest}")
        client = self._client()
        start = log.now()
        head = client.head_manifest(dest.repository, reference)
        if head is not None and head.digest == digest:
            outcome = "exists"
        else:
            try:
                returned = client.put_manifest(dest.repository, reference, raw, index.media_type)
            except RegistryProtocolError as exc:
                if exc.status in (200, 201):  # the registry stored something: say so
                    raise PushError(f"push to {dest}: {exc}") from exc
                raise
            if returned != digest:
                raise PushError(f"PUT index {dest}: registry says {returned}, pushed {digest}")
            outcome = "pushed"
        events.append(log.add("index", None, "manifest", start, bytes=len(raw) if outcome == "pushed" else 0,
                              outcome=outcome, detail=str(digest)))
        return PushResult(
            source=index.reference, destination=str(dest), manifest_digest=str(digest),
            media_type=index.media_type, profile=self.profile.name,
            layers=tuple(layer for r in results for layer in r.layers), config=None,
            manifest_outcome=outcome, events=tuple(events), wall_seconds=log.now(),
            requests=sum(r.requests for r in results) + 1 + (outcome == "pushed"),
            started_at=log.wall0,
            warnings=tuple(dict.fromkeys(w for r in results for w in r.warnings)),
            settings=results[0].settings if results else {}, manifest_size=len(raw),
            platforms=tuple(results))

    def close(self) -> None:
        if self.own_client and self.client is not None:
            self.client.close()


def copy(source: Image | ImageIndex | str, destination: str, *,
         profile: str | PushProfile = "fast", progress: bool = True,
         platform: str | None = None, all_platforms: bool = False, **options: Any) -> PushResult:
    """Copy an image between any two transports (skopeo's syntax for both).

    A registry destination (``docker://host/repo:tag``, or a bare ``host/repo:tag``) is a
    :func:`push` (registry to registry copies blobs as stored, mounting them when both
    are in the same registry; ``all_platforms`` copies a whole index).
    ``oci:DIR[:REF]``, ``oci-archive:PATH[:REF]`` and ``docker-archive:PATH[:NAME:TAG]``
    write locally (from a registry that is a pull, and feeds the digest cache); a whole
    index goes to an OCI layout only.
    """
    target = _parse_destination(destination)
    if isinstance(source, str):
        source = open_source(source, platform, all_platforms, options)
    if isinstance(target, RegistryReference):
        return push(source, target, profile=profile, progress=progress, **options)
    from .local import write_local

    return write_local(source, target, progress=progress, **options)


def open_source(reference: str, platform: str | None = None, all_platforms: bool = False,
                options: dict[str, Any] | None = None) -> Image | ImageIndex:
    """What a push or copy reads from ``reference``: the image of ``platform``, or with
    ``all_platforms`` the whole index when there is one. Of ``options``, the registry
    client's (``plain_http``, ``insecure``, ``auth``) are used to read a registry."""
    from ..sources import open_all_platforms, open_image

    remote = {k: v for k, v in (options or {}).items() if k in ("plain_http", "insecure", "auth")}
    if all_platforms:
        if platform:
            raise ValueError("all_platforms and platform exclude each other")
        return open_all_platforms(reference, **remote)
    return open_image(reference, platform=platform, **remote)


def _parse_destination(text: str):
    if text.startswith(("oci:", "oci-archive:", "docker-archive:", "docker://")):
        if text.startswith("docker-archive:"):
            rest = text[len("docker-archive:"):]
            path, sep, name = rest.partition(":")
            return ArchiveReference(path, name=name or None)
        return parse_reference(text)
    return _destination(text)


def _is_local(target: Any) -> bool:
    return isinstance(target, (ArchiveReference, LayoutReference))
