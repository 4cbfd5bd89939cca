"""Rewriting images, as go-containerregistry's ``mutate``: pure functions from an
:class:`~layerlab.model.Image` to a new one (new blobs streamed to a work directory).

* :func:`rewrite` - merge, squash, exclude, reorder, set timestamps, recompress
  (layers move only where they commute: :mod:`layerlab.analysis.commute`).
"""

from .plan import layer_groups
from .result import LayerChange, RewriteResult
from .rewrite import rewrite

__all__ = ["rewrite", "RewriteResult", "LayerChange", "layer_groups"]
