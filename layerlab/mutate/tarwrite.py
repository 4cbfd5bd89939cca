"""Writing layer tars as a stream: the members a :class:`~layerlab.analysis.merge.MergePlan`
keeps, read from the source layers and written again, never held whole in memory.

Members are written with ``tarfile``'s PAX serialisation (their own pax headers, xattrs
and device numbers kept) and the archive ends with the 1,024-byte end marker and no
record padding, as Go's ``archive/tar`` writes layers: the size is then exactly what
:func:`~layerlab.analysis.merge.merged_tar_size` predicts for members without pax
headers of their own.
"""

from __future__ import annotations

import copy
import os
import shutil
import tarfile
import tempfile
from typing import BinaryIO, Callable, Iterator, Sequence

from ..analysis.merge import MergePlan, opaque_name, whiteout_name
from ..digest import CHUNK_SIZE
from ..model import Layer
from ..tarstream import TarEntry, iter_tar_members

__all__ = ["ChunkReader", "plan_tar_chunks", "EntryFilter"]

EntryFilter = Callable[[TarEntry], bool]
"""True for a member the rewrite keeps (the ``exclude`` patterns say no)."""

_TIME_KEYS = ("mtime", "atime", "ctime")


class ChunkReader:
    """A read-only binary stream over an iterator of ``bytes`` chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._done = False

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buffer) < n):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
                break
            self._buffer += chunk
        if n < 0 or n >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
            return out
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _stamped(info: tarfile.TarInfo, timestamp: int | None) -> tarfile.TarInfo:
    if timestamp is None:
        return info
    info = copy.copy(info)
    info.mtime = timestamp
    info.pax_headers = {k: v for k, v in info.pax_headers.items() if k not in _TIME_KEYS}
    return info


def _marker(name: str, like: tarfile.TarInfo | None, timestamp: int | None) -> tarfile.TarInfo:
    """A whiteout or opaque marker member named ``name`` (metadata of ``like`` if any)."""
    info = copy.copy(like) if like is not None else tarfile.TarInfo()
    info.name = name
    info.type = tarfile.REGTYPE
    info.size = 0
    info.linkname = ""
    if like is None:
        info.mode = 0o644
        info.mtime = timestamp or 0
    return _stamped(info, timestamp)


def _copy_content(content: BinaryIO) -> Iterator[bytes]:
    while True:
        chunk = content.read(CHUNK_SIZE)
        if not chunk:
            return
        yield chunk


def plan_tar_chunks(layers: Sequence[Layer], plan: MergePlan, keep: EntryFilter,
                    timestamp: int | None, spool_dir: str) -> Iterator[bytes]:
    """The bytes of the tar that ``plan`` describes over ``layers`` (a group, oldest
    first), streaming each source layer once, in order (verified: a layer whose bytes
    or diff_id do not match raises at its end).

    ``keep`` filters members before the plan's ordinals are counted (the plan was made
    over the same filtered entries). ``timestamp`` sets every member's mtime (and drops
    pax atime/ctime). Targets of hard links the plan turns into copies are spooled in
    ``spool_dir`` until the link is written.
    """
    kept = set(plan.keep)
    wanted_targets = set(plan.copies.values())
    spooled: dict[tuple[int, int], str] = {}
    markers: dict[str, tarfile.TarInfo] = {}
    whiteouts = set(plan.whiteouts)
    opaque = set(plan.opaque)
    try:
        for position, layer in enumerate(layers):
            what = f"layer {layer.digest}"
            ordinal = -1
            with layer.open_uncompressed(verify=True) as stream:
                for info, entry, content in iter_tar_members(stream, what):
                    if not keep(entry):
                        continue
                    ordinal += 1
                    at = (position, ordinal)
                    if entry.whiteout is not None:
                        if (entry.opaque and entry.whiteout in opaque) or \
                                (not entry.opaque and entry.whiteout in whiteouts):
                            markers[entry.path] = info
                        continue
                    if at in wanted_targets and content is not None:  # never kept itself
                        spooled[at] = _spool(content, spool_dir)
                    if at not in kept:
                        continue
                    target = plan.copies.get(at)
                    if target is not None:
                        yield from _linked_copy(info, spooled[target], timestamp)
                        continue
                    yield _header(_stamped(info, timestamp))
                    if content is not None:
                        yield from _copy_content(content)
                    yield _padding(info.size if entry.type == "file" else 0)
                while stream.read(CHUNK_SIZE):  # to the end: the digests are checked there
                    pass
        for path in plan.whiteouts:
            name = whiteout_name(path)
            yield _header(_marker(name, markers.get(name), timestamp))
        for path in plan.opaque:
            name = opaque_name(path)
            yield _header(_marker(name, markers.get(name), timestamp))
        yield b"\0" * (2 * tarfile.BLOCKSIZE)
    finally:
        for path in spooled.values():
            os.unlink(path)


def _spool(content: BinaryIO, spool_dir: str) -> str:
    fd, path = tempfile.mkstemp(prefix="link-", dir=spool_dir)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(content, out, CHUNK_SIZE)
    return path


def _spooled_content(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from _copy_content(f)


def _linked_copy(link: tarfile.TarInfo, spooled: str, timestamp: int | None) -> Iterator[bytes]:
    """A hard link written as a regular file holding its target's bytes."""
    info = copy.copy(link)
    info.type = tarfile.REGTYPE
    info.linkname = ""
    info.size = os.path.getsize(spooled)
    yield _header(_stamped(info, timestamp))
    yield from _spooled_content(spooled)
    yield _padding(info.size)
