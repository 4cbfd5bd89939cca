"""The user cache directory of layerlab (digest cache, generated sample images)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir"]


def default_cache_dir() -> Path:
    """``$LAYERLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/layerlab``, else ``~/.cache/layerlab``."""
    explicit = os.environ.get("LAYERLAB_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "layerlab"
