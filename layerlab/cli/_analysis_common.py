"""Options and helpers shared by the analysis commands (diff, shared, efficiency,
history): how to open an image reference, and small text formatters."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .options import add_registry_options, registry_options


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """``--platform`` and the registry options."""
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="image to choose from an index (default: this machine's)")
    add_registry_options(parser)


def open_from_args(reference: str, args: argparse.Namespace):
    """Open ``reference`` with the platform and registry options of ``args``."""
    from layerlab.sources import open_image

    return open_image(reference, platform=getattr(args, "platform", None),
                      **registry_options(args))


def warn(messages) -> None:
    """Print warnings, one line each, on stderr."""
    for message in messages:
        print(f"layerlab: warning: {message}", file=sys.stderr)


def truncate(text: str, width: int = 60) -> str:
    """One line, at most ``width`` characters."""
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def short(digest: Any, length: int = 12) -> str:
    """``sha256:0123456789ab``."""
    if not digest:
        return "-"
    algorithm, _, hex_part = str(digest).partition(":")
    return f"{algorithm}:{hex_part[:length]}"


def print_json_lines(data: Any, depth: int = 3, stream=None) -> None:
    """JSON like ``print_json`` (indented), but containers deeper than ``depth`` are
    written compact on one line each: a diff of 10,000 paths prints one path per line,
    fast (the C encoder), and stays readable."""
    import json

    out = stream or sys.stdout

    def write(value: Any, level: int, indent: str) -> None:
        if level < depth and isinstance(value, dict) and value:
            inner = indent + "  "
            out.write("{\n")
            for n, (key, item) in enumerate(value.items()):
                out.write(f"{inner}{json.dumps(key)}: ")
                write(item, level + 1, inner)
                out.write(",\n" if n < len(value) - 1 else "\n")
            out.write(indent + "}")
        elif level < depth and isinstance(value, list) and value:
            inner = indent + "  "
            out.write("[\n")
            for n, item in enumerate(value):
                out.write(inner)
                write(item, level + 1, inner)
                out.write(",\n" if n < len(value) - 1 else "\n")
            out.write(indent + "]")
        else:
            out.write(json.dumps(value, default=str))

    write(data, 0, "")
    out.write("\n")
