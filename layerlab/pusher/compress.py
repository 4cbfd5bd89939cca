"""Deterministic streaming compression, hashing the input and the output in one pass.

gzip is framed like pigz: the input is cut into fixed-size blocks; each block is
deflated on its own (priming the dictionary with the previous block's last 32 KiB and
ending with a sync flush), so blocks can be compressed on several threads while the
output stays **byte-identical whatever the thread count**. The output depends only on
``(engine, level, block_size)`` and the input: a re-push of the same layer gives the same
blob digest, so registries deduplicate it. The gzip header carries no name and mtime 0.

``isal`` (ISA-L, about 600 MB/s per thread at level 1) and ``zlib`` both release the GIL,
so the block compressions really run in parallel. ``zstd`` uses the ``zstandard``
library's own worker threads (its multi-threaded output does not depend on the worker
count either). ``zstd:chunked`` (:mod:`.zstdchunked`) is zstd cut into one frame per file
chunk, with a table of contents for partial pulls; its frames are compressed on the
calling thread, and after iteration the stream's ``annotations`` are the ones its layer
descriptor must carry.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping

from ..digest import Digest, Hasher

__all__ = ["CompressionSettings", "CompressingStream", "gzip_frames", "zstd_frames", "read_full",
           "GZIP_HEADER", "COMPRESSIONS"]

COMPRESSIONS = ("gzip", "zstd", "zstd:chunked", "none")
"""The values of :attr:`CompressionSettings.compression`."""

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""gzip header: deflate, no flags, mtime 0, no extra flags, OS 'unknown'."""
_FINAL_EMPTY_BLOCK = b"\x03\x00"  # a final, empty, fixed-Huffman deflate block
_WINDOW = 32 * 1024


@dataclass(frozen=True)
class CompressionSettings:
    """What determines a compressed blob's bytes (and so its digest).

    ``threads`` is not part of the identity: it changes speed, never the output.
    """

    compression: str = "gzip"  # gzip | zstd | zstd:chunked | none
    engine: str = "isal"       # isal | zlib for gzip; zstandard for zstd and zstd:chunked
    level: int = 1
    block_size: int = 1 << 20
    threads: int = 1

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {self.compression!r} "
                             "(gzip, zstd, zstd:chunked or none)")
        if self.compression == "gzip":
            if self.engine not in ("isal", "zlib"):
                raise ValueError(f"unknown gzip engine {self.engine!r} (isal or zlib)")
            top = 3 if self.engine == "isal" else 9
            if not 0 <= self.level <= top:
                raise ValueError(f"{self.engine} level must be 0..{top}, not {self.level}")
        if self.block_size < 64 * 1024:
            raise ValueError("compression block size must be at least 64 KiB")

    @classmethod
    def from_profile(cls, profile: Any, threads: int = 1) -> "CompressionSettings":
        engine = profile.engine
        zstd = profile.compression in ("zstd", "zstd:chunked")
        if zstd:
            engine = "zstandard"
        level = profile.level
        if zstd and profile.level < 1:
            level = 3
        return cls(profile.compression, engine, level,
                   getattr(profile, "block_size", 1 << 20), max(1, threads))

    @property
    def key(self) -> str:
        """The digest-cache key part: equal keys mean equal output bytes."""
        if self.compression == "none":
            return "none"
        if self.compression == "zstd":
            return f"zstd/zstandard/{self.level}/mt"
        if self.compression == "zstd:chunked":  # c1: the framing of .zstdchunked
            return f"zstd:chunked/zstandard/{self.level}/c1"
        return f"gzip/{self.engine}/{self.level}/{self.block_size}"

    @property
    def blob_compression(self) -> str:
        """What the output bytes are to a decompressor (and to media types):
        ``zstd:chunked`` is zstd."""
        return "zstd" if self.compression == "zstd:chunked" else self.compression


def read_full(read: Callable[[int], bytes], n: int) -> bytes:
    """Read exactly ``n`` bytes unless the stream ends first (block boundaries must not
    depend on how the source happens to split its reads)."""
    data = read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _deflate_block(engine: str, level: int, block: bytes, zdict: bytes) -> bytes:
    if engine == "isal":
        from isal import isal_zlib as z
    else:
        z = zlib  # type: ignore[assignment]
    if zdict:
        c = z.compressobj(level, z.DEFLATED, -15, 9 if engine == "isal" else 8, 0, zdict)
    else:
        c = z.compressobj(level, z.DEFLATED, -15, 9 if engine == "isal" else 8, 0)
    return c.compress(block) + c.flush(z.Z_SYNC_FLUSH)


class BlobStream:
    """Bytes for an HTTP body, as an iterator of chunks: everything produced is hashed
    (``digest``/``size_out``); the first ``skip`` bytes are dropped from what is yielded
    (resuming an upload: the output is deterministic, so regenerating it and skipping the
    prefix the registry already has is exact). Subclasses provide :meth:`_chunks`."""

    size_in = 0
    annotations: Mapping[str, str] = MappingProxyType({})
    """Annotations the blob's descriptor must carry (set after full iteration)."""

    def __init__(self, source: BinaryIO, skip: int = 0,
                 on_input: Callable[[int], None] | None = None) -> None:
        self.source = source
        self.skip = skip
        self.on_input = on_input
        self._out = Hasher()
        self.finished = False

    @property
    def digest(self) -> Digest:
        return self._out.digest()

    @property
    def size_out(self) -> int:
        return self._out.size

    def close(self) -> None:
        self.source.close()

    def _chunks(self) -> Iterator[bytes]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks():
            self._out.update(chunk)
            if self.skip:
                if len(chunk) <= self.skip:
                    self.skip -= len(chunk)
                    continue
                chunk = chunk[self.skip:]
                self.skip = 0
            yield chunk
        self.finished = True


class CompressingStream(BlobStream):
    """Iterate over a source's compressed bytes, hashing input and output as they pass.

    ``source`` is the uncompressed tar. After full iteration ``diff_id``/``size_in``,
    ``digest``/``size_out`` and ``annotations`` (zstd:chunked's TOC position and checksum;
    empty for the other compressions) are set. ``pool`` (optional) runs block compressions
    concurrently (gzip); at most ``window`` blocks of this stream are in flight;
    ``spread()`` (optional) is asked before each block whether to hand it to the pool (the
    pusher says no while enough other layers keep the cores busy: handing blocks between
    threads then only costs). ``skip`` and ``on_input(n)`` (called as input is consumed, for
    progress) as in :class:`BlobStream`.
    """

    def __init__(self, source: BinaryIO, settings: CompressionSettings,
                 pool: Executor | None = None, window: int = 3, skip: int = 0,
                 on_input: Callable[[int], None] | None = None,
                 spread: Callable[[], bool] | None = None) -> None:
        super().__init__(source, skip, on_input)
        self.settings = settings
        self.pool = pool if settings.threads > 1 else None
        self.window = max(1, window)
        self.spread = spread
        self._in = Hasher()
        self.annotations: dict[str, str] = {}

    @property
    def diff_id(self) -> Digest:
        return self._in.digest()

    @property
    def size_in(self) -> int:  # type: ignore[override]
        return self._in.size

    def _chunks(self) -> Iterator[bytes]:
        kind = self.settings.compression
        return (self._gzip() if kind == "gzip" else
                self._zstd() if kind == "zstd" else
                self._zstd_chunked() if kind == "zstd:chunked" else self._plain())

    def _blocks(self) -> Iterator[bytes]:
        read = self.source.read
        size = self.settings.block_size
        while True:
            block = read_full(read, size)
            if not block:
                return
            self._in.update(block)
            if self.on_input is not None:
                self.on_input(len(block))
            yield block
            if len(block) < size:
                return

    def _plain(self) -> Iterator[bytes]:
        yield from self._blocks()

    def _gzip(self) -> Iterator[bytes]:
        return gzip_frames(self._blocks(), self.settings.engine, self.settings.level,
                           self.pool, self.window, self.spread)

    def _zstd(self) -> Iterator[bytes]:
        return zstd_frames(self._blocks(), self.settings.level, self.settings.threads)

    def _zstd_chunked(self) -> Iterator[bytes]:
        from .zstdchunked import ChunkedWriter

        writer = ChunkedWriter(self.settings.level)
        yield from writer.frames(self._blocks())
        self.annotations = dict(writer.annotations)


def gzip_frames(blocks: Iterable[bytes], engine: str, level: int,
                pool: Executor | None = None, window: int = 3,
                spread: Callable[[], bool] | None = None) -> Iterator[bytes]:
    """A gzip member of consecutive input ``blocks``, framed as described above: the
    compression alone (no hashing), as :class:`CompressingStream` and the simulator's
    calibration run it. ``pool`` deflates up to ``window`` blocks concurrently, each
    block for which ``spread()`` (if given) is true; the others are deflated on the
    calling thread, in turn. The bytes are the same either way."""
    crc_fn = zlib.crc32
    if engine == "isal":
        from isal import isal_zlib

        crc_fn = isal_zlib.crc32
    yield GZIP_HEADER
    crc = 0
    total = 0
    previous = b""
    pending: deque[Any] = deque()
    for block in blocks:
        crc = crc_fn(block, crc)
        total += len(block)
        zdict = previous[-_WINDOW:]
        previous = block
        if pool is None or (spread is not None and not spread()):
            while pending:
                yield pending.popleft().result()
            yield _deflate_block(engine, level, block, zdict)
            continue
        pending.append(pool.submit(_deflate_block, engine, level, block, zdict))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
    yield _FINAL_EMPTY_BLOCK + struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF)


def zstd_frames(blocks: Iterable[bytes], level: int, threads: int = 1) -> Iterator[bytes]:
    """A zstd frame of consecutive input ``blocks`` (the ``zstandard`` library's own
    worker threads; its output does not depend on their number), no hashing."""
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(level, threads=max(1, threads))
    cobj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    for block in blocks:
        out = cobj.compress(block)
        if out:
            yield out
    yield cobj.flush()
