"""File-level diff of two images: their merged filesystems, compared path by path.

Each image's filesystem is merged with whiteouts and opaque directories applied (see
:mod:`layerlab.analysis.filesystem`). The layers the images have in common (their
common base) are merged once, from headers only, and never read for content.

A path present in both is *modified* when its type, mode, owner (uid/gid), link target
or content differs, or - unless ``ignore_mtime`` - its modification time (directories'
times are never compared: they change whenever a child does). Contents are compared only
when the decision needs it: not for entries written by the same layer content in both
images, and not when the sizes differ (that already proves a change). Otherwise the two
files' bytes are compared (see :mod:`layerlab.analysis.compare`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..model import Image
from ._present import delta_cell, html_table
from .compare import ContentComparer
from .filesystem import FileState, MergedFilesystem
from .scan import scan_layers

__all__ = ["PathInfo", "FileChange", "DirectoryDelta", "FileDiff", "diff_files"]


@dataclass(frozen=True)
class PathInfo:
    """A path only one image has: type, size, mode and the layer that wrote it."""

    path: str
    type: str
    size: int
    mode: int
    layer: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "size": self.size,
                "mode": self.mode, "layer": self.layer}


@dataclass(frozen=True)
class FileChange:
    """A path both images have, changed: ``changes`` lists what differs, among
    ``type``, ``content``, ``mode``, ``owner``, ``link`` (target of two links) and
    ``mtime``."""

    path: str
    changes: tuple[str, ...]
    type_a: str
    type_b: str
    size_a: int
    size_b: int
    layer_a: int
    layer_b: int

    @property
    def delta(self) -> int:
        return self.size_b - self.size_a

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "changes": list(self.changes), "type_a": self.type_a,
                "type_b": self.type_b, "size_a": self.size_a, "size_b": self.size_b,
                "delta": self.delta, "layer_a": self.layer_a, "layer_b": self.layer_b}


@dataclass(frozen=True)
class DirectoryDelta:
    """A directory holding changes: bytes under it in each image, and change counts."""

    path: str
    size_a: int
    size_b: int
    added: int
    removed: int
    modified: int

    @property
    def delta(self) -> int:
        return self.size_b - self.size_a

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size_a": self.size_a, "size_b": self.size_b,
                "delta": self.delta, "added": self.added, "removed": self.removed,
                "modified": self.modified}


@dataclass(frozen=True)
class FileDiff:
    """Added, removed and modified paths (sorted), per-directory deltas (largest change
    first), totals, and what it cost: layers skipped and bytes compared."""

    added: tuple[PathInfo, ...]
    removed: tuple[PathInfo, ...]
    modified: tuple[FileChange, ...]
    directories: tuple[DirectoryDelta, ...]
    paths_a: int
    paths_b: int
    size_a: int
    size_b: int
    common_layers_skipped: int = 0
    compared_files: int = 0
    compared_bytes: int = 0
    warnings: tuple[str, ...] = field(default=())

    @property
    def identical(self) -> bool:
        return not self.added and not self.removed and not self.modified

    @property
    def size_delta(self) -> int:
        return self.size_b - self.size_a

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [p.to_json() for p in self.added],
            "removed": [p.to_json() for p in self.removed],
            "modified": [c.to_json() for c in self.modified],
            "directories": [d.to_json() for d in self.directories],
            "paths_a": self.paths_a, "paths_b": self.paths_b,
            "size_a": self.size_a, "size_b": self.size_b, "size_delta": self.size_delta,
            "common_layers_skipped": self.common_layers_skipped,
            "compared_files": self.compared_files, "compared_bytes": self.compared_bytes,
        }

    def to_frame(self):
        """One row per changed path: status, sizes, delta, what changed."""
        import pandas as pd

        rows = ([{"path": p.path, "status": "added", "type": p.type, "size_a": 0,
                  "size_b": p.size, "delta": p.size, "changes": ""} for p in self.added]
                + [{"path": p.path, "status": "removed", "type": p.type, "size_a": p.size,
                    "size_b": 0, "delta": -p.size, "changes": ""} for p in self.removed]
                + [{"path": c.path, "status": "modified", "type": c.type_b, "size_a": c.size_a,
                    "size_b": c.size_b, "delta": c.delta, "changes": ",".join(c.changes)}
                   for c in self.modified])
        return pd.DataFrame(rows, columns=["path", "status", "type", "size_a", "size_b",
                                           "delta", "changes"]).sort_values("path",
                                                                            ignore_index=True)

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.removed)} removed, "
                f"{len(self.modified)} modified paths ({delta_cell(self.size_delta)})")

    def _table_html(self) -> str:
        rows = ([("+", p.path, delta_cell(p.size), "") for p in self.added]
                + [("-", p.path, delta_cell(-p.size), "") for p in self.removed]
                + [("M", c.path, delta_cell(c.delta), ",".join(c.changes)) for c in self.modified])
        rows.sort(key=lambda r: r[1])
        return html_table(["", "path", "delta", "changes"], rows, "llrl")

    def __repr__(self) -> str:
        return f"<FileDiff {self.summary()}>"

    def _repr_html_(self) -> str:
        return f"<p>{self.summary()}</p>" + self._table_html()


# -- the diff --------------------------------------------------------------------------
def _info(path: str, state: FileState) -> PathInfo:
    e = state.entry
    return PathInfo(path, e.type, e.size, e.mode, state.layer)


def _metadata_changes(sa: FileState, sb: FileState, ignore_mtime: bool) -> list[str]:
    a, b = sa.entry, sb.entry
    changes = []
    if a.type != b.type:
        changes.append("type")
    elif a.type == "file" and a.size != b.size:
        changes.append("content")
    if a.mode != b.mode:
        changes.append("mode")
    if a.uid != b.uid or a.gid != b.gid:
        changes.append("owner")
    if a.linkname != b.linkname and a.type == b.type:
        changes.append("link")
    if not ignore_mtime and a.mtime != b.mtime and a.type != "dir" and b.type != "dir":
        changes.append("mtime")
    return changes


def _directories(fa: MergedFilesystem, fb: MergedFilesystem, added, removed,
                 modified) -> tuple[DirectoryDelta, ...]:
    direct_counts: dict[str, list[int]] = {}  # changes right inside each directory
    for slot, paths in enumerate(([p.path for p in added], [p.path for p in removed],
                                  [c.path for c in modified])):
        for path in paths:
            parent = path.rpartition("/")[0]
            if parent:
                direct_counts.setdefault(parent, [0, 0, 0])[slot] += 1
    counts: dict[str, list[int]] = {}  # changes anywhere under each directory
    for directory, (n_added, n_removed, n_modified) in direct_counts.items():
        while directory:
            slot = counts.setdefault(directory, [0, 0, 0])
            slot[0] += n_added
            slot[1] += n_removed
            slot[2] += n_modified
            directory = directory.rpartition("/")[0]
    sizes = {d: [0, 0] for d in counts}
    for side, fs in enumerate((fa, fb)):
        direct: dict[str, int] = {}  # bytes of the files right inside each directory
        for path, state in fs.files.items():
            size = state.entry.size
            if size:
                parent = path.rpartition("/")[0]
                direct[parent] = direct.get(parent, 0) + size
        below: dict[str, int] = {}  # bytes anywhere under each directory
        for directory, n in direct.items():
            while directory:
                below[directory] = below.get(directory, 0) + n
                directory = directory.rpartition("/")[0]
        for directory, slot in sizes.items():
            slot[side] = below.get(directory, 0)
    out = [DirectoryDelta(d, sizes[d][0], sizes[d][1], *counts[d]) for d in counts]
    out.sort(key=lambda d: (-abs(d.delta), d.path))
    return tuple(out)


def diff_files(a: Image, b: Image, *, common: int | None = None, ignore_mtime: bool = False,
               workers: int | None = None) -> FileDiff:
    """Compare the merged filesystems of ``a`` and ``b`` (see the module docstring).

    ``common`` is the number of leading layers the images share (computed if omitted).
    """
    if common is None:
        from .imagediff import diff_layers

        common = len(diff_layers(a, b).common)
    workers = workers or min(4, os.cpu_count() or 1)
    scans = scan_layers(list(a.layers) + list(b.layers[common:]), workers=workers)
    scans_a = scans[:len(a.layers)]
    scans_b = scans[:common] + scans[len(a.layers):]
    fb = MergedFilesystem()
    for i in range(common):
        fb.apply(scans_a[i].entries, i)
    fa = fb.copy()
    for i in range(common, len(a.layers)):
        fa.apply(scans_a[i].entries, i)
    for i in range(common, len(b.layers)):
        fb.apply(scans_b[i].entries, i)

    # the same layer content may sit at other positions: name writes by content identity
    ids_a = [str(layer.diff_id or layer.digest) for layer in a.layers]
    ids_b = [str(layer.diff_id or layer.digest) for layer in b.layers]
    files_a, files_b = fa.files, fb.files
    added = [_info(p, files_b[p]) for p in files_b.keys() - files_a.keys()]
    removed = [_info(p, files_a[p]) for p in files_a.keys() - files_b.keys()]
    modified: list[FileChange] = []
    to_compare: list[tuple[str, FileState, FileState]] = []
    pending: dict[str, list[str]] = {}
    for path in files_a.keys() & files_b.keys():
        sa, sb = files_a[path], files_b[path]
        if sa is sb:
            continue
        if sa.ordinal >= 0 and sa.ordinal == sb.ordinal and ids_a[sa.layer] == ids_b[sb.layer]:
            continue  # the same entry of the same layer content
        changes = _metadata_changes(sa, sb, ignore_mtime)
        if sa.entry.type == "file" and sb.entry.type == "file" \
                and sa.entry.size == sb.entry.size and sa.entry.size > 0:
            to_compare.append((path, sa, sb))
            pending[path] = changes
        elif changes:
            modified.append(_change(path, changes, sa, sb))
    comparer = ContentComparer(scans_a, scans_b, workers)
    if to_compare:
        different = comparer.different(to_compare)
        for path, sa, sb in to_compare:
            changes = pending[path]
            if path in different:
                changes = ["content"] + changes
            if changes:
                modified.append(_change(path, changes, sa, sb))
    added.sort(key=lambda p: p.path)
    removed.sort(key=lambda p: p.path)
    modified.sort(key=lambda c: c.path)
    warnings = sorted(set(fa.warnings) | set(fb.warnings))
    return FileDiff(
        added=tuple(added), removed=tuple(removed), modified=tuple(modified),
        directories=_directories(fa, fb, added, removed, modified),
        paths_a=len(files_a), paths_b=len(files_b),
        size_a=fa.total_size(), size_b=fb.total_size(), common_layers_skipped=common,
        compared_files=comparer.compared_files, compared_bytes=comparer.compared_bytes,
        warnings=tuple(warnings))


def _change(path: str, changes: list[str], sa: FileState, sb: FileState) -> FileChange:
    return FileChange(path, tuple(changes), sa.entry.type, sb.entry.type, sa.entry.size,
                      sb.entry.size, sa.layer, sb.layer)

