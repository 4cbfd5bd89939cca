"""The ``layerlab`` command line: argument parsing and printing only.

Each command lives in its own module ``layerlab/cli/<name>_cmd.py`` exposing
``add_parser(subparsers) -> argparse.ArgumentParser`` and ``run(args) -> int``.
Command modules import only the standard library at module level; the library code
they call is imported inside ``run`` so that ``layerlab --help`` and fast paths start
quickly.

Exit status: 0 success; 1 "difference found" (``diff``); 2 usage or input error.
Errors are one line on stderr (``layerlab: error: ...``); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# command name -> module; order is the order of ``layerlab --help``
COMMANDS: dict[str, str] = {
    "inspect": "layerlab.cli.inspect_cmd",
    "diff": "layerlab.cli.diff_cmd",
    "shared": "layerlab.cli.shared_cmd",
    "efficiency": "layerlab.cli.efficiency_cmd",
    "history": "layerlab.cli.history_cmd",
    "reuse": "layerlab.cli.reuse_cmd",
    "context": "layerlab.cli.context_cmd",
    "push": "layerlab.cli.push_cmd",
    "copy": "layerlab.cli.copy_cmd",
    "rewrite": "layerlab.cli.rewrite_cmd",
    "simulate": "layerlab.cli.simulate_cmd",
    "pull-cost": "layerlab.cli.pullcost_cmd",
    "check": "layerlab.cli.check_cmd",
    "registry": "layerlab.cli.registry_cmd",
    "demo": "layerlab.cli.demo_cmd",
    "notebooks": "layerlab.cli.notebooks_cmd",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerlab",
        description="See, measure and speed up how container images travel.",
    )
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # command not built yet
        cmd_parser = module.add_parser(sub)
        cmd_parser.set_defaults(_run=module.run)
        if not any(a.dest == "debug" for a in cmd_parser._actions):
            cmd_parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("layerlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
        from layerlab.errors import LayerlabError

        if args.debug:
            raise
        if isinstance(exc, (LayerlabError, OSError, ValueError)):
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"layerlab: error: {message}", file=sys.stderr)
            return 2
        print(f"layerlab: internal error: {type(exc).__name__}: {exc} (run with --debug)",
              file=sys.stderr)
        return 3
