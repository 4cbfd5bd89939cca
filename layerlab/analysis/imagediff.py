"""What changed between two images: layers, config and (optionally) files.

:func:`diff` compares image ``a`` (old) with image ``b`` (new):

* **layers** - the common base is the longest run of equal leading layers, compared by
  ``diff_id`` (the uncompressed content), so a layer stored under another compression
  still counts as common (it is listed in ``recompressed``); after the base, ``a``'s
  remaining layers are *removed* and ``b``'s are *added* (each with the index of the same
  content in the other image, if any); totals and deltas in stored and uncompressed bytes;
* **config** - env, entrypoint, cmd, labels, exposed ports, volumes, user, working
  directory, stop signal, platform and creation time, plus the history side by side;
* **files** (``files=True``) - see :mod:`layerlab.analysis.filediff`.

Images of different platforms are compared anyway, with a warning.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, Sequence

from ..model import Image, Layer
from ..units import format_size
from ._present import delta_cell, html_block, html_table, image_label, short_digest
from .filediff import FileDiff, diff_files

__all__ = ["LayerRef", "LayerDiff", "ConfigDiff", "ImageDiff", "diff", "diff_layers",
           "diff_config"]


def _identity(layer: Layer) -> str:
    return str(layer.diff_id or layer.digest)


@dataclass(frozen=True)
class LayerRef:
    """A layer in a diff: its index in its image, digests, sizes, instruction, and the
    index of the same content (diff_id) in the other image (``None`` if absent)."""

    index: int
    digest: str
    diff_id: str | None
    size: int
    uncompressed_size: int | None
    created_by: str
    in_other: int | None = None

    @classmethod
    def of(cls, index: int, layer: Layer, in_other: int | None = None) -> "LayerRef":
        return cls(index, str(layer.digest), str(layer.diff_id) if layer.diff_id else None,
                   layer.size, layer.uncompressed_size, layer.created_by, in_other)

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "digest": self.digest, "diff_id": self.diff_id,
                "size": self.size, "uncompressed_size": self.uncompressed_size,
                "created_by": self.created_by, "in_other": self.in_other}


@dataclass(frozen=True)
class LayerDiff:
    """Layers: the common base, then removed (from ``a``) and added (in ``b``)."""

    common: tuple[LayerRef, ...]
    removed: tuple[LayerRef, ...]
    added: tuple[LayerRef, ...]
    size_a: int
    size_b: int
    uncompressed_size_a: int | None
    uncompressed_size_b: int | None
    recompressed: tuple[tuple[str, str], ...] = ()

    @property
    def identical(self) -> bool:
        return not self.removed and not self.added

    @property
    def size_delta(self) -> int:
        return self.size_b - self.size_a

    @property
    def uncompressed_delta(self) -> int | None:
        if self.uncompressed_size_a is None or self.uncompressed_size_b is None:
            return None
        return self.uncompressed_size_b - self.uncompressed_size_a

    def to_json(self) -> dict[str, Any]:
        return {
            "common": [r.to_json() for r in self.common],
            "removed": [r.to_json() for r in self.removed],
            "added": [r.to_json() for r in self.added],
            "size_a": self.size_a, "size_b": self.size_b, "size_delta": self.size_delta,
            "uncompressed_size_a": self.uncompressed_size_a,
            "uncompressed_size_b": self.uncompressed_size_b,
            "uncompressed_delta": self.uncompressed_delta,
            "recompressed": [{"digest_a": a, "digest_b": b} for a, b in self.recompressed],
        }


_CONFIG_FIELDS = ("platform", "created", "entrypoint", "cmd", "user", "working_dir",
                  "exposed_ports", "volumes", "stop_signal")


@dataclass(frozen=True)
class ConfigDiff:
    """Config changes. ``changed`` maps a field to ``(a, b)`` for the scalar/list fields
    that differ; ``env`` and ``labels`` are keyed diffs (``added``, ``removed``,
    ``changed`` -> ``(a, b)``); ``history`` is the two histories side by side."""

    changed: dict[str, tuple[Any, Any]]
    env: dict[str, dict[str, Any]]
    labels: dict[str, dict[str, Any]]
    history: tuple[tuple[str | None, str | None], ...]

    @property
    def identical(self) -> bool:
        return (not self.changed and not any(self.env.values())
                and not any(self.labels.values())
                and all(a == b for a, b in self.history))

    def to_json(self) -> dict[str, Any]:
        return {
            "changed": {k: {"a": a, "b": b} for k, (a, b) in self.changed.items()},
            "env": _keyed_json(self.env),
            "labels": _keyed_json(self.labels),
            "history": [{"a": a, "b": b, "same": a == b} for a, b in self.history],
        }


def _keyed_json(d: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"added": dict(d["added"]), "removed": dict(d["removed"]),
            "changed": {k: {"a": a, "b": b} for k, (a, b) in d["changed"].items()}}


def _keyed(a: dict[str, str], b: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {"added": {k: b[k] for k in b if k not in a},
            "removed": {k: a[k] for k in a if k not in b},
            "changed": {k: (a[k], b[k]) for k in a if k in b and a[k] != b[k]}}


def _env_map(env: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _history_text(image: Image) -> list[str]:
    return [h.created_by + (" (empty layer)" if h.empty_layer else "")
            for h in image.config.history]


def _align(a: list[str], b: list[str]) -> tuple[tuple[str | None, str | None], ...]:
    """Two histories side by side, equal steps on the same row (difflib alignment)."""
    out: list[tuple[str | None, str | None]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.extend(zip(a[i1:i2], b[j1:j2]))
        else:
            out.extend(zip_longest(a[i1:i2], b[j1:j2]))
    return tuple(out)


def diff_config(a: Image, b: Image) -> ConfigDiff:
    """The config part of :func:`diff`."""
    ca, cb = a.config, b.config
    values_a = {"platform": str(ca.platform), "created": ca.created, **ca.runtime()}
    values_b = {"platform": str(cb.platform), "created": cb.created, **cb.runtime()}
    changed = {f: (values_a[f], values_b[f]) for f in _CONFIG_FIELDS
               if values_a[f] != values_b[f]}
    history = _align(_history_text(a), _history_text(b))
    return ConfigDiff(changed, _keyed(_env_map(ca.env), _env_map(cb.env)),
                      _keyed(dict(ca.labels), dict(cb.labels)), history)


def diff_layers(a: Image, b: Image) -> LayerDiff:
    """The layer part of :func:`diff`."""
    ids_a = [_identity(layer) for layer in a.layers]
    ids_b = [_identity(layer) for layer in b.layers]
    n = 0
    while n < min(len(ids_a), len(ids_b)) and ids_a[n] == ids_b[n]:
        n += 1
    common = tuple(LayerRef.of(i, a.layers[i], i) for i in range(n))
    recompressed = tuple((str(a.layers[i].digest), str(b.layers[i].digest)) for i in range(n)
                         if a.layers[i].digest != b.layers[i].digest)
    removed = tuple(LayerRef.of(i, a.layers[i], ids_b.index(ids_a[i]) if ids_a[i] in ids_b else None)
                    for i in range(n, len(ids_a)))
    added = tuple(LayerRef.of(i, b.layers[i], ids_a.index(ids_b[i]) if ids_b[i] in ids_a else None)
                  for i in range(n, len(ids_b)))
    return LayerDiff(common, removed, added, a.size, b.size, a.uncompressed_size,
                     b.uncompressed_size, recompressed)


@dataclass(frozen=True)
class ImageDiff:
    """The difference between two images (see the module docstring).

    ``identical`` is True when layers, config and (if compared) files are all the same.
    """

    a: str
    b: str
    digest_a: str
    digest_b: str
    layers: LayerDiff
    config: ConfigDiff
    files: FileDiff | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def identical(self) -> bool:
        return (self.layers.identical and self.config.identical
                and (self.files is None or self.files.identical))

    def to_json(self) -> dict[str, Any]:
        """The ``layerlab diff --json`` shape (documented in the CLI help)."""
        return {
            "a": {"reference": self.a, "digest": self.digest_a},
            "b": {"reference": self.b, "digest": self.digest_b},
            "identical": self.identical,
            "summary": self.summary(),
            "layers": self.layers.to_json(),
            "config": self.config.to_json(),
            "files": self.files.to_json() if self.files is not None else None,
            "warnings": list(self.warnings),
        }

    def to_frame(self):
        """Layers side by side (``status`` common/removed/added); with files compared,
        see ``self.files.to_frame()``."""
        import pandas as pd

        rows = [{"status": status, **ref.to_json()}
                for status, refs in (("common", self.layers.common),
                                     ("removed", self.layers.removed),
                                     ("added", self.layers.added)) for ref in refs]
        return pd.DataFrame(rows, columns=["status", "index", "digest", "diff_id", "size",
                                           "uncompressed_size", "created_by", "in_other"])

    def plot(self):
        """Stored layer sizes: the common base, the layers removed from ``a`` and the
        layers added in ``b``."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for label, prefix, refs in (("common", "a+b", self.layers.common),
                                    ("removed (a)", "a", self.layers.removed),
                                    ("added (b)", "b", self.layers.added)):
            fig.add_bar(x=[f"{prefix}[{r.index}]" for r in refs], y=[r.size for r in refs],
                        name=label, hovertext=[r.created_by[:120] for r in refs])
        fig.update_layout(title=f"{self.a} -> {self.b}: {self.summary()}",
                          yaxis_title="bytes (stored)", xaxis_title="layer")
        return fig

    def summary(self) -> str:
        parts = [f"{len(self.layers.common)} common layers, {len(self.layers.removed)} removed, "
                 f"{len(self.layers.added)} added ({delta_cell(self.layers.size_delta)})"]
        config_changes = len(self.config.changed) + sum(
            len(d[k]) for d in (self.config.env, self.config.labels) for k in d)
        parts.append(f"{config_changes} config changes")
        if self.files is not None:
            parts.append(self.files.summary())
        return "; ".join(parts) + ("" if not self.identical else " (identical)")

    def __repr__(self) -> str:
        return f"<ImageDiff {self.a} -> {self.b}: {self.summary()}>"

    def _repr_html_(self) -> str:
        rows = [(status, r.index, short_digest(r.diff_id or r.digest), format_size(r.size),
                 r.created_by[:80])
                for status, refs in (("common", self.layers.common),
                                     ("removed", self.layers.removed),
                                     ("added", self.layers.added)) for r in refs]
        tables = [html_table(["status", "index", "diff_id", "size", "created by"], rows, "lrlrl")]
        config_rows = [(k, a, b) for k, (a, b) in self.config.changed.items()]
        for name, d in (("env", self.config.env), ("label", self.config.labels)):
            config_rows += [(f"{name} {k}", None, v) for k, v in d["added"].items()]
            config_rows += [(f"{name} {k}", v, None) for k, v in d["removed"].items()]
            config_rows += [(f"{name} {k}", va, vb) for k, (va, vb) in d["changed"].items()]
        if config_rows:
            tables.append(html_table(["config", "a", "b"], config_rows))
        if self.files is not None:
            tables.append(self.files._table_html())
        return html_block(f"Diff {self.a} -> {self.b}", self.summary(), *tables)


def diff(a: Image, b: Image, *, files: bool = False, ignore_mtime: bool = False,
         workers: int | None = None) -> ImageDiff:
    """Compare image ``a`` (old) with ``b`` (new); see the module docstring.

    With ``files``, the merged filesystems are compared too (layers common to both are
    not re-read; file contents are hashed only where sizes cannot decide).
    """
    warnings = []
    if a.config.platform != b.config.platform:
        warnings.append(f"different platforms: {a.config.platform} vs {b.config.platform}")
    layers = diff_layers(a, b)
    file_diff = None
    if files:
        file_diff = diff_files(a, b, common=len(layers.common), ignore_mtime=ignore_mtime,
                               workers=workers)
        warnings.extend(file_diff.warnings)
    return ImageDiff(a=image_label(a), b=image_label(b), digest_a=str(a.digest),
                     digest_b=str(b.digest), layers=layers, config=diff_config(a, b),
                     files=file_diff, warnings=tuple(warnings))
