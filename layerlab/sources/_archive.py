"""Read-only access to the files of a local image medium: a tar archive or a directory.

A :class:`TarTree` indexes a tar once (member name -> data offset and size) by reading
headers only, seeking over the data; members are then read as :class:`FileSection`
windows (``os.pread``), so nothing is extracted and memory does not grow with the
size of the members. Symbolic and hard links inside the tar are resolved, with loop
detection. A :class:`DirTree` gives the same interface over a directory.

Names are POSIX paths relative to the root of the medium (``blobs/sha256/<hex>``);
a name with ``..`` or a leading ``/`` is refused with :class:`UnsafePathError`.
"""

from __future__ import annotations

import errno
import os
import posixpath
import tarfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import BinaryIO

from ..blobio import FileSection
from ..mediatypes import detect_compression
from ..errors import (CorruptArchiveError, ImageNotFoundError, MissingBlobError,
                      NotAnArchiveError, UnsafePathError)

__all__ = ["Tree", "TarTree", "DirTree", "open_tree", "MAX_DOCUMENT"]

MAX_DOCUMENT = 32 << 20
"""Largest JSON document (manifest, index, config) read into memory: 32 MiB."""

_MAX_LINK_HOPS = 40  # as Linux's MAXSYMLINKS


def clean_name(name: str, where: str) -> str:
    """``name`` without ``./`` prefixes, duplicate or trailing slashes; refuse escapes."""
    if name.startswith("/"):
        raise UnsafePathError(f"{where}: absolute path {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{where}: path {name!r} escapes the archive root")
    return "/".join(parts)


class Tree(ABC):
    """Files of an image medium, by relative name."""

    label: str
    """How messages name the medium (its path)."""

    @abstractmethod
    def size(self, name: str) -> int | None:
        """Size of the regular file ``name`` (links followed), ``None`` if absent."""

    @abstractmethod
    def open(self, name: str) -> BinaryIO:
        """A seekable stream of the file; :class:`MissingBlobError` if absent."""

    def exists(self, name: str) -> bool:
        return self.size(name) is not None

    def read(self, name: str, limit: int = MAX_DOCUMENT) -> bytes:
        """The whole file (a small document); refuses files over ``limit`` bytes."""
        size = self.size(name)
        if size is None:
            raise MissingBlobError(f"{self.label}: {name} is missing")
        if size > limit:
            raise CorruptArchiveError(f"{self.label}: {name} is {size} bytes, too large for "
                                      f"a JSON document (limit {limit})")
        with self.open(name) as stream:
            data = stream.read(size + 1)
        if len(data) != size:
            raise CorruptArchiveError(f"{self.label}: {name}: expected {size} bytes, read {len(data)}")
        return data

    def head(self, name: str, n: int = 8) -> bytes:
        """The first ``n`` bytes of a file (for sniffing compression)."""
        with self.open(name) as stream:
            return stream.read(n)

    @property
    def path(self) -> str:
        return self.label


@dataclass(frozen=True)
class _Member:
    name: str
    kind: str  # file, dir, symlink, hardlink, other
    offset: int
    size: int
    target: str = ""


_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
          tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}


class TarTree(Tree):
    """A tar archive on disk, indexed once by its headers (no member data read)."""

    def __init__(self, path: str) -> None:
        self.label = path
        self._path = path
        self._members: dict[str, _Member] = {}
        self._index()

    def _index(self) -> None:
        path = self._path
        try:
            file_size = os.path.getsize(path)
            tar = tarfile.open(path, mode="r:")
        except FileNotFoundError:
            raise ImageNotFoundError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise NotAnArchiveError(f"{path}: a directory, not a tar archive") from None
        except tarfile.ReadError as exc:
            with open(path, "rb") as f:
                kind = detect_compression(f.read(4))
            if kind != "none":
                raise NotAnArchiveError(f"{path}: a {kind}-compressed file, not a plain tar "
                                        "archive (decompress it first)") from None
            raise NotAnArchiveError(f"{path}: not a tar archive ({exc})") from None
        except tarfile.TarError as exc:
            raise CorruptArchiveError(f"{path}: unreadable tar ({exc})") from None
        with tar:
            try:
                while True:
                    info = tar.next()
                    if info is None:
                        break
                    self._add(info, file_size)
                    tar.members.clear()
                end = tar.offset
            except tarfile.TarError as exc:
                raise CorruptArchiveError(f"{path}: corrupt tar ({exc})") from None
            # tarfile stops quietly at a damaged header after the first: check that
            # what follows the last member is the end-of-archive marker (or nothing).
            tar.fileobj.seek(end)
            trailer = tar.fileobj.read(512)
        if trailer.strip(b"\0"):
            raise CorruptArchiveError(f"{path}: corrupt tar header at offset {end}")

    def _add(self, info: tarfile.TarInfo, file_size: int) -> None:
        name = clean_name(info.name, f"{self._path}: member")
        if not name:
            return
        kind = _KINDS.get(info.type, "other")
        size = info.size if kind == "file" else 0
        if kind == "file" and info.offset_data + size > file_size:
            raise CorruptArchiveError(
                f"{self._path}: truncated: member {name} needs {size} bytes at offset "
                f"{info.offset_data}, the file has {file_size}")
        self._members[name] = _Member(name, kind, info.offset_data, size, info.linkname)

    def names(self) -> list[str]:
        """Every member name (normalised), in archive order."""
        return list(self._members)

    def _resolve(self, name: str) -> _Member | None:
        """The regular file or directory ``name`` refers to, following links in every
        path component; ``None`` if it does not exist."""
        original = name
        hops = 0
        pending = clean_name(name, f"{self._path}: {original}").split("/")
        done: list[str] = []
        member: _Member | None = None
        while pending:
            part = pending.pop(0)
            current = "/".join(done + [part])
            member = self._members.get(current)
            if member is None:
                if pending and any(m.startswith(current + "/") for m in self._members):
                    done.append(part)  # an implicit directory (no entry of its own)
                    continue
                return None
            if member.kind in ("symlink", "hardlink"):
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise UnsafePathError(f"{self._path}: symbolic link loop resolving {original!r}")
                target = member.target
                if member.kind == "hardlink" or target.startswith("/"):
                    base = target.lstrip("/")  # archive-root relative
                else:
                    base = posixpath.join(*done, target) if done else target
                joined = posixpath.normpath(base)
                if joined == ".." or joined.startswith("../"):
                    raise UnsafePathError(f"{self._path}: link {current} -> {target!r} "
                                          "escapes the archive root")
                pending = [p for p in joined.split("/") if p not in ("", ".")] + pending
                done = []
                member = None
                continue
            done.append(part)
        if member is None and done:
            return _Member("/".join(done), "dir", 0, 0)
        return member

    def member(self, name: str) -> _Member | None:
        """The regular file ``name`` resolves to (``None`` if absent or not a file)."""
        member = self._resolve(name)
        return member if member is not None and member.kind == "file" else None

    def size(self, name: str) -> int | None:
        member = self.member(name)
        return None if member is None else member.size

    def section(self, name: str) -> tuple[int, int]:
        """``(offset, size)`` of a file's data in the archive."""
        member = self.member(name)
        if member is None:
            raise MissingBlobError(f"{self._path}: {name} is missing")
        return member.offset, member.size

    def open(self, name: str) -> BinaryIO:
        offset, size = self.section(name)
        return FileSection(self._path, offset, size)  # type: ignore[return-value]


class DirTree(Tree):
    """A directory on disk (an OCI image layout)."""

    def __init__(self, path: str) -> None:
        if not os.path.isdir(path):
            if os.path.exists(path):
                raise NotAnArchiveError(f"{path}: not a directory")
            raise ImageNotFoundError(f"{path}: no such directory")
        self.label = path
        self._root = path

    def _path(self, name: str) -> str:
        return os.path.join(self._root, *clean_name(name, self._root).split("/"))

    def size(self, name: str) -> int | None:
        try:
            st = os.stat(self._path(name))
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(f"{self._root}: symbolic link loop at {name}") from None
            raise
        import stat

        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def open(self, name: str) -> BinaryIO:
        if self.size(name) is None:
            raise MissingBlobError(f"{self._root}: {name} is missing")
        return open(self._path(name), "rb")


def open_tree(path: str, archive: bool) -> Tree:
    """A :class:`TarTree` (``archive``) or :class:`DirTree` for ``path``."""
    return TarTree(path) if archive else DirTree(path)
