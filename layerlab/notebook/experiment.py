"""The end-to-end experiment behind ``layerlab demo`` and notebook 5.

Start the embedded registry; push a sample image with the historical and the fast
profiles, on loopback ("LAN") and with the registry emulating a far-away link ("WAN":
added latency per request, limited bandwidth); simulate each push with the same settings;
push the next version of the app to see deduplication; and analyse the sample family
(shared layers, a diff of two tags, wasted space). :func:`experiment_report` turns it
all into one self-contained HTML page.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["PushRun", "Experiment", "run_experiment", "experiment_report", "DEFAULT_WAN"]

DEFAULT_WAN = ("20 ms", "50 Mbit/s")
"""The emulated WAN: latency added to every request, and the link's bandwidth."""


@dataclass(frozen=True)
class PushRun:
    """One real push and its simulation under the same settings."""

    image: str
    profile: str
    network: str
    measured: Any   # PushResult
    simulated: Any  # SimulationResult

    @property
    def label(self) -> str:
        return f"{self.profile}, {self.network}"

    def row(self) -> dict[str, Any]:
        totals = self.measured.totals
        measured, simulated = self.measured.wall_seconds, self.simulated.total
        return {"image": self.image, "profile": self.profile, "network": self.network,
                "layers": totals["layers"], "pushed": totals["layers_pushed"],
                "existing": totals["layers_existing"], "mounted": totals["layers_mounted"],
                "bytes_uploaded": totals["bytes_uploaded"], "requests": totals["requests"],
                "measured_seconds": measured, "simulated_seconds": simulated,
                "simulated_over_measured": simulated / measured if measured else None}


@dataclass(frozen=True)
class Experiment:
    """Everything the experiment produced (see :func:`run_experiment`)."""

    samples: Path
    images: dict[str, Any]
    shared: Any       # SharedLayers
    diff: Any         # ImageDiff
    efficiency: Any   # Efficiency
    runs: tuple[PushRun, ...]
    requests: Any     # the registry's request log as a DataFrame
    counters: dict[str, Any]
    wan: tuple[str, str]
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    def runs_frame(self):
        """One row per push: measured and simulated seconds, bytes, requests."""
        import pandas as pd

        return pd.DataFrame([run.row() for run in self.runs])

    def to_json(self) -> dict[str, Any]:
        """The ``layerlab demo --json`` shape."""
        return {
            "samples": str(self.samples),
            "wan": {"latency": self.wan[0], "bandwidth": self.wan[1]},
            "pushes": [run.row() for run in self.runs],
            "shared": self.shared.to_json()["totals"],
            "diff": {"a": self.diff.a, "b": self.diff.b, "summary": self.diff.summary()},
            "efficiency": {"image": "wasted", "efficiency": self.efficiency.efficiency,
                           "wasted_bytes": self.efficiency.wasted_bytes},
            "registry": {k: v for k, v in self.counters.items() if k != "by_status"},
            "seconds": self.seconds,
        }


def _machine(images: Sequence[Any], profiles: Sequence[str],
             say: Callable[[str], None]) -> Any:
    """The calibrated machine profile if one was saved; else a quick calibration of this
    machine, its local registry and the pusher's own costs on the images (not saved):
    the shipped defaults describe another machine and a Go registry, and the simulated
    column would not be comparable with the measured one."""
    from ..pusher.profiles import get_profile
    from ..simulator import load_machine
    from ..simulator.machine import compression_key, default_machine_path
    from ..simulator.validation import machine_for

    if default_machine_path().is_file():
        return load_machine("saved")
    say("calibrating this machine for the simulator (quick, not saved) ...")
    keys = sorted({compression_key(p.compression, p.engine, p.level)
                   for p in map(get_profile, profiles)})
    return machine_for(list(images), keys)


def run_experiment(samples: Path | None = None, *, image: str = "app24",
                   profiles: Sequence[str] = ("docker-1.7", "fast"),
                   wan: tuple[str, str] | None = DEFAULT_WAN,
                   say: Callable[[str], None] = lambda text: None) -> Experiment:
    """Run the experiment on the sample images; ``say`` reports progress lines.

    Pushes ``docker-archive/<image>.tar`` with each profile to a fresh repository, first on
    loopback, then (``wan``) with the registry adding latency and limiting bandwidth; then
    app:v1 followed by app:v2 with the fast profile. Every push gets a fresh digest cache,
    so runs do not depend on earlier ones.
    """
    from .. import open_image
    from ..analysis import diff, efficiency, shared_layers
    from ..pusher import push
    from ..registry import LocalRegistry
    from ..simulator import RegistrySettings, simulate

    started = time.perf_counter()
    from ..samples import ensure_samples, samples_dir

    samples = ensure_samples(samples, say) if samples else samples_dir(say)
    archive = samples / "docker-archive"
    images = {name: open_image(f"docker-archive:{archive / 'family.tar'}:{ref}")
              for name, ref in (("base", "base:1"), ("app:v1", "app:v1"), ("app:v2", "app:v2"))}
    images[image] = open_image(f"docker-archive:{archive / (image + '.tar')}")
    images["wasted"] = open_image(f"docker-archive:{archive / 'wasted.tar'}")
    machine = _machine([images[image]], profiles, say)
    say("analysing the sample images ...")
    shared = shared_layers([images["base"], images["app:v1"], images["app:v2"]])
    changes = diff(images["app:v1"], images["app:v2"], files=True)
    waste = efficiency(images["wasted"])

    runs: list[PushRun] = []
    with tempfile.TemporaryDirectory(prefix="layerlab-demo-") as tmp, \
            LocalRegistry(Path(tmp) / "registry") as registry:
        say(f"registry listening on {registry.url}")

        def one(source: str, repo: str, profile: str, network: str, **sim: Any) -> PushRun:
            cache = Path(tmp) / f"cache-{len(runs)}"
            measured = push(images[source], f"{registry.host}/{repo}", profile=profile,
                            progress=False, cache_dir=cache)
            simulated = simulate(images[source], profile, machine=machine,
                                 registry=RegistrySettings.local(),
                                 repository=repo.split(":")[0], label=f"{profile} {network}",
                                 **sim)
            run = PushRun(source, profile, network, measured, simulated)
            say(f"  {run.label:<28} measured {measured.wall_seconds:6.2f} s   "
                f"simulated {simulated.total:6.2f} s")
            runs.append(run)
            return run

        # The first push in a process pays one-off costs no model of a push has (imports,
        # the HTTP session, the registry's first writes: about 0.1 s here): warm up first.
        push(images["base"], f"{registry.host}/warmup/base:1", progress=False,
             cache_dir=Path(tmp) / "cache-warmup")
        registry.log.clear()
        say(f"pushing {image} ({len(images[image].layers)} layers) on loopback ...")
        for profile in profiles:
            one(image, f"lan/{profile}:{image}", profile, "LAN", known="none")
        if wan:
            latency, bandwidth = wan
            registry.latency, registry.bandwidth = latency, bandwidth
            say(f"pushing {image} over the emulated WAN ({latency} per request, {bandwidth}) ...")
            for profile in profiles:
                one(image, f"wan/{profile}:{image}", profile, f"WAN {latency}",
                    known="none", rtt=latency, bandwidth=bandwidth)
            registry.latency, registry.bandwidth = None, None
        say("pushing app:v1, then app:v2 (shares 3 of its 5 layers) ...")
        one("app:v1", "family/app:v1", "fast", "LAN", known="none")
        one("app:v2", "family/app:v2", "fast", "LAN", existing={"family/app": [0, 1, 2]})
        log_frame = registry.log.to_frame()
        counters = registry.log.counters()
    return Experiment(samples=samples, images=images, shared=shared, diff=changes,
                      efficiency=waste, runs=tuple(runs), requests=log_frame,
                      counters=counters, wan=tuple(wan or ("0 ms", "unlimited")),
                      seconds=time.perf_counter() - started)


def experiment_report(exp: Experiment):
    """The experiment as a :class:`~layerlab.notebook.report.Report` (figures inline)."""
    from ..units import format_duration, format_size
    from . import figures
    from .report import Report

    report = Report("layerlab: the end-to-end experiment",
                    "Sample images pushed to layerlab's embedded registry with historical "
                    "and modern client profiles, measured and simulated.")
    report.heading("Push times: measured vs simulated")
    report.text(f"Each push went to a fresh repository with a fresh client cache. "
                f"'WAN' runs had the registry add {exp.wan[0]} to every request and limit "
                f"bandwidth to {exp.wan[1]}; the simulator was given the same figures.")
    frame = exp.runs_frame()
    report.table(frame, title="Pushes", columns=[
        "image", "profile", "network", "layers", "pushed", "existing", "mounted",
        "bytes_uploaded", "requests", "measured_seconds", "simulated_seconds"])
    report.figure(figures.compare_figure(frame.assign(label=[r.label for r in exp.runs]),
                                         label="label"),
                  "Measured (solid) and simulated (faint) wall time of each push.")
    for run in exp.runs:
        report.figure(figures.push_timeline_figure(
            run.measured, run.simulated,
            title=f"{run.image}: {run.label} - measured {format_duration(run.measured.wall_seconds)}, "
                  f"simulated {format_duration(run.simulated.total)}"))
    report.heading("What the registry saw")
    from ..registry.log import errors_text

    report.text(f"{exp.counters['requests']} requests, {errors_text(exp.counters)}, "
                f"{format_size(exp.counters['bytes_in'])} received.")
    report.figure(figures.requests_figure(exp.requests))
    report.table([{"kind": k, "requests": v} for k, v in sorted(exp.counters["by_kind"].items())])
    report.heading("Shared layers across tags")
    family = [exp.images[k] for k in ("base", "app:v1", "app:v2")]
    report.add(exp.shared)
    report.figure(figures.layer_sizes_figure(family), "Layer sizes; hatched = shared.")
    report.figure(figures.shared_heatmap_figure(family))
    report.heading(f"Diff {exp.diff.a} -> {exp.diff.b}")
    report.add(exp.diff)
    report.figure(figures.files_treemap_figure(exp.images["app:v2"],
                                               title="app:v2 files by directory and layer"))
    report.heading("Wasted space")
    report.add(exp.efficiency)
    rows = [{"path": p.path, "size": w.size, "layer": w.layer}
            for p in exp.efficiency.inefficient_paths + exp.efficiency.unlisted_paths
            for w in p.writes]
    if rows:
        report.figure(figures.wasted_space_figure(_keyed(rows, exp.images["wasted"])))
    return report


def _keyed(rows: list[dict[str, Any]], image: Any):
    """Wasted-path rows with the writing layer's diff_id (for colours)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    keys = {n: str(layer.diff_id or layer.digest) for n, layer in enumerate(image.layers)}
    frame["key"] = [keys.get(int(n), str(n)) if str(n).isdigit() else str(n)
                    for n in frame["layer"]]
    return frame.drop(columns=["layer"])
