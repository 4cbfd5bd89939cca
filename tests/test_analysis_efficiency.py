"""Wasted space: dive's figures must equal the real dive binary's; layerlab's additions
(corrected bytes, unreachable bytes, per-path writes) are checked by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis_images import write_archive
from conftest import require_tool
from layerlab.analysis import efficiency
from layerlab.sources import open_image

DIVE_ARCHIVES = ["base", "app-v1", "app-v2", "app24", "app14", "wasted", "app-v1-docker25"]

# raw layer lists exercising dive's edge cases (see layerlab.analysis.dive)
TRICKY = {
    "dir-whiteout": [
        [("dir", "a"), ("file", "a/x", b"1" * 1000), ("dir", "a/sub"),
         ("file", "a/sub/y", b"2" * 500), ("file", "keep", b"k" * 10)],
        [("whiteout", "a"), ("file", "b", b"b" * 300)],
        [("dir", "a"), ("file", "a/x", b"3" * 100)],
    ],
    "whiteout-of-missing-path": [
        [("dir", "d"), ("file", "d/f", b"f" * 700), ("file", "z", b"z" * 50)],
        [("dir", "d"), ("whiteout", "d/nothere"), ("file", "d/f", b"g" * 600),
         ("file", "d/zz", b"q" * 40)],
        [("file", "z", b"y" * 30)],
    ],
    "implicit-parents": [
        [("dir", "opt"), ("dir", "opt/lib"), ("file", "opt/lib/a", b"a" * 900)],
        [("file", "opt/lib/b", b"b" * 400)],
        [("whiteout", "opt/lib"), ("file", "c", b"c" * 5)],
        [("file", "opt/lib/a", b"n" * 10)],
    ],
    "opaque-without-parent": [
        [("dir", "c"), ("file", "c/1", b"1" * 300), ("file", "c/2", b"2" * 200)],
        [("opaque", "c"), ("file", "c/3", b"3" * 100)],
        [("file", "c/1", b"x" * 50)],
    ],
    "three-copies-links-empty-dirs": [
        [("file", "f", b"a" * 100), ("dir", "e"), ("symlink", "s", "f"), ("file", "g", b"g" * 1000)],
        [("file", "f", b"b" * 300), ("dir", "e"), ("file", "s", b"now a file"), ("file", "h", b"h" * 5)],
        [("file", "f", b"c" * 200), ("dir", "e"), ("hardlink", "hl", "g"), ("file", "h", b"H" * 5)],
    ],
    "whiteout-in-first-layer": [
        [("file", "a", b"a" * 100), ("whiteout", "a"), ("whiteout", "ghost"), ("file", "b", b"b" * 10)],
        [("file", "a", b"z" * 10)],
    ],
    "duplicate-in-one-layer": [
        [("file", "p", b"1" * 100), ("file", "p", b"2" * 50)],
        [("file", "p", b"3" * 70)],
    ],
    "file-replaces-dir": [
        [("dir", "x"), ("file", "x/in", b"i" * 400)],
        [("whiteout", "x"), ("file", "x", b"now file")],
        [("file", "y", b"y")],
    ],
}


def dive_binary() -> str:
    here = Path(sys.executable).parent / "dive"
    return str(here) if here.exists() else require_tool("dive")


def run_dive(archive: Path, tmp_path: Path) -> dict:
    """dive's --json export, plus the user wasted percent it prints in CI mode."""
    out = tmp_path / (archive.stem + ".dive.json")
    proc = subprocess.run([dive_binary(), "--ci", "--json", str(out), "--source",
                           "docker-archive", str(archive)],
                          env={**os.environ, "CI": "true"}, capture_output=True, text=True,
                          timeout=120)
    assert out.exists(), proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    image = data["image"]
    layer_sizes = [layer["sizeBytes"] for layer in data["layer"]]
    user = image["sizeBytes"] - layer_sizes[0]
    return {
        "efficiency": image["efficiencyScore"],
        "wasted_bytes": image["inefficientBytes"],
        "size_bytes": image["sizeBytes"],
        "user_wasted_percent": image["inefficientBytes"] / user if user else None,
        "layer_sizes": layer_sizes,
        "paths": sorted((f["file"].lstrip("/"), f["count"], f["sizeBytes"])
                        for f in image["fileReference"]),
    }


def ours(result) -> dict:
    return {
        "efficiency": result.efficiency,
        "wasted_bytes": result.wasted_bytes,
        "size_bytes": result.size_bytes,
        "user_wasted_percent": result.user_wasted_percent,
        "layer_sizes": list(result.layer_sizes),
        "paths": sorted((p.path, p.count, p.cumulative_size) for p in result.inefficient_paths),
    }


@pytest.mark.parametrize("name", DIVE_ARCHIVES)
def test_sample_figures_equal_dive(samples, tmp_path, name):
    archive = samples / "docker-archive" / f"{name}.tar"
    assert ours(efficiency(open_image(str(archive)))) == run_dive(archive, tmp_path)


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_edge_case_figures_equal_dive(tmp_path, name):
    archive = write_archive(tmp_path / f"{name}.tar", TRICKY[name])
    assert ours(efficiency(open_image(str(archive)))) == run_dive(archive, tmp_path)


def test_wasted_sample_exact(samples):
    result = efficiency(open_image(str(samples / "docker-archive" / "wasted.tar")))
    assert result.efficiency == pytest.approx(0.741032319166568, abs=1e-15)
    assert result.wasted_bytes == 104000
    assert result.user_wasted_percent == pytest.approx(0.5805774512649889, abs=1e-15)
    assert result.size_bytes == 270304
    assert result.user_size_bytes == 179132
    assert result.layer_sizes == (91172, 53124, 88008, 32000, 0, 4000, 2000)
    assert result.corrected_wasted_bytes == 48000 + 20000 + 2000
    assert result.unreachable_bytes == 48000 + 20000 + 3 * 6000 + 2000
    table = [(p.path, p.count, p.cumulative_size, p.min_size, p.kept_size, p.wasted_size,
              [(w.layer, w.size, w.fate, w.by_layer) for w in p.writes])
             for p in result.inefficient_paths]
    assert table == [
        ("opt/data/big.bin", 2, 80000, 32000, 32000, 48000,
         [(2, 48000, "overwritten", 3), (3, 32000, "kept", None)]),
        ("opt/data/tmp.log", 2, 20000, 0, 0, 20000, [(2, 20000, "deleted", 4)]),
        ("opt/conf/app.conf", 2, 4000, 2000, 2000, 2000,
         [(2, 2000, "overwritten", 6), (6, 2000, "kept", None)]),
    ]
    # files hidden by the opaque /opt/cache: unreachable, but dive does not list them
    assert [(p.path, p.wasted_size, [(w.layer, w.fate, w.by_layer) for w in p.writes])
            for p in result.unlisted_paths] == [
        (f"opt/cache/{n}.dat", 6000, [(2, "hidden", 5)]) for n in "abc"]
    assert result.warnings == ()


def test_same_figures_from_oci_layout_and_archive(samples):
    for name in ("wasted", "app24"):
        archive = efficiency(open_image(str(samples / "docker-archive" / f"{name}.tar")))
        layout = efficiency(open_image(f"oci:{samples}/oci/family:{name}"))
        assert ours(layout) == ours(archive)
        assert layout.corrected_wasted_bytes == archive.corrected_wasted_bytes
        assert layout.unreachable_bytes == archive.unreachable_bytes


def test_missing_whiteout_quirk_is_reported(tmp_path):
    archive = write_archive(tmp_path / "w.tar", TRICKY["whiteout-of-missing-path"])
    result = efficiency(open_image(str(archive)))
    assert len(result.warnings) == 1 and "layer(s) 1" in result.warnings[0]
    # layerlab's own accounting ignores the stray whiteout, as the OCI spec says
    assert result.unreachable_bytes == 700 + 50
    assert result.corrected_wasted_bytes == 50


def test_json_shape_and_presentation(samples):
    result = efficiency(open_image(str(samples / "docker-archive" / "wasted.tar")))
    data = result.to_json()
    assert set(data) == {"reference", "name", "efficiency", "wasted_bytes",
                         "user_wasted_percent", "size_bytes", "user_size_bytes",
                         "corrected_wasted_bytes", "unreachable_bytes", "layers",
                         "inefficient_paths", "unlisted_paths", "warnings"}
    assert data["layers"][4] == {"index": 4, "size_bytes": 0,
                                 "created_by": "/bin/sh -c rm /opt/data/tmp.log"}
    json.dumps(data)
    frame = result.to_frame()
    assert list(frame["path"]) == ["opt/data/big.bin", "opt/data/tmp.log", "opt/conf/app.conf",
                                   "opt/cache/a.dat", "opt/cache/b.dat", "opt/cache/c.dat"]
    assert list(frame["dive_listed"]) == [True] * 3 + [False] * 3
    assert "opt/data/big.bin" in result._repr_html_()
    assert repr(result) == "<Efficiency wasted:latest: 0.7410, wasted 104000 bytes, 3 paths>"
    fig = result.plot()
    assert len(fig.data) == 2


def test_image_without_user_layers_has_no_user_percent(tmp_path):
    archive = write_archive(tmp_path / "one.tar", [[("file", "a", b"a" * 10)]])
    result = efficiency(open_image(str(archive)))
    assert (result.efficiency, result.wasted_bytes, result.user_wasted_percent) == (1.0, 0, None)


def test_dive_binary_is_the_pinned_version():
    out = subprocess.run([dive_binary(), "--version"], capture_output=True, text=True).stdout
    assert "0.13.1" in out
