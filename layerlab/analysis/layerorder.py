"""Layer-order advice from a series of builds: stable content first.

A layer is reused by the next build only while every layer below it is unchanged, so a
layer that changes often (``COPY app``) sitting below layers that never change
(``RUN apt-get ...``) makes every build rebuild those too, and every node pull them.
:func:`layer_order_advice` proposes an order of the latest build's layers with the
least often changed first, where the layers commute (:mod:`.commute`), and replays the
series in that order to say what it would have saved.

* **Steps.** A layer is identified across builds by its position; a build takes part in
  the advice when it has as many layers as the latest build and the same instruction
  (``RUN``, ``COPY`` ...) at each position, else it is replayed unchanged
  (``unmatched_builds``).
* **Changes.** A step *changes* in a build when its content (``diff_id``, else
  ``digest``) differs from the previous build's at that position (or that build did not
  take part); *stable* steps never change.
* **Order.** Every pair of layers that does not commute in some participating build
  keeps its relative order; among the orders that allows, the layers go least changed
  first, ties in their original order (a topological sort). The order is a list of
  source layer indexes, oldest first: ``layerlab.rewrite(image, reorder=advice.order)``.
* **Replay.** Each participating build is measured again with its layers in that order,
  under :mod:`.reuse`'s rules (reused while it and every layer below are the same content
  in the same order; pulled from the first rebuilt layer up; pushed when the registry
  lacks the blob). Every layer keeps its blob: a layer tar does not depend on the layers
  below it, and :func:`layerlab.rewrite` keeps a layer it only moves. A registry stores
  blobs by content, so a new order changes what pulls send and what the build cache
  hits, never what pushes send (both are reported). The advice stands only when the
  replay sends fewer bytes in all; otherwise ``order`` is the original order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

from ..model import Image
from ..units import format_size
from ._present import html_block, html_table, percent
from .commute import LayerPaths, conflict
from .history import instruction_of
from .reuse import Measured, ReuseInputError, Slot, layer_key, measure, slots_of
from .scan import scan_layers
from .shared import image_labels

__all__ = ["LayerStep", "Conflict", "ReplayFigures", "ReplayedBuild", "OrderAdvice",
           "layer_order_advice"]


@dataclass(frozen=True)
class LayerStep:
    """One layer of the latest build: how often its content changed, where it goes."""

    index: int
    created_by: str
    instruction: str
    size: int
    changes: int
    position: int

    @property
    def stable(self) -> bool:
        """Same content in every participating build."""
        return self.changes == 0

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "created_by": self.created_by,
                "instruction": self.instruction, "size": self.size, "changes": self.changes,
                "stable": self.stable, "position": self.position}


@dataclass(frozen=True)
class Conflict:
    """Layers ``a`` < ``b`` (indexes of the latest build) that do not commute."""

    a: int
    b: int
    reason: str
    build: str

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "reason": self.reason, "build": self.build}


class ReplayFigures(NamedTuple):
    """One build's figures in one layer order."""

    reused: int
    layers: int
    pushed_bytes: int
    pulled_bytes: int

    @property
    def cache_hit_rate(self) -> float:
        return self.reused / self.layers if self.layers else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"reused": self.reused, "layers": self.layers,
                "pushed_bytes": self.pushed_bytes, "pulled_bytes": self.pulled_bytes,
                "cache_hit_rate": self.cache_hit_rate}


@dataclass(frozen=True)
class ReplayedBuild:
    """One build of the series in its own order (``before``) and the advised (``after``)."""

    position: int
    label: str
    reordered: bool
    before: ReplayFigures
    after: ReplayFigures

    def to_json(self) -> dict[str, Any]:
        return {"position": self.position, "label": self.label, "reordered": self.reordered,
                "before": self.before.to_json(), "after": self.after.to_json()}


def _totals(figures: Sequence[ReplayFigures]) -> dict[str, Any]:
    later = figures[1:]
    layers = sum(f.layers for f in later)
    return {"pushed_bytes": sum(f.pushed_bytes for f in figures),
            "pulled_bytes": sum(f.pulled_bytes for f in figures),
            "cache_hit_rate": sum(f.reused for f in later) / layers if layers else 0.0}


@dataclass(frozen=True)
class OrderAdvice:
    """The advised layer order of a series and what it would have saved (see the
    module docstring). ``order`` is the ``reorder`` argument of ``layerlab.rewrite``
    for each build not in ``unmatched_builds``."""

    order: tuple[int, ...]
    advised: bool
    layers: tuple[LayerStep, ...]
    conflicts: tuple[Conflict, ...]
    builds: tuple[ReplayedBuild, ...]
    unmatched_builds: tuple[int, ...] = ()
    _proposed: tuple[int, ...] = field(default=(), repr=False)

    @property
    def moved(self) -> tuple[int, ...]:
        """Layers placed before a layer that was below them."""
        return tuple(sorted({b for a, b in self._inversions()}))

    @property
    def moved_before(self) -> tuple[int, ...]:
        """Layers that the moved layers now precede."""
        return tuple(sorted({a for a, b in self._inversions()}))

    def _inversions(self) -> list[tuple[int, int]]:
        where = {src: pos for pos, src in enumerate(self.order)}
        return [(a, b) for a in self.order for b in self.order if a < b and where[b] < where[a]]

    @property
    def blocked(self) -> tuple[Conflict, ...]:
        """Conflicts that kept a less often changed layer above a more often changed one."""
        changes = {s.index: s.changes for s in self.layers}
        return tuple(c for c in self.conflicts if changes[c.b] < changes[c.a])

    @property
    def before(self) -> dict[str, Any]:
        """Totals of the series as built: ``pushed_bytes``, ``pulled_bytes``,
        ``cache_hit_rate`` (after the first build)."""
        return _totals([b.before for b in self.builds])

    @property
    def after(self) -> dict[str, Any]:
        """Totals of the series replayed in the advised order."""
        return _totals([b.after for b in self.builds])

    @property
    def saved_pushed_bytes(self) -> int:
        return self.before["pushed_bytes"] - self.after["pushed_bytes"]

    @property
    def saved_pulled_bytes(self) -> int:
        return self.before["pulled_bytes"] - self.after["pulled_bytes"]

    @property
    def rebuilds(self) -> int:
        """Builds after the first: those the order could have saved bytes on."""
        return len(self.builds) - 1

    @property
    def saved_bytes_per_build(self) -> float:
        """Bytes pushed plus pulled that the order saves, per rebuild."""
        return (self.saved_pushed_bytes + self.saved_pulled_bytes) / self.rebuilds

    @property
    def message(self) -> str:
        """The advice in one sentence."""
        if not self.advised:
            if not self._proposed:
                return ("no two consecutive builds have the latest build's instructions "
                        "at each position: nothing to learn an order from")
            if self._proposed != self.order:
                return "no layer order saves bytes over these builds (keep the order)"
            return "the layers are already in the best order the commute rule allows"
        moved = ", ".join(map(str, self.moved))
        before = ", ".join(map(str, self.moved_before))
        return (f"moving layer{'s' if len(self.moved) > 1 else ''} {moved} before layer"
                f"{'s' if len(self.moved_before) > 1 else ''} {before} would have saved "
                f"{format_size(self.saved_bytes_per_build)} per build over these "
                f"{self.rebuilds} rebuilds ({format_size(self.saved_pulled_bytes)} pulled, "
                f"{format_size(self.saved_pushed_bytes)} pushed in all)")

    def to_json(self) -> dict[str, Any]:
        """The ``advice`` of ``layerlab reuse --json``."""
        return {"advised": self.advised, "order": list(self.order), "message": self.message,
                "moved": list(self.moved), "moved_before": list(self.moved_before),
                "layers": [s.to_json() for s in self.layers],
                "blocked": [c.to_json() for c in self.blocked],
                "unmatched_builds": list(self.unmatched_builds),
                "builds": [b.to_json() for b in self.builds],
                "totals": {"before": self.before, "after": self.after,
                           "saved_pushed_bytes": self.saved_pushed_bytes,
                           "saved_pulled_bytes": self.saved_pulled_bytes,
                           "saved_bytes_per_build": self.saved_bytes_per_build,
                           "rebuilds": self.rebuilds}}

    def to_frame(self):
        """One row per build: bytes pushed and pulled and cache-hit rate, before and after."""
        import pandas as pd

        rows = []
        for b in self.builds:
            row: dict[str, Any] = {"label": b.label, "reordered": b.reordered}
            for when, fig in (("before", b.before), ("after", b.after)):
                row.update({f"{when}_pushed_bytes": fig.pushed_bytes,
                            f"{when}_pulled_bytes": fig.pulled_bytes,
                            f"{when}_cache_hit_rate": fig.cache_hit_rate})
            rows.append(row)
        return pd.DataFrame(rows).set_index("label")

    def summary(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"<OrderAdvice order={list(self.order)} advised={self.advised}>"

    def _repr_html_(self) -> str:
        steps = [(s.index, s.position, s.instruction or "?", format_size(s.size), s.changes,
                  "stable" if s.stable else "", s.created_by[:70]) for s in self.layers]
        builds = [(b.label, format_size(b.before.pushed_bytes), format_size(b.after.pushed_bytes),
                   format_size(b.before.pulled_bytes), format_size(b.after.pulled_bytes),
                   percent(b.before.cache_hit_rate), percent(b.after.cache_hit_rate))
                  for b in self.builds]
        return html_block("Layer-order advice", self.message,
                          html_table(["layer", "new position", "instr", "size", "changes", "",
                                      "created by"], steps, "rrlrrll"),
                          html_table(["build", "pushed", "after", "pulled", "after",
                                      "cache hits", "after"], builds, "lrrrrrr"))


def _participates(image: Image, latest: Image) -> bool:
    return len(image.layers) == len(latest.layers) and all(
        instruction_of(a.created_by) == instruction_of(b.created_by)
        for a, b in zip(image.layers, latest.layers))


def _changes(images: Sequence[Image], matched: Sequence[bool]) -> list[int]:
    n = len(images[-1].layers)
    changes = [0] * n
    for i in range(1, len(images)):
        if not matched[i]:
            continue
        for j in range(n):
            if not matched[i - 1] or \
                    layer_key(images[i].layers[j]) != layer_key(images[i - 1].layers[j]):
                changes[j] += 1
    return changes


def _conflicts(images: Sequence[Image], labels: Sequence[str], matched: Sequence[bool],
               workers: int | None) -> list[Conflict]:
    chosen = [i for i, m in enumerate(matched) if m]
    layers = [layer for i in chosen for layer in images[i].layers]
    paths = {str(scan.layer.digest): LayerPaths.of(scan.entries)
             for scan in scan_layers(layers, workers=workers)}
    n = len(images[-1].layers)
    found: dict[tuple[int, int], Conflict] = {}
    checked: dict[tuple[str, str], str | None] = {}
    for i in chosen:
        digests = [str(layer.digest) for layer in images[i].layers]
        for a in range(n):
            for b in range(a + 1, n):
                if (a, b) in found:
                    continue
                pair = (digests[a], digests[b])
                if pair not in checked:
                    checked[pair] = conflict(paths[pair[0]], paths[pair[1]])
                if checked[pair] is not None:
                    found[(a, b)] = Conflict(a, b, checked[pair], labels[i])
    return [found[k] for k in sorted(found)]


def _order(n: int, changes: Sequence[int], conflicts: Sequence[Conflict]) -> tuple[int, ...]:
    below: dict[int, set[int]] = {j: set() for j in range(n)}
    for c in conflicts:
        below[c.b].add(c.a)
    placed: list[int] = []
    left = set(range(n))
    while left:
        ready = [j for j in left if not below[j] & left]
        nxt = min(ready, key=lambda j: (changes[j], j))
        placed.append(nxt)
        left.remove(nxt)
    return tuple(placed)


def reordered_slots(image: Image, order: Sequence[int]) -> list[Slot]:
    """``image``'s layers as measurement slots in ``order`` (source indexes), each with
    its own blob."""
    source = slots_of(image)
    return [source[src] for src in order]


def _sent(measured: Sequence[Measured]) -> int:
    return sum(m.pushed_bytes + m.pulled_bytes for m in measured)


def _figures(m: Measured, layers: int) -> ReplayFigures:
    return ReplayFigures(m.reused, layers, m.pushed_bytes, m.pulled_bytes)


def layer_order_advice(images: Sequence[Image], *, workers: int | None = None) -> OrderAdvice:
    """Layer-order advice for a series of builds (oldest first; see the module
    docstring). Reads the tar headers of the participating builds' layers, in up to
    ``workers`` threads."""
    images = tuple(images)
    if len(images) < 2:
        raise ReuseInputError(f"layer-order advice needs at least two builds, got {len(images)}")
    latest = images[-1]
    labels = image_labels(images)
    matched = [_participates(image, latest) for image in images]
    n = len(latest.layers)
    changes = _changes(images, matched)
    identity = tuple(range(n))
    if any(matched[i - 1] and matched[i] for i in range(1, len(images))):
        conflicts = _conflicts(images, labels, matched, workers)
        proposed = _order(n, changes, conflicts)
    else:  # no build to learn from: layers are not read
        conflicts, proposed = [], ()
    before = measure([slots_of(image) for image in images])

    def replay(order: tuple[int, ...]) -> list[Measured]:
        return measure([reordered_slots(image, order) if m else slots_of(image)
                        for image, m in zip(images, matched)])

    after = replay(proposed) if proposed not in ((), identity) else before
    advised = proposed not in ((), identity) and _sent(after) < _sent(before)
    order = proposed if advised else identity
    if not advised:
        after = before
    where = {src: pos for pos, src in enumerate(order)}
    steps = tuple(LayerStep(j, layer.created_by, instruction_of(layer.created_by), layer.size,
                            changes[j], where[j]) for j, layer in enumerate(latest.layers))
    builds = tuple(ReplayedBuild(i, labels[i], advised and matched[i],
                                 _figures(b, len(images[i].layers)),
                                 _figures(a, len(images[i].layers)))
                   for i, (b, a) in enumerate(zip(before, after)))
    return OrderAdvice(order, advised, steps, tuple(conflicts), builds,
                       tuple(i for i, m in enumerate(matched) if not m), proposed)
