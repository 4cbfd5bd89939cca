"""The seed post's story, reproduced: a 780 MB image pushed in ~100 s, then in ~20 s.

The post (2016): docker 1.7 pushing to registry 2.2 behind nginx took about 1 min 40 s
for a 780 MB image; after merging Dockerfile steps (24 -> 14 layers), upgrading to
docker 1.11.2 and registry 2.4 (existence checks), turning on the registry's
blob-descriptor cache, getting parallel uploads (the Jenkins plugin pushed serially) and
enlarging nginx's buffers, it took about 20 s.

Assumptions (the post gives no machine or network figures; these are chosen to be
plausible for a 2016 build farm and are documented here so they can be argued with):

* **client**: an 8-core build server; Docker built with Go 1.4-1.6, whose
  ``compress/gzip`` at the default level deflates about 13 MB/s per core on typical image
  content (ratio 2.41); sha256 about 350 MB/s (no SHA extensions); temporary files on a
  disk doing 150 MB/s; 2 ms of client work per request.
* **link**: a 100 Mbit/s path between the build farm and the registry's site
  (12.5 MB/s), 2 ms round trip - "WAN-like" for an intranet of the time.
* **nginx** in front of the registry with the default 16 KiB ``client_body_buffer_size``:
  every layer body is written to its disk (100 MB/s) and forwarded only once complete;
  the fix makes the buffer larger than the layers (they pass through memory).
* **registry**: 5 ms per request; a storage lookup (stat) on its backend costs 60 ms
  without the blob-descriptor cache, 0.5 ms with it; it takes bodies at 200 MB/s,
  verifies by re-reading the upload (120 MB/s) and copies the blob into backend storage
  (80 MB/s), as the post's flow describes (steps 4 and 5) - in both versions.
* **image**: 780 MB of files, gzip ratio 2.41, layered as ``benchmarks/genimage.py``'s
  big24 / big14 (the 14 layers merge consecutive ones of the 24); the registry already
  holds the base image's layers (the first 6 of 24 = first 4 of 14, 250 MB, as in the
  post's log: 4 of 14 layers "already exist"). Docker 1.7 had no checksum cached for
  them so it uploaded them again; Docker 1.11 knows them from pulling the base image.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..pusher.profiles import PROFILES
from .inputs import LayerSpec, Network, RegistrySettings
from .machine import MachineProfile
from .result import SimulationResult
from .simulation import simulate

__all__ = ["seed_story", "StoryResult", "StoryStep", "seed_layers", "SEED_MACHINE",
           "SEED_NETWORK", "SEED_REGISTRY_22"]

MB = 1_000_000
SEED_TOTAL = 780 * MB
SEED_RATIO = 2.41
# genimage.py's layering: weights of the 24 layers, and how many of them make each of 14
WEIGHTS_24 = (12, 3, 6, 2, 5, 4, 3, 8, 2, 4, 6, 3, 5, 2, 4, 3, 7, 2, 3, 4, 2, 5, 3, 2)
MERGE_14 = (1, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1)
BASE_24, BASE_14 = 6, 4  # base-image layers the registry already holds

SEED_MACHINE = MachineProfile(
    cores=8,
    compress_rate={"zlib-6": 13 * MB},
    ratio={"zlib-6": SEED_RATIO},
    sha256_rate=350 * MB,
    client_request_overhead=0.002,
    disk_rate=150 * MB,
    source="seed story: 2016 8-core build server (assumed)",
)
SEED_NETWORK = Network(bandwidth=12.5 * MB, rtt=0.002)
SEED_REGISTRY_22 = RegistrySettings(
    cache=False, verify="reread", request_overhead=0.005, lookup_cost=0.060,
    cached_lookup_cost=0.0005, ingest_rate=200 * MB, reread_rate=120 * MB, move_rate=80 * MB,
    cores=8, proxy_buffer=16 * 1024, proxy_disk_rate=100 * MB)


def seed_layers(count: int = 14) -> tuple[LayerSpec, ...]:
    """The seed's 780 MB image as 24 or 14 layers (same bytes)."""
    sizes24 = [round(SEED_TOTAL * w / sum(WEIGHTS_24)) for w in WEIGHTS_24]
    sizes24[-1] += SEED_TOTAL - sum(sizes24)
    if count == 24:
        sizes = sizes24
    elif count == 14:
        sizes, at = [], 0
        for n in MERGE_14:
            sizes.append(sum(sizes24[at:at + n]))
            at += n
    else:
        raise ValueError("the seed image comes in 24 or 14 layers")
    return tuple(LayerSpec(size, SEED_RATIO, name=f"layer {i + 1:02d}/{count}")
                 for i, size in enumerate(sizes))


@dataclass(frozen=True)
class StoryStep:
    """One step of the story: what changed, and the simulated push after it."""

    key: str
    title: str
    change: str
    result: SimulationResult
    alone: float | None = None  # seconds this change saves applied alone to the baseline


@dataclass(frozen=True)
class StoryResult:
    """The story's steps, baseline first; each step keeps the previous ones' changes."""

    steps: tuple[StoryStep, ...]
    assumptions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def baseline(self) -> float:
        return self.steps[0].result.total

    @property
    def final(self) -> float:
        return self.steps[-1].result.total

    def rows(self) -> list[dict[str, Any]]:
        out, previous = [], None
        gained = self.baseline - self.final
        for step in self.steps:
            total = step.result.total
            saved = 0.0 if previous is None else previous - total
            out.append({
                "step": step.key, "title": step.title, "change": step.change,
                "total": total, "saved": saved,
                "share_of_saving": saved / gained if gained else 0.0,
                "saved_alone": step.alone,
                "dominant_phase": step.result.dominant_phase,
                "bytes_sent": step.result.bytes_sent, "requests": step.result.requests,
                **{f"{p}_s": v["critical"] for p, v in step.result.phases.items()},
            })
            previous = total
        return out

    def to_frame(self):
        """One row per step: total, seconds saved by the step (and share of the whole
        saving), seconds it would save alone, the dominant phase, bytes, requests."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def to_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "final": self.final, "steps": self.rows(),
                "assumptions": dict(self.assumptions)}

    def plot(self):
        """A waterfall: the baseline, each step's saving, the final time."""
        import plotly.graph_objects as go

        rows = self.rows()
        x = [rows[0]["title"]] + [r["title"] for r in rows[1:]] + ["after all steps"]
        y = [rows[0]["total"]] + [-r["saved"] for r in rows[1:]] + [self.final]
        measures = ["absolute"] + ["relative"] * (len(rows) - 1) + ["total"]
        fig = go.Figure(go.Waterfall(
            x=x, y=y, measure=measures, text=[f"{v:+.1f} s" if m == "relative" else f"{v:.1f} s"
                                               for v, m in zip(y, measures)],
            textposition="outside", connector={"line": {"color": "#888"}}))
        fig.update_layout(title=f"the seed's push: {self.baseline:.0f} s -> {self.final:.0f} s "
                                f"(simulated)", yaxis_title="seconds", showlegend=False)
        return fig

    def __repr__(self) -> str:
        return (f"<StoryResult {self.baseline:.1f} s -> {self.final:.1f} s in "
                f"{len(self.steps) - 1} steps>")

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><td>{html.escape(r['title'])}</td><td style='text-align:right'>"
            f"{r['total']:.1f}</td><td style='text-align:right'>{r['saved']:.1f}</td>"
            f"<td>{html.escape(r['dominant_phase'])}</td></tr>" for r in self.rows())
        return (f"<div><b>the seed's story</b> (simulated)<table><tr><th>step</th>"
                f"<th>total s</th><th>saved s</th><th>dominant</th></tr>{body}</table></div>")


_DOCKER_17 = PROFILES["docker-1.7"]
_DOCKER_111_SERIAL = PROFILES["docker"].with_options(name="docker-1.11 (serial plugin)",
                                                    concurrency=1, mount=False)

# (key, title, change, settings changed); settings: layers, profile, known, registry
_STEPS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("baseline", "docker 1.7 + registry 2.2",
     "serial, compress each layer to a temp file, upload it whole; no existence checks "
     "without a cached checksum, so the base layers go again; 24 layers", {}),
    ("layers", "24 -> 14 layers", "merge RUN steps: same files, fewer layers",
     {"layers": 14}),
    ("dedup", "docker 1.11.2 + registry 2.4",
     "existence checks skip the 4 base layers; compression streams into the upload",
     {"profile": _DOCKER_111_SERIAL, "known": "existing"}),
    ("cache", "registry cache on", "blobdescriptor: inmemory: lookups no longer stat storage",
     {"registry": {"cache": True}}),
    ("parallel", "parallel upload", "the Jenkins plugin uploads 5 layers at once",
     {"profile_options": {"concurrency": 5}}),
    ("nginx", "nginx buffers enlarged", "request bodies no longer spooled to disk",
     {"registry": {"proxy_buffer": 1 << 30}}),
)


def _apply(settings: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(settings)
    for key, value in changes.items():
        if key == "registry":
            out["registry"] = out["registry"].with_options(**value)
        elif key == "profile_options":
            out["profile"] = out["profile"].with_options(**value)
        else:
            out[key] = value
    return out


def _run(settings: Mapping[str, Any], label: str, network: Network,
         machine: MachineProfile) -> SimulationResult:
    count = settings["layers"]
    base = BASE_24 if count == 24 else BASE_14
    return simulate(seed_layers(count), settings["profile"], network=network,
                    registry=settings["registry"], machine=machine,
                    existing=list(range(base)), known=settings["known"],
                    repository="toutiao.debian", label=label)


def seed_story(network: Network | None = None, machine: MachineProfile | None = None,
               registry: RegistrySettings | None = None) -> StoryResult:
    """The seed post's optimisation, step by step, simulated (see the module docstring for
    the assumptions; ``network``, ``machine`` and ``registry`` replace them)."""
    network = network or SEED_NETWORK
    machine = machine or SEED_MACHINE
    baseline_settings = {"layers": 24, "profile": _DOCKER_17, "known": "none",
                         "registry": registry or SEED_REGISTRY_22}
    settings = baseline_settings
    baseline = _run(settings, "baseline", network, machine)
    steps = []
    for key, title, change, changes in _STEPS:
        if key == "baseline":
            steps.append(StoryStep(key, title, change, baseline))
            continue
        settings = _apply(settings, changes)
        result = _run(settings, key, network, machine)
        alone = baseline.total - _run(_apply(baseline_settings, changes), key + " alone",
                                      network, machine).total
        steps.append(StoryStep(key, title, change, result, alone))
    assumptions = {"network": network.to_json(), "machine": machine.to_json(),
                   "registry": (registry or SEED_REGISTRY_22).to_json(),
                   "image": {"size": SEED_TOTAL, "ratio": SEED_RATIO,
                             "base_layers": {"24": BASE_24, "14": BASE_14}}}
    return StoryResult(tuple(steps), assumptions)
