"""The flat public API: functions keep their names whatever subpackage was imported."""

from __future__ import annotations

import subprocess
import sys
import types


def test_push_and_simulate_stay_functions_after_their_packages_are_imported():
    code = (
        "import layerlab, layerlab.pusher, layerlab.simulator, types;"
        "print(isinstance(layerlab.push, types.FunctionType),"
        " isinstance(layerlab.simulate, types.FunctionType),"
        " layerlab.push.__module__, layerlab.simulate.__module__,"
        " type(layerlab.pusher).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "layerlab.pusher.api",
                                  "layerlab.simulator.simulation", "module"]


def test_subpackages_are_plain_modules():
    import layerlab.pusher
    import layerlab.simulator

    assert type(layerlab.pusher) is types.ModuleType
    assert type(layerlab.simulator) is types.ModuleType
    assert not callable(layerlab.pusher)
