"""The merged filesystem of an image: layers applied in order, whiteouts and opaque
directories honoured, as the OCI image spec (layer.md, "Applying Changesets") says.

* A whiteout ``dir/.wh.name`` removes ``dir/name`` (and everything under it) from the
  layers *below*; a whiteout for a path that does not exist is ignored.
* An opaque marker ``dir/.wh..wh..opq`` removes everything under ``dir`` from the layers
  below, keeping ``dir`` itself.
* Entries of a layer are never hidden by whiteouts of the same layer (whiteouts apply
  first, then the layer's own entries).
* A non-directory replacing a directory removes the directory's subtree; a directory
  replacing a directory keeps the children and takes the new metadata; missing parent
  directories are created implicitly (and replace a non-directory in the way).

:class:`MergedFilesystem` keeps one :class:`FileState` per path. With ``track=True`` it
also records, for every non-directory write, what became of it: kept, overwritten,
deleted (whiteout) or hidden (opaque directory), and by which layer - the facts behind
the wasted-space report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, NamedTuple

from ..tarstream import TarEntry

__all__ = ["FileState", "Write", "MergedFilesystem", "merge_layers", "FATES"]

FATES = ("kept", "overwritten", "deleted", "hidden", "replaced")
"""What became of a write: still in the image; written again by a later layer; removed
by a whiteout; removed by an opaque directory; replaced by a directory (or an implicit
parent directory) of a later layer."""


class FileState(NamedTuple):
    """One path of the merged filesystem: the entry that wrote it and where it came from.

    ``layer`` is the index of the writing layer in the image, ``ordinal`` the index of
    the entry in that layer's tar (so ``(layer, ordinal)`` names the bytes exactly);
    implicit parent directories have ``ordinal == -1``.
    """

    entry: TarEntry
    layer: int
    ordinal: int

    @property
    def type(self) -> str:
        return self.entry.type

    @property
    def size(self) -> int:
        return self.entry.size


@dataclass
class Write:
    """One non-directory write of a path, and its fate (mutable while layers apply)."""

    path: str
    layer: int
    size: int
    type: str
    fate: str = "kept"
    by_layer: int | None = None

    def to_json(self) -> dict:
        return {"layer": self.layer, "size": self.size, "type": self.type,
                "fate": self.fate, "by_layer": self.by_layer}


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _implicit_dir(path: str) -> TarEntry:
    return TarEntry(path, "dir", 0, 0o755, 0, 0, 0.0)


class MergedFilesystem:
    """Paths -> :class:`FileState`, built by :meth:`apply` one layer at a time.

    ``warnings`` collects oddities that are not errors (hard links whose target is
    missing). Use :meth:`copy` to branch (two images sharing a base).
    """

    def __init__(self, track: bool = False) -> None:
        self.files: dict[str, FileState] = {}
        self.children: dict[str, set[str]] = {}
        self.track = track
        self.writes: dict[str, list[Write]] = {}
        self.warnings: list[str] = []
        self.layers_applied = 0

    def copy(self) -> "MergedFilesystem":
        """An independent copy (write tracking is not copied)."""
        other = MergedFilesystem(track=False)
        other.files = dict(self.files)
        other.children = {k: set(v) for k, v in self.children.items()}
        other.warnings = list(self.warnings)
        other.layers_applied = self.layers_applied
        return other

    # -- queries ----------------------------------------------------------------------
    def __contains__(self, path: str) -> bool:
        return path in self.files

    def __len__(self) -> int:
        return len(self.files)

    def get(self, path: str) -> FileState | None:
        return self.files.get(path)

    def descendants(self, path: str) -> list[str]:
        """Every path under ``path`` (not ``path`` itself)."""
        out: list[str] = []
        stack = [path]
        while stack:
            for child in self.children.get(stack.pop(), ()):
                out.append(child)
                stack.append(child)
        return out

    def total_size(self) -> int:
        """Bytes of all regular files."""
        return sum(s.entry.size for s in self.files.values())

    # -- changes ----------------------------------------------------------------------
    def _end_write(self, path: str, fate: str, by_layer: int) -> None:
        writes = self.writes.get(path)
        if writes and writes[-1].fate == "kept":
            writes[-1].fate = fate
            writes[-1].by_layer = by_layer

    def _remove(self, path: str, fate: str, layer: int, keep_self: bool = False) -> None:
        for child in self.descendants(path):
            state = self.files.pop(child)
            self.children.pop(child, None)
            if self.track and state.entry.type != "dir":
                self._end_write(child, fate, layer)
        self.children.pop(path, None)
        if keep_self:
            return
        state = self.files.pop(path)
        self.children.get(_parent(path), set()).discard(path)
        if self.track and state.entry.type != "dir":
            self._end_write(path, fate, layer)

    def _ensure_parents(self, path: str, layer: int) -> None:
        missing = []
        parent = _parent(path)
        while parent:
            state = self.files.get(parent)
            if state is not None:
                if state.entry.type == "dir":
                    break
                self._remove(parent, "replaced", layer)
            missing.append(parent)
            parent = _parent(parent)
        for directory in reversed(missing):
            self._set(directory, FileState(_implicit_dir(directory), layer, -1))

    def _set(self, path: str, state: FileState) -> None:
        if path not in self.files:
            self.children.setdefault(_parent(path), set()).add(path)
        self.files[path] = state

    def apply(self, entries: Iterable[TarEntry], layer: int | None = None) -> None:
        """Apply one layer's entries (in tar order) on top of the current state."""
        if layer is None:
            layer = self.layers_applied
        entries = list(entries)
        files = self.files
        # 1. whiteouts and opaque markers hide what the layers below hold
        for entry in entries:
            if entry.whiteout is None:
                continue
            target = entry.whiteout
            if entry.opaque:
                state = files.get(target)
                if state is not None and state.entry.type == "dir":
                    self._remove(target, "hidden", layer, keep_self=True)
            elif target in files:
                self._remove(target, "deleted", layer)
        # 2. the layer's own entries, later ones winning
        track = self.track
        children = self.children
        for ordinal, entry in enumerate(entries):
            if entry.whiteout is not None:
                continue
            path = entry.path
            parent = path.rpartition("/")[0]
            if parent:
                parent_state = files.get(parent)
                if parent_state is None or parent_state.entry.type != "dir":
                    self._ensure_parents(path, layer)
            old = files.get(path)
            if old is None:
                siblings = children.get(parent)
                if siblings is None:
                    children[parent] = {path}
                else:
                    siblings.add(path)
            elif old.entry.type == "dir":
                if entry.type != "dir":
                    self._remove(path, "replaced", layer)
                    children.setdefault(parent, set()).add(path)
            elif track:
                self._end_write(path, "overwritten" if entry.type != "dir" else "replaced", layer)
            if entry.type == "hardlink" and entry.linkname not in files:
                self.warnings.append(f"layer {layer}: hard link {path} -> {entry.linkname}: "
                                     "target does not exist")
            files[path] = FileState(entry, layer, ordinal)
            if track and entry.type != "dir":
                self.writes.setdefault(path, []).append(
                    Write(path, layer, entry.size, entry.type))
        self.layers_applied = layer + 1


def merge_layers(layer_entries: Iterable[Iterable[TarEntry]],
                 track: bool = False) -> MergedFilesystem:
    """The merged filesystem of layers given as entry lists, oldest first."""
    fs = MergedFilesystem(track=track)
    for index, entries in enumerate(layer_entries):
        fs.apply(entries, index)
    return fs
