"""``layerlab context DIR``: a build context with and without its ``.dockerignore``.

Walks DIR as ``docker build`` would (symlinks not followed) and applies the ignore file
with Docker's rules: Go ``filepath.Match`` patterns plus ``**``, ``!`` exceptions, the
last matching pattern wins, a path is ignored when it or a parent directory matches,
leading ``/`` and ``./`` stripped and patterns cleaned. The ignore file is
``<Dockerfile>.dockerignore`` if it exists, else ``DIR/.dockerignore`` (or
``--dockerignore FILE``). The Dockerfile and the ignore file are always sent.

Reports the size (bytes of regular files) and file count (non-directories) both ways,
the largest items the ignore file drops and the largest items still sent. ``tar_size`` is
the tar stream the legacy builder sends, the figure of its "Sending build context to
Docker daemon" line.

``--json`` shape (sizes in bytes)::

    {"directory", "dockerignore": path | null, "patterns": [str],
     "without_dockerignore": {"size", "files", "tar_size"},
     "with_dockerignore": {"size", "files", "tar_size"},
     "dropped_size", "dropped_files",
     "dropped": [ITEM], "largest_sent": [ITEM], "largest_sent_files": [ITEM]}
    ITEM = {"path", "size", "files", "is_dir"}
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "context", help="build context size with and without .dockerignore",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", metavar="DIR", help="the build context directory")
    parser.add_argument("--dockerignore", metavar="FILE", help="the ignore file to apply")
    parser.add_argument("-f", "--file", default="Dockerfile", metavar="DOCKERFILE",
                        help="the Dockerfile, relative to DIR (default Dockerfile)")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="items in each list (default 10)")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    return parser


def run(args: argparse.Namespace) -> int:
    from layerlab.analysis.context import context_report

    report = context_report(args.directory, dockerignore=args.dockerignore,
                            dockerfile=args.file, top=args.top)
    if args.json:
        from layerlab.cli.output import print_json

        print_json(report.to_json())
        return 0
    from layerlab.cli.output import print_table
    from layerlab.units import format_size

    print(f"context: {report.directory}")
    print(f"ignore file: {report.dockerignore or '(none)'} ({len(report.patterns)} patterns)")
    print()
    print_table(["", "SIZE", "FILES"],
                [["without .dockerignore", format_size(report.total_size), report.total_files],
                 ["with .dockerignore", format_size(report.sent_size), report.sent_files],
                 ["dropped", format_size(report.dropped_size), report.dropped_files]],
                align="lrr")
    for title, items in (("DROPPED", report.dropped), ("STILL SENT", report.largest_sent)):
        if items:
            print()
            print_table([title, "SIZE", "FILES"],
                        [[i.path + ("/" if i.is_dir else ""), format_size(i.size), i.files]
                         for i in items], align="lrr")
    return 0
