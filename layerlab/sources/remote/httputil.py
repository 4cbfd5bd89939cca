"""Small HTTP helpers of the registry client: hosts, URLs, Retry-After, error mapping."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import urlencode, urljoin, urlsplit

from ...errors import (AuthenticationError, RegistryError, RegistryProtocolError,
                       RegistryUnavailableError)
from ...reference import is_loopback

if TYPE_CHECKING:  # pragma: no cover
    from requests import Response

__all__ = ["is_loopback", "api_host", "join_url", "retry_after", "error_from_response",
           "is_retryable_status", "parse_link_next", "may_send_credentials"]

#: statuses worth retrying: too many requests and transient server errors
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0
_ERROR_BODY_LIMIT = 64 << 10


def api_host(registry: str) -> str:
    """Where a registry name's API is served (Docker Hub's is ``registry-1.docker.io``)."""
    if registry in ("docker.io", "index.docker.io"):
        return "registry-1.docker.io"
    return registry


def join_url(base: str, location: str) -> str:
    """Resolve a ``Location`` or ``Link`` target against the URL it came from."""
    return urljoin(base, location)


def add_query(url: str, pairs: Mapping[str, str] | Sequence[tuple[str, str]] = (),
              **params: str) -> str:
    """Append query parameters (``pairs``, which may repeat a name, then ``params``) to
    a URL that may already have some."""
    items = list(pairs.items() if isinstance(pairs, Mapping) else pairs) + list(params.items())
    if not items:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(items)


def retry_after(headers: Mapping[str, str], default: float) -> float:
    """Seconds to wait as the ``Retry-After`` header says (seconds or an HTTP date),
    capped at :data:`MAX_RETRY_AFTER`; ``default`` when absent or unreadable."""
    value = headers.get("Retry-After")
    if value is None:
        return default
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def _error_entries(response: Response) -> list[dict[str, Any]]:
    body = response.content[:_ERROR_BODY_LIMIT]
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def describe_body(headers: Mapping[str, str]) -> str:
    """What a non-protocol answer looked like: ``an HTML page``, ``text/plain``..."""
    kind = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if "html" in kind:
        return "an HTML page"
    return kind or "a body without Content-Type"


def error_from_response(response: Response, method: str,
                        attempts: int = 1) -> RegistryError:
    """The :class:`RegistryError` (subclass) for an unexpected status, carrying the
    registry's first error code, the HTTP status and the URL."""
    url = response.url
    status = response.status_code
    entries = _error_entries(response)
    code = str(entries[0].get("code")) if entries and entries[0].get("code") else None
    if entries:
        parts = []
        for entry in entries[:3]:
            part = f"{entry.get('code', '?')}: {entry.get('message', '')}".rstrip(": ")
            detail = entry.get("detail")
            if detail not in (None, "", {}, []):
                part += f" ({json.dumps(detail, sort_keys=True)[:200]})"
            parts.append(part)
        what = "; ".join(parts)
    else:
        what = f"{response.reason or 'error'}" + (
            f" ({describe_body(response.headers)})" if response.content else "")
    message = f"{method} {url}: HTTP {status} {what}"
    if attempts > 1:
        message += f" (after {attempts} attempts)"
    if status in (401, 403):
        return AuthenticationError(message, code=code or ("UNAUTHORIZED" if status == 401 else "DENIED"),
                                   status=status, url=url)
    if is_retryable_status(status):
        return RegistryUnavailableError(message, code=code, status=status, url=url)
    if not entries and status not in (404, 405, 416) and response.content:
        return RegistryProtocolError(message, code=code, status=status, url=url)
    return RegistryError(message, code=code, status=status, url=url)


def parse_link_next(header: str | None) -> str | None:
    """The target of ``rel="next"`` in a ``Link`` header (RFC 8288), or ``None``."""
    if not header:
        return None
    for part in re.finditer(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)", header):
        params = part.group(2).lower()
        if re.search(r"rel\s*=\s*\"?next\"?", params):
            return part.group(1)
    return None


def may_send_credentials(realm: str, registry_plain_http: bool, registry_insecure: bool) -> bool:
    """Docker's rule for a Bearer token realm: the user's credentials go to it over https;
    over plain http only when the registry itself is plain http and the realm is on
    loopback or the registry was marked insecure. An https registry with an http realm
    never gets them (no downgrade)."""
    parts = urlsplit(realm)
    if parts.scheme == "https":
        return True
    return (parts.scheme == "http" and registry_plain_http
            and (registry_insecure or is_loopback(parts.netloc)))
