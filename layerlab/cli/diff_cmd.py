"""``layerlab diff A B``: what changed from image A to image B.

Layers: the common base (equal diff_ids in order; the same content under another
compression counts as common), then the layers removed from A and added in B, with
sizes. Config: env, entrypoint, cmd, labels, exposed ports, volumes, user, working
directory, stop signal, platform, creation time, and the history steps that differ.
With ``--files``: the merged filesystems (whiteouts and opaque directories applied) are
compared; a path is modified when its type, mode, owner, link target or content differs,
or its modification time (unless ``--ignore-mtime``); layers common to both images are
not read. Images of different platforms are compared with a warning.

Exit status: 0 identical, 1 different, 2 error.

``--json`` shape (sizes in bytes; paths as in the image, no leading ``/`` or ``./``)::

    {"a": {"reference", "digest"}, "b": {"reference", "digest"},
     "identical": bool, "summary": str,
     "layers": {"common": [LAYER], "removed": [LAYER], "added": [LAYER],
                "size_a", "size_b", "size_delta",
                "uncompressed_size_a", "uncompressed_size_b", "uncompressed_delta",
                "recompressed": [{"digest_a", "digest_b"}]},
     "config": {"changed": {FIELD: {"a", "b"}},
                "env": {"added": {K: V}, "removed": {K: V}, "changed": {K: {"a", "b"}}},
                "labels": (same as env),
                "history": [{"a", "b", "same"}]},
     "files": null | {"added": [PATH], "removed": [PATH], "modified": [CHANGE],
                      "directories": [{"path", "size_a", "size_b", "delta",
                                       "added", "removed", "modified"}],
                      "paths_a", "paths_b", "size_a", "size_b", "size_delta",
                      "common_layers_skipped", "compared_files", "compared_bytes"},
     "warnings": [str]}
    LAYER  = {"index", "digest", "diff_id", "size", "uncompressed_size", "created_by",
              "in_other"}   (in_other: index of the same content in the other image)
    PATH   = {"path", "type", "size", "mode", "layer"}
    CHANGE = {"path", "changes": ["type"|"content"|"mode"|"owner"|"link"|"mtime"],
              "type_a", "type_b", "size_a", "size_b", "delta", "layer_a", "layer_b"}

FIELD is one of platform, created, entrypoint, cmd, user, working_dir, exposed_ports,
volumes, stop_signal.
"""

from __future__ import annotations

import argparse

from ._analysis_common import (add_image_options, open_from_args, print_json_lines, short,
                               truncate, warn)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "diff", help="compare two images: layers, config, files",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", metavar="A", help="the old image (any reference)")
    parser.add_argument("b", metavar="B", help="the new image (any reference)")
    parser.add_argument("--files", action="store_true", help="compare the merged filesystems")
    parser.add_argument("--ignore-mtime", action="store_true",
                        help="with --files: do not report modification-time-only changes")
    parser.add_argument("--top", type=int, default=15, metavar="N",
                        help="directories shown in the text output (default 15)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="threads reading layers (default 4)")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    add_image_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from layerlab.analysis.imagediff import diff

    a = open_from_args(args.a, args)
    b = open_from_args(args.b, args)
    result = diff(a, b, files=args.files, ignore_mtime=args.ignore_mtime, workers=args.jobs)
    warn(result.warnings)
    if args.json:
        print_json_lines(result.to_json(), depth=3)
    else:
        print_text(result, args.top)
    return 0 if result.identical else 1


def print_text(result, top: int = 15) -> None:
    """The readable form: layers, config, history, files, then the summary line."""
    from layerlab.cli.output import print_table
    from layerlab.units import format_size

    def signed(n):
        return "-" if n is None else ("+" if n > 0 else "") + format_size(n)

    print(f"A: {result.a} ({short(result.digest_a)})")
    print(f"B: {result.b} ({short(result.digest_b)})")
    print()
    layers = result.layers
    rows = [[status, ref.index, short(ref.diff_id or ref.digest), format_size(ref.size),
             "" if ref.in_other is None or status == "common" else f"= {ref.in_other}",
             truncate(ref.created_by)]
            for status, refs in (("common", layers.common), ("removed", layers.removed),
                                 ("added", layers.added)) for ref in refs]
    print_table(["LAYERS", "#", "DIFF_ID", "SIZE", "OTHER", "CREATED BY"], rows, align="lrlrll")
    print(f"size {format_size(layers.size_a)} -> {format_size(layers.size_b)} "
          f"({signed(layers.size_delta)}), uncompressed "
          f"{format_size(layers.uncompressed_size_a)} -> {format_size(layers.uncompressed_size_b)}"
          + (f", {len(layers.recompressed)} common layers stored under another compression"
             if layers.recompressed else ""))
    config = result.config
    config_rows = [[field, _value(a), _value(b)] for field, (a, b) in config.changed.items()]
    for name, keyed in (("env", config.env), ("label", config.labels)):
        config_rows += [[f"{name} {k}", "-", truncate(v, 40)] for k, v in keyed["added"].items()]
        config_rows += [[f"{name} {k}", truncate(v, 40), "-"] for k, v in keyed["removed"].items()]
        config_rows += [[f"{name} {k}", truncate(a, 40), truncate(b, 40)]
                        for k, (a, b) in keyed["changed"].items()]
    if config_rows:
        print()
        print_table(["CONFIG", "A", "B"], config_rows)
    history_rows = [[i, truncate(a or "-", 50), truncate(b or "-", 50)]
                    for i, (a, b) in enumerate(config.history) if a != b]
    if history_rows:
        print()
        print_table(["HISTORY", "A", "B"], history_rows, align="rll")
    files = result.files
    if files is not None:
        print()
        rows = ([["+", p.path, p.type, signed(p.size), ""] for p in files.added]
                + [["-", p.path, p.type, signed(-p.size), ""] for p in files.removed]
                + [["M", c.path, c.type_b, signed(c.delta), ",".join(c.changes)]
                   for c in files.modified])
        rows.sort(key=lambda r: r[1])
        if rows:
            print_table(["", "PATH", "TYPE", "DELTA", "CHANGES"], rows, align="lllrl")
        if files.directories:
            print()
            print_table(["DIRECTORY", "A", "B", "DELTA", "+", "-", "M"],
                        [[d.path, format_size(d.size_a), format_size(d.size_b), signed(d.delta),
                          d.added, d.removed, d.modified] for d in files.directories[:top]],
                        align="lrrrrrr")
            if len(files.directories) > top:
                print(f"... {len(files.directories) - top} more directories")
    print()
    print(result.summary())


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        return truncate(" ".join(str(v) for v in value), 40)
    return truncate("-" if value is None else str(value), 40)
