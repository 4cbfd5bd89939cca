"""Turning stored blobs into :class:`~layerlab.model.Layer` and
:class:`~layerlab.model.Image` values: shared by the docker-archive and OCI layout readers.
"""

from __future__ import annotations

import functools
from typing import Sequence

from .. import mediatypes as mt
from ..config import ImageConfig, parse_config
from ..digest import Digest, digest_bytes
from ..errors import (DigestMismatchError, InvalidManifestError, MissingBlobError,
                      SizeMismatchError, UnknownMediaTypeError)
from ..manifest import Descriptor
from ..model import Layer
from ..platform import Platform
from ._archive import Tree

__all__ = ["blob_name", "read_verified", "load_config", "make_layer", "compression_warning",
           "check_layer_count", "same_name", "platform_warning"]


def blob_name(digest: Digest) -> str:
    """Where an OCI layout stores a blob: ``blobs/<algorithm>/<hex>``."""
    return f"blobs/{digest.algorithm}/{digest.hex}"


def read_verified(tree: Tree, name: str, digest: Digest, size: int | None, what: str) -> bytes:
    """Read a small blob and check its size and digest; errors name ``what`` and the file."""
    actual_size = tree.size(name)
    if actual_size is None:
        raise MissingBlobError(f"{tree.label}: {what} {digest} is missing ({name})")
    if size is not None and actual_size != size:
        raise SizeMismatchError(f"{tree.label}: {what} {digest} ({name})", size, actual_size)
    data = tree.read(name)
    actual = digest_bytes(data, digest.algorithm)
    if actual != digest:
        raise DigestMismatchError(f"{tree.label}: {what} ({name})", digest, actual)
    return data


def load_config(tree: Tree, name: str, descriptor: Descriptor) -> ImageConfig:
    """The verified, parsed image config named by ``descriptor``."""
    if descriptor.media_type not in mt.CONFIGS:
        raise UnknownMediaTypeError(
            f"{tree.label}: config {descriptor.digest} has media type "
            f"{descriptor.media_type!r}, not a container image config")
    raw = read_verified(tree, name, descriptor.digest, descriptor.size, "config")
    return parse_config(raw, descriptor.media_type, what=f"{tree.label}: config {descriptor.digest}",
                        digest=descriptor.digest)


def check_layer_count(config: ImageConfig, layers: Sequence[object], where: str) -> None:
    if len(config.diff_ids) != len(layers):
        raise InvalidManifestError(
            f"{where}: {len(layers)} layers but the config lists {len(config.diff_ids)} diff_ids")


def compression_warning(digest: Digest, media_type: str, actual: str) -> str | None:
    """A warning when ``media_type`` claims another compression than the bytes have."""
    claimed = mt.layer_compression(media_type)
    if claimed == actual:
        return None
    return f"layer {digest}: media type says {claimed} but the bytes are {actual}"


def make_layer(tree: Tree, name: str, descriptor: Descriptor, diff_id: Digest | None,
               history, *, compression: str | None = None) -> tuple[Layer, str | None]:
    """A :class:`Layer` for the blob ``name`` of ``tree`` described by ``descriptor``.

    The blob must exist with the declared size (a foreign layer with ``urls`` may be
    absent). Its compression is sniffed from the first bytes unless given. Returns the
    layer and a warning when the media type lies about the compression.
    """
    if not mt.is_layer(descriptor.media_type):
        raise UnknownMediaTypeError(
            f"{tree.label}: layer {descriptor.digest} has unknown media type {descriptor.media_type!r}")
    actual_size = tree.size(name)
    if actual_size is None:
        if not descriptor.urls:
            raise MissingBlobError(f"{tree.label}: layer {descriptor.digest} is missing ({name})")
        compression = compression or mt.layer_compression(descriptor.media_type)
    elif actual_size != descriptor.size:
        raise SizeMismatchError(f"{tree.label}: layer {descriptor.digest} ({name})",
                                descriptor.size, actual_size)
    if compression is None:
        compression = mt.detect_compression(tree.head(name, 4))
    warning = compression_warning(descriptor.digest, descriptor.media_type, compression)
    layer = Layer(
        digest=descriptor.digest,
        diff_id=diff_id,
        size=descriptor.size,
        media_type=descriptor.media_type,
        uncompressed_size=descriptor.size if compression == "none" else None,
        compression=compression,
        history=history,
        annotations=descriptor.annotations,
        urls=descriptor.urls,
        opener=functools.partial(tree.open, name),
        seekable=True,
    )
    return layer, warning


def same_name(candidate: str | None, wanted: str) -> bool:
    """Do two image names mean the same repository and tag (``app:v1`` vs
    ``docker.io/library/app:v1``)?"""
    if not candidate:
        return False
    if candidate == wanted:
        return True
    from ..errors import InvalidReferenceError
    from ..reference import parse_registry_reference

    try:
        return str(parse_registry_reference(candidate)) == str(parse_registry_reference(wanted))
    except InvalidReferenceError:
        return False


def platform_warning(config: ImageConfig, wanted: Platform | str | None) -> str | None:
    """A warning when a platform was asked for but the (single-platform) image has another."""
    if wanted is None:
        return None
    target = Platform.parse(wanted) if isinstance(wanted, str) else wanted
    if config.platform.matches(target):
        return None
    return (f"platform {target} was asked for, but this is a single-platform image "
            f"for {config.platform}")
