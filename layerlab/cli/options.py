"""Command-line options shared by every command that reads or writes registries."""

from __future__ import annotations

import argparse
from typing import Any


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """``--plain-http``, ``--insecure``, ``--username/--password``."""
    parser.add_argument("--plain-http", action="store_true", help="registry: use http://")
    parser.add_argument("--insecure", action="store_true",
                        help="registry: do not verify TLS certificates")
    parser.add_argument("--username", help="registry user name")
    parser.add_argument("--password", help="registry password (or token)")


def registry_options(args: argparse.Namespace) -> dict[str, Any]:
    """Client keyword options (``plain_http``, ``insecure``, ``auth``) from parsed args."""
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
