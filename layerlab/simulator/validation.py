"""``validate()``: push for real, predict, compare.

Each case pushes an image with the real pusher to a fresh
:class:`~layerlab.registry.LocalRegistry` (its ``bandwidth`` and ``latency`` knobs
emulating a WAN, its blob-descriptor ``cache`` on or off) and simulates the same push
with the same profile, image, registry state and knobs; the result lists predicted and
measured seconds per case with the relative error.

What the registry holds before the measured push (``present``):

* ``none`` - an empty registry, a fresh client digest cache;
* ``all`` - the image was pushed before by the same client: a re-push (one run is the
  median of ``REPUSHES`` re-pushes on the same set-up: it changes nothing);
* ``some`` - the image was pushed before, then its manifest, config and the upper half
  of its layers were deleted from the repository (the client's cache still names them,
  so it asks and finds them missing).

Set-up pushes run unthrottled; the knobs are set just before the measured push.

Calibration (:func:`machine_for`), before each round of cases: the quick machine
calibration, the registry on 16 MiB blobs, compression speeds on samples of the images'
own layers, and the pusher's own costs read from real unthrottled pushes
(:func:`pusher_costs`: fixed cost per push, cost per request, one stream's pace, the
cores the process keeps busy), each a median of a few runs. A shared machine drifts
(its single-thread compression speed moved by 20 % within minutes here), and a push is
itself noisy (thread scheduling, lock hand-offs), so one statistic is used throughout
(:func:`combine`): by default each case counts the median of its measured runs against
the median of the calibration rounds; with ``statistic="min"``, its fastest run against
the best figures (the machine as if unloaded). ``load_probe`` follows the drift push
by push.
"""

from __future__ import annotations

import html
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..pusher.profiles import PushProfile, get_profile
from ..units import parse_duration, parse_rate
from .inputs import LayerSpec, Network, RegistrySettings, _sample, layers_from_image
from .calibration import CALIBRATION_RTT
from .machine import MachineProfile, compression_key, load_machine

__all__ = ["Case", "ValidationResult", "validate", "grid", "validation_profile", "content_sample"]

REPOSITORY = "validate/app"
REPUSHES = 5  # pushes per measured run of a re-push (``all``): see _measure
SAMPLES = Path(__file__).resolve().parents[2] / "sample_images" / "docker-archive"


@dataclass(frozen=True)
class Case:
    """One validation scenario."""

    image: str  # a key of the images mapping
    profile: str  # "serial", "parallel", or a profile name
    present: str = "none"  # none | some | all
    cache: bool = True
    bandwidth: str = "50 MB/s"
    latency: str = "10 ms"

    @property
    def name(self) -> str:
        return (f"{self.image}/{self.profile}/{self.present}/"
                f"cache-{'on' if self.cache else 'off'}/{self.bandwidth}/{self.latency}")


def validation_profile(name: str) -> PushProfile:
    """``serial``: the fast profile one layer at a time; ``parallel``: the fast profile;
    any other name: that profile."""
    if name == "serial":
        return get_profile("fast").with_options(name="serial", concurrency=1)
    if name == "parallel":
        return get_profile("fast").with_options(name="parallel")
    return get_profile(name)


def grid(images: Sequence[str] = ("14", "24"), profiles: Sequence[str] = ("serial", "parallel"),
         present: Sequence[str] = ("none", "some", "all"), cache: Sequence[bool] = (True, False),
         bandwidth: Sequence[str] = ("50 MB/s", "200 MB/s"),
         latency: Sequence[str] = ("10 ms",)) -> list[Case]:
    """Every combination, as :class:`Case` values (the benchmark's full grid by default)."""
    return [Case(i, p, s, c, b, lat) for i in images for p in profiles for s in present
            for c in cache for b in bandwidth for lat in latency]


class ErrorTable:
    """What the push and pull validations share: ``rows`` of cases, each with an ``error``
    (predicted / measured - 1), and a ``machine`` profile the predictions used."""

    rows: tuple[Mapping[str, Any], ...]
    machine: MachineProfile | None

    @property
    def errors(self) -> list[float]:
        """|error| of every case, in order."""
        return [abs(r["error"]) for r in self.rows]

    @property
    def median_abs_error(self) -> float:
        return statistics.median(self.errors) if self.rows else 0.0

    @property
    def worst_abs_error(self) -> float:
        return max(self.errors) if self.rows else 0.0

    def to_frame(self):
        """The cases as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([dict(r) for r in self.rows])

    def to_json(self) -> dict[str, Any]:
        return {"median_abs_error": self.median_abs_error,
                "worst_abs_error": self.worst_abs_error, "cases": [dict(r) for r in self.rows],
                **self._extra_json(),
                "machine": self.machine.to_json() if self.machine else None}

    def _extra_json(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class ValidationResult(ErrorTable):
    """Predicted vs measured seconds per case (``error`` = predicted / measured - 1)."""

    rows: tuple[Mapping[str, Any], ...]
    machine: MachineProfile = field(compare=False, default=None)  # type: ignore[assignment]

    def plot(self):
        """Predicted against measured seconds, one point per case, with the y = x line."""
        import plotly.express as px

        frame = self.to_frame()
        fig = px.scatter(frame, x="measured", y="predicted", color="present", symbol="profile",
                         hover_name="case", title=f"simulated vs measured pushes: median error "
                                                  f"{self.median_abs_error:.1%}, worst "
                                                  f"{self.worst_abs_error:.1%}")
        top = float(max(frame["measured"].max(), frame["predicted"].max())) * 1.05
        fig.add_shape(type="line", x0=0, y0=0, x1=top, y1=top, line={"dash": "dot"})
        fig.update_xaxes(title="measured s", rangemode="tozero")
        fig.update_yaxes(title="predicted s", rangemode="tozero")
        return fig

    def __repr__(self) -> str:
        return (f"<ValidationResult {len(self.rows)} cases, median |error| "
                f"{self.median_abs_error:.1%}, worst {self.worst_abs_error:.1%}>")

    def _repr_html_(self) -> str:
        head = (f"<b>validation</b>: {len(self.rows)} cases, median |error| "
                f"{html.escape(f'{self.median_abs_error:.1%}')}, worst "
                f"{html.escape(f'{self.worst_abs_error:.1%}')}")
        return f"<div>{head}{self.to_frame().to_html(index=False)}</div>"


# -- set-up ----------------------------------------------------------------------------
def _open(image: Any):
    if isinstance(image, str):
        from ..sources import open_image

        return open_image(image)
    return image


def content_sample(images: Iterable[Any], total: int = 4 << 20) -> bytes:
    """Bytes from every uncompressed layer of the images, in proportion to their size."""
    layers = [layer for image in images for layer in image.layers if layer.compression == "none"]
    size = sum(layer.size for layer in layers) or 1
    parts = [_sample(layer, max(64 << 10, int(total * layer.size / size)), pieces=4)
             for layer in layers if layer.size]
    return b"".join(parts)[: total * 2]


def machine_for(images: Sequence[Any], keys: Sequence[str], base: MachineProfile | None = None,
                workdir: str | None = None) -> MachineProfile:
    """A quick calibration, with compression speeds measured on the images' content and
    the pusher's own costs (per push, per request) measured with real re-pushes."""
    from .calibration import calibrate, cpu_probe, measure_compression, measure_registry

    machine = base or calibrate(quick=True, registry=False, save=False)
    before = cpu_probe(0.2)
    machine = machine.with_options(**measure_registry(16 << 20, 5))
    sample = content_sample(images)
    if sample:
        rates, _ = measure_compression(keys, sample, 3, best=False)
        machine = machine.with_options(compress_rate={**machine.compress_rate, **rates},
                                       source=machine.source + "; compression on the images")
    after = cpu_probe(0.2)
    machine = machine.with_options(probe_rate=(before[0] + after[0]) / 2,
                                   probe_parallelism=(before[1] + after[1]) / 2)
    if images:
        machine = pusher_costs(images, machine, workdir)
    return machine


_FASTER = ("compress_rate", "sha256_rate", "registry_ingest_rate", "registry_reread_rate",
           "registry_loop_rate",
           "registry_commit_rate", "disk_rate", "probe_rate", "probe_parallelism",
           "cpu_capacity")
_SHORTER = ("client_request_overhead", "client_connect_cost",
            "client_thread_join_cost",
            "client_push_overhead", "client_cache_write", "client_stream_cost",
            "client_layer_overhead", "registry_request_overhead", "registry_lookup_cost",
            "registry_cached_lookup_cost", "registry_blob_overhead")


def combine(profiles: Sequence[MachineProfile], statistic: str = "median") -> MachineProfile:
    """One profile from several calibrations of the same machine, field by field: the
    ``median`` figure (a typical moment of a shared machine, to compare with the median
    push), or with ``min`` the best one (other work only ever makes a probe slower: the
    machine unloaded, to compare with the fastest push)."""
    first = profiles[0]
    if len(profiles) == 1:
        return first
    changes: dict[str, Any] = {}
    for name in (*_FASTER, *_SHORTER):
        pick = (statistics.median if statistic == "median"
                else max if name in _FASTER else min)
        values = [getattr(p, name) for p in profiles]
        if isinstance(values[0], Mapping):
            keys = {k for v in values for k in v}
            changes[name] = {k: pick([v[k] for v in values if k in v]) for k in keys}
        else:
            changes[name] = pick(values)
    return first.with_options(**changes)


def pusher_costs(images: Sequence[Any], machine: MachineProfile, workdir: str | None = None,
                 repeat: int = 3) -> MachineProfile:
    """``machine`` with the pusher's own costs read from the timelines of real re-pushes
    (everything present, one layer at a time, no latency): ``client_push_overhead`` is
    the time before the first and after the last event (planning, the digest cache);
    ``client_request_overhead`` the median HEAD as the pusher saw it less the
    registry's own time and the round trip, plus the gaps between consecutive requests
    (the pusher's bookkeeping between requests); these re-pushes wait on a
    ``CALIBRATION_RTT`` round trip, because a request that waits costs more than one
    answered at once;
    ``client_stream_cost`` the seconds per byte of unthrottled uploads of one layer at
    a time; ``cpu_capacity`` the cores the process (pusher and registry, one interpreter
    lock) keeps busy in an unthrottled parallel push. Medians of ``repeat`` runs."""
    from ..pusher import push
    from ..registry import LocalRegistry

    profile = validation_profile("serial")
    fixed, per_request = [], []
    with tempfile.TemporaryDirectory(prefix="layerlab-overhead-", dir=workdir) as tmp, \
            LocalRegistry(Path(tmp) / "registry") as registry:
        for n, image in enumerate(images):
            ref = f"{registry.host}/{REPOSITORY}-{n}:v1"
            push(image, ref, profile=profile, progress=False, cache_dir=Path(tmp) / "cache")
            registry.latency = CALIBRATION_RTT
            for _ in range(repeat):
                result = push(image, ref, profile=profile, progress=False,
                              cache_dir=Path(tmp) / "cache")
                events = sorted(result.events, key=lambda e: e.start)
                if not events:
                    continue
                fixed.append(events[0].start + result.wall_seconds - max(e.end for e in events))
                heads = [e.end - e.start - CALIBRATION_RTT for e in events if e.phase == "check"]
                gaps = [max(0.0, b.start - a.end) for a, b in zip(events, events[1:])]
                if heads:
                    per_request.append(statistics.median(heads) + sum(gaps) / len(events))
            registry.latency = None
        stream = []
        for attempt in range(repeat):  # one layer at a time, unthrottled: a stream's pace
            result = push(images[0], f"{registry.host}/{REPOSITORY}-stream{attempt}:v1",
                          profile=profile, progress=False, cache=False)
            bodies = [e for e in result.events if e.phase == "upload" and e.bytes > 1 << 20]
            if bodies:
                stream.append(sum(e.end - e.start for e in bodies) / sum(e.bytes for e in bodies))
        parallel = []
        for attempt in range(repeat):  # all layers at once, unthrottled: usable cores
            cpu0 = time.process_time()
            result = push(images[0], f"{registry.host}/{REPOSITORY}-parallel{attempt}:v1",
                          profile=validation_profile("parallel"), progress=False, cache=False)
            parallel.append((result.wall_seconds, time.process_time() - cpu0))
    server = machine.registry_request_overhead + machine.registry_cached_lookup_cost
    changes: dict[str, float] = {}
    if stream:
        changes["client_stream_cost"] = statistics.median(stream)
    if parallel:
        capacity = statistics.median(cpu / wall for wall, cpu in parallel)
        changes["cpu_capacity"] = min(float(machine.cores), max(1.0, capacity))
    if fixed:
        changes["client_push_overhead"] = max(0.0, statistics.median(fixed))
    if per_request:
        changes["client_request_overhead"] = max(0.0, statistics.median(per_request) - server)
    return machine.with_options(**changes)


def _prepare(registry: Any, host: str, image: Any, case: Case, profile: PushProfile,
             cache_dir: str) -> frozenset[int]:
    """Put the registry (and the client's cache) in the case's starting state; return the
    indexes of the layers the repository then holds."""
    from ..pusher import push
    from ..sources.remote import RegistryClient

    n = len(image.layers)
    if case.present == "none":
        return frozenset()
    result = push(image, f"{host}/{REPOSITORY}:v1", profile=profile, progress=False,
                  cache_dir=cache_dir)
    if case.present == "all":
        return frozenset(range(n))
    if case.present != "some":
        raise ValueError(f"present must be none, some or all, not {case.present!r}")
    keep = n // 2
    with RegistryClient(host) as client:
        client.delete_manifest(REPOSITORY, result.manifest_digest)
        if result.config is not None:
            client.delete_blob(REPOSITORY, result.config.digest)
        for outcome in result.layers[keep:]:
            client.delete_blob(REPOSITORY, outcome.digest)
    return frozenset(range(keep))


def _measure(case: Case, image: Any, profile: PushProfile, workdir: Path
             ) -> tuple[float, int, int, frozenset[int]]:
    """One measured push from a fresh registry and cache: (seconds, bytes uploaded,
    requests the registry answered, layers held before). The set-up's writes are flushed
    to disk first: an fsync (the registry committing a blob, the digest cache forgetting
    an entry) also flushes whatever else is dirty on the file system, so the set-up
    would otherwise slow the measured push by however much of it the kernel had not yet
    written back. A re-push (``all``) leaves the
    registry and the cache as it found them, so it is pushed ``REPUSHES`` times on the
    same set-up and counts their median: such a push lasts about 50 ms, and one push
    varies by 10 % from the next."""
    from ..pusher import push
    from ..registry import LocalRegistry

    cache_dir = tempfile.mkdtemp(prefix="cache-", dir=workdir)
    root = tempfile.mkdtemp(prefix="registry-", dir=workdir)
    with LocalRegistry(root, cache=case.cache) as registry:
        held = _prepare(registry, registry.host, image, case, profile, cache_dir)
        os.sync()  # the set-up's writes are not the measured push's to flush (see _measure)
        registry.bandwidth = case.bandwidth
        registry.latency = case.latency
        seconds = []
        for _ in range(REPUSHES if case.present == "all" else 1):
            before = len(registry.log)
            result = push(image, f"{registry.host}/{REPOSITORY}:v1", profile=profile,
                          progress=False, cache_dir=cache_dir)
            requests = len(registry.log) - before
            seconds.append(result.wall_seconds)
    shutil.rmtree(cache_dir, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    return statistics.median(seconds), result.bytes_uploaded, requests, held


_STATISTICS = {"median": statistics.median, "min": min}


def _predict(case: Case, specs: Sequence[LayerSpec], machine: MachineProfile,
             runs: Sequence[tuple[float, int, int, frozenset[int]]],
             probes: Sequence[tuple[float, float]], statistic: str = "median") -> dict[str, Any]:
    """The row of one case: its measured runs against the simulation of the same push.
    With ``probes`` (one per run), each run is predicted on the machine as its probe
    found it, and the case's error is the ``statistic`` of the runs' own errors (the
    median, or the fastest run's)."""
    from .simulation import simulate

    base_rate = machine.probe_rate
    times = [run[0] for run in runs]
    _, sent, requests, held = runs[0]
    known = "none" if case.present == "none" else "all"

    def predict(on: MachineProfile):
        return simulate(
            specs, validation_profile(case.profile),
            network=Network(parse_rate(case.bandwidth), parse_duration(case.latency)),
            registry=RegistrySettings.local(cache=case.cache),
            machine=on, existing=sorted(held), known=known, repository=REPOSITORY,
            label=case.name)

    if probes:  # the machine as it was just before each push (it is shared)
        machines = [machine.under_load(rate, parallelism) for rate, parallelism in probes]
        predictions = [predict(m) for m in machines]
        pairs = sorted(zip(times, (p.total for p in predictions)))
        if statistic == "min":
            measured, total = pairs[0]
            error = total / measured - 1
        else:
            measured, total = statistics.median(times), statistics.median(t for _, t in pairs)
            error = statistics.median(t / m - 1 for m, t in pairs)
        predicted = predictions[0]
        machine = machines[len(machines) // 2]
    else:
        measured = _STATISTICS[statistic](times)
        predicted = predict(machine)
        total, error = predicted.total, predicted.total / measured - 1 if measured else 0.0
    return {
        "case": case.name, "image": case.image, "profile": case.profile,
        "present": case.present, "cache": case.cache, "bandwidth": case.bandwidth,
        "latency": case.latency,
        "predicted": total, "measured": measured, "error": error,
        "runs": times, "statistic": statistic,
        "bytes_predicted": predicted.bytes_sent, "bytes_measured": sent,
        "requests_predicted": predicted.requests, "requests_measured": requests,
        "dominant_phase": predicted.dominant_phase,
        "cpu_factor": machine.probe_rate / base_rate if base_rate else 1.0,
        "cpu_capacity": machine.cpu,
        "probes": [list(p) for p in probes],
    }


def validate(images: Mapping[str, Any] | None = None, cases: Sequence[Case] | None = None,
             machine: MachineProfile | str | None = None, workdir: str | None = None,
             repeat: int = 1, load_probe: bool = False, on_case: Any = None,
             statistic: str = "median") -> ValidationResult:
    """Push and simulate every case; return predicted vs measured.

    ``images`` maps a label to an Image or reference (default: the committed sample
    images ``app14`` and ``app24`` as ``"14"`` and ``"24"``); ``cases`` defaults to
    :func:`grid` over them. ``machine``: a profile to use as is, or ``None`` to
    calibrate first (quick, compression measured on the images). ``repeat``: each case
    is measured that many times, in rounds over all cases (so a burst of other work on
    the machine hits different cases), fresh registry each time; ``statistic`` says
    which run counts: ``"median"`` (default) or ``"min"`` (the fastest).
    Without a given ``machine``, the calibration is repeated before each round and the
    rounds combined with the same statistic (:func:`combine`). ``on_case(row)`` is called
    for each case at the end. ``load_probe``: when
    the machine is shared with steady work, a short CPU probe (``cpu_probe``) before
    each measured push and another after it, and each run's prediction uses the profile
    scaled to what they found on average (:meth:`MachineProfile.under_load`).
    """
    from .calibration import cpu_probe

    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be median or min, not {statistic!r}")
    if images is None:
        images = {"14": f"docker-archive:{SAMPLES / 'app14.tar'}",
                  "24": f"docker-archive:{SAMPLES / 'app24.tar'}"}
    opened = {label: _open(image) for label, image in images.items()}
    cases = list(cases) if cases is not None else grid(tuple(opened))
    for case in cases:
        if case.image not in opened:
            raise ValueError(f"case {case.name}: no image labelled {case.image!r}")
    keys = sorted({compression_key(p.compression, p.engine, p.level)
                   for p in (validation_profile(c.profile) for c in cases)})
    if machine is None:
        mach = machine_for(list(opened.values()), keys, workdir=workdir)
    else:
        mach = load_machine(machine)
    calibrations = [mach]
    specs = {label: layers_from_image(image, keys=keys, machine=mach)
             for label, image in opened.items()}
    runs: list[list[Any]] = [[] for _ in cases]
    probes: list[list[tuple[float, float]]] = [[] for _ in cases]
    rounds = max(1, repeat)
    with tempfile.TemporaryDirectory(prefix="layerlab-validate-", dir=workdir) as tmp:
        for round_ in range(rounds):
            if round_ and machine is None:  # calibrate again: rounds meet different moments
                calibrations.append(machine_for(list(opened.values()), keys, workdir=workdir))
                mach = combine(calibrations, statistic)
            for i, case in enumerate(cases):
                before = cpu_probe(0.2) if load_probe else None
                profile = validation_profile(case.profile)
                runs[i].append(_measure(case, opened[case.image], profile, Path(tmp)))
                if before is not None:  # the machine around the push: probed on both sides
                    after = cpu_probe(0.2)
                    probes[i].append(((before[0] + after[0]) / 2, (before[1] + after[1]) / 2))
    rows: list[dict[str, Any]] = []
    for i, case in enumerate(cases):
        rows.append(_predict(case, specs[case.image], mach, runs[i], probes[i], statistic))
        if on_case is not None:
            on_case(rows[-1])
    return ValidationResult(tuple(rows), mach)
