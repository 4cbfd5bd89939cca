#!/usr/bin/env python3
"""The seed's before/after table on the real engine (dockerd 20.10 + Distribution 2.8.2),
next to ``layerlab simulate seed`` and to the simulator's prediction of each measured step.

    python benchmarks/bench_docker_seed.py [--runs 3] [--scale 0.25] [--dir DIR] [--json FILE]

The seed's factors, applied one after another as the post did (each row keeps the ones
above it):

1. before: big24 (24 layers), ``--max-concurrent-uploads=1`` (the Jenkins plugin pushed
   serially), Distribution without its blob-descriptor cache, and an engine that knows
   nothing of the base layers the registry already holds (``docker load``: no metadata,
   so it sends them again);
2. 24 -> 14 layers (big14: the same files);
3. existing layers not re-sent: the engine has pulled the base image (big14-b, which
   shares big14's first 5 layers) from the registry, so it mounts them instead;
4. registry cache on (``storage.cache.blobdescriptor: inmemory``);
5. parallel upload (the default 5 concurrent uploads).

And the build side: ``docker build`` (legacy builder) of a Dockerfile whose context holds
a large folder, without and with a ``.dockerignore`` that keeps it out.

Not reproducible here, and said so in the output: Docker 1.7 and registry 2.2 themselves
(Debian ships dockerd 20.10; the simulator's ``docker-1.7`` profile models them), nginx in
front of the registry, and the post's 100 Mbit/s link (the pushes are on loopback; the
WAN knobs of layerlab's registry are measured by ``bench_docker_validate.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_docker_validate import calibrate_docker, docker_push, load  # noqa: E402
from bench_push import Distribution  # noqa: E402
from dockerd import start_dockerd  # noqa: E402

import layerlab  # noqa: E402
from layerlab.pusher import get_profile  # noqa: E402
from layerlab.simulator import RegistrySettings, simulate  # noqa: E402
from layerlab.simulator.inputs import layers_from_image  # noqa: E402

CACHE_ON = "  cache:\n    blobdescriptor: inmemory\n"
SHARED = 5  # big14-b shares big14's first 5 layers
STEPS = ("before", "24 -> 14 layers", "existing layers not re-sent", "registry cache on",
         "parallel upload")


def settings_of(step: int) -> dict:
    return {"image": "big24" if step == 0 else "big14", "known_base": step >= 2,
            "cache": step >= 3, "uploads": 5 if step >= 4 else 1}


def measure(step: int, images: dict[str, Path], work: Path, n: int) -> float:
    s = settings_of(step)
    reg = Distribution(work / f"reg-{step}-{n}", CACHE_ON if s["cache"] else "")
    try:
        with start_dockerd() as builder:  # the base image, pushed by someone else
            load(builder, images["big14-b"], "bench/base:loaded")
            docker_push(builder, "bench/base:loaded", f"{reg.host}/bench/base:1")
        extra = [f"--max-concurrent-uploads={s['uploads']}"]
        with start_dockerd(extra_args=extra) as engine:
            if s["known_base"]:
                engine.docker("pull", f"{reg.host}/bench/base:1")
            load(engine, images[s["image"]], "bench/app:loaded")
            return docker_push(engine, "bench/app:loaded", f"{reg.host}/bench/app:1")
    finally:
        reg.stop()


def predict(step: int, specs: dict, machine, settings: RegistrySettings) -> float:
    s = settings_of(step)
    layers = specs[s["image"]]
    base = specs["big14-b"]
    shared = [i for i, spec in enumerate(layers) if spec.diff_id in
              {b.diff_id for b in base[:SHARED]}]
    profile = get_profile("docker").with_options(concurrency=s["uploads"])
    registry = settings.with_options(cache=s["cache"])
    return simulate(layers, profile, machine=machine, registry=registry,
                    existing={"bench/base": shared},
                    known="existing" if s["known_base"] else "none",
                    repository="bench/app", label=STEPS[step]).total


def build_context_seconds(work: Path, ignored_bytes: int, runs: int) -> tuple[float, float]:
    """Median ``docker build`` seconds without and with the ``.dockerignore``."""
    context = work / "context"
    (context / "node_modules").mkdir(parents=True)
    chunk = 8 << 20
    for i in range(max(1, ignored_bytes // chunk)):
        (context / "node_modules" / f"blob{i}.bin").write_bytes(i.to_bytes(4, "big") * (chunk // 4))
    (context / "app.txt").write_text("the app\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /app.txt\n")
    times: dict[bool, list[float]] = {False: [], True: []}
    with start_dockerd() as engine:
        for run in range(runs):
            for ignore in (False, True):
                ignore_file = context / ".dockerignore"
                if ignore:
                    ignore_file.write_text("node_modules\n")
                else:
                    ignore_file.unlink(missing_ok=True)
                start = time.perf_counter()
                subprocess.run([engine.client, "build", "--no-cache", "-q", "-t",
                                f"ctx/{int(ignore)}:{run}", str(context)], env={
                                    **engine.env, "DOCKER_BUILDKIT": "0"},
                               check=True, capture_output=True)
                times[ignore].append(time.perf_counter() - start)
    return statistics.median(times[False]), statistics.median(times[True])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/layerlab-bench"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from genimage import generate

    images = {name: Path(generate(args.dir, name, scale=args.scale))
              for name in ("big14", "big24", "big14-b")}
    opened = {name: layerlab.open_image(f"docker-archive:{path}") for name, path in images.items()}
    with tempfile.TemporaryDirectory(prefix="bench-dseed-") as tmp:
        work = Path(tmp)
        machine, settings, calibration = calibrate_docker(work, args.runs, list(opened.values()))
        specs = {name: layers_from_image(image, machine=machine) for name, image in opened.items()}
        measured: dict[int, list[float]] = {i: [] for i in range(len(STEPS))}
        for run in range(args.runs):
            for step in range(len(STEPS)):
                measured[step].append(measure(step, images, work, run))
            print(f"run {run + 1}/{args.runs}: " + ", ".join(
                f"{measured[i][-1]:.2f}s" for i in range(len(STEPS))), file=sys.stderr)
        context = build_context_seconds(work, int(780e6 * args.scale), args.runs)
    rows = []
    for step, name in enumerate(STEPS):
        m = statistics.median(measured[step])
        p = predict(step, specs, machine, settings)
        rows.append({"step": name, "measured": m, "simulated": p, "error": p / m - 1,
                     "runs": measured[step]})
    print(f"\nthe seed on dockerd 20.10 + Distribution 2.8.2, loopback, scale {args.scale} "
          f"({images['big14'].stat().st_size / 1e6:.0f} MB of layers), medians of {args.runs}")
    print(f"{'step':30} {'measured':>9} {'saved':>8} {'simulated':>10} {'error':>7}")
    previous = None
    for r in rows:
        saved = "" if previous is None else f"{previous - r['measured']:7.2f}s"
        print(f"{r['step']:30} {r['measured']:8.2f}s {saved:>8} {r['simulated']:9.2f}s "
              f"{r['error']:+7.1%}")
        previous = r["measured"]
    first, last = rows[0]["measured"], rows[-1]["measured"]
    print(f"{first:.2f} s -> {last:.2f} s ({first / last:.1f}x)")
    print(f"docker build, {int(780e6 * args.scale) / 1e6:.0f} MB folder in the context: "
          f"{context[0]:.2f} s without .dockerignore, {context[1]:.2f} s with it")
    print("not reproduced here: docker 1.7 / registry 2.2 themselves, nginx, the 100 Mbit/s link")
    print()
    print(subprocess.run([sys.executable, "-m", "layerlab", "simulate", "seed"], check=True,
                         capture_output=True, text=True).stdout, end="")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "calibration": calibration,
                                         "build_context": context, "scale": args.scale},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
