"""``layerlab pull-cost REF``: predict a pull, step by step, without pulling.

REF is any image reference layerlab reads, or ``seed`` for the seed story's pull-side
twin (a cold node vs a warm one, 24 vs 14 layers, gzip vs zstd, lazy zstd:chunked).

JSON shapes (``--json``):

* an image: ``{"label", "profile", "total", "dominant_phase", "phases": {phase:
  {"critical", "busy"}}, "bytes_downloaded", "bytes_skipped", "requests", "layers":
  [{"layer", "digest", "diff_id", "size", "uncompressed_size", "compression",
  "lazy_format", "outcome", "bytes_downloaded", "files_fetched", "files_reused",
  "start", "end", "download", "sync", "toc", "fetch", "extract"}], "critical_path":
  [event], "events": [event], "inputs": {...}}``; an event is ``{"layer", "diff_id",
  "phase", "start", "end", "bytes", "outcome", "detail", "bytes_in", "requests",
  "source"}``; ``outcome`` is ``downloaded``, ``unpacked``, ``present`` or ``lazy``;
  phases: ``start``, ``manifest``, ``config``, ``download``, ``sync``, ``toc``,
  ``fetch``, ``extract``;
* ``seed``: ``{"baseline", "steps": [{"step", "title", "total", "saved",
  "bytes_downloaded", "requests", "dominant_phase", "<phase>_s"...}], "assumptions": {...}}``.

Times in seconds, sizes in bytes.
"""

from __future__ import annotations

import argparse

PROFILES = ("docker", "containerd", "skopeo", "layerlab", "layerlab-archive", "stargz",
            "podman-chunked")


def add_pull_options(p: argparse.ArgumentParser, profile_default: str | None = "docker") -> None:
    """The options ``pull-cost`` and ``simulate --pull`` share (``--bandwidth``/``--rtt``
    belong to the caller)."""
    p.add_argument("--node-has", action="extend", nargs="+", default=[], metavar="REF",
                   help="the node already pulled these images (repeatable)")
    p.add_argument("--node-layers", default="",
                   help="digests or diff_ids the node holds, comma-separated")
    p.add_argument("--jobs", type=int, help="parallel downloads (overrides the profile)")
    p.add_argument("--files-read", metavar="FILE",
                   help="paths start-up reads, one per line (lazy eStargz / zstd:chunked pulls)")
    if profile_default is not None:
        p.add_argument("--profile", default=profile_default,
                       help=f"pull client: {', '.join(PROFILES)} (default {profile_default})")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "pull-cost", help="predict how long a pull takes and which step dominates",
        description="Simulate a pull of REF (an image reference, or 'seed' for the seed "
                    "story's pull-side twin) onto a cold or warm node and print the "
                    "breakdown.")
    p.add_argument("ref", metavar="REF", help="image reference, or 'seed'")
    add_pull_options(p)
    p.add_argument("--bandwidth", help="link bandwidth, e.g. '100 MB/s' (default unlimited)")
    p.add_argument("--rtt", help="round trip per request, e.g. '20 ms' (default 0)")
    p.add_argument("--machine", default="saved",
                   help="machine profile: 'saved' (calibrated, else defaults), 'default', "
                        "or a JSON path")
    p.add_argument("--events", action="store_true", help="also print every event")
    p.add_argument("--json", action="store_true", help="print JSON (shape in the module doc)")
    return p


def _read_list(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def _seed(as_json: bool) -> int:
    from layerlab.cli.output import print_json, print_table
    from layerlab.simulator.pull_scenarios import pull_seed_story

    story = pull_seed_story()
    if as_json:
        print_json(story.to_json())
        return 0
    rows = [(r["title"], f"{r['total']:.1f}", f"{r['saved']:+.1f}" if r["step"] != "cold-24" else "",
             f"{r['bytes_downloaded'] / 1e6:.0f}", r["dominant_phase"]) for r in story.rows()]
    print("the seed's 780 MB image pulled by a node (simulated; assumptions in "
          "layerlab.simulator.pull_scenarios):")
    print_table(["scenario", "total s", "saved s", "downloaded MB", "dominant"], rows,
                align="lrrrl")
    return 0


def run_pull(args: argparse.Namespace, profile_name: str) -> int:
    """Simulate and print a pull of ``args.ref`` (shared with ``simulate --pull``)."""
    if args.ref == "seed":
        return _seed(args.json)
    from layerlab.cli.output import print_json, print_phases, print_table
    from layerlab.simulator.pull import Node, get_pull_profile, simulate_pull
    from layerlab.sources import open_image
    from layerlab.units import format_size

    profile = get_pull_profile(profile_name)
    if args.jobs is not None:
        if args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, not {args.jobs}")
        profile = profile.with_options(max_concurrent_downloads=args.jobs)
    files_read = _read_list(args.files_read) if args.files_read else None
    image = open_image(args.ref)
    layers = frozenset(x.strip() for x in args.node_layers.split(",") if x.strip())
    if args.node_has or layers:
        node = Node.holding(*(open_image(ref) for ref in args.node_has), layers=layers,
                            label="warm")
    else:
        node = Node.cold()
    machine = None if args.machine == "default" else args.machine
    result = simulate_pull(image, node=node, bandwidth=args.bandwidth, rtt=args.rtt,
                           profile=profile, machine=machine, files_read=files_read,
                           label=args.ref)
    if args.json:
        print_json(result.to_json())
        return 0
    print(f"{args.ref}: {result.total:.3f} s predicted pull with profile {profile.name} "
          f"({profile.max_concurrent_downloads} downloads) onto a {node.label} node, "
          f"{format_size(result.bytes_downloaded)} downloaded, "
          f"{format_size(result.bytes_skipped)} skipped, {result.requests} requests, "
          f"dominated by {result.dominant_phase}")
    print_phases(result)
    print()
    print_table(["layer", "size", "compression", "outcome", "downloaded", "start s", "end s"],
                [(row["layer"][:19], format_size(row["size"]),
                  row["compression"] + (f" ({row['lazy_format']})" if row["lazy_format"] else ""),
                  row["outcome"], format_size(row["bytes_downloaded"]), f"{row['start']:.3f}",
                  f"{row['end']:.3f}") for row in result.layers], align="lrllrrr")
    if args.events:
        print()
        print_table(["layer", "phase", "start s", "end s", "bytes", "detail"],
                    [(e.layer[:19], e.phase, f"{e.start:.3f}", f"{e.end:.3f}", e.bytes,
                      e.detail) for e in result.events], align="llrrrl")
    return 0


def run(args: argparse.Namespace) -> int:
    return run_pull(args, args.profile)
