"""``layerlab notebooks DIR``: copy the workshop notebooks out of the package for a class.

The notebooks find the sample images themselves (``layerlab.samples_dir()``, built on
first use), so DIR can be anywhere. Existing files are never overwritten without
``--force``. ``--json`` shape::

    {"directory": str, "notebooks": [str], "samples": str}
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "notebooks", help="copy the workshop notebooks into a directory",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", metavar="DIR", help="where to put the notebooks (created)")
    parser.add_argument("--force", action="store_true", help="overwrite notebooks already there")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    return parser


def run(args: argparse.Namespace) -> int:
    from layerlab.samples import samples_dir
    from layerlab.workshop import copy_notebooks

    copied = copy_notebooks(args.directory, overwrite=args.force)
    samples = samples_dir(say=lambda text: None if args.json else print(text, flush=True))
    if args.json:
        from layerlab.cli.output import print_json

        print_json({"directory": args.directory, "notebooks": [str(p) for p in copied],
                    "samples": str(samples)})
        return 0
    for path in copied:
        print(path)
    print(f"sample images: {samples}")
    print(f"open them with: jupyter lab {args.directory}")
    return 0
