"""``layerlab efficiency REF``: wasted space, with dive's figures and the real story.

dive's three figures, computed exactly as dive 0.13.1 does (``efficiency`` = sum of the
smallest size seen per path / sum of all sizes seen; ``wasted_bytes`` = all copies of
every path seen in two or more layers, the kept copy included; ``user_wasted_percent`` =
wasted / (image size - first layer), both as 0-1 ratios), dive's list of inefficient
paths, and beside them: ``corrected_wasted_bytes`` (all copies minus the copy the image
keeps, as dive's issue 684 asks), ``unreachable_bytes`` (every stored byte the final
filesystem cannot reach, including files hidden by opaque directories, which dive does
not see), and for each wasted path which layer wrote each copy and which layer
overwrote, deleted or hid it. Only tar headers are read.

``--json`` shape (sizes in bytes; paths without a leading ``/``)::

    {"reference", "name",
     "efficiency", "wasted_bytes", "user_wasted_percent" (null if no user layers),
     "size_bytes", "user_size_bytes", "corrected_wasted_bytes", "unreachable_bytes",
     "layers": [{"index", "size_bytes", "created_by"}],
     "inefficient_paths": [WASTED], "unlisted_paths": [WASTED], "warnings": [str]}
    WASTED = {"path", "count", "cumulative_size", "min_size", "kept_size", "wasted_size",
              "writes": [{"layer", "size", "type",
                          "fate": "kept"|"overwritten"|"deleted"|"hidden"|"replaced",
                          "by_layer"}]}
"""

from __future__ import annotations

import argparse

from ._analysis_common import add_image_options, open_from_args, print_json_lines, warn


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "efficiency", help="wasted space: dive's figures and which layers caused it",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", metavar="REF", help="image reference or path")
    parser.add_argument("--top", type=int, default=20, metavar="N",
                        help="wasted paths shown in the text output (default 20)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="layers read at once (default up to 4)")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    add_image_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from layerlab.analysis.wasted import efficiency

    result = efficiency(open_from_args(args.reference, args), workers=args.jobs)
    warn(result.warnings)
    if args.json:
        print_json_lines(result.to_json(), depth=2)
        return 0
    print_text(result, args.top)
    return 0


def print_text(result, top: int = 20) -> None:
    from layerlab.cli.output import print_table
    from layerlab.units import format_size

    def pct(x):
        return "-" if x is None else f"{x * 100:.4f} %"

    print(f"image: {result.name or result.reference}")
    print(f"  efficiency:             {pct(result.efficiency)}")
    print(f"  wasted bytes (dive):    {result.wasted_bytes} ({format_size(result.wasted_bytes)})")
    print(f"  user wasted percent:    {pct(result.user_wasted_percent)}")
    print(f"  corrected wasted bytes: {result.corrected_wasted_bytes} "
          f"({format_size(result.corrected_wasted_bytes)}, all copies minus the kept one)")
    print(f"  unreachable bytes:      {result.unreachable_bytes} "
          f"({format_size(result.unreachable_bytes)}, incl. what dive does not see)")
    paths = list(result.inefficient_paths) + list(result.unlisted_paths)
    if not paths:
        return
    print()
    rows = []
    listed = {p.path for p in result.inefficient_paths}
    for p in paths[:top]:
        story = "; ".join(f"L{w.layer} {format_size(w.size)} {w.fate}"
                          + (f" by L{w.by_layer}" if w.by_layer is not None else "")
                          for w in p.writes)
        rows.append([p.count if p.path in listed else "-", format_size(p.cumulative_size),
                     format_size(p.wasted_size), "/" + p.path, story])
    print_table(["COUNT", "ALL COPIES", "WASTED", "PATH", "WRITES"], rows, align="rrrll")
    if len(paths) > top:
        print(f"... {len(paths) - top} more paths (--top N, or --json)")
