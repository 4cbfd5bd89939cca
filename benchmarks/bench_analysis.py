#!/usr/bin/env python3
"""Benchmark: ``layerlab diff --files`` and ``layerlab efficiency`` against dive.

    python benchmarks/bench_analysis.py [--scale 1.0] [--runs 5] [--out DIR]

Images: ``big14.tar`` and ``big14-b.tar`` of ``benchmarks/genimage.py`` (780 MB of files,
18k files, 14 uncompressed layers; the second shares the first 5 layers and has files
modified, removed, added and re-timestamped in the other 9), generated into
``/tmp/layerlab-bench`` unless already there. Each run times whole processes,
interleaved:

* **dive**: ``dive --ci --source docker-archive big14.tar`` (``CI=true``), dive's
  single-image analysis (it reads every layer and hashes every file), and the same on
  ``big14-b.tar`` (slower: its whiteouts make dive re-stack the lower layers);
* **layerlab efficiency**: ``layerlab efficiency --json big14-b.tar``;
* **layerlab diff --files**: ``layerlab diff --files --json big14.tar big14-b.tar``.

Before timing, the figures are checked: layerlab's efficiency, wasted bytes and
inefficient paths must equal dive's ``--json`` export on the same archive.

Prints median wall seconds [min-max], median CPU seconds (user + system, from
``wait4``), peak RSS, and the ratio of dive on ``big14.tar`` (the faster reference) to
each case (>= 1: at least as fast as dive).
Goal: each layerlab command no slower than dive's single-image analysis. On a shared
machine, compare ratios of one run, not absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ENV = dict(os.environ)


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, float, int, bytes]:
    """Run ``cmd``; return (wall s, CPU s, peak RSS bytes, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}): {err.decode().strip()[-500:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out


def dive_binary() -> str:
    here = Path(sys.executable).parent / "dive"
    return str(here) if here.exists() else "dive"


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def check_against_dive(archive: Path, layerlab_json: bytes) -> dict:
    """dive's --json export of ``archive`` must carry the same figures as layerlab's."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dive.json"
        timed([dive_binary(), "--ci", "--json", str(out), "--source", "docker-archive",
               str(archive)], ok=(0, 1))
        dive = json.loads(out.read_text())["image"]
    ours = json.loads(layerlab_json)
    theirs = (dive["efficiencyScore"], dive["inefficientBytes"],
              sorted((f["file"].lstrip("/"), f["count"], f["sizeBytes"]) for f in dive["fileReference"]))
    mine = (ours["efficiency"], ours["wasted_bytes"],
            sorted((p["path"], p["count"], p["cumulative_size"]) for p in ours["inefficient_paths"]))
    if theirs != mine:
        raise SystemExit(f"layerlab and dive disagree: {theirs[:2]} vs {mine[:2]}")
    return ours


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="genimage scale (default 1.0)")
    parser.add_argument("--runs", type=int, default=5, help="runs per case (default 5)")
    parser.add_argument("--out", default="/tmp/layerlab-bench", help="archive directory")
    args = parser.parse_args(argv)

    from genimage import generate

    a = generate(args.out, "big14", args.scale)
    b = generate(args.out, "big14-b", args.scale)
    python = sys.executable
    ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    ENV["PYTHONPYCACHEPREFIX"] = str(Path(args.out) / "pycache")
    ENV["CI"] = "true"
    cases = {
        "dive --ci (big14)": ([dive_binary(), "--ci", "--source", "docker-archive", str(a)],
                              (0, 1)),
        "dive --ci (big14-b)": ([dive_binary(), "--ci", "--source", "docker-archive", str(b)],
                                (0, 1)),
        "layerlab efficiency (big14-b)": ([python, "-m", "layerlab", "efficiency", "--json",
                                           str(b)], (0,)),
        "layerlab diff --files (big14 -> big14-b)": ([python, "-m", "layerlab", "diff", "--files",
                                                      "--json", str(a), str(b)], (1,)),
    }
    # warm the page cache and the bytecode cache; check the figures
    for cmd, ok in cases.values():
        timed(cmd, ok)
    _, _, _, eff_json = timed(*cases["layerlab efficiency (big14-b)"])
    figures = check_against_dive(b, eff_json)
    _, _, _, diff_json = timed(*cases["layerlab diff --files (big14 -> big14-b)"])
    files = json.loads(diff_json)["files"]

    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    rss: dict[str, list[int]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, (cmd, ok) in cases.items():
            elapsed, used, peak, _ = timed(cmd, ok)
            wall[name].append(elapsed)
            cpu[name].append(used)
            rss[name].append(peak)

    print(f"images: {a.name} ({a.stat().st_size / 1e6:.1f} MB), {b.name} "
          f"({b.stat().st_size / 1e6:.1f} MB); {args.runs} interleaved runs, median "
          f"[min-max]; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    print(f"efficiency {figures['efficiency']:.6f}, wasted {figures['wasted_bytes']} bytes "
          f"(= dive's); diff: {len(files['added'])} added, {len(files['removed'])} removed, "
          f"{len(files['modified'])} modified, {files['compared_files']} files "
          f"({files['compared_bytes'] / 1e6:.0f} MB) compared")
    dive = "dive --ci (big14)"
    print(f"{'case':42} {'wall s':>22} {'cpu s':>7} {'RSS MB':>7} {'dive/this':>10}")
    for name in cases:
        ratio = statistics.median(wall[dive]) / statistics.median(wall[name])
        print(f"{name:42} {summary(wall[name]):>22} {statistics.median(cpu[name]):7.2f} "
              f"{max(rss[name]) / 1e6:7.1f} {ratio:9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
