"""The registry's data model over a backend: per-repository links, tags, manifests,
referrers, upload sessions, the blob-descriptor cache and garbage collection.

Layout (keys relative to the root, as Distribution lays it out)::

    blobs/sha256/ab/<hex>/data                                   content, shared
    repositories/<name>/_layers/sha256/<hex>/link                blob visible in <name>
    repositories/<name>/_manifests/revisions/sha256/<hex>/link   manifest in <name>
    repositories/<name>/_manifests/revisions/sha256/<hex>/mediatype
    repositories/<name>/_manifests/tags/<tag>/current/link       tag -> digest
    repositories/<name>/_referrers/sha256/<subject hex>/<alg>-<hex>   referrer descriptor
    uploads/<id>                                                 uploads in flight
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from ..digest import Digest
from ..errors import InvalidDigestError
from .backend import FilesystemBackend, MemoryBackend
from .codes import APIError
from .manifest import ParsedManifest, parse_manifest

Backend = FilesystemBackend | MemoryBackend


@dataclass(frozen=True)
class GCResult:
    """What a garbage collection removed: ``blobs_kept`` are referenced by a manifest,
    ``blobs_recent`` are not but were committed within the grace period or after the
    oldest upload still in use (a push in progress may yet reference them),
    ``temporaries_removed`` are metadata files a killed write left half-done."""

    blobs_deleted: int
    bytes_freed: int
    blobs_kept: int
    blobs_recent: int = 0
    temporaries_removed: int = 0

    def to_json(self) -> dict[str, int]:
        return {"blobs_deleted": self.blobs_deleted, "bytes_freed": self.bytes_freed,
                "blobs_kept": self.blobs_kept, "blobs_recent": self.blobs_recent,
                "temporaries_removed": self.temporaries_removed}


@dataclass(eq=False)
class UploadSession:
    """An upload in progress: its temporary file and the running hash of what it holds."""

    id: str
    repository: str
    file: Any
    hasher: Any  # hashlib object, or None when verifying by re-reading
    client: str = ""  # who opened it: the user name, or the peer's address
    reserved: int = 0  # bytes counted against the registry's upload quota
    created: float = field(default_factory=time.monotonic)
    touched: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)  # wall clock, compared with blob mtimes
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def size(self) -> int:
        return self.file.size

    def absorb(self, chunks: list[bytes]) -> tuple[float, float]:
        """Hash and write ``chunks`` (blocking); return (hash seconds, store seconds)."""
        t0 = time.perf_counter()
        if self.hasher is not None:
            for chunk in chunks:
                self.hasher.update(chunk)
        t1 = time.perf_counter()
        self.file.write(chunks)
        t2 = time.perf_counter()
        self.touched = time.monotonic()
        return t1 - t0, t2 - t1

    def checkpoint(self) -> tuple[int, Any]:
        """Where to roll back to if the next chunk fails."""
        return self.file.size, (self.hasher.copy() if self.hasher is not None else None)

    def rollback(self, point: tuple[int, Any]) -> None:
        size, hasher = point
        self.file.truncate(size)
        self.hasher = hasher


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on upload sessions: how many are open in all (``sessions``) and per client
    (``per_client``), how long one may sit unused (``ttl`` seconds, expired on a timer
    by the server), and how many bytes open sessions may hold on disk together
    (``bytes``; None: unbounded).  Beyond a bound a client gets 429 ``TOOMANYREQUESTS``
    (413 ``SIZE_INVALID`` for one upload larger than ``bytes`` itself)."""

    sessions: int = 1000
    per_client: int = 100
    ttl: float = 3600.0
    bytes: int | None = 32 << 30

    def __post_init__(self) -> None:
        if min(self.sessions, self.per_client) < 1 or self.ttl <= 0 \
                or (self.bytes is not None and self.bytes < 1):
            raise ValueError("upload limits must be positive (max_uploads, "
                             "max_uploads_per_client, upload_timeout, max_upload_bytes)")


def _link(digest: Digest) -> str:
    return f"{digest.algorithm}/{digest.hex}"


class RegistryStorage:
    """Repositories, blobs and manifests on top of a :mod:`backend`."""

    def __init__(self, backend: Backend, *, cache: bool = True,
                 limits: UploadLimits = UploadLimits()) -> None:
        self.backend = backend
        self.limits = limits
        self.lock = threading.RLock()  # commits, manifest writes and gc exclude each other
        self._uploads: dict[str, UploadSession] = {}
        self._quota_lock = threading.Lock()
        self._upload_bytes = 0  # sum of the open sessions' ``reserved``
        self._blob_cache: dict[tuple[str, str], int] = {}
        self._manifest_cache: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._cache = cache
        backend.clear_uploads()

    # -- the blob descriptor cache --------------------------------------------------------
    @property
    def cache(self) -> bool:
        """Answer blob and manifest lookups from memory (Distribution's ``inmemory`` cache)."""
        return self._cache

    @cache.setter
    def cache(self, enabled: bool) -> None:
        self._cache = bool(enabled)
        self._blob_cache.clear()
        self._manifest_cache.clear()

    # -- repositories ---------------------------------------------------------------------
    def repository_exists(self, repo: str) -> bool:
        return self.backend.exists_meta(f"repositories/{repo}/_manifests") or \
            self.backend.exists_meta(f"repositories/{repo}/_layers")

    def catalog(self) -> list[str]:
        return sorted(self.backend.repositories())

    # -- blobs ----------------------------------------------------------------------------
    def blob_size(self, repo: str, digest: Digest) -> int | None:
        """Size of a blob visible in ``repo``, or None (link and data both checked)."""
        key = (repo, digest)
        if self._cache:
            size = self._blob_cache.get(key)
            if size is not None:
                return size
        if not self.backend.exists_meta(f"repositories/{repo}/_layers/{_link(digest)}/link"):
            return None
        size = self.backend.blob_size(digest)
        if size is not None and self._cache:
            self._blob_cache[key] = size
        return size

    def link_blob(self, repo: str, digest: Digest, size: int | None = None) -> None:
        with self.lock:  # the link file and its cache entry change together
            self.backend.write_meta(f"repositories/{repo}/_layers/{_link(digest)}/link",
                                    digest.encode())
            if self._cache and size is not None:
                self._blob_cache[(repo, digest)] = size

    def unlink_blob(self, repo: str, digest: Digest) -> bool:
        with self.lock:  # the link file and its cache entry change together (a commit waits)
            removed = self.backend.delete_meta(f"repositories/{repo}/_layers/{_link(digest)}/link")
            self._blob_cache.pop((repo, digest), None)
            return removed

    def mount_blob(self, repo: str, source: str, digest: Digest) -> int | None:
        """Link a blob visible in ``source`` into ``repo``; its size, or None if absent."""
        with self.lock:
            size = self.blob_size(source, digest)
            if size is not None:
                self.link_blob(repo, digest, size)
            return size

    # -- uploads --------------------------------------------------------------------------
    def new_upload(self, repo: str, verify: str = "stream", client: str = "") -> UploadSession:
        """Open an upload session for ``client``; 429 ``TOOMANYREQUESTS`` beyond the limits."""
        self.expire_uploads()
        limits = self.limits
        if len(self._uploads) >= limits.sessions:
            raise APIError("TOOMANYREQUESTS", f"{len(self._uploads)} uploads are open, the "
                           f"most this registry keeps; finish or cancel some",
                           headers={"Retry-After": "10"})
        held = sum(1 for s in self._uploads.values() if s.client == client)
        if held >= limits.per_client:
            raise APIError("TOOMANYREQUESTS", f"{client or 'this client'} holds {held} open "
                           f"uploads, the most one client may keep; finish or cancel some",
                           headers={"Retry-After": "10"})
        upload_id = str(uuidlib.uuid4())
        hasher = hashlib.sha256() if verify == "stream" else None
        session = UploadSession(upload_id, repo, self.backend.new_upload(upload_id), hasher,
                                client=client)
        self._uploads[upload_id] = session
        return session

    def expire_uploads(self) -> int:
        """Cancel the sessions unused for longer than ``limits.ttl``; how many were."""
        deadline = time.monotonic() - self.limits.ttl
        stale = [s for s in self._uploads.values() if s.touched < deadline and not s.lock.locked()]
        return sum(self.cancel_upload(s.id) for s in stale)

    def get_upload(self, repo: str, upload_id: str) -> UploadSession | None:
        session = self._uploads.get(upload_id)
        return session if session is not None and session.repository == repo else None

    def cancel_upload(self, upload_id: str) -> bool:
        session = self._uploads.pop(upload_id, None)
        if session is None:
            return False
        self._release(session, session.reserved)
        session.file.discard()
        return True

    @property
    def upload_bytes(self) -> int:
        """Bytes the open upload sessions hold (or are receiving) on disk."""
        return self._upload_bytes

    def reserve(self, session: UploadSession, n: int) -> None:
        """Count ``n`` more bytes of ``session`` against the upload quota, or refuse them."""
        limit = self.limits.bytes
        with self._quota_lock:
            if limit is not None:
                if session.reserved + n > limit:
                    raise APIError("SIZE_INVALID", f"an upload may hold at most {limit} bytes "
                                   f"on this registry", status=413)
                if self._upload_bytes + n > limit:
                    raise APIError("TOOMANYREQUESTS", f"uploads in progress hold "
                                   f"{self._upload_bytes} of the {limit} bytes they may "
                                   f"take; retry once some finish", headers={"Retry-After": "10"})
            session.reserved += n
            self._upload_bytes += n

    def _release(self, session: UploadSession, n: int) -> None:
        with self._quota_lock:
            n = min(n, session.reserved)
            session.reserved -= n
            self._upload_bytes -= n

    def settle(self, session: UploadSession) -> None:
        """After a request: what ``session`` holds is its file (a rolled-back chunk is freed)."""
        self._release(session, session.reserved - session.size)

    def finish_upload(self, session: UploadSession, claimed: Digest) -> tuple[float, float]:
        """Verify the upload against ``claimed``, then commit and link it (blocking).

        Returns (hash seconds, store seconds).  A mismatch discards the upload and raises
        ``DIGEST_INVALID``; nothing becomes visible.
        """
        if self._uploads.pop(session.id, None) is not None:
            self._release(session, session.reserved)
        t0 = time.perf_counter()
        if session.hasher is not None and claimed.algorithm == "sha256":
            actual = Digest(f"sha256:{session.hasher.hexdigest()}")
        else:
            actual = session.file.rehash(claimed.algorithm)
        t1 = time.perf_counter()
        if actual != claimed:
            session.file.discard()
            raise APIError("DIGEST_INVALID", f"content digest {actual} does not match {claimed}",
                           detail={"digest": str(claimed), "actual": str(actual)})
        size = session.size
        with self.lock:
            try:
                self.backend.commit_upload(session.file, claimed)
            except BaseException:
                session.file.discard()
                raise
            self.link_blob(session.repository, claimed, size)
        return t1 - t0, time.perf_counter() - t1

    # -- manifests ------------------------------------------------------------------------
    def _revision(self, repo: str, digest: Digest) -> str:
        return f"repositories/{repo}/_manifests/revisions/{_link(digest)}"

    def _tag(self, repo: str, tag: str) -> str:
        return f"repositories/{repo}/_manifests/tags/{tag}/current/link"

    def has_manifest(self, repo: str, digest: Digest) -> bool:
        if self._cache and (repo, digest) in self._manifest_cache:
            return True
        return self.backend.exists_meta(self._revision(repo, digest) + "/link")

    def resolve_tag(self, repo: str, tag: str) -> Digest | None:
        raw = self.backend.read_meta(self._tag(repo, tag))
        try:
            return Digest(raw.decode()) if raw else None
        except (InvalidDigestError, UnicodeDecodeError):
            return None

    def get_manifest(self, repo: str, digest: Digest) -> tuple[bytes, str] | None:
        """The stored bytes and media type of a manifest in ``repo``."""
        key = (repo, digest)
        if self._cache and key in self._manifest_cache:
            return self._manifest_cache[key]
        revision = self._revision(repo, digest)
        media_type = self.backend.read_meta(revision + "/mediatype")
        if media_type is None or not self.backend.exists_meta(revision + "/link"):
            return None
        try:
            body = self.backend.read_blob(digest)
        except (FileNotFoundError, KeyError):
            return None
        found = (body, media_type.decode())
        if self._cache:
            self._manifest_cache[key] = found
        return found

    def put_manifest(self, repo: str, body: bytes, parsed: ParsedManifest, tag: str | None) -> None:
        """Store a manifest after checking everything it references is in ``repo``."""
        with self.lock:
            missing = [(d, "blob") for d in parsed.blobs if self.blob_size(repo, d) is None]
            missing += [(c.digest, "manifest") for c in parsed.manifests
                        if not self.has_manifest(repo, c.digest)]
            if missing:
                entries = [("MANIFEST_BLOB_UNKNOWN", f"{kind} {d} is not in repository {repo}",
                            {"digest": str(d)}) for d, kind in missing]
                first = entries[0]
                raise APIError(first[0], first[1], detail=first[2], more=entries[1:])
            self.backend.put_blob(parsed.digest, body)
            revision = self._revision(repo, parsed.digest)
            self.backend.write_meta(revision + "/mediatype", parsed.media_type.encode())
            self.backend.write_meta(revision + "/link", parsed.digest.encode())
            if parsed.subject is not None:
                descriptor = parsed.referrer_descriptor(len(body))
                self.backend.write_meta(self._referrer(repo, parsed.subject, parsed.digest),
                                        json.dumps(descriptor).encode())
            if tag is not None:
                self.backend.write_meta(self._tag(repo, tag), parsed.digest.encode())
            if self._cache:
                self._manifest_cache[(repo, parsed.digest)] = (body, parsed.media_type)

    def delete_manifest(self, repo: str, digest: Digest) -> bool:
        """Delete a manifest revision, every tag pointing at it, and its referrer entry."""
        with self.lock:
            found = self.get_manifest(repo, digest)
            self._manifest_cache.pop((repo, digest), None)
            if found is None:
                return False
            body, media_type = found
            self.backend.delete_meta_tree(self._revision(repo, digest))
            for tag in self.tags(repo):
                if self.resolve_tag(repo, tag) == digest:
                    self.backend.delete_meta_tree(f"repositories/{repo}/_manifests/tags/{tag}")
            try:
                subject = parse_manifest(body, media_type, digest.algorithm).subject
            except APIError:
                subject = None
            if subject is not None:
                self.backend.delete_meta(self._referrer(repo, subject, digest))
            return True

    def delete_tag(self, repo: str, tag: str) -> bool:
        with self.lock:
            if self.resolve_tag(repo, tag) is None:
                return False
            return self.backend.delete_meta_tree(f"repositories/{repo}/_manifests/tags/{tag}")

    def tags(self, repo: str) -> list[str]:
        names = self.backend.list_meta(f"repositories/{repo}/_manifests/tags")
        return sorted(t for t in names if self.backend.exists_meta(self._tag(repo, t)))

    # -- referrers ------------------------------------------------------------------------
    def _referrer(self, repo: str, subject: Digest, referrer: Digest) -> str:
        return f"repositories/{repo}/_referrers/{_link(subject)}/{referrer.algorithm}-{referrer.hex}"

    def referrers(self, repo: str, subject: Digest) -> list[dict[str, Any]]:
        """Descriptors of the manifests in ``repo`` whose subject is ``subject``."""
        base = f"repositories/{repo}/_referrers/{_link(subject)}"
        found = []
        for name in sorted(self.backend.list_meta(base)):
            raw = self.backend.read_meta(f"{base}/{name}")
            if raw:
                found.append(json.loads(raw))
        return found

    # -- garbage collection ---------------------------------------------------------------
    def gc(self, grace: float = 0.0, idle: float = 60.0) -> GCResult:
        """Delete blobs no manifest references (Distribution's ``garbage-collect``), and
        metadata temporaries a killed write left behind.

        Safe while serving: it runs under the lock that commits and manifest writes take,
        keeps unreferenced blobs committed less than ``grace`` seconds ago or after the
        oldest upload open and used within ``idle`` seconds (a push in progress
        references them only at its end; an abandoned session does not hold gc back)
        and forgets the blob-descriptor cache. ``grace=0`` with no upload open deletes
        every unreferenced blob, as Distribution does offline.
        """
        with self.lock:
            cutoff = time.time() - grace
            # a session unused for ``idle`` seconds is not a push in progress: it must
            # not hold collection back (an abandoned one would, until it expires)
            idle_since = time.monotonic() - idle
            active = [s.started_at for s in self._uploads.values() if s.touched >= idle_since]
            if active:
                # less a second: file times are taken from a coarse clock (jiffies)
                cutoff = min(cutoff, min(active) - 1.0)
            recent = 0
            repos = self.catalog()
            marked: set[str] = set()
            for repo in repos:
                base = f"repositories/{repo}/_manifests/revisions"
                for algorithm in self.backend.list_meta(base):
                    for hexpart in self.backend.list_meta(f"{base}/{algorithm}"):
                        digest = Digest(f"{algorithm}:{hexpart}")
                        found = self.get_manifest(repo, digest)
                        if found is None:
                            continue
                        marked.add(digest)
                        body, media_type = found
                        try:
                            parsed = parse_manifest(body, media_type, algorithm)
                        except APIError:
                            continue
                        marked.update(parsed.blobs)
                        marked.update(c.digest for c in parsed.manifests)
            deleted: set[str] = set()
            freed = kept = 0
            for digest in list(self.backend.iter_blobs()):
                if digest in marked:
                    kept += 1
                elif self.backend.blob_mtime(digest) >= cutoff:
                    recent += 1
                else:
                    freed += self.backend.delete_blob(digest)
                    deleted.add(digest)
            for repo in repos:
                base = f"repositories/{repo}/_layers"
                for algorithm in self.backend.list_meta(base):
                    for hexpart in self.backend.list_meta(f"{base}/{algorithm}"):
                        if f"{algorithm}:{hexpart}" in deleted:
                            self.backend.delete_meta_tree(f"{base}/{algorithm}/{hexpart}")
            temporaries = self.backend.remove_stale_temporaries(cutoff)
            self._blob_cache.clear()
            self._manifest_cache.clear()
            return GCResult(len(deleted), freed, kept, recent, temporaries)
