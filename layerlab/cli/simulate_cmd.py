"""``layerlab simulate REF``: predict a push, step by step, without pushing.

REF is any image reference layerlab reads, or ``seed`` for the seed post's story.

JSON shapes (``--json``):

* an image: ``{"label", "total", "dominant_phase", "phases": {phase: {"critical",
  "busy"}}, "bytes_sent", "bytes_compressed", "requests", "layers": [{"layer",
  "uncompressed_size", "bytes_sent", "outcome", "start", "end", "check", "mount",
  "compress", "upload", "commit"}], "critical_path": [event], "events": [event],
  "inputs": {...}}``; an event is ``{"layer", "diff_id", "phase", "start", "end",
  "bytes", "outcome", "detail", "bytes_in", "requests", "source"}``;
* ``seed``: ``{"baseline", "final", "steps": [{"step", "title", "change", "total",
  "saved", "share_of_saving", "saved_alone", "dominant_phase", "bytes_sent", "requests",
  "<phase>_s"...}], "assumptions": {...}}``.

Times in seconds, sizes in bytes.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate", help="predict how long a push takes and which step dominates",
        description="Simulate a push of REF (an image reference, or 'seed' for the seed "
                    "post's 100 s -> 20 s story) and print the breakdown.")
    p.add_argument("ref", metavar="REF", help="image reference, or 'seed'")
    p.add_argument("--profile", default="fast",
                   help="push profile: fast, docker, docker-1.7, serial (default fast)")
    p.add_argument("--workers", type=int, help="layers in flight (overrides the profile)")
    p.add_argument("--bandwidth", help="link bandwidth, e.g. '100 MB/s' (default unlimited)")
    p.add_argument("--rtt", help="round trip per request, e.g. '20 ms' (default 0)")
    p.add_argument("--existing", default="none",
                   help="layers the registry already holds: none, all, or indexes '0,1,2'")
    p.add_argument("--known", default="existing",
                   help="layers the client's digest cache knows: existing, none, all, or "
                        "indexes (default existing)")
    p.add_argument("--no-cache", action="store_true", help="registry blob-descriptor cache off")
    p.add_argument("--verify", choices=("stream", "reread"), default="stream",
                   help="registry digest verification (default stream)")
    p.add_argument("--proxy-buffer", help="a buffering proxy in front, e.g. '16 KiB'")
    p.add_argument("--machine", default="saved",
                   help="machine profile: 'saved' (calibrated, else defaults), 'default', "
                        "or a JSON path")
    p.add_argument("--events", action="store_true", help="also print every event")
    p.add_argument("--json", action="store_true", help="print JSON (shape in the module doc)")
    p.add_argument("--pull", action="store_true",
                   help="simulate a pull instead (as 'layerlab pull-cost'; --profile then "
                        "names a pull client, default docker)")
    from layerlab.cli.pullcost_cmd import add_pull_options

    add_pull_options(p, profile_default=None)
    return p


def _indexes(text: str):
    if text in ("none", "all", "existing"):
        return text
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected none, all or comma-separated layer indexes, not {text!r}") from None


def _seed(args) -> int:
    from layerlab.cli.output import print_json, print_table
    from layerlab.simulator import seed_story

    story = seed_story()
    if args.json:
        print_json(story.to_json())
        return 0
    rows = [(r["title"], f"{r['total']:.1f}", f"{r['saved']:.1f}" if r["saved"] else "",
             f"{r['share_of_saving'] * 100:.0f} %" if r["saved"] else "",
             f"{r['saved_alone']:.1f}" if r["saved_alone"] is not None else "",
             r["dominant_phase"]) for r in story.rows()]
    print("the seed's push of a 780 MB image (simulated; assumptions in "
          "layerlab.simulator.scenarios):")
    print_table(["step", "total s", "saved s", "of saving", "alone s", "dominant"], rows,
                align="lrrrrl")
    print(f"{story.baseline:.1f} s -> {story.final:.1f} s")
    return 0


def run(args) -> int:
    if args.pull:
        from layerlab.cli.pullcost_cmd import run_pull

        if args.workers is not None and args.jobs is None:
            args.jobs = args.workers
        return run_pull(args, "docker" if args.profile == "fast" else args.profile)
    if args.ref == "seed":
        return _seed(args)
    from layerlab.cli.output import print_json, print_phases, print_table
    from layerlab.pusher.profiles import get_profile
    from layerlab.simulator import simulate
    from layerlab.sources import open_image
    from layerlab.units import format_size

    profile = get_profile(args.profile)
    if args.workers is not None:
        profile = profile.with_options(concurrency=args.workers)
    image = open_image(args.ref)
    machine = None if args.machine == "default" else args.machine
    options = {}
    if args.proxy_buffer:
        options["proxy_buffer"] = args.proxy_buffer
    result = simulate(image, profile, bandwidth=args.bandwidth, rtt=args.rtt,
                      machine=machine, existing=_indexes(args.existing),
                      known=_indexes(args.known), cache=not args.no_cache,
                      verify=args.verify, label=args.ref, **options)
    if args.json:
        print_json(result.to_json())
        return 0
    print(f"{args.ref}: {result.total:.3f} s predicted with profile {profile.name} "
          f"({result.inputs['workers']} workers), {format_size(result.bytes_sent)} sent, "
          f"{result.requests} requests, dominated by {result.dominant_phase}")
    print_phases(result)
    print()
    print_table(["layer", "size", "sent", "outcome", "start s", "end s"],
                [(row["layer"][:19], format_size(row["uncompressed_size"]),
                  format_size(row["bytes_sent"]), row["outcome"], f"{row['start']:.3f}",
                  f"{row['end']:.3f}") for row in result.layers], align="lrrlrr")
    if args.events:
        print()
        print_table(["layer", "phase", "start s", "end s", "bytes", "outcome", "detail"],
                    [(e.layer[:19], e.phase, f"{e.start:.3f}", f"{e.end:.3f}", e.bytes,
                      e.outcome, e.detail) for e in result.events], align="llrrrll")
    return 0
