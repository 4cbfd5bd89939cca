"""Which source layers make each layer of a rewritten image, and when layers commute.

Layer indexes are 0-based, oldest first, as ``layerlab history`` numbers them. A rewrite
first groups layers (``merge`` runs, a ``target`` count from :func:`layer_advice`, or
``squash``: one group), then puts the groups in ``reorder`` order.

**Commute rule** (:func:`commute_conflicts`): two layers may change places only when
applying them in either order gives the same filesystem, which holds when neither
touches what the other touches:

* a path written by both is a conflict, except a directory both write with the same
  mode, owner and mtime;
* a path written by one under a non-directory path written by the other (a file, or a
  symlink that the tar path would traverse) is a conflict;
* a whiteout or opaque marker of one hiding a path the other writes (the path itself
  or anything under it) is a conflict;
* a hard link in one whose target the other writes is a conflict.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import RewriteError
from ..tarstream import TarEntry

__all__ = ["layer_groups", "check_order", "commute_conflicts"]


def layer_groups(n: int, *, merge: Sequence[Sequence[int]] | None = None,
                 target: int | None = None, squash: bool = False,
                 advice: object | None = None) -> list[list[int]]:
    """The groups of source layer indexes, one per output layer, in source order.

    ``merge``: runs of consecutive indexes to merge (``[[2, 3, 4]]``); ``target``: as
    many merges inside RUN runs as needed to get at most ``target`` layers, chosen by
    ``advice`` (a :class:`~layerlab.analysis.history.LayerAdvice`); ``squash``: all in
    one. Without any, each layer alone.
    """
    if squash:
        if merge or target is not None:
            raise RewriteError("squash merges every layer: give it without merge or target")
        return [list(range(n))] if n else []
    if target is not None and target < 1:
        raise RewriteError(f"target must be at least 1 layer, not {target}")
    if merge is None and target is None:
        return [[i] for i in range(n)]
    if merge is not None and target is not None:
        raise RewriteError("give merge groups or a target layer count, not both")
    if merge is not None:
        groups, covered = [], set()
        for group in merge:
            g = sorted(group)
            if not g or g != list(range(g[0], g[-1] + 1)) or g[0] < 0 or g[-1] >= n \
                    or covered & set(g):
                raise RewriteError(f"merge groups must be disjoint runs of layer indexes "
                                   f"0..{n - 1}, got {list(group)}")
            covered.update(g)
            groups.append(g)
        return sorted(groups + [[i] for i in range(n) if i not in covered])
    assert advice is not None
    groups = advice.merge_groups(target=target)  # type: ignore[attr-defined]
    return [list(g) for g in groups]


def check_order(order: Sequence[int], entries: Sequence[Sequence[TarEntry]]) -> None:
    """Raise :class:`RewriteError` unless ``order`` is a permutation of the groups whose
    ``entries`` are given, moving only layers that commute with every layer they pass."""
    n = len(entries)
    if sorted(order) != list(range(n)):
        raise RewriteError(f"reorder must list each of the {n} layers 0..{n - 1} once, "
                           f"got {list(order)}")
    rank = {group: place for place, group in enumerate(order)}
    for a in range(n):
        for b in range(a + 1, n):
            if rank[a] < rank[b]:
                continue
            conflicts = commute_conflicts(entries[a], entries[b])
            if conflicts:
                shown = ", ".join(conflicts[:3]) + (" ..." if len(conflicts) > 3 else "")
                raise RewriteError(f"layers {a} and {b} do not commute ({len(conflicts)} "
                                   f"shared paths: {shown}); they keep their order")


def _touches(entries: Sequence[TarEntry]) -> tuple[dict[str, TarEntry], set[str], set[str]]:
    """``(written path -> entry, hidden paths, hard-link targets)`` of one layer."""
    written: dict[str, TarEntry] = {}
    hidden: set[str] = set()
    links: set[str] = set()
    for e in entries:
        if e.whiteout is not None:
            hidden.add(e.whiteout)
            continue
        written[e.path] = e
        if e.type == "hardlink":
            links.add(e.linkname)
    return written, hidden, links


def _same_directory(a: TarEntry, b: TarEntry) -> bool:
    return (a.type == b.type == "dir" and a.mode == b.mode and a.uid == b.uid
            and a.gid == b.gid and a.mtime == b.mtime)


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _one_way(written: dict[str, TarEntry], hidden: set[str], links: set[str],
             other: dict[str, TarEntry]) -> list[str]:
    """Conflicts of a layer's own whiteouts, links and non-directories with ``other``'s
    writes (the shared-path check is done once, by the caller)."""
    out = []
    blockers = {p for p, e in written.items() if e.type != "dir"} | hidden
    for path in other:
        if path in hidden or path in links:
            out.append(path)
        elif any(parent in blockers for parent in _ancestors(path)):
            out.append(path)
    return out


def commute_conflicts(a: Sequence[TarEntry], b: Sequence[TarEntry]) -> list[str]:
    """The paths that stop layers ``a`` and ``b`` (entry lists) from changing places,
    sorted (empty: they commute; the rule is in the module docstring)."""
    wa, ha, la = _touches(a)
    wb, hb, lb = _touches(b)
    found = {p for p in wa.keys() & wb.keys() if not _same_directory(wa[p], wb[p])}
    found.update(_one_way(wa, ha, la, wb))
    found.update(_one_way(wb, hb, lb, wa))
    return sorted(found)
