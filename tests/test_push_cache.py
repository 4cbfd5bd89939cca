"""The local digest cache: lookups, confirmed-only writes, concurrency, broken storage."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from layerlab.pusher.cache import CacheRecord, CacheWarning, DigestCache, default_cache_dir

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
G1 = "sha256:" + "a" * 64
G2 = "sha256:" + "b" * 64
GZ = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _record(diff_id=D1, digest=G1, repo="app", registry="reg:5000", settings="gzip/isal/1/1048576"):
    return CacheRecord(diff_id, digest, 123, GZ, "gzip", settings, registry, repo)


def test_default_directory_follows_xdg_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("LAYERLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "layerlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "layerlab"
    monkeypatch.setenv("LAYERLAB_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    assert DigestCache().path == tmp_path / "explicit" / "digests.sqlite"


def test_record_and_lookup(tmp_path):
    cache = DigestCache(tmp_path)
    assert cache.lookup([D1]) == {}  # no file yet: nothing, and no file created
    assert not cache.path.exists()
    assert cache.record([_record(), _record(repo="other"), _record(registry="else:1"),
                         _record(diff_id=D2, digest=G2, settings="")])
    found = cache.lookup([D1, D2, "sha256:" + "9" * 64])
    assert set(found) == {D1, D2}
    [blob] = found[D1]
    assert (blob.digest, blob.size, blob.media_type, blob.compression, blob.settings) == \
        (G1, 123, GZ, "gzip", "gzip/isal/1/1048576")
    assert blob.locations == {("reg:5000", "app"), ("reg:5000", "other"), ("else:1", "app")}
    assert found[D2][0].settings == ""
    # a learned fact does not erase the settings that produced a blob
    cache.record([_record(settings="")])
    assert cache.lookup([D1])[D1][0].settings == "gzip/isal/1/1048576"
    cache.forget(G1, "reg:5000", "other")
    assert cache.lookup([D1])[D1][0].locations == {("reg:5000", "app"), ("else:1", "app")}
    cache.clear()
    assert cache.lookup([D1, D2]) == {}


def _writer(directory: str, n: int) -> None:
    cache = DigestCache(directory)
    for i in range(40):
        digest = f"sha256:{n:02d}{i:062d}"
        assert cache.record([CacheRecord(D1, digest, i, GZ, "gzip", "", "reg", f"r{n}")])


def test_concurrent_processes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    blobs = DigestCache(tmp_path).lookup([D1])[D1]
    assert len(blobs) == 160
    assert {loc for b in blobs for loc in b.locations} == {("reg", f"r{n}") for n in range(4)}


def test_unwritable_directory_warns_and_continues(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = DigestCache(blocker / "cache")
    with pytest.warns(CacheWarning, match="cannot write it"):
        assert cache.record([_record()]) is False
    assert cache.lookup([D1]) == {}
    assert len(cache.warnings) == 1


def test_corrupt_file_warns_and_reads_nothing(tmp_path):
    cache = DigestCache(tmp_path)
    cache.path.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.warns(CacheWarning, match="cannot read it"):
        assert cache.lookup([D1]) == {}


def test_full_disk_is_a_warning(tmp_path):
    """A real write failure: the file size limit makes every write fail with EFBIG."""
    import resource
    import signal
    import subprocess
    import sys

    script = (
        "import warnings, sys\n"
        "from layerlab.pusher.cache import DigestCache, CacheRecord\n"
        "c = DigestCache(sys.argv[1])\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    ok = c.record([CacheRecord({D1!r}, {G1!r}, 1, 'x', 'gzip', '', 'r', 'a')])\n"
        "print(ok, len(w), w[0].message if w else '')\n")

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, preexec_fn=limit, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("False 1 digest cache ")
    assert "cannot write it" in out.stdout
    assert os.path.getsize(Path(tmp_path) / "digests.sqlite") == 0


def test_annotations_per_blob_and_an_older_cache_file(tmp_path):
    import sqlite3
    import warnings

    notes = {"io.containers.zstd-chunked.manifest-position": "10:20:30:1",
             "io.containers.zstd-chunked.manifest-checksum": "sha256:" + "c" * 64}
    zstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    cache = DigestCache(tmp_path / "new")
    assert cache.record([CacheRecord(D1, G1, 123, zstd, "zstd:chunked",
                                     "zstd:chunked/zstandard/3/c1", "reg:5000", "app", notes),
                         _record(D2, G2)])
    found = cache.lookup([D1, D2])
    assert dict(found[D1][0].annotations) == notes
    assert dict(found[D2][0].annotations) == {}
    cache.clear()
    assert cache.lookup([D1]) == {}
    # a cache file written before annotations were kept: read as it is, none known
    old = tmp_path / "old"
    old.mkdir()
    conn = sqlite3.connect(old / "digests.sqlite")
    conn.executescript(
        "CREATE TABLE blobs (diff_id TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,"
        " media_type TEXT NOT NULL, compression TEXT NOT NULL, settings TEXT NOT NULL DEFAULT '',"
        " PRIMARY KEY (diff_id, digest));"
        "CREATE TABLE locations (digest TEXT NOT NULL, registry TEXT NOT NULL,"
        " repository TEXT NOT NULL, seen REAL NOT NULL,"
        " PRIMARY KEY (digest, registry, repository));"
        f"INSERT INTO blobs VALUES ('{D1}', '{G1}', 123, '{GZ}', 'gzip', '');"
        f"INSERT INTO locations VALUES ('{G1}', 'reg:5000', 'app', 1.0);")
    conn.commit()
    conn.close()
    legacy = DigestCache(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        blobs = legacy.lookup([D1])
    assert [(b.digest, dict(b.annotations), b.locations) for b in blobs[D1]] == [
        (G1, {}, frozenset({("reg:5000", "app")}))]
    assert legacy.warnings == []
    assert legacy.record([CacheRecord(D2, G2, 1, zstd, "zstd:chunked", "k", "reg:5000", "app",
                                      notes)])  # the table is added on the first write
    assert dict(legacy.lookup([D2])[D2][0].annotations) == notes

