"""``layerlab history REF``: each layer's instruction and size, and layer-count advice.

Lists every build step in order (layers with their instruction and sizes, empty-layer
steps such as ENV or CMD), the runs of consecutive RUN layers that could be one layer
and what the image would look like with them merged (layer count and sizes: files
overwritten or deleted inside a run disappear), tiny layers, and the files added by one
layer and deleted by a later one. ``--target N`` merges inside runs until N layers are
left (e.g. 24 -> 14); ``--no-files`` uses the manifest and config only.

``--json`` shape (sizes in bytes)::

    {"reference", "name",
     "layers": [{"index", "digest", "diff_id", "size", "uncompressed_size", "compression",
                 "created_by", "instruction", "entries", "tiny", "content_size"}],
     "history": [{"position", "created_by", "instruction", "empty_layer", "layer",
                  "created"}],
     "empty_steps": [position],
     "runs": [{"start", "end", "layers", "size", "uncompressed_size", "merged_size",
               "merged_uncompressed_size", "saved_bytes"}],
     "tiny_threshold", "tiny_layers": [index],
     "deleted_files": [{"path", "size", "added_in", "removed_in",
                        "fate": "deleted"|"hidden"|"replaced"}],
     "merged": {"layer_count", "size", "uncompressed_size",
                "layers": [{"size", "uncompressed_size", "compressibility", "created_by"}]}}

``merged.layers`` is the form the push simulator takes; ``compressibility`` is
uncompressed / stored size for compressed layers, null for uncompressed ones.
"""

from __future__ import annotations

import argparse

from ._analysis_common import add_image_options, open_from_args, short, truncate


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "history", help="layers with their instructions; which RUN layers to merge",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", metavar="REF", help="image reference or path")
    parser.add_argument("--target", type=int, metavar="N",
                        help="merge inside runs until at most N layers remain")
    parser.add_argument("--tiny", default="1 MB", metavar="SIZE",
                        help="layers below this (uncompressed) are tiny (default 1 MB)")
    parser.add_argument("--no-files", action="store_true",
                        help="do not read layers (no merged sizes or deleted files)")
    parser.add_argument("--top", type=int, default=20, metavar="N",
                        help="deleted files shown in the text output (default 20)")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    add_image_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from layerlab.analysis.history import layer_advice
    from layerlab.units import parse_size

    advice = layer_advice(open_from_args(args.reference, args), files=not args.no_files,
                          tiny_threshold=parse_size(args.tiny))
    if args.json:
        from layerlab.cli.output import print_json

        data = advice.to_json()
        if args.target is not None:
            merged = advice.merged_layers(target=args.target)
            data["merged"] = {"layer_count": len(merged),
                              "size": sum(s["size"] for s in merged),
                              "uncompressed_size": sum(s["uncompressed_size"] for s in merged),
                              "layers": merged}
        print_json(data)
        return 0
    print_text(advice, args.target, args.top)
    return 0


def print_text(advice, target: int | None = None, top: int = 20) -> None:
    from layerlab.cli.output import print_table
    from layerlab.units import format_size

    run_of = {i: k for k, r in enumerate(advice.runs) for i in range(r.start, r.end + 1)}
    rows = []
    for step in advice.history:
        if step.layer is None:
            rows.append(["", step.instruction or "?", "", "", "", "(empty)", truncate(step.created_by)])
            continue
        layer = advice.layers[step.layer]
        notes = []
        if layer.index in run_of:
            notes.append(f"run {run_of[layer.index] + 1}")
        if layer.tiny:
            notes.append("tiny")
        rows.append([layer.index, layer.instruction or "?", short(layer.digest),
                     format_size(layer.size), format_size(layer.uncompressed_size),
                     " ".join(notes), truncate(layer.created_by)])
    listed = {s.layer for s in advice.history if s.layer is not None}
    for layer in advice.layers:  # layers the history does not describe
        if layer.index not in listed:
            rows.append([layer.index, layer.instruction or "?", short(layer.digest),
                         format_size(layer.size), format_size(layer.uncompressed_size),
                         "tiny" if layer.tiny else "", truncate(layer.created_by)])
    print_table(["#", "INSTR", "DIGEST", "SIZE", "UNCOMPRESSED", "NOTES", "CREATED BY"], rows,
                align="rllrrll")
    if advice.runs:
        print()
        print_table(["RUN", "LAYERS", "SIZE", "MERGED SIZE", "SAVED"],
                    [[f"{k + 1}: {r.start}-{r.end}", r.layers, format_size(r.size),
                      format_size(r.merged_size), format_size(r.saved_bytes)]
                     for k, r in enumerate(advice.runs)], align="lrrrr")
    merged = advice.merged_layers(target=target)
    print()
    total = sum(s["size"] for s in merged)
    print(f"merged: {len(advice.layers)} -> {len(merged)} layers, "
          f"{format_size(sum(layer.size for layer in advice.layers))} -> {format_size(total)}")
    if advice.deleted_files:
        print()
        print_table(["ADDED THEN DELETED", "SIZE", "ADDED IN", "REMOVED IN", "HOW"],
                    [["/" + d.path, format_size(d.size), d.added_in, d.removed_in, d.fate]
                     for d in advice.deleted_files[:top]], align="lrrrl")
        if len(advice.deleted_files) > top:
            print(f"... {len(advice.deleted_files) - top} more")
    print()
    print(advice.summary())
