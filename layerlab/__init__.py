"""layerlab: see, measure and speed up how container images travel.

The public API is flat and imported lazily (so ``import layerlab`` and the CLI start
fast): ``layerlab.open_image(...)``, ``layerlab.LocalRegistry()``, ``layerlab.push(...)``,
``layerlab.diff(a, b)``, ``layerlab.simulate(...)`` ...
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # core
    "Digest": "layerlab.digest",
    "Descriptor": "layerlab.manifest",
    "Manifest": "layerlab.manifest",
    "ImageManifest": "layerlab.manifest",
    "ManifestIndex": "layerlab.manifest",
    "Schema1Manifest": "layerlab.manifest",
    "parse_manifest": "layerlab.manifest",
    "ImageConfig": "layerlab.config",
    "HistoryEntry": "layerlab.config",
    "Platform": "layerlab.platform",
    "Layer": "layerlab.model",
    "Image": "layerlab.model",
    "ImageIndex": "layerlab.model",
    "TarEntry": "layerlab.tarstream",
    "parse_reference": "layerlab.reference",
    # sources
    "open_image": "layerlab.sources",
    "open_all_platforms": "layerlab.sources",
    "list_images": "layerlab.sources",
    "ImageSummary": "layerlab.sources",
    "RegistryClient": "layerlab.sources.remote",
    "load_repository": "layerlab.sources.remote",
    # sample images and workshop notebooks
    "samples_dir": "layerlab.samples",
    "copy_notebooks": "layerlab.workshop",
    # registry
    "LocalRegistry": "layerlab.registry",
    # push
    "push": "layerlab.pusher",
    "copy": "layerlab.pusher",
    "PushResult": "layerlab.pusher",
    "PushProfile": "layerlab.pusher",
    # analysis
    "shared_layers": "layerlab.analysis",
    "diff": "layerlab.analysis",
    "efficiency": "layerlab.analysis",
    "layer_advice": "layerlab.analysis",
    "context_report": "layerlab.analysis",
    "build_reuse": "layerlab.analysis",
    # rewrite
    "rewrite": "layerlab.mutate",
    "RewriteResult": "layerlab.mutate",
    "check": "layerlab.analysis.gates",
    # simulate
    "simulate": "layerlab.simulator",
    "sweep": "layerlab.simulator",
    "calibrate": "layerlab.simulator",
    "validate": "layerlab.simulator",
    "SimulationResult": "layerlab.simulator",
    "simulate_pull": "layerlab.simulator", "PullResult": "layerlab.simulator",
    # errors
    "LayerlabError": "layerlab.errors",
}

__all__ = sorted(_EXPORTS) + ["errors", "__version__"]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        if name in ("errors", "mediatypes", "units"):
            return importlib.import_module(f"layerlab.{name}")
        raise AttributeError(f"module 'layerlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
