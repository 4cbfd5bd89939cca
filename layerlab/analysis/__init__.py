"""Analyses of images: pure functions over :class:`~layerlab.model.Image` values.

* :func:`shared_layers` - which layers a set of images share; naive vs deduplicated bytes;
* :func:`diff` - layers, config and (``files=True``) files of two images;
* :func:`efficiency` - dive's wasted-space figures, and what really happened to each path;
* :func:`layer_advice` - history, mergeable RUN layers, tiny layers, deleted files;
* :func:`context_report` - a build context with and without its ``.dockerignore``.

They work the same on archives, OCI layouts and registry images (remote layers are
streamed only when file-level work needs them). Results are frozen dataclasses with
``to_json()``, ``to_frame()`` (pandas), ``plot()`` (plotly) and notebook rendering.
Submodules are imported lazily (and named apart from the functions: ``imagediff``
holds :func:`diff`, ``wasted`` holds :func:`efficiency`).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "shared_layers": "shared", "SharedLayers": "shared", "LayerUse": "shared",
    "ImageShare": "shared", "PushStep": "shared",
    "diff": "imagediff", "ImageDiff": "imagediff", "LayerDiff": "imagediff",
    "ConfigDiff": "imagediff", "LayerRef": "imagediff", "diff_layers": "imagediff",
    "diff_config": "imagediff",
    "diff_files": "filediff", "FileDiff": "filediff", "FileChange": "filediff",
    "PathInfo": "filediff", "DirectoryDelta": "filediff",
    "efficiency": "wasted", "Efficiency": "wasted", "WastedPath": "wasted",
    "PathWrite": "wasted",
    "layer_advice": "history", "LayerAdvice": "history", "LayerInfo": "history",
    "MergeRun": "history", "DeletedFile": "history",
    "context_report": "context", "ContextReport": "context", "ContextItem": "context",
    "DockerIgnore": "dockerignore",
    "MergedFilesystem": "filesystem",
    "scan_layer": "scan", "scan_layers": "scan",
    "build_reuse": "reuse", "ReuseResult": "reuse", "layer_order_advice": "layerorder",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
