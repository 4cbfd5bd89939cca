"""The HTML reports open in a real headless browser, offline, with every figure drawn.

Debian's chromium is driven over the DevTools protocol (tests/chromium_page.py): the page
must raise no JavaScript error, every plotly div must hold its SVG, and a screenshot is
saved as an artifact (``$LAYERLAB_ARTIFACTS`` or a pytest tmp dir) for people to look at.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import layerlab
from layerlab.notebook import figures as F
from layerlab.notebook.report import Report

from conftest import require_tool

pytestmark = pytest.mark.slow

PLOTS_DRAWN = ("[...document.querySelectorAll('.js-plotly-plot')]"
               ".filter(d => d.querySelector('svg.main-svg')).length")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    where = os.environ.get("LAYERLAB_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def figures_report(samples, tmp_path_factory) -> tuple[Path, int]:
    """A report with one of every figure kind, from the sample images."""
    family = [layerlab.open_image(f"oci:{samples}/oci/family:{ref}")
              for ref in ("base", "app-v1", "app-v2", "wasted")]
    events = pd.DataFrame([
        {"layer": str(layer.digest), "diff_id": str(layer.diff_id), "phase": phase,
         "start": 0.1 * i + offset, "end": 0.1 * i + offset + 0.2, "bytes": layer.size,
         "outcome": "pushed"}
        for i, layer in enumerate(family[1].layers)
        for phase, offset in (("compress", 0.0), ("upload", 0.2))])
    sweep = pd.DataFrame({"workers": [1, 2, 4], "seconds": [9.0, 5.0, 3.0]})
    report = Report("every figure")
    report.heading("Images").add(family[1])
    report.figure(F.layer_sizes_figure(family), "sizes")
    report.figure(F.shared_heatmap_figure(family))
    report.figure(F.files_treemap_figure(family[3]))
    report.figure(F.wasted_space_figure(pd.DataFrame({"path": ["a", "b"], "wasted": [5, 9]})))
    report.heading("Push").figure(F.push_timeline_figure(events, events.assign(
        start=events["start"] * 1.1, end=events["end"] * 1.1)))
    report.figure(F.sweep_figure(sweep, "workers"))
    path = report.write(tmp_path_factory.mktemp("report") / "figures.html")
    return path, report.figure_count


@pytest.fixture(scope="module")
def page():
    """One headless chromium page for the module (starting chromium is the slow part)."""
    require_tool("chromium")
    from chromium_page import ChromiumPage

    with ChromiumPage() as browser_page:
        yield browser_page


def check_page(page, path: Path, expected_figures: int, screenshot: Path) -> dict:
    """Open ``path``; return what was found (and assert it is all good)."""
    page.errors.clear()
    page.open(path.resolve().as_uri())
    drawn = page.wait_until(f"{PLOTS_DRAWN} >= {expected_figures} && {PLOTS_DRAWN}")
    found = {
        "plots": page.evaluate("document.querySelectorAll('.js-plotly-plot').length"),
        "drawn": drawn,
        "bars": page.evaluate("document.querySelectorAll('.js-plotly-plot .point').length"),
        "plotly": page.evaluate("typeof Plotly === 'object' ? Plotly.version : null"),
        "errors": list(page.errors),
    }
    page.screenshot(screenshot)
    assert found["errors"] == []
    assert found["plotly"]
    assert found["plots"] == found["drawn"] == expected_figures
    assert screenshot.stat().st_size > 10_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return found


def test_figures_report_renders_offline(page, figures_report, artifacts):
    path, count = figures_report
    found = check_page(page, path, count, artifacts / "figures-report.png")
    assert found["bars"] > 20


def test_dump_dom_shows_svg_plots(figures_report, tmp_path):
    """The issue's simplest check: ``--dump-dom`` after load holds plotly's SVGs."""
    chromium = require_tool("chromium")
    path, count = figures_report
    from chromium_page import FLAGS

    flags = [f for f in FLAGS if not f.startswith("--remote-")]
    dom = subprocess.run(
        [chromium, *flags, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         path.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count('class="main-svg"') >= 2 * count
    assert dom.count('class="plot-container plotly"') == count


def test_a_broken_page_is_caught(page, tmp_path):
    """The harness itself: a script error must show up as an error."""
    page_path = tmp_path / "broken.html"
    page_path.write_text("<html><body><script>undefinedFunction();</script>"
                         "<script>console.error('bad thing')</script></body></html>")
    page.errors.clear()
    page.open(page_path.as_uri())
    assert page.evaluate("1 + 1") == 2
    assert any("undefinedFunction is not defined" in e for e in page.errors)
    assert any("bad thing" in e for e in page.errors)
    page.errors.clear()


def test_demo_report_renders_offline(page, artifacts):
    """The report ``layerlab demo`` writes: all 12 figures drawn, no JavaScript error."""
    from demo_run import demo_once

    _, report, _, _ = demo_once()
    found = check_page(page, report, 12, artifacts / "demo-report.png")
    assert found["bars"] > 100
