"""Calibration and validation against real pushes to the local registry.

The validation run pushes the small sample images over an emulated slow link (the local
registry's bandwidth and latency knobs), so the times are dominated by what the model
knows best; the tolerance is wide because the machine is shared and noisy. Request
counts and bytes are exact or nearly so, and are checked as such.
"""

from __future__ import annotations

import math

import pytest

from layerlab.simulator import MachineProfile, calibrate, validate
from layerlab.simulator.validation import Case, grid, validation_profile


def test_calibrate_quick(tmp_path):
    path = tmp_path / "machine.json"
    machine = calibrate(quick=True, save=path)
    assert MachineProfile.load(path) == machine
    assert machine.cores >= 1
    for key in ("isal-1", "zlib-6", "zstd-3"):
        assert machine.compress_rate[key] > 1e6
        assert 1.0 < machine.ratio[key] < 10.0
    assert machine.sha256_rate > 1e7
    assert 0 < machine.registry_request_overhead < 1.0
    assert 0 <= machine.client_request_overhead < 1.0
    assert 0 <= machine.client_connect_cost < 1.0
    assert 0 < machine.client_thread_join_cost < 0.01
    assert 0 < machine.registry_blob_overhead < 1.0
    assert machine.registry_ingest_rate > 1e6
    assert machine.registry_commit_rate > 0 and machine.registry_reread_rate > 0
    assert machine.source.startswith("calibrated")
    assert not math.isnan(machine.disk_rate)


def test_grid_and_profiles():
    cases = grid()
    assert len(cases) == 2 * 2 * 3 * 2 * 2
    assert cases[0] == Case("14", "serial", "none", True, "50 MB/s", "10 ms")
    assert validation_profile("serial").concurrency == 1
    assert validation_profile("parallel").concurrency == 0
    assert validation_profile("docker").name == "docker"


@pytest.mark.slow
def test_validate_small_images():
    cases = [Case("14", "serial", "none", True, "2 MB/s", "50 ms"),
             Case("24", "parallel", "some", False, "2 MB/s", "50 ms"),
             Case("14", "parallel", "all", True, "4 MB/s", "50 ms")]
    result = validate(cases=cases)
    frame = result.to_frame()
    assert list(frame["case"]) == [c.name for c in cases]
    for row in result.rows:
        assert row["requests_predicted"] == row["requests_measured"], row["case"]
        if row["bytes_measured"]:
            assert abs(row["bytes_predicted"] / row["bytes_measured"] - 1) < 0.05
        assert abs(row["error"]) < 0.4, row
    assert result.median_abs_error < 0.3
    assert result.plot().data
    assert "validation" in result._repr_html_()


def test_validate_pairs_each_run_with_its_own_probe():
    from layerlab.simulator import load_machine

    case = Case("14", "serial", "all", True, "4 MB/s", "20 ms")
    machine = load_machine(None).with_options(probe_rate=1e8)
    result = validate(cases=[case], machine=machine, repeat=3, load_probe=True)
    row = result.rows[0]
    assert len(row["runs"]) == 3 and row["statistic"] == "median"
    assert row["measured"] == sorted(row["runs"])[1]
    assert abs(row["error"]) < 0.4, row
    with pytest.raises(ValueError, match="statistic must be median or min"):
        validate(cases=[case], machine=machine, statistic="mean")
