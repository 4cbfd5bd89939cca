"""Where the registry keeps bytes: a directory tree (durable) or process memory.

Both backends offer the same small interface: *metadata* (small files addressed by a
relative key such as ``repositories/a/b/_layers/sha256/<hex>/link``, written atomically),
*blobs* (content-addressed, ``blobs/sha256/ab/<hex>/data``), and *uploads* (temporary
files outside the blob tree, renamed into place only once verified).

Keys are built by :mod:`layerlab.registry.storage` from validated names, tags and digests
only; :meth:`FilesystemBackend._path` checks again that no key leaves the root.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import hashlib
import io
import os
import shutil
import time
import uuid as uuidlib
from pathlib import Path
from typing import BinaryIO, Iterator

from ..digest import CHUNK_SIZE, Digest
from ..errors import RegistryRootBusyError, UnsafePathError

_SYNC_FILE_RANGE_WRITE = 2
WRITEBACK_EVERY = 8 << 20
"""A durable upload starts writing its file back every this many bytes received, so the
fsync of its commit waits only for the last stretch (at most this much)."""


def _load_sync_file_range():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    return fn


_sync_file_range = _load_sync_file_range()


SERVE_LOCK = ".layerlab-serve.lock"


class FileUpload:
    """An upload's temporary file; invisible to readers until committed.

    Its descriptor is open only while a request writes to it (:meth:`release` after each
    request): an abandoned session holds a file on disk, not a descriptor."""

    def __init__(self, path: str, durable: bool) -> None:
        self.path = path
        self.size = 0
        self._durable = durable
        self._kicked = 0
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        self._fd = -1

    def _open(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_WRONLY)
            os.lseek(self._fd, self.size, os.SEEK_SET)
        return self._fd

    def release(self) -> None:
        """Close the descriptor until the next write (the file stays)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def write(self, chunks: list[bytes]) -> None:
        """Append ``chunks`` (blocking; call from a worker thread)."""
        total = sum(len(c) for c in chunks)
        written = os.writev(self._open(), chunks)
        if written != total:  # a short write: finish chunk by chunk
            skip = written
            for c in chunks:
                if skip >= len(c):
                    skip -= len(c)
                    continue
                view = memoryview(c)[skip:]
                skip = 0
                while view:
                    view = view[os.write(self._fd, view):]
        self.size += total
        if self._durable and _sync_file_range and self.size - self._kicked >= WRITEBACK_EVERY:
            _sync_file_range(self._fd, self._kicked, self.size - self._kicked, _SYNC_FILE_RANGE_WRITE)
            self._kicked = self.size

    def truncate(self, size: int) -> None:
        """Drop everything after ``size`` bytes (a failed chunk)."""
        os.ftruncate(self._open(), size)
        os.lseek(self._fd, size, os.SEEK_SET)
        self.size = size
        self._kicked = min(self._kicked, size)

    def rehash(self, algorithm: str) -> Digest:
        """Read the file back and hash it (the "registry without resumable hashing" path)."""
        h = hashlib.new(algorithm)
        buf = bytearray(CHUNK_SIZE)
        view = memoryview(buf)
        with open(self.path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
        return Digest(f"{algorithm}:{h.hexdigest()}")

    def seal(self) -> None:
        """Flush to disk (fsync when durable) and close."""
        if self._durable:
            os.fsync(self._open())
        self.release()

    def discard(self) -> None:
        """Close and delete the temporary file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class FilesystemBackend:
    """Blobs and metadata in a directory tree laid out like Distribution's."""

    kind = "filesystem"

    def __init__(self, root: str | Path, durable: bool = True) -> None:
        self.root = Path(root).resolve()
        self.durable = durable
        self._root_str = str(self.root)
        for sub in ("blobs", "repositories", "uploads"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- paths ---------------------------------------------------------------------------
    def _path(self, key: str) -> str:
        path = os.path.normpath(os.path.join(self._root_str, key))
        if not path.startswith(self._root_str + os.sep):
            raise UnsafePathError(f"storage key {key!r} leaves the registry root")
        return path

    def blob_path(self, digest: Digest) -> str:
        """Where a blob's bytes live (for ``sendfile``)."""
        return self._path(f"blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}/data")

    # -- who uses the root ----------------------------------------------------------------
    def hold(self, exclusive: bool) -> int:
        """Lock the root (``.layerlab-serve.lock``): shared by every serving registry,
        exclusive for an offline gc; return the descriptor that holds it (close it to
        release; the OS releases it when the process dies, even by kill -9). Raises
        :class:`RegistryRootBusyError` when the other kind is held."""
        fd = os.open(self._path(SERVE_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RegistryRootBusyError(
                f"{self.root} is served by a running registry: stop it first, or run "
                "LocalRegistry.gc() in the process that serves it" if exclusive else
                f"{self.root} is being garbage-collected offline") from None
        return fd

    def blob_mtime(self, digest: Digest) -> float:
        """When a blob was committed (seconds since the epoch)."""
        return os.stat(self.blob_path(digest)).st_mtime

    def remove_stale_temporaries(self, before: float) -> int:
        """Delete metadata temporaries (``*.tmp-*``: a write killed half-way) older than
        ``before``; return how many."""
        removed = 0
        for dirpath, _, files in os.walk(self._path("repositories")):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    if ".tmp-" in name and os.stat(path).st_mtime < before:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed

    # -- metadata ------------------------------------------------------------------------
    def read_meta(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def exists_meta(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def write_meta(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuidlib.uuid4().hex}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def delete_meta(self, key: str) -> bool:
        try:
            os.unlink(self._path(key))
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False

    def delete_meta_tree(self, key: str) -> bool:
        path = self._path(key)
        if not os.path.isdir(path):
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True

    def list_meta(self, key: str) -> list[str]:
        try:
            return [n for n in os.listdir(self._path(key)) if ".tmp-" not in n]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def repositories(self) -> list[str]:
        base = self._path("repositories")
        found = []
        for dirpath, dirnames, _ in os.walk(base):
            if "_layers" in dirnames or "_manifests" in dirnames:
                found.append(os.path.relpath(dirpath, base).replace(os.sep, "/"))
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return found

    # -- blobs ---------------------------------------------------------------------------
    def blob_size(self, digest: Digest) -> int | None:
        try:
            return os.stat(self.blob_path(digest)).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_blob(self, digest: Digest) -> bytes:
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def open_blob(self, digest: Digest) -> BinaryIO:
        return open(self.blob_path(digest), "rb")

    def put_blob(self, digest: Digest, data: bytes) -> None:
        """Store small content (a manifest) atomically."""
        upload = self.new_upload()
        upload.write([data])
        self.commit_upload(upload, digest)

    def new_upload(self, upload_id: str | None = None) -> FileUpload:
        name = upload_id or uuidlib.uuid4().hex
        return FileUpload(self._path(f"uploads/{name}"), self.durable)

    def commit_upload(self, upload: FileUpload, digest: Digest) -> None:
        """fsync the verified temporary file and rename it into the blob tree."""
        upload.seal()
        dest = self.blob_path(digest)
        if os.path.exists(dest):  # same content already stored (a concurrent upload)
            upload.discard()
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.rename(upload.path, dest)

    def delete_blob(self, digest: Digest) -> int:
        size = self.blob_size(digest) or 0
        shutil.rmtree(os.path.dirname(self.blob_path(digest)), ignore_errors=True)
        return size

    def iter_blobs(self) -> Iterator[Digest]:
        base = self._path("blobs")
        for algorithm in sorted(os.listdir(base)):
            for prefix in sorted(os.listdir(os.path.join(base, algorithm))):
                for hexpart in sorted(os.listdir(os.path.join(base, algorithm, prefix))):
                    if os.path.exists(os.path.join(base, algorithm, prefix, hexpart, "data")):
                        yield Digest(f"{algorithm}:{hexpart}")

    def clear_uploads(self, older_than: float = 0.0) -> int:
        """Remove leftover temporary upload files (a crash's debris); return how many."""
        base = self._path("uploads")
        now = time.time()
        removed = 0
        for name in os.listdir(base):
            path = os.path.join(base, name)
            try:
                if now - os.stat(path).st_mtime >= older_than:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed


class MemoryUpload:
    """An upload held in a growing in-memory buffer."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    @property
    def size(self) -> int:
        return len(self.buffer)

    def release(self) -> None:
        """Nothing to close."""

    def write(self, chunks: list[bytes]) -> None:
        for c in chunks:
            self.buffer += c

    def truncate(self, size: int) -> None:
        del self.buffer[size:]

    def rehash(self, algorithm: str) -> Digest:
        return Digest(f"{algorithm}:{hashlib.new(algorithm, self.buffer).hexdigest()}")

    def seal(self) -> None:
        pass

    def discard(self) -> None:
        self.buffer = bytearray()


class MemoryBackend:
    """Everything in process memory: for quick notebooks; gone when the registry stops."""

    kind = "memory"
    root = None
    durable = False

    def __init__(self) -> None:
        self._meta: dict = {}
        self._blobs: dict[Digest, bytes] = {}
        self._committed: dict[Digest, float] = {}

    def hold(self, exclusive: bool) -> None:
        """Nothing to lock: no other process sees this registry."""
        return None

    def blob_mtime(self, digest: Digest) -> float:
        return self._committed.get(digest, 0.0)

    def remove_stale_temporaries(self, before: float) -> int:
        return 0

    def _node(self, key: str, create: bool = False):
        parts = key.split("/")
        node = self._meta
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                if not create:
                    return None, parts[-1]
                child = node[part] = {}
            node = child
        return node, parts[-1]

    def blob_path(self, digest: Digest) -> None:
        return None

    def read_meta(self, key: str) -> bytes | None:
        parent, name = self._node(key)
        value = parent.get(name) if parent is not None else None
        return value if isinstance(value, bytes) else None

    def exists_meta(self, key: str) -> bool:
        parent, name = self._node(key)
        return parent is not None and name in parent

    def write_meta(self, key: str, data: bytes) -> None:
        parent, name = self._node(key, create=True)
        parent[name] = bytes(data)

    def delete_meta(self, key: str) -> bool:
        parent, name = self._node(key)
        if parent is None or not isinstance(parent.get(name), bytes):
            return False
        del parent[name]
        return True

    def delete_meta_tree(self, key: str) -> bool:
        parent, name = self._node(key)
        if parent is None or not isinstance(parent.get(name), dict):
            return False
        del parent[name]
        return True

    def list_meta(self, key: str) -> list[str]:
        parent, name = self._node(key)
        node = parent.get(name) if parent is not None else None
        return list(node) if isinstance(node, dict) else []

    def repositories(self) -> list[str]:
        found: list[str] = []

        def walk(node: dict, prefix: str) -> None:
            if "_layers" in node or "_manifests" in node:
                found.append(prefix)
            for name, child in node.items():
                if isinstance(child, dict) and not name.startswith("_"):
                    walk(child, f"{prefix}/{name}" if prefix else name)

        walk(self._meta.get("repositories", {}), "")
        return [r for r in found if r]

    def blob_size(self, digest: Digest) -> int | None:
        data = self._blobs.get(digest)
        return None if data is None else len(data)

    def read_blob(self, digest: Digest) -> bytes:
        return self._blobs[digest]

    def open_blob(self, digest: Digest) -> BinaryIO:
        return io.BytesIO(self._blobs[digest])

    def put_blob(self, digest: Digest, data: bytes) -> None:
        self._blobs.setdefault(digest, bytes(data))
        self._committed.setdefault(digest, time.time())

    def new_upload(self, upload_id: str | None = None) -> MemoryUpload:
        return MemoryUpload()

    def commit_upload(self, upload: MemoryUpload, digest: Digest) -> None:
        if digest not in self._blobs:
            self._blobs[digest] = bytes(upload.buffer)
            self._committed[digest] = time.time()
        upload.discard()

    def delete_blob(self, digest: Digest) -> int:
        self._committed.pop(digest, None)
        data = self._blobs.pop(digest, None)
        return 0 if data is None else len(data)

    def iter_blobs(self) -> Iterator[Digest]:
        return iter(sorted(self._blobs))

    def clear_uploads(self, older_than: float = 0.0) -> int:
        return 0
