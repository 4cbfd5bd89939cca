"""Output plumbing for the writers: chunked copies, temporary files renamed into place,
and a tar writer for seekable files (headers patched in place for members of unknown size).
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

from ..digest import CHUNK_SIZE
from ..errors import ArchiveError, CorruptArchiveError

__all__ = ["copy_stream", "temp_file", "write_small", "TarOut", "target_dir"]


def copy_stream(src: BinaryIO, dst: BinaryIO, limit: int | None = None) -> int:
    """Copy ``src`` to ``dst`` in chunks (at most ``limit`` bytes); return the count.

    With a limit, one more read is made at the end, so that a verifying reader sees
    its end and checks its digest (and raises if more bytes follow).
    """
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    total = 0
    while limit is None or total < limit:
        want = CHUNK_SIZE if limit is None else min(CHUNK_SIZE, limit - total)
        n = src.readinto(view[:want])  # type: ignore[attr-defined]
        if not n:
            break
        dst.write(view[:n])
        total += n
    if limit is not None and src.read(1):
        raise CorruptArchiveError(f"{getattr(src, 'name', 'blob')}: longer than {limit} bytes")
    return total


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def temp_file(directory: str, prefix: str) -> Iterator[tuple[BinaryIO, str]]:
    """A new file in ``directory``, removed unless the caller renamed it away."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as out:
            yield out, tmp
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_small(directory: str, name: str, data: bytes) -> None:
    with temp_file(directory, f".{name}.") as (out, tmp):
        out.write(data)
        out.flush()
        os.replace(tmp, os.path.join(directory, name))


class TarOut:
    """Writes tar members to a seekable file (GNU headers: sizes of any magnitude)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out

    def _header(self, name: str, kind: bytes, size: int, mode: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.type, info.size, info.mode, info.mtime = kind, size, mode, 0
        info.uname = info.gname = ""
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")

    def _pad(self, size: int) -> None:
        if size % 512:
            self.out.write(b"\0" * (512 - size % 512))

    def directory(self, name: str) -> None:
        self.out.write(self._header(name, tarfile.DIRTYPE, 0, 0o755))

    def file(self, name: str, data: bytes) -> None:
        self.out.write(self._header(name, tarfile.REGTYPE, len(data), 0o644))
        self.out.write(data)
        self._pad(len(data))

    def member(self, name: str, size: int, write: Callable[[BinaryIO], None]) -> None:
        """A member of known ``size`` whose data ``write(out)`` writes."""
        self.out.write(self._header(name, tarfile.REGTYPE, size, 0o644))
        write(self.out)
        self._pad(size)

    def stream(self, name: str, src: BinaryIO) -> int:
        """A member of unknown size: header written after the data, in place."""
        start = self.out.tell()
        placeholder = self._header(name, tarfile.REGTYPE, 0, 0o644)
        self.out.write(placeholder)
        size = copy_stream(src, self.out)
        header = self._header(name, tarfile.REGTYPE, size, 0o644)
        if len(header) != len(placeholder):
            raise ArchiveError(f"{name}: tar header length changed")  # long names only
        end = self.out.tell()
        self.out.seek(start)
        self.out.write(header)
        self.out.seek(end)
        self._pad(size)
        return size

    def close(self) -> None:
        self.out.write(b"\0" * 1024)


def target_dir(path: str) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ArchiveError(f"{directory}: no such directory")
    if os.path.isdir(path):
        raise ArchiveError(f"{path}: is a directory")
    return directory
