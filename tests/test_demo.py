"""``layerlab demo``: the end-to-end experiment on the sample images and the local registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from demo_run import ROOT, demo_once

pytestmark = pytest.mark.slow

PUSHES = [  # profile, network, layers, pushed, existing, requests
    ("docker-1.7", "LAN", 24, 24, 0, 51),
    ("fast", "LAN", 24, 24, 0, 30),
    ("docker-1.7", "WAN 20 ms", 24, 24, 0, 51),
    ("fast", "WAN 20 ms", 24, 24, 0, 30),
    ("fast", "LAN", 4, 4, 0, 10),
    ("fast", "LAN", 5, 2, 3, 13),
]


def test_demo_json_shape_and_values():
    data, report, stderr, _ = demo_once()
    assert stderr == ""
    assert set(data) == {"samples", "wan", "pushes", "shared", "diff", "efficiency",
                         "registry", "seconds", "report"}
    assert data["wan"] == {"latency": "20 ms", "bandwidth": "50 Mbit/s"}
    assert [(p["profile"], p["network"], p["layers"], p["pushed"],
             p["existing"] + p["mounted"], p["requests"]) for p in data["pushes"]] == PUSHES
    assert [p["image"] for p in data["pushes"]] == ["app24"] * 4 + ["app:v1", "app:v2"]
    for push in data["pushes"]:
        assert push["measured_seconds"] > 0 and push["simulated_seconds"] > 0
        assert push["simulated_over_measured"] == pytest.approx(
            push["simulated_seconds"] / push["measured_seconds"])
    # docker 1.7 compresses with zlib level 6 (the same bytes on both links)
    assert data["pushes"][0]["bytes_uploaded"] == data["pushes"][2]["bytes_uploaded"]
    assert data["shared"] == {"naive_bytes": 681472, "deduplicated_bytes": 283136,
                              "saved_bytes": 398336}
    assert data["diff"]["a"] == "app:v1" and data["diff"]["b"] == "app:v2"
    assert data["diff"]["summary"].startswith("3 common layers, 1 removed, 2 added")
    assert data["efficiency"]["wasted_bytes"] == 104000
    assert data["registry"]["requests"] == 185
    assert data["registry"]["by_kind"]["manifest_put"] == 6
    assert data["report"] == str(report) and report.exists()


def test_demo_report_is_self_contained():
    _, report, _, _ = demo_once()
    page = report.read_text()
    assert page.count('class="layerlab-figure"') == 12
    assert "<script src=" not in page
    for heading in ("Push times: measured vs simulated", "What the registry saw",
                    "Shared layers across tags", "Diff app:v1 -&gt; app:v2", "Wasted space"):
        assert heading in page


def test_demo_text_output(tmp_path):
    """The human output: sections, tables and the report path last."""
    proc = subprocess.run(
        [sys.executable, "-m", "layerlab", "demo", "--no-wan", "--profiles", "fast",
         "--image", "app-v1", "--out", str(tmp_path / "r.html")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for section in ("== Shared layers (base, app:v1, app:v2) ==", "== Diff app:v1 -> app:v2 ==",
                    "== Wasted space (wasted) ==", "== Push times: measured vs simulated =="):
        assert section in out
    assert "3 images, 6 distinct layers: 681.5 kB naive, 283.1 kB deduplicated" in out
    assert "e905a00594b6  109.6 kB  x       x       x" in out
    assert "modified  app/main.py" in out
    assert out.rstrip().endswith(f"Report: {tmp_path / 'r.html'}")
    assert (tmp_path / "r.html").exists()


def test_demo_usage_errors():
    proc = subprocess.run([sys.executable, "-m", "layerlab", "demo", "--profiles", "nope",
                           "--no-report", "--no-wan"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("layerlab: error: ") and "nope" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
