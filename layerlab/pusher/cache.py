"""The local digest cache: what a layer becomes when compressed, and where it lives.

Like Docker's V2 metadata service, it maps a layer's ``diff_id`` to the compressed blobs
known for it (digest, size, media type, and the compression settings that produced it,
when layerlab did) and records the ``(registry, repository)`` pairs known to hold each
blob, and the descriptor annotations that describe a blob's bytes (zstd:chunked's TOC
position and checksum), so that a manifest naming a blob found here still carries them.
A push that finds a layer here needs neither to compress it nor to upload it: a
HEAD or a cross-repository mount does.

Stored in SQLite (WAL mode, busy timeout) so several processes may push at once, under
``$LAYERLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/layerlab``, else ``~/.cache/layerlab``.

**Failure policy.** The cache only ever speeds a push up, so it never fails one: if it
cannot be read (corrupt file, unreadable directory) or written (full disk, read-only
directory), a :class:`CacheWarning` is issued and the push goes on as if the cache were
empty. Entries are written only for blobs the registry confirmed (PUT 201 with the
expected digest, HEAD 200, mount 201).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..cachedir import default_cache_dir

__all__ = ["DigestCache", "CachedBlob", "CacheRecord", "CacheWarning", "default_cache_dir"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    diff_id TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,
    media_type TEXT NOT NULL, compression TEXT NOT NULL, settings TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (diff_id, digest));
CREATE TABLE IF NOT EXISTS locations (
    digest TEXT NOT NULL, registry TEXT NOT NULL, repository TEXT NOT NULL, seen REAL NOT NULL,
    PRIMARY KEY (digest, registry, repository));
CREATE TABLE IF NOT EXISTS annotations (
    digest TEXT NOT NULL PRIMARY KEY, annotations TEXT NOT NULL);
"""


class CacheWarning(UserWarning):
    """The digest cache could not be read or written; the push went on without it."""


@dataclass(frozen=True)
class CachedBlob:
    """A compressed blob known for a diff_id; ``settings`` is the compression key that
    produced it ('' when learned from elsewhere); ``locations`` the (registry,
    repository) pairs known to hold it; ``annotations`` those describing its bytes."""

    diff_id: str
    digest: str
    size: int
    media_type: str
    compression: str
    settings: str
    locations: frozenset[tuple[str, str]]
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class CacheRecord:
    """One confirmed fact to store: ``digest`` (of ``diff_id``) is in ``registry/repository``."""

    diff_id: str
    digest: str
    size: int
    media_type: str
    compression: str
    settings: str
    registry: str
    repository: str
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)


class DigestCache:
    """The digest cache file ``<dir>/digests.sqlite`` (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.path = self.directory / "digests.sqlite"
        self.warnings: list[str] = []
        self._ready = False

    def __repr__(self) -> str:
        return f"<DigestCache {self.path}>"

    def _warn(self, action: str, exc: BaseException) -> None:
        message = f"digest cache {self.path}: cannot {action} ({exc}); continuing without it"
        self.warnings.append(message)
        warnings.warn(message, CacheWarning, stacklevel=3)

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if not create and not self.path.exists():
            return None
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=15.0, isolation_level=None)
        if not self._ready or create:
            conn.execute("PRAGMA busy_timeout=15000")
            if create:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # a cache: durable enough
                conn.executescript(_SCHEMA)
                self._ready = True
        return conn

    # reading -------------------------------------------------------------------------
    def lookup(self, diff_ids: Sequence[str]) -> dict[str, list[CachedBlob]]:
        """Every cached blob for each of ``diff_ids`` (missing ones absent from the dict)."""
        wanted = sorted({d for d in diff_ids if d})
        if not wanted:
            return {}
        try:
            conn = self._connect(create=False)
            if conn is None:
                return {}
            try:
                marks = ",".join("?" * len(wanted))
                rows = conn.execute(
                    f"SELECT b.diff_id, b.digest, b.size, b.media_type, b.compression, b.settings,"
                    f" l.registry, l.repository FROM blobs b LEFT JOIN locations l"
                    f" ON l.digest = b.digest WHERE b.diff_id IN ({marks})"
                    f" ORDER BY b.diff_id, b.digest, l.seen DESC", wanted).fetchall()
                notes = self._annotations(conn, sorted({row[1] for row in rows}))
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            self._warn("read it", exc)
            return {}
        grouped: dict[tuple[str, str], list] = {}
        for diff_id, digest, size, media_type, compression, settings, registry, repo in rows:
            entry = grouped.setdefault((diff_id, digest),
                                       [size, media_type, compression, settings, []])
            if registry is not None:
                entry[4].append((registry, repo))
        out: dict[str, list[CachedBlob]] = {}
        for (diff_id, digest), (size, media_type, compression, settings, locs) in grouped.items():
            out.setdefault(diff_id, []).append(CachedBlob(
                diff_id, digest, int(size), media_type, compression, settings, frozenset(locs),
                notes.get(digest, {})))
        return out

    @staticmethod
    def _annotations(conn: sqlite3.Connection, digests: list[str]) -> dict[str, dict]:
        if not digests:
            return {}
        marks = ",".join("?" * len(digests))
        try:
            rows = conn.execute(f"SELECT digest, annotations FROM annotations"
                                f" WHERE digest IN ({marks})", digests).fetchall()
        except sqlite3.OperationalError:  # a cache file older than the table: none known
            return {}
        out = {}
        for digest, text in rows:
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict):
                out[digest] = {str(k): str(v) for k, v in value.items()}
        return out

    # writing -------------------------------------------------------------------------
    def record(self, records: Iterable[CacheRecord]) -> bool:
        """Store confirmed facts in one transaction; False (and a warning) on failure."""
        items = list(records)
        if not items:
            return True
        now = time.time()
        try:
            conn = self._connect(create=True)
            assert conn is not None
            try:
                conn.execute("BEGIN IMMEDIATE")
                for r in items:
                    conn.execute(
                        "INSERT INTO blobs (diff_id, digest, size, media_type, compression, settings)"
                        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (diff_id, digest) DO UPDATE SET"
                        " settings = CASE WHEN excluded.settings != '' THEN excluded.settings"
                        " ELSE blobs.settings END",
                        (r.diff_id, r.digest, r.size, r.media_type, r.compression, r.settings))
                    conn.execute(
                        "INSERT INTO locations (digest, registry, repository, seen) VALUES"
                        " (?, ?, ?, ?) ON CONFLICT (digest, registry, repository)"
                        " DO UPDATE SET seen = excluded.seen",
                        (r.digest, r.registry, r.repository, now))
                    if r.annotations:
                        conn.execute(
                            "INSERT INTO annotations (digest, annotations) VALUES (?, ?)"
                            " ON CONFLICT (digest) DO UPDATE"
                            " SET annotations = excluded.annotations",
                            (r.digest, json.dumps(dict(sorted(r.annotations.items())))))
                conn.execute("COMMIT")
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            self._warn("write it", exc)
            return False
        return True

    def forget(self, digest: str, registry: str, repository: str) -> None:
        """Drop a location the registry denied (HEAD 404, failed mount)."""
        try:
            conn = self._connect(create=False)
            if conn is None:
                return
            try:
                conn.execute("DELETE FROM locations WHERE digest = ? AND registry = ? AND"
                             " repository = ?", (digest, registry, repository))
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            self._warn("update it", exc)

    def clear(self) -> None:
        """Delete every entry (the file stays)."""
        try:
            conn = self._connect(create=True)
            assert conn is not None
            try:
                conn.execute("DELETE FROM locations")
                conn.execute("DELETE FROM blobs")
                conn.execute("DELETE FROM annotations")
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            self._warn("clear it", exc)
