"""Small presentation helpers shared by the result classes (HTML tables, short names)."""

from __future__ import annotations

import html
from typing import Any, Sequence

from ..units import format_size


def short_digest(digest: str | None, length: int = 12) -> str:
    """``sha256:0123456789ab`` (12 hex digits), or ``-``."""
    if not digest:
        return "-"
    algorithm, _, hex_part = str(digest).partition(":")
    return f"{algorithm}:{hex_part[:length]}" if hex_part else str(digest)[:length]


def size_cell(n: int | None) -> str:
    return format_size(n)


def delta_cell(n: int | None) -> str:
    """A signed size: ``+1.2 kB``, ``-300 B``, ``0 B``."""
    if n is None:
        return "-"
    return ("+" if n > 0 else "") + format_size(n)


def percent(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.2f} %"


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
               align: str | None = None, limit: int = 50) -> str:
    """A plain HTML table (at most ``limit`` rows, then a "... more" line)."""
    align = align or "l" * len(headers)
    out = ["<table>", "<thead><tr>"]
    out += [f'<th style="text-align:{"right" if a == "r" else "left"}">{html.escape(str(h))}</th>'
            for h, a in zip(headers, align)]
    out.append("</tr></thead><tbody>")
    for row in rows[:limit]:
        out.append("<tr>" + "".join(
            f'<td style="text-align:{"right" if a == "r" else "left"}">'
            f'{html.escape("" if c is None else str(c))}</td>'
            for c, a in zip(row, align)) + "</tr>")
    out.append("</tbody></table>")
    if len(rows) > limit:
        out.append(f"<p>... {len(rows) - limit} more rows (use .to_frame())</p>")
    return "".join(out)


def html_block(title: str, summary: str, *tables: str) -> str:
    """A titled block: bold title, summary line, then tables."""
    return (f"<div><p><b>{html.escape(title)}</b><br>{html.escape(summary)}</p>"
            + "".join(tables) + "</div>")


def image_label(image: Any) -> str:
    """How an image is named in tables: its ``repo:tag`` if known, else its reference."""
    return getattr(image, "name", None) or getattr(image, "reference", None) or "image"
