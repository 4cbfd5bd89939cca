"""The shared HTML/text card helpers and the report writer."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

import layerlab
from layerlab._html import format_cell, html_card, html_table, text_card, text_table
from layerlab.notebook.report import Report, write_report

DIGEST = "sha256:e905a00594b6133ed6db1dc4079d346592783ed7c79fcf3735671407ae0f0fcc"


def test_cells_are_formatted_by_column_name():
    assert format_cell("size", 64095) == "64.1 kB"
    assert format_cell("uncompressed_size", 999) == "999 B"
    assert format_cell("bytes_in", 2_500_000) == "2.5 MB"
    assert format_cell("digest", DIGEST) == "e905a00594b6"
    assert format_cell("seconds", 0.0123) == "12 ms"
    assert format_cell("count", 3) == "3"
    assert format_cell("ratio", 2.4137) == "2.41"
    assert format_cell("shared", True) == "yes"
    assert format_cell("size", None) == "-"
    assert format_cell("size", float("nan")) == "-"


def test_html_table_escapes_and_keeps_full_digest_in_tooltip():
    rows = [{"digest": DIGEST, "size": 64095, "created_by": "RUN a && b <x>"}]
    markup = html_table(rows)
    assert "<th>digest</th><th>size</th><th>created_by</th>" in markup
    assert f'title="{DIGEST}"><code>e905a00594b6</code>' in markup
    assert '<td class="num">64.1 kB</td>' in markup
    assert "RUN a &amp;&amp; b &lt;x&gt;" in markup
    frame = pd.DataFrame({"path": [f"f{i}" for i in range(5)], "size": range(5)})
    assert "... and 3 more rows" in html_table(frame, max_rows=2)


def test_cards_and_text_tables():
    card = html_card("Push <app>", {"layers": 4, "took": "1.2 s"}, [{"a": 1}], note="n")
    assert '<div class="ll-title">Push &lt;app&gt;</div>' in card
    assert "layers: <b>4</b> &middot; took: <b>1.2 s</b>" in card
    text = text_card("Shared layers", {"tags": 2}, [{"digest": DIGEST, "size": 64095},
                                                   {"digest": "sha256:" + "0" * 64, "size": 5}])
    assert text.splitlines() == [
        "Shared layers",
        "  tags: 2",
        "digest           size",
        "------------  -------",
        "e905a00594b6  64.1 kB",
        "000000000000      5 B",
    ]
    assert text_table([{"x": i} for i in range(4)], max_rows=2).endswith("... and 2 more rows")


def test_image_repr_html(samples):
    image = layerlab.open_image(f"oci:{samples}/oci/family:app-v1")
    markup = image._repr_html_()
    assert '<div class="ll-title">Image app-v1</div>' in markup
    assert "manifest: <b>667f5b9b2290</b> &middot; type: <b>OCI</b>" in markup
    assert "layers: <b>4</b> &middot; size: <b>131.9 kB</b>" in markup
    assert markup.count("<tr>") == 5  # header + 4 layers
    assert f'title="{DIGEST}"' in markup  # the first diff_id


def test_report_is_one_self_contained_file(tmp_path):
    fig = go.Figure(go.Bar(x=["a"], y=[1]))
    report = Report("A <report>", "subtitle")
    report.heading("One").text("first para\n\nsecond para").figure(fig, "a caption")
    report.heading("Two").table(pd.DataFrame({"size": [1000]}), title="sizes")
    report.add(fig).add(pd.DataFrame({"x": [1]})).add("plain words").preformatted("a  b")
    path = report.write(tmp_path / "sub" / "r.html")
    page = path.read_text()
    assert report.figure_count == 2
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>A &lt;report&gt;</title>" in page
    assert page.count('<div id="figure-') == 2
    assert "<script src=" not in page and 'src="http' not in page  # plotly.js is inline
    assert page.count("<script") >= 3 and len(page) > 3_000_000
    assert '<li><a href="#s1">One</a></li><li><a href="#s2">Two</a></li>' in page
    assert "<p>first para</p>\n<p>second para</p>" in page
    assert "<figcaption>a caption</figcaption>" in page
    assert "1.0 kB" in page and "<pre>a  b</pre>" in page
    assert not list(path.parent.glob("*.tmp"))


def test_report_without_figures_has_no_plotly(tmp_path):
    path = write_report(tmp_path / "r.html", "t", ["# Heading", "text", (pd.DataFrame({"a": [1]}), "cap")])
    page = path.read_text()
    assert len(page) < 20_000 and 'id="s1">Heading</h2>' in page
