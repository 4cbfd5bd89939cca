#!/usr/bin/env python3
"""Benchmark: load every tag of a 500-tag repository and compute its shared-layer table.

    python benchmarks/bench_load_tags.py [--tags 500] [--workers 16] [--runs 3]
                                         [--registry local|distribution]

Setup: layerlab's registry (in memory, in its own process, so that client and server
each get a core as they would on two machines) - or Debian's Distribution 2.8.2 with
``--registry distribution`` - receives one repository with ``--tags`` tags pushed
through the client's ``upload_blob``/``put_manifest``: each a small image of one shared
base layer plus a layer of its own (its own config too).

Timed, interleaved, ``--runs`` times each, with a fresh client every run (so token,
connection and config caches start cold):

* **load, sequential**: :func:`load_repository` with ``workers=1`` (the baseline);
* **load, parallel**: :func:`load_repository` with ``--workers`` threads: the tag list,
  then every manifest and config (no layer bytes);
* **shared-layer table**: :func:`layerlab.analysis.shared_layers` on the loaded images
  and its ``to_frame()`` (a digest -> count dict stands in if the analysis is missing);
* **total**: load (parallel) + table, the figure with the 2 s goal.

Prints median [min-max] of each, the speed-up of parallel over sequential, and the
verdict against the goal (< 2 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import free_port, start_distribution, wait_for_port  # noqa: E402

from layerlab.sources.remote import RegistryClient, load_repository  # noqa: E402
from layerlab.sources.remote.synthetic import push_synthetic_repository  # noqa: E402

GOAL_SECONDS = 2.0
REPOSITORY = "bench/app"


def start_registry(kind: str, scratch: Path) -> tuple[subprocess.Popen, str]:
    if kind == "distribution":
        return start_distribution(scratch)
    port = free_port()
    code = ("import time; from layerlab.registry import LocalRegistry; "
            f"LocalRegistry(memory=True, port={port}).start(); time.sleep(1e9)")
    proc = subprocess.Popen([sys.executable, "-c", code])
    wait_for_port(port, proc)
    return proc, f"127.0.0.1:{port}"


def shared_table(images):
    """The shared-layer table, or the stand-in when the analysis is not there."""
    try:
        from layerlab.analysis import shared_layers
    except ImportError:
        return Counter(layer.digest for image in images for layer in image.layers), "dict stand-in"
    result = shared_layers(images)
    return result.to_frame(), "analysis.shared_layers().to_frame()"


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tags", type=int, default=500)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--registry", choices=("local", "distribution"), default="local")
    args = parser.parse_args()

    scratch = tempfile.TemporaryDirectory(prefix="bench-load-tags-")
    proc, host = start_registry(args.registry, Path(scratch.name))
    try:
        with RegistryClient(host) as client:
            seconds, tags = timed(lambda: push_synthetic_repository(client, REPOSITORY, args.tags, workers=8))
        print(f"registry: {args.registry} at {host}; pushed {len(tags)} tags in {seconds:.2f} s")
        results: dict[str, list[float]] = {"load, sequential": [], "load, parallel": [],
                                           "shared-layer table": [], "total": []}
        how = ""
        for _ in range(args.runs):
            with RegistryClient(host, pool_size=max(32, args.workers)) as client:
                seconds, images = timed(lambda: load_repository(
                    f"{host}/{REPOSITORY}", workers=1, progress=False, client=client))
            results["load, sequential"].append(seconds)
            with RegistryClient(host, pool_size=max(32, args.workers)) as client:
                load_seconds, images = timed(lambda: load_repository(
                    f"{host}/{REPOSITORY}", workers=args.workers, progress=False, client=client))
            assert len(images) == args.tags
            table_seconds, (table, how) = timed(lambda: shared_table(images))
            results["load, parallel"].append(load_seconds)
            results["shared-layer table"].append(table_seconds)
            results["total"].append(load_seconds + table_seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        scratch.cleanup()

    print(f"{args.tags} tags, {args.workers} workers, {args.runs} runs; table by {how}")
    print(f"{'case':<22} {'seconds: median [min-max]':<28} note")
    sequential = statistics.median(results["load, sequential"])
    for case, values in results.items():
        note = ""
        if case == "load, parallel":
            note = f"{sequential / statistics.median(values):.1f}x the sequential load"
        if case == "total":
            verdict = "meets" if statistics.median(values) < GOAL_SECONDS else "MISSES"
            note = f"goal < {GOAL_SECONDS:.1f} s: {verdict} it"
        print(f"{case:<22} {summary(values):<28} {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
