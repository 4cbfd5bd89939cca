"""What a simulation predicts: totals, the breakdown, the critical path, the timeline.

:class:`SimulationResult` events have the columns of a real push's
(:data:`layerlab.pusher.result.EVENT_COLUMNS`: ``layer, diff_id, phase, start, end, bytes,
outcome, detail, bytes_in``) plus ``source = "simulated"``, so the two can be compared
row by row and drawn one over the other (:func:`overlay`).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..units import format_duration, format_size
from .engine import Record

__all__ = ["SimEvent", "SimulationResult", "overlay", "PHASES"]

PHASES = ("lookup", "check", "mount", "compress", "upload", "commit", "manifest")
EVENT_COLUMNS = ("layer", "diff_id", "phase", "start", "end", "bytes", "outcome", "detail",
                 "bytes_in", "requests", "source")


@dataclass(frozen=True)
class SimEvent:
    """One simulated step of a push (consecutive steps of a layer in one phase merged)."""

    layer: str
    diff_id: str | None
    phase: str
    start: float
    end: float
    bytes: int = 0
    outcome: str = "ok"
    detail: str = ""
    bytes_in: int = 0
    requests: int = 0

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "diff_id": self.diff_id, "phase": self.phase,
                "start": self.start, "end": self.end, "bytes": self.bytes,
                "outcome": self.outcome, "detail": self.detail, "bytes_in": self.bytes_in,
                "requests": self.requests, "source": "simulated"}


def merge_records(records: Sequence[Record], diff_ids: Mapping[str, str | None]) -> list[SimEvent]:
    """Events from engine records: a layer's consecutive records of one phase become one."""
    events: list[SimEvent] = []
    open_by_layer: dict[str, int] = {}
    for rec in sorted(records, key=lambda r: (r.start, r.index)):
        step = rec.step
        i = open_by_layer.get(step.layer)
        if i is not None and events[i].phase == step.phase and abs(events[i].end - rec.start) < 1e-12:
            e = events[i]
            outcome = step.outcome if step.outcome != "ok" else e.outcome
            details = e.detail if not step.detail or step.detail in e.detail.split("+") else (
                f"{e.detail}+{step.detail}" if e.detail else step.detail)
            events[i] = SimEvent(e.layer, e.diff_id, e.phase, e.start, rec.end,
                                 e.bytes + step.bytes, outcome, details,
                                 e.bytes_in + step.bytes_in, e.requests + step.requests)
            continue
        events.append(SimEvent(step.layer, diff_ids.get(step.layer), step.phase, rec.start,
                               rec.end, step.bytes, step.outcome, step.detail, step.bytes_in,
                               step.requests))
        open_by_layer[step.layer] = len(events) - 1
    return events


def critical_records(records: Sequence[Record]) -> list[Record]:
    """The chain of records the end waited for, from the first to the last."""
    if not records:
        return []
    last = max(records, key=lambda r: (r.end, r.index))
    chain = [last]
    while chain[-1].after is not None:
        chain.append(records[chain[-1].after])
    return list(reversed(chain))


def union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    total, current_end = 0.0, None
    current_start = 0.0
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


class PhasedResult:
    """What a predicted push and a predicted pull share: ``phases`` (phase ->
    ``{"critical": s, "busy": s}``) and ``layers`` (dicts with an ``outcome``)."""

    phases: Mapping[str, Mapping[str, float]]
    layers: tuple[Mapping[str, Any], ...]

    @property
    def dominant_phase(self) -> str:
        """The phase with the most seconds on the critical path."""
        if not self.phases:
            return ""
        return max(self.phases, key=lambda p: self.phases[p]["critical"])

    def count(self, outcome: str) -> int:
        """Layers with this outcome (a push's ``pushed``, ``exists``, ``mounted``; a pull's
        ``downloaded``, ``unpacked``, ``present``, ``lazy``)."""
        return sum(1 for layer in self.layers if layer["outcome"] == outcome)


@dataclass(frozen=True)
class SimulationResult(PhasedResult):
    """A predicted push.

    * ``total``: seconds from the first request to the manifest's answer;
    * ``phases``: phase -> ``{"critical": s, "busy": s}``: seconds of that phase on the
      critical path (these add up to ``total``) and seconds during which at least one
      step of that phase was running;
    * ``layers``: one dict per layer (name, sizes, outcome, start, end, seconds per phase);
    * ``bytes_sent``, ``bytes_compressed``, ``requests``;
    * ``critical_path``: the events the end waited for, in order;
    * ``events``: every event; ``inputs``: the scenario, as JSON-able data.
    """

    total: float
    phases: Mapping[str, Mapping[str, float]]
    layers: tuple[Mapping[str, Any], ...]
    bytes_sent: int
    bytes_compressed: int
    requests: int
    critical_path: tuple[SimEvent, ...]
    events: tuple[SimEvent, ...]
    inputs: Mapping[str, Any] = field(default_factory=dict, compare=False)
    label: str = ""

    # -- views ----------------------------------------------------------------------------
    def to_frame(self):
        """The events as a pandas DataFrame, columns as a real push's plus ``requests``
        and ``source``."""
        import pandas as pd

        return pd.DataFrame([e.to_json() for e in self.events], columns=list(EVENT_COLUMNS))

    def layer_frame(self):
        """One row per layer."""
        import pandas as pd

        return pd.DataFrame(list(self.layers))

    def phase_frame(self):
        """One row per phase: critical-path seconds, busy seconds, share of the total."""
        import pandas as pd

        rows = [{"phase": p, "critical": v["critical"], "busy": v["busy"],
                 "share": v["critical"] / self.total if self.total else 0.0}
                for p, v in self.phases.items()]
        return pd.DataFrame(rows, columns=["phase", "critical", "busy", "share"])

    def to_json(self) -> dict[str, Any]:
        """The stable ``layerlab simulate --json`` shape."""
        return {
            "label": self.label,
            "total": self.total,
            "dominant_phase": self.dominant_phase,
            "phases": {p: dict(v) for p, v in self.phases.items()},
            "bytes_sent": self.bytes_sent,
            "bytes_compressed": self.bytes_compressed,
            "requests": self.requests,
            "layers": [dict(layer) for layer in self.layers],
            "critical_path": [e.to_json() for e in self.critical_path],
            "events": [e.to_json() for e in self.events],
            "inputs": dict(self.inputs),
        }

    def plot(self, compare: Any = None, title: str | None = None):
        """A plotly Gantt timeline, one row per layer, coloured by phase (the shape of
        ``PushResult.plot()``); ``compare=push_result`` draws the measured push under it."""
        from ..notebook.figures_push import phase_gantt

        if compare is not None:
            return overlay(compare, self, title=title)
        return phase_gantt([("", self.events, 0.8, -0.4, 1.0)],
                      title or f"simulated push{' ' + self.label if self.label else ''}: "
                               f"{self.total:.2f} s")

    def __repr__(self) -> str:
        return (f"<SimulationResult {self.label + ' ' if self.label else ''}"
                f"{self.total:.3f} s, {self.bytes_sent} bytes sent, {self.requests} requests, "
                f"dominated by {self.dominant_phase}>")

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(p)}</td><td style='text-align:right'>{v['critical']:.3f}</td>"
            f"<td style='text-align:right'>{v['busy']:.3f}</td></tr>"
            for p, v in self.phases.items())
        return (f"<div><b>simulated push</b> {html.escape(self.label)}: "
                f"<b>{format_duration(self.total)}</b>, {format_size(self.bytes_sent)} sent, "
                f"{self.requests} requests; {self.count('pushed')} pushed, "
                f"{self.count('exists')} existing, {self.count('mounted')} mounted"
                f"<table><tr><th>phase</th><th>critical s</th><th>busy s</th></tr>{rows}"
                f"</table></div>")

    def __str__(self) -> str:
        return json.dumps({"total": self.total, "dominant_phase": self.dominant_phase,
                           "bytes_sent": self.bytes_sent, "requests": self.requests})


def build_result(records: Sequence[Record], plans: Sequence[Any], specs: Sequence[Any],
                 inputs: Mapping[str, Any], label: str = "") -> SimulationResult:
    """Assemble a :class:`SimulationResult` from an engine run."""
    diff_ids = {spec.name: spec.diff_id for spec in specs}
    events = merge_records(records, diff_ids)
    chain = critical_records(records)
    total = max((r.end for r in records), default=0.0)
    phases: dict[str, dict[str, float]] = {}
    for phase in PHASES:
        intervals = [(r.start, r.end) for r in records if r.step.phase == phase]
        if not intervals:
            continue
        phases[phase] = {
            "critical": sum(r.end - r.start for r in chain if r.step.phase == phase),
            "busy": union_seconds(intervals),
        }
    critical_events = merge_records(chain, diff_ids)
    layers = []
    for plan, spec in zip(plans, specs):
        mine = [r for r in records if r.step.layer == spec.name]
        row: dict[str, Any] = {
            "layer": spec.name,
            "uncompressed_size": spec.uncompressed_size,
            "bytes_sent": sum(r.step.bytes for r in mine if _on_network(r)),
            "outcome": plan.outcome,
            "start": min((r.start for r in mine), default=0.0),
            "end": max((r.end for r in mine), default=0.0),
        }
        for phase in ("check", "mount", "compress", "upload", "commit"):
            row[phase] = sum(r.end - r.start for r in mine if r.step.phase == phase)
        layers.append(row)
    return SimulationResult(
        total=total, phases=phases, layers=tuple(layers),
        bytes_sent=sum(r.step.bytes for r in records if _on_network(r)),
        bytes_compressed=sum(r.step.bytes_in for r in records),
        requests=sum(r.step.requests for r in records),
        critical_path=tuple(critical_events), events=tuple(events), inputs=dict(inputs),
        label=label)


def _on_network(record: Record) -> bool:
    return any("net" in c.resources for c in record.step.components)


# -- figures ----------------------------------------------------------------------------
def overlay(push_result: Any, sim_result: SimulationResult, title: str | None = None):
    """A measured push (lower half of each row, solid) and its simulation (upper half,
    translucent) on one Gantt chart. Layers are matched by diff_id where both know it."""
    from ..notebook.figures_push import phase_gantt, phase_row_label as _label

    by_diff = {e.diff_id: _label(e.layer) for e in sim_result.events if e.diff_id}
    measured = []
    for e in push_result.events:
        label = by_diff.get(getattr(e, "diff_id", None))
        if label is None:
            label = _label(e.layer)
        measured.append(SimEvent(label, getattr(e, "diff_id", None), e.phase, e.start, e.end,
                                 e.bytes, e.outcome, getattr(e, "detail", "")))
    wall = getattr(push_result, "wall_seconds", None)
    heading = title or (f"measured {wall:.2f} s vs simulated {sim_result.total:.2f} s"
                        if wall is not None else f"simulated {sim_result.total:.2f} s")
    return phase_gantt([("measured", measured, 0.4, -0.4, 1.0),
                   ("simulated", sim_result.events, 0.4, 0.0, 0.55)], heading)
