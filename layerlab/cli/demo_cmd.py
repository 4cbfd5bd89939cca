"""``layerlab demo``: the end-to-end experiment from the command line, in under a minute.

Builds the sample images if needed, starts the embedded registry, pushes a sample image
with the historical (``docker-1.7``) and the ``fast`` profiles on loopback and over an
emulated WAN, prints the shared-layer table, the diff of two tags and simulated vs
measured times, and writes an HTML report with the figures (plotly.js inline: it opens
offline). ``--json`` prints::

    {"samples": str, "wan": {"latency": str, "bandwidth": str},
     "pushes": [{"image", "profile", "network", "layers", "pushed", "existing", "mounted",
                 "bytes_uploaded", "requests", "measured_seconds", "simulated_seconds",
                 "simulated_over_measured"}],
     "shared": {"naive_bytes", "deduplicated_bytes", "saved_bytes"},
     "diff": {"a", "b", "summary"}, "efficiency": {"image", "efficiency", "wasted_bytes"},
     "registry": {"requests", "errors", "misses", "bytes_in", "bytes_out", "hash_seconds",
                  "store_seconds", "by_kind"},
     "seconds": float, "report": str | null}
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo", help="run the end-to-end experiment and write an HTML report",
        description="Push the sample images to the embedded registry with historical and "
                    "modern profiles, compare with the simulator, write an HTML report.")
    parser.add_argument("--out", metavar="PATH",
                        help="report file (default: reports/demo-YYYYmmdd-HHMMSS.html)")
    parser.add_argument("--no-report", action="store_true", help="do not write the report")
    parser.add_argument("--samples", metavar="DIR", help="sample images directory, built "
                        "if missing (default: layerlab.samples.samples_dir())")
    parser.add_argument("--image", default="app24", choices=["app24", "app14", "app-v1", "app-v2"],
                        help="sample image pushed with each profile (default: app24)")
    parser.add_argument("--profiles", default="docker-1.7,fast", metavar="LIST",
                        help="comma-separated push profiles (default: docker-1.7,fast)")
    parser.add_argument("--latency", default="20 ms", help="emulated WAN latency per request")
    parser.add_argument("--bandwidth", default="50 Mbit/s", help="emulated WAN bandwidth")
    parser.add_argument("--no-wan", action="store_true", help="skip the emulated-WAN pushes")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the report path")
    return parser


def _say(quiet: bool):
    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)
    return say


def _print_results(exp: Any) -> None:
    from .._html import text_table
    from ..units import format_duration, format_size

    print("\n== Shared layers (base, app:v1, app:v2) ==")
    print(exp.shared.summary())
    labels = [i.label for i in exp.shared.images]
    rows = [{"layer": u.diff_id or u.digest, "size": u.size,
             **{label: "x" if label in u.images else "" for label in labels}}
            for u in exp.shared.layers]
    print(text_table(rows, max_rows=50))

    print(f"\n== Diff {exp.diff.a} -> {exp.diff.b} ==")
    print(exp.diff.summary())
    layer_rows = [{"status": status, "diff_id": ref.diff_id or ref.digest, "size": ref.size,
                   "created_by": (ref.created_by or "")[:60]}
                  for status, refs in (("common", exp.diff.layers.common),
                                       ("removed", exp.diff.layers.removed),
                                       ("added", exp.diff.layers.added)) for ref in refs]
    print(text_table(layer_rows))
    if exp.diff.files is not None:
        changes = exp.diff.files.to_frame()
        if len(changes):
            cols = [c for c in ("status", "path", "size_a", "size_b", "changes")
                    if c in changes.columns]
            print(text_table(changes, columns=cols or None, max_rows=15))

    print("\n== Wasted space (wasted) ==")
    print(exp.efficiency.summary())

    print("\n== Push times: measured vs simulated ==")
    rows = [{"image": r["image"], "profile": r["profile"], "network": r["network"],
             "pushed": r["pushed"], "existing": r["existing"] + r["mounted"],
             "bytes_uploaded": r["bytes_uploaded"], "requests": r["requests"],
             "measured": format_duration(r["measured_seconds"]),
             "simulated": format_duration(r["simulated_seconds"])}
            for r in (run.row() for run in exp.runs)]
    print(text_table(rows, headers={"existing": "skipped", "bytes_uploaded": "uploaded"}))
    c = exp.counters
    statuses = ", ".join(f"{n} x {code}" for code, n in sorted(c["by_status"].items()))
    print(f"\nregistry: {c['requests']} requests ({statuses}), "
          f"{format_size(c['bytes_in'])} received")


def run(args: argparse.Namespace) -> int:
    from ..notebook.experiment import experiment_report, run_experiment
    from .output import print_json

    quiet = args.quiet or args.json
    say = _say(quiet)
    profiles = tuple(p.strip() for p in args.profiles.split(",") if p.strip())
    if not profiles:
        raise ValueError("--profiles: give at least one profile")
    from ..pusher.profiles import get_profile

    for name in profiles:
        get_profile(name)  # unknown names fail here, before any work
    samples = Path(args.samples) if args.samples else None
    exp = run_experiment(samples, image=args.image, profiles=profiles,
                         wan=None if args.no_wan else (args.latency, args.bandwidth), say=say)
    if not quiet:
        _print_results(exp)
    path = None
    if not args.no_report:
        path = Path(args.out) if args.out else (
            Path("reports") / time.strftime("demo-%Y%m%d-%H%M%S.html"))
        say("\nwriting the report ...")
        experiment_report(exp).write(path)
    if args.json:
        print_json({**exp.to_json(), "report": str(path) if path else None})
    elif path is not None:
        if not args.quiet:
            print(f"\ndone in {exp.seconds:.1f} s. Report: {path}")
        else:
            print(path)
    sys.stdout.flush()
    return 0
