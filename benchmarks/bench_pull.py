#!/usr/bin/env python3
"""Benchmark: the pull simulator against real pulls (``layerlab.simulator.validate_pull``).

    python benchmarks/bench_pull.py [--scale 0.2] [--repeat 3] [--quick] [--json]

Image: ``big14`` of ``benchmarks/genimage.py`` at ``--scale`` (0.2 of the 780 MB image:
about 156 MB of files in 14 layers), pushed to a ``LocalRegistry`` twice: gzip (ISA-L
level 1) and zstd (level 3) layers. Calibration images (not the cases'): the sample
images ``base.tar`` (2 tiny layers: each client's fixed cost) and ``app24.tar`` (24
small layers: its cost per request), and ``big24`` at ``--scale`` (the same files in 24
layers: its pace per byte).

Grid: layerlab copy vs ``skopeo copy`` into an OCI layout, cold (empty) vs warm (the
layout holds the lower half of the layers), gzip vs zstd, 50 MB/s, 200 MB/s and
unlimited at 10 ms latency, plus 50 MB/s at 40 ms; and ``layerlab copy`` into a
docker-archive (every layer decompressed while downloaded: gzip vs zstd decompression on
the measured path) at 200 MB/s and unlimited, cold. Each case is measured ``--repeat``
times (in rounds over the cases, each round after its own calibration, which predicts
that round's runs: the shared machine drifts), the clients in child processes; each
case counts the median of its runs' errors (``--load-probe`` also scales each run's
prediction to a CPU probe taken around it).

Prints one row per case (measured s, predicted s, error, bytes measured = predicted),
the median and worst absolute error and the load average before and after.
Goal: median |error| <= 10 %.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/layerlab-bench"))
    parser.add_argument("--repeat", type=int, default=3, help="measured pulls per case")
    parser.add_argument("--clients", nargs="+", default=["layerlab", "skopeo"])
    parser.add_argument("--quick", action="store_true",
                        help="a subset: gzip only, 50 MB/s and 200 MB/s at 10 ms (8 cases)")
    parser.add_argument("--bandwidth", nargs="+", default=["50 MB/s", "200 MB/s", "unlimited"],
                        help="bandwidths at 10 ms ('unlimited': no limit)")
    parser.add_argument("--no-archive", dest="archive", action="store_false",
                        help="leave out the layerlab copy -> docker-archive cases")
    parser.add_argument("--load-probe", action="store_true",
                        help="scale each run's prediction to a CPU probe taken around it")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    bandwidths = [None if b == "unlimited" else b for b in args.bandwidth]

    from genimage import generate

    from layerlab.cli.output import print_table
    from layerlab.samples import samples_dir
    from layerlab.simulator.pull_validation import pull_grid, validate_pull

    image = f"docker-archive:{generate(args.out, 'big14', args.scale)}"
    samples = Path(samples_dir()) / "docker-archive"
    calibration = {"tiny": f"docker-archive:{samples / 'base.tar'}",
                   "many": f"docker-archive:{samples / 'app24.tar'}",
                   "big": f"docker-archive:{generate(args.out, 'big24', args.scale)}"}
    images = {"gzip": (image, "gzip"), "zstd": (image, "zstd")}
    if args.quick:
        cases = pull_grid(("gzip",), args.clients, ("cold", "warm"), ("50 MB/s", "200 MB/s"))
    else:
        cases = (pull_grid(("gzip", "zstd"), args.clients, ("cold", "warm"), bandwidths)
                 + pull_grid(("gzip", "zstd"), args.clients, ("cold", "warm"), ("50 MB/s",),
                             ("40 ms",)))
        if args.archive:
            cases += pull_grid(("gzip", "zstd"), ("layerlab-archive",), ("cold",),
                               [b for b in bandwidths if b != "50 MB/s"])
    load_before = os.getloadavg()
    started = time.perf_counter()

    def progress(row: dict) -> None:
        if not args.json:
            print(f"  {row['case']:<40} measured {row['measured']:7.3f} s  predicted "
                  f"{row['predicted']:7.3f} s  {row['error']:+6.1%}", file=sys.stderr, flush=True)

    result = validate_pull(images, calibration, cases, repeat=args.repeat, on_case=progress,
                           load_probe=args.load_probe)
    load_after = os.getloadavg()
    summary = {"median_abs_error": result.median_abs_error,
               "worst_abs_error": result.worst_abs_error,
               "load_before": load_before, "load_after": load_after,
               "seconds": time.perf_counter() - started, "repeat": args.repeat,
               "scale": args.scale}
    if args.json:
        print(json.dumps({**result.to_json(), **summary}, indent=2, default=str))
        return 0
    print_table(["case", "measured s", "predicted s", "error", "bytes", "requests", "dominant"],
                [(r["case"], f"{r['measured']:.3f}", f"{r['predicted']:.3f}",
                  f"{r['error']:+.1%}",
                  "=" if r["bytes_measured"] == r["bytes_predicted"]
                  else f"{r['bytes_measured']} vs {r['bytes_predicted']}",
                  f"{r['requests_measured']}/{r['requests_predicted']}", r["dominant_phase"])
                 for r in result.rows], align="lrrrrrl")
    print(f"median |error| {result.median_abs_error:.1%}, worst {result.worst_abs_error:.1%} "
          f"({len(result.rows)} cases, median of {args.repeat} runs each); load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"{summary['seconds']:.0f} s")
    for n, figures in enumerate(result.clients.get("rounds", [])):
        print(f"round {n} calibration:", json.dumps(figures, default=str))
    errors = [abs(r["error"]) for r in result.rows]
    print(f"cases within 10 %: {sum(e <= 0.10 for e in errors)}/{len(errors)}; "
          f"mean |error| {statistics.mean(errors):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
