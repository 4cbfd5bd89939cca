"""Streaming compression of the pusher: deterministic bytes, one-pass hashes, resume."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard

from layerlab.pusher.compress import GZIP_HEADER, CompressingStream, CompressionSettings

ISAL_DIGEST = "sha256:87c39f8d33f3a0bc33739c03a7db4c7883da0f1cd977eba9b36b18b849624108"
ZLIB6_DIGEST = "sha256:762ba8dfc12e2b8d99acf742cf5aa4eeb60934392268b91ece25375e21b58672"
ZSTD3_DIGEST = "sha256:498ea80baf524ad099f24f0e884f26745745e6741db240b40cbdc9bc90cb3f15"
DATA_DIGEST = "sha256:36d5fae0f13b0ae63c382c7597c5db213968bd692f28bede2c9f3f172ae4389b"


@pytest.fixture(scope="module")
def data() -> bytes:
    r = random.Random(7)
    text = b"".join(r.choice([b"alpha ", b"beta ", b"gamma ", b"delta\n"]) for _ in range(200000))
    return text + r.randbytes(300000)


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(3) as executor:
        yield executor


def _run(data: bytes, settings: CompressionSettings, pool=None, **kw) -> tuple[bytes, CompressingStream]:
    stream = CompressingStream(io.BytesIO(data), settings, pool, **kw)
    return b"".join(stream), stream


def test_input_digest(data):
    assert len(data) == 1450034
    assert "sha256:" + hashlib.sha256(data).hexdigest() == DATA_DIGEST


@pytest.mark.parametrize("engine,level,expected,size", [
    ("isal", 1, ISAL_DIGEST, 459955),
    ("zlib", 6, ZLIB6_DIGEST, 392457),
])
def test_gzip_is_deterministic_whatever_the_thread_count(data, pool, engine, level, expected, size):
    outputs = []
    for threads, window in ((1, 1), (2, 3), (3, 2)):
        settings = CompressionSettings("gzip", engine, level, block_size=256 * 1024, threads=threads)
        out, stream = _run(data, settings, pool, window=window)
        assert stream.digest == expected
        assert stream.size_out == len(out) == size
        assert stream.diff_id == DATA_DIGEST
        assert stream.size_in == len(data)
        assert "sha256:" + hashlib.sha256(out).hexdigest() == expected
        outputs.append(out)
    assert outputs[0] == outputs[1] == outputs[2]
    assert gzip.decompress(outputs[0]) == data
    assert outputs[0][:10] == GZIP_HEADER  # mtime 0, no name


def test_blocks_kept_on_the_stream_thread_give_the_same_bytes(data, pool):
    # the pusher decides block by block whether to hand a block to the pool
    settings = CompressionSettings("gzip", "isal", 1, block_size=256 * 1024, threads=3)
    asked = []

    def every_other() -> bool:
        asked.append(len(asked) % 2 == 0)
        return asked[-1]

    out, stream = _run(data, settings, pool, window=3, spread=every_other)
    assert stream.digest == ISAL_DIGEST and len(out) == 459955
    assert asked == [True, False, True, False, True, False]  # 6 blocks of 256 KiB
    never, _ = _run(data, settings, pool, window=3, spread=lambda: False)
    assert never == out


def test_block_size_is_part_of_the_cache_key():
    a = CompressionSettings("gzip", "isal", 1, block_size=1 << 20)
    b = CompressionSettings("gzip", "isal", 1, block_size=256 * 1024, threads=8)
    assert a.key == "gzip/isal/1/1048576"
    assert b.key == "gzip/isal/1/262144"
    assert CompressionSettings("gzip", "isal", 1, threads=4).key == a.key
    assert CompressionSettings("zstd", "zstandard", 3).key == "zstd/zstandard/3/mt"
    assert CompressionSettings("none").key == "none"


def test_zstd_is_deterministic_and_round_trips(data):
    out1, s1 = _run(data, CompressionSettings("zstd", "zstandard", 3, threads=1))
    out2, s2 = _run(data, CompressionSettings("zstd", "zstandard", 3, threads=2))
    assert s1.digest == s2.digest == ZSTD3_DIGEST
    assert out1 == out2
    assert zstandard.ZstdDecompressor().decompressobj().decompress(out1) == data


def test_skip_regenerates_the_same_suffix(data, pool):
    settings = CompressionSettings("gzip", "isal", 1, block_size=256 * 1024, threads=2)
    full, _ = _run(data, settings, pool)
    for skip in (0, 1, 10, 262144, len(full) - 1, len(full)):
        out, stream = _run(data, settings, pool, skip=skip)
        assert out == full[skip:]
        assert stream.digest == ISAL_DIGEST  # the hash covers the whole blob
        assert stream.size_out == len(full)


def test_empty_input_is_a_valid_gzip():
    out, stream = _run(b"", CompressionSettings())
    assert gzip.decompress(out) == b""
    assert len(out) == 20
    assert stream.diff_id == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_short_reads_do_not_change_the_output(data):
    class Dribble(io.RawIOBase):
        def __init__(self, raw: bytes) -> None:
            self.raw = io.BytesIO(raw)

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            return self.raw.read(min(n, 4093) if n and n > 0 else 4093)

    settings = CompressionSettings("gzip", "isal", 1, block_size=256 * 1024)
    stream = CompressingStream(Dribble(data), settings)
    assert b"".join(stream) and stream.digest == ISAL_DIGEST


def test_progress_callback_counts_input(data):
    seen = []
    out, stream = _run(data, CompressionSettings(block_size=256 * 1024), on_input=seen.append)
    assert sum(seen) == len(data)
    assert seen[:5] == [262144] * 5


@pytest.mark.parametrize("kwargs,message", [
    ({"compression": "brotli"}, "unknown compression"),
    ({"engine": "pigz"}, "unknown gzip engine"),
    ({"level": 4}, "isal level must be 0..3"),
    ({"block_size": 1000}, "at least 64 KiB"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CompressionSettings(**kwargs)


_FAULTS_SCRIPT = """
import resource, sys
from layerlab.pusher.memory import keep_freed_buffers

def faults_of_churn():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(16):
        buffers = [bytearray(4 << 20) for _ in range(4)]  # zero-filled: pages touched
        del buffers  # 16 MiB free on top of the heap: glibc trims it unless tuned
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_of_churn()  # let glibc settle its dynamic thresholds first
untuned = faults_of_churn()
accepted = keep_freed_buffers()
faults_of_churn()
print(untuned, faults_of_churn(), accepted, keep_freed_buffers())
"""


@pytest.mark.skipif(not __import__("platform").libc_ver()[0] == "glibc", reason="glibc only")
def test_freed_buffers_are_reused_not_refaulted():
    """A push churns through megabyte buffers; once tuned, freeing one and allocating
    the next must not fault fresh zeroed pages in (16 x 16 MiB = 65536 pages untuned)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT], capture_output=True,
                         text=True, check=True).stdout.split()
    untuned, tuned, accepted, again = int(out[0]), int(out[1]), out[2], out[3]
    assert accepted == "True" and again == "True"
    assert untuned >= 64 * 1024 * 0.9
    assert tuned < 64 * 1024 // 20
