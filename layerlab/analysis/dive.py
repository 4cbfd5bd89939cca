"""dive's efficiency figures, computed the way dive 0.13.1 computes them.

dive (wagoodman/dive) builds one file tree per layer from the tar headers and visits,
layer by layer, every *leaf* of each tree (files, links, empty directories, whiteouts),
in depth-first order with children sorted by name. For each leaf path it adds a size to
that path's cumulative size and keeps the smallest size seen:

* a regular leaf counts its tar header size;
* a whiteout ``.wh.NAME`` counts for ``NAME``: 0 if ``NAME`` was not a directory in the
  stack of the lower layers, else the sum of the sizes under it;
* opaque markers (``.wh..wh..opq``) are dropped: dive does not see opaque directories.

Then: ``efficiency = sum(smallest) / sum(cumulative)`` over all leaf paths (1.0 if
nothing), ``wasted_bytes = sum(cumulative)`` over the paths seen in two or more layers
(every copy counted, the kept one included), ``user_wasted_percent = wasted_bytes /
(image size - first layer size)``, where a layer's size is the sum of its tar header sizes.

Quirks reproduced on purpose so that the numbers match the binary: intermediate
directories that have no tar entry of their own take an empty payload (not a directory,
size 0), also when stacked over a real directory; and a whiteout whose target is absent
from the stacked lower layers stops the visit of the rest of that layer (dive logs the
error and moves on), leaving a smallest size of -1 for that path if it was new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..tarstream import TarEntry

__all__ = ["DivePath", "DiveFigures", "dive_figures"]

_WHITEOUT = ".wh."
_DOUBLE_WHITEOUT = ".wh..wh."
_LAST = "\U0010ffff"  # sorts after any path component: parents after their children


@dataclass(frozen=True)
class DivePath:
    """One path dive lists as inefficient: copies seen, their total and smallest size."""

    path: str
    count: int
    cumulative_size: int
    min_size: int


@dataclass(frozen=True)
class DiveFigures:
    """dive's numbers for one image (see the module docstring)."""

    efficiency: float
    wasted_bytes: int
    user_wasted_percent: float | None
    size_bytes: int
    user_size_bytes: int
    layer_sizes: tuple[int, ...]
    inefficient: tuple[DivePath, ...]
    aborted_layers: tuple[int, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"efficiency": self.efficiency, "wasted_bytes": self.wasted_bytes,
                "user_wasted_percent": self.user_wasted_percent,
                "size_bytes": self.size_bytes, "user_size_bytes": self.user_size_bytes}


# A layer tree is a flat dict: path -> entry (None for an implicit intermediate node).
LayerTree = dict[str, TarEntry | None]


def _layer_tree(entries: Sequence[TarEntry]) -> LayerTree:
    nodes: LayerTree = {}
    for entry in entries:
        path = entry.path
        if _DOUBLE_WHITEOUT in path:
            prefix = ""
            parts = path.split("/")
            for i, part in enumerate(parts):
                prefix = f"{prefix}/{part}" if prefix else part
                if prefix not in nodes:
                    if part.startswith(_DOUBLE_WHITEOUT):
                        break  # dive never adds these (nor anything below them)
                    nodes[prefix] = None
                if i == len(parts) - 1:
                    nodes[prefix] = entry
            continue
        parent = path.rpartition("/")[0]
        while parent and parent not in nodes:
            nodes[parent] = None
            parent = parent.rpartition("/")[0]
        nodes[path] = entry
    return nodes


def _sort_key(path: str) -> list[str]:
    return path.split("/")


def _post_order_key(path: str) -> list[str]:
    parts = path.split("/")
    parts.append(_LAST)
    return parts


def _is_whiteout(path: str) -> bool:
    return path.rpartition("/")[2].startswith(_WHITEOUT)


def _target(path: str) -> str:
    head, sep, name = path.rpartition("/")
    return head + sep + name[len(_WHITEOUT):]


class _Node:
    __slots__ = ("entry", "children")

    def __init__(self, entry: TarEntry | None) -> None:
        self.entry = entry
        self.children: dict[str, _Node] = {}

    def size(self) -> int:
        """Sizes of this node and everything under it."""
        total = self.entry.size if self.entry is not None else 0
        for child in self.children.values():
            total += child.size()
        return total


class _StackedTree:
    """dive's StackTreeRange result, kept up to date layer by layer."""

    def __init__(self, tree: LayerTree) -> None:
        self.root = _Node(None)
        for path in sorted(tree, key=_sort_key):
            self.add(path, tree[path])

    def add(self, path: str, entry: TarEntry | None) -> None:
        node = self.root
        for part in path.split("/"):
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node(None)
            node = child
        node.entry = entry

    def get(self, path: str) -> _Node | None:
        node: _Node | None = self.root
        for part in path.split("/"):
            node = node.children.get(part) if node is not None else None
            if node is None:
                return None
        return node

    def remove(self, path: str) -> None:
        head, _, name = path.rpartition("/")
        parent = self.get(head) if head else self.root
        if parent is not None:
            parent.children.pop(name, None)

    def stack(self, tree: LayerTree) -> None:
        for path in sorted(tree, key=_post_order_key):
            if _is_whiteout(path):
                self.remove(_target(path))
            else:
                self.add(path, tree[path])


def dive_figures(layers: Sequence[Sequence[TarEntry]]) -> DiveFigures:
    """dive's efficiency, wasted bytes and inefficient paths for layers given as entry
    lists (oldest first). Paths are reported without a leading ``/``."""
    layer_sizes = tuple(sum(e.size for e in entries) for entries in layers)
    trees = [_layer_tree(entries) for entries in layers]
    seen: dict[str, list[int]] = {}  # path -> [cumulative, smallest, count]
    aborted: list[int] = []
    last_whiteout_layer = max((i for i, tree in enumerate(trees)
                               if any(_is_whiteout(p) for p in tree)), default=-1)
    stacked: _StackedTree | None = None
    for index, tree in enumerate(trees):
        if index <= last_whiteout_layer:
            if stacked is None:
                stacked = _StackedTree(trees[0])
            if index >= 1:
                stacked.stack(trees[index - 1])
        parents = {p.rpartition("/")[0] for p in tree}
        leaves = [p for p in tree if p not in parents]
        leaves.sort(key=_sort_key)
        for path in leaves:
            if _is_whiteout(path):
                key = _target(path)
                node = stacked.get(key) if stacked is not None else None
                if node is None:
                    if key not in seen:
                        seen[key] = [0, -1, 0]
                    aborted.append(index)
                    break
                entry = node.entry
                size = node.size() if entry is not None and entry.type == "dir" else 0
            else:
                key = path
                entry = tree[path]
                size = entry.size if entry is not None else 0
            data = seen.get(key)
            if data is None:
                seen[key] = [size, size, 1]
            else:
                data[0] += size
                if data[1] < 0 or size < data[1]:
                    data[1] = size
                data[2] += 1
    smallest = sum(d[1] for d in seen.values())
    cumulative = sum(d[0] for d in seen.values())
    score = smallest / cumulative if cumulative else 1.0
    inefficient = tuple(sorted(
        (DivePath(path, d[2], d[0], d[1]) for path, d in seen.items() if d[2] >= 2),
        key=lambda p: (-p.cumulative_size, p.path)))
    wasted = sum(p.cumulative_size for p in inefficient)
    size = sum(layer_sizes)
    user_size = size - (layer_sizes[0] if layer_sizes else 0)
    return DiveFigures(
        efficiency=score, wasted_bytes=wasted,
        user_wasted_percent=wasted / user_size if user_size else None,
        size_bytes=size, user_size_bytes=user_size, layer_sizes=layer_sizes,
        inefficient=inefficient, aborted_layers=tuple(aborted))
