"""Wasted space: dive's efficiency figures, and what really happened to each wasted path.

:func:`efficiency` reads only tar headers. It reports dive's three figures exactly as
dive computes them (see :mod:`layerlab.analysis.dive`), and beside them:

* ``corrected_wasted_bytes``: for the paths dive lists, all copies minus the copy the
  image keeps (0 if the path is gone) - the figure dive's issue 684 asks for;
* ``unreachable_bytes``: every byte of file content stored in the layers that the final
  filesystem cannot reach (overwritten, deleted, hidden by an opaque directory, replaced
  by a directory), including what dive does not see;
* for each wasted path, every write: which layer wrote it, its size, and which layer
  overwrote, deleted or hid it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import Image
from ..units import format_size
from ._present import html_block, html_table, image_label, percent
from .dive import dive_figures
from .filesystem import MergedFilesystem
from .scan import scan_layers

__all__ = ["PathWrite", "WastedPath", "Efficiency", "efficiency"]


@dataclass(frozen=True)
class PathWrite:
    """One write of a path by a layer, and its fate (``kept``, ``overwritten``,
    ``deleted``, ``hidden`` or ``replaced``) with the layer that decided it."""

    layer: int
    size: int
    type: str
    fate: str
    by_layer: int | None

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "size": self.size, "type": self.type,
                "fate": self.fate, "by_layer": self.by_layer}


@dataclass(frozen=True)
class WastedPath:
    """A path that costs bytes it does not keep.

    ``count``, ``cumulative_size`` and ``min_size`` are dive's (copies seen, their total,
    the smallest); ``kept_size`` is the size in the final image (0 if gone);
    ``wasted_size = cumulative_size - kept_size``; ``writes`` tells the story.
    """

    path: str
    count: int
    cumulative_size: int
    min_size: int
    kept_size: int
    wasted_size: int
    writes: tuple[PathWrite, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "count": self.count,
                "cumulative_size": self.cumulative_size, "min_size": self.min_size,
                "kept_size": self.kept_size, "wasted_size": self.wasted_size,
                "writes": [w.to_json() for w in self.writes]}


@dataclass(frozen=True)
class Efficiency:
    """The wasted-space report of one image (see the module docstring).

    dive's figures: ``efficiency`` (0-1), ``wasted_bytes``, ``user_wasted_percent`` (0-1,
    ``None`` when every byte is in the first layer), ``size_bytes`` (sum of tar entry
    sizes), ``user_size_bytes`` (the same without the first layer) and
    ``inefficient_paths`` (dive's list, largest first). layerlab's additions:
    ``corrected_wasted_bytes``, ``unreachable_bytes`` and ``unlisted_paths`` (paths whose
    bytes are unreachable but that dive does not list, such as files hidden by an opaque
    directory).
    """

    reference: str
    name: str | None
    efficiency: float
    wasted_bytes: int
    user_wasted_percent: float | None
    size_bytes: int
    user_size_bytes: int
    corrected_wasted_bytes: int
    unreachable_bytes: int
    inefficient_paths: tuple[WastedPath, ...]
    unlisted_paths: tuple[WastedPath, ...] = ()
    layer_sizes: tuple[int, ...] = ()
    layer_created_by: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The ``layerlab efficiency --json`` shape (see the CLI help)."""
        return {
            "reference": self.reference,
            "name": self.name,
            "efficiency": self.efficiency,
            "wasted_bytes": self.wasted_bytes,
            "user_wasted_percent": self.user_wasted_percent,
            "size_bytes": self.size_bytes,
            "user_size_bytes": self.user_size_bytes,
            "corrected_wasted_bytes": self.corrected_wasted_bytes,
            "unreachable_bytes": self.unreachable_bytes,
            "layers": [{"index": i, "size_bytes": size, "created_by": by}
                       for i, (size, by) in enumerate(zip(self.layer_sizes,
                                                          self.layer_created_by))],
            "inefficient_paths": [p.to_json() for p in self.inefficient_paths],
            "unlisted_paths": [p.to_json() for p in self.unlisted_paths],
            "warnings": list(self.warnings),
        }

    def to_frame(self):
        """One row per wasted path (dive's list, then the unlisted ones)."""
        import pandas as pd

        rows = []
        for listed, paths in ((True, self.inefficient_paths), (False, self.unlisted_paths)):
            for p in paths:
                rows.append({
                    "path": p.path, "dive_listed": listed, "count": p.count,
                    "cumulative_size": p.cumulative_size, "min_size": p.min_size,
                    "kept_size": p.kept_size, "wasted_size": p.wasted_size,
                    "written_by": [w.layer for w in p.writes],
                    "removed_by": sorted({w.by_layer for w in p.writes if w.by_layer is not None}),
                })
        columns = ["path", "dive_listed", "count", "cumulative_size", "min_size",
                   "kept_size", "wasted_size", "written_by", "removed_by"]
        return pd.DataFrame(rows, columns=columns)

    def plot(self, top: int = 20):
        """A horizontal bar chart of the ``top`` wasted paths: dive's cumulative size next
        to the corrected (reclaimable) size."""
        import plotly.graph_objects as go

        paths = sorted(self.inefficient_paths + self.unlisted_paths,
                       key=lambda p: (-p.wasted_size, p.path))[:top][::-1]
        fig = go.Figure()
        fig.add_bar(y=[p.path for p in paths], x=[p.cumulative_size for p in paths],
                    orientation="h", name="dive: all copies")
        fig.add_bar(y=[p.path for p in paths], x=[p.wasted_size for p in paths],
                    orientation="h", name="reclaimable (all copies - kept)")
        fig.update_layout(barmode="group", title=f"Wasted space in {self.name or self.reference}",
                          xaxis_title="bytes", height=200 + 25 * len(paths))
        return fig

    def summary(self) -> str:
        return (f"efficiency {self.efficiency * 100:.4f} %, wasted {format_size(self.wasted_bytes)} "
                f"(user wasted {percent(self.user_wasted_percent)}), corrected "
                f"{format_size(self.corrected_wasted_bytes)}, unreachable "
                f"{format_size(self.unreachable_bytes)}")

    def __repr__(self) -> str:
        return (f"<Efficiency {self.name or self.reference}: {self.efficiency:.4f}, "
                f"wasted {self.wasted_bytes} bytes, {len(self.inefficient_paths)} paths>")

    def _repr_html_(self) -> str:
        rows = [(p.path, p.count, format_size(p.cumulative_size), format_size(p.kept_size),
                 format_size(p.wasted_size),
                 ", ".join(f"{w.layer}:{w.fate}" + (f"@{w.by_layer}" if w.by_layer is not None else "")
                           for w in p.writes))
                for p in self.inefficient_paths + self.unlisted_paths]
        return html_block(f"Efficiency of {self.name or self.reference}", self.summary(),
                          html_table(["path", "count", "all copies", "kept", "wasted",
                                      "writes (layer:fate@by)"], rows, "lrrrrl"))


def _writes(fs: MergedFilesystem, path: str) -> tuple[PathWrite, ...]:
    return tuple(PathWrite(w.layer, w.size, w.type, w.fate, w.by_layer)
                 for w in fs.writes.get(path, ()))


def _kept_size(fs: MergedFilesystem, path: str) -> int:
    state = fs.get(path)
    return state.entry.size if state is not None else 0


def efficiency(image: Image, *, workers: int | None = None) -> Efficiency:
    """The wasted-space report of ``image`` (headers only; remote layers are streamed)."""
    scans = scan_layers(image.layers, workers=workers)
    layer_entries = [scan.entries for scan in scans]
    figures = dive_figures(layer_entries)
    fs = MergedFilesystem(track=True)
    for index, entries in enumerate(layer_entries):
        fs.apply(entries, index)

    listed = []
    for p in figures.inefficient:
        kept = _kept_size(fs, p.path)
        listed.append(WastedPath(p.path, p.count, p.cumulative_size, p.min_size, kept,
                                 max(0, p.cumulative_size - kept), _writes(fs, p.path)))
    listed_paths = {p.path for p in listed}
    unlisted = []
    unreachable = 0
    for path, writes in fs.writes.items():
        lost = sum(w.size for w in writes if w.fate != "kept")
        unreachable += lost
        if lost and path not in listed_paths:
            sizes = [w.size for w in writes]
            kept = _kept_size(fs, path)
            unlisted.append(WastedPath(path, len(writes), sum(sizes), min(sizes), kept,
                                       sum(sizes) - kept, _writes(fs, path)))
    unlisted.sort(key=lambda p: (-p.wasted_size, p.path))
    warnings = list(fs.warnings)
    if figures.aborted_layers:
        warnings.append("a whiteout for a path absent from the lower layers stopped dive's "
                        f"count in layer(s) {', '.join(map(str, figures.aborted_layers))} "
                        "(reproduced, as dive does)")
    return Efficiency(
        reference=image.reference, name=image.name or image_label(image),
        efficiency=figures.efficiency, wasted_bytes=figures.wasted_bytes,
        user_wasted_percent=figures.user_wasted_percent, size_bytes=figures.size_bytes,
        user_size_bytes=figures.user_size_bytes,
        corrected_wasted_bytes=sum(p.wasted_size for p in listed),
        unreachable_bytes=unreachable, inefficient_paths=tuple(listed),
        unlisted_paths=tuple(unlisted), layer_sizes=figures.layer_sizes,
        layer_created_by=tuple(layer.created_by for layer in image.layers),
        warnings=tuple(warnings))

