"""A build context with and without its ``.dockerignore``: what ``docker build`` sends.

:func:`context_report` walks a directory (symlinks are not followed, as Docker sends
them as links), applies the ignore file with Docker's rules (see
:mod:`layerlab.analysis.dockerignore`) and reports sizes and file counts both ways, the
largest items the ignore file drops (a dropped directory counts as one item) and the
largest items still sent. The Dockerfile and the ignore file itself are always sent, as
the classic builder does. The ignore file is ``<Dockerfile>.dockerignore`` next to the
Dockerfile if it exists (BuildKit's rule), else ``.dockerignore`` at the context root.

``tar_size`` is what the legacy builder reports as "Sending build context to Docker
daemon": the bytes of the tar stream it sends (Go's archive/tar as Docker writes it: a
512-byte header per directory and file, file data padded to 512 bytes, a hard link's
data once, a PAX record before names of 100 bytes or more, 1,024 bytes at the end).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LayerlabError
from ..units import format_size
from ._present import html_block, html_table
from .dockerignore import DockerIgnore

__all__ = ["ContextItem", "ContextReport", "context_report"]


@dataclass(frozen=True)
class ContextItem:
    """A file or directory of the context: bytes and files under it."""

    path: str
    size: int
    files: int
    is_dir: bool

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "files": self.files, "is_dir": self.is_dir}


@dataclass(frozen=True)
class ContextReport:
    """Sizes of a build context: ``total_*`` without the ignore file, ``sent_*`` with it.

    ``size`` counts bytes of regular files (links count 0); ``files`` counts every
    non-directory entry. ``dropped`` are the largest ignored items (topmost ignored paths),
    ``largest_sent`` the largest sent top-level items and ``largest_sent_files`` the
    largest sent files.
    """

    directory: str
    dockerignore: str | None
    patterns: tuple[str, ...]
    total_size: int
    total_files: int
    sent_size: int
    sent_files: int
    total_tar_size: int
    sent_tar_size: int
    dropped: tuple[ContextItem, ...]
    largest_sent: tuple[ContextItem, ...]
    largest_sent_files: tuple[ContextItem, ...] = field(default=())

    @property
    def dropped_size(self) -> int:
        return self.total_size - self.sent_size

    @property
    def dropped_files(self) -> int:
        return self.total_files - self.sent_files

    def to_json(self) -> dict[str, Any]:
        """The ``layerlab context --json`` shape."""
        return {
            "directory": self.directory, "dockerignore": self.dockerignore,
            "patterns": list(self.patterns),
            "without_dockerignore": {"size": self.total_size, "files": self.total_files,
                                     "tar_size": self.total_tar_size},
            "with_dockerignore": {"size": self.sent_size, "files": self.sent_files,
                                  "tar_size": self.sent_tar_size},
            "dropped_size": self.dropped_size, "dropped_files": self.dropped_files,
            "dropped": [i.to_json() for i in self.dropped],
            "largest_sent": [i.to_json() for i in self.largest_sent],
            "largest_sent_files": [i.to_json() for i in self.largest_sent_files],
        }

    def to_frame(self):
        """Dropped and sent items, one row each (``status``: dropped/sent)."""
        import pandas as pd

        rows = ([{"status": "dropped", **i.to_json()} for i in self.dropped]
                + [{"status": "sent", **i.to_json()} for i in self.largest_sent])
        return pd.DataFrame(rows, columns=["status", "path", "size", "files", "is_dir"])

    def plot(self):
        """Sent vs dropped bytes, and the largest dropped items."""
        import plotly.graph_objects as go

        fig = go.Figure()
        fig.add_bar(x=["without .dockerignore", "with .dockerignore"],
                    y=[self.total_size, self.sent_size], name="bytes sent")
        fig.update_layout(title=f"Build context {self.directory}: {self.summary()}",
                          yaxis_title="bytes")
        return fig

    def summary(self) -> str:
        return (f"{format_size(self.total_size)} in {self.total_files} files without "
                f".dockerignore, {format_size(self.sent_size)} in {self.sent_files} files "
                f"with it ({format_size(self.dropped_size)} dropped)")

    def __repr__(self) -> str:
        return (f"<ContextReport {self.directory}: {self.total_size} -> {self.sent_size} bytes, "
                f"{self.total_files} -> {self.sent_files} files>")

    def _repr_html_(self) -> str:
        dropped = [(i.path + ("/" if i.is_dir else ""), format_size(i.size), i.files)
                   for i in self.dropped]
        sent = [(i.path + ("/" if i.is_dir else ""), format_size(i.size), i.files)
                for i in self.largest_sent]
        return html_block(f"Build context {self.directory}", self.summary(),
                          html_table(["dropped", "size", "files"], dropped, "lrr"),
                          html_table(["still sent", "size", "files"], sent, "lrr"))


_BLOCK = 512
_TAR_END = 2 * _BLOCK


def _tar_data(size: int, info: os.stat_result, seen: set[tuple[int, int]]) -> int:
    """Tar bytes of a file's data: padded to 512; nothing for a hard link already sent."""
    if info.st_nlink > 1:
        key = (info.st_dev, info.st_ino)
        if key in seen:
            return 0
        seen.add(key)
    return -(-size // _BLOCK) * _BLOCK


def _find_ignore_file(root: Path, dockerfile: str) -> Path | None:
    specific = (root / dockerfile).parent / (Path(dockerfile).name + ".dockerignore")
    if specific.is_file():
        return specific
    default = root / ".dockerignore"
    return default if default.is_file() else None


def context_report(directory: str | Path, *, dockerignore: str | Path | None = None,
                   dockerfile: str = "Dockerfile", top: int = 10) -> ContextReport:
    """Sizes and file counts of the build context ``directory`` with and without its
    ignore file (see the module docstring); ``top`` items in each list."""
    root = Path(directory)
    if not root.is_dir():
        raise LayerlabError(f"{directory}: not a directory")
    ignore_path = Path(dockerignore) if dockerignore is not None else _find_ignore_file(root, dockerfile)
    if ignore_path is not None and not ignore_path.is_file():
        raise LayerlabError(f"{ignore_path}: no such ignore file")
    matcher = DockerIgnore.from_file(ignore_path) if ignore_path is not None else DockerIgnore(())
    always_sent = {dockerfile.replace(os.sep, "/").lstrip("./") or "Dockerfile"}
    if ignore_path is not None:
        try:
            always_sent.add(ignore_path.resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            pass

    total_size = total_files = sent_size = sent_files = 0
    total_tar = sent_tar = _TAR_END
    linked: tuple[set[tuple[int, int]], set[tuple[int, int]]] = (set(), set())  # all, sent
    dropped: dict[str, list[int]] = {}   # topmost ignored path -> [size, files, is_dir]
    sent_top: dict[str, list[int]] = {}  # top-level item -> [size, files, is_dir]
    sent_files_list: list[tuple[int, str]] = []

    def note_dropped(top_path: str, size: int, files: int, is_dir: bool) -> None:
        slot = dropped.setdefault(top_path, [0, 0, int(is_dir)])
        slot[0] += size
        slot[1] += files

    def walk(rel: str, abs_path: str, dropped_root: str | None) -> None:
        nonlocal total_size, total_files, sent_size, sent_files, total_tar, sent_tar
        try:
            it = os.scandir(abs_path)
        except OSError as exc:
            raise LayerlabError(f"{abs_path}: cannot read directory ({exc.strerror})") from None
        with it:
            items = sorted(it, key=lambda e: e.name)
        for item in items:
            path = f"{rel}/{item.name}" if rel else item.name
            is_dir = item.is_dir(follow_symlinks=False)
            excluded = matcher.excluded(path) and path not in always_sent
            root_of_drop = dropped_root
            if excluded and root_of_drop is None:
                root_of_drop = path
            if not excluded:
                root_of_drop = None
            info = item.stat(follow_symlinks=False)
            header = _BLOCK + (2 * _BLOCK if len(path.encode()) >= 100 else 0)
            if is_dir:
                total_tar += header
                sent_tar += 0 if excluded else header
                walk(path, item.path, root_of_drop)
                if excluded and root_of_drop == path:
                    dropped.setdefault(path, [0, 0, 1])
                continue
            size = info.st_size if item.is_file(follow_symlinks=False) else 0
            total_size += size
            total_files += 1
            total_tar += header + _tar_data(size, info, linked[0])
            if not excluded:
                sent_tar += header + _tar_data(size, info, linked[1])
            if excluded:
                note_dropped(root_of_drop or path, size, 1, root_of_drop != path)
            else:
                sent_size += size
                sent_files += 1
                top_name = path.split("/", 1)[0]
                slot = sent_top.setdefault(top_name, [0, 0, int("/" in path)])
                slot[0] += size
                slot[1] += 1
                sent_files_list.append((size, path))

    walk("", str(root), None)
    dropped_items = sorted((ContextItem(p, s, f, bool(d)) for p, (s, f, d) in dropped.items()),
                           key=lambda i: (-i.size, i.path))[:top]
    sent_items = sorted((ContextItem(p, s, f, bool(d)) for p, (s, f, d) in sent_top.items()),
                        key=lambda i: (-i.size, i.path))[:top]
    sent_files_list.sort(key=lambda t: (-t[0], t[1]))
    largest_files = tuple(ContextItem(p, s, 1, False) for s, p in sent_files_list[:top])
    return ContextReport(
        directory=str(directory),
        dockerignore=str(ignore_path) if ignore_path is not None else None,
        patterns=tuple(("!" if p.exclusion else "") + p.pattern for p in matcher.patterns),
        total_size=total_size, total_files=total_files, sent_size=sent_size,
        sent_files=sent_files, total_tar_size=total_tar, sent_tar_size=sent_tar,
        dropped=tuple(dropped_items), largest_sent=sent_items,
        largest_sent_files=largest_files)
