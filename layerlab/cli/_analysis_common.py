"""Options and helpers shared by the analysis commands (diff, shared, efficiency,
history): how to open an image reference, and small text formatters."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """``--platform``, ``--plain-http``, ``--insecure``, ``--username/--password``."""
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                        help="image to choose from an index (default: this machine's)")
    parser.add_argument("--plain-http", action="store_true", help="registry: use http://")
    parser.add_argument("--insecure", action="store_true",
                        help="registry: do not verify TLS certificates")
    parser.add_argument("--username", help="registry user name")
    parser.add_argument("--password", help="registry password (or token)")


def registry_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options for :func:`layerlab.sources.open_image` from the parsed args."""
    options: dict[str, Any] = {}
    if getattr(args, "plain_http", False):
        options["plain_http"] = True
    if getattr(args, "insecure", False):
        options["insecure"] = True
    user, password = getattr(args, "username", None), getattr(args, "password", None)
    if user is not None or password is not None:
        if user is None or password is None:
            raise ValueError("--username and --password go together")
        options["auth"] = (user, password)
    return options


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
