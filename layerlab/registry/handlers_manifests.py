"""Manifest, tag, catalog, referrers and ping endpoints."""

from __future__ import annotations

import json
from urllib.parse import quote

from aiohttp import web

from .. import mediatypes as mt
from ..digest import Digest
from .app import Context, Stats
from .bodies import BodyReader, BodyTimeout, body_timeout_error
from .codes import APIError
from .manifest import accepted_types, parse_manifest
from .names import check_digest, is_valid_tag, looks_like_digest


def _json(data, status: int = 200, headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(),
                        content_type=content_type, headers=headers)


async def ping(ctx: Context, request: web.Request, params: dict, stats: Stats):
    """GET /v2/: the API is here."""
    return _json({})


def _paginate(items: list[str], request: web.Request) -> tuple[list[str], str | None]:
    """Apply ``last`` and ``n``; return the page and the ``Link`` header for the next one."""
    last = request.query.get("last")
    if last:
        items = [i for i in items if i > last]
    raw_n = request.query.get("n")
    if raw_n is None:
        return items, None
    try:
        n = int(raw_n)
        if n < 0:
            raise ValueError
    except ValueError:
        raise APIError("UNSUPPORTED", f"n must be a non-negative integer, not {raw_n!r}",
                       status=400) from None
    page = items[:n]
    if n == 0 or len(items) <= n:
        return page, None
    return page, f'<{request.path}?n={n}&last={quote(page[-1], safe="")}>; rel="next"'


async def catalog(ctx: Context, request: web.Request, params: dict, stats: Stats):
    """GET /v2/_catalog: the repositories, paginated with n and last."""
    page, link = _paginate(ctx.storage.catalog(), request)
    return _json({"repositories": page}, headers={"Link": link} if link else None)


async def tags_list(ctx: Context, request: web.Request, params: dict, stats: Stats):
    """GET /v2/<name>/tags/list, paginated with n and last."""
    name = params["name"]
    if not ctx.storage.repository_exists(name):
        raise APIError("NAME_UNKNOWN", f"repository {name} is not known", detail={"name": name})
    page, link = _paginate(ctx.storage.tags(name), request)
    return _json({"name": name, "tags": page}, headers={"Link": link} if link else None)


def _resolve(ctx: Context, name: str, reference: str) -> Digest:
    """A tag or digest reference -> digest; MANIFEST_UNKNOWN when there is none."""
    if looks_like_digest(reference):
        return check_digest(reference)
    digest = ctx.storage.resolve_tag(name, reference) if is_valid_tag(reference) else None
    if digest is None:
        raise APIError("MANIFEST_UNKNOWN", f"manifest {reference} is not in repository {name}",
                       detail={"name": name, "reference": reference})
    return digest


def _negotiate(ctx: Context, request: web.Request, name: str, reference: str, digest: Digest,
               body: bytes, media_type: str) -> tuple[Digest, bytes, str]:
    """Serve what the client's ``Accept`` allows; an index falls back to its linux/amd64
    image for clients that do not accept indexes (as Distribution does, for tags)."""
    accepted = accepted_types(request.headers.getall("Accept", []))
    if accepted is None or media_type in accepted:
        return digest, body, media_type
    if media_type in mt.INDEXES and not looks_like_digest(reference):
        doc = json.loads(body)
        for entry in doc.get("manifests", []):
            platform = entry.get("platform") or {}
            if platform.get("os") == "linux" and platform.get("architecture") == "amd64" \
                    and entry.get("mediaType") in accepted:
                child = Digest(entry["digest"])
                found = ctx.storage.get_manifest(name, child)
                if found is not None:
                    return child, found[0], found[1]
    raise APIError("MANIFEST_UNKNOWN",
                   f"manifest {reference} is a {media_type}, which the Accept header excludes",
                   detail={"mediaType": media_type, "accept": sorted(accepted)})


async def _manifest_read(ctx: Context, request: web.Request, params: dict, stats: Stats,
                         with_body: bool) -> web.Response:
    name, reference = params["name"], params["reference"]
    digest = _resolve(ctx, name, reference)
    found = ctx.storage.get_manifest(name, digest)
    if found is None:
        raise APIError("MANIFEST_UNKNOWN", f"manifest {reference} is not in repository {name}",
                       detail={"name": name, "reference": reference})
    digest, body, media_type = _negotiate(ctx, request, name, reference, digest, *found)
    headers = {"Docker-Content-Digest": str(digest), "ETag": f'"{digest}"'}
    if not with_body:
        headers["Content-Type"] = media_type
        headers["Content-Length"] = str(len(body))
        return web.Response(status=200, headers=headers)
    await ctx.throttle.consume(len(body))
    response = web.Response(status=200, body=body, headers=headers)
    response.content_type = media_type
    return response


async def manifest_get(ctx: Context, request: web.Request, params: dict, stats: Stats):
    return await _manifest_read(ctx, request, params, stats, with_body=True)


async def manifest_head(ctx: Context, request: web.Request, params: dict, stats: Stats):
    return await _manifest_read(ctx, request, params, stats, with_body=False)


async def _read_manifest_body(ctx: Context, request: web.Request, stats: Stats) -> bytes:
    limit = ctx.settings.max_manifest_size
    declared = request.content_length
    if declared is not None and declared > limit:
        raise APIError("SIZE_INVALID", f"manifest of {declared} bytes exceeds the limit of "
                       f"{limit} bytes", status=413)
    parts, size = [], 0
    settings = ctx.settings
    try:
        async with BodyReader(request, settings.body_timeout, settings.min_body_rate) as reader:
            while chunk := await reader.read():
                size += len(chunk)
                stats.bytes_in = size
                if size > limit:
                    raise APIError("SIZE_INVALID", f"manifest exceeds the limit of {limit} "
                                   f"bytes", status=413)
                parts.append(chunk)
    except BodyTimeout as exc:
        raise body_timeout_error(exc, "MANIFEST_INVALID") from None
    body = b"".join(parts)
    await ctx.throttle.consume(len(body))
    return body


async def manifest_put(ctx: Context, request: web.Request, params: dict, stats: Stats):
    """PUT /v2/<name>/manifests/<reference>: verify references, store, tag."""
    name, reference = params["name"], params["reference"]
    tag = None
    if looks_like_digest(reference):
        claimed = check_digest(reference)
    elif is_valid_tag(reference):
        claimed, tag = None, reference
    else:
        raise APIError("MANIFEST_INVALID", f"invalid tag {reference!r}",
                       detail={"reference": reference})
    body = await _read_manifest_body(ctx, request, stats)
    algorithm = claimed.algorithm if claimed is not None else "sha256"
    parsed = parse_manifest(body, request.headers.get("Content-Type"), algorithm)
    if claimed is not None and parsed.digest != claimed:
        raise APIError("DIGEST_INVALID", f"manifest digest is {parsed.digest}, not {claimed}",
                       detail={"digest": str(claimed), "actual": str(parsed.digest)})
    await ctx.run(ctx.storage.put_manifest, name, body, parsed, tag)
    headers = {
        "Location": f"/v2/{name}/manifests/{parsed.digest}",
        "Docker-Content-Digest": str(parsed.digest),
        "Content-Length": "0",
    }
    if parsed.subject is not None:
        headers["OCI-Subject"] = str(parsed.subject)
    return web.Response(status=201, headers=headers)


async def manifest_delete(ctx: Context, request: web.Request, params: dict, stats: Stats):
    """DELETE a manifest by digest (and its tags), or just a tag."""
    if not ctx.settings.delete_enabled:
        raise APIError("UNSUPPORTED", "deletion is disabled on this registry")
    name, reference = params["name"], params["reference"]
    if not ctx.storage.repository_exists(name):
        raise APIError("NAME_UNKNOWN", f"repository {name} is not known", detail={"name": name})
    if looks_like_digest(reference):
        deleted = await ctx.run(ctx.storage.delete_manifest, name, check_digest(reference))
    else:
        deleted = is_valid_tag(reference) and ctx.storage.delete_tag(name, reference)
    if not deleted:
        raise APIError("MANIFEST_UNKNOWN", f"manifest {reference} is not in repository {name}",
                       detail={"name": name, "reference": reference})
    return web.Response(status=202, headers={"Content-Length": "0"})


async def referrers(ctx: Context, request: web.Request, params: dict, stats: Stats):
    """GET /v2/<name>/referrers/<digest>[?artifactType=...]: an OCI index, never a 404."""
    name = params["name"]
    subject = check_digest(params["digest"])
    entries = ctx.storage.referrers(name, subject)
    headers = {}
    wanted = request.query.get("artifactType")
    if wanted is not None:
        entries = [e for e in entries if e.get("artifactType") == wanted]
        headers["OCI-Filters-Applied"] = "artifactType"
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    return _json(index, headers=headers, content_type=mt.OCI_INDEX)


MANIFEST_HANDLERS = {
    "ping": ping,
    "catalog": catalog,
    "tags_list": tags_list,
    "manifest_get": manifest_get,
    "manifest_head": manifest_head,
    "manifest_put": manifest_put,
    "manifest_delete": manifest_delete,
    "referrers": referrers,
}
