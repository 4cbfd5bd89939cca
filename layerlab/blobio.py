"""Streams over blobs: file sections, decompression, verification. All bounded memory."""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from .digest import CHUNK_SIZE, Digest, Hasher
from .errors import CorruptArchiveError, DigestMismatchError, SizeMismatchError

__all__ = ["FileSection", "VerifyingReader", "decompressed", "sniff"]

_HAVE_PREADV = hasattr(os, "preadv")


class FileSection(io.RawIOBase):
    """A read-only, seekable window ``[offset, offset + size)`` of a file on disk.

    Opens its own file descriptor and reads with ``os.pread``, so many sections of one
    archive can be read concurrently from several threads.
    """

    def __init__(self, path: str, offset: int, size: int) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._offset = offset
        self._size = size
        self._pos = 0
        self.name = path

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buf) -> int:  # type: ignore[override]
        n = min(len(buf), self._size - self._pos)
        if n <= 0:
            return 0
        if _HAVE_PREADV:  # straight into the caller's buffer: no copy
            got = os.preadv(self._fd, [memoryview(buf).cast("B")[:n]], self._offset + self._pos)
        else:
            data = os.pread(self._fd, n, self._offset + self._pos)
            got = len(data)
            buf[:got] = data
        if not got:
            raise CorruptArchiveError(f"{self.name}: truncated (expected {self._size} bytes "
                                      f"at offset {self._offset})")
        self._pos += got
        return got

    def pread(self, n: int, position: int) -> bytes:
        """Up to ``n`` bytes at ``position`` in the section, without moving (one
        ``os.pread``; fewer bytes only at the section's end)."""
        n = min(n, self._size - position)
        return os.pread(self._fd, n, self._offset + position) if n > 0 else b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        n = min(n, self._size - self._pos)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._offset + self._pos)
        if len(data) < n and self._pos + len(data) < self._size:
            # pread may return short reads; loop to fill or detect truncation
            parts = [data]
            got = len(data)
            while got < n:
                more = os.pread(self._fd, n - got, self._offset + self._pos + got)
                if not more:
                    raise CorruptArchiveError(f"{self.name}: truncated (expected {self._size} "
                                              f"bytes at offset {self._offset})")
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        self._pos += len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class VerifyingReader(io.RawIOBase):
    """Pass a stream through, hashing it; at its end check digest (and size if given).

    Raises :class:`DigestMismatchError` / :class:`SizeMismatchError` naming ``what`` when
    the stream is exhausted and does not match.
    """

    def __init__(self, stream: BinaryIO, expected: Digest, what: str,
                 size: int | None = None) -> None:
        super().__init__()
        self._stream = stream
        self._expected = expected
        self._size = size
        self._what = what
        self._hasher = Hasher(expected.algorithm)
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        readinto = getattr(self._stream, "readinto", None)
        if readinto is not None:  # no intermediate bytes object
            n = readinto(buf) or 0
            if not n:
                self._finish()
                return 0
            self._hasher.update(memoryview(buf).cast("B")[:n])
        else:
            data = self._stream.read(len(buf))
            if not data:
                self._finish()
                return 0
            n = len(data)
            buf[:n] = data
            self._hasher.update(data)
        if self._size is not None and self._hasher.size > self._size:
            raise SizeMismatchError(self._what, self._size, self._hasher.size)
        return n

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._size is not None and self._hasher.size != self._size:
            raise SizeMismatchError(self._what, self._size, self._hasher.size)
        actual = self._hasher.digest()
        if actual != self._expected:
            raise DigestMismatchError(self._what, self._expected, actual)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def sniff(stream: BinaryIO) -> bytes:
    """The first 4 bytes of a seekable stream, position restored."""
    pos = stream.tell()
    head = stream.read(4)
    stream.seek(pos)
    return head


class _DecompressErrors(io.RawIOBase):
    """Turn a decompressor's exceptions into :class:`CorruptArchiveError` naming the blob."""

    def __init__(self, stream: BinaryIO, raw: BinaryIO, what: str, compression: str) -> None:
        super().__init__()
        self._stream = stream
        self._raw = raw
        self._what = what
        self._compression = compression

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        try:
            data = self._stream.read(len(buf))
        except (DigestMismatchError, SizeMismatchError, CorruptArchiveError):
            raise
        except EOFError:
            raise CorruptArchiveError(f"{self._what}: truncated {self._compression} data") from None
        except Exception as exc:  # zlib.error, BadGzipFile, ZstdError ... differ per engine
            raise CorruptArchiveError(
                f"{self._what}: corrupt {self._compression} data ({exc})") from None
        n = len(data)
        buf[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self._raw.close()
        super().close()


def decompressed(stream: BinaryIO, compression: str, what: str) -> BinaryIO:
    """A stream of the uncompressed bytes of ``stream`` (``gzip``, ``zstd`` or ``none``)."""
    if compression == "none":
        return stream
    if compression == "gzip":
        from isal import igzip

        inner: BinaryIO = igzip.IGzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
    elif compression == "zstd":
        import zstandard

        inner = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True,
                                                           closefd=True)
    else:
        raise CorruptArchiveError(f"{what}: unknown compression {compression!r}")
    return io.BufferedReader(_DecompressErrors(inner, stream, what, compression), CHUNK_SIZE)
