"""``layerlab inspect REF``: what an image is made of.

REF is any reference layerlab reads (``docker-archive:PATH[:NAME:TAG|:@N]``,
``oci:DIR[:REF]``, ``oci-archive:PATH[:REF]``, ``docker://HOST/REPO:TAG``, a bare path
or a bare registry name). Text output: a header (reference, name, manifest digest and
media type, config digest, platform, index digest when chosen from an index, sizes),
then the build history in order: one row per layer (digest, diff_id, size as stored,
uncompressed size, media type, ``created_by``) and the steps that made no layer
(ENV, CMD ...), then warnings.

``--verify`` reads every layer (several at once), checking each stored digest and size,
and each diff_id by decompressing; any mismatch is an error (exit 2). It also fills in
the uncompressed sizes that are otherwise unknown for compressed layers.

``--json`` prints :meth:`layerlab.model.Image.to_json`, a stable shape::

    {"reference", "name", "manifest_digest", "media_type", "config_digest",
     "platform", "created", "size", "uncompressed_size",
     "layers": [{"digest", "diff_id", "size", "uncompressed_size", "media_type",
                 "compression", "created_by"}],
     "history": [{"created", "created_by", "comment", "empty_layer"}],
     "config": {"env", "entrypoint", "cmd", "labels", "exposed_ports", "volumes",
                "user", "working_dir", "stop_signal"},
     "warnings": [str],
     "index_digest"   (only when chosen from an index or manifest list),
     "verified": true (only with --verify)}

Sizes are bytes; ``uncompressed_size`` is ``null`` when unknown (compressed layers not
read with ``--verify``). ``platform`` is the config's ``os/arch[/variant]``.

``--list PATH`` lists the images of an archive or layout (or the tags of a registry
repository): reference, name, digest, media type, platforms; with ``--json`` a list of
``{"reference", "name", "digest", "media_type", "platforms"}``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .options import add_registry_options, registry_options

_SHORT_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar": "docker tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "docker tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "docker foreign tar+gzip",
    "application/vnd.oci.image.layer.v1.tar": "oci tar",
    "application/vnd.oci.image.layer.v1.tar+gzip": "oci tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "oci tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "oci nondist tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "oci nondist tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "oci nondist tar+zstd",
}
CREATED_BY_WIDTH = 60


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "inspect", help="show an image's manifest, config and layers",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", metavar="REF", help="image reference or path")
    parser.add_argument("--list", action="store_true",
                        help="list the images an archive or layout holds (tags of a repository)")
    parser.add_argument("--verify", action="store_true",
                        help="hash every blob (decompressing layers to check diff_ids)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="layers verified at once (default: one per CPU)")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="image to choose from an index (default: this machine's)")
    parser.add_argument("--json", action="store_true", help="JSON output (stable shape)")
    add_registry_options(parser)
    return parser


def short_media_type(media_type: str) -> str:
    """A short name for a layer media type (``oci tar+gzip``)."""
    return _SHORT_TYPES.get(media_type, media_type)


def _short(digest: Any) -> str:
    return str(digest)[:19] if digest else "-"


def _truncate(text: str, width: int = CREATED_BY_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _print_list(args: argparse.Namespace, options: dict[str, Any]) -> int:
    from layerlab.cli.output import print_json, print_table
    from layerlab.sources import list_images

    summaries = list_images(args.reference, **options)
    if args.json:
        print_json([s.to_json() for s in summaries])
        return 0
    print_table(["REFERENCE", "NAME", "DIGEST", "MEDIA TYPE", "PLATFORMS"],
                [[s.reference, s.name or "-", _short(s.digest), s.media_type or "-",
                  ", ".join(s.platforms) or "-"] for s in summaries])
    return 0


def _history_rows(image) -> list[list[str]]:
    """Rows in build order: layers (numbered) and steps that made no layer."""
    from layerlab.units import format_size

    def layer_row(n: int, layer) -> list[str]:
        return [str(n), _short(layer.digest), _short(layer.diff_id), format_size(layer.size),
                format_size(layer.uncompressed_size), short_media_type(layer.media_type),
                _truncate(layer.created_by)]

    def empty_row(step) -> list[str]:
        return ["", "", "", "", "", "(no layer)", _truncate(step.created_by)]

    history = image.config.history
    made = [h for h in history if not h.empty_layer]
    if len(made) != len(image.layers):  # history missing or inconsistent: layers first
        return ([layer_row(n, layer) for n, layer in enumerate(image.layers, 1)]
                + [empty_row(h) for h in history if h.empty_layer])
    rows, layers = [], iter(enumerate(image.layers, 1))
    for step in history:
        rows.append(empty_row(step) if step.empty_layer else layer_row(*next(layers)))
    return rows


def _print_image(image, verified: bool) -> None:
    from layerlab.cli.output import print_table
    from layerlab.units import format_size

    out = sys.stdout
    header = [("reference", image.reference), ("name", image.name or "-"),
              ("manifest", f"{image.digest}  ({image.media_type})"),
              ("config", f"{image.config.digest}  ({image.config.media_type})"),
              ("platform", str(image.config.platform) or "-")]
    if image.index_digest is not None:
        header.append(("index", f"{image.index_digest}  (chose {image.platform or '-'})"))
    if image.config.created:
        header.append(("created", image.config.created))
    uncompressed = (f"{format_size(image.uncompressed_size)} uncompressed"
                    if image.uncompressed_size is not None
                    else "uncompressed size unknown (--verify measures it)")
    header.append(("layers", f"{len(image.layers)}, {format_size(image.size)} stored, "
                             f"{uncompressed}"))
    if verified:
        header.append(("verified", "every layer matches its digest, size and diff_id"))
    width = max(len(k) for k, _ in header)
    for key, value in header:
        out.write(f"{key.ljust(width)}  {value}\n")
    out.write("\n")
    print_table(["#", "DIGEST", "DIFF_ID", "SIZE", "UNCOMPRESSED", "MEDIA TYPE", "CREATED BY"],
                _history_rows(image), align="rllrrll")
    for warning in image.warnings:
        out.write(f"warning: {warning}\n")


def run(args: argparse.Namespace) -> int:
    options = registry_options(args)
    if args.list:
        return _print_list(args, options)
    from layerlab.cli.output import print_json
    from layerlab.sources import open_image

    image = open_image(args.reference, platform=args.platform, **options)
    if args.verify:
        image = image.verify(workers=args.jobs)
    if args.json:
        data = image.to_json()
        if args.verify:
            data["verified"] = True
        print_json(data)
    else:
        _print_image(image, args.verify)
    return 0
