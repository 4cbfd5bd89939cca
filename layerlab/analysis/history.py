"""History and layer-count advice: which instruction made each layer, which RUN layers
could be one, which layers are tiny, which files were added and then deleted.

:func:`layer_advice` returns a :class:`LayerAdvice`. Its :meth:`~LayerAdvice.merged_layers`
describes the image as it would be with runs of consecutive RUN layers merged, as plain
layer specs the push simulator takes::

    [{"size": ..., "uncompressed_size": ..., "compressibility": ... or None,
      "created_by": ...}, ...]

``size`` is the stored size (compressed where the layers are), ``compressibility`` the
ratio ``uncompressed_size / size`` when the layers are stored compressed, else ``None``.
A merged layer's uncompressed size is computed from the member layers' headers: the
files the group leaves behind (later writes win, files deleted inside the group vanish),
the whiteouts still needed for lower layers, in tar blocks; its stored size is estimated
with the members' compression ratio.

A *run* is a sequence of two or more layers made by consecutive RUN steps with no other
history step (not even ENV or WORKDIR, which could change what the next RUN does)
between them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..model import Image
from ..tarstream import TarEntry
from ..units import format_size
from ._present import html_block, html_table, image_label, short_digest
from .filesystem import MergedFilesystem
from .merge import merged_tar_size
from .scan import LayerScan, scan_layers

__all__ = ["LayerInfo", "HistoryStep", "MergeRun", "DeletedFile", "LayerAdvice",
           "layer_advice", "instruction_of", "merged_created_by", "DEFAULT_TINY_THRESHOLD"]

DEFAULT_TINY_THRESHOLD = 1_000_000
"""Layers smaller than this (uncompressed bytes) are reported as tiny: their per-layer
costs (requests, round trips, registry bookkeeping) outweigh their transfer."""

_KEYWORDS = {"RUN", "COPY", "ADD", "ENV", "WORKDIR", "CMD", "ENTRYPOINT", "EXPOSE", "LABEL",
             "USER", "VOLUME", "ARG", "SHELL", "ONBUILD", "HEALTHCHECK", "STOPSIGNAL",
             "MAINTAINER", "FROM"}
_SHELL = re.compile(r"^(?:\|\d+ (?:\S+ )*?)?/bin/(?:ba)?sh -c (.*)$", re.S)


def instruction_of(created_by: str) -> str:
    """The Dockerfile instruction behind a history ``created_by`` ("RUN", "COPY", ...;
    "" if unknown). Understands the classic builder (``/bin/sh -c #(nop) COPY ...``,
    ``|1 A=b /bin/sh -c ...``) and BuildKit (``RUN /bin/sh -c ...``, ``COPY ...``)."""
    text = created_by.strip()
    if not text:
        return ""
    m = _SHELL.match(text)
    if m:
        body = m.group(1).lstrip()
        if body.startswith("#(nop)"):
            word = body[6:].split(None, 1)
            return word[0].upper() if word and word[0].upper() in _KEYWORDS else ""
        return "RUN"
    word = text.split(None, 1)[0].upper()
    return word if word in _KEYWORDS else ""


def _run_body(created_by: str) -> tuple[str, str]:
    """Split a RUN step into its prefix (up to the shell command) and the command."""
    text = created_by.strip()
    if text.upper().startswith("RUN "):
        head, text = text[:4], text[4:]
    else:
        head = ""
    m = _SHELL.match(text)
    if m:
        return head + text[: m.start(1)], m.group(1)
    return head, text


def merged_created_by(steps: Sequence[str]) -> str:
    """The instruction of one layer made by several RUN steps: their shell commands
    joined with ``&&`` behind the first step's prefix."""
    head, _ = _run_body(steps[0]) if steps else ("", "")
    return head + " && ".join(_run_body(text)[1] for text in steps)


@dataclass(frozen=True)
class LayerInfo:
    """One layer: the instruction that made it, its sizes and entry count.

    ``content_size`` is the SIZE column of ``docker history``: the bytes of the files the
    layer holds as Docker's graph driver counts them (regular files' sizes, a symbolic
    link's target length, a hard link's data once, directories and whiteouts nothing);
    ``None`` without the layer's headers.
    """

    index: int
    digest: str
    diff_id: str | None
    size: int
    uncompressed_size: int | None
    created_by: str
    instruction: str
    compression: str = "none"
    entries: int | None = None
    tiny: bool = False
    content_size: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "digest": self.digest, "diff_id": self.diff_id,
                "size": self.size, "uncompressed_size": self.uncompressed_size,
                "compression": self.compression, "created_by": self.created_by,
                "instruction": self.instruction, "entries": self.entries, "tiny": self.tiny,
                "content_size": self.content_size}


@dataclass(frozen=True)
class HistoryStep:
    """One history entry, with the layer it made (``None`` for empty-layer steps)."""

    position: int
    created_by: str
    instruction: str
    empty_layer: bool
    layer: int | None
    created: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "created_by": self.created_by,
                "instruction": self.instruction, "empty_layer": self.empty_layer,
                "layer": self.layer, "created": self.created}


@dataclass(frozen=True)
class MergeRun:
    """Consecutive RUN layers ``start..end`` (inclusive) and what merging them gives."""

    start: int
    end: int
    size: int
    uncompressed_size: int
    merged_uncompressed_size: int
    merged_size: int

    @property
    def layers(self) -> int:
        return self.end - self.start + 1

    @property
    def saved_bytes(self) -> int:
        """Stored bytes the merge saves (files overwritten or deleted inside the run)."""
        return self.size - self.merged_size

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "layers": self.layers,
                "size": self.size, "uncompressed_size": self.uncompressed_size,
                "merged_size": self.merged_size,
                "merged_uncompressed_size": self.merged_uncompressed_size,
                "saved_bytes": self.saved_bytes}


@dataclass(frozen=True)
class DeletedFile:
    """A file written by one layer and removed by a later one (``fate``: ``deleted`` by
    a whiteout, ``hidden`` by an opaque directory, ``replaced`` by a directory)."""

    path: str
    size: int
    added_in: int
    removed_in: int
    fate: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "added_in": self.added_in,
                "removed_in": self.removed_in, "fate": self.fate}


@dataclass(frozen=True)
class LayerAdvice:
    """History, runs of mergeable RUN layers, tiny layers and deleted files of an image.

    :meth:`merged_layers` gives the merged image as simulator layer specs (see the
    module docstring).
    """

    reference: str
    name: str | None
    layers: tuple[LayerInfo, ...]
    history: tuple[HistoryStep, ...]
    runs: tuple[MergeRun, ...]
    tiny_layers: tuple[int, ...]
    deleted_files: tuple[DeletedFile, ...]
    tiny_threshold: int = DEFAULT_TINY_THRESHOLD
    _scans: tuple[LayerScan, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def empty_steps(self) -> tuple[HistoryStep, ...]:
        """History steps that made no layer (ENV, CMD, LABEL ...)."""
        return tuple(s for s in self.history if s.empty_layer)

    # -- merging ----------------------------------------------------------------------
    def merge_groups(self, groups: Sequence[Sequence[int]] | None = None,
                     target: int | None = None) -> list[list[int]]:
        """Every layer index in groups to merge, in order (singletons stay alone).

        ``groups`` lists runs to merge explicitly; ``target`` merges adjacent layers
        inside mergeable RUN runs, cheapest pair first, until at most ``target`` layers
        remain; neither: each run becomes one layer."""
        n = len(self.layers)
        if groups is not None:
            out, covered = [], set()
            for g in groups:
                g = sorted(g)
                if not g or g != list(range(g[0], g[-1] + 1)) or covered & set(g) \
                        or g[0] < 0 or g[-1] >= n:
                    raise ValueError(f"merge groups must be disjoint runs of layer indexes "
                                     f"0..{n - 1}, got {list(g)}")
                covered.update(g)
                out.append(g)
            singles = [[i] for i in range(n) if i not in covered]
            return sorted(out + singles)
        if target is None:
            merged = [list(range(r.start, r.end + 1)) for r in self.runs]
            covered = {i for g in merged for i in g}
            return sorted(merged + [[i] for i in range(n) if i not in covered])
        current = [[i] for i in range(n)]
        run_of = {i: k for k, r in enumerate(self.runs) for i in range(r.start, r.end + 1)}
        while len(current) > target:
            best = None
            for k in range(len(current) - 1):
                left, right = current[k], current[k + 1]
                if run_of.get(left[0], -1) < 0 or run_of.get(left[0]) != run_of.get(right[0]):
                    continue
                cost = self._group_uncompressed(left + right)
                if best is None or cost < best[0]:
                    best = (cost, k)
            if best is None:
                break
            k = best[1]
            current[k: k + 2] = [current[k] + current[k + 1]]
        return current

    def _lower(self, start: int) -> MergedFilesystem:
        fs = MergedFilesystem()
        for i in range(start):
            fs.apply(self._scans[i].entries, i)  # type: ignore[index]
        return fs

    def _group_uncompressed(self, group: Sequence[int]) -> int:
        if len(group) == 1 or self._scans is None:
            return sum(self._uncompressed(i) for i in group)
        entries = [self._scans[i].entries for i in group]
        needs_lower = any(e.whiteout is not None for es in entries for e in es)
        return merged_tar_size(entries, self._lower(group[0]) if needs_lower else None)

    def _uncompressed(self, index: int) -> int:
        layer = self.layers[index]
        if layer.uncompressed_size is not None:
            return layer.uncompressed_size
        if self._scans is not None:
            return self._scans[index].tar_size
        return layer.size

    def merged_layers(self, groups: Sequence[Sequence[int]] | None = None,
                      target: int | None = None) -> list[dict[str, Any]]:
        """The image as layer specs with layers merged (see the module docstring).

        By default each run becomes one layer. ``target`` merges adjacent layers inside
        runs, cheapest pair first, until at most ``target`` layers remain (``24 -> 14``).
        ``groups`` lists explicit runs of layer indexes to merge (``[[2, 3], [4, 5]]``).
        """
        specs = []
        for group in self.merge_groups(groups, target):
            members = [self.layers[i] for i in group]
            stored = sum(m.size for m in members)
            uncompressed = sum(self._uncompressed(i) for i in group)
            compressed = all(m.compression != "none" for m in members)
            ratio = uncompressed / stored if compressed and stored else None
            if len(group) == 1:
                created_by = members[0].created_by
                size = stored
                merged_uncompressed = uncompressed
            else:
                merged_uncompressed = self._group_uncompressed(group)
                size = round(merged_uncompressed / ratio) if ratio else merged_uncompressed
                created_by = merged_created_by([m.created_by for m in members])
            specs.append({"size": size, "uncompressed_size": merged_uncompressed,
                          "compressibility": ratio, "created_by": created_by})
        return specs

    # -- output -----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The ``layerlab history --json`` shape."""
        merged = self.merged_layers()
        return {
            "reference": self.reference,
            "name": self.name,
            "layers": [layer.to_json() for layer in self.layers],
            "history": [s.to_json() for s in self.history],
            "empty_steps": [s.position for s in self.empty_steps],
            "runs": [r.to_json() for r in self.runs],
            "tiny_threshold": self.tiny_threshold,
            "tiny_layers": list(self.tiny_layers),
            "deleted_files": [d.to_json() for d in self.deleted_files],
            "merged": {"layer_count": len(merged),
                       "size": sum(s["size"] for s in merged),
                       "uncompressed_size": sum(s["uncompressed_size"] for s in merged),
                       "layers": merged},
        }

    def to_frame(self):
        """One row per layer: index, instruction, sizes, tiny, run (index or -1)."""
        import pandas as pd

        run_of = {i: k for k, r in enumerate(self.runs) for i in range(r.start, r.end + 1)}
        rows = [{**layer.to_json(), "run": run_of.get(layer.index, -1)} for layer in self.layers]
        return pd.DataFrame(rows).set_index("index")

    def plot(self):
        """Layer sizes as bars, coloured by instruction; runs outlined."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for instr in sorted({layer.instruction or "?" for layer in self.layers}):
            chosen = [layer for layer in self.layers if (layer.instruction or "?") == instr]
            fig.add_bar(x=[layer.index for layer in chosen],
                        y=[layer.uncompressed_size or layer.size for layer in chosen],
                        name=instr, hovertext=[layer.created_by[:120] for layer in chosen])
        for r in self.runs:
            fig.add_vrect(x0=r.start - 0.5, x1=r.end + 0.5, line_width=1, fillcolor="orange",
                          opacity=0.15, annotation_text=f"run of {r.layers}")
        fig.update_layout(title=f"Layers of {self.name or self.reference}",
                          xaxis_title="layer", yaxis_title="bytes (uncompressed)")
        return fig

    def summary(self) -> str:
        merged = self.merged_layers()
        return (f"{len(self.layers)} layers ({len(self.empty_steps)} empty steps), "
                f"{len(self.runs)} mergeable RUN runs -> {len(merged)} layers merged, "
                f"{len(self.tiny_layers)} tiny layers, {len(self.deleted_files)} files "
                "added then deleted")

    def __repr__(self) -> str:
        return f"<LayerAdvice {self.name or self.reference}: {self.summary()}>"

    def _repr_html_(self) -> str:
        rows = [(layer.index, layer.instruction, short_digest(layer.digest),
                 format_size(layer.size), format_size(layer.uncompressed_size),
                 "tiny" if layer.tiny else "", layer.created_by[:80]) for layer in self.layers]
        tables = [html_table(["#", "instr", "digest", "size", "uncompressed", "", "created by"],
                             rows, "rllrrll")]
        if self.runs:
            tables.append(html_table(
                ["run", "layers", "size", "merged size"],
                [(f"{r.start}-{r.end}", r.layers, format_size(r.size), format_size(r.merged_size))
                 for r in self.runs], "lrrr"))
        return html_block(f"History of {self.name or self.reference}", self.summary(), *tables)


def _history_steps(image: Image) -> list[HistoryStep]:
    history = image.config.history
    made = [i for i, h in enumerate(history) if not h.empty_layer]
    offset = len(image.layers) - len(made)
    layer_of = {pos: k + offset for k, pos in enumerate(made) if 0 <= k + offset < len(image.layers)}
    return [HistoryStep(pos, h.created_by, instruction_of(h.created_by), h.empty_layer,
                        layer_of.get(pos), h.created) for pos, h in enumerate(history)]


def _runs(steps: Sequence[HistoryStep]) -> list[tuple[int, int]]:
    runs, current = [], []
    for step in steps:
        if step.layer is not None and step.instruction == "RUN":
            current.append(step.layer)
            continue
        if len(current) >= 2:
            runs.append((current[0], current[-1]))
        current = []
    if len(current) >= 2:
        runs.append((current[0], current[-1]))
    return runs


def _content_size(entries: Sequence[TarEntry]) -> int:
    return sum(e.size if e.type == "file" else len(e.linkname.encode()) if e.type == "symlink"
               else 0 for e in entries if e.whiteout is None)


def layer_advice(image: Image, *, files: bool = True,
                 tiny_threshold: int = DEFAULT_TINY_THRESHOLD,
                 workers: int | None = None) -> LayerAdvice:
    """History and layer-count advice for ``image`` (see the module docstring).

    ``files`` reads the layers' headers (for entry counts, merged sizes and deleted
    files); without it only the manifest and config are used.
    """
    scans = scan_layers(image.layers, workers=workers) if files else None
    steps = _history_steps(image)
    instr_by_layer = {s.layer: s.instruction for s in steps if s.layer is not None}
    infos = []
    for i, layer in enumerate(image.layers):
        uncompressed = layer.uncompressed_size
        if uncompressed is None and scans is not None:
            uncompressed = scans[i].tar_size
        infos.append(LayerInfo(
            i, str(layer.digest), str(layer.diff_id) if layer.diff_id else None, layer.size,
            uncompressed, layer.created_by,
            instr_by_layer.get(i, instruction_of(layer.created_by)), layer.compression,
            len(scans[i].entries) if scans is not None else None,
            (uncompressed if uncompressed is not None else layer.size) < tiny_threshold,
            _content_size(scans[i].entries) if scans is not None else None))
    deleted: list[DeletedFile] = []
    if scans is not None:
        fs = MergedFilesystem(track=True)
        for i, scan in enumerate(scans):
            fs.apply(scan.entries, i)
        for path, writes in fs.writes.items():
            for w in writes:
                if w.fate in ("deleted", "hidden", "replaced") and w.by_layer is not None:
                    deleted.append(DeletedFile(path, w.size, w.layer, w.by_layer, w.fate))
        deleted.sort(key=lambda d: (-d.size, d.path))
    advice = LayerAdvice(
        reference=image.reference, name=image_label(image), layers=tuple(infos),
        history=tuple(steps), runs=(), tiny_layers=tuple(i.index for i in infos if i.tiny),
        deleted_files=tuple(deleted), tiny_threshold=tiny_threshold,
        _scans=tuple(scans) if scans is not None else None)
    runs = []
    for start, end in _runs(steps):
        group = list(range(start, end + 1))
        stored = sum(infos[i].size for i in group)
        uncompressed = sum(advice._uncompressed(i) for i in group)
        merged_uncompressed = advice._group_uncompressed(group)
        compressed = all(infos[i].compression != "none" for i in group)
        merged = round(merged_uncompressed * stored / uncompressed) if compressed and uncompressed \
            else merged_uncompressed
        runs.append(MergeRun(start, end, stored, uncompressed, merged_uncompressed, merged))
    object.__setattr__(advice, "runs", tuple(runs))
    return advice
