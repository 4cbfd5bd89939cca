"""The simulator's surface: inputs from images, results, frames, figures, sweeps, the
seed story, machine profiles and the ``layerlab simulate`` command."""

from __future__ import annotations

import json

import pytest

from layerlab.cli import main
from layerlab.pusher.result import EVENT_COLUMNS, PushEvent, PushResult
from layerlab.simulator import (DEFAULT_MACHINE, LayerSpec, MachineProfile, Network,
                               layer_specs, layers_from_image, load_machine, overlay,
                               seed_story, simulate, sweep)
from layerlab.simulator.scenarios import seed_layers
from layerlab.sources import open_image

MB = 1_000_000


@pytest.fixture(scope="module")
def app14(samples):
    return open_image(f"docker-archive:{samples / 'docker-archive' / 'app14.tar'}")


def test_layers_from_an_uncompressed_archive(app14):
    specs = layers_from_image(app14, sample_bytes=1 << 20, keys=("isal-1",))
    assert len(specs) == 14
    assert [s.name for s in specs] == [str(layer.digest) for layer in app14.layers]
    assert [s.diff_id for s in specs] == [str(layer.diff_id) for layer in app14.layers]
    assert [s.uncompressed_size for s in specs] == [layer.size for layer in app14.layers]
    assert all(not s.precompressed for s in specs)
    assert all(s.compressibility > 1.0 and "isal-1" in s.ratios for s in specs)


def test_layers_from_a_gzip_layout(samples):
    image = open_image(f"oci:{samples / 'oci' / 'family'}:app-v1")
    specs = layers_from_image(image)
    assert [s.size for s in specs] == [layer.size for layer in image.layers]
    assert all(s.precompressed for s in specs)
    # a stored layer is sent as it is, whatever the profile's compression
    assert [s.compressed_size("zstd-3") for s in specs] == [layer.size for layer in image.layers]


def test_sizes_and_units_are_accepted():
    r = simulate(["40 MB", 10 * MB], "docker", bandwidth="10 MB/s", rtt="20 ms")
    assert [layer["uncompressed_size"] for layer in r.layers] == [40 * MB, 10 * MB]
    assert Network.of("100 Mbit/s", "2 ms") == Network(12.5 * MB, 0.002)
    assert layer_specs([1000], compressibility=2.0) == (LayerSpec(1000, 2.0, name="layer 0"),)


def test_compressed_size_scales_with_the_engine():
    spec = LayerSpec(241 * MB, 2.41)
    assert spec.compressed_size("zlib-6") == 100 * MB
    # typical zstd-3 ratio 2.59 for typical (2.41) content
    assert spec.compressed_size("zstd-3") == round(241 * MB / 2.59)
    assert LayerSpec(MB, 1.0).compressed_size("isal-1") == MB


def test_result_frames_json_and_repr(app14):
    r = simulate(app14, "fast", bandwidth="5 MB/s", rtt="10 ms", label="app14")
    frame = r.to_frame()
    assert list(frame.columns)[:len(EVENT_COLUMNS)] == list(EVENT_COLUMNS)
    assert set(frame["source"]) == {"simulated"}
    assert len(r.layer_frame()) == 14
    assert r.phase_frame()["critical"].sum() == pytest.approx(r.total)
    data = json.loads(json.dumps(r.to_json()))
    assert set(data) == {"label", "total", "dominant_phase", "phases", "bytes_sent",
                         "bytes_compressed", "requests", "layers", "critical_path", "events",
                         "inputs"}
    assert data["inputs"]["workers"] >= 4
    assert repr(r).startswith("<SimulationResult app14 ")
    assert "simulated push" in r._repr_html_()


def test_plot_and_overlay_with_a_push_result():
    sim = simulate([LayerSpec(10 * MB, 2.0, name="sha256:" + "a" * 64,
                              diff_id="sha256:" + "b" * 64)], "docker", bandwidth="10 MB/s")
    fig = sim.plot()
    assert {t.name for t in fig.data} >= {"upload", "commit", "manifest"}
    measured = PushResult(
        source="x", destination="127.0.0.1:5000/app:1", manifest_digest="sha256:" + "c" * 64,
        media_type="m", profile="docker", layers=(), config=None, manifest_outcome="pushed",
        events=(PushEvent("sha256:" + "d" * 64, "sha256:" + "b" * 64, "upload", 0.0, 0.6,
                          5 * MB),), wall_seconds=0.7)
    fig = overlay(measured, sim)
    names = {t.name for t in fig.data}
    assert "upload (measured)" in names and "upload (simulated)" in names
    # the measured layer is drawn on the simulated layer's row (matched by diff_id)
    rows = {y for t in fig.data for y in t.y}
    assert rows == {"sha256:aaaaaaaaaaaa", "config", "manifest"}
    assert sim.plot(compare=measured).layout.title.text.startswith("measured 0.70 s")


def test_sweep_grid():
    layers = seed_layers(14)
    result = sweep(layers, {"workers": [1, 5], "bandwidth": ["12.5 MB/s", "125 MB/s"],
                            "layers": [14, 24]}, profile="docker")
    frame = result.to_frame()
    assert len(frame) == 8
    assert {"workers", "bandwidth", "layers", "total", "dominant_phase", "bytes_sent",
            "requests"} <= set(frame.columns)
    one = frame[(frame.workers == 1) & (frame.bandwidth == "125 MB/s") & (frame.layers == 14)]
    five = frame[(frame.workers == 5) & (frame.bandwidth == "125 MB/s") & (frame.layers == 14)]
    assert float(five.total.iloc[0]) < float(one.total.iloc[0])
    assert result.plot().data
    assert result.best()["total"] == frame.total.min()


def test_seed_story():
    story = seed_story()
    keys = [s.key for s in story.steps]
    assert keys == ["baseline", "layers", "dedup", "cache", "parallel", "nginx"]
    assert 90 < story.baseline < 110
    assert 15 < story.final < 25
    totals = [s.result.total for s in story.steps]
    assert all(b <= a for a, b in zip(totals, totals[1:]))
    frame = story.to_frame()
    assert frame["saved"].sum() == pytest.approx(story.baseline - story.final)
    assert frame["share_of_saving"].sum() == pytest.approx(1.0)
    assert story.steps[0].result.dominant_phase == "compress"
    assert story.plot().data[0].type == "waterfall"
    assert json.loads(json.dumps(story.to_json()))["steps"][0]["step"] == "baseline"


def test_machine_profile_save_load(tmp_path, monkeypatch):
    machine = DEFAULT_MACHINE.with_options(cores=3, source="test")
    path = machine.save(tmp_path / "machine.json")
    assert MachineProfile.load(path) == machine
    assert json.loads(path.read_text())["registry_commit_rate"] is None  # inf as null
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert load_machine("saved") == DEFAULT_MACHINE
    machine.save()
    assert (tmp_path / "xdg" / "layerlab" / "machine.json").is_file()
    assert load_machine("saved") == machine
    assert load_machine(None) == DEFAULT_MACHINE  # simulate() stays pure by default
    assert machine.compress_speed("isal-2") == DEFAULT_MACHINE.compress_rate["isal-2"]
    assert machine.compress_speed("zlib-5") == DEFAULT_MACHINE.compress_rate["zlib-6"]


def test_cli_seed_json(capsys):
    assert main(["simulate", "seed", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"baseline", "final", "steps", "assumptions"}
    assert [s["step"] for s in data["steps"]][0] == "baseline"


def test_cli_image(capsys, samples):
    ref = f"docker-archive:{samples / 'docker-archive' / 'app24.tar'}"
    assert main(["simulate", ref, "--profile", "docker", "--bandwidth", "10 MB/s",
                 "--rtt", "5 ms", "--machine", "default"]) == 0
    out = capsys.readouterr().out
    assert "predicted with profile docker (5 workers)" in out
    assert main(["simulate", ref, "--existing", "all", "--known", "all", "--json",
                 "--machine", "default"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [layer["outcome"] for layer in data["layers"]] == ["exists"] * 24
    assert data["bytes_sent"] == 0


def test_cli_errors(capsys, samples):
    ref = f"docker-archive:{samples / 'docker-archive' / 'app24.tar'}"
    assert main(["simulate", ref, "--existing", "x,y"]) == 2
    assert "layerlab: error:" in capsys.readouterr().err
    assert main(["simulate", ref, "--profile", "nope"]) == 2
