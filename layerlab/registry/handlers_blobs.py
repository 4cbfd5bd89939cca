"""Blob endpoints: GET/HEAD/DELETE of blobs, and every way of uploading one.

Upload bodies are streamed: chunks read on the event loop are batched and handed to a
worker thread that hashes and writes them (hashlib and ``writev`` release the GIL), while
the loop reads the next batch.  A failed request body rolls the upload back to where
it was before the request, so a retry can continue.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from ..digest import Digest
from ..errors import InvalidDigestError
from .app import USER_KEY, Context, Stats
from .bodies import BodyReader, BodyTimeout, body_timeout_error
from .codes import APIError
from .names import check_digest, is_valid_name
from .storage import UploadSession

BATCH_BYTES = 4 << 20  # hand the worker thread this much at a time
INLINE_BYTES = 256 << 10  # smaller bodies are hashed and written on the loop (no thread hop)
SEND_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


def _upload_headers(name: str, session: UploadSession) -> dict[str, str]:
    end = session.size - 1 if session.size > 0 else 0
    return {
        "Location": f"/v2/{name}/blobs/uploads/{session.id}",
        "Range": f"0-{end}",
        "Docker-Upload-UUID": session.id,
        "Blob-Upload-Session-ID": session.id,
    }


def _created(name: str, digest: Digest) -> web.Response:
    return web.Response(status=201, headers={
        "Location": f"/v2/{name}/blobs/{digest}",
        "Docker-Content-Digest": str(digest),
        "Content-Length": "0",
    })


def _session(ctx: Context, name: str, upload_id: str) -> UploadSession:
    session = ctx.storage.get_upload(name, upload_id)
    if session is None:
        raise APIError("BLOB_UPLOAD_UNKNOWN", f"no upload {upload_id} in {name}",
                       detail={"uuid": upload_id})
    return session


async def receive(ctx: Context, request: web.Request, session: UploadSession, stats: Stats,
                  expected: int | None) -> int:
    """Stream the request body into ``session``; return how many bytes it held.

    Every byte is counted against the upload quota before it is kept; the caller settles
    the session's reservation once the request is over (:meth:`RegistryStorage.settle`).
    """
    settings = ctx.settings
    try:
        async with BodyReader(request, settings.body_timeout, settings.min_body_rate) as body:
            received = await _absorb_body(ctx, body, session, stats, expected)
    except BodyTimeout as exc:
        raise body_timeout_error(exc, "BLOB_UPLOAD_INVALID") from None
    if expected is not None and received != expected:
        raise APIError("SIZE_INVALID", f"body has {received} bytes, {expected} declared")
    return received


async def _absorb_body(ctx: Context, body: BodyReader, session: UploadSession, stats: Stats,
                       expected: int | None) -> int:
    loop = asyncio.get_running_loop()
    limit = ctx.settings.max_blob_size
    already = session.size
    batch: list[bytes] = []
    batch_size = received = 0
    pending: asyncio.Future | None = None

    def account(timings: tuple[float, float]) -> None:
        stats.hash_seconds += timings[0]
        stats.store_seconds += timings[1]

    try:
        while True:
            try:
                chunk = await body.read()
            except (ClientPayloadError, HttpProcessingError, ConnectionError) as exc:
                raise APIError("BLOB_UPLOAD_INVALID", f"request body ended early: {exc}") from None
            if not chunk:
                break
            received += len(chunk)
            if expected is not None and received > expected:
                raise APIError("SIZE_INVALID", f"body longer than the declared {expected} bytes")
            if limit is not None and already + received > limit:
                raise APIError("SIZE_INVALID", f"blob larger than the limit of {limit} bytes",
                               status=413)
            ctx.storage.reserve(session, len(chunk))
            if ctx.throttle.active:
                await ctx.throttle.consume(len(chunk))
            batch.append(chunk)
            batch_size += len(chunk)
            if batch_size >= BATCH_BYTES:
                if pending is not None:
                    account(await pending)
                pending = loop.run_in_executor(ctx.pool, session.absorb, batch)
                batch, batch_size = [], 0
        if pending is not None:
            account(await pending)
            pending = None
        if batch:
            if batch_size <= INLINE_BYTES:
                account(session.absorb(batch))
            else:
                account(await loop.run_in_executor(ctx.pool, session.absorb, batch))
    except BaseException:
        if pending is not None:  # let the worker finish before the caller rolls back
            try:
                await asyncio.shield(pending)
            except Exception:  # noqa: BLE001
                pass
        raise
    finally:
        stats.bytes_in += received
    return received


async def _receive_chunk(ctx: Context, request: web.Request, name: str, session: UploadSession,
                         stats: Stats) -> None:
    """Append a PATCH/PUT body, honouring ``Content-Range`` (416 when out of order)."""
    expected = request.content_length
    content_range = request.headers.get("Content-Range")
    if content_range is not None:
        m = _CONTENT_RANGE.match(content_range.strip())
        start, end = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
        if not m or start != session.size or end < start:
            raise APIError("BLOB_UPLOAD_INVALID",
                           f"Content-Range {content_range!r} does not continue the upload at "
                           f"offset {session.size}", status=416,
                           headers=_upload_headers(name, session))
        if expected is not None and expected != end - start + 1:
            raise APIError("SIZE_INVALID", f"Content-Length {expected} does not match "
                           f"Content-Range {content_range}")
        expected = end - start + 1
    point = session.checkpoint()
    try:
        await receive(ctx, request, session, stats, expected)
    except BaseException:
        session.rollback(point)
        raise
    finally:
        session.file.release()  # no descriptor held between requests
        ctx.storage.settle(session)


async def _finish(ctx: Context, name: str, session: UploadSession, digest: Digest,
                  stats: Stats) -> web.Response:
    hash_s, store_s = await ctx.run(ctx.storage.finish_upload, session, digest)
    stats.hash_seconds += hash_s
    stats.store_seconds += store_s
    return _created(name, digest)


async def upload_start(ctx: Context, request: web.Request, params: dict, stats: Stats):
    """POST /v2/<name>/blobs/uploads/: mount, monolithic upload, or a new session."""
    name = params["name"]
    query = request.query
    if "mount" in query:
        stats.kind = "upload_mount"
        source = query.get("from", "")
        try:
            digest = Digest(query["mount"])
        except InvalidDigestError:
            digest = None
        if digest is not None and is_valid_name(source) and _may_pull(ctx, request, source):
            size = ctx.storage.mount_blob(name, source, digest)
            if size is not None:
                return _created(name, digest)
    elif "digest" in query:
        stats.kind = "upload_monolithic"
        digest = check_digest(query["digest"])
        session = ctx.storage.new_upload(name, ctx.settings.verify, _client(request))
        async with session.lock:
            try:
                await receive(ctx, request, session, stats, request.content_length)
            except BaseException:
                ctx.storage.cancel_upload(session.id)
                raise
            return await _finish(ctx, name, session, digest, stats)
    session = ctx.storage.new_upload(name, ctx.settings.verify, _client(request))
    headers = _upload_headers(name, session)
    headers["OCI-Chunk-Min-Length"] = str(ctx.settings.chunk_min_length)
    headers["Content-Length"] = "0"
    return web.Response(status=202, headers=headers)


def _client(request: web.Request) -> str:
    """Who an upload session's bound counts against: the user, or the peer's address."""
    user = request.get(USER_KEY)
    return f"user {user}" if user else f"client {request.remote or 'unknown'}"


def _may_pull(ctx: Context, request: web.Request, repo: str) -> bool:
    if ctx.auth is None:
        return True
    try:
        ctx.auth.authorize(request.get(USER_KEY), "pull", f"repository {repo}")
    except APIError:
        return False
    return True


async def upload_status(ctx: Context, request: web.Request, params: dict, stats: Stats):
    name = params["name"]
    session = _session(ctx, name, params["id"])
    return web.Response(status=204, headers=_upload_headers(name, session))


async def upload_patch(ctx: Context, request: web.Request, params: dict, stats: Stats):
    name = params["name"]
    session = _session(ctx, name, params["id"])
    async with session.lock:
        if ctx.storage.get_upload(name, session.id) is None:
            raise APIError("BLOB_UPLOAD_UNKNOWN", f"upload {session.id} has ended")
        await _receive_chunk(ctx, request, name, session, stats)
        headers = _upload_headers(name, session)
    headers["Content-Length"] = "0"
    return web.Response(status=202, headers=headers)


async def upload_put(ctx: Context, request: web.Request, params: dict, stats: Stats):
    name = params["name"]
    session = _session(ctx, name, params["id"])
    if "digest" not in request.query:
        raise APIError("DIGEST_INVALID", "the digest query parameter is required")
    digest = check_digest(request.query["digest"])
    async with session.lock:
        if ctx.storage.get_upload(name, session.id) is None:
            raise APIError("BLOB_UPLOAD_UNKNOWN", f"upload {session.id} has ended")
        if request.can_read_body or request.headers.get("Content-Range"):
            await _receive_chunk(ctx, request, name, session, stats)
        return await _finish(ctx, name, session, digest, stats)


async def upload_cancel(ctx: Context, request: web.Request, params: dict, stats: Stats):
    name = params["name"]
    session = _session(ctx, name, params["id"])
    async with session.lock:
        if not ctx.storage.cancel_upload(session.id):
            raise APIError("BLOB_UPLOAD_UNKNOWN", f"upload {session.id} has ended")
    return web.Response(status=204)


def _blob_headers(digest: Digest) -> dict[str, str]:
    return {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }


def _find_blob(ctx: Context, name: str, raw_digest: str) -> tuple[Digest, int]:
    digest = check_digest(raw_digest)
    size = ctx.storage.blob_size(name, digest)
    if size is None:
        raise APIError("BLOB_UNKNOWN", f"blob {digest} is not in repository {name}",
                       detail={"digest": str(digest)})
    return digest, size


async def blob_head(ctx: Context, request: web.Request, params: dict, stats: Stats):
    digest, size = _find_blob(ctx, params["name"], params["digest"])
    headers = _blob_headers(digest)
    headers["Content-Length"] = str(size)
    return web.Response(status=200, headers=headers)


async def blob_get(ctx: Context, request: web.Request, params: dict, stats: Stats):
    digest, size = _find_blob(ctx, params["name"], params["digest"])
    headers = _blob_headers(digest)
    path = ctx.storage.backend.blob_path(digest)
    if path is not None and not ctx.throttle.active:
        return web.FileResponse(path, headers=headers)
    return await _stream_blob(ctx, request, digest, size, headers, stats)


async def _stream_blob(ctx: Context, request: web.Request, digest: Digest, size: int,
                       headers: dict[str, str], stats: Stats) -> web.StreamResponse:
    """Send a blob in chunks (bandwidth limit, or memory backend), with Range support."""
    start, stop, status = 0, size, 200
    if "Range" in request.headers:
        try:
            rng = request.http_range
            start = rng.start if rng.start is not None else 0
            stop = min(rng.stop, size) if rng.stop is not None else size
            if start < 0:
                start = max(size + start, 0)
            if start >= stop:
                raise ValueError("empty range")
        except ValueError:
            raise APIError("BLOB_UNKNOWN", "range not satisfiable", status=416,
                           headers={"Content-Range": f"bytes */{size}"}) from None
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = stop - start
    await response.prepare(request)
    sent, total = 0, stop - start
    f = ctx.storage.backend.open_blob(digest)
    try:
        f.seek(start)
        while sent < total:
            data = await ctx.run(f.read, min(SEND_CHUNK, total - sent))
            if not data:
                break
            await ctx.throttle.consume(len(data))
            if sent + len(data) == total:  # the client has it all once this is written
                stats.record(status, total)
            await response.write(data)
            sent += len(data)
    finally:
        f.close()
        stats.record(status, sent)
    await response.write_eof()
    return response


async def blob_delete(ctx: Context, request: web.Request, params: dict, stats: Stats):
    if not ctx.settings.delete_enabled:
        raise APIError("UNSUPPORTED", "deletion is disabled on this registry")
    name = params["name"]
    digest = check_digest(params["digest"])
    if not ctx.storage.unlink_blob(name, digest):
        raise APIError("BLOB_UNKNOWN", f"blob {digest} is not in repository {name}",
                       detail={"digest": str(digest)})
    return web.Response(status=202, headers={"Docker-Content-Digest": str(digest),
                                             "Content-Length": "0"})


BLOB_HANDLERS = {
    "upload_start": upload_start,
    "upload_status": upload_status,
    "upload_patch": upload_patch,
    "upload_put": upload_put,
    "upload_cancel": upload_cancel,
    "blob_get": blob_get,
    "blob_head": blob_head,
    "blob_delete": blob_delete,
}
