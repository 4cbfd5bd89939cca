"""A self-contained HTML report: headings, prose, tables and plotly figures in one file.

plotly.js is embedded once, inline, so the report opens offline (no CDN), in any browser,
years later. Tables use the same cards as the objects' ``_repr_html_``.

    report = Report("layerlab demo")
    report.heading("Shared layers")
    report.add(shared)               # anything with _repr_html_, a DataFrame, a figure, text
    report.figure(shared.plot(), "Layers per tag")
    path = report.write("reports/demo.html")
"""

from __future__ import annotations

import html
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .._html import html_card, html_table

__all__ = ["Report", "write_report"]

_PAGE_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:26px;margin:8px 0 4px} h2{font-size:20px;margin:32px 0 8px;border-bottom:1px solid #e5e5e5;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}
p{line-height:1.5;max-width:80ch} .meta{color:#777;font-size:13px}
pre{background:#f4f4f4;padding:10px 12px;overflow-x:auto;font-size:12.5px;line-height:1.35}
figure{margin:12px 0 24px} figcaption{color:#666;font-size:13px;margin-top:4px}
nav ul{columns:2;font-size:14px}
"""


class Report:
    """An HTML document built up in order, then written as one file."""

    def __init__(self, title: str, subtitle: str | None = None) -> None:
        self.title = title
        self.subtitle = subtitle
        self._parts: list[str] = []
        self._toc: list[tuple[str, str]] = []
        self._figures = 0

    @property
    def figure_count(self) -> int:
        """How many figures were added."""
        return self._figures

    def heading(self, text: str, level: int = 2) -> "Report":
        """A section heading (level 2 ones are listed in the contents)."""
        anchor = f"s{len(self._toc) + 1}"
        if level == 2:
            self._toc.append((anchor, text))
        self._parts.append(f'<h{level} id="{anchor}">{html.escape(text)}</h{level}>')
        return self

    def text(self, text: str) -> "Report":
        """A paragraph of plain text (blank lines split paragraphs)."""
        for para in text.strip().split("\n\n"):
            self._parts.append(f"<p>{html.escape(' '.join(para.split()))}</p>")
        return self

    def preformatted(self, text: str) -> "Report":
        """Terminal output, kept as is."""
        self._parts.append(f"<pre>{html.escape(text.rstrip())}</pre>")
        return self

    def html(self, markup: str) -> "Report":
        """Raw HTML (trusted: produced by layerlab)."""
        self._parts.append(markup)
        return self

    def table(self, data: Any, title: str | None = None, **options: Any) -> "Report":
        """A table of a DataFrame or rows, as a card when ``title`` is given."""
        if title:
            self._parts.append(html_card(title, None, data, **options))
        else:
            self._parts.append(html_table(data, **options))
        return self

    def figure(self, fig: Any, caption: str | None = None) -> "Report":
        """A plotly figure (interactive; plotly.js is embedded once for the whole page)."""
        self._figures += 1
        div = fig.to_html(full_html=False, include_plotlyjs=False,
                          div_id=f"figure-{self._figures}",
                          config={"displaylogo": False, "responsive": True})
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._parts.append(f'<figure class="layerlab-figure">{div}{cap}</figure>')
        return self

    def add(self, obj: Any, caption: str | None = None) -> "Report":
        """Add anything: a figure, an object with ``_repr_html_``, a DataFrame, or text."""
        if hasattr(obj, "to_plotly_json") and hasattr(obj, "to_html"):
            return self.figure(obj, caption)
        if hasattr(obj, "to_dict") and hasattr(obj, "columns"):
            return self.table(obj, caption)
        if hasattr(obj, "_repr_html_"):
            markup = obj._repr_html_()
            if markup:
                return self.html(markup)
        return self.text(str(obj))

    def to_html(self) -> str:
        """The whole page as a string (plotly.js inline when there are figures)."""
        from plotly.offline import get_plotlyjs

        script = (f'<script type="text/javascript">{get_plotlyjs()}</script>'
                  if self._figures else "")
        created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        toc = ""
        if len(self._toc) > 1:
            items = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in self._toc)
            toc = f"<nav><ul>{items}</ul></nav>"
        sub = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title>"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<style>{_PAGE_STYLE}</style>{script}</head><body><main>"
            f"<h1>{html.escape(self.title)}</h1>{sub}"
            f'<p class="meta">written by layerlab on {created}</p>{toc}'
            + "\n".join(self._parts)
            + "</main></body></html>\n"
        )

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the page (creating parent directories); return its path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.to_html(), encoding="utf-8")
        tmp.replace(target)
        return target


def write_report(path: str | os.PathLike[str], title: str, items: Iterable[Any],
                 subtitle: str | None = None) -> Path:
    """Write a report of ``items`` in order: a ``str`` starting with ``# `` is a heading,
    other strings are paragraphs, ``(figure, caption)`` pairs are captioned figures, and
    anything else goes through :meth:`Report.add`."""
    report = Report(title, subtitle)
    for item in items:
        if isinstance(item, str) and item.startswith("# "):
            report.heading(item[2:])
        elif isinstance(item, tuple) and len(item) == 2:
            report.add(item[0], item[1])
        else:
            report.add(item)
    return report.write(path)
