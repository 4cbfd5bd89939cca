"""``layerlab.push`` and ``layerlab.copy``: the public entry points."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import LayerlabError, PushError
from ..model import Image
from ..reference import ArchiveReference, LayoutReference, RegistryReference, parse_reference
from .cache import DigestCache
from .lean import LeanClient, lean_eligible
from .profiles import PushProfile, get_profile
from .result import PushResult

__all__ = ["push", "copy", "CLIENT_OPTIONS"]

CLIENT_OPTIONS = frozenset({"plain_http", "insecure", "auth", "docker_config", "timeout"})
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


def push(image: Image | str, destination: str | RegistryReference, *,
         profile: str | PushProfile = "fast", progress: bool = True,
         cache: bool | DigestCache | str | Path = True, cache_dir: str | Path | None = None,
         lookup: Sequence[str] = (), platform: str | None = None, temp_dir: str | None = None,
         client: Any = None, **options: Any) -> PushResult:
    """Push an image to a registry; return a :class:`PushResult`.

    ``image`` is an :class:`Image` or any reference layerlab reads (docker-archive, OCI
    layout or archive, another registry). ``destination`` is ``host/repo:tag`` (or
    ``docker://...``, or ``host/repo@sha256:...``). ``profile`` is ``fast`` (default),
    ``docker``, ``docker-1.7``, ``serial`` or a :class:`PushProfile`; keyword ``options``
    override its fields (``workers``/``concurrency``, ``level``, ``engine``,
    ``compression``, ``upload``, ``chunk_size``, ``format``/``manifest_format``,
    ``check_existing``, ``registry_lookup``, ``mount``, ``temp_file``, ``retries``,
    ``retry_backoff``, ``threads``/``compress_threads``...) or configure the registry client
    (``plain_http``, ``insecure``, ``auth=(user, password)``, ``docker_config``,
    ``timeout``). ``cache`` (default on) is the local digest cache, in ``cache_dir`` or
    the default directory (see :mod:`layerlab.push.cache`); ``lookup`` lists more
    ``repo:tag`` references of the destination registry whose layers may be reused.

    Raises :class:`PushError` (its ``__cause__`` is the underlying registry, digest or
    source error); no manifest is written unless every blob was confirmed.
    """
    from .pusher import Pusher

    base = get_profile(profile)
    changes, client_options = _split(options)
    try:
        chosen = base.with_options(**changes) if changes else base
    except TypeError as exc:
        raise ValueError(f"unknown push option: {exc}") from None
    dest = _destination(destination)
    if isinstance(image, str):
        from ..sources import open_image

        image = open_image(image, platform=platform)
    own_client = client is None
    lean = None
    if own_client and "auth" not in client_options and lean_eligible(dest.registry, client_options):
        lean = LeanClient(dest.registry, timeout=client_options.get("timeout", 30.0))
    pusher = Pusher(image, dest, chosen, client, _cache(cache, cache_dir), tuple(lookup),
                    progress=progress, temp_dir=temp_dir, lean=lean,
                    client_factory=lambda: _client(dest.registry, chosen, client_options))
    try:
        return pusher.run()
    except PushError:
        raise
    except LayerlabError as exc:
        raise PushError(f"push of {image.reference} to {dest} failed, no manifest written: "
                        f"{exc}") from exc
    finally:
        if lean is not None:
            lean.close()
        if own_client and pusher._client is not None:
            pusher._client.close()


def copy(source: Image | str, destination: str, *, profile: str | PushProfile = "fast",
         progress: bool = True, platform: str | None = None, **options: Any) -> PushResult:
    """Copy an image between any two transports (skopeo's syntax for both).

    A registry destination (``docker://host/repo:tag``, or a bare ``host/repo:tag``) is a
    :func:`push` (registry to registry copies blobs as stored, mounting them when both
    are in the same registry). ``oci:DIR[:REF]``, ``oci-archive:PATH[:REF]`` and
    ``docker-archive:PATH[:NAME:TAG]`` write locally (from a registry that is a pull).
    """
    if isinstance(source, str):
        from ..sources import open_image

        source = open_image(source, platform=platform)
    target = _parse_destination(destination)
    if isinstance(target, RegistryReference):
        return push(source, target, profile=profile, progress=progress, **options)
    from .local import write_local

    return write_local(source, target, progress=progress, **options)


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
