"""``sweep(...)``: a grid of scenarios into one DataFrame, with a plot."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

from ..pusher.profiles import PushProfile, get_profile
from ..units import parse_duration, parse_rate
from .inputs import LayerSpec
from .machine import load_machine
from .result import SimulationResult
from .simulation import as_layers, simulate

__all__ = ["sweep", "SweepResult", "relayer"]

_PROFILE_FIELDS = {f.name for f in fields(PushProfile)} - {"name"}
_ALIASES = {"workers": "concurrency"}


def relayer(layers: Sequence[LayerSpec], count: int) -> tuple[LayerSpec, ...]:
    """The same bytes in ``count`` equal layers (their average compressibility, weighted
    by size), to study layer count alone."""
    if count < 1:
        raise ValueError("at least one layer")
    total = sum(spec.uncompressed_size for spec in layers)
    compressed = sum(spec.uncompressed_size / spec.compressibility for spec in layers)
    ratio = total / compressed if compressed else 1.0
    base, extra = divmod(total, count)
    return tuple(LayerSpec(base + (1 if i < extra else 0), ratio, name=f"layer {i}")
                 for i in range(count))


def _value_label(value: Any) -> Any:
    if isinstance(value, PushProfile):
        return value.name
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return str(value)
    return value


@dataclass(frozen=True)
class SweepResult:
    """Every scenario of a grid: ``params`` (the grid's keys), ``rows`` (params and
    results, flat) and the :class:`SimulationResult` of each."""

    params: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]
    results: tuple[SimulationResult, ...]

    def to_frame(self):
        """One row per scenario: the parameters, ``total``, ``dominant_phase``,
        ``bytes_sent``, ``requests`` and seconds on the critical path per phase."""
        import pandas as pd

        return pd.DataFrame([dict(r) for r in self.rows])

    def best(self) -> Mapping[str, Any]:
        """The row with the shortest total."""
        return min(self.rows, key=lambda r: r["total"])

    def plot(self, x: str | None = None, color: str | None = None, facet: str | None = None):
        """Total seconds against ``x`` (default: the first parameter), one line per
        ``color`` (the second), one panel per ``facet`` (the third)."""
        import plotly.express as px

        frame = self.to_frame()
        rest = [p for p in self.params if p not in (x, color, facet)]
        x = x or (rest.pop(0) if rest else None)
        color = color or (rest.pop(0) if rest else None)
        facet = facet or (rest.pop(0) if rest else None)
        for key in (color, facet):
            if key is not None:
                frame[key] = frame[key].astype(str)
        fig = px.line(frame, x=x, y="total", color=color, facet_col=facet, markers=True,
                      hover_data=["dominant_phase", "bytes_sent", "requests"],
                      title="simulated push time")
        fig.update_yaxes(title="seconds", rangemode="tozero")
        return fig

    def __repr__(self) -> str:
        best = self.best() if self.rows else {}
        return (f"<SweepResult {len(self.rows)} scenarios over {', '.join(self.params)}; "
                f"best {best.get('total', 0):.3f} s>")

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.3f}")


def sweep(source: Any, grid: Mapping[str, Sequence[Any]], profile: str | PushProfile = "fast",
          **fixed: Any) -> SweepResult:
    """Simulate every combination of ``grid`` (parameter -> values).

    Parameters are :func:`simulate` keywords (``bandwidth``, ``rtt``, ``existing``,
    ``known``, registry fields such as ``cache`` or ``verify``, ``profile``), profile
    fields (``concurrency`` or its alias ``workers``, ``level``, ``temp_file``...), and
    ``layers``: a layer count (the same bytes split evenly, see :func:`relayer`).
    ``fixed`` keywords apply to every scenario. Example::

        sweep(image, {"workers": [1, 2, 5], "bandwidth": ["50 MB/s", "200 MB/s"],
                      "layers": [14, 24]})
    """
    if not grid:
        raise ValueError("an empty grid: give at least one parameter and its values")
    base_profile = get_profile(profile)
    machine = load_machine(fixed.pop("machine", None))
    layers = as_layers(source, base_profile, machine)
    params = tuple(grid)
    rows, results = [], []
    for combo in itertools.product(*(grid[p] for p in params)):
        chosen = dict(zip(params, combo))
        prof = get_profile(chosen.pop("profile", base_profile))
        profile_changes = {}
        for key in list(chosen):
            field_name = _ALIASES.get(key, key)
            if field_name in _PROFILE_FIELDS:
                profile_changes[field_name] = chosen.pop(key)
        if profile_changes:
            prof = prof.with_options(**profile_changes)
        specs = layers
        if "layers" in chosen:
            specs = relayer(layers, int(chosen.pop("layers")))
        kwargs = dict(fixed)
        kwargs.update(chosen)
        result = simulate(specs, prof, machine=machine, **kwargs)
        row: dict[str, Any] = {p: _value_label(v) for p, v in zip(params, combo)}
        for key in ("bandwidth",):
            if key in row and isinstance(row[key], str):
                row[key + "_bytes_per_s"] = parse_rate(row[key])
        if "rtt" in row and isinstance(row["rtt"], str):
            row["rtt_s"] = parse_duration(row["rtt"])
        row.update(total=result.total, dominant_phase=result.dominant_phase,
                   bytes_sent=result.bytes_sent, requests=result.requests)
        for phase, values in result.phases.items():
            row[f"{phase}_s"] = values["critical"]
        rows.append(row)
        results.append(result)
    return SweepResult(params, tuple(rows), tuple(results))
