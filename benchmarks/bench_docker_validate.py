#!/usr/bin/env python3
"""The simulator against the real engine: ``layerlab simulate`` (profile ``docker``) vs
measured ``docker push`` (Debian's dockerd 20.10) into Distribution 2.8.2 on loopback and
into layerlab's registry with its WAN knobs.

    python benchmarks/bench_docker_validate.py [--runs 3] [--scale 0.25] [--dir DIR]
                                               [--cases fresh14,...] [--json FILE]

Calibration, run by run interleaved with the cases and on other pushes than theirs, from
the engine itself
(the simulator's model is fitted to these pushes, then predicts the cases). An engine
started with ``--max-concurrent-uploads=1`` pushes small images made for it, each to a
fresh Distribution, median of at least 3 pushes each (the re-pushes
:data:`REPUSHES` times as many); one figure is fitted per push so
that the simulation of that push equals its measured median, in this order:

* ``repush_one`` and ``repush_many`` (re-pushes, HEADs only, of an image of one layer and
  of one of 48 tiny layers): the engine's fixed cost per push and the time of one
  request (the engine's and Distribution's together);
* ``repush_many_parallel`` (the same re-push from an engine uploading 5 layers at once,
  as the cases' engines do): which share of a request's time is the engine's own
  (concurrent requests overlap it) and which Distribution's (``serial_requests``: it
  answers bodiless requests one at a time);
* ``fresh_many`` (the 48 tiny layers, fresh): each blob commit's own wait;
* ``fresh_one`` (one layer holding a 64 MB sample of the cases' images' content, as one
  file): the engine's compression pipeline (dockerd reassembles the layer tar from its
  graph driver, checks its diff_id, compresses it with Go's ``compress/gzip`` at level 6
  and hashes the output, one goroutine per layer), standing in the machine profile for
  the ``zlib-6`` key the ``docker`` profile names (the layers' ratios are measured with
  zlib 6 on samples too: Go's output is within 1 %);
* ``fresh_files`` (the same 64 MB as 2,048 files): the engine's cost per file;
* ``pulled_many`` (a just-started engine pulls the 48-layer image and pushes it back to
  its repository, HEADs only): the engine's own start of each layer on its first push of
  an image (``client_layer_overhead``; every case but ``repush14`` is a first push: each
  starts its engine). A one-layer first push costs what a re-push does; a 14-layer one,
  12-21 ms more, as much from 5 uploads at once as from one, so the starts are in a row;
  and the extra is per layer, not per request (as per request, it predicted mounts,
  three requests a layer, 2x too slow);
* ``mount_many`` (another just-started engine pulls the 48-layer image from repository
  A and pushes it to B: cross-repository mounts): each mount's own wait;
* Distribution's ingest rate (a 64 MiB monolithic upload with ``requests``); it runs
  on the client's cores, as its own process (``same_machine``);
* the rest (cores, sha256) from :func:`layerlab.simulator.calibrate` (quick).

Cases (genimage's big14 / big24 at ``--scale``, ``docker load``-ed):

* ``fresh14``, ``fresh24``: to an empty Distribution (every layer compressed and sent);
* ``serial14``: fresh, on an engine started with ``--max-concurrent-uploads=1``;
* ``repush14``: again to the same registry (the engine knows every layer: HEADs only);
* ``pulled14``: an engine that ``docker pull``-ed big14 pushes it back to the same
  repository (the pull's metadata: HEADs only);
* ``mount14``: an engine that ``docker pull``-ed big14 from repository A pushes it to
  repository B of the same registry (cross-repository mounts);
* ``reload14``: an engine that only ``docker load``-ed big14 (no metadata) pushes to a
  registry that already holds it: docker cannot know, and compresses and sends it all;
* ``wan14``: fresh, into layerlab's registry emulating 100 Mbit/s and 20 ms.

Every timed push starts after a ``sync`` (see :func:`docker_push`). Each case is measured
``--runs`` times (median) and simulated once with the same inputs;
the table gives measured, simulated and the relative error, then the median and worst
|error|.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_push import Distribution, run_child  # noqa: E402
from dockerd import DockerEngine, start_dockerd  # noqa: E402

import layerlab  # noqa: E402
from layerlab.pusher import get_profile  # noqa: E402
from layerlab.simulator import RegistrySettings, simulate  # noqa: E402
from layerlab.simulator.calibration import calibrate  # noqa: E402
from layerlab.simulator.validation import content_sample  # noqa: E402
from layerlab.simulator.inputs import LayerSpec, Network, layers_from_image, measure_ratio  # noqa: E402,E501

CASES = ("fresh14", "fresh24", "serial14", "repush14", "pulled14", "mount14", "reload14",
         "wan14")
WAN = ("100 Mbit/s", "20 ms")
CALIBRATION_BYTES = 64_000_000
CALIBRATION_FILES = 2048
CALIBRATION_LAYERS = 48
REPUSHES = 5


def docker_push(engine: DockerEngine, source: str, dest: str) -> float:
    """Wall seconds of ``docker push`` of ``source`` tagged as ``dest``. The page cache is
    flushed first (``sync``): the writeback of what came before (a ``docker load`` or
    ``pull``, the last push's registry) would otherwise run during the push; measured,
    it slowed fresh14 by 11 % and pulled14 by 30 ms, which is no cost of the push."""
    engine.docker("tag", source, dest)
    os.sync()
    try:
        seconds, _ = run_child([engine.client, "push", "--quiet", dest], env=engine.env)
    finally:
        engine.docker("rmi", dest)
    return seconds


def load(engine: DockerEngine, archive: Path, tag: str) -> None:
    out = engine.docker("load", "-i", str(archive)).stdout.decode()
    engine.docker("tag", out.strip().split()[-1], tag)


def _docker_archive(path: Path, tag: str, files: list[list[tuple[str, bytes]]]) -> Path:
    """A ``docker save`` archive of one layer per list of ``(name, content)`` files."""
    diff_ids, names = [], []
    with tarfile.open(path, "w") as out:
        for n, layer_files in enumerate(files):
            layer = io.BytesIO()
            with tarfile.open(fileobj=layer, mode="w") as tar:
                for name, content in layer_files:
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime = len(content), 1_600_000_000
                    tar.addfile(info, io.BytesIO(content))
            data = layer.getvalue()
            diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
            names.append(f"{n}/layer.tar")
            _add(out, names[-1], data)
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {n}"} for n in range(len(files))]}).encode()
        _add(out, "config.json", config)
        _add(out, "manifest.json", json.dumps(
            [{"Config": "config.json", "RepoTags": [tag], "Layers": names}]).encode())
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def calibration_images(work: Path, content: bytes) -> dict[str, tuple[Path, tuple[LayerSpec, ...]]]:
    """The calibration images (``one``, ``files``, ``many``): archives and layer specs."""
    piece = len(content) // CALIBRATION_FILES
    layouts = {
        "one": [[("calibration.bin", content)]],
        "files": [[(f"f{n:04d}.bin", content[n * piece:(n + 1) * piece])
                   for n in range(CALIBRATION_FILES)]],
        "many": [[(f"tiny{n}.bin", os.urandom(4096))] for n in range(CALIBRATION_LAYERS)],
    }
    out = {}
    for name, files in layouts.items():
        archive = _docker_archive(work / f"calib-{name}.tar", f"calib/{name}:1", files)
        out[name] = (archive, layers_from_image(layerlab.open_image(f"docker-archive:{archive}")))
    return out


def distribution_settings(reg: Distribution) -> RegistrySettings:
    """Distribution's ingest rate, measured; it shares the client's cores as a process of
    its own (``same_machine``: measured, treating it as a separate machine predicted
    fresh pushes 17-21 % too fast)."""
    import requests

    blob = os.urandom(64 << 20)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    with requests.Session() as s:
        base = f"http://{reg.host}/v2/calib/blob"
        start = time.perf_counter()
        location = s.post(f"{base}/blobs/uploads/").headers["Location"]
        url = location if location.startswith("http") else f"http://{reg.host}{location}"
        s.put(url, params={"digest": digest}, data=blob).raise_for_status()
        ingest = len(blob) / (time.perf_counter() - start)
    return RegistrySettings(same_machine=True, ingest_rate=ingest)


def _fit(target: float, predict, low: float, high: float) -> float:
    """The parameter in [low, high] whose (increasing or decreasing) prediction is target."""
    rising = predict(high) > predict(low)
    for _ in range(50):
        mid = (low + high) / 2
        if (predict(mid) < target) == rising:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def measure_calibration(work: Path, runs: int, images: dict,
                        between: Callable[[int], None] | None = None) -> dict[str, float]:
    """Median seconds of each calibration push (see the module docstring); the re-pushes
    take 30-60 ms, so each run repeats them :data:`REPUSHES` times. ``between(run)`` is
    called after each run's calibration pushes (the cases' pushes of that run: this
    machine's speed drifts by 20 % within minutes, so the two interleave)."""
    pushes: dict[str, list[float]] = {k: [] for k in (
        "repush_one", "repush_many", "repush_many_parallel", "fresh_many", "fresh_one",
        "fresh_files", "pulled_many", "mount_many")}
    serial = ["--max-concurrent-uploads=1"]
    with start_dockerd(extra_args=serial) as engine, start_dockerd() as parallel:
        for name, (archive, _) in images.items():
            engine.docker("load", "-i", str(archive))
        parallel.docker("load", "-i", str(images["many"][0]))
        for run in range(max(3, runs)):
            for name in ("one", "files", "many"):
                reg = Distribution(work / f"reg-calib-{name}-{run}")
                try:
                    dest = f"{reg.host}/calib/{name}:1"
                    pushes[f"fresh_{name}"].append(docker_push(engine, f"calib/{name}:1", dest))
                    if name != "files":
                        pushes[f"repush_{name}"].extend(
                            docker_push(engine, f"calib/{name}:1", dest) for _ in range(REPUSHES))
                    if name == "many":
                        docker_push(parallel, "calib/many:1", dest)  # its layers, known
                        pushes["repush_many_parallel"].extend(
                            docker_push(parallel, "calib/many:1", dest) for _ in range(REPUSHES))
                        for kind, target in (("pulled", "many:2"), ("mount", "other:1")):
                            with start_dockerd(extra_args=serial) as other:
                                other.docker("pull", dest)
                                pushes[f"{kind}_many"].append(
                                    docker_push(other, dest, f"{reg.host}/calib/{target}"))
                finally:
                    reg.stop()
            if between is not None and run < runs:
                between(run)
    return {k: statistics.median(v) for k, v in pushes.items()}


def calibrate_docker(work: Path, runs: int, cases: list,
                     between: Callable[[int], None] | None = None):
    """The machine profile and registry settings of dockerd's pushes to Distribution, fitted
    to the calibration pushes (see the module docstring; ``between`` as in
    :func:`measure_calibration`)."""
    machine = calibrate(quick=True, registry=False, save=False)
    content = content_sample(cases, CALIBRATION_BYTES)[:CALIBRATION_BYTES]
    images = calibration_images(work, content)
    measured = measure_calibration(work, runs, images, between)
    reg = Distribution(work / "reg-calibration")
    try:
        settings = distribution_settings(reg)
    finally:
        reg.stop()
    one = images["one"][1][0].with_options(compressibility=measure_ratio(content, "zlib-6"))
    files = one.with_options(files=CALIBRATION_FILES)
    one = one.with_options(files=1)
    many = tuple(layer.with_options(files=1) for layer in images["many"][1])
    parallel = get_profile("docker")
    profile = parallel.with_options(concurrency=1)
    figures = {"overhead": 0.0, "request": 0.0, "client_share": 0.0, "blob": 0.0,
               "rate": 30e6, "file": 0.0, "first_layer": 0.0, "mount": 0.0}

    def model(**changes: float):
        f = {**figures, **changes}
        client = f["request"] * f["client_share"]
        m = machine.with_options(compress_rate={**machine.compress_rate, "zlib-6": f["rate"]},
                                 client_push_overhead=f["overhead"], client_stream_cost=0.0,
                                 client_request_overhead=client, client_file_cost=f["file"],
                                 client_layer_overhead=f["first_layer"])
        r = settings.with_options(request_overhead=f["request"] - client, blob_overhead=f["blob"],
                                  mount_overhead=f["mount"], lookup_cost=0.0,
                                  cached_lookup_cost=0.0, serial_requests=True)
        return m, r

    def sim(layers, kwargs, _profile=profile, **changes):
        m, r = model(**changes)
        return simulate(list(layers), _profile, machine=m, registry=r, **kwargs).total

    repush = {"existing": "all", "known": "all"}
    fresh = {"known": "none"}

    def overhead_for(request: float) -> float:
        return _fit(measured["repush_one"], lambda o: sim([one], repush, overhead=o,
                                                          request=request), 0.0, 1.0)

    figures["request"] = _fit(measured["repush_many"], lambda q: sim(
        many, repush, overhead=overhead_for(q), request=q), 0.0, 0.05)
    figures["overhead"] = overhead_for(figures["request"])
    # a serial engine's requests are in a row whoever's share is whose; 5 uploads at once
    # overlap the engine's own share
    figures["client_share"] = _fit(measured["repush_many_parallel"], lambda f: sim(
        many, repush, client_share=f, _profile=parallel), 0.0, 1.0)
    figures["blob"] = _fit(measured["fresh_many"], lambda b: sim(many, fresh, blob=b), 0.0, 0.5)
    figures["rate"] = _fit(measured["fresh_one"], lambda r: sim([one], fresh, rate=r), 1e6, 1e9)
    figures["file"] = _fit(measured["fresh_files"], lambda c: sim([files], fresh, file=c),
                           0.0, 0.01)
    pulled = {"existing": {"calib/many": "all"}, "known": "existing"}
    first = _fit(measured["pulled_many"], lambda c: sim(
        many, {**pulled, "repository": "calib/many"}, first_layer=c), 0.0, 0.05)
    figures["mount"] = _fit(measured["mount_many"], lambda c: sim(
        many, {**pulled, "repository": "calib/other"}, mount=c, first_layer=first), 0.0, 0.5)
    figures["first_layer"] = first
    m, r = model(first_layer=0.0)
    m = m.with_options(source="dockerd 20.10 (bench_docker_validate calibration)")
    return m, r, {**{f"measured_{k}": v for k, v in measured.items()},
                  **{f"fitted_{k}": v for k, v in figures.items()},
                  "distribution_ingest": settings.ingest_rate}


class Cases:
    """The measured side: engines, registries and the pushes of each case."""

    def __init__(self, images: dict[str, Path], work: Path) -> None:
        self.images, self.work = images, work
        self.n = 0

    def _registry(self) -> Distribution:
        self.n += 1
        return Distribution(self.work / f"reg-{self.n}")

    def measure(self, case: str) -> float:
        image = "big24" if case == "fresh24" else "big14"
        extra = ["--max-concurrent-uploads=1"] if case == "serial14" else []
        with start_dockerd(extra_args=extra) as engine:
            load(engine, self.images[image], f"bench/{image}:loaded")
            source = f"bench/{image}:loaded"
            if case == "wan14":
                with layerlab.LocalRegistry(self.work / f"wan-{self.n}", bandwidth=WAN[0],
                                            latency=WAN[1]) as reg:
                    self.n += 1
                    return docker_push(engine, source, f"{reg.host}/bench/big14:wan")
            reg = self._registry()
            try:
                if case in ("fresh14", "fresh24", "serial14"):
                    return docker_push(engine, source, f"{reg.host}/bench/{image}:1")
                if case == "repush14":
                    docker_push(engine, source, f"{reg.host}/bench/big14:1")
                    return docker_push(engine, source, f"{reg.host}/bench/big14:1")
                if case == "reload14":
                    docker_push(engine, source, f"{reg.host}/bench/big14:1")
                    with start_dockerd() as other:  # knows nothing of that push
                        load(other, self.images[image], source)
                        return docker_push(other, source, f"{reg.host}/bench/big14:2")
                if case in ("mount14", "pulled14"):
                    docker_push(engine, source, f"{reg.host}/bench/a:1")
                    with start_dockerd() as other:
                        other.docker("pull", f"{reg.host}/bench/a:1")
                        target = "b:1" if case == "mount14" else "a:2"
                        return docker_push(other, f"{reg.host}/bench/a:1",
                                           f"{reg.host}/bench/{target}")
            finally:
                reg.stop()
        raise ValueError(f"unknown case {case!r}")


def predict(case: str, specs: dict, machine, settings: RegistrySettings,
            first_layer: float) -> float:
    """The simulated seconds of ``case``: every case but ``repush14`` is the first push of
    a just-started engine, which starts each layer in ``first_layer``, one at a time."""
    image = "big24" if case == "fresh24" else "big14"
    if case != "repush14":
        machine = machine.with_options(client_layer_overhead=first_layer)
    layers = specs[image]
    profile = get_profile("docker")
    if case == "serial14":
        profile = profile.with_options(concurrency=1)
    kwargs: dict = {"registry": settings, "known": "none"}
    if case == "repush14":
        kwargs.update(existing="all", known="all")
    elif case == "reload14":
        kwargs.update(existing="all", known="none")
    elif case == "mount14":
        kwargs.update(existing={"bench/a": "all"}, known="existing", repository="bench/b")
    elif case == "pulled14":
        kwargs.update(existing={"bench/a": "all"}, known="existing", repository="bench/a")
    elif case == "wan14":
        kwargs.update(registry=RegistrySettings.local(),
                      network=Network.of(WAN[0], WAN[1]))
    return simulate(layers, profile, machine=machine, label=case, **kwargs).total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/layerlab-bench"))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    cases = args.cases.split(",")
    from genimage import generate

    images = {name: Path(generate(args.dir, name, scale=args.scale)) for name in ("big14", "big24")}
    with tempfile.TemporaryDirectory(prefix="bench-dval-") as tmp:
        work = Path(tmp)
        opened = [layerlab.open_image(f"docker-archive:{path}") for path in images.values()]
        measured: dict[str, list[float]] = {c: [] for c in cases}
        runner = Cases(images, work)

        def cases_run(run: int) -> None:
            for case in cases:
                measured[case].append(runner.measure(case))
            print(f"run {run + 1}/{args.runs}: " + ", ".join(
                f"{c} {measured[c][-1]:.2f}s" for c in cases), file=sys.stderr)

        machine, settings, calibration = calibrate_docker(work, args.runs, opened, cases_run)
        print("calibration: " + ", ".join(f"{k} {v:.4g}" for k, v in calibration.items()),
              file=sys.stderr)
        specs = {name: layers_from_image(layerlab.open_image(f"docker-archive:{path}"),
                                         machine=machine) for name, path in images.items()}
    rows = []
    for case in cases:
        m = statistics.median(measured[case])
        p = predict(case, specs, machine, settings, calibration["fitted_first_layer"])
        rows.append({"case": case, "measured": m, "simulated": p, "error": p / m - 1,
                     "runs": measured[case]})
    print(f"\nscale {args.scale}, medians of {args.runs} runs")
    print(f"{'case':10} {'measured':>10} {'simulated':>10} {'error':>8}")
    for r in rows:
        print(f"{r['case']:10} {r['measured']:9.3f}s {r['simulated']:9.3f}s {r['error']:+8.1%}")
    errors = [abs(r["error"]) for r in rows]
    print(f"median |error| {statistics.median(errors):.1%}, worst {max(errors):.1%} "
          "(goal: <= 10 %, <= 20 %)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "calibration": calibration,
                                         "scale": args.scale, "runs": args.runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
