"""``LocalRegistry``: the registry started in a background thread on a loopback port."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import html
import shutil
import socket
import tempfile
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping

from aiohttp import web

from ..digest import CHUNK_SIZE
from ..units import format_rate, format_size, parse_duration, parse_rate, parse_size
from .app import Context, Recorder, Settings, Throttle, access_logger, build_app
from .auth import BasicAuth
from .backend import FilesystemBackend, MemoryBackend
from .log import RequestLog, errors_text
from .storage import GCResult, RegistryStorage, UploadLimits

VERIFY_MODES = ("stream", "reread")
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_allocator() -> bool:
    """Keep glibc from returning and re-faulting the memory of network buffers.

    Each socket read makes a 256 KiB ``bytes``; by default glibc hands such blocks back to
    the kernel (mmap / heap trimming) and the next read page-faults them in again, which
    costs about as much CPU as hashing the upload.  For a process dedicated to serving
    (``layerlab registry serve``): blocks under 1 MiB stay on the heap and up to 64 MiB
    of free heap is kept.  Returns False where this is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in (
        (_M_MMAP_THRESHOLD, 1 << 20), (_M_TRIM_THRESHOLD, 64 << 20), (_M_TOP_PAD, 16 << 20)))


class LocalRegistry:
    """An OCI distribution (Docker v2) registry served from a background thread.

    ``root`` is the storage directory (None: a temporary directory removed on
    :meth:`stop`); ``memory=True`` keeps everything in process memory instead.
    Knobs (``cache``, ``verify``, ``bandwidth``, ``latency``, ``read_only``,
    ``delete_enabled``) can be changed while it runs.

    Limits, so that no client can exhaust the server: ``max_uploads`` open upload
    sessions in all and ``max_uploads_per_client`` per user (or per peer address without
    authentication); more POSTs get 429 ``TOOMANYREQUESTS`` with ``Retry-After``.  An open
    session holds its temporary file but no descriptor between requests; one unused for
    ``upload_timeout`` (default 1 h) is cancelled by a timer.  ``max_upload_bytes``
    (default 32 GiB, None: unbounded) bounds what open sessions hold on disk together.
    ``idle_timeout`` (default 30 s) closes a connection that has not completed a
    request's headers that long after connecting or after its last response.
    ``body_timeout`` (default 30 s) and ``min_body_rate`` (default 1 KiB/s): a request
    body must bring at least ``min_body_rate × body_timeout`` bytes in every
    ``body_timeout`` seconds the server waits for it, else 408 and the connection closes.
    ``gc_interval`` runs :meth:`gc` with ``gc_grace`` periodically while serving (default
    off), calling ``on_gc(result)`` after each.  ``log`` keeps the last ``log_records``
    requests (its counters cover all of them).  Use as a context manager::

        with LocalRegistry() as reg:
            push_somewhere(f"{reg.host}/demo/app:1")
            reg.log.to_frame()
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        memory: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        cache: bool = True,
        verify: str = "stream",
        bandwidth: str | float | None = None,
        latency: str | float | None = None,
        htpasswd: str | Path | None = None,
        permissions: Mapping[str, str] | None = None,
        read_only: bool = False,
        delete_enabled: bool = True,
        max_manifest_size: int | str = 4 << 20,
        max_blob_size: int | str | None = None,
        chunk_min_length: int = CHUNK_SIZE,
        durable: bool = True,
        workers: int = 16,
        max_uploads: int = 1000,
        max_uploads_per_client: int = 100,
        upload_timeout: str | float = 3600.0,
        max_upload_bytes: int | str | None = 32 << 30,
        idle_timeout: str | float = 30.0,
        body_timeout: str | float = 30.0,
        min_body_rate: str | float = 1024.0,
        gc_interval: str | float | None = None,
        gc_grace: str | float = 600.0,
        on_gc: Callable[[GCResult], Any] | None = None,
        log_records: int | None = 100_000,
    ) -> None:
        if memory and root is not None:
            raise ValueError("give either root or memory=True, not both")
        self._root = Path(root) if root is not None else None
        self._hold: int | None = None  # the root's shared lock while serving
        self._limits = UploadLimits(
            sessions=max_uploads, per_client=max_uploads_per_client,
            ttl=parse_duration(upload_timeout),
            bytes=parse_size(max_upload_bytes) if max_upload_bytes is not None else None)
        self._gc_interval = parse_duration(gc_interval) if gc_interval is not None else None
        if self._gc_interval is not None and self._gc_interval <= 0:
            raise ValueError("gc_interval must be positive (or None: no periodic gc)")
        self._gc_grace = parse_duration(gc_grace)
        self.last_gc: GCResult | None = None
        self._on_gc = on_gc
        self._memory = memory
        self._bind_host = host
        self._bind_port = port
        self._cache = bool(cache)
        self._durable = durable
        self._workers = workers
        self._idle_timeout = parse_duration(idle_timeout)
        self.settings = Settings(
            max_manifest_size=parse_size(max_manifest_size),
            max_blob_size=parse_size(max_blob_size) if max_blob_size is not None else None,
            chunk_min_length=chunk_min_length,
            body_timeout=parse_duration(body_timeout),
            min_body_rate=parse_rate(min_body_rate),
            read_only=read_only,
            delete_enabled=delete_enabled,
        )
        self.verify = verify
        self.bandwidth = bandwidth
        self.latency = latency
        self._auth = BasicAuth(htpasswd, permissions) if htpasswd is not None else None
        self.log = RequestLog(log_records)
        self.storage: RegistryStorage | None = None
        self._temp_root: Path | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: int | None = None

    # -- knobs ----------------------------------------------------------------------------
    @property
    def cache(self) -> bool:
        """The in-memory blob descriptor cache (Distribution's ``blobdescriptor: inmemory``)."""
        return self._cache

    @cache.setter
    def cache(self, enabled: bool) -> None:
        self._cache = bool(enabled)
        if self.storage is not None:
            self.storage.cache = self._cache

    @property
    def verify(self) -> str:
        """``stream`` (hash while receiving) or ``reread`` (read the blob back on commit)."""
        return self.settings.verify

    @verify.setter
    def verify(self, mode: str) -> None:
        if mode not in VERIFY_MODES:
            raise ValueError(f"verify must be one of {VERIFY_MODES}, not {mode!r}")
        self.settings.verify = mode

    @property
    def bandwidth(self) -> float | None:
        """Bytes per second shared by all connections, both directions (None: unlimited)."""
        return self.settings.bandwidth

    @bandwidth.setter
    def bandwidth(self, value: str | float | None) -> None:
        rate = parse_rate(value) if value is not None else None
        if rate is not None and rate <= 0:
            raise ValueError("bandwidth must be positive (or None for unlimited)")
        self.settings.bandwidth = rate

    @property
    def latency(self) -> float:
        """Seconds added before answering each request."""
        return self.settings.latency

    @latency.setter
    def latency(self, value: str | float | None) -> None:
        seconds = parse_duration(value) if value is not None else 0.0
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self.settings.latency = seconds

    @property
    def read_only(self) -> bool:
        return self.settings.read_only

    @read_only.setter
    def read_only(self, value: bool) -> None:
        self.settings.read_only = bool(value)

    @property
    def delete_enabled(self) -> bool:
        return self.settings.delete_enabled

    @delete_enabled.setter
    def delete_enabled(self, value: bool) -> None:
        self.settings.delete_enabled = bool(value)

    # -- addresses ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the registry is not running; call start() first")
        return self._port

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, for image references (``f"{reg.host}/repo:tag"``)."""
        bind = self._bind_host if self._bind_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        bind = f"[{bind}]" if ":" in bind else bind
        return f"{bind}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def root(self) -> Path | None:
        """The storage directory (None for a memory registry)."""
        return self._root or self._temp_root

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> "LocalRegistry":
        """Bind the port, start serving in a background thread; return self once ready."""
        if self.running:
            return self
        if self._memory:
            backend = MemoryBackend()
        else:
            if self._root is None:
                self._temp_root = Path(tempfile.mkdtemp(prefix="layerlab-registry-"))
                # removed by stop(), or at exit if a notebook never calls it
                weakref.finalize(self, shutil.rmtree, str(self._temp_root), True)
            backend = FilesystemBackend(self.root, durable=self._durable)
        self._hold = backend.hold(exclusive=False)  # an offline gc refuses while held
        self.storage = RegistryStorage(backend, cache=self._cache, limits=self._limits)
        pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="layerlab-registry")
        ctx = Context(self.storage, self.settings, Throttle(self.settings), pool, self._auth)
        sock = socket.create_server((self._bind_host, self._bind_port), backlog=512)
        self._port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(build_app(ctx, self.log), sock, pool, ready, failure),
            name=f"layerlab-registry-{self._port}", daemon=True,
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def _serve(self, app: web.Application, sock: socket.socket, pool: ThreadPoolExecutor,
               ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        # keepalive_timeout runs from the connection's start and from each response until
        # the next request's headers are complete: it closes idle connections and clients
        # that drip their headers alike
        runner = web.AppRunner(app, handle_signals=False, access_log=access_logger(),
                               access_log_class=Recorder, shutdown_timeout=1.0,
                               keepalive_timeout=self._idle_timeout,
                               # what a refused body still sends is discarded this long at most
                               lingering_time=min(10.0, self.settings.body_timeout or 10.0))
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock, backlog=512).start())
        except BaseException as exc:  # noqa: BLE001 - handed to start()
            failure.append(exc)
            sock.close()
            ready.set()
            loop.close()
            return
        self._loop = loop
        chores = loop.create_task(self._housekeeping(pool))
        ready.set()
        try:
            loop.run_forever()
        finally:
            chores.cancel()
            loop.run_until_complete(asyncio.gather(chores, return_exceptions=True))
            loop.run_until_complete(runner.cleanup())
            pool.shutdown(wait=True, cancel_futures=True)
            loop.close()
            sock.close()

    async def _housekeeping(self, pool: ThreadPoolExecutor) -> None:
        """Expire unused upload sessions on a timer, and run the periodic gc if asked."""
        storage = self.storage
        assert storage is not None
        loop = asyncio.get_running_loop()
        every = max(0.05, min(self._limits.ttl / 4, 30.0))
        if self._gc_interval:
            every = min(every, self._gc_interval)
        next_gc = loop.time() + (self._gc_interval or 0.0)
        while True:
            await asyncio.sleep(every)
            storage.expire_uploads()
            if self._gc_interval and loop.time() >= next_gc:
                try:
                    self.last_gc = await loop.run_in_executor(pool, storage.gc, self._gc_grace)
                    if self._on_gc is not None:
                        self._on_gc(self.last_gc)
                except Exception:  # noqa: BLE001 - a full disk: logged, serving goes on
                    logging.getLogger("layerlab.registry").exception("periodic gc failed")
                next_gc = loop.time() + self._gc_interval

    def stop(self) -> None:
        """Stop serving; remove the temporary root if the registry made one."""
        if self._thread is not None:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._thread = None
            self._loop = None
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None
        if self._temp_root is not None:
            shutil.rmtree(self._temp_root, ignore_errors=True)
            self._temp_root = None

    def __enter__(self) -> "LocalRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def gc(self, grace: float = 600.0, idle: float = 60.0) -> GCResult:
        """Delete blobs no manifest references, while serving (see
        :meth:`RegistryStorage.gc`: blobs younger than ``grace`` seconds or than the
        oldest upload used within ``idle`` seconds are kept)."""
        if self.storage is None:
            raise RuntimeError("the registry has not been started")
        return self.storage.gc(grace, idle)

    # -- display --------------------------------------------------------------------------
    def _knobs(self) -> dict[str, str]:
        return {
            "cache": "on" if self.cache else "off",
            "verify": self.verify,
            "bandwidth": format_rate(self.bandwidth) if self.bandwidth else "unlimited",
            "latency": f"{self.latency * 1000:g} ms",
            "auth": "htpasswd" if self._auth else "none",
            "read_only": str(self.read_only),
            "delete": str(self.delete_enabled),
        }

    def __repr__(self) -> str:
        where = "memory" if self._memory else str(self.root) if self.root else "temporary"
        url = self.url if self.running else "stopped"
        knobs = ", ".join(f"{k}={v}" for k, v in self._knobs().items())
        c = self.log.counters()
        return (f"LocalRegistry({url}, root={where}, {knobs}, requests={c['requests']}, "
                f"in={format_size(c['bytes_in'])}, out={format_size(c['bytes_out'])})")

    def _repr_html_(self) -> str:
        where = "memory" if self._memory else str(self.root) if self.root else "temporary"
        rows = {"url": self.url if self.running else "stopped", "root": where, **self._knobs()}
        c = self.log.counters()
        rows["requests"] = f"{c['requests']} ({errors_text(c)})"
        rows["bytes"] = f"{format_size(c['bytes_in'])} in, {format_size(c['bytes_out'])} out"
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
        return f"<div><b>LocalRegistry</b><table>{body}</table></div>"
