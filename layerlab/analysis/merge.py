"""What one layer tar that replaces several consecutive layers holds, and its size.

:func:`plan_merge` decides, entry by entry, what the merged tar keeps: what the group
leaves behind (later writes win, files deleted inside the group vanish), plus the
whiteouts and opaque markers still needed for the layers below. :mod:`layerlab.mutate`
writes that tar; :func:`merged_tar_size` says how big it is without writing it (used by
:mod:`layerlab.analysis.history` to tell what merging RUN layers gives): 512-byte tar
blocks, pax headers where Python's ``tarfile`` (PAX format) writes them (names or link
targets over 100 bytes, or not ASCII), and the 1,024-byte end-of-archive marker, no
record padding (as Go's ``archive/tar`` and layerlab's rewrite write layers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..tarstream import OPAQUE_MARKER, WHITEOUT_PREFIX, TarEntry
from .filesystem import MergedFilesystem

__all__ = ["MergePlan", "plan_merge", "merged_tar_size", "whiteout_name", "opaque_name"]

Position = tuple[int, int]
"""``(layer position in the group, entry ordinal in that layer's tar)``."""


@dataclass
class MergePlan:
    """What the merged tar holds.

    ``keep``: the source entries written, by position (in group order, then tar order).
    ``whiteouts``: paths hidden in the layers below (written as ``.wh.`` entries);
    ``opaque``: directories whose lower contents are hidden (``.wh..wh..opq``).
    ``copies``: hard links whose target, as it was when the link was made, is not kept
    (overwritten later in the group): the link is written as a regular file holding the
    bytes of that target entry (link position -> target position).
    """

    keep: list[Position] = field(default_factory=list)
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    copies: dict[Position, Position] = field(default_factory=dict)


_GONE = object()


def plan_merge(group: Sequence[Sequence[TarEntry]],
               lower: MergedFilesystem | None = None, keep_whiteouts: bool = True) -> MergePlan:
    """Plan the tar replacing the layers of ``group`` (entry lists, oldest first).

    ``lower`` is the filesystem below the group: whiteouts and opaque markers that hide
    nothing there are dropped. Without it every one is kept (``keep_whiteouts``), or
    none (``keep_whiteouts=False``: nothing lies below, as when squashing a whole image).
    """
    overlay: dict[str, object] = {}  # path -> Position of the entry winning so far, or _GONE
    opaque: set[str] = set()
    link_targets: dict[Position, Position] = {}

    def drop_under(path: str) -> None:
        prefix = path + "/"
        for key in [k for k in overlay if k.startswith(prefix)]:
            del overlay[key]
        for key in [k for k in opaque if k.startswith(prefix)]:
            opaque.discard(key)

    def revive_parents(path: str) -> None:
        # a path written under a deleted directory recreates the directory: it then
        # hides whatever the layers below had in it
        parent = path.rpartition("/")[0]
        while parent:
            if overlay.get(parent) is _GONE:
                del overlay[parent]
                opaque.add(parent)
            parent = parent.rpartition("/")[0]

    for layer, entries in enumerate(group):
        for e in entries:
            if e.whiteout is None:
                continue
            drop_under(e.whiteout)
            if e.opaque:
                opaque.add(e.whiteout)
            else:
                overlay[e.whiteout] = _GONE
        for ordinal, e in enumerate(entries):
            if e.whiteout is not None:
                continue
            old = overlay.get(e.path)
            if old is _GONE and e.type == "dir":
                opaque.add(e.path)
            elif isinstance(old, tuple) and group[old[0]][old[1]].type == "dir" \
                    and e.type != "dir":
                drop_under(e.path)
            revive_parents(e.path)
            if e.type == "hardlink":
                target = overlay.get(e.linkname)
                if isinstance(target, tuple):
                    link_targets[(layer, ordinal)] = target
            overlay[e.path] = (layer, ordinal)

    plan = MergePlan()
    plan.keep = sorted(v for v in overlay.values() if isinstance(v, tuple))  # type: ignore[misc]
    kept = set(plan.keep)
    plan.copies = {link: target for link, target in link_targets.items()
                   if link in kept and target not in kept}
    for path, value in overlay.items():
        if value is _GONE and (lower is not None and path in lower
                               or lower is None and keep_whiteouts):
            plan.whiteouts.append(path)
    for path in sorted(opaque):
        if lower is not None and lower.descendants(path) or lower is None and keep_whiteouts:
            plan.opaque.append(path)
    return plan


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


def merged_tar_size(group: Sequence[Sequence[TarEntry]],
                    lower: MergedFilesystem | None) -> int:
    """Bytes of one tar holding what the layers of ``group`` leave behind on top of
    ``lower`` (the filesystem below them; ``None``: keep every whiteout)."""
    plan = plan_merge(group, lower)
    total = 1024
    for layer, ordinal in plan.keep:
        entry = group[layer][ordinal]
        copied = plan.copies.get((layer, ordinal))
        if copied is not None:  # written as a regular file with the target's bytes
            size = group[copied[0]][copied[1]].size
            entry = entry._replace(type="file", size=size, linkname="")
        total += _entry_blocks(entry)
    for path in plan.whiteouts:
        total += 512 + _pax_cost(whiteout_name(path), False, "")
    for path in plan.opaque:
        total += 512 + _pax_cost(opaque_name(path), False, "")
    return total


def whiteout_name(path: str) -> str:
    """The tar name of the whiteout hiding ``path``."""
    parent, _, base = path.rpartition("/")
    return f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else f"{WHITEOUT_PREFIX}{base}"


def opaque_name(directory: str) -> str:
    """The tar name of the opaque marker of ``directory``."""
    return f"{directory}/{OPAQUE_MARKER}"
