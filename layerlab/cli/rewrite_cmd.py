"""``layerlab rewrite SRC DEST``: act on the advice - merge, squash, exclude, reorder,
strip timestamps, recompress - and write the new image to any transport.

SRC is any reference layerlab reads; DEST any reference ``layerlab copy`` writes
(``oci:DIR[:REF]``, ``oci-archive:PATH[:REF]``, ``docker-archive:PATH[:NAME:TAG]``,
``docker://HOST/REPO:TAG`` or a bare ``HOST/REPO:TAG``). Layer numbers are 0-based, as
``layerlab history`` prints them; operations apply in the order: exclude, merge (or
squash), reorder, timestamps, compression. A layer nothing changes keeps its blob.

Examples::

    layerlab rewrite app.tar oci:out:app --target 14          # the 24 -> 14 merge, produced
    layerlab rewrite app.tar docker-archive:out.tar --exclude '**/*.pyc' --exclude .git
    layerlab rewrite oci:in:app oci:out:app --strip-timestamps --compression zstd

Text output: one row per new layer (its source layers, what was done, size before and
after), then the manifest digest. ``--json`` prints :meth:`RewriteResult.to_json` plus
the write's ``destination`` (its manifest digest is the result's, unless the write
converts, e.g. a push compressing uncompressed layers)::

    {"source": IMAGE, "result": IMAGE, "destination": {"reference", "manifest_digest"},
     "layers": [{"position", "source_layers", "action", "digest", "diff_id", "size",
                 "uncompressed_size", "media_type", "source_size", "created_by"}],
     "bytes_written", "seconds"}
    IMAGE = {"reference", "manifest_digest", "config_digest", "layers", "size",
             "uncompressed_size"}

``action`` is ``kept``, ``recompressed``, ``rewritten`` or ``merged``.
"""

from __future__ import annotations

import argparse
import sys

from .options import add_registry_options, registry_options


def _span(text: str) -> list[int]:
    first, sep, last = text.partition("-")
    try:
        a, b = int(first), int(last if sep else first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST layer numbers, not {text!r}") from None
    if b < a:
        raise argparse.ArgumentTypeError(f"empty layer range {text!r}")
    return list(range(a, b + 1))


def _order(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer numbers, not {text!r}") from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "rewrite", help="rewrite an image: merge, squash, exclude, reorder, recompress",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", metavar="SRC", help="image to rewrite (any reference)")
    parser.add_argument("destination", metavar="DEST", help="where to write the new image")
    layers = parser.add_mutually_exclusive_group()
    layers.add_argument("--merge", type=_span, action="append", metavar="FIRST-LAST",
                        help="merge these consecutive layers into one (repeatable)")
    layers.add_argument("--target", type=int, metavar="N",
                        help="merge inside RUN runs down to N layers (layerlab history --target)")
    layers.add_argument("--squash", action="store_true", help="merge every layer into one")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                        help="drop paths matching this .dockerignore pattern (repeatable)")
    parser.add_argument("--exclude-from", metavar="FILE",
                        help="drop the paths a .dockerignore file excludes")
    parser.add_argument("--reorder", type=_order, metavar="I,J,...",
                        help="new order of the (merged) layers; only commuting layers move")
    stamps = parser.add_mutually_exclusive_group()
    stamps.add_argument("--strip-timestamps", action="store_true",
                        help="set every mtime and created time to the epoch")
    stamps.add_argument("--timestamp", type=int, metavar="SECONDS",
                        help="set every mtime and created time to this (as SOURCE_DATE_EPOCH)")
    parser.add_argument("--compression", choices=("gzip", "zstd", "zstd:chunked", "none"),
                        help="recompress layers stored otherwise (default: keep)")
    parser.add_argument("--level", type=int,
                        help="compression level (gzip 0-9, zstd 1-22); recompresses every layer")
    parser.add_argument("--workdir", metavar="DIR",
                        help="where new blobs are written (default: a temporary directory)")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="image to choose from an index")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    add_registry_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    import warnings

    from layerlab.mutate import rewrite
    from layerlab.sources import open_image

    remote = registry_options(args)
    exclude = list(args.exclude)
    if args.exclude_from:
        from pathlib import Path

        from layerlab.analysis.dockerignore import read_patterns

        exclude += read_patterns(Path(args.exclude_from).read_text(encoding="utf-8"))
    image = open_image(args.source, platform=args.platform, **remote)
    timestamp = 0 if args.strip_timestamps else args.timestamp
    with rewrite(image, merge=args.merge, target=args.target, squash=args.squash,
                 exclude=exclude, reorder=args.reorder, timestamp=timestamp,
                 compression=args.compression, level=args.level,
                 workdir=args.workdir,
                 progress=not args.quiet and not args.json) as result:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            written = result.copy(args.destination, progress=not args.quiet and not args.json,
                                  **remote)
        if args.json:
            from layerlab.cli.output import print_json

            print_json({**result.to_json(),
                        "destination": {"reference": args.destination,
                                        "manifest_digest": written.manifest_digest}})
            return 0
        _print(result, args.destination, written.manifest_digest)
    return 0


def _print(result, destination: str, manifest_digest: str) -> None:
    from layerlab.cli.output import print_table
    from layerlab.units import format_size

    rows = [[str(c.position), _numbers(c.indexes), c.action, c.layer.digest.short,
             format_size(sum(s.size for s in c.sources)), format_size(c.layer.size)]
            for c in result.changes]
    print_table(["#", "FROM", "ACTION", "DIGEST", "BEFORE", "AFTER"], rows, align="rlllrr")
    source, image = result.source, result.image
    sys.stdout.write(f"{len(source.layers)} -> {len(image.layers)} layers, "
                     f"{format_size(source.size)} -> {format_size(image.size)}; "
                     f"{format_size(result.bytes_written)} of new blobs in "
                     f"{result.seconds:.2f} s\n")
    sys.stdout.write(f"{destination}: manifest {manifest_digest}\n")


def _numbers(indexes) -> str:
    if len(indexes) > 2 and list(indexes) == list(range(indexes[0], indexes[-1] + 1)):
        return f"{indexes[0]}-{indexes[-1]}"
    return ",".join(str(i) for i in indexes)
