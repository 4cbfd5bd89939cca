"""``PullResult``: a predicted pull, its timeline, and its views (JSON, DataFrame, plotly)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..units import format_duration, format_size
from .engine import Record
from .result import EVENT_COLUMNS, PhasedResult, SimEvent, merge_records, union_seconds

if TYPE_CHECKING:
    from .pull import ExtractRecord, LayerPlan, PullLayer

__all__ = ["PullResult", "PULL_PHASES", "build_pull_result"]

PULL_PHASES = ("start", "manifest", "config", "download", "sync", "toc", "fetch", "extract")
PULL_COLOURS = {"start": "#9e9e9e", "manifest": "#8d6e63", "config": "#a1887f",
                "download": "#1e88e5", "sync": "#5e35b1", "toc": "#fdd835",
                "fetch": "#fb8c00", "extract": "#43a047"}


@dataclass(frozen=True)
class PullResult(PhasedResult):
    """A predicted pull.

    * ``total``: seconds from the client's start to the last layer ready;
    * ``phases``: phase -> ``{"critical": s, "busy": s}`` (seconds on the critical path,
      which add up to ``total``, and seconds during which the phase ran at all);
    * ``layers``: one dict per layer (sizes, ``outcome``: ``downloaded``, ``unpacked``,
      ``present`` or ``lazy``, bytes downloaded, start, end, seconds per phase);
    * ``bytes_downloaded`` (manifest and config included), ``bytes_skipped`` (stored
      bytes of the layers not downloaded whole), ``requests``;
    * ``critical_path`` and ``events``; ``inputs``: the scenario as JSON-able data.
    """

    total: float
    phases: Mapping[str, Mapping[str, float]]
    layers: tuple[Mapping[str, Any], ...]
    bytes_downloaded: int
    bytes_skipped: int
    requests: int
    critical_path: tuple[SimEvent, ...]
    events: tuple[SimEvent, ...]
    inputs: Mapping[str, Any] = field(default_factory=dict, compare=False)
    label: str = ""
    profile: str = ""

    def to_json(self) -> dict[str, Any]:
        """The stable ``layerlab pull-cost --json`` shape."""
        return {
            "label": self.label, "profile": self.profile, "total": self.total,
            "dominant_phase": self.dominant_phase,
            "phases": {p: dict(v) for p, v in self.phases.items()},
            "bytes_downloaded": self.bytes_downloaded, "bytes_skipped": self.bytes_skipped,
            "requests": self.requests,
            "layers": [dict(layer) for layer in self.layers],
            "critical_path": [e.to_json() for e in self.critical_path],
            "events": [e.to_json() for e in self.events],
            "inputs": dict(self.inputs),
        }

    def to_frame(self):
        """The events as a pandas DataFrame (the columns of a simulated push's)."""
        import pandas as pd

        return pd.DataFrame([e.to_json() for e in self.events], columns=list(EVENT_COLUMNS))

    def layer_frame(self):
        """One row per layer."""
        import pandas as pd

        return pd.DataFrame(list(self.layers))

    def plot(self, title: str | None = None):
        """A plotly timeline: one row per layer (and one for the image's requests), bars
        coloured by phase."""
        import plotly.graph_objects as go

        order: list[str] = []
        for e in sorted(self.events, key=lambda e: e.start):
            if _short(e.layer) not in order:
                order.append(_short(e.layer))
        fig = go.Figure()
        for phase, colour in PULL_COLOURS.items():
            chosen = [e for e in self.events if e.phase == phase]
            if not chosen:
                continue
            fig.add_trace(go.Bar(
                name=phase, orientation="h", marker_color=colour,
                y=[_short(e.layer) for e in chosen],
                x=[max(e.end - e.start, 1e-4) for e in chosen], base=[e.start for e in chosen],
                customdata=[[e.bytes, e.detail] for e in chosen],
                hovertemplate="%{y}<br>" + phase + " %{base:.3f}s + %{x:.3f}s<br>"
                              "%{customdata[0]} bytes %{customdata[1]}<extra></extra>"))
        fig.update_layout(
            barmode="overlay", xaxis_title="seconds",
            title=title or f"simulated pull{' ' + self.label if self.label else ''} "
                           f"({self.profile}): {self.total:.2f} s",
            yaxis={"categoryorder": "array", "categoryarray": list(reversed(order))},
            height=max(300, 28 * len(order) + 120))
        return fig

    def __repr__(self) -> str:
        return (f"<PullResult {self.label + ' ' if self.label else ''}{self.profile} "
                f"{self.total:.3f} s, {self.bytes_downloaded} bytes downloaded, "
                f"{self.requests} requests, dominated by {self.dominant_phase}>")

    def __str__(self) -> str:
        return json.dumps({"total": self.total, "dominant_phase": self.dominant_phase,
                           "bytes_downloaded": self.bytes_downloaded, "requests": self.requests})

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(p)}</td><td style='text-align:right'>{v['critical']:.3f}</td>"
            f"<td style='text-align:right'>{v['busy']:.3f}</td></tr>"
            for p, v in self.phases.items())
        counts = ", ".join(f"{self.count(o)} {o}" for o in ("downloaded", "unpacked", "present",
                                                             "lazy") if self.count(o))
        return (f"<div><b>simulated pull</b> {html.escape(self.label)} "
                f"({html.escape(self.profile)}): <b>{format_duration(self.total)}</b>, "
                f"{format_size(self.bytes_downloaded)} downloaded, {self.requests} requests; "
                f"{html.escape(counts)}; dominated by {html.escape(self.dominant_phase)}"
                f"<table><tr><th>phase</th><th>critical s</th><th>busy s</th></tr>{rows}"
                f"</table></div>")


def _short(name: str) -> str:
    return name[7:19] if name.startswith("sha256:") else name


def _on_network(record: Record) -> bool:
    """A request's answer: its bytes came over the link (some perhaps in a burst)."""
    return record.step.requests > 0 and record.step.bytes > 0


def build_pull_result(records: Sequence[Record], extracts: Sequence["ExtractRecord"],
                      layers: Sequence["PullLayer"], plans: Sequence["LayerPlan"],
                      inputs: Mapping[str, Any], label: str = "", profile: str = ""
                      ) -> PullResult:
    """Assemble a :class:`PullResult` from the engine's records and the extracts."""
    diff_ids = {layer.key: layer.diff_id for layer in layers}
    events = merge_records(records, diff_ids)
    extract_events = [SimEvent(x.layer, diff_ids.get(x.layer), "extract", x.start, x.end, 0,
                               "ok", "decompress+hash+write", x.bytes_in) for x in extracts]
    events = sorted(events + extract_events, key=lambda e: (e.start, e.end, e.layer))
    # the critical path: back from whatever ended last
    chain: list[tuple[str, float, float, Any]] = []  # (phase, start, end, record or extract)
    last_rec = max(records, key=lambda r: (r.end, r.index), default=None)
    last_x = max(range(len(extracts)), key=lambda i: extracts[i].end, default=None)
    rec: Record | None = last_rec
    if last_x is not None and (last_rec is None or extracts[last_x].end >= last_rec.end):
        i: int | None = last_x
        rec = None
        while i is not None:
            x = extracts[i]
            chain.append(("extract", x.start, x.end, x))
            if x.after_extract is not None:
                i = x.after_extract
            else:
                rec = records[x.after] if x.after is not None else None
                i = None
    while rec is not None:
        chain.append((rec.step.phase, rec.start, rec.end, rec))
        rec = records[rec.after] if rec.after is not None else None
    chain.reverse()
    total = max([r.end for r in records] + [x.end for x in extracts] + [0.0])
    phases: dict[str, dict[str, float]] = {}
    for phase in PULL_PHASES:
        intervals = [(r.start, r.end) for r in records if r.step.phase == phase]
        if phase == "extract":
            intervals = [(x.start, x.end) for x in extracts]
        if not intervals:
            continue
        phases[phase] = {"critical": sum(b - a for p, a, b, _ in chain if p == phase),
                         "busy": union_seconds(intervals)}
    critical = merge_records([c[3] for c in chain if isinstance(c[3], Record)], diff_ids)
    on_chain = {id(c[3]) for c in chain}
    critical += [e for e, x in zip(extract_events, extracts) if id(x) in on_chain]
    rows = []
    skipped = 0
    for plan, layer in zip(plans, layers):
        mine = [r for r in records if r.step.layer == layer.key]
        xs = [x for x in extracts if x.layer == layer.key]
        if not plan.download:
            skipped += layer.size
        row: dict[str, Any] = {
            "layer": layer.key, "digest": layer.digest, "diff_id": layer.diff_id,
            "size": layer.size, "uncompressed_size": layer.uncompressed_size,
            "compression": layer.compression, "lazy_format": layer.lazy_format,
            "outcome": plan.outcome,
            "bytes_downloaded": sum(r.step.bytes for r in mine if _on_network(r)),
            "files_fetched": plan.files_fetched, "files_reused": plan.files_reused,
            "start": min([r.start for r in mine] + [x.start for x in xs], default=0.0),
            "end": max([r.end for r in mine] + [x.end for x in xs], default=0.0),
        }
        for phase in ("download", "sync", "toc", "fetch"):
            row[phase] = sum(r.end - r.start for r in mine if r.step.phase == phase)
        row["extract"] = sum(x.end - x.start for x in xs)
        rows.append(row)
    return PullResult(
        total=total, phases=phases, layers=tuple(rows),
        bytes_downloaded=sum(r.step.bytes for r in records if _on_network(r)),
        bytes_skipped=skipped, requests=sum(r.step.requests for r in records),
        critical_path=tuple(sorted(critical, key=lambda e: e.start)), events=tuple(events),
        inputs=dict(inputs), label=label, profile=profile)
