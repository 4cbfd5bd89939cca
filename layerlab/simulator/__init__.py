"""The push-cost simulator: predict how long a push takes and which step dominates.

A discrete-event model of a push (per layer and per request: existence checks, mounts,
compression, upload, the registry's verification and storage, the manifest) over shared
resources (client cores, the network link, the registry, a buffering proxy), driven by
the same :class:`~layerlab.pusher.PushProfile` values the real pusher uses.

* :func:`simulate` - one scenario -> :class:`SimulationResult`;
* :func:`sweep` - a grid of scenarios -> :class:`SweepResult`;
* :func:`calibrate` - measure this machine -> :class:`MachineProfile` (saved, reusable);
* :func:`validate` - real pushes to the local registry vs predictions;
* :func:`seed_story` - the seed post's 100 s -> 20 s, step by step;
* :func:`simulate_pull` - the pull side: one pull -> :class:`PullResult`;
  :func:`validate_pull` - real pulls (``layerlab copy``, skopeo) vs predictions.
"""

from __future__ import annotations

import importlib
from typing import Any

from .inputs import LayerSpec, Network, RegistrySettings, layer_specs, layers_from_image
from .machine import DEFAULT_MACHINE, MachineProfile, default_machine_path, load_machine
from .result import SimEvent, SimulationResult, overlay
from .simulation import simulate
from .sweep import SweepResult, relayer, sweep

__all__ = [
    "simulate", "sweep", "calibrate", "validate", "seed_story",
    "SimulationResult", "SimEvent", "SweepResult", "StoryResult", "ValidationResult",
    "LayerSpec", "Network", "RegistrySettings", "MachineProfile", "DEFAULT_MACHINE",
    "layer_specs", "layers_from_image", "relayer", "overlay", "load_machine",
    "default_machine_path",
    "simulate_pull", "PullResult", "PullLayer", "PullProfile", "Node", "validate_pull",
]

_LAZY = {
    "calibrate": "layerlab.simulator.calibration",
    "validate": "layerlab.simulator.validation",
    "ValidationResult": "layerlab.simulator.validation",
    "seed_story": "layerlab.simulator.scenarios",
    "StoryResult": "layerlab.simulator.scenarios",
    **dict.fromkeys(("simulate_pull", "PullLayer", "PullProfile", "Node"), "layerlab.simulator.pull"),
    "PullResult": "layerlab.simulator.pull_result", "validate_pull": "layerlab.simulator.pull_validation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'layerlab.simulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
