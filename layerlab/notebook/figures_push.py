"""Plotly figures for pushes, simulations and the registry's requests.

* :func:`push_timeline_figure` - the Gantt of a push: one row per layer, one bar per
  phase, measured and simulated side by side on the same time axis;
* :func:`sweep_figure` - total time against one parameter (workers, bandwidth, layers);
* :func:`steps_figure` - a story in steps (the seed's 100 s -> 20 s);
* :func:`compare_figure` - measured vs simulated totals per profile;
* :func:`requests_figure` - the registry's request log over time.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from .._html import short_digest
from ..units import format_duration, format_size
from .theme import style
from .colors import MEASURED_OPACITY, NEUTRAL, SIMULATED_OPACITY, layer_color

__all__ = ["events_frame", "push_timeline_figure", "sweep_figure", "steps_figure",
           "compare_figure", "requests_figure"]

PHASE_PATTERNS: dict[str, str] = {
    "upload": "", "compress": "/", "hash": "\\", "check": ".", "lookup": ".",
    "mount": "x", "commit": "|", "manifest": "+", "buffer": "-",
}
EVENT_COLUMNS = ["layer", "phase", "start", "end", "bytes", "outcome"]


def events_frame(data: Any) -> pd.DataFrame:
    """The events of a push or a simulation as a frame with at least
    ``layer, phase, start, end`` (``bytes``, ``outcome`` where known).

    Accepts a frame, a result with an ``events`` frame/list or ``events_frame()``, or a
    result whose ``to_frame()`` is the events."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif hasattr(data, "events_frame"):
        frame = data.events_frame()
    elif hasattr(data, "events"):
        events = data.events
        frame = events if isinstance(events, pd.DataFrame) else pd.DataFrame(
            [e.to_json() if hasattr(e, "to_json") else
             (e if isinstance(e, Mapping) else vars(e)) for e in events])
    elif hasattr(data, "to_frame"):
        frame = data.to_frame()
    else:
        frame = pd.DataFrame(list(data))
    missing = {"layer", "phase", "start", "end"} - set(frame.columns)
    if missing:
        raise ValueError(f"events need columns layer, phase, start, end (missing {sorted(missing)})")
    frame = frame.copy()
    for name in ("bytes", "outcome"):
        if name not in frame.columns:
            frame[name] = None
    frame["layer"] = frame["layer"].fillna("manifest").astype(str)
    # a row is a layer: by diff_id where known, so a measured push (compressed digests)
    # and its simulation line up, and colours match the image figures
    if "diff_id" in frame.columns:
        frame["row"] = [str(d) if isinstance(d, str) and d else l
                        for d, l in zip(frame["diff_id"], frame["layer"])]
    else:
        frame["row"] = frame["layer"]
    for name in ("start", "end"):
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            frame[name] = frame[name].astype("int64") / 1e9
    if len(frame) and float(frame["start"].min()) > 1e6:  # wall-clock times: make relative
        t0 = float(frame["start"].min())
        frame["start"] = frame["start"] - t0
        frame["end"] = frame["end"] - t0
    return frame


def _row_label(layer: str) -> str:
    return short_digest(layer) if layer.startswith(("sha256:", "sha512:")) else layer


def push_timeline_figure(measured: Any = None, simulated: Any = None,
                         title: str | None = "Push timeline",
                         layer_keys: Mapping[str, str] | None = None) -> go.Figure:
    """A Gantt chart of a push: rows are layers, bars are phases (hatching tells the phase),
    colours follow the layer. One trace per (source, layer), then one legend-only trace
    per phase. Given both, ``measured`` (solid) and ``simulated`` (faint)
    are drawn side by side in each row on one time axis, with their totals marked.

    ``layer_keys`` maps a pushed (compressed) digest to the key that colours it elsewhere
    (its diff_id), so the timeline matches the image figures.
    """
    sources = [(name, events_frame(data)) for name, data in
               (("measured", measured), ("simulated", simulated)) if data is not None]
    if not sources:
        raise ValueError("give measured and/or simulated events")
    keys = dict(layer_keys or {})
    # rows ordered by first start; "manifest" rows last
    first: dict[str, float] = {}
    for _, frame in sources:
        for layer, start in zip(frame["row"], frame["start"]):
            first[layer] = min(first.get(layer, float("inf")), float(start))
    order = sorted(first, key=lambda k: (k.startswith("manifest") or k == "config", first[k]))
    labels = {layer: _row_label(layer) for layer in order}
    fig = go.Figure()
    phases: dict[str, None] = {}
    for source, frame in sources:
        opacity = MEASURED_OPACITY if source == "measured" else SIMULATED_OPACITY
        # one trace per layer: a scalar colour, the phase as a pattern per bar
        for layer, part in frame.groupby("row", sort=False):
            part = part.sort_values("start")
            phases.update(dict.fromkeys(str(p) for p in part["phase"]))
            color = layer_color(keys.get(layer, layer)) if layer.startswith("sha") else NEUTRAL
            hover = [f"{source} {phase} {labels[layer]}<br>{format_duration(s)} -> "
                     f"{format_duration(e)} ({format_duration(e - s)})"
                     + (f"<br>{format_size(b)}" if b is not None and b == b else "")
                     + (f"<br>{o}" if isinstance(o, str) and o else "")
                     for phase, s, e, b, o in zip(part["phase"], part["start"], part["end"],
                                                  part["bytes"], part["outcome"])]
            fig.add_trace(go.Bar(
                y=[labels[layer]] * len(part), x=[float(v) for v in part["end"] - part["start"]],
                base=[float(v) for v in part["start"]], orientation="h",
                name=f"{source} {labels[layer]}", showlegend=False, offsetgroup=source,
                opacity=opacity, hovertext=hover, hoverinfo="text",
                marker=dict(color=color, line=dict(color="#333", width=0.5),
                            pattern=dict(shape=[PHASE_PATTERNS.get(str(p), "-")
                                                for p in part["phase"]],
                                         fgcolor="white", fgopacity=0.8, size=6))))
        total = float(frame["end"].max())
        fig.add_vline(x=total, line=dict(color="#333" if source == "measured" else "#999",
                                         dash="solid" if source == "measured" else "dash"),
                      annotation_text=f"{source} {format_duration(total)}",
                      annotation_position="top")
    for phase in phases:  # legend: which hatching is which phase
        fig.add_trace(go.Bar(x=[None], y=[None], name=phase, orientation="h",
                             offsetgroup=sources[0][0], marker=dict(color="#888", pattern=dict(
                                 shape=PHASE_PATTERNS.get(phase, "-"), fgcolor="white"))))
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.12),
                      xaxis_title="seconds since the push started")
    fig.update_yaxes(categoryorder="array", categoryarray=[labels[k] for k in order],
                     autorange="reversed")
    return style(fig, title, height=max(280, 90 + 28 * len(order)))


def sweep_figure(data: Any, x: str, y: str = "seconds", color: str | None = None,
                 title: str | None = None, log_x: bool = False) -> go.Figure:
    """Total time (``y``) against one parameter (``x``), one line per ``color`` value.

    ``data``: a sweep result or a frame with those columns."""
    frame = data if isinstance(data, pd.DataFrame) else data.to_frame()
    groups = [(None, frame)] if color is None else list(frame.groupby(color, sort=False))
    fig = go.Figure()
    for name, part in groups:
        part = part.sort_values(x)
        fig.add_trace(go.Scatter(
            x=list(part[x]), y=[float(v) for v in part[y]], mode="lines+markers",
            name=y if name is None else f"{color}={name}",
            hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y:.3g}}<extra></extra>"))
    fig.update_xaxes(title=x, type="log" if log_x else None)
    fig.update_yaxes(title=y, rangemode="tozero")
    return style(fig, title or f"{y} vs {x}")


def steps_figure(data: Any, label: str = "step", value: str = "seconds",
                 title: str | None = "Push time, step by step") -> go.Figure:
    """One bar per step, in order, labelled with its time (and the change from the
    previous step): the seed's story from about 100 s to about 20 s."""
    frame = data if isinstance(data, pd.DataFrame) else data.to_frame()
    values = [float(v) for v in frame[value]]
    texts = [format_duration(v) + ("" if i == 0 else f" ({(v / values[i - 1] - 1) * 100:+.0f} %)")
             for i, v in enumerate(values)]
    top = max(values) if values else 1.0
    colors = [f"rgba(59,125,216,{0.35 + 0.65 * v / top:.2f})" for v in values]
    fig = go.Figure(go.Bar(x=list(frame[label]), y=values, text=texts, textposition="outside",
                           marker=dict(color=colors), cliponaxis=False,
                           hovertemplate="%{x}<br>%{y:.3g} s<extra></extra>"))
    fig.update_yaxes(title="seconds", rangemode="tozero")
    return style(fig, title)


def compare_figure(data: Any, label: str = "profile", measured: str = "measured_seconds",
                   simulated: str = "simulated_seconds",
                   title: str | None = "Measured vs simulated") -> go.Figure:
    """Grouped bars per ``label``: measured (solid) beside simulated (faint)."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
    fig = go.Figure()
    for name, column, opacity in (("measured", measured, MEASURED_OPACITY),
                                  ("simulated", simulated, SIMULATED_OPACITY)):
        if column in frame.columns:
            values = [float(v) for v in frame[column]]
            fig.add_trace(go.Bar(x=list(frame[label]), y=values, name=name, opacity=opacity,
                                 marker=dict(color="#3b7dd8"),
                                 text=[format_duration(v) for v in values],
                                 textposition="outside", cliponaxis=False))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="seconds", rangemode="tozero")
    return style(fig, title)


def requests_figure(data: Any, title: str | None = "Registry requests") -> go.Figure:
    """The registry's requests over time: one row per kind of request, a marker per
    request at its arrival (size grows with the bytes moved), red when it failed.

    ``data``: a ``RequestLog``, a list of records, or its frame (``kind, status, start,
    duration, bytes_in, bytes_out``)."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif hasattr(data, "to_frame"):
        frame = data.to_frame()
    else:
        frame = pd.DataFrame([vars(r) if not isinstance(r, Mapping) else r for r in data])
    fig = go.Figure()
    if len(frame):
        start = frame["start"]
        if pd.api.types.is_datetime64_any_dtype(start):
            seconds = (start - start.min()).dt.total_seconds()
        else:
            seconds = start.astype(float) - float(start.min())
        moved = frame["bytes_in"].fillna(0) + frame["bytes_out"].fillna(0)
        failed = frame["status"] >= 400
        for name, mask, color in (("ok", ~failed, "#3b7dd8"), ("error", failed, "#c0504d")):
            if not mask.any():
                continue
            part = frame[mask]
            fig.add_trace(go.Scatter(
                x=list(seconds[mask]), y=list(part["kind"]), mode="markers", name=name,
                marker=dict(color=color, opacity=0.7,
                            size=[6 + min(24.0, (float(b) ** 0.5) / 40) for b in moved[mask]]),
                hovertext=[f"{m} {r or ''} {s}<br>{format_duration(d)}, {format_size(b)}"
                           for m, r, s, d, b in zip(
                               part["method"], part["repository"] if "repository" in part
                               else [""] * len(part), part["status"], part["duration"],
                               moved[mask])],
                hoverinfo="text"))
    fig.update_xaxes(title="seconds since the first request", rangemode="tozero")
    fig.update_yaxes(title=None)
    kinds = frame["kind"].nunique() if len(frame) else 1
    return style(fig, title, height=max(240, 80 + 26 * kinds))


PHASE_COLOURS = {"lookup": "#8c8c8c", "check": "#1f77b4", "mount": "#9467bd",
                 "compress": "#ff7f0e", "upload": "#2ca02c", "commit": "#17becf",
                 "manifest": "#d62728"}


def phase_row_label(layer: str) -> str:
    """A row label: a digest shortened to ``sha256:`` + 12 hex, other names as they are."""
    return layer[:19] if layer.startswith("sha256:") else layer


def phase_gantt(series: Sequence[tuple[str, Sequence[Any], float, float, float]], title: str,
                rows: Sequence[str] | None = None) -> go.Figure:
    """A Gantt chart coloured by phase, shared by ``PushResult.plot`` and
    ``SimulationResult.plot``: bars per phase for each ``(name, events, width, offset,
    opacity)`` series, where events have ``layer, phase, start, end, bytes, outcome,
    detail`` attributes."""
    fig = go.Figure()
    order: list[str] = list(rows or [])
    for _, events, *_ in series:
        for e in sorted(events, key=lambda e: e.start):
            if phase_row_label(e.layer) not in order:
                order.append(phase_row_label(e.layer))
    for name, events, width, offset, opacity in series:
        for phase, colour in PHASE_COLOURS.items():
            chosen = [e for e in events if e.phase == phase]
            if not chosen:
                continue
            fig.add_trace(go.Bar(
                name=f"{phase} ({name})" if name else phase, orientation="h",
                marker_color=colour, opacity=opacity, width=width, offset=offset,
                legendgroup=name or phase,
                y=[phase_row_label(e.layer) for e in chosen],
                x=[max(e.end - e.start, 1e-4) for e in chosen],
                base=[e.start for e in chosen],
                customdata=[[e.outcome, e.bytes, e.detail] for e in chosen],
                hovertemplate="%{y}<br>" + (name + " " if name else "") + phase +
                              " %{base:.3f}s + %{x:.3f}s<br>%{customdata[0]} "
                              "%{customdata[1]} bytes<br>%{customdata[2]}<extra></extra>"))
    fig.update_layout(barmode="overlay", title=title, xaxis_title="seconds",
                      yaxis={"categoryorder": "array", "categoryarray": list(reversed(order))},
                      height=max(300, 28 * len(order) + 120))
    return fig
