"""When two layers commute: applied in either order, they give the same filesystem.

The rule, exactly. A layer's *paths* are its tar entries' paths as listed (no implied
parents: a parent directory the tar does not list is not a path of that layer), and a
whiteout ``dir/.wh.name`` or an opaque marker ``dir/.wh..wh..opq`` is an entry at its
own path too. Layers X and Y do **not** commute when, one way round or the other:

1. **same path**: both have an entry at a path ``p``, unless both entries are
   directories with the same mode, uid, gid and mtime (the directory is then the same
   whichever is applied last);
2. **nesting**: X has a non-directory entry at ``p`` and Y an entry below ``p``
   (``p/...``): one of them replaces the other's parent;
3. **whiteout**: X whites out ``w`` (``.wh.`` entry) or has an opaque marker on ``w``,
   and Y has an entry at ``w`` or below it (with X above Y the entry is hidden, with Y
   above X it is visible; an opaque directory's own entry is counted too, to be safe);
4. **hard link**: X has a hard link whose target is a path Y has an entry at.

Every other pair commutes: their paths are disjoint apart from identical directories,
and neither deletes or hides what the other writes. Marker entries count as paths, so
two layers whiting out the same path do not commute either (stricter than needed, never
looser). ``layerlab.rewrite`` checks its ``reorder`` with this rule, and the layer-order
advice proposes only orders it allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ..tarstream import TarEntry

__all__ = ["LayerPaths", "conflict"]


@dataclass(frozen=True)
class LayerPaths:
    """What the commute rule needs of one layer: its entries' metadata by path, the
    proper ancestors of those paths, what it whites out or makes opaque, its hard links'
    targets, its non-directory paths, and ``touched``: entry paths and their ancestors
    (every path the layer has something at or below)."""

    entries: Mapping[str, tuple[str, int, int, int, float]]
    ancestors: frozenset[str]
    whiteouts: frozenset[str]
    opaque: frozenset[str]
    link_targets: frozenset[str]
    non_directories: frozenset[str]
    touched: frozenset[str]

    @classmethod
    def of(cls, entries: Iterable[TarEntry]) -> "LayerPaths":
        """From a layer's tar entries (:meth:`layerlab.model.Layer.entries`)."""
        meta: dict[str, tuple[str, int, int, int, float]] = {}
        ancestors: set[str] = set()
        whiteouts: set[str] = set()
        opaque: set[str] = set()
        links: set[str] = set()
        for e in entries:
            meta[e.path] = (e.type, e.mode, e.uid, e.gid, e.mtime)
            parts = e.path.split("/")
            ancestors.update("/".join(parts[:i]) for i in range(1, len(parts)))
            if e.whiteout is not None:
                (opaque if e.opaque else whiteouts).add(e.whiteout)
            elif e.type == "hardlink":
                links.add(e.linkname)
        return cls(meta, frozenset(ancestors), frozenset(whiteouts), frozenset(opaque),
                   frozenset(links), frozenset(p for p, m in meta.items() if m[0] != "dir"),
                   frozenset(meta.keys() | ancestors))


def _one_way(x: LayerPaths, y: LayerPaths) -> str | None:
    # set intersections, not loops over entries: the advice checks every pair of layers
    nested = sorted(x.non_directories & y.ancestors)
    if nested:
        return (f"{nested[0]} is a {x.entries[nested[0]][0]} in one layer and a parent "
                "directory in the other")
    hidden = sorted(x.whiteouts & y.touched)
    if hidden:
        return f"one layer whites out {hidden[0]}, which the other writes"
    opaque = sorted(x.opaque & y.touched)
    if opaque:
        return f"one layer makes {opaque[0]} opaque, and the other writes it or below it"
    linked = sorted(x.link_targets & y.entries.keys())
    if linked:
        return f"one layer hard-links to {linked[0]}, which the other writes"
    return None


def conflict(x: LayerPaths, y: LayerPaths) -> str | None:
    """Why layers ``x`` and ``y`` do not commute (one line), or ``None`` when they do
    (see the module docstring for the rule)."""
    for path in sorted(x.entries.keys() & y.entries.keys()):
        a, b = x.entries[path], y.entries[path]
        if not (a[0] == b[0] == "dir" and a == b):
            what = "directory with other metadata" if a[0] == b[0] == "dir" else "entry"
            return f"both layers have {path} ({what})"
    return _one_way(x, y) or _one_way(y, x)
