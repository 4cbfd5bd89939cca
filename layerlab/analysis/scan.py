"""Fast header-only scans of layer tars, with the offset of each file's data.

The analyses need every layer's headers (paths, types, sizes, modes) but rarely the file
data. :func:`scan_layer` parses POSIX ustar, pax and GNU long-name headers directly
(4.4x faster than :mod:`tarfile`: 411 ms vs 1,810 ms for ``getmembers()`` on a 100,000-entry
layer, ``benchmarks/bench_handwritten.py``), seeks over file data when the layer is an
uncompressed file on disk and reads past it otherwise. Layouts it does not parse itself
(GNU sparse files, multi-volume members) fall back to :meth:`Layer.entries`.

Entries are :class:`~layerlab.tarstream.TarEntry` tuples with their ``offset``, where the
file's data starts in the uncompressed tar (``-1`` unknown).
"""

from __future__ import annotations

import posixpath
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Sequence

from ..errors import CorruptArchiveError
from ..model import Layer
from ..tarstream import OPAQUE_MARKER, WHITEOUT_PREFIX, TarEntry, normalize_path

__all__ = ["LayerScan", "scan_layer", "scan_layers"]

BLOCK = 512
_SEEK_WINDOW = 4096          # bytes read per header on seekable layers (often holds the next)
_STREAM_WINDOW = 256 * 1024  # bytes read at a time from streams
_TYPES = {b"0": "file", b"\0": "file", b"7": "file", b"5": "dir", b"2": "symlink",
          b"1": "hardlink", b"3": "char", b"4": "block", b"6": "fifo"}
_ZERO_BLOCK = bytes(BLOCK)
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2x32x32x8x8x155s12x")
_EXTENDED = (b"x", b"g", b"L", b"K")
_UNSUPPORTED = (b"S", b"M", b"V")


@dataclass(frozen=True)
class LayerScan:
    """The headers of one layer: its entries in tar order and the tar's byte count.

    ``seekable`` tells whether ``offset`` values can be used to read file data directly
    from :meth:`Layer.opener` (uncompressed layers stored as files).
    """

    layer: Layer
    entries: tuple[TarEntry, ...]
    tar_size: int
    seekable: bool

    @property
    def file_bytes(self) -> int:
        """Sum of the sizes of all entries (what dive calls the layer size)."""
        return sum(e.size for e in self.entries)


class _UnsupportedTar(Exception):
    """A tar feature the fast scanner leaves to :mod:`tarfile`."""


class _Window:
    """Random-access (seekable) or forward-only (stream) reads of a tar by offset."""

    def __init__(self, stream: BinaryIO, seekable: bool, what: str) -> None:
        self.stream = stream
        self.seekable = seekable
        self.what = what
        self.buf = b""
        self.start = 0
        self.total: int | None = None
        self.pread = getattr(stream, "pread", None) if seekable else None
        if seekable:
            self.total = stream.seek(0, 2)

    def get(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset`` (fewer only at the end of the tar)."""
        start = self.start
        end = start + len(self.buf)
        if start <= offset and offset + n <= end:
            return self.buf[offset - start: offset - start + n]
        if self.seekable:
            if self.pread is not None:  # FileSection: one os.pread, no seek
                self.buf = self.pread(max(n, _SEEK_WINDOW), offset)
            else:
                self.stream.seek(offset)
                self.buf = self.stream.read(max(n, _SEEK_WINDOW))
            self.start = offset
            return self.buf[:n]
        if offset < start:
            raise AssertionError("forward-only window moved backwards")
        if offset >= end:
            self._skip(offset - end)
            keep = b""
        else:
            keep = self.buf[offset - start:]
        more = self._read(max(n - len(keep), _STREAM_WINDOW))
        self.buf = keep + more
        self.start = offset
        return self.buf[:n]

    def _read(self, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            data = self.stream.read(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        while n > 0:
            data = self.stream.read(min(n, 1 << 20))
            if not data:
                raise CorruptArchiveError(f"{self.what}: truncated tar (file data cut short)")
            n -= len(data)

    def drain(self) -> int:
        """Read a stream to its end; return the total number of bytes it held."""
        end = self.start + len(self.buf)
        while True:
            data = self.stream.read(1 << 20)
            if not data:
                return end
            end += len(data)


def _number(field: bytes, what: str) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise CorruptArchiveError(f"{what}: not a valid tar (bad number field {field!r})") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes, what: str) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos:pos + 1] not in (b"\0", b""):
        space = data.find(b" ", pos)
        if space < 0:
            raise CorruptArchiveError(f"{what}: not a valid tar (bad pax record)")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise CorruptArchiveError(f"{what}: not a valid tar (bad pax record)") from None
        record = data[space + 1: pos + length - 1]
        key, sep, value = record.partition(b"=")
        if length <= 0 or not sep:
            raise CorruptArchiveError(f"{what}: not a valid tar (bad pax record)")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _entry(name: str, kind: str, size: int, mode: int, uid: int, gid: int,
           mtime: float, linkname: str, offset: int, what: str) -> TarEntry | None:
    """A :class:`TarEntry`, path normalised as :func:`~layerlab.tarstream.normalize_path`
    does (a fast path for the common clean names)."""
    path = name.rstrip("/")
    if path[:2] == "./":
        path = path[2:]
    if not path or path[0] in "/." or "//" in path or "/." in path:
        path = normalize_path(name, what)
        if not path:
            return None
    if kind == "hardlink":
        linkname = normalize_path(linkname, what)
    whiteout, opaque = None, False
    if WHITEOUT_PREFIX in path:
        base = posixpath.basename(path)
        if base.startswith(WHITEOUT_PREFIX):
            parent = posixpath.dirname(path)
            if base == OPAQUE_MARKER:
                whiteout, opaque = parent, True
            else:
                whiteout = posixpath.join(parent, base[len(WHITEOUT_PREFIX):])
    if kind != "file":
        size, offset = 0, -1
    return TarEntry(path, kind, size, mode, uid, gid, mtime, linkname, whiteout, opaque,
                        offset)


def _scan(window: _Window, what: str) -> tuple[list[TarEntry], int]:
    """Parse headers from ``window``; return the entries and the offset after the last.

    The loop is written for speed (it runs once per tar member): the common case - a
    ustar header in the current window, clean octal fields, a clean path - takes no
    function calls beyond the builtins.
    """
    entries: list[TarEntry] = []
    append = entries.append
    unpack = _HEADER.unpack
    adler32 = zlib.adler32
    make = TarEntry
    types = _TYPES
    offset = 0
    pax_global: dict[str, str] = {}
    pax: dict[str, str] = {}
    long_name: str | None = None
    long_link: str | None = None
    total = window.total
    while True:
        buf_start = window.start
        if buf_start <= offset and offset + BLOCK <= buf_start + len(window.buf):
            header = window.buf[offset - buf_start: offset - buf_start + BLOCK]
        else:
            header = window.get(offset, BLOCK)
            if len(header) < BLOCK:
                if not header and not pax and long_name is None and long_link is None:
                    return entries, offset  # no end-of-archive blocks: tolerated, as tarfile
                raise CorruptArchiveError(f"{what}: truncated tar (header cut short)")
        if header == _ZERO_BLOCK:
            return entries, offset + BLOCK
        (f_name, f_mode, f_uid, f_gid, f_size, f_mtime, f_chksum, typeflag, f_link,
         magic, f_prefix) = unpack(header)
        try:
            size = int(f_size.rstrip(b"\0 ") or b"0", 8)
            checksum = int(f_chksum.rstrip(b"\0 ") or b"0", 8)
        except ValueError:
            size = _number(f_size, what)
            checksum = _number(f_chksum, what)
        # adler32's low half is 1 + sum(bytes) mod 65521: a C-speed stand-in for sum();
        # the stored checksum counts its own field as eight spaces
        if (adler32(header) & 0xFFFF) != (checksum - 255 + sum(f_chksum)) % 65521:
            raise CorruptArchiveError(f"{what}: not a valid tar (bad header checksum at "
                                      f"offset {offset})")
        data_offset = offset + BLOCK
        offset = data_offset + (size + 511) // 512 * 512
        if typeflag in _EXTENDED:
            data = window.get(data_offset, size)
            if len(data) < size:
                raise CorruptArchiveError(f"{what}: truncated tar (extended header cut short)")
            if typeflag == b"x":
                pax.update(_pax_records(data, what))
            elif typeflag == b"g":
                pax_global.update(_pax_records(data, what))
            elif typeflag == b"L":
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            else:
                long_link = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        if typeflag in _UNSUPPORTED or (pax and ("GNU.sparse.major" in pax
                                                 or "GNU.sparse.size" in pax)):
            raise _UnsupportedTar(typeflag)
        name = f_name.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if f_prefix[0] and magic == b"ustar\0":
            name = _text(f_prefix) + "/" + name
        linkname = f_link.split(b"\0", 1)[0].decode("utf-8", "surrogateescape") \
            if f_link[0] else ""
        try:
            mode = int(f_mode.rstrip(b"\0 ") or b"0", 8)
            uid = int(f_uid.rstrip(b"\0 ") or b"0", 8)
            gid = int(f_gid.rstrip(b"\0 ") or b"0", 8)
            mtime: float = int(f_mtime.rstrip(b"\0 ") or b"0", 8)
        except ValueError:
            mode, uid, gid = (_number(f, what) for f in (f_mode, f_uid, f_gid))
            mtime = _number(f_mtime, what)
        if long_name is not None:
            name, long_name = long_name, None
        if long_link is not None:
            linkname, long_link = long_link, None
        if pax or pax_global:
            fields = {**pax_global, **pax}
            name = fields.get("path", name)
            linkname = fields.get("linkpath", linkname)
            try:
                if "size" in fields:
                    size = int(fields["size"])
                    offset = data_offset + (size + 511) // 512 * 512
                uid = int(fields.get("uid", uid))
                gid = int(fields.get("gid", gid))
                mtime = float(fields.get("mtime", mtime))
            except ValueError:
                raise CorruptArchiveError(f"{what}: not a valid tar (bad pax value)") from None
            pax = {}
        kind = types.get(typeflag, "file")
        if kind == "file":
            if typeflag == b"\0" and name.endswith("/"):
                kind = "dir"
                offset = data_offset
            elif total is not None and data_offset + size > total:
                raise CorruptArchiveError(f"{what}: truncated tar ({name!r} data cut short)")
        else:
            offset = data_offset  # header-only types carry no data, whatever size says
        path = name.rstrip("/")
        if path[:2] == "./":
            path = path[2:]
        if (kind == "file" and path and path[0] not in "/." and "//" not in path
                and "/." not in path):
            append(make(path, "file", size, mode, uid, gid, mtime, linkname, None, False,
                        data_offset))
            continue
        entry = _entry(name, kind, size, mode, uid, gid, mtime, linkname, data_offset, what)
        if entry is not None:
            append(entry)


def scan_layer(layer: Layer) -> LayerScan:
    """All headers of ``layer`` (see the module docstring); raises
    :class:`~layerlab.errors.CorruptArchiveError` for a truncated or corrupt tar."""
    what = f"layer {layer.digest}"
    seekable = bool(layer.seekable and layer.compression == "none")
    try:
        if seekable:
            with layer.opener() as stream:
                window = _Window(stream, True, what)
                entries, end = _scan(window, what)
                tar_size = window.total or end
        else:
            with layer.open_uncompressed(verify=False) as stream:
                window = _Window(stream, False, what)
                entries, _ = _scan(window, what)
                tar_size = window.drain()
        return LayerScan(layer, tuple(entries), tar_size, seekable)
    except _UnsupportedTar:
        pass
    slow = list(layer.entries())
    tar_size = layer.uncompressed_size
    if tar_size is None:
        with layer.open_uncompressed(verify=False) as stream:
            tar_size = _Window(stream, False, what).drain()
    return LayerScan(layer, tuple(slow), tar_size, False)


def scan_layers(layers: Sequence[Layer], workers: int | None = None) -> list[LayerScan]:
    """:func:`scan_layer` for each layer; layers with the same digest are scanned once.

    Compressed and remote layers are scanned in up to ``workers`` threads (decompression
    and network reads release the GIL); uncompressed layers on disk are pure parsing
    work, scanned in the calling thread meanwhile (threads would only add contention).
    """
    unique: dict[str, Layer] = {}
    for layer in layers:
        unique.setdefault(str(layer.digest), layer)
    local = [layer for layer in unique.values() if layer.seekable and layer.compression == "none"]
    streamed = [layer for layer in unique.values() if not (layer.seekable and layer.compression == "none")]
    done: dict[str, LayerScan] = {}
    if workers is None:
        workers = min(4, len(streamed))
    if streamed and workers > 1 and len(streamed) > 1:
        with ThreadPoolExecutor(workers) as pool:
            futures = {str(layer.digest): pool.submit(scan_layer, layer) for layer in streamed}
            for layer in local:
                done[str(layer.digest)] = scan_layer(layer)
            for key, future in futures.items():
                done[key] = future.result()
    else:
        for layer in local + streamed:
            done[str(layer.digest)] = scan_layer(layer)
    return [done[str(layer.digest)] for layer in layers]
