"""One colour per layer, the same in every figure, notebook and report.

A layer's colour is derived from its identity alone (no state, no order): the same
``diff_id`` gets the same colour in the layer-size bars, the shared-layer heatmap, the
file treemap and the push timeline, in this process and the next. The key is the
``diff_id`` where known (the same layer stored gzip in an OCI layout and uncompressed in a
docker-save archive has two distribution digests but one diff_id), else the digest.

Colours are picked from the hue circle by the digest's first bytes, with lightness and
saturation varied by later bytes, so that neighbouring layers rarely look alike.
"""

from __future__ import annotations

import colorsys
from typing import Any, Iterable

__all__ = ["layer_key", "layer_color", "layer_colors", "PHASE_COLORS", "OUTCOME_COLORS",
           "MEASURED_OPACITY", "SIMULATED_OPACITY", "NEUTRAL"]

NEUTRAL = "#b0b0b0"
"""The colour of things that are not a layer (configs, manifests, unknown)."""

PHASE_COLORS: dict[str, str] = {
    "check": "#9e9e9e",
    "lookup": "#9e9e9e",
    "mount": "#8e6bbf",
    "compress": "#e8a33d",
    "hash": "#d4c24a",
    "upload": "#3b7dd8",
    "commit": "#2f9e6e",
    "manifest": "#c0504d",
}
"""Fallback colours for push phases, when a figure colours by phase instead of layer."""

OUTCOME_COLORS: dict[str, str] = {
    "uploaded": "#3b7dd8",
    "pushed": "#3b7dd8",
    "exists": "#2f9e6e",
    "skipped": "#2f9e6e",
    "mounted": "#8e6bbf",
    "failed": "#c0504d",
    "error": "#c0504d",
}

MEASURED_OPACITY = 0.95
SIMULATED_OPACITY = 0.45


def layer_key(layer: Any) -> str:
    """The identity a colour is derived from: a Layer's diff_id (else digest), a dict's
    ``diff_id``/``digest``/``layer`` entry, or a digest string as given."""
    if isinstance(layer, str):
        return layer
    if isinstance(layer, dict):
        for name in ("diff_id", "digest", "layer"):
            if layer.get(name):
                return str(layer[name])
        return ""
    diff_id = getattr(layer, "diff_id", None)
    return str(diff_id or getattr(layer, "digest", "") or "")


def _hex_of(key: str) -> str:
    encoded = key.split(":", 1)[-1].lower()
    if len(encoded) >= 8 and all(c in "0123456789abcdef" for c in encoded[:8]):
        return encoded
    # not a digest (a name, a short id): hash it so the colour is still stable
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


def layer_color(layer: Any) -> str:
    """A stable ``#rrggbb`` colour for a layer, a digest string, or a dict row.

    >>> layer_color("sha256:e905a00594b6133ed6db1dc4079d346592783ed7c79fcf3735671407ae0f0fcc")
    '#c34789'
    """
    key = layer_key(layer)
    if not key:
        return NEUTRAL
    encoded = _hex_of(key)
    hue = int(encoded[0:4], 16) / 0x10000
    lightness = 0.42 + (int(encoded[4:6], 16) / 255) * 0.16   # 0.42 .. 0.58
    saturation = 0.50 + (int(encoded[6:8], 16) / 255) * 0.30  # 0.50 .. 0.80
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(round(r * 255), round(g * 255), round(b * 255))


def layer_colors(layers: Iterable[Any]) -> list[str]:
    """:func:`layer_color` of each item, in order."""
    return [layer_color(layer) for layer in layers]
