"""``calibrate()``: measure this machine and its local registry for the model.

What is measured (compression, hashing and disk: the best of a few short repetitions,
since other work on a shared machine only adds time; the registry: medians; small
samples with ``quick=True`` so it takes a few seconds):

* compression throughput (bytes of input per second, one thread) and ratio for each key
  (``"isal-1"``, ``"zlib-6"``, ``"zstd-3"``...), on generated content mixed like a
  typical image (a third source-like text, half binary-like, the rest incompressible),
  through the pusher's own block compressor when it is importable;
* sha256 throughput; temporary-file write+read throughput;
* with ``registry=True``, :class:`~layerlab.registry.LocalRegistry` on loopback: the
  time of a request (a HEAD of a missing blob) through the bare HTTP layer
  (:func:`~layerlab.sources.remote.session.send`), booked as the registry's
  ``registry_request_overhead``, and what the registry client (auth, retries, error
  mapping) adds to it (``client_request_overhead``, refined by the validation from the
  pusher's own re-pushes); what a new thread with a new connection adds to
  its first request, the registry answering after ``CALIBRATION_RTT``
  (``client_connect_cost``), and shutting such a thread down when its pool is done
  (``client_thread_join_cost``); through the full client, the extra of a
  storage lookup with the blob-descriptor cache off and on, the body ingest rate (a
  streamed PATCH), the fixed cost of storing a blob (tiny monolithic uploads), the
  commit's cost per byte, the re-read rate of
  ``verify="reread"``, and how much its own bandwidth limit loses to its receiving loop
  (an upload limited to 200 MB/s).

The result is a :class:`MachineProfile`, saved (by default) to
:func:`~layerlab.simulator.machine.default_machine_path` for ``machine="saved"``.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

from .machine import DEFAULT_MACHINE, MachineProfile

__all__ = ["calibrate", "typical_content", "DEFAULT_KEYS", "QUICK_KEYS",
           "measure_decompression", "measure_fsync"]

DEFAULT_KEYS = ("isal-1", "isal-2", "isal-3", "zlib-1", "zlib-6", "zlib-9", "zstd-3")
QUICK_KEYS = ("isal-1", "zlib-6", "zstd-3")  # the profiles' own settings
CALIBRATION_RTT = 0.01
"""Seconds of round trip the per-request and per-thread measurements wait on: a request
that waits costs more than one answered at once (its thread sleeps and must be woken),
about 1.3 ms against 0.9 here, and a new thread's first request 0.6 ms more against 0.3."""


def typical_content(size: int, seed: str = "layerlab-calibrate") -> bytes:
    """``size`` deterministic bytes mixed like image content: about 33 % source-like
    text, 54 % binary-like, 13 % incompressible, in 64 KiB pieces."""
    rng = random.Random(seed)
    words = ("def return self import value layer image digest registry blob push data "
             "buffer stream error status request config cache json tar gzip = ( ) : , . "
             "0 1 16 256 4096").split()
    out = bytearray()
    piece = 64 * 1024
    while len(out) < size:
        kind = rng.random()
        if kind < 0.33:
            text = []
            n = 0
            while n < piece:
                line = "    " * rng.randrange(3) + " ".join(rng.choices(words, k=rng.randrange(3, 12))) + "\n"
                text.append(line)
                n += len(line)
            out += "".join(text).encode()[:piece]
        elif kind < 0.87:
            block = bytearray()
            while len(block) < piece:
                if rng.random() < 0.5:
                    block += rng.randbytes(256)
                else:
                    base = rng.randrange(1 << 24)
                    block += b"".join((base + 8 * i).to_bytes(8, "little") for i in range(32))
            out += block[:piece]
        else:
            out += rng.randbytes(piece)
    return bytes(out[:size])


def _best_time(fn: Callable[[], object], repeat: int) -> float:
    """The shortest of ``repeat`` timings: other work on the machine only ever adds time,
    so the minimum is the best estimate of the undisturbed cost (as ``timeit`` does)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _compressor(key: str) -> Callable[[bytes], int]:
    """A function compressing bytes as the pusher would (its block framing and engine),
    returning the output size. Compression only: the pusher's two sha256 streams are
    measured, and charged by the model, separately (``sha256_rate``)."""
    engine, _, level_text = key.rpartition("-")
    level = int(level_text)
    try:
        from ..pusher.compress import CompressionSettings, gzip_frames, zstd_frames
        from ..pusher.memory import keep_freed_buffers

        keep_freed_buffers()  # as a push runs it
        if engine == "zstd":
            settings = CompressionSettings("zstd", "zstandard", level)
        else:
            settings = CompressionSettings("gzip", engine, level)
        size = settings.block_size

        def run(data: bytes) -> int:
            view = memoryview(data)
            blocks = (bytes(view[i:i + size]) for i in range(0, len(data), size))
            frames = (zstd_frames(blocks, level) if engine == "zstd"
                      else gzip_frames(blocks, engine, level))
            return sum(len(frame) for frame in frames)
        return run
    except (ImportError, ValueError):
        from .inputs import measure_ratio

        return lambda data: int(len(data) / measure_ratio(data, key))


def measure_compression(keys: Sequence[str], data: bytes, repeat: int, best: bool = True
                        ) -> tuple[dict[str, float], dict[str, float]]:
    """(rate per key in bytes/s, ratio per key) on ``data``: the best of ``repeat`` runs
    (or their median)."""
    rates, ratios = {}, {}
    timer = _best_time if best else _median_time
    for key in keys:
        fn = _compressor(key)
        out = fn(data)
        seconds = timer(lambda: fn(data), repeat)
        rates[key] = len(data) / seconds
        ratios[key] = len(data) / max(1, out)
    return rates, ratios


def measure_sha256(data: bytes, repeat: int) -> float:
    """sha256 bytes/s (the pusher's per-chunk update pattern: 1 MiB pieces)."""
    def run() -> None:
        h = hashlib.sha256()
        view = memoryview(data)
        for i in range(0, len(data), 1 << 20):
            h.update(view[i:i + (1 << 20)])
        h.hexdigest()
    return len(data) / _best_time(run, repeat)


def measure_disk(data: bytes, repeat: int, directory: str | None = None) -> float:
    """Temporary-file write then read, bytes/s of the file size (both passes counted as
    the model counts them: once for the write, once for the read)."""
    fd, path = tempfile.mkstemp(prefix="layerlab-calibrate-", dir=directory)
    os.close(fd)

    def run() -> None:
        with open(path, "wb") as f:
            f.write(data)
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    try:
        seconds = _best_time(run, repeat)
    finally:
        os.unlink(path)
    return 2 * len(data) / seconds


def measure_decompression(data: bytes, repeat: int) -> dict[str, float]:
    """Bytes/s of uncompressed output decompressing ``data`` compressed as gzip (ISA-L
    level 1, what the pusher writes) and zstd (level 3), through layerlab's own reading
    path (:func:`layerlab.blobio.decompressed`, 1 MiB reads): the best of ``repeat``."""
    import io

    from ..blobio import decompressed

    rates = {}
    for compression in ("gzip", "zstd"):
        try:
            if compression == "gzip":
                from isal import igzip

                blob = igzip.compress(data, 1)
            else:
                import zstandard

                blob = zstandard.ZstdCompressor(level=3).compress(data)
        except ImportError:  # pragma: no cover - engine not installed
            continue

        def run(blob: bytes = blob, compression: str = compression) -> None:
            with decompressed(io.BytesIO(blob), compression, "calibration") as stream:
                while stream.read(1 << 20):
                    pass
        rates[compression] = len(data) / _best_time(run, repeat)
    return rates


def measure_fsync(data: bytes, repeat: int, directory: str | None = None) -> float:
    """Bytes/s of ``fsync`` after writing ``data`` to a new file (median of ``repeat``:
    a flush waits for the device, which other work on the machine shares)."""
    times = []
    for attempt in range(repeat):
        fd, path = tempfile.mkstemp(prefix="layerlab-calibrate-", dir=directory)
        try:
            os.write(fd, data)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
        finally:
            os.close(fd)
            os.unlink(path)
    return len(data) / max(1e-6, statistics.median(times))


_PROBE_DATA: list[bytes] = []


def cpu_probe(seconds: float = 0.1, threads: int | None = None) -> tuple[float, float]:
    """How much CPU this process gets right now: ``(rate, parallelism)`` - the bytes/s
    one thread compresses (ISA-L level 1, which releases the GIL) over ``seconds``, and
    how many times that ``threads`` threads (default: one per core) achieve together."""
    import threading

    from isal import isal_zlib

    if not _PROBE_DATA:
        _PROBE_DATA.append(typical_content(256 << 10, seed="cpu-probe"))
    data = _PROBE_DATA[0]
    threads = threads or len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (threads or os.cpu_count() or 1)

    def spin(out: list[int], deadline: float) -> None:
        done = 0
        while time.perf_counter() < deadline:
            isal_zlib.compress(data, 1)
            done += len(data)
        out.append(done)

    one: list[int] = []
    t0 = time.perf_counter()
    spin(one, t0 + seconds / 2)
    single = one[0] / (time.perf_counter() - t0)
    if threads <= 1:
        return single, 1.0
    many: list[int] = []
    t0 = time.perf_counter()
    workers = [threading.Thread(target=spin, args=(many, t0 + seconds / 2)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    together = sum(many) / (time.perf_counter() - t0)
    return single, max(1.0, min(float(threads), together / single))


def measure_cache_write(repeat: int = 7, directory: str | None = None) -> float:
    """Seconds of one write transaction of the pusher's digest cache (a ``forget``)."""
    from ..pusher.cache import CacheRecord, DigestCache

    with tempfile.TemporaryDirectory(prefix="layerlab-calibrate-", dir=directory) as tmp:
        cache = DigestCache(tmp)
        records = [CacheRecord(f"sha256:{i:064x}", f"sha256:{i + 1000:064x}", 10,
                               "application/octet-stream", "gzip", "", "calibrate", "repo")
                   for i in range(repeat + 1)]
        cache.record(records)
        os.sync()  # each write syncs: it must not also flush what others left dirty
        times = []
        for record in records[:repeat]:
            t0 = time.perf_counter()
            cache.forget(record.digest, "calibrate", "repo")
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _thread_costs(host: str, repo: str, missing: str, repeat: int, threads: int = 16
                  ) -> tuple[float, float]:
    """``(connect, join)`` per thread of a pool like the pusher's checkers. ``connect``:
    what a new thread with a new connection adds to its first request (a burst of HEADs
    on ``threads`` new threads, against the same burst again on the same threads and
    connections); ``join``: shutting the pool down afterwards. Medians. The registry
    should be answering after ``CALIBRATION_RTT``, as over a link."""
    from concurrent.futures import ThreadPoolExecutor

    from ..sources.remote import RegistryClient

    def burst(client: RegistryClient, pool: ThreadPoolExecutor) -> float:
        t0 = time.perf_counter()
        list(pool.map(lambda _: client.head_blob(repo, missing), range(threads)))
        return time.perf_counter() - t0

    extra, join = [], []
    for _ in range(max(3, repeat)):
        client = RegistryClient(host)
        pool = ThreadPoolExecutor(threads)
        try:
            cold = burst(client, pool)
            extra.append((cold - burst(client, pool)) / threads)
        finally:
            t0 = time.perf_counter()
            pool.shutdown(wait=True)
            join.append((time.perf_counter() - t0) / threads)
            client.close()
    return max(0.0, statistics.median(extra)), statistics.median(join)


def measure_registry(blob_size: int, repeat: int) -> dict[str, float]:
    """Per-request time, lookup costs, ingest, commit and re-read rates of the local
    registry on loopback (see the module docstring)."""
    from ..digest import digest_bytes
    from ..registry import LocalRegistry
    from ..sources.remote import RegistryClient
    from ..sources.remote.session import open_session, send
    from .inputs import LOCAL_WRITEBACK_EVERY, commit_bytes

    repo = "calibrate/blob"
    out: dict[str, float] = {}
    with LocalRegistry() as registry, RegistryClient(registry.host) as client:
        bare_http = open_session()  # the HTTP exchange alone: no auth, retries, error mapping
        missing = "sha256:" + "0" * 64
        url = f"{client.base_url}/v2/{repo}/blobs/{missing}"
        client.head_blob(repo, missing)  # warm the connections
        send(bare_http, "HEAD", url, use_proxies=False).close()
        count = 10 * repeat
        try:
            bare = _median_time(lambda: send(bare_http, "HEAD", url, use_proxies=False).close(), count)
        finally:
            bare_http.close()
        registry.latency = CALIBRATION_RTT  # as the pusher's requests meet it (see there)
        try:
            out["client_connect_cost"], out["client_thread_join_cost"] = _thread_costs(
                registry.host, repo, missing, repeat)
        finally:
            registry.latency = None
        per_request = _median_time(lambda: client.head_blob(repo, missing), count)
        out["registry_request_overhead"] = bare
        out["client_request_overhead"] = max(0.0, per_request - bare)
        small = b"calibrate"
        client.upload_blob(repo, digest_bytes(small), small)
        for cache, field in ((False, "registry_lookup_cost"), (True, "registry_cached_lookup_cost")):
            registry.cache = cache
            client.head_blob(repo, digest_bytes(small))
            t = _median_time(lambda: client.head_blob(repo, digest_bytes(small)), count)
            out[field] = max(0.0, t - per_request)
        registry.cache = True
        ingest, commit, reread = [], [], []
        for attempt in range(repeat):
            for verify in ("stream", "reread"):
                os.sync()  # the commit flushes its own blob, not the previous ones
                registry.verify = verify
                data = random.Random(f"registry-{verify}-{attempt}").randbytes(blob_size)
                digest = digest_bytes(data)
                upload = client.start_upload(repo)
                chunks = (data[i:i + (1 << 20)] for i in range(0, len(data), 1 << 20))
                t0 = time.perf_counter()
                upload.patch(chunks)
                t1 = time.perf_counter()
                upload.put(digest)
                t2 = time.perf_counter()
                if verify == "stream":
                    ingest.append(blob_size / max(1e-9, t1 - t0 - per_request))
                    commit.append(max(1e-9, t2 - t1 - per_request))
                else:
                    reread.append(max(1e-9, t2 - t1 - per_request))
        registry.verify = "stream"
        registry.bandwidth = limit = 200e6
        try:
            from ..registry.app import BURST_SECONDS as burst
        except ImportError:  # pragma: no cover - another registry version
            burst = 0.0
        loop = []
        for attempt in range(repeat):  # the registry's own bandwidth limit, one upload
            size = 2 * blob_size
            data = random.Random(f"registry-limited-{attempt}").randbytes(size)
            upload = client.start_upload(repo)
            chunks = (data[i:i + (1 << 20)] for i in range(0, len(data), 1 << 20))
            t0 = time.perf_counter()
            upload.patch(chunks)
            took = time.perf_counter() - t0 - per_request
            upload.put(digest_bytes(data))
            ideal = max(0.0, size / limit - burst)  # its bucket lets a burst through
            extra = (took - ideal) / size
            loop.append(1 / extra if extra > 0 else float("inf"))
        registry.bandwidth = None
        out["registry_loop_rate"] = statistics.median(loop)
        small = []
        os.sync()  # the uploads above are not the tiny ones' to flush (each commit syncs)
        for attempt in range(count):  # the fixed cost of storing a blob: tiny monolithic ones
            data = random.Random(f"registry-small-{attempt}").randbytes(1000)
            t0 = time.perf_counter()
            client.upload_blob(repo, digest_bytes(data), data)
            small.append(time.perf_counter() - t0 - per_request)
        fixed = out["registry_blob_overhead"] = max(0.0, statistics.median(small))
        commit_s = statistics.median(commit) - fixed
        out["registry_ingest_rate"] = statistics.median(ingest)
        # what the commit flushes is the blob's last stretch (see commit_bytes); one that
        # costs (almost) nothing per byte is a rename: keep it free
        flushed = commit_bytes(blob_size, LOCAL_WRITEBACK_EVERY)
        out["registry_commit_rate"] = (flushed / commit_s if commit_s > 0.002 else float("inf"))
        extra = statistics.median(reread) - commit_s
        out["registry_reread_rate"] = blob_size / extra if extra > 0.002 else float("inf")
    return out


def calibrate(quick: bool = True, registry: bool = True, keys: Sequence[str] | None = None,
              save: bool | str | os.PathLike[str] = True) -> MachineProfile:
    """Measure this machine; return (and by default save) its :class:`MachineProfile`.

    ``quick`` uses small samples and only the profiles' compression settings (a few
    seconds in all); ``keys`` chooses the compression settings to measure (others keep
    the shipped figures); ``registry`` also measures the local registry (needs
    :mod:`layerlab.registry`); ``save`` is True (the default path), False, or a path.
    """
    keys = tuple(keys) if keys is not None else (QUICK_KEYS if quick else DEFAULT_KEYS)
    sample = typical_content((1 if quick else 16) << 20)
    repeat = 2 if quick else 5
    rates, ratios = measure_compression(keys, sample, repeat)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    probe_rate, probe_parallelism = cpu_probe()
    values: dict[str, object] = {
        "cores": cores,
        "compress_rate": {**DEFAULT_MACHINE.compress_rate, **rates},
        "ratio": {**DEFAULT_MACHINE.ratio, **ratios},
        "sha256_rate": measure_sha256(sample * (2 if quick else 4), repeat),
        "disk_rate": measure_disk(sample * (4 if quick else 8), repeat),
        "decompress_rate": measure_decompression(sample, repeat),
        "fsync_rate": measure_fsync(sample * (4 if quick else 8), repeat),
        "client_request_overhead": 0.0,
        "probe_rate": probe_rate,
        "probe_parallelism": probe_parallelism,
        "source": f"calibrated {time.strftime('%Y-%m-%d %H:%M:%S')} ({'quick' if quick else 'full'})",
    }
    try:
        values["client_cache_write"] = measure_cache_write(5 if quick else 11)
    except ImportError:
        pass
    if registry:
        values.update(measure_registry((4 if quick else 32) << 20, 3 if quick else 7))
    profile = DEFAULT_MACHINE.with_options(**values)
    if save:
        profile.save(None if save is True else Path(save))
    return profile
