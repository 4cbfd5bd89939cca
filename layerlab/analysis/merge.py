"""The size of a layer tar that would replace several consecutive layers.

Used by :mod:`layerlab.analysis.history` to tell what merging RUN layers gives: the tar
holds what the group leaves behind (later writes win, files deleted inside the group
vanish), plus the whiteouts and opaque markers still needed for the layers below, in
512-byte tar blocks, with pax headers where Python's ``tarfile`` (PAX format) would
write them (names or link targets over 100 bytes, or not ASCII).
"""

from __future__ import annotations

from typing import Any, Sequence

from ..tarstream import TarEntry
from .filesystem import MergedFilesystem

__all__ = ["merged_tar_size"]


def _pax_cost(path: str, is_dir: bool, linkname: str) -> int:
    """Bytes of a pax extended header Python's tarfile would add for long names."""
    records = 0
    for key, value, limit in (("path", path + ("/" if is_dir else ""), 100),
                              ("linkpath", linkname, 100)):
        if len(value) > limit or not value.isascii():
            body = f" {key}={value}\n".encode()
            n = len(body) + 1
            while len(str(n)) + len(body) > n:
                n += 1
            records += len(str(n)) + len(body)
    return 0 if not records else 512 + (records + 511) // 512 * 512


def _entry_blocks(entry: TarEntry) -> int:
    return (512 + (entry.size + 511) // 512 * 512
            + _pax_cost(entry.path, entry.type == "dir", entry.linkname))


_GONE = object()


def merged_tar_size(group: Sequence[Sequence[TarEntry]],
                    lower: MergedFilesystem | None) -> int:
    """Bytes of one tar holding what the layers of ``group`` leave behind on top of
    ``lower`` (the filesystem below them; ``None``: keep every whiteout)."""
    overlay: dict[str, Any] = {}
    opaque: set[str] = set()

    def drop_under(path: str) -> None:
        prefix = path + "/"
        for key in [k for k in overlay if k.startswith(prefix)]:
            del overlay[key]

    for entries in group:
        for e in entries:
            if e.whiteout is None:
                continue
            if e.opaque:
                drop_under(e.whiteout)
                opaque.add(e.whiteout)
            else:
                drop_under(e.whiteout)
                overlay[e.whiteout] = _GONE
        for e in entries:
            if e.whiteout is not None:
                continue
            old = overlay.get(e.path)
            if old is _GONE and e.type == "dir":
                opaque.add(e.path)
            elif isinstance(old, TarEntry) and old.type == "dir" and e.type != "dir":
                drop_under(e.path)
            overlay[e.path] = e
    total = 1024
    for path, value in overlay.items():
        if value is _GONE:
            if lower is None or path in lower:
                total += 512 + _pax_cost(path, False, "")
        else:
            total += _entry_blocks(value)
    for path in opaque:
        if lower is None or lower.descendants(path):
            total += 512
    return total
