"""``layerlab push SRC DEST``: put an image into a registry, fast (or like history did).

SRC is any reference layerlab reads (``docker-archive:PATH[:NAME:TAG]``, ``oci:DIR[:REF]``,
``oci-archive:PATH[:REF]``, ``docker://HOST/REPO:TAG``, a bare path or registry name);
DEST a registry reference (``HOST/REPO:TAG`` or ``docker://HOST/REPO:TAG``).

Per layer, cheapest first: already in the repository -> skip; in another repository of
the registry -> cross-repository mount; else upload, compressing while streaming. The
compressed digest is learned without compressing from the source, the local digest
cache, or the registry's own manifests. ``--profile`` replays historical clients:
``serial``, ``docker-1.7``, ``docker``, ``fast`` (default).

Text output: one row per blob (``already exists``, ``mounted from REPO``, ``pushed``),
then the manifest digest and totals. ``--json`` prints :meth:`PushResult.to_json`::

    {"source", "destination", "manifest_digest", "media_type", "manifest": "pushed|exists",
     "profile", "layers": [{"digest", "diff_id", "size", "media_type", "outcome",
     "mounted_from", "digest_from"}], "config": {...same...},
     "totals": {"wall_seconds", "bytes_uploaded", "bytes_compressed", "layers",
                "layers_existing", "layers_mounted", "layers_pushed", "requests"},
     "warnings": [str], "settings": {...}, "events": [{"layer", "diff_id", "phase",
     "start", "end", "bytes", "outcome", "detail", "bytes_in"}],
     "platforms": [{"platform", "manifest_digest", "media_type", "manifest", "layers",
                    "config", "totals"}]}

With ``--all`` and an index (or manifest list) as SRC, every platform's image is pushed
(its manifest under its digest), then the index under the tag: ``manifest_digest`` is
the index's, ``layers`` all images' layers in order, and ``platforms`` one entry per
image (empty for a single image).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .options import add_registry_options, registry_options

_PROFILE_NAMES = ("fast", "docker", "docker-1.7", "serial")


def add_push_options(parser: argparse.ArgumentParser) -> None:
    """The options ``push`` and ``copy`` share."""
    parser.add_argument("source", metavar="SRC", help="image to push (any reference)")
    parser.add_argument("destination", metavar="DEST", help="where to put it")
    parser.add_argument("--profile", choices=_PROFILE_NAMES, default="fast",
                        help="how to push (default: fast)")
    parser.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="layers in flight at once (default: the profile's)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="compression threads per layer (default: the profile's)")
    parser.add_argument("--compression", choices=("gzip", "zstd", "zstd:chunked", "none"),
                        help="compression of uncompressed layers (default gzip; zstd:chunked "
                             "adds a table of contents for partial pulls, as podman's)")
    parser.add_argument("--engine", choices=("isal", "zlib"), help="gzip engine")
    parser.add_argument("--level", type=int, help="compression level (isal 0-3, zlib 1-9)")
    parser.add_argument("--upload", choices=("stream", "chunked", "monolithic"),
                        help="upload mode (default: the profile's)")
    parser.add_argument("--chunk-size", metavar="SIZE", help="chunk size for --upload chunked")
    parser.add_argument("--format", choices=("source", "v2s2", "oci"),
                        help="manifest format (default: as the source)")
    parser.add_argument("--check", choices=("always", "cached", "never"),
                        help="when to ask the registry whether a blob exists")
    parser.add_argument("--no-lookup", action="store_true",
                        help="do not read the registry's manifests to find compressed digests")
    parser.add_argument("--lookup", action="append", default=[], metavar="REPO:TAG",
                        help="also reuse layers of this image of the destination registry")
    parser.add_argument("--no-mount", action="store_true", help="no cross-repository mounts")
    parser.add_argument("--no-cache", action="store_true", help="do not use the digest cache")
    parser.add_argument("--cache-dir", metavar="DIR", help="digest cache directory")
    parser.add_argument("--retries", type=int, metavar="N", help="retries per request/upload")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="image to choose from an index")
    parser.add_argument("--all", action="store_true", dest="all_platforms",
                        help="copy every platform of an index (default: one platform)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    add_registry_options(parser)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "push", help="push an image to a registry (fast, or like historical clients)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_push_options(parser)
    return parser


def push_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :func:`layerlab.push` / :func:`layerlab.copy`."""
    options: dict[str, Any] = {
        "profile": args.profile, "progress": not args.quiet and not args.json,
        "concurrency": args.jobs, "compress_threads": args.threads,
        "compression": args.compression, "engine": args.engine, "level": args.level,
        "upload": args.upload, "manifest_format": args.format, "check_existing": args.check,
        "retries": args.retries,
    }
    if args.chunk_size:
        from layerlab.units import parse_size

        options["chunk_size"] = parse_size(args.chunk_size)
    if args.compression in ("zstd", "zstd:chunked") and args.engine is None \
            and args.level is None:
        options["level"] = 3
    if args.no_lookup:
        options["registry_lookup"] = False
    if args.no_mount:
        options["mount"] = False
    if args.no_cache:
        options["cache"] = False
    elif args.cache_dir:
        options["cache_dir"] = args.cache_dir
    if args.lookup:
        options["lookup"] = tuple(args.lookup)
    options.update(registry_options(args))
    return {k: v for k, v in options.items() if v is not None}


def open_source(args: argparse.Namespace, options: dict[str, Any]):
    """The source image, or with ``--all`` the whole index when SRC names one."""
    from layerlab.pusher.api import open_source as open_push_source

    if args.all_platforms and args.platform:
        raise ValueError("--all and --platform exclude each other")
    return open_push_source(args.source, args.platform, args.all_platforms, options)


def print_result(result: Any, as_json: bool) -> None:
    """The per-blob summary (or the JSON shape)."""
    if as_json:
        from layerlab.cli.output import print_json

        print_json(result.to_json())
        return
    from layerlab.cli.output import print_table
    from layerlab.units import format_duration, format_size

    out = sys.stdout
    out.write(f"{result.source} -> {result.destination}\n")
    rows = [[kind, digest[:19], format_size(size), summary]
            for kind, digest, size, summary in result.summary_rows()]
    print_table(["BLOB", "DIGEST", "SIZE", "RESULT"], rows, align="llrl")
    t = result.totals
    for image in result.platforms:
        out.write(f"{image.platform}: manifest {image.manifest_digest} "
                  f"({image.manifest_outcome})\n")
    what = "index" if result.platforms else "manifest"
    out.write(f"{what} {result.manifest_digest} ({result.manifest_outcome})\n")
    out.write(f"{t['layers']} layers: {t['layers_pushed']} pushed, {t['layers_mounted']} "
              f"mounted, {t['layers_existing']} already there; "
              f"{format_size(t['bytes_uploaded'])} uploaded in "
              f"{format_duration(result.wall_seconds)}, {t['requests']} requests\n")
    for warning in result.warnings:
        sys.stderr.write(f"layerlab: warning: {warning}\n")


def run(args: argparse.Namespace) -> int:
    import warnings

    from layerlab.pusher import push

    options = push_options(args)
    image = open_source(args, options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cache warnings are reported with the result
        result = push(image, args.destination, **options)
    print_result(result, args.json)
    return 0
