"""The ipywidgets explorers, built and driven from code."""

from __future__ import annotations

import pytest

import layerlab
from layerlab.notebook import widgets as W
from layerlab.simulator import simulate
from layerlab.simulator.sweep import relayer


@pytest.fixture(scope="module")
def references(samples):
    return W.sample_references(samples)


@pytest.fixture(scope="module")
def app24(samples):
    return layerlab.open_image(f"oci:{samples}/oci/family:app24")


def test_sample_references(references, samples):
    assert f"oci:{samples}/oci/family:wasted" in references
    assert f"docker-archive:{samples}/docker-archive/family.tar:app:v2" in references
    assert len(references) == len(set(references))


def test_image_explorer_layers_and_files(references, samples):
    explorer = W.ImageExplorer([f"oci:{samples}/oci/family:app-v1",
                                f"oci:{samples}/oci/family:wasted"])
    assert explorer.image.name == "app-v1"
    assert "Image app-v1" in explorer.summary.value
    assert explorer.layer.options[0] == W.MERGED and len(explorer.layer.options) == 5
    assert [t.name for t in explorer.figure.data][:4] == [
        str(layer.diff_id)[7:19] for layer in explorer.image.layers]

    explorer.reference.value = f"oci:{samples}/oci/family:wasted"
    assert explorer.image.name == "wasted"
    assert len(explorer.files) == 22  # the merged filesystem: regular files and links
    assert "22 files, 182.3 kB" in explorer.listing.value
    explorer.layer.value = explorer.layer.options[4]  # layer 4 rewrote big.bin
    assert explorer.files.to_dict("records")[0]["path"] == "opt/data/big.bin"
    assert list(explorer.files["size"]) == [32000]
    explorer.layer.value = W.MERGED
    explorer.filter.value = "opt/"
    assert list(explorer.files["path"]) == ["opt/cache/d.dat", "opt/conf/app.conf",
                                            "opt/data/big.bin", "opt/keep.txt"]


def _expected(app24, profile="docker", workers=5, level=6, bandwidth=100.0, rtt=2.0,
              cache=True, layers=None):
    from layerlab.pusher.profiles import get_profile
    from layerlab.simulator.simulation import as_layers

    specs = as_layers(app24)
    if layers is not None:
        specs = relayer(specs, layers)
    prof = get_profile(profile).with_options(concurrency=workers, level=level)
    return simulate(specs, prof, bandwidth=f"{bandwidth} Mbit/s", rtt=f"{rtt} ms", cache=cache)


def test_push_simulator_follows_the_model(app24):
    sim = W.push_simulator(app24)
    assert sim.result.total == pytest.approx(_expected(app24).total)
    before_total, before_figure = sim.result.total, sim.figure

    sim.rtt.value = 80
    assert sim.result.total == pytest.approx(_expected(app24, rtt=80.0).total)
    assert sim.result.total > before_total
    assert sim.figure is not before_figure
    assert f"{sim.result.requests}" in sim.totals.value

    sim.workers.value = 1
    serial = _expected(app24, rtt=80.0, workers=1)
    assert sim.result.total == pytest.approx(serial.total)

    sim.layer_count.value = 4
    four = _expected(app24, rtt=80.0, workers=1, layers=4)
    assert sim.result.total == pytest.approx(four.total)
    assert sim.result.total < serial.total  # 20 fewer layers: 20 x a few round trips less
    rows = {t.name.split(" ", 1)[1] for t in sim.figure.data if t.x != (None,)}
    assert {"layer 0", "layer 3"} <= rows

    sim.cache.value = False
    sim.bandwidth.value = 10
    sim.level.value = 1
    sim.profile.value = "fast"
    assert sim.result.total == pytest.approx(_expected(
        app24, profile="fast", workers=1, level=1, bandwidth=10.0, rtt=80.0, cache=False,
        layers=4).total)


def test_registry_dashboard_follows_a_push(references, samples):
    reference = f"docker-archive:{samples}/docker-archive/app-v1.tar"
    with layerlab.LocalRegistry() as registry:
        dashboard = W.registry_dashboard(registry, [reference])
        assert dashboard.counters["requests"] == 0
        thread = dashboard.push_in_background(profile="fast")
        thread.join(timeout=60)
        assert dashboard.last_push.destination == f"{registry.host}/dashboard/app-v1:latest"
        dashboard.refresh()
        assert dashboard.counters == registry.log.counters()
        assert dashboard.counters["requests"] == dashboard.last_push.requests
        assert dashboard.counters["by_kind"]["manifest_put"] == 1
        kinds = {t.name: set(t.y) for t in dashboard.figure.data}
        assert "manifest_put" in kinds["ok"]
        assert dashboard.table.value.count("<tr>") == min(12, dashboard.counters["requests"]) + 1
        dashboard.close()
        registry.log.clear()
        # after close() the dashboard no longer follows the log
        layerlab.push(reference, f"{registry.host}/other:1", progress=False, cache=False)
        assert dashboard.counters["requests"] == dashboard.last_push.requests
