"""``layerlab copy SRC DEST``: copy an image between any two transports.

Both references use skopeo's syntax. A registry DEST (``docker://HOST/REPO:TAG`` or a
bare ``HOST/REPO:TAG``) is a ``layerlab push`` (same options, same output); registry to
registry copies blobs as stored and mounts them when both are in the same registry.
``oci:DIR[:REF]``, ``oci-archive:PATH[:REF]`` and ``docker-archive:PATH[:NAME:TAG]``
write locally, blobs copied as stored and verified (from a registry this is a pull, and
it records each layer's digest in the digest cache). ``--all`` copies every platform of
an index, to a registry or an OCI layout (a docker-archive holds single images).

``--json`` prints the same shape as ``layerlab push --json``.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    from layerlab.cli.push_cmd import add_push_options

    parser = subparsers.add_parser(
        "copy", help="copy an image between registries, OCI layouts and archives",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_push_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    import warnings

    from layerlab.cli.push_cmd import open_source, print_result, push_options
    from layerlab.pusher import copy

    options = push_options(args)
    image = open_source(args, options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = copy(image, args.destination, **options)
    print_result(result, args.json)
    return 0
