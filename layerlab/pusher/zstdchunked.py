"""zstd:chunked: a zstd layer whose files can be fetched one by one (partial pulls).

The format is the one containers/storage writes (as in skopeo 1.9 / c/storage 1.43):
a plain zstd stream of several frames, which any zstd decoder turns back into the
exact layer tar, followed by two skippable frames that decoders ignore::

    [frame: tar headers (and the padding before them)]       one or more entries' headers
    [frame: chunk 1 of a file's content] [frame: chunk 2] ...  one frame per chunk
    [frame: next headers] ...
    [frame: padding and end-of-archive blocks, anything after]
    [skippable frame 0x184D2A50: zstd-compressed TOC JSON]
    [skippable frame 0x184D2A50, 40 bytes: TOC offset, compressed length, uncompressed
     length, TOC type (1), each u64 little-endian, then the magic "GnUlInUx"]

A file's content is cut into chunks by a bup-style rolling checksum (64-byte window,
a cut after a byte where the low 16 bits of the second sum are all ones) and at runs of
at least 1,024 zero bytes, each run its own chunk of type ``zeros``; files without
content leave their headers in the current frame. The TOC (``{"version": 1,
"entries": [...]}``) has one entry per tar entry (type, name, linkName, mode, size,
uid, gid, modtime/accesstime/changetime, devMajor/devMinor, xattrs base64-encoded,
content digest, the blob offsets of its first frame and past its last) and, for files
of more than one chunk, the chunk fields on that entry and one ``chunk`` entry for each
further chunk (offset in the blob, chunkOffset in the file, chunkSize, chunkDigest,
chunkType ``zeros`` for zero runs). Fields are Go's ``omitempty`` ones: zeros and empty
strings are left out. The layer descriptor carries two annotations: the TOC's position
``offset:length:lengthUncompressed:1`` and the sha256 of its compressed bytes.

Frames are compressed with the ``zstandard`` library, one frame at a time on the
calling thread: the output depends only on the input and the level. Times are written
in UTC (c/storage writes them in its local time zone, the same instants). For the same
tar, the TOC equals skopeo 1.9.3's in every field but the blob offsets (``offset``,
``endOffset``), which depend on the encoder (tests/test_push_zstdchunked.py). Unlike
c/storage 1.43, whatever follows the tar's end blocks (record padding) is kept in the
last frame, so the blob always decompresses to the exact input.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator

from ..errors import ZstdChunkedError

__all__ = ["ChunkedWriter", "read_toc", "TOC_CHECKSUM", "TOC_POSITION", "FOOTER_SIZE"]

TOC_CHECKSUM = "io.containers.zstd-chunked.manifest-checksum"
TOC_POSITION = "io.containers.zstd-chunked.manifest-position"
TOC_TYPE_CRFS = 1
FOOTER_MAGIC = b"GnUlInUx"
FOOTER_SIZE = 40
_SKIPPABLE = struct.pack("<I", 0x184D2A50)

_BLOCK = 512
_PIECE = 256 * 1024        # file content is read and split this much at a time
_HOLE = 1024               # a zero run at least this long is a chunk of its own
_WINDOW = 64
_SPLIT_MASK = 0xFFFF       # 16 bits
# bup's rolling sum starts with s2 = 64*63*31 over a window of zeros and adds, per byte,
# s1 - 64*(dropped byte + 31): after any byte, s2 = W + 64*63*31 (mod 2**32), W the
# window's bytes weighted 1 (newest) to 64 (oldest). W is computed for a whole segment
# at once from prefix sums, so content never goes through a per-byte Python loop.
_S2_OFFSET = 64 * 63 * 31
_CUT_VALUE = (_SPLIT_MASK - _S2_OFFSET) & 0xFFFF  # W (mod 2**16) after which a chunk ends

_TYPES = {b"0": "reg", b"\0": "reg", b"1": "hardlink", b"2": "symlink", b"3": "char",
          b"4": "block", b"5": "dir", b"6": "fifo"}
_HEADER_ONLY = {b"1", b"2", b"3", b"4", b"5", b"6"}


# ------------------------------------------------------------------------ tar headers
def _number(field_: bytes) -> int:
    """A tar numeric field: octal text, or base-256 when the high bit is set."""
    if field_ and field_[0] & 0x80:
        value = int.from_bytes(bytes([field_[0] & 0x7F]) + field_[1:], "big")
        if field_[0] == 0xFF:
            value -= 1 << (8 * len(field_) - 1)
        return value
    text = field_.split(b"\0", 1)[0].strip(b" \0")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise ZstdChunkedError(f"tar header: invalid number {field_!r}") from None


def _text(raw: bytes) -> str:
    # invalid UTF-8 survives as surrogates, which the TOC JSON writes as Go does (\ufffd)
    return raw.decode("utf-8", "surrogateescape")


def _string(field_: bytes) -> str:
    return _text(field_.split(b"\0", 1)[0])


def _pax_records(data: bytes) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise ZstdChunkedError("tar: invalid PAX record") from None
        record = data[space + 1:pos + length - 1]  # without the trailing newline
        key, _, value = record.partition(b"=")
        records[_text(key)] = value
        pos += length
    return records


def _pax_time(text: str) -> tuple[int, int]:
    """``sec[.frac]`` as (seconds, nanoseconds), truncated like Go's tar reader."""
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    seconds = int(whole or "0")
    nanos = int((frac + "000000000")[:9]) if frac else 0
    if negative:
        seconds, nanos = -seconds, -nanos
        if nanos:
            seconds, nanos = seconds - 1, nanos + 1_000_000_000
    return seconds, nanos


_DAYS_TO_EPOCH = 719162  # days from 0001-01-01 to 1970-01-01


def _rfc3339(seconds: int, nanos: int = 0) -> str:
    """Go's ``time.Time`` JSON (RFC 3339 with nanoseconds, trailing zeros dropped), UTC."""
    import datetime

    days, rest = divmod(seconds, 86400)
    try:
        date = datetime.date.fromordinal(days + _DAYS_TO_EPOCH + 1)
    except (ValueError, OverflowError):
        raise ZstdChunkedError(f"tar: time {seconds} is outside years 1-9999") from None
    hh, rest = divmod(rest, 3600)
    mm, ss = divmod(rest, 60)
    text = f"{date.year:04d}-{date.month:02d}-{date.day:02d}T{hh:02d}:{mm:02d}:{ss:02d}"
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class _Header:
    """One tar entry as Go's archive/tar reports it (what the TOC records)."""

    typeflag: bytes
    name: str
    linkname: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: str
    atime: str = _ZERO_TIME
    ctime: str = _ZERO_TIME
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, str] = field(default_factory=dict)

    @property
    def content_size(self) -> int:
        return 0 if self.typeflag in _HEADER_ONLY else self.size


def _checksum_ok(block: bytes) -> bool:
    """The header checksum, unsigned as POSIX says or signed as some old tars wrote it."""
    stored = _number(block[148:156])
    rest = block[:148] + block[156:]
    unsigned = sum(rest) + 8 * 32
    if stored == unsigned:
        return True
    return stored == unsigned - 256 * sum(1 for b in rest if b > 127)


def _parse_header(block: bytes, pax: dict[str, bytes], long_name: str | None,
                  long_link: str | None) -> _Header:
    magic = block[257:265]
    name = _string(block[0:100])
    if magic[:6] == b"ustar\0":
        prefix = _string(block[345:500])
        if prefix:
            name = f"{prefix}/{name}"
    typeflag = block[156:157] or b"\0"
    header = _Header(typeflag, name, _string(block[157:257]), _number(block[100:108]),
                     _number(block[108:116]), _number(block[116:124]), _number(block[124:136]),
                     _rfc3339(_number(block[136:148])))
    if magic[:6] in (b"ustar\0", b"ustar "):
        header.devmajor = _number(block[329:337])
        header.devminor = _number(block[337:345])
    if magic == b"ustar  \0":  # GNU: access and change times in the prefix area
        if block[345]:
            header.atime = _rfc3339(_number(block[345:357]))
        if block[357]:
            header.ctime = _rfc3339(_number(block[357:369]))
    if long_name is not None:
        header.name = long_name
    if long_link is not None:
        header.linkname = long_link
    for key, value in pax.items():
        try:
            if key == "path":
                header.name = _text(value)
            elif key == "linkpath":
                header.linkname = _text(value)
            elif key in ("size", "uid", "gid"):
                setattr(header, key, int(value))
            elif key in ("mtime", "atime", "ctime"):
                setattr(header, key, _rfc3339(*_pax_time(value.decode("ascii"))))
        except ValueError:
            raise ZstdChunkedError(f"tar: invalid PAX record {key}={value!r}") from None
        if key.startswith("SCHILY.xattr."):
            header.xattrs[key[len("SCHILY.xattr."):]] = base64.b64encode(value).decode()
        elif key.startswith("GNU.sparse."):
            raise ZstdChunkedError(f"tar entry {header.name!r}: sparse files cannot be "
                                   "written as zstd:chunked")
    if header.typeflag == b"\0" and header.name.endswith("/"):
        header.typeflag = b"5"  # a legacy archive marks directories by the trailing slash
    if header.typeflag not in _TYPES:
        raise ZstdChunkedError(f"tar entry {header.name!r}: type {header.typeflag!r} cannot "
                               "be written as zstd:chunked")
    return header


# ---------------------------------------------------------------------- rolling sums
class _Splitter:
    """Cuts one file's content into chunks: events ``("data", bytes)`` (append to the
    open data chunk), ``("cut",)`` (close it) and ``("zeros", n)`` (a zero-run chunk)."""

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._context = np.zeros(_WINDOW - 1, dtype=np.uint8)  # the window before the data
        self._carry = 0  # zeros at the end of the last piece, not yet classified
        self._hole = 0   # length of the zero run being read (>= _HOLE)

    def feed(self, piece: bytes) -> list[tuple]:
        np = self._np
        data = np.frombuffer(piece, dtype=np.uint8)
        events: list[tuple] = []
        if self._hole:
            nonzero = np.flatnonzero(data)
            if not len(nonzero):
                self._hole += len(data)
                return events
            self._hole += int(nonzero[0])
            events.append(("zeros", self._hole))
            self._hole = 0
            self._context[:] = 0
            data = data[int(nonzero[0]):]
        if self._carry:
            data = np.concatenate([np.zeros(self._carry, dtype=np.uint8), data])
            self._carry = 0
        self._process(data, events, final=False)
        return events

    def finish(self) -> list[tuple]:
        np = self._np
        events: list[tuple] = []
        if self._hole:
            events.append(("zeros", self._hole))
            self._hole = 0
        elif self._carry:
            self._process(np.zeros(self._carry, dtype=np.uint8), events, final=True)
            self._carry = 0
        events.append(("cut",))
        return events

    def _process(self, data: Any, events: list[tuple], final: bool) -> None:
        np = self._np
        n = len(data)
        if not n:
            return
        zero = np.concatenate([[False], data == 0, [False]])
        edges = np.flatnonzero(zero[1:] != zero[:-1])
        starts, ends = edges[0::2], edges[1::2]
        long_runs = (ends - starts) >= _HOLE
        pos = 0
        for start, end in zip(starts[long_runs].tolist(), ends[long_runs].tolist()):
            if end == n and not final:
                self._data(data[pos:start], events)
                self._hole = end - start
                return
            self._data(data[pos:start], events)
            events.append(("zeros", end - start))
            self._context[:] = 0
            pos = end
        if not final and len(ends) and ends[-1] == n and not long_runs[-1]:
            self._carry = int(ends[-1] - starts[-1])
            n -= self._carry
        self._data(data[pos:n], events)

    def _data(self, seg: Any, events: list[tuple]) -> None:
        np = self._np
        if not len(seg):
            return
        # mod 2**16 (all the cut test looks at), W for the window ending at y[m], lo = m-63:
        # W = sum_{t=lo..m} (m+1-t)*y[t] = (q[m+2] - q[lo+1]) - 64*p1[lo], with p1 the
        # prefix sums of y and q those of p1; uint16 arithmetic wraps exactly so.
        y = np.concatenate([self._context, seg])
        n = len(seg)
        p1 = np.zeros(len(y) + 1, dtype=np.uint16)
        np.cumsum(y, dtype=np.uint16, out=p1[1:])
        q = np.zeros(len(y) + 2, dtype=np.uint16)
        np.cumsum(p1, dtype=np.uint16, out=q[1:])
        weighted = q[_WINDOW + 1:_WINDOW + 1 + n] - q[1:1 + n] - (p1[:n] << 6)
        cuts = np.flatnonzero(weighted == _CUT_VALUE)
        pos = 0
        raw = seg.tobytes()
        for k in cuts.tolist():
            events.append(("data", raw[pos:k + 1]))
            events.append(("cut",))
            pos = k + 1
        if pos < len(raw):
            events.append(("data", raw[pos:]))
        self._context = y[-(_WINDOW - 1):]


# ---------------------------------------------------------------------------- writer
class _Input:
    """Exact-size reads from an iterator of byte blocks."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks = iter(blocks)
        self._buffer = bytearray()
        self._pos = 0

    def read(self, n: int) -> bytes:
        while len(self._buffer) - self._pos < n:
            block = next(self._blocks, None)
            if block is None:
                break
            if self._pos:
                del self._buffer[:self._pos]
                self._pos = 0
            self._buffer += block
        out = bytes(self._buffer[self._pos:self._pos + n])
        self._pos += len(out)
        return out

    def rest(self) -> Iterator[bytes]:
        if self._pos < len(self._buffer):
            yield bytes(self._buffer[self._pos:])
        self._buffer = bytearray()
        self._pos = 0
        yield from self._blocks


_GO_ESCAPES = {"\\b": "\\u0008", "\\f": "\\u000c", "<": "\\u003c", ">": "\\u003e",
               "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPE = re.compile("\\\\.|[<>&\u2028\u2029\udc80-\udcff]")


def _go_json(value: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, ``<>&`` and U+2028/9 escaped,
    ``\\u0008``/``\\u000c`` for backspace and form feed, ``\\ufffd`` for invalid UTF-8."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = _GO_ESCAPE.sub(
        lambda m: _GO_ESCAPES.get(m.group(), "\\ufffd" if len(m.group()) == 1
                                  and "\udc80" <= m.group() <= "\udcff" else m.group()),
        text)
    return text.encode("utf-8")


def _entry(header: _Header) -> dict[str, Any]:
    """A TOC entry's header fields, in Go's field order, empty ones left out."""
    out: dict[str, Any] = {"type": _TYPES[header.typeflag], "name": header.name}
    for key, value in (("linkName", header.linkname), ("mode", header.mode),
                       ("size", header.size), ("uid", header.uid), ("gid", header.gid)):
        if value:
            out[key] = value
    out["modtime"] = header.mtime
    out["accesstime"] = header.atime
    out["changetime"] = header.ctime
    if header.devmajor:
        out["devMajor"] = header.devmajor
    if header.devminor:
        out["devMinor"] = header.devminor
    if header.xattrs:
        out["xattrs"] = dict(sorted(header.xattrs.items()))
    return out


class ChunkedWriter:
    """Turns an uncompressed layer tar (an iterator of byte blocks) into a zstd:chunked
    blob, yielded in pieces. After full iteration of :meth:`frames`, ``annotations``
    holds the two descriptor annotations and ``toc`` the TOC entries."""

    def __init__(self, level: int = 3) -> None:
        import zstandard

        self.level = level
        self._cctx = zstandard.ZstdCompressor(level=level, write_checksum=True)
        self._flush = zstandard.COMPRESSOBJ_FLUSH_FINISH
        self.offset = 0
        self.annotations: dict[str, str] = {}
        self.toc: list[dict[str, Any]] = []
        self._frame: Any = None  # the compressobj of the open frame, if any

    # frames ------------------------------------------------------------------------
    def _write(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        if self._frame is None:
            self._frame = self._cctx.compressobj()
        out = self._frame.compress(data)
        if out:
            self.offset += len(out)
            yield out

    def _close(self) -> Iterator[bytes]:
        """End the open frame (none is written for no input, as c/storage's encoder)."""
        if self._frame is None:
            return
        out = self._frame.flush(self._flush)
        self._frame = None
        self.offset += len(out)
        yield out

    def frames(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        """The blob's bytes for the tar in ``blocks``."""
        source = _Input(blocks)
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            block = source.read(_BLOCK)
            if len(block) < _BLOCK or block == bytes(_BLOCK):
                yield from self._write(block)
                break
            if not _checksum_ok(block):
                raise ZstdChunkedError("tar: invalid header checksum")
            yield from self._write(block)
            typeflag = block[156:157]
            if typeflag in (b"x", b"L", b"K"):
                size = _number(block[124:136])
                data = source.read(size + (-size % _BLOCK))
                yield from self._write(data)
                if typeflag == b"x":
                    pax.update(_pax_records(data[:size]))
                elif typeflag == b"L":
                    long_name = _string(data[:size])
                else:
                    long_link = _string(data[:size])
                continue
            if typeflag == b"g":
                raise ZstdChunkedError("tar: a global PAX header cannot be written as "
                                       "zstd:chunked")
            if typeflag == b"S":
                raise ZstdChunkedError("tar: sparse files cannot be written as zstd:chunked")
            header = _parse_header(block, pax, long_name, long_link)
            pax, long_name, long_link = {}, None, None
            entries = [_entry(header)]
            if header.content_size:
                yield from self._content(source, header, entries)
            self.toc.extend(entries)
            padding = -header.content_size % _BLOCK
            if padding:
                yield from self._write(source.read(padding))
        for rest in source.rest():
            yield from self._write(rest)
        yield from self._close()
        yield from self._trailer()

    def _content(self, source: _Input, header: _Header,
                 entries: list[dict[str, Any]]) -> Iterator[bytes]:
        """A file's content as chunk frames; fills in the TOC entries' digests, offsets
        and chunks."""
        yield from self._close()  # the headers before this content are one frame
        start = self.offset
        whole = hashlib.sha256()
        chunks: list[dict[str, Any]] = []
        splitter = _Splitter()
        state: dict[str, Any] = {"hash": None, "start": 0, "offset": 0, "file_pos": 0}

        def open_chunk() -> None:
            state["hash"] = hashlib.sha256()
            state["offset"] = self.offset
            state["start"] = state["file_pos"]

        def cut(kind: str = "") -> Iterator[bytes]:
            yield from self._close()
            size = state["file_pos"] - state["start"]
            if state["hash"] is not None and size:
                chunks.append({"offset": state["offset"], "chunkSize": size,
                               "chunkOffset": state["start"],
                               "chunkDigest": f"sha256:{state['hash'].hexdigest()}",
                               "chunkType": kind})
            state["hash"] = None

        def handle(events: list[tuple]) -> Iterator[bytes]:
            for event in events:
                if event[0] == "data":
                    if state["hash"] is None:
                        open_chunk()
                    data = event[1]
                    state["hash"].update(data)
                    whole.update(data)
                    state["file_pos"] += len(data)
                    yield from self._write(data)
                elif event[0] == "cut":
                    yield from cut()
                else:
                    yield from cut()
                    open_chunk()
                    remaining = event[1]
                    zeros = bytes(min(remaining, _PIECE))
                    while remaining:
                        piece = zeros[:min(remaining, _PIECE)]
                        state["hash"].update(piece)
                        whole.update(piece)
                        state["file_pos"] += len(piece)
                        remaining -= len(piece)
                        yield from self._write(piece)
                    yield from cut("zeros")

        remaining = header.content_size
        while remaining:
            piece = source.read(min(remaining, _PIECE))
            if not piece:
                raise ZstdChunkedError(f"tar entry {header.name!r}: truncated content")
            remaining -= len(piece)
            yield from handle(splitter.feed(piece))
        yield from handle(splitter.finish())
        main = entries[0]
        main["digest"] = f"sha256:{whole.hexdigest()}"
        main["offset"] = start
        main["endOffset"] = self.offset
        if len(chunks) > 1:
            for i, chunk in enumerate(chunks):
                if i:
                    entries.append({"type": "chunk", "name": header.name,
                                    "offset": chunk["offset"]})
                target = entries[i]
                target["offset"] = chunk["offset"]
                target["chunkSize"] = chunk["chunkSize"]
                if chunk["chunkOffset"]:
                    target["chunkOffset"] = chunk["chunkOffset"]
                target["chunkDigest"] = chunk["chunkDigest"]
                if chunk["chunkType"]:
                    target["chunkType"] = chunk["chunkType"]

    def _trailer(self) -> Iterator[bytes]:
        toc_json = _go_json({"version": 1, "entries": self.toc})
        toc = self._cctx.compress(toc_json)
        position = self.offset + 8
        self.annotations = {
            TOC_CHECKSUM: f"sha256:{hashlib.sha256(toc).hexdigest()}",
            TOC_POSITION: f"{position}:{len(toc)}:{len(toc_json)}:{TOC_TYPE_CRFS}",
        }
        footer = struct.pack("<QQQQ", position, len(toc), len(toc_json), TOC_TYPE_CRFS) \
            + FOOTER_MAGIC
        out = (_SKIPPABLE + struct.pack("<I", len(toc)) + toc
               + _SKIPPABLE + struct.pack("<I", FOOTER_SIZE) + footer)
        self.offset += len(out)
        yield out


# ---------------------------------------------------------------------------- reader
def _footer(blob: BinaryIO) -> tuple[int, int, int, int]:
    blob.seek(0, 2)
    end = blob.tell()
    if end < FOOTER_SIZE + 8:
        raise ZstdChunkedError("zstd:chunked: blob too short for a footer")
    blob.seek(end - FOOTER_SIZE - 8)
    frame = blob.read(FOOTER_SIZE + 8)
    if frame[:4] != _SKIPPABLE or frame[-8:] != FOOTER_MAGIC:
        raise ZstdChunkedError("zstd:chunked: no zstd:chunked footer at the end of the blob")
    return struct.unpack("<QQQQ", frame[8:40])  # type: ignore[return-value]


def read_toc(blob_file: BinaryIO | str, annotations: dict[str, str] | None = None
             ) -> list[dict[str, Any]]:
    """The TOC entries of a zstd:chunked blob (a seekable binary file, or a path).

    The TOC is found from the ``manifest-position`` annotation when given, else from the
    footer; with a ``manifest-checksum`` annotation its compressed bytes are verified.
    Entries are dicts with the JSON fields as written (``offset``/``endOffset`` are blob
    offsets: the byte range of a file's frames)."""
    if isinstance(blob_file, str):
        with open(blob_file, "rb") as f:
            return read_toc(f, annotations)
    import zstandard

    annotations = annotations or {}
    if TOC_POSITION in annotations:
        try:
            offset, length, size, kind = (int(x) for x in annotations[TOC_POSITION].split(":"))
        except ValueError:
            raise ZstdChunkedError(f"zstd:chunked: bad {TOC_POSITION} "
                                   f"{annotations[TOC_POSITION]!r}") from None
    else:
        offset, length, size, kind = _footer(blob_file)
    if kind != TOC_TYPE_CRFS:
        raise ZstdChunkedError(f"zstd:chunked: unknown TOC type {kind}")
    blob_file.seek(offset)
    compressed = blob_file.read(length)
    if len(compressed) != length:
        raise ZstdChunkedError("zstd:chunked: the TOC lies past the end of the blob")
    if TOC_CHECKSUM in annotations:
        actual = f"sha256:{hashlib.sha256(compressed).hexdigest()}"
        if actual != annotations[TOC_CHECKSUM]:
            raise ZstdChunkedError(f"zstd:chunked: TOC checksum {actual}, annotation says "
                                   f"{annotations[TOC_CHECKSUM]}")
    try:
        raw = zstandard.ZstdDecompressor().decompress(compressed, max_output_size=size)
        toc = json.loads(raw)
    except (zstandard.ZstdError, ValueError) as exc:
        raise ZstdChunkedError(f"zstd:chunked: unreadable TOC ({exc})") from None
    if len(raw) != size or not isinstance(toc, dict) or not isinstance(toc.get("entries"), list):
        raise ZstdChunkedError("zstd:chunked: the TOC is not what its position says")
    return toc["entries"]

