"""The plotly figure functions: traces and values for the sample images, stable colours."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import layerlab
from layerlab.notebook import figures as F
from layerlab.notebook.colors import layer_color, layer_key

BASE_1 = "sha256:e905a00594b6133ed6db1dc4079d346592783ed7c79fcf3735671407ae0f0fcc"
BASE_2 = "sha256:c9eee858e18647b461d8cb3ed95e32828fa10a0a7c2c5fc7d2638e55d349e522"
PYTHON = "sha256:bab1b3608cc510965b62c6624d3c7a6d7a650249893e2cc72dbe8a9f485caf8f"
APP_V1 = "sha256:836e0c05294ee096cb538448dcc541c3364fb1335bee20f91e827ee944eb5e2f"
APP_V2 = "sha256:96e144450faf619bf7d68e27783efa45652277b1a88f2040480a81e0d72f19d4"
COMPILE = "sha256:539b9381483c3838b57478d1fc04d4b937af897c58714319ea22f58172c886dc"


@pytest.fixture(scope="module")
def family(samples):
    return [layerlab.open_image(f"oci:{samples}/oci/family:{ref}")
            for ref in ("base", "app-v1", "app-v2")]


@pytest.fixture(scope="module")
def wasted(samples):
    return layerlab.open_image(f"oci:{samples}/oci/family:wasted")


def test_layer_color_is_stable_and_keyed_by_diff_id(samples, family):
    assert layer_color(BASE_1) == "#c34789"
    assert layer_color(BASE_1) != layer_color(BASE_2)
    assert layer_color(BASE_1.upper().replace("SHA256", "sha256")) == "#c34789"
    # the same layer stored uncompressed (docker-archive) and gzip (OCI) gets one colour
    archive = layerlab.open_image(f"docker-archive:{samples}/docker-archive/app-v1.tar")
    oci = family[1]
    assert archive.layers[0].digest != oci.layers[0].digest
    assert layer_key(oci.layers[0]) == BASE_1
    assert layer_color(archive.layers[0]) == layer_color(oci.layers[0]) == "#c34789"
    assert layer_color({"digest": "x", "diff_id": BASE_1}) == "#c34789"
    assert layer_color("") == "#b0b0b0"
    assert layer_color("not a digest").startswith("#")


def test_layers_frame_marks_shared_layers(family):
    frame = F.layers_frame(family)
    assert list(frame["image"]) == ["base"] * 2 + ["app-v1"] * 4 + ["app-v2"] * 5
    assert list(frame["position"]) == [1, 2, 1, 2, 3, 4, 1, 2, 3, 4, 5]
    assert list(frame["key"]) == [BASE_1, BASE_2, BASE_1, BASE_2, PYTHON, APP_V1,
                                  BASE_1, BASE_2, PYTHON, APP_V2, COMPILE]
    assert list(frame["size"]) == [64095, 31305, 64095, 31305, 26718, 9829,
                                   64095, 31305, 26718, 11704, 6817]
    assert list(frame["shared"]) == [True] * 5 + [False] + [True] * 3 + [False, False]


def test_layer_sizes_figure(family):
    fig = F.layer_sizes_figure(family)
    assert fig.layout.barmode == "stack"
    bars = [t for t in fig.data if t.x != (None,)]
    assert [t.name for t in bars] == [k[7:19] for k in (BASE_1, BASE_2, PYTHON, APP_V1,
                                                          APP_V2, COMPILE)]
    by_name = {t.name: t for t in bars}
    assert by_name[BASE_1[7:19]].x == ("base", "app-v1", "app-v2")
    assert by_name[BASE_1[7:19]].y == (64095, 64095, 64095)
    assert by_name[PYTHON[7:19]].x == ("app-v1", "app-v2")
    assert by_name[APP_V1[7:19]].y == (9829,)
    # shared layers hatched, unique ones plain; colours follow the layer
    assert by_name[BASE_2[7:19]].marker.pattern.shape == "/"
    assert by_name[COMPILE[7:19]].marker.pattern.shape == ""
    assert by_name[BASE_1[7:19]].marker.color == layer_color(BASE_1)
    # the stacked totals are the image sizes
    totals = {}
    for t in bars:
        for x, y in zip(t.x, t.y):
            totals[x] = totals.get(x, 0) + y
    assert totals == {"base": family[0].size, "app-v1": family[1].size, "app-v2": family[2].size}
    assert fig.data[-1].name == "shared with another image"


def test_layer_sizes_figure_from_a_plain_frame():
    frame = pd.DataFrame({"image": ["a", "a", "b"], "digest": ["sha256:" + "1" * 64,
                                                               "sha256:" + "2" * 64,
                                                               "sha256:" + "1" * 64],
                          "size": [10, 20, 10]})
    fig = F.layer_sizes_figure(frame, title=None)
    assert [(t.x, t.y, t.marker.pattern.shape) for t in fig.data[:2]] == [
        (("a", "b"), (10, 10), "/"), (("a",), (20,), "")]


def test_shared_heatmap_figure(family):
    fig = F.shared_heatmap_figure(family)
    (heat,) = fig.data
    assert heat.type == "heatmap"
    assert heat.x == ("base", "app-v1", "app-v2")
    assert [label.split("</span> ")[1] for label in heat.y] == [
        f"{BASE_1[7:19]} (3)", f"{BASE_2[7:19]} (3)", f"{PYTHON[7:19]} (2)",
        f"{APP_V1[7:19]} (1)", f"{APP_V2[7:19]} (1)", f"{COMPILE[7:19]} (1)"]
    assert layer_color(PYTHON) in heat.y[2]
    assert [list(row) for row in heat.z] == [
        [64095, 64095, 64095], [31305, 31305, 31305], [None, 26718, 26718],
        [None, 9829, None], [None, None, 11704], [None, None, 6817]]
    assert list(heat.text[3]) == ["", "9.8 kB", ""]


def test_image_files_frame_is_the_merged_filesystem(samples, wasted):
    expected = json.loads((samples / "expected.json").read_text())["images"]["wasted"]
    want = [(f["path"], f["size"]) for f in expected["merged_files"] if f["type"] != "dir"]
    frame = F.image_files_frame(wasted)
    assert list(zip(frame["path"], frame["size"])) == want
    rows = frame.set_index("path")
    assert rows.loc["opt/data/big.bin", "layer"] == 4   # rewritten with another size
    assert rows.loc["opt/conf/app.conf", "layer"] == 7  # chmod-ed: a new copy
    everything = F.image_files_frame(wasted, merged=False)
    assert len(everything) == 28
    assert "opt/cache/a.dat" in set(everything["path"]) - set(frame["path"])


def test_files_treemap_figure(wasted):
    fig = F.files_treemap_figure(wasted)
    (tree,) = fig.data
    assert tree.type == "treemap" and tree.branchvalues == "total"
    node = dict(zip(tree.ids, zip(tree.parents, tree.values, tree.marker.colors)))
    assert node["/"][1] == 182304  # sum of the merged files' sizes
    assert node["/opt/data/big.bin"] == ("/opt/data", 32000, layer_color(wasted.layers[3]))
    assert node["/usr/lib/libc.so.6"][2] == layer_color(BASE_1)
    assert node["/opt"][1] == 4000 + 2000 + 32000 + 8
    assert "182.3 kB" in fig.layout.title.text


def test_wasted_space_figure_long_and_wide():
    long = pd.DataFrame({"path": ["a", "a", "b", "b", "b", "c"],
                         "size": [5, 7, 1, 1, 1, 100],
                         "layer": ["sha256:" + "1" * 64, "sha256:" + "2" * 64] +
                                  ["sha256:" + "3" * 64] * 3 + ["sha256:" + "4" * 64]})
    fig = F.wasted_space_figure(long)
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == ["copy 1", "copy 2", "copy 3"]
    assert fig.data[0].y == ("b", "a", "c") and fig.data[0].x == (1, 5, 100)
    assert fig.data[1].y == ("b", "a") and fig.data[1].x == (1, 7)
    assert fig.data[0].marker.color[1] == layer_color("sha256:" + "1" * 64)
    wide = pd.DataFrame({"path": ["x", "y"], "wasted": [300, 1200]})
    (bar,) = F.wasted_space_figure(wide, top=1).data
    assert bar.y == ("y",) and bar.x == (1200,)


def _events():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    return pd.DataFrame([
        {"layer": a, "phase": "check", "start": 0.0, "end": 0.01, "bytes": 0, "outcome": None},
        {"layer": a, "phase": "compress", "start": 0.01, "end": 0.5, "bytes": 100, "outcome": None},
        {"layer": a, "phase": "upload", "start": 0.5, "end": 0.9, "bytes": 100, "outcome": "pushed"},
        {"layer": b, "phase": "check", "start": 0.0, "end": 0.02, "bytes": 0, "outcome": "exists"},
        {"layer": None, "phase": "manifest", "start": 0.9, "end": 1.0, "bytes": 500,
         "outcome": "pushed"},
    ])


def test_push_timeline_figure_measured_and_simulated():
    measured = _events()
    simulated = measured.assign(start=measured["start"] * 2, end=measured["end"] * 2)
    fig = F.push_timeline_figure(measured, simulated)
    layers = [t for t in fig.data if t.x != (None,)]
    assert [t.name for t in layers] == [
        "measured aaaaaaaaaaaa", "measured bbbbbbbbbbbb", "measured manifest",
        "simulated aaaaaaaaaaaa", "simulated bbbbbbbbbbbb", "simulated manifest"]
    first = layers[0]
    assert first.base == (0.0, 0.01, 0.5)
    assert first.x == pytest.approx((0.01, 0.49, 0.4))
    assert first.marker.pattern.shape == (".", "/", "")
    assert first.marker.color == layer_color("sha256:" + "a" * 64)
    assert layers[3].base == (0.0, 0.02, 1.0) and layers[3].opacity < first.opacity
    assert [t.name for t in fig.data if t.x == (None,)] == ["check", "compress", "upload",
                                                             "manifest"]
    assert list(fig.layout.yaxis.categoryarray) == ["aaaaaaaaaaaa", "bbbbbbbbbbbb", "manifest"]
    notes = sorted(a.text for a in fig.layout.annotations)
    assert notes == ["measured 1.00 s", "simulated 2.00 s"]


def test_push_timeline_figure_rows_by_diff_id_and_wall_clock():
    events = _events().assign(start=lambda f: f["start"] + 1.7e9, end=lambda f: f["end"] + 1.7e9)
    events["diff_id"] = ["sha256:" + "c" * 64] * 3 + [None, None]
    fig = F.push_timeline_figure(events)
    assert fig.data[0].name == "measured cccccccccccc"
    assert fig.data[0].base[0] == 0.0
    assert fig.data[0].marker.color == layer_color("sha256:" + "c" * 64)


def test_sweep_steps_compare_figures():
    sweep = pd.DataFrame({"workers": [4, 1, 2, 4, 1, 2], "rtt": [0, 0, 0, 20, 20, 20],
                          "seconds": [3.0, 10.0, 5.5, 3.5, 11.0, 6.0]})
    fig = F.sweep_figure(sweep, "workers", color="rtt")
    assert [(t.name, t.x, t.y) for t in fig.data] == [
        ("rtt=0", (1, 2, 4), (10.0, 5.5, 3.0)), ("rtt=20", (1, 2, 4), (11.0, 6.0, 3.5))]
    steps = pd.DataFrame({"step": ["docker 1.7", "parallel", "fewer layers"],
                          "seconds": [100.0, 40.0, 20.0]})
    (bars,) = F.steps_figure(steps).data
    assert bars.y == (100.0, 40.0, 20.0)
    assert bars.text == ("100.00 s", "40.00 s (-60 %)", "20.00 s (-50 %)")
    totals = pd.DataFrame({"profile": ["fast", "docker"], "measured_seconds": [1.0, 3.0],
                           "simulated_seconds": [1.2, 2.5]})
    fig = F.compare_figure(totals)
    assert [(t.name, t.y) for t in fig.data] == [("measured", (1.0, 3.0)),
                                                  ("simulated", (1.2, 2.5))]


def test_requests_figure_from_records():
    rows = [{"method": "HEAD", "path": "/v2/a/blobs/x", "repository": "a", "kind": "blob_head",
             "status": 404, "bytes_in": 0, "bytes_out": 0, "start": 100.0, "duration": 0.001},
            {"method": "PATCH", "path": "/v2/a/blobs/uploads/u", "repository": "a",
             "kind": "upload_patch", "status": 202, "bytes_in": 40000, "bytes_out": 0,
             "start": 100.5, "duration": 0.2}]
    fig = F.requests_figure(pd.DataFrame(rows))
    ok, error = fig.data
    assert (ok.name, ok.x, ok.y) == ("ok", (0.5,), ("upload_patch",))
    assert (error.name, error.x, error.y) == ("error", (0.0,), ("blob_head",))
    assert ok.marker.size[0] == pytest.approx(6 + 40000 ** 0.5 / 40)
