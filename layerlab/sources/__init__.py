"""Where images come from and go to: one module per medium.

* :mod:`.tarball` - docker-save archives (classic and Docker >= 25 layouts);
* :mod:`.layout` - OCI image layouts, as a directory or a tar (``oci-archive``);
* :mod:`.remote` - any v2 registry.

:func:`open_image` and :func:`list_images` dispatch on the parsed reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..digest import Digest
from ..model import Image, ImageIndex
from ..platform import Platform
from ..reference import ArchiveReference, LayoutReference, Reference, parse_reference

__all__ = ["ImageSummary", "open_image", "open_all_platforms", "list_images"]


@dataclass(frozen=True)
class ImageSummary:
    """One entry of :func:`list_images`: an image (or index) held by an archive, layout
    or registry repository, and the reference that opens it."""

    reference: str
    name: str | None
    digest: Digest | None
    media_type: str | None
    platforms: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "name": self.name,
                "digest": str(self.digest) if self.digest else None,
                "media_type": self.media_type, "platforms": list(self.platforms)}


def _parse(ref: str | Reference) -> Reference:
    return parse_reference(ref) if isinstance(ref, str) else ref


def open_image(ref: str | Reference, platform: str | Platform | None = None,
               **options: Any) -> Image:
    """Open one image from any reference (see :mod:`layerlab.reference`).

    ``platform`` picks an image out of an index or manifest list (default: the host's).
    ``options`` go to the remote client for registry references (``plain_http``,
    ``insecure``, ``auth``, ...). Raises a :class:`~layerlab.errors.LayerlabError`.
    """
    parsed = _parse(ref)
    if isinstance(parsed, ArchiveReference):
        from .tarball import open_archive_image

        return open_archive_image(parsed, platform=platform)
    if isinstance(parsed, LayoutReference):
        from .layout import open_layout_image

        return open_layout_image(parsed, platform=platform)
    from .remote import open_remote_image

    return open_remote_image(parsed, platform=platform, **options)


def open_all_platforms(ref: str | Reference, **options: Any) -> Image | ImageIndex:
    """Open everything a reference names: an :class:`~layerlab.model.ImageIndex` holding
    every platform's image when it names an index or manifest list, else the one
    :class:`Image` (a docker-save archive holds single images). ``options`` as for
    :func:`open_image`. This is what ``layerlab push --all`` and ``copy --all`` push."""
    parsed = _parse(ref)
    if isinstance(parsed, ArchiveReference):
        return open_image(parsed)
    if isinstance(parsed, LayoutReference):
        from .layout import open_layout_all

        return open_layout_all(parsed)
    from .remote import open_remote_all

    return open_remote_all(parsed, **options)


def list_images(ref: str | Reference, **options: Any) -> list[ImageSummary]:
    """What an archive, a layout or a registry repository holds (its images or tags)."""
    parsed = _parse(ref)
    if isinstance(parsed, ArchiveReference):
        from .tarball import list_archive_images

        return list_archive_images(parsed)
    if isinstance(parsed, LayoutReference):
        from .layout import list_layout_images

        return list_layout_images(parsed)
    from .remote import list_remote_images

    return list_remote_images(parsed, **options)
