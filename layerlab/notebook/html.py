"""The HTML/text card helpers for ``_repr_html_`` and ``__repr__`` (see :mod:`layerlab._html`)."""

from .._html import (format_cell, html_card, html_summary, html_table, rows_of, short_digest,
                     text_card, text_table)

__all__ = ["html_table", "html_summary", "html_card", "text_table", "text_card",
           "format_cell", "short_digest", "rows_of"]
