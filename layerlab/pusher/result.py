"""What a push did: every event on a timeline, per-layer outcomes and totals.

The event frame (:meth:`PushResult.to_frame`) has the columns ``layer, diff_id, phase,
start, end, bytes, outcome, detail`` (seconds from the start of the push); the simulator
produces frames of the same shape so measured and simulated pushes can be overlaid.

Phases: ``check`` (HEAD), ``lookup`` (reading the registry's manifests and configs),
``mount``, ``compress`` (only when compression is a separate step: temp files, digest
pre-computation), ``upload`` (with streaming, compression happens inside it), ``commit``
(the final PUT), ``manifest``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["PushEvent", "LayerOutcome", "PushResult", "EventLog", "EVENT_COLUMNS"]

EVENT_COLUMNS = ("layer", "diff_id", "phase", "start", "end", "bytes", "outcome", "detail",
                 "bytes_in")


@dataclass(frozen=True)
class PushEvent:
    """One timed step of a push (times in seconds since the push started)."""

    layer: str
    diff_id: str | None
    phase: str
    start: float
    end: float
    bytes: int = 0
    outcome: str = "ok"
    detail: str = ""
    bytes_in: int = 0  # uncompressed bytes read (compress, and upload while compressing)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "diff_id": self.diff_id, "phase": self.phase,
                "start": round(self.start, 6), "end": round(self.end, 6), "bytes": self.bytes,
                "outcome": self.outcome, "detail": self.detail, "bytes_in": self.bytes_in}


@dataclass(frozen=True)
class LayerOutcome:
    """What happened to one blob: ``exists`` (already in the repository), ``mounted``
    (from ``mounted_from``), ``pushed``, or ``foreign`` (not distributable, left out)."""

    digest: str
    diff_id: str | None
    size: int
    media_type: str
    outcome: str
    mounted_from: str | None = None
    source: str = ""  # how the digest was known: source, cache, registry, compressed
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Annotations describing these bytes, for the manifest (zstd:chunked's TOC...)."""

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "diff_id": self.diff_id, "size": self.size,
                "media_type": self.media_type, "outcome": self.outcome,
                "mounted_from": self.mounted_from, "digest_from": self.source}

    @property
    def summary(self) -> str:
        if self.outcome == "exists":
            return "already exists"
        if self.outcome == "mounted":
            return f"mounted from {self.mounted_from}"
        return self.outcome


class EventLog:
    """A thread-safe event recorder with a common clock."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.wall0 = time.time()
        self._lock = threading.Lock()
        self.events: list[PushEvent] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def add(self, layer: str, diff_id: str | None, phase: str, start: float, *,
            end: float | None = None, bytes: int = 0, outcome: str = "ok",
            detail: str = "", bytes_in: int = 0) -> PushEvent:
        event = PushEvent(layer, diff_id, phase, start, self.now() if end is None else end,
                          bytes, outcome, detail, bytes_in)
        with self._lock:
            self.events.append(event)
        return event


@dataclass(frozen=True)
class PushResult:
    """The outcome of :func:`layerlab.push` / :func:`layerlab.copy`."""

    source: str
    destination: str
    manifest_digest: str
    media_type: str
    profile: str
    layers: tuple[LayerOutcome, ...]
    config: LayerOutcome | None
    manifest_outcome: str  # pushed | exists | written
    events: tuple[PushEvent, ...]
    wall_seconds: float
    requests: int = 0
    started_at: float = 0.0
    warnings: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict, compare=False)
    manifest_size: int = 0
    platform: str | None = None
    platforms: tuple["PushResult", ...] = ()  # an index push: one result per image

    # totals --------------------------------------------------------------------------
    @property
    def bytes_uploaded(self) -> int:
        """Compressed bytes sent to the registry (retries included)."""
        return sum(e.bytes for e in self.events if e.phase == "upload")

    @property
    def bytes_compressed(self) -> int:
        """Uncompressed bytes that went through a compressor."""
        return sum(e.bytes_in for e in self.events if e.phase in ("compress", "upload"))

    def count(self, outcome: str) -> int:
        return sum(1 for layer in self.layers if layer.outcome == outcome)

    @property
    def totals(self) -> dict[str, Any]:
        return {
            "wall_seconds": round(self.wall_seconds, 6),
            "bytes_uploaded": self.bytes_uploaded,
            "bytes_compressed": self.bytes_compressed,
            "layers": len(self.layers),
            "layers_existing": self.count("exists"),
            "layers_mounted": self.count("mounted"),
            "layers_pushed": self.count("pushed"),
            "requests": self.requests,
        }

    def phases(self, phase: str) -> list[PushEvent]:
        return [e for e in self.events if e.phase == phase]

    # views ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The stable ``layerlab push --json`` shape."""
        return {
            "source": self.source,
            "destination": self.destination,
            "manifest_digest": self.manifest_digest,
            "media_type": self.media_type,
            "manifest": self.manifest_outcome,
            "profile": self.profile,
            "layers": [layer.to_json() for layer in self.layers],
            "config": self.config.to_json() if self.config else None,
            "totals": self.totals,
            "warnings": list(self.warnings),
            "settings": self.settings,
            "events": [e.to_json() for e in self.events],
            "platforms": [p.platform_json() for p in self.platforms],
        }

    def platform_json(self) -> dict[str, Any]:
        """One entry of ``platforms`` in :meth:`to_json` (an image of a pushed index)."""
        return {"platform": self.platform, "manifest_digest": self.manifest_digest,
                "media_type": self.media_type, "manifest": self.manifest_outcome,
                "layers": [layer.to_json() for layer in self.layers],
                "config": self.config.to_json() if self.config else None,
                "totals": self.totals}

    def to_frame(self):
        """The events as a pandas DataFrame (columns :data:`EVENT_COLUMNS`)."""
        import pandas as pd

        return pd.DataFrame([e.to_json() for e in self.events], columns=list(EVENT_COLUMNS))

    def plot(self, title: str | None = None):
        """A plotly Gantt chart of the push: one row per blob, bars coloured by phase."""
        from ..notebook.figures_push import phase_gantt

        return phase_gantt([("", self.events, 0.8, -0.4, 1.0)],
                           title or f"push to {self.destination} ({self.profile}): "
                                    f"{self.wall_seconds:.2f} s")

    def summary_rows(self) -> list[tuple[str, str, int, str]]:
        """``(kind, digest, size, outcome)`` per blob; an index push prefixes each kind
        with the image's platform."""
        if self.platforms:
            return [(f"{p.platform} {kind}", digest, size, summary)
                    for p in self.platforms for kind, digest, size, summary in p.summary_rows()]
        rows = [("layer", layer.digest, layer.size, layer.summary) for layer in self.layers]
        if self.config is not None:
            rows.append(("config", self.config.digest, self.config.size, self.config.summary))
        return rows

    def __repr__(self) -> str:
        t = self.totals
        return (f"<PushResult {self.destination} {self.manifest_digest[:19]} "
                f"{t['layers_pushed']} pushed, {t['layers_mounted']} mounted, "
                f"{t['layers_existing']} existing, {t['bytes_uploaded']} bytes in "
                f"{self.wall_seconds:.2f} s>")

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{kind}</td><td><code>{html.escape(digest[:19])}</code></td>"
            f"<td style='text-align:right'>{size:,}</td><td>{html.escape(summary)}</td></tr>"
            for kind, digest, size, summary in self.summary_rows())
        t = self.totals
        return (f"<div><b>push</b> {html.escape(self.source)} &rarr; "
                f"{html.escape(self.destination)} (profile <code>{self.profile}</code>)<br>"
                f"manifest <code>{self.manifest_digest}</code> ({self.manifest_outcome}), "
                f"{self.wall_seconds:.3f} s, {t['bytes_uploaded']:,} bytes uploaded, "
                f"{t['requests']} requests"
                f"<table><tr><th></th><th>digest</th><th>size</th><th>outcome</th></tr>"
                f"{rows}</table></div>")

    def __str__(self) -> str:
        return json.dumps(self.totals)
