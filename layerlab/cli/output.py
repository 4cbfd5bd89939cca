"""Printing helpers shared by the CLI commands: tables and JSON."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence, TextIO


def print_json(data: Any, stream: TextIO | None = None) -> None:
    """Print ``data`` as indented JSON (the stable ``--json`` shapes)."""
    json.dump(data, stream or sys.stdout, indent=2, default=str)
    (stream or sys.stdout).write("\n")


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    stream: TextIO | None = None,
    align: str | None = None,
) -> None:
    """Print a plain-text table; ``align`` is one char per column, ``l`` or ``r``."""
    out = stream or sys.stdout
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)
    for n, row in enumerate(cells):
        parts = [
            c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)
        ]
        out.write("  ".join(parts).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def print_phases(result: Any, stream: TextIO | None = None) -> None:
    """The phase table of a predicted push or pull: seconds on the critical path, busy
    seconds, and the share of the total."""
    print_table(["phase", "critical s", "busy s", "share"],
                [(p, f"{v['critical']:.3f}", f"{v['busy']:.3f}",
                  f"{v['critical'] / result.total * 100:.0f} %" if result.total else "")
                 for p, v in result.phases.items()], stream, align="lrrr")
