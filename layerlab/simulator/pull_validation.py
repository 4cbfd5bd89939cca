"""``validate_pull()``: pull for real from the local registry, predict, compare.

Every case pulls an image from a :class:`~layerlab.registry.LocalRegistry` (running in
this process, its ``bandwidth`` and ``latency`` knobs emulating a WAN) into a fresh OCI
layout, by a client in a child process:

* ``layerlab`` - ``layerlab.copy("docker://HOST/REPO:TAG", "oci:DIR:TAG")`` timed inside
  the child (importing layerlab and the modules a copy uses is not the pull's);
* ``skopeo`` - ``skopeo copy --src-tls-verify=false docker://... oci:DIR:TAG``, the
  process's wall time;
* ``layerlab-archive`` - ``layerlab.copy(..., "docker-archive:FILE")``: every layer
  decompressed while downloaded (its diff_id checked) and written uncompressed, which
  puts the machine's decompression rates (gzip vs zstd) on the measured path (cold only).

``node``: ``cold`` (an empty directory) or ``warm`` - the layout holds the image already
but the blobs of its upper half of layers were deleted (a node holding the base layers):
both clients skip a blob whose file is there (layerlab: with the right size), which is
what the model's ``blob`` dedup does. Registries' answers are counted from the request
log (bytes sent, requests) and compared with the prediction too.

Calibration (:func:`calibrate_clients`), unthrottled and on images other than the
cases': each client's fixed cost from pulls of a tiny image, its cost per request from
an image of many small layers, its pace per byte from pulls of an image of a few large
layers (a fit: the model reproduces those pulls), the registry's sending
loop under its bandwidth limit (``registry_send_rate``) and its time per request, from
``curl`` GETs. Every figure is the median of ``repeat`` runs; the validation calibrates
again before each round of cases, and predicts that round's runs with it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..units import parse_duration, parse_rate
from .inputs import Network
from .machine import DEFAULT_MACHINE, MachineProfile
from .pull import Node, PullLayer, get_pull_profile, pull_layers, simulate_pull
from .validation import ErrorTable

try:
    from ..registry.app import BURST_SECONDS
except ImportError:  # pragma: no cover - the registry's extras not installed
    BURST_SECONDS = 0.0

__all__ = ["PullCase", "PullValidationResult", "validate_pull", "pull_grid", "calibrate_clients",
           "measure_pull", "CLIENTS"]

CLIENTS = ("layerlab", "skopeo")
REPOSITORY = "validate/pull"

_LAYERLAB_CHILD = """
import json, sys, time
import layerlab
import layerlab.pusher.api, layerlab.pusher.local, layerlab.sources.writers  # noqa: E401
import layerlab.sources.remote.session, layerlab.sources.remote.image  # noqa: E401
import requests
t0 = time.perf_counter()
result = layerlab.copy(sys.argv[1], sys.argv[2], progress=False, cache=False)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


@dataclass(frozen=True)
class PullCase:
    """One validation scenario: ``image`` (a label of the images), ``client``
    (``layerlab`` or ``skopeo``), ``node`` (``cold`` or ``warm``), the registry's
    ``bandwidth`` (``None``: unlimited) and ``latency``."""

    image: str
    client: str
    node: str = "cold"
    bandwidth: str | None = "50 MB/s"
    latency: str = "10 ms"

    @property
    def name(self) -> str:
        return f"{self.image}/{self.client}/{self.node}/{self.bandwidth or 'unlimited'}/{self.latency}"


def pull_grid(images: Sequence[str] = ("gzip", "zstd"), clients: Sequence[str] = CLIENTS,
              nodes: Sequence[str] = ("cold", "warm"),
              bandwidths: Sequence[str | None] = ("50 MB/s", "200 MB/s"),
              latencies: Sequence[str] = ("10 ms",)) -> list[PullCase]:
    """Every combination, as :class:`PullCase` values."""
    return [PullCase(i, c, n, b, lat) for i in images for c in clients for n in nodes
            for b in bandwidths for lat in latencies]


@dataclass(frozen=True)
class PullValidationResult(ErrorTable):
    """Predicted vs measured seconds per case (``error`` = predicted / measured - 1)."""

    rows: tuple[Mapping[str, Any], ...]
    machine: MachineProfile | None = field(compare=False, default=None)
    clients: Mapping[str, Any] = field(compare=False, default_factory=dict)

    def _extra_json(self) -> dict[str, Any]:
        return {"clients": dict(self.clients)}

    def __repr__(self) -> str:
        return (f"<PullValidationResult {len(self.rows)} cases, median |error| "
                f"{self.median_abs_error:.1%}, worst {self.worst_abs_error:.1%}>")

    def _repr_html_(self) -> str:
        return (f"<div><b>pull validation</b>: {len(self.rows)} cases, median |error| "
                f"{self.median_abs_error:.1%}, worst {self.worst_abs_error:.1%}"
                f"{self.to_frame().to_html(index=False)}</div>")


# -- running a client --------------------------------------------------------------------
def _layerlab_command(source: str, destination: str) -> list[str]:
    return [sys.executable, "-c", _LAYERLAB_CHILD, source, destination]


def _skopeo_command(source: str, destination: str) -> list[str]:
    return ["skopeo", "copy", "--quiet", "--src-tls-verify=false", source, destination]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # this layerlab, not another install
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_client(client: str, host: str, repository: str, tag: str, destination: Path) -> float:
    """Pull ``host/repository:tag`` into the OCI layout ``destination`` with ``client``;
    return its seconds (layerlab: timed in the child; skopeo: the process)."""
    source = f"docker://{host}/{repository}:{tag}"
    target = f"oci:{destination}:{tag}"
    if client == "layerlab":
        command = _layerlab_command(source, target)
    elif client == "layerlab-archive":
        command = _layerlab_command(source, f"docker-archive:{destination}.tar")
    elif client == "skopeo":
        command = _skopeo_command(source, target)
    else:
        raise ValueError(f"client must be layerlab, layerlab-archive or skopeo, not {client!r}")
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_child_env(), check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{client} pull of {source} failed: {done.stderr.strip()[-300:]}")
    if client.startswith("layerlab"):
        return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
    return wall


def _drop_blobs(layout: Path, digests: Sequence[str]) -> None:
    for digest in digests:
        algorithm, _, hexpart = digest.partition(":")
        path = layout / "blobs" / algorithm / hexpart
        if path.exists():
            path.unlink()


def measure_pull(registry: Any, client: str, repository: str, tag: str, workdir: Path,
                 node: str = "cold", drop: Sequence[str] = (), bandwidth: float | None = None,
                 latency: float = 0.0) -> tuple[float, int, int]:
    """One measured pull into a fresh layout: ``(seconds, bytes the registry sent,
    requests it answered)``. ``warm``: the layout is filled first (unthrottled) and the
    blobs ``drop`` removed. The knobs are set just for the measured pull."""
    destination = Path(tempfile.mkdtemp(prefix="pull-", dir=workdir)) / "layout"
    try:
        if node == "warm" and client == "layerlab-archive":
            raise ValueError("a docker-archive is written whole: no warm node for layerlab-archive")
        if node == "warm":
            run_client(client, registry.host, repository, tag, destination)
            _drop_blobs(destination, drop)
        elif node != "cold":
            raise ValueError(f"node must be cold or warm, not {node!r}")
        os.sync()
        registry.bandwidth, registry.latency = bandwidth, latency or None
        before = len(registry.log)
        try:
            seconds = run_client(client, registry.host, repository, tag, destination)
        finally:
            registry.bandwidth, registry.latency = None, None
        records = list(registry.log)[before:]
        return seconds, sum(r.bytes_out for r in records), len(records)
    finally:
        shutil.rmtree(destination.parent, ignore_errors=True)


# -- calibration -------------------------------------------------------------------------
def _curl_seconds(url: str) -> float:
    done = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total}", url],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def _fit(predict: Callable[[float], float], target: float, high: float) -> float:
    """The value in [0, high] for which the increasing ``predict`` gives ``target``."""
    low = 0.0
    if predict(low) >= target:
        return 0.0
    for _ in range(50):
        mid = (low + high) / 2
        if predict(mid) < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def calibrate_clients(registry: Any, images: Mapping[str, tuple[str, Sequence[PullLayer], int, int]],
                      workdir: Path, clients: Sequence[str] = CLIENTS, repeat: int = 3,
                      machine: MachineProfile = DEFAULT_MACHINE) -> tuple[MachineProfile, dict]:
    """The machine's registry figures and each client's ``start_cost``, ``request_cost``
    and ``byte_cost`` (see the module docstring). ``images``: ``"tiny"`` (few small
    layers), ``"many"`` (many small layers) and ``"big"`` (a few large ones), each
    ``(repository, layers, manifest bytes, config bytes)`` of an image already in
    ``registry`` (tag ``v1``): the start from ``tiny``, the cost per request from
    ``many`` against ``tiny``, the cost per byte fitted to ``big``."""
    from .calibration import cpu_probe

    before = cpu_probe(0.2)
    repo, layers, _, _ = images["big"]
    blob = max(layers, key=lambda layer: layer.size)
    url = f"{registry.url}/v2/{repo}/blobs/{blob.digest}"
    small_url = f"{registry.url}/v2/{repo}/manifests/v1"
    per_request = statistics.median(_curl_seconds(small_url) for _ in range(5 * repeat))
    limit = 2e9
    registry.bandwidth = limit
    try:
        throttled = statistics.median(_curl_seconds(url) for _ in range(repeat))
    finally:
        registry.bandwidth = None
    loop = throttled - per_request - max(0.0, blob.size / limit - BURST_SECONDS)
    send_rate = blob.size / loop if loop > 0 else float("inf")
    mach = machine.with_options(registry_request_overhead=per_request,
                                client_request_overhead=0.0, registry_send_rate=send_rate,
                                source=machine.source + "; pull calibration")
    figures: dict[str, Any] = {"registry_request_overhead": per_request,
                               "registry_send_rate": send_rate}

    def predict(profile: Any, key: str) -> Any:
        _, specs, manifest_bytes, config_bytes = images[key]
        return simulate_pull(specs, profile=profile, machine=mach,
                             manifest_bytes=manifest_bytes, config_bytes=config_bytes)

    for client in clients:
        profile = get_pull_profile(client)
        times = {key: statistics.median(
            measure_pull(registry, client, images[key][0], "v1", workdir)[0]
            for _ in range(repeat)) for key in ("tiny", "many", "big")}
        tiny, many = predict(profile, "tiny"), predict(profile, "many")
        extra = many.requests - tiny.requests
        request_cost = max(0.0, (times["many"] - times["tiny"] - (many.total - tiny.total))
                           / extra) if extra > 0 else 0.0
        profile = profile.with_options(request_cost=request_cost)
        start = max(0.0, times["tiny"] - predict(profile, "tiny").total)
        profile = profile.with_options(start_cost=start)
        byte_cost = _fit(lambda b: predict(profile.with_options(byte_cost=b), "big").total,
                         times["big"], 1e-6)
        figures[client] = {"start_cost": start, "request_cost": request_cost,
                           "byte_cost": byte_cost,
                           **{f"{key}_seconds": value for key, value in times.items()}}
    after = cpu_probe(0.2)
    mach = mach.with_options(probe_rate=(before[0] + after[0]) / 2,
                             probe_parallelism=(before[1] + after[1]) / 2)
    figures["probe"] = [mach.probe_rate, mach.probe_parallelism]
    return mach, figures


def calibrated_profile(client: str, figures: Mapping[str, Any], factor: float = 1.0):
    """The client's pull profile with its calibrated costs, each times ``factor`` (the
    machine slower than at calibration by that much)."""
    mine = figures[client]
    return get_pull_profile(client).with_options(
        start_cost=mine["start_cost"] * factor,
        request_cost=mine.get("request_cost", 0.0) * factor,
        byte_cost=mine["byte_cost"] * factor)


# -- the validation ----------------------------------------------------------------------
def _push(registry: Any, image: Any, repository: str, compression: str | None = None) -> Any:
    """Push ``image`` (layers recompressed to ``compression`` when given) and open it
    back from the registry: the image the clients pull, its layers' uncompressed sizes
    taken from ``image`` (a registry does not tell them)."""
    from ..pusher import push
    from ..pusher.profiles import get_profile
    from ..sources import open_image

    profile = get_profile("fast")
    if compression == "zstd":
        profile = profile.with_options(compression="zstd", level=3)
    push(image, f"{registry.host}/{repository}:v1", profile=profile, progress=False, cache=False)
    remote = open_image(f"docker://{registry.host}/{repository}:v1")
    sizes = {layer.diff_id: (layer.uncompressed_size if layer.uncompressed_size is not None
                             else layer.size if layer.compression == "none" else None)
             for layer in image.layers}
    layers = tuple(dataclasses.replace(layer, uncompressed_size=sizes.get(layer.diff_id))
                   for layer in remote.layers)
    return dataclasses.replace(remote, layers=layers)


def validate_pull(images: Mapping[str, Any], calibration: Mapping[str, Any],
                  cases: Sequence[PullCase] | None = None, workdir: str | None = None,
                  repeat: int = 3, on_case: Callable[[Mapping[str, Any]], None] | None = None,
                  machine: MachineProfile | None = None, load_probe: bool = False,
                  calibration_repeat: int = 2) -> PullValidationResult:
    """Pull and simulate every case; return predicted vs measured.

    ``images``: label -> ``(image, compression)`` with an Image or reference and
    ``"gzip"``/``"zstd"`` for how the registry stores its layers (labels are the cases'
    ``image``); ``calibration``: ``{"tiny": image, "many": image, "big": image}`` for
    :func:`calibrate_clients` (images other than the cases'). Each case is measured
    ``repeat`` times, in rounds over all cases, each round after its own calibration
    (``calibration_repeat`` pulls per figure) whose figures predict that round's runs;
    a case counts the median of its runs' errors; ``on_case(row)`` is called for each
    case at the end. ``machine``: the profile to start from (default:
    a quick calibration of this machine: hashing, disk, fsync, decompression).
    ``load_probe``: a short CPU probe (:func:`~layerlab.simulator.calibration.cpu_probe`)
    before and after each measured pull, and each run predicted on the machine as the
    probes found it on average (the machine profile :meth:`~MachineProfile.under_load`, the clients' costs
    scaled alike). Off by default: the probe is a single Python thread, and scaling a
    Go client (skopeo) by it made the CPU-bound cases worse (worst 53 % against 20 %).
    """
    from ..registry import LocalRegistry
    from ..sources import open_image
    from .calibration import calibrate, cpu_probe

    if machine is None:
        machine = calibrate(quick=True, registry=False, save=False)

    def opened(value: Any) -> Any:
        return open_image(value) if isinstance(value, str) else value

    cases = list(cases) if cases is not None else pull_grid(tuple(images))
    with tempfile.TemporaryDirectory(prefix="layerlab-pull-validate-", dir=workdir) as tmp, \
            LocalRegistry(Path(tmp) / "registry") as registry:
        work = Path(tmp)
        pulled: dict[str, tuple[str, tuple[PullLayer, ...], int, int]] = {}
        for n, (label, (image, compression)) in enumerate(images.items()):
            repo = f"{REPOSITORY}-{n}"
            remote = _push(registry, opened(image), repo, compression)
            pulled[label] = (repo, pull_layers(remote, machine=machine), remote.manifest.size,
                             remote.config.size)
        cal = {}
        for key in ("tiny", "many", "big"):
            repo = f"{REPOSITORY}-calibration-{key}"
            remote = _push(registry, opened(calibration[key]), repo, None)
            cal[key] = (repo, pull_layers(remote, machine=machine), remote.manifest.size,
                        remote.config.size)
        clients = sorted({case.client for case in cases})
        runs: list[list[tuple[float, int, int]]] = [[] for _ in cases]
        probes: list[list[tuple[float, float]]] = [[] for _ in cases]
        models: list[tuple[MachineProfile, dict]] = []
        for _ in range(max(1, repeat)):  # each round calibrated afresh: the machine drifts
            models.append(calibrate_clients(registry, cal, work, clients, calibration_repeat,
                                            machine))
            for i, case in enumerate(cases):
                repo, layers, _, _ = pulled[case.image]
                before = cpu_probe(0.1) if load_probe else None
                runs[i].append(measure_pull(
                    registry, case.client, repo, "v1", work, case.node,
                    [layer.digest for layer in _upper_half(layers)],
                    parse_rate(case.bandwidth) if case.bandwidth else None,
                    parse_duration(case.latency)))
                if before is not None:  # the machine around the pull: probed on both sides
                    after = cpu_probe(0.1)
                    probes[i].append(((before[0] + after[0]) / 2, (before[1] + after[1]) / 2))
    rows = []
    for i, (case, measured) in enumerate(zip(cases, runs)):
        repo, layers, manifest_bytes, config_bytes = pulled[case.image]
        row = predict_case(case, layers, manifest_bytes, config_bytes, measured, models[0][0],
                           models[0][1], probes[i], per_run=models)
        rows.append(row)
        if on_case is not None:
            on_case(row)
    return PullValidationResult(tuple(rows), models[0][0],
                                {"rounds": [figures for _, figures in models]})


def _upper_half(layers: Sequence[PullLayer]) -> Sequence[PullLayer]:
    return layers[len(layers) // 2:]


def case_network(case: PullCase, machine: MachineProfile) -> Network:
    """The link a case's pull meets: the registry's limit, or its sending loop's pace if
    slower (``registry_send_rate``: the limit is a token bucket on an absolute schedule,
    so the loop's own time hides in its waits), and its latency as the round trip."""
    if case.bandwidth is None:
        return Network(rtt=parse_duration(case.latency))
    limit = parse_rate(case.bandwidth)
    return Network(min(limit, machine.registry_send_rate), parse_duration(case.latency))


def predict_case(case: PullCase, layers: Sequence[PullLayer], manifest_bytes: int,
                 config_bytes: int, runs: Sequence[tuple[float, int, int]],
                 machine: MachineProfile, figures: Mapping[str, Any],
                 probes: Sequence[tuple[float, float]] = (),
                 per_run: Sequence[tuple[MachineProfile, Mapping[str, Any]]] | None = None
                 ) -> dict[str, Any]:
    """The row of one case: its runs against their simulations. Run ``i`` is predicted
    with ``per_run[i]`` (its round's calibration) when given, else ``machine`` and
    ``figures``; with ``probes`` (one per run), on that machine as its probe found it.
    The error is the median of the runs' errors; ``predicted`` the median prediction."""
    node = (Node(layers=frozenset(layer.digest for layer in layers[:len(layers) // 2]),
                 label="warm") if case.node == "warm" else Node.cold())

    def predict(on: MachineProfile, fig: Mapping[str, Any], factor: float = 1.0):
        return simulate_pull(layers, node=node, network=case_network(case, on),
                             profile=calibrated_profile(case.client, fig, factor),
                             machine=on, manifest_bytes=manifest_bytes,
                             config_bytes=config_bytes,
                             burst=BURST_SECONDS if case.bandwidth else 0.0, label=case.name)

    times = [run[0] for run in runs]
    results, factors = [], []
    for i in range(len(runs)):
        on, fig = per_run[i] if per_run is not None else (machine, figures)
        if i < len(probes) and on.probe_rate > 0:
            rate, parallelism = probes[i]
            factors.append(on.probe_rate / rate)
            results.append(predict(on.under_load(rate, parallelism), fig, factors[-1]))
        else:
            results.append(predict(on, fig))
    measured = statistics.median(times)
    predicted = statistics.median(r.total for r in results)
    error = statistics.median(r.total / t - 1 for r, t in zip(results, times))
    result = results[0]
    return {"case": case.name, "image": case.image, "client": case.client, "node": case.node,
            "bandwidth": case.bandwidth, "latency": case.latency,
            "predicted": predicted, "measured": measured, "error": error, "runs": times,
            "predictions": [r.total for r in results],
            "bytes_predicted": result.bytes_downloaded, "bytes_measured": runs[0][1],
            "requests_predicted": result.requests, "requests_measured": runs[0][2],
            "dominant_phase": result.dominant_phase, "slowdown": factors}
