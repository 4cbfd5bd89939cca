"""Plain DataFrames the figures draw from, built from Images or any result with ``to_frame``.

The figure functions take these long-form frames, so they work on anything that can give
one: an :class:`~layerlab.model.Image`, a list of them, a result object, or a frame built
by hand in a workshop.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

__all__ = ["as_frame", "layers_frame", "image_files_frame", "label_of"]


def label_of(image: Any) -> str:
    """A short display name for an image: its ``repo:tag`` where known, else the reference."""
    name = getattr(image, "name", None)
    if name:
        return str(name)
    reference = str(getattr(image, "reference", image))
    return reference.rsplit("/", 1)[-1]


def _is_image(obj: Any) -> bool:
    return hasattr(obj, "layers") and hasattr(obj, "manifest")


def layers_frame(images: Iterable[Any] | Any, labels: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per (image, layer): ``image, position, digest, diff_id, key, size,
    uncompressed_size, created_by, shared``.

    ``key`` identifies the layer across forms (diff_id, else digest); ``shared`` is true when
    the key appears in more than one of the images.
    """
    if _is_image(images):
        images = [images]
    images = list(images)
    names = list(labels) if labels is not None else [label_of(i) for i in images]
    if len(set(names)) < len(names):  # two images with the same label: disambiguate
        names = [f"{n} ({k + 1})" for k, n in enumerate(names)]
    rows = []
    for name, image in zip(names, images):
        for position, layer in enumerate(image.layers, 1):
            rows.append({
                "image": name, "position": position, "digest": str(layer.digest),
                "diff_id": str(layer.diff_id) if layer.diff_id else None,
                "key": str(layer.diff_id or layer.digest), "size": int(layer.size),
                "uncompressed_size": layer.uncompressed_size,
                "created_by": layer.created_by,
            })
    frame = pd.DataFrame(rows, columns=["image", "position", "digest", "diff_id", "key", "size",
                                        "uncompressed_size", "created_by"])
    holders = frame.groupby("key")["image"].nunique()
    frame["shared"] = frame["key"].map(holders).fillna(0).astype(int) > 1
    return frame


def image_files_frame(image: Any, merged: bool = True) -> pd.DataFrame:
    """The files of an image: ``path, size, layer (position), key, digest``.

    With ``merged`` (default) it is the final filesystem a container sees: a later layer's
    copy replaces an earlier one, ``.wh.`` whiteouts delete, opaque markers empty a
    directory. Without, every copy in every layer is listed. Regular files and links only.
    """
    files: dict[str, dict[str, Any]] = {}
    every: list[dict[str, Any]] = []
    for position, layer in enumerate(image.layers, 1):
        key = str(layer.diff_id or layer.digest)
        for entry in layer.entries():
            if entry.is_whiteout:
                if merged:
                    hidden = entry.whiteout or ""
                    prefix = hidden + "/" if hidden else ""
                    for path in [p for p in files
                                 if (not entry.opaque and p == hidden) or p.startswith(prefix)]:
                        if files[path]["layer"] < position:
                            del files[path]
                continue
            if entry.is_dir:
                continue
            row = {"path": entry.path, "size": int(entry.size), "layer": position,
                   "key": key, "digest": str(layer.digest), "type": entry.type}
            every.append(row)
            files[entry.path] = row
    rows = sorted(files.values(), key=lambda r: r["path"]) if merged else every
    return pd.DataFrame(rows, columns=["path", "size", "layer", "key", "digest", "type"])


def as_frame(data: Any, **kwargs: Any) -> pd.DataFrame:
    """A DataFrame from a frame (as is), a result (``to_frame(**kwargs)``), a list of
    dicts, or Images (:func:`layers_frame`)."""
    if isinstance(data, pd.DataFrame):
        return data
    if _is_image(data) or (isinstance(data, (list, tuple)) and data and _is_image(data[0])):
        return layers_frame(data)
    if hasattr(data, "to_frame"):
        return data.to_frame(**kwargs)
    return pd.DataFrame(list(data))
