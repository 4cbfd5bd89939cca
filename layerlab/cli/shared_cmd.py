"""``layerlab shared REF... [--repo HOST/REPO]``: which layers a set of images share.

For several tags of one repository, several repositories or archives: a layer-by-image
table, per image the bytes it shares with the others and the bytes only it has, the
naive sum of image sizes against the deduplicated bytes a registry stores (and pushing
them all sends), and what each push sends after the ones before it (in the order given).
``--repo host/repo`` adds every tag of a registry repository (manifests and configs
only). Layers are never read.

``--json`` shape (sizes in bytes, as stored)::

    {"images": [{"label", "reference", "digest", "layers", "size", "shared_bytes",
                 "unique_bytes"}],
     "layers": [{"digest", "diff_id", "size", "uncompressed_size", "images": [label],
                 "created_by"}],
     "totals": {"naive_bytes", "deduplicated_bytes", "saved_bytes"},
     "push_sequence": [{"label", "sent": [digest], "sent_bytes", "skipped_bytes"}],
     "recompressed": [diff_id]}

``recompressed`` lists contents stored under two compressions (one diff_id, two digests).
"""

from __future__ import annotations

import argparse

from ._analysis_common import add_image_options, open_from_args, registry_options, short, truncate


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "shared", help="layers shared by several images; deduplicated vs naive bytes",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("references", metavar="REF", nargs="*", help="image references")
    parser.add_argument("--repo", action="append", default=[], metavar="HOST/REPO",
                        help="every tag of this registry repository (repeatable)")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    add_image_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from layerlab.analysis.shared import shared_layers

    images = [open_from_args(ref, args) for ref in args.references]
    for repo in args.repo:
        from layerlab.sources.remote import load_repository

        images.extend(load_repository(repo, progress=False, platform=args.platform,
                                      **registry_options(args)))
    if not images:
        raise ValueError("give at least one image reference or --repo")
    result = shared_layers(images)
    if args.json:
        from layerlab.cli.output import print_json

        print_json(result.to_json())
        return 0
    print_text(result)
    return 0


def print_text(result) -> None:
    from layerlab.cli.output import print_table
    from layerlab.units import format_size

    labels = [i.label for i in result.images]
    marks = [str(n + 1) for n in range(len(labels))]
    print_table(["#", "IMAGE", "LAYERS", "SIZE", "SHARED", "ONLY IT", "PUSH AFTER PREVIOUS"],
                [[m, i.label, i.layers, format_size(i.size), format_size(i.shared_bytes),
                  format_size(i.unique_bytes), format_size(step.sent_bytes)]
                 for m, i, step in zip(marks, result.images, result.push_sequence)],
                align="llrrrrr")
    print()
    rows = [[short(u.digest), short(u.diff_id), format_size(u.size),
             *("x" if label in u.images else "." for label in labels), truncate(u.created_by, 40)]
            for u in result.layers]
    print_table(["DIGEST", "DIFF_ID", "SIZE", *marks, "CREATED BY"], rows,
                align="llr" + "l" * len(labels) + "l")
    print()
    print(result.summary())
