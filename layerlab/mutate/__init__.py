"""Rewriting images, as go-containerregistry's ``mutate``: pure functions from an
:class:`~layerlab.model.Image` to a new one (new blobs streamed to a work directory).

* :func:`rewrite` - merge, squash, exclude, reorder, set timestamps, recompress;
* :func:`commute_conflicts` - why two layers may not change places.
"""

from .plan import commute_conflicts, layer_groups
from .result import LayerChange, RewriteResult
from .rewrite import rewrite

__all__ = ["rewrite", "RewriteResult", "LayerChange", "commute_conflicts", "layer_groups"]
