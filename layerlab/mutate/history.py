"""The config ``history`` of a rewritten image: one step per new layer, empty steps kept.

Each empty step (ENV, CMD, LABEL ...) travels with the layer step that follows it; the
empty steps after the last layer stay last. A merged layer gets one step whose
``created_by`` joins the merged RUN commands with ``&&`` (as ``layerlab history``
predicts it) and whose ``comment`` names the source layers.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

from ..analysis.history import merged_created_by

__all__ = ["rebuilt_history"]


def _split(history: Sequence[dict[str, Any]], n_layers: int
           ) -> tuple[list[list[dict]], list[dict], list[dict]] | None:
    """``(empty steps before each layer's step, each layer's step, trailing empty
    steps)``, or ``None`` when the history does not list one step per layer."""
    made = [h for h in history if not h.get("empty_layer")]
    if len(made) != n_layers:
        return None
    before: list[list[dict]] = [[] for _ in range(n_layers)]
    steps: list[dict] = []
    pending: list[dict] = []
    for h in history:
        if h.get("empty_layer"):
            pending.append(h)
            continue
        before[len(steps)] = pending
        steps.append(h)
        pending = []
    return before, steps, pending


def rebuilt_history(history: Sequence[dict[str, Any]], n_layers: int,
                    groups: Sequence[Sequence[int]], created: str | None) -> list[dict]:
    """The history for layers made of ``groups`` of source layers (in the new order).

    ``created`` (an RFC 3339 time) replaces every step's ``created`` when given. A
    history that does not match the layers (some builders omit it) is kept as it is
    when the layers keep their order and count, else replaced by one step per layer.
    """
    split = _split(history, n_layers)
    identity = [list(g) for g in groups] == [[i] for i in range(n_layers)]
    if split is None:
        if identity:
            out = [copy.deepcopy(h) for h in history]
        else:
            out = [{"created_by": "", "comment": f"layerlab rewrite: source layers "
                    f"{_span(g)}"} for g in groups]
    else:
        before, steps, trailing = split
        out = []
        for group in groups:
            for i in group:
                out.extend(copy.deepcopy(h) for h in before[i])
            if len(group) == 1:
                out.append(copy.deepcopy(steps[group[0]]))
                continue
            members = [steps[i] for i in group]
            step: dict[str, Any] = {}
            if members[-1].get("created"):
                step["created"] = members[-1]["created"]
            step["created_by"] = merged_created_by([str(m.get("created_by") or "")
                                                    for m in members])
            step["comment"] = f"layerlab rewrite: layers {_span(group)} merged"
            out.append(step)
        out.extend(copy.deepcopy(h) for h in trailing)
    if created is not None:
        for h in out:
            h["created"] = created
    return out


def _span(group: Sequence[int]) -> str:
    return f"{group[0]}-{group[-1]}" if len(group) > 1 else str(group[0])
