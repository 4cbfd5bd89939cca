#!/usr/bin/env python3
"""Benchmark: ``layerlab inspect --verify`` against plain hashlib over the same bytes.

    python benchmarks/bench_inspect.py [--name big14] [--scale 1.0] [--runs 5] [--out DIR]

The image is the ~780 MB, 14-layer docker-save archive of ``benchmarks/genimage.py``
(generated into ``/tmp/layerlab-bench`` unless already there). Each run times a whole
process, interleaved:

* **layerlab**: ``python -m layerlab inspect --verify ARCHIVE`` (open the archive, verify
  the config, hash every layer -- digest, size and diff_id -- in parallel threads);
* **hashlib**: a small Python process that finds the layer members with ``tarfile``
  and sha256-hashes each one's bytes in 1 MiB reads, one after another (what a
  straightforward script does);
* **layerlab (no verify)**: ``layerlab inspect ARCHIVE``, for the cost of opening alone.

Child processes use a bytecode cache under ``OUT/pycache`` (as an installed package
would have), so startup is not dominated by recompiling layerlab on every run.

Prints the median of ``--runs`` runs [min-max], the speed ratio (hashlib time / layerlab
time: >= 1 means layerlab is at least as fast) and each process's peak RSS (``wait4``).
Goal: ratio >= 0.9, peak RSS < 100 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PLAIN_HASH = r"""
import hashlib, json, sys, tarfile
path = sys.argv[1]
with tarfile.open(path) as tar:
    members = {m.name: m for m in tar.getmembers()}
    entries = json.load(tar.extractfile("manifest.json"))
buf = bytearray(1 << 20)
view = memoryview(buf)
with open(path, "rb", buffering=0) as f:
    for name in entries[0]["Layers"]:
        m = members[name]
        f.seek(m.offset_data)
        h, left = hashlib.sha256(), m.size
        while left:
            n = f.readinto(view[:min(len(buf), left)])
            h.update(view[:n])
            left -= n
        print("sha256:" + h.hexdigest())
"""


ENV = dict(os.environ)


def timed(cmd: list[str]) -> tuple[float, int, bytes]:
    """Run ``cmd``; return (wall seconds, peak RSS in bytes, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode().strip()}")
    return elapsed, usage.ru_maxrss * 1024, out


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="big14", help="genimage archive name (default big14)")
    parser.add_argument("--scale", type=float, default=1.0, help="genimage scale (default 1.0)")
    parser.add_argument("--runs", type=int, default=5, help="runs per case (default 5)")
    parser.add_argument("--out", default="/tmp/layerlab-bench", help="archive directory")
    parser.add_argument("--archive", help="use this docker-save archive instead")
    args = parser.parse_args(argv)

    if args.archive:
        archive = Path(args.archive)
    else:
        from genimage import generate

        archive = generate(args.out, args.name, args.scale)
    python = sys.executable
    # as an installed package runs: byte-compiled modules cached (outside the checkout),
    # even where PYTHONDONTWRITEBYTECODE is set; the warm-up runs below fill the cache
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(Path(args.out) / "pycache")
    cases = {
        "layerlab inspect --verify": [python, "-m", "layerlab", "inspect", "--verify", str(archive)],
        "hashlib sha256 (plain)": [python, "-c", PLAIN_HASH, str(archive)],
        "layerlab inspect (no verify)": [python, "-m", "layerlab", "inspect", str(archive)],
    }
    # warm the page cache and check both agree on every layer digest
    _, _, plain = timed(cases["hashlib sha256 (plain)"])
    _, _, ours = timed(cases["layerlab inspect --verify"] + ["--json"])
    import json

    layers = [layer["digest"] for layer in json.loads(ours)["layers"]]
    if layers != plain.decode().split():
        raise SystemExit("layerlab and hashlib disagree on the layer digests")
    size = archive.stat().st_size

    times: dict[str, list[float]] = {name: [] for name in cases}
    rss: dict[str, list[int]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, cmd in cases.items():
            elapsed, peak, _ = timed(cmd)
            times[name].append(elapsed)
            rss[name].append(peak)

    print(f"archive: {archive} ({size / 1e6:.1f} MB, {len(layers)} layers); "
          f"{args.runs} interleaved runs, median [min-max]; {os.cpu_count()} CPUs")
    print(f"{'case':32} {'wall s':>24} {'MB/s':>8} {'peak RSS MB':>12}")
    for name in cases:
        median = statistics.median(times[name])
        print(f"{name:32} {summary(times[name]):>24} {size / 1e6 / median:8.0f} "
              f"{max(rss[name]) / 1e6:12.1f}")
    ratio = statistics.median(times["hashlib sha256 (plain)"]) / statistics.median(
        times["layerlab inspect --verify"])
    print(f"speed ratio layerlab/hashlib: {ratio:.2f}x (goal >= 0.9x); "
          f"layerlab peak RSS {max(rss['layerlab inspect --verify']) / 1e6:.1f} MB (goal < 100 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
