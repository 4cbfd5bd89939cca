"""``layerlab reuse REF... [--repo HOST/REPO]``: build-to-build reuse over a series of builds.

The builds are the references in the order given (oldest first), then with ``--repo``
every tag of a registry repository, ordered by their config's ``created`` time (then
tag). For each build, against the one before: the first layer that diverges, the layers
rebuilt, the bytes a push sends (blobs no earlier build had) and a pull sends (a node
holding the previous build downloads every layer from the first rebuilt one up), and
the cache-hit rate (reused layers / layers). Then the layer-order advice: stable layers
first where layers commute, replayed over the series (reads every layer's tar headers;
``--no-advice`` reads manifests and configs only).

``--json`` shape (sizes in bytes, as stored; rates 0-1)::

    {"builds": [{"position", "label", "reference", "digest", "created", "layers", "size",
                 "first_diverging", "reused", "rebuilt": [index], "pushed": [index],
                 "pushed_bytes", "pulled_bytes", "cache_hit_rate",
                 "total_pushed_bytes", "total_pulled_bytes", "total_cache_hit_rate"}],
     "totals": {"builds", "layers", "reused", "naive_bytes", "pushed_bytes", "pulled_bytes",
                "cache_hit_rate"},
     "advice": null | {"advised", "order": [index], "message", "moved": [index],
                       "moved_before": [index],
                       "layers": [{"index", "created_by", "instruction", "size", "changes",
                                   "stable", "position"}],
                       "blocked": [{"a", "b", "reason", "build"}],
                       "unmatched_builds": [position],
                       "builds": [{"position", "label", "reordered", "before": FIGURES,
                                   "after": FIGURES}],
                       "totals": {"before": TOTALS, "after": TOTALS, "saved_pushed_bytes",
                                  "saved_pulled_bytes", "saved_bytes_per_build", "rebuilds"}}}
    FIGURES = {"reused", "layers", "pushed_bytes", "pulled_bytes", "cache_hit_rate"}
    TOTALS  = {"pushed_bytes", "pulled_bytes", "cache_hit_rate"}

``order`` is the ``reorder`` argument of ``layerlab.rewrite`` for each build.
"""

from __future__ import annotations

import argparse

from ._analysis_common import add_image_options, open_from_args, registry_options, short


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "reuse", help="build-to-build layer reuse of a series of builds; layer-order advice",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("references", metavar="REF", nargs="*",
                        help="image references, oldest build first")
    parser.add_argument("--repo", metavar="HOST/REPO",
                        help="every tag of this registry repository, ordered by config created")
    parser.add_argument("--no-advice", action="store_true",
                        help="no layer-order advice (layers are not read)")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    add_image_options(parser)
    return parser


def _repository_builds(args: argparse.Namespace) -> list:
    from layerlab.sources.remote import load_repository

    images = load_repository(args.repo, progress=False, platform=args.platform,
                             **registry_options(args))
    return sorted(images, key=lambda image: (image.config.created or "", image.name or ""))


def run(args: argparse.Namespace) -> int:
    from layerlab.analysis.reuse import build_reuse

    images = [open_from_args(ref, args) for ref in args.references]
    if args.repo:
        images.extend(_repository_builds(args))
    result = build_reuse(images)
    advice = None if args.no_advice else result.order_advice()
    if args.json:
        from layerlab.cli.output import print_json

        print_json({**result.to_json(), "advice": advice.to_json() if advice else None})
        return 0
    print_text(result, advice)
    return 0


def print_text(result, advice) -> None:
    from layerlab.cli.output import print_table
    from layerlab.units import format_size

    print_table(["#", "BUILD", "DIGEST", "LAYERS", "DIVERGES AT", "REBUILT", "PUSHED", "PULLED",
                 "CACHE HITS", "PUSHED SO FAR", "PULLED SO FAR"],
                [[b.position, b.label, short(b.digest), b.layers,
                  "-" if b.first_diverging is None else b.first_diverging, len(b.rebuilt),
                  format_size(b.pushed_bytes), format_size(b.pulled_bytes),
                  f"{b.cache_hit_rate * 100:.1f} %", format_size(b.total_pushed_bytes),
                  format_size(b.total_pulled_bytes)] for b in result.builds],
                align="rllrrrrrrrr")
    print()
    print(result.summary())
    if advice is None:
        return
    print()
    if advice.advised:
        latest = {s.index: s for s in advice.layers}
        print_table(["POSITION", "LAYER", "CHANGES", "SIZE", "CREATED BY"],
                    [[p, src, latest[src].changes, format_size(latest[src].size),
                      _one_line(latest[src].created_by)] for p, src in enumerate(advice.order)],
                    align="rrrrl")
        print()
        before, after = advice.before, advice.after
        print(f"replayed: pushed {format_size(before['pushed_bytes'])} -> "
              f"{format_size(after['pushed_bytes'])}, pulled {format_size(before['pulled_bytes'])}"
              f" -> {format_size(after['pulled_bytes'])}, cache hits "
              f"{before['cache_hit_rate'] * 100:.1f} % -> {after['cache_hit_rate'] * 100:.1f} %")
    for c in advice.blocked:
        print(f"kept {c.b} above {c.a}: {c.reason} ({c.build})")
    print(f"advice: {advice.message}")


def _one_line(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
