"""The aiohttp application: routing, the per-request pipeline, knobs, and the request log.

One catch-all route receives every ``/v2/...`` request; :func:`route` matches the rest of
the path against the spec's endpoint shapes (the repository name may hold slashes, so
the endpoint is recognised from the end of the path), and the request goes through:
added latency, authentication and authorisation, the read-only check, then the handler
(:mod:`.handlers_blobs`, :mod:`.handlers_manifests`).  Errors become the spec's JSON body.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..digest import CHUNK_SIZE
from .auth import BasicAuth
from .codes import APIError
from .log import RequestLog, RequestRecord
from .names import check_name
from .storage import RegistryStorage

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
BURST_SECONDS = 0.02


@dataclass
class Settings:
    """The knobs an experiment may turn while the registry runs."""

    verify: str = "stream"  # or "reread"
    bandwidth: float | None = None  # bytes per second, shared by all connections
    latency: float = 0.0  # seconds added before answering each request
    read_only: bool = False
    delete_enabled: bool = True
    max_manifest_size: int = 4 << 20
    max_blob_size: int | None = None
    chunk_min_length: int = CHUNK_SIZE
    body_timeout: float = 30.0  # seconds of waiting for a body's bytes (0: no limit) ...
    min_body_rate: float = 1024.0  # ... in which it must send this many bytes per second


class Throttle:
    """A shared token bucket (virtual-time form): ``consume(n)`` waits until n bytes may pass."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._next = 0.0
        self._rate: float | None = None

    @property
    def active(self) -> bool:
        return bool(self._settings.bandwidth)

    async def consume(self, n: int) -> None:
        rate = self._settings.bandwidth
        if not rate or n <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if rate != self._rate:
            self._rate, self._next = rate, now
        start = max(now, self._next)
        self._next = start + n / rate
        delay = self._next - now - BURST_SECONDS
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class Stats:
    """What the handlers note about a request, and the recording of its RequestRecord.

    A response whose body is already in hand (uploads, manifests, HEAD, errors) is
    recorded before it is sent, so the log is complete when the client sees the answer;
    a blob body is recorded once sent (:class:`Recorder`) or, when streamed by
    layerlab, just before its last chunk.
    """

    method: str = ""
    path: str = ""
    log: RequestLog | None = None
    kind: str = "unknown"
    repository: str | None = None
    bytes_in: int = 0
    hash_seconds: float = 0.0
    store_seconds: float = 0.0
    start: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.perf_counter)
    recorded: bool = False

    def record(self, status: int, bytes_out: int, duration: float | None = None) -> None:
        if self.recorded or self.log is None:
            return
        self.recorded = True
        self.log.append(RequestRecord(
            method=self.method, path=self.path, repository=self.repository, kind=self.kind,
            status=status, bytes_in=self.bytes_in, bytes_out=bytes_out, start=self.start,
            duration=time.perf_counter() - self.t0 if duration is None else duration,
            hash_seconds=self.hash_seconds, store_seconds=self.store_seconds,
        ))


@dataclass
class Context:
    """Everything a handler needs."""

    storage: RegistryStorage
    settings: Settings
    throttle: Throttle
    pool: ThreadPoolExecutor
    auth: BasicAuth | None = None

    async def run(self, fn: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


# (pattern, endpoint) in match order; ``name`` is validated separately for a NAME_INVALID.
ROUTES = [
    (re.compile(r"^(?P<name>.+)/blobs/uploads/?$"), "uploads"),
    (re.compile(r"^(?P<name>.+)/blobs/uploads/(?P<id>[^/]+)$"), "upload"),
    (re.compile(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$"), "blob"),
    (re.compile(r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$"), "manifest"),
    (re.compile(r"^(?P<name>.+)/tags/list$"), "tags"),
    (re.compile(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$"), "referrers"),
]

# (endpoint, method) -> kind; the kind also says which handler answers
KINDS = {
    ("ping", "GET"): "ping", ("ping", "HEAD"): "ping",
    ("catalog", "GET"): "catalog",
    ("uploads", "POST"): "upload_start",
    ("upload", "GET"): "upload_status", ("upload", "PATCH"): "upload_patch",
    ("upload", "PUT"): "upload_put", ("upload", "DELETE"): "upload_cancel",
    ("blob", "GET"): "blob_get", ("blob", "HEAD"): "blob_head", ("blob", "DELETE"): "blob_delete",
    ("manifest", "GET"): "manifest_get", ("manifest", "HEAD"): "manifest_head",
    ("manifest", "PUT"): "manifest_put", ("manifest", "DELETE"): "manifest_delete",
    ("tags", "GET"): "tags_list",
    ("referrers", "GET"): "referrers",
}
READ_METHODS = frozenset({"GET", "HEAD"})


def route(tail: str) -> tuple[str, dict[str, str]]:
    """Which endpoint a path after ``/v2/`` names, and its parameters."""
    if tail == "":
        return "ping", {}
    if tail in ("_catalog", "_catalog/"):
        return "catalog", {}
    for pattern, endpoint in ROUTES:
        m = pattern.match(tail)
        if m:
            return endpoint, m.groupdict()
    return "none", {}


def error_response(exc: APIError) -> web.Response:
    headers = dict(exc.headers)
    headers[API_VERSION[0]] = API_VERSION[1]
    close = headers.pop("Connection", None) == "close"
    response = web.Response(status=exc.status or 500, body=exc.body(),
                            content_type="application/json", headers=headers)
    if close:  # aiohttp then closes the connection once the answer is sent
        response.force_close()
    return response


def _body_bytes(request: web.BaseRequest, response: web.StreamResponse) -> int:
    if request.method == "HEAD":
        return 0
    if response.content_length is not None:
        return response.content_length
    return response.body_length


class Recorder(AbstractAccessLogger):
    """aiohttp's access-log hook, called once a response is sent: records blob bodies."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_: float) -> None:
        stats: Stats | None = request.get(STATS_KEY)
        if stats is not None and not stats.recorded:
            stats.record(response.status, _body_bytes(request, response), time_)

    @property
    def enabled(self) -> bool:
        return True


LOG_KEY = web.AppKey("layerlab_request_log", RequestLog)
CTX_KEY = web.AppKey("layerlab_context", Context)
STATS_KEY = web.RequestKey("layerlab_stats", Stats)
USER_KEY = web.RequestKey("layerlab_user", str)


async def _dispatch(request: web.Request) -> web.StreamResponse:
    from .handlers_blobs import BLOB_HANDLERS
    from .handlers_manifests import MANIFEST_HANDLERS

    ctx = request.app[CTX_KEY]
    stats = Stats(method=request.method, path=request.path, log=request.app[LOG_KEY])
    request[STATS_KEY] = stats
    try:
        endpoint, params = route(request.path[len("/v2/"):])
        kind = KINDS.get((endpoint, request.method))
        if endpoint != "none":
            stats.kind = kind or "unsupported"
        name = params.get("name")
        if name is not None:
            stats.repository = name
        if ctx.settings.latency:
            await asyncio.sleep(ctx.settings.latency)
        if endpoint == "none":
            raise APIError("UNSUPPORTED", f"no such endpoint: {request.path}", status=404)
        if kind is None:
            allowed = sorted(m for (e, m) in KINDS if e == endpoint)
            raise APIError("UNSUPPORTED", f"method {request.method} not allowed here",
                           headers={"Allow": ", ".join(allowed)})
        # an upload session's status belongs to the pusher: reading it needs push access
        writes = request.method not in READ_METHODS or endpoint == "upload"
        if ctx.auth is not None:
            header = request.headers.get("Authorization")
            user = await ctx.run(ctx.auth.authenticate, header) if header else None
            if user is not None:
                request[USER_KEY] = user
            scope = f"repository {name}" if name else "the registry"
            ctx.auth.authorize(user, "push" if writes else "pull", scope)
        if name is not None:  # after authentication: a bad name tells nothing to a stranger
            check_name(name)
        if writes and ctx.settings.read_only:
            raise APIError("UNSUPPORTED", "the registry is read-only")
        handler = BLOB_HANDLERS.get(kind) or MANIFEST_HANDLERS[kind]
        response = await handler(ctx, request, params, stats)
    except APIError as exc:
        response = error_response(exc)
    except Exception as exc:  # noqa: BLE001 - a bug or a full disk: still a JSON answer
        logging.getLogger("layerlab.registry").exception("error answering %s %s",
                                                         request.method, request.path)
        response = error_response(APIError("UNKNOWN", f"{type(exc).__name__}: {exc}"))
    response.headers[API_VERSION[0]] = API_VERSION[1]
    if isinstance(response, web.Response):  # body in hand: record before sending
        stats.record(response.status, _body_bytes(request, response))
    return response


async def _v2_redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/v2/")


def build_app(ctx: Context, log: RequestLog) -> web.Application:
    """The aiohttp application serving the OCI distribution API."""
    app = web.Application(client_max_size=ctx.settings.max_manifest_size + 1)
    app[CTX_KEY] = ctx
    app[LOG_KEY] = log
    app.router.add_route("*", "/v2", _v2_redirect)
    app.router.add_route("*", "/v2/{tail:.*}", _dispatch)
    return app


def access_logger() -> logging.Logger:
    """The (silent) logger aiohttp needs before it calls :class:`Recorder`."""
    logger = logging.getLogger("layerlab.registry.access")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger
