"""Content comparison of same-size files from two images, in threads.

Files of uncompressed layers on disk are read side by side in chunks (``os.pread``),
stopping at the first difference; files of other layers (compressed, remote) are
sha256-hashed in one forward pass over each layer that holds some.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from .filesystem import FileState
from .scan import LayerScan

__all__ = ["ContentComparer"]

_CHUNK = 1 << 20


def _read_exact(stream, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = stream.read(min(_CHUNK, n - got))
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _compare_batch(scan_a: LayerScan, scan_b: LayerScan,
                   pairs: Sequence[tuple[str, FileState, FileState]]) -> list[str]:
    """Paths of ``pairs`` (files of two seekable layers) whose bytes differ; each pair is
    read side by side in chunks, stopping at the first difference."""
    changed = []
    with scan_a.layer.opener() as fa, scan_b.layer.opener() as fb:
        read_a = getattr(fa, "pread", None) or _positional_reader(fa)
        read_b = getattr(fb, "pread", None) or _positional_reader(fb)
        for path, sa, sb in pairs:
            offset_a, offset_b, left = sa.entry.offset, sb.entry.offset, sa.entry.size
            while left > 0:
                n = min(_CHUNK, left)
                chunk = read_a(n, offset_a)
                if not chunk or chunk != read_b(n, offset_b):
                    changed.append(path)
                    break
                offset_a += len(chunk)
                offset_b += len(chunk)
                left -= len(chunk)
    return changed


def _positional_reader(stream):
    def read(n: int, position: int) -> bytes:
        stream.seek(position)
        return _read_exact(stream, n)
    return read


def _batches(pairs: Sequence[tuple[str, FileState, FileState]],
             limit: int = 16 << 20) -> list[list[tuple[str, FileState, FileState]]]:
    """Pairs grouped by layer pair, in file order, cut into batches of ~``limit`` bytes."""
    out: list[tuple[int, list[tuple[str, FileState, FileState]]]] = []
    groups: dict[tuple[int, int], list[tuple[str, FileState, FileState]]] = {}
    for pair in pairs:
        groups.setdefault((pair[1].layer, pair[2].layer), []).append(pair)
    for group in groups.values():
        group.sort(key=lambda p: p[1].entry.offset)
        batch: list[tuple[str, FileState, FileState]] = []
        total = 0
        for pair in group:
            batch.append(pair)
            total += pair[1].entry.size
            if total >= limit or len(batch) >= 512:
                out.append((total, batch))
                batch, total = [], 0
        if batch:
            out.append((total, batch))
    out.sort(key=lambda t: -t[0])  # big batches first
    return [batch for _, batch in out]


def _hash_layer_files(scan: LayerScan, wanted: set[int]) -> dict[int, str]:
    """sha256 of the files at entry ordinals ``wanted`` of a layer, in one forward pass."""
    out: dict[int, str] = {}
    entries = scan.entries
    if any(entries[i].offset < 0 for i in wanted):  # scanned by tarfile: no offsets
        for ordinal, (entry, content) in enumerate(scan.layer.walk()):
            if ordinal in wanted and content is not None:
                out[ordinal] = _hash_stream(content, entry.size)
        return out
    order = sorted(wanted, key=lambda i: entries[i].offset)
    opener = scan.layer.opener if scan.seekable else \
        (lambda: scan.layer.open_uncompressed(verify=False))
    with opener() as stream:
        position = 0
        for ordinal in order:
            offset, size = entries[ordinal].offset, entries[ordinal].size
            if scan.seekable:
                stream.seek(offset)
            else:
                skip = offset - position
                while skip > 0:
                    data = stream.read(min(_CHUNK, skip))
                    if not data:
                        break
                    skip -= len(data)
            out[ordinal] = _hash_stream(stream, size)
            position = offset + size
    return out


def _hash_stream(stream, size: int) -> str:
    h = hashlib.sha256()
    left = size
    while left > 0:
        data = stream.read(min(_CHUNK, left))
        if not data:
            break
        h.update(data)
        left -= len(data)
    return h.hexdigest()


class ContentComparer:
    """Decides equal/different for pairs of same-size files, in threads."""

    def __init__(self, scans_a: Sequence[LayerScan], scans_b: Sequence[LayerScan],
                 workers: int) -> None:
        self.scans_a, self.scans_b, self.workers = scans_a, scans_b, workers
        self.compared_files = 0
        self.compared_bytes = 0

    def different(self, pairs: Sequence[tuple[str, FileState, FileState]]) -> set[str]:
        direct, hashed = [], []
        for pair in pairs:
            _, sa, sb = pair
            if self.scans_a[sa.layer].seekable and self.scans_b[sb.layer].seekable \
                    and sa.entry.offset >= 0 and sb.entry.offset >= 0:
                direct.append(pair)
            else:
                hashed.append(pair)
        self.compared_files += len(pairs)
        self.compared_bytes += sum(sa.entry.size for _, sa, _ in pairs)
        changed: set[str] = set()
        with ThreadPoolExecutor(self.workers) as pool:
            for paths in pool.map(lambda batch: _compare_batch(self.scans_a[batch[0][1].layer],
                                                               self.scans_b[batch[0][2].layer],
                                                               batch), _batches(direct)):
                changed.update(paths)
            if hashed:
                jobs: dict[tuple[str, int], set[int]] = {}
                for _, sa, sb in hashed:
                    jobs.setdefault(("a", sa.layer), set()).add(sa.ordinal)
                    jobs.setdefault(("b", sb.layer), set()).add(sb.ordinal)
                keys = list(jobs)
                digests = dict(zip(keys, pool.map(
                    lambda k: _hash_layer_files((self.scans_a if k[0] == "a" else self.scans_b)[k[1]],
                                                jobs[k]), keys)))
                for path, sa, sb in hashed:
                    if digests[("a", sa.layer)].get(sa.ordinal) != \
                            digests[("b", sb.layer)].get(sb.ordinal):
                        changed.add(path)
        return changed
