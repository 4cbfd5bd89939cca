"""Which source layers make each layer of a rewritten image, and when layers commute.

Layer indexes are 0-based, oldest first, as ``layerlab history`` numbers them. A rewrite
first groups layers (``merge`` runs, a ``target`` count from :func:`layer_advice`, or
``squash``: one group), then puts the groups in ``reorder`` order.

Layers move only where they commute, by the rule of :mod:`layerlab.analysis.commute`
(the one the layer-order advice uses too).
"""

from __future__ import annotations

from typing import Sequence

from ..analysis.commute import LayerPaths, conflict
from ..errors import RewriteError
from ..tarstream import TarEntry

__all__ = ["layer_groups", "check_order"]


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
    paths = [LayerPaths.of(layer_entries) for layer_entries in entries]
    for a in range(n):
        for b in range(a + 1, n):
            if rank[a] < rank[b]:
                continue
            reason = conflict(paths[a], paths[b])
            if reason is not None:
                raise RewriteError(f"layers {a} and {b} do not commute ({reason}); "
                                   "they keep their order")
