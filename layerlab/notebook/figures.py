"""Plotly figures for images, layers, pushes and simulations.

Every function takes plain data (a long-form pandas DataFrame, or anything
:func:`~layerlab.notebook.frames.as_frame` turns into one: Images, result objects) and
returns a ``plotly.graph_objects.Figure``. A layer has the same colour in every figure
(:func:`~layerlab.notebook.colors.layer_color`, keyed by diff_id).

Image figures: :func:`layer_sizes_figure`, :func:`shared_heatmap_figure`,
:func:`files_treemap_figure`, :func:`wasted_space_figure`. Push and simulation figures
live in :mod:`.figures_push` and are re-exported here.
"""

from __future__ import annotations

import posixpath
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from .._html import short_digest
from ..units import format_size
from .colors import NEUTRAL, layer_color
from .figures_push import (compare_figure, push_timeline_figure, requests_figure,
                           steps_figure, sweep_figure)
from .frames import as_frame, image_files_frame, layers_frame
from .theme import style

__all__ = ["layer_sizes_figure", "shared_heatmap_figure", "files_treemap_figure",
           "wasted_space_figure", "push_timeline_figure", "sweep_figure", "steps_figure",
           "compare_figure", "requests_figure", "style"]

SHARED_PATTERN = "/"


def _key_column(frame: pd.DataFrame) -> str:
    for name in ("key", "diff_id", "digest", "layer"):
        if name in frame.columns:
            return name
    raise ValueError("the frame needs a layer column: key, diff_id, digest or layer")


def layer_sizes_figure(data: Any, title: str | None = "Layer sizes per image") -> go.Figure:
    """Stacked bars, one per image, one segment per layer (oldest at the bottom).

    ``data``: Images, or a frame with ``image, position, size`` and a layer column
    (``key``/``diff_id``/``digest``); ``shared`` marks layers held by more than one image
    (computed if missing). Shared segments are hatched; colours follow the layer.
    One trace per distinct layer (named by its short key), then one legend-only trace.
    """
    frame = as_frame(data).copy()
    key = _key_column(frame)
    if "shared" not in frame.columns:
        holders = frame.groupby(key)["image"].nunique()
        frame["shared"] = frame[key].map(holders) > 1
    if "position" not in frame.columns:
        frame["position"] = frame.groupby("image").cumcount() + 1
    images = list(dict.fromkeys(frame["image"]))
    frame = frame.sort_values(["position"], kind="stable")
    fig = go.Figure()
    # one trace per layer (a scalar colour: plotly.js mishandles patterns over colour
    # arrays); traces stack in order of first appearance, oldest at the bottom
    for layer, rows in frame.groupby(key, sort=False):
        shared = bool(rows["shared"].any())
        texts = [f"{image}: layer {position} {short_digest(layer)}<br>{format_size(size)}"
                 + (" (shared)" if shared else "")
                 + (f"<br>{str(created)[:70]}" if created else "")
                 for image, position, size, created in zip(
                     rows["image"], rows["position"], rows["size"],
                     rows["created_by"] if "created_by" in rows.columns else [""] * len(rows))]
        fig.add_trace(go.Bar(x=list(rows["image"]), y=[int(v) for v in rows["size"]],
                             name=short_digest(layer), showlegend=False,
                             marker=dict(color=layer_color(str(layer)),
                                         pattern=dict(shape=SHARED_PATTERN if shared else "",
                                                      fgcolor="white", fgopacity=0.7),
                                         line=dict(color="white", width=0.5)),
                             hovertext=texts, hoverinfo="text"))
    # a legend entry that explains the hatching
    fig.add_trace(go.Bar(x=[None], y=[None], name="shared with another image",
                         marker=dict(color="#888", pattern=dict(shape=SHARED_PATTERN, fgcolor="white"),
                                     line=dict(color="#444", width=1))))
    fig.update_layout(barmode="stack", yaxis_title="bytes (as stored)", xaxis_title=None,
                      xaxis=dict(categoryorder="array", categoryarray=images),
                      legend=dict(orientation="h", y=-0.15))
    return style(fig, title)


def shared_heatmap_figure(data: Any, title: str | None = "Which layers each tag holds") -> go.Figure:
    """A layers x tags heatmap: a cell is coloured by the layer's size where the tag holds
    it, empty where not. Rows are layers in order of first appearance; each row label
    carries the layer's colour swatch. ``data``: Images or a frame with ``image, size``
    and a layer column."""
    frame = as_frame(data)
    key = _key_column(frame)
    images = list(dict.fromkeys(frame["image"]))
    keys = list(dict.fromkeys(frame[key]))
    size = frame.groupby(key)["size"].max()
    holders = frame.groupby(key)["image"].apply(set)
    z, text = [], []
    for k in keys:
        z.append([int(size[k]) if image in holders[k] else None for image in images])
        text.append([format_size(size[k]) if image in holders[k] else "" for image in images])
    labels = [f"<span style='color:{layer_color(k)}'>\u25a0</span> {short_digest(k)}"
              f" ({len(holders[k])})" for k in keys]
    fig = go.Figure(go.Heatmap(
        z=z, x=images, y=labels, text=text, texttemplate="%{text}", colorscale="Blues",
        colorbar=dict(title="bytes"), xgap=2, ygap=2, hoverongaps=False,
        hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_xaxes(side="top")
    return style(fig, title, height=max(300, 60 + 26 * len(keys)))


def files_treemap_figure(data: Any, title: str | None = None, max_files: int = 2000,
                         merged: bool = True) -> go.Figure:
    """A treemap of an image's files by directory, each file coloured by the layer that
    wrote it. ``data``: an Image (its merged filesystem, see
    :func:`~layerlab.notebook.frames.image_files_frame`) or a frame with ``path, size``
    and a layer column. Only the ``max_files`` largest files are drawn."""
    frame = image_files_frame(data, merged=merged) if hasattr(data, "layers") else as_frame(data)
    key = _key_column(frame)
    frame = frame.nlargest(max_files, "size") if len(frame) > max_files else frame
    ids, parents, labels, values, colors, hovers = [], [], [], [], [], []
    dirs: dict[str, int] = {}

    def add_dir(path: str) -> str:
        node = "/" + path if path else "/"
        if path not in dirs:
            parent = posixpath.dirname(path)
            parent_id = add_dir(parent) if path else ""
            dirs[path] = len(ids)
            ids.append(node)
            parents.append(parent_id)
            labels.append(posixpath.basename(path) + "/" if path else "/")
            values.append(0)
            colors.append(NEUTRAL)
            hovers.append("")
        return node

    for row in frame.itertuples(index=False):
        path = str(row.path)
        parent = add_dir(posixpath.dirname(path))
        ids.append("/" + path)
        parents.append(parent)
        labels.append(posixpath.basename(path))
        values.append(int(row.size))
        layer = getattr(row, key)
        colors.append(layer_color(str(layer)))
        where = f"layer {row.layer} " if hasattr(row, "layer") and key != "layer" else ""
        hovers.append(f"{format_size(row.size)}<br>{where}{short_digest(layer)}")
        # sizes add up into every ancestor directory (branchvalues="total")
        d = posixpath.dirname(path)
        while True:
            values[dirs[d]] += int(row.size)
            if not d:
                break
            d = posixpath.dirname(d)
    fig = go.Figure(go.Treemap(
        ids=ids, parents=parents, labels=labels, values=values, branchvalues="total",
        marker=dict(colors=colors), customdata=hovers, maxdepth=4,
        hovertemplate="%{id}<br>%{customdata}<extra></extra>"))
    total = values[dirs[""]] if "" in dirs else 0
    return style(fig, title or f"Files by directory, coloured by layer ({format_size(total)})",
                 height=520)


def wasted_space_figure(data: Any, title: str | None = "Wasted space by path",
                        top: int = 20) -> go.Figure:
    """Horizontal bars of the paths that waste the most bytes.

    ``data``: an efficiency result or a frame with ``path`` and ``wasted`` (or
    ``size``/``wasted_bytes``) columns. If the frame is long-form with a layer column (one
    row per copy of a path), each bar is split into its copies, coloured by layer.
    """
    frame = as_frame(data)
    value = next(c for c in ("wasted", "wasted_bytes", "size", "total_size", "bytes")
                 if c in frame.columns)
    layer_col = next((c for c in ("key", "diff_id", "digest", "layer") if c in frame.columns), None)
    totals = frame.groupby("path")[value].sum().nlargest(top)
    order = list(totals.index[::-1])  # largest at the top
    fig = go.Figure()
    if layer_col is not None and frame.duplicated("path").any():
        rows = frame[frame["path"].isin(order)].copy()
        rows["copy"] = rows.groupby("path").cumcount() + 1
        for copy in sorted(rows["copy"].unique()):
            part = rows[rows["copy"] == copy].set_index("path").reindex(order).dropna(subset=[value])
            fig.add_trace(go.Bar(
                y=list(part.index), x=[int(v) for v in part[value]], orientation="h",
                name=f"copy {copy}", showlegend=False,
                marker=dict(color=[layer_color(str(k)) for k in part[layer_col]]),
                hovertext=[f"{p}<br>copy {copy}: {format_size(v)} in {short_digest(k)}"
                           for p, v, k in zip(part.index, part[value], part[layer_col])],
                hoverinfo="text"))
        fig.update_layout(barmode="stack")
    else:
        colors = "#c0504d"
        if layer_col is not None:
            first = frame.drop_duplicates("path").set_index("path")[layer_col]
            colors = [layer_color(str(first[p])) for p in order]
        fig.add_trace(go.Bar(y=order, x=[int(totals[p]) for p in order], orientation="h",
                             name="wasted", marker=dict(color=colors),
                             hovertext=[f"{p}<br>{format_size(totals[p])}" for p in order],
                             hoverinfo="text"))
    fig.update_xaxes(title="bytes")
    return style(fig, title, height=max(260, 80 + 24 * len(order)))


# convenient for notebooks: `figures.layers_frame(images)`
__all__ += ["layers_frame", "image_files_frame"]
