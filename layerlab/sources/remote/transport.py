"""The transport under :class:`~.client.RegistryClient`: session, auth, retries, errors.

:meth:`Transport.request` is the one place where authentication, retries, timeouts
and error mapping happen; the API methods of the client are built on it. Errors are
:class:`~layerlab.errors.RegistryError`\\ s carrying the registry's error ``code``, the
HTTP ``status`` and the ``url``.
"""

from __future__ import annotations

import io
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple
from urllib.parse import urlsplit

from ...errors import RegistryProtocolError, RegistryUnavailableError
from .credentials import Credentials, load_credentials
from .httputil import (api_host, error_from_response, is_loopback, is_retryable_status,
                       may_send_credentials, retry_after)

__all__ = ["Transport", "Fetched"]

if TYPE_CHECKING:  # pragma: no cover
    from requests import Response

log = logging.getLogger("layerlab.sources.remote")

_ERROR_BODY_LIMIT = 64 << 10
_SMALL_BODY_LIMIT = 1 << 20  #: answers read whole (tokens, upload answers) are cut here


def _replayable(data: Any) -> tuple[bool, int | None]:
    """Can a request body be sent again? ``(yes, position to seek back to)``."""
    if data is None or isinstance(data, (bytes, bytearray, memoryview, str, dict, list, tuple)):
        return True, None
    seek = getattr(data, "seek", None)
    if seek is not None:
        try:
            return True, data.tell()
        except (OSError, io.UnsupportedOperation):
            return False, None
    return False, None


class Fetched(NamedTuple):
    """A small body fetched whole, with the response's headers, final URL and status."""

    body: bytes
    headers: Mapping[str, str]
    url: str
    status: int


class Transport:
    """One registry host over a :class:`requests.Session` (see :mod:`.session`), with auth
    (Basic/Bearer, token cache per scope) and bounded retries with exponential backoff
    (connection errors, 429 honouring ``Retry-After``, 5xx). See :class:`RegistryClient`
    for the API.

    ``plain_http`` defaults to ``True`` for ``localhost``, ``127.0.0.0/8`` and ``::1`` (as
    Docker does) and ``False`` otherwise; ``insecure`` skips TLS verification and, unless
    ``plain_http`` is given, falls back to plain HTTP when TLS fails. ``auth`` is a
    ``(username, password)`` pair; without it credentials come from Docker's
    ``config.json`` (``docker_config`` directory, ``$DOCKER_CONFIG`` or ``~/.docker``),
    else from ``~/.netrc``, when the registry asks. Proxies come from the environment
    (``https_proxy``, ``NO_PROXY``...) except for loopback registries.

    Clocks: ``timeout`` (seconds) bounds connecting and every read; a small document
    (manifest, config, token, listing, error answer) must arrive whole within
    ``deadline`` seconds of its headers; a blob body must deliver at least
    ``min_blob_rate`` bytes/s over every ``timeout``-second window. Breaking any of them
    is a failed attempt, retried like a broken connection.
    """

    def __init__(self, registry: str, *, plain_http: bool | None = None, insecure: bool = False,
                 auth: tuple[str, str] | None = None, docker_config: str | None = None,
                 timeout: float = 30.0, retries: int = 4, pool_size: int = 32,
                 user_agent: str = "layerlab/0.1", backoff: float = 0.25,
                 deadline: float = 60.0, min_blob_rate: float = 1024.0) -> None:
        from .session import open_session

        self.registry = registry
        loopback = is_loopback(registry)
        self._may_fall_back = insecure and plain_http is None and not loopback
        self.plain_http = loopback if plain_http is None else plain_http
        self.insecure = insecure
        self.base_url = f"{'http' if self.plain_http else 'https'}://{api_host(registry)}"
        self.timeout = timeout
        self.deadline = deadline
        self.min_blob_rate = min_blob_rate
        self.retries = max(0, retries)
        self.backoff = backoff
        self._use_proxies = not loopback
        self.session = open_session(verify=not insecure, pool_size=pool_size,
                                    headers={"User-Agent": user_agent},
                                    host=urlsplit(self.base_url).hostname)
        explicit = Credentials(*auth) if auth is not None else None
        self._credentials = ((lambda: explicit) if explicit is not None
                             else (lambda: load_credentials(registry, docker_config)
                                   or self._netrc_credentials()))
        self._auth: Any = None  # an Authenticator, from the first challenge on
        self._auth_lock = threading.Lock()
        self._switch_lock = threading.Lock()
        self.request_count = 0  #: HTTP requests sent so far, every attempt (statistics)
        self._count_lock = threading.Lock()

    def _netrc_credentials(self) -> Credentials | None:
        from .session import netrc_credentials

        found = netrc_credentials(self.base_url)
        return Credentials(*found) if found else None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    def _count_request(self) -> None:
        with self._count_lock:
            self.request_count += 1

    # --- context manager ------------------------------------------------------------------
    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def token_fetches(self) -> int:
        """How many Bearer tokens this client fetched so far."""
        return self._auth.token_fetches if self._auth is not None else 0

    def _authenticator(self) -> Any:
        """The auth state, made when the registry first challenges (a registry that never
        does costs nothing for it)."""
        with self._auth_lock:
            if self._auth is None:
                from .auth import Authenticator

                self._auth = Authenticator(
                    lambda method, url, **kw: self._send(method, url, None, kw)[0],
                    self._credentials,
                    lambda realm: may_send_credentials(realm, self.plain_http, self.insecure))
            return self._auth

    # --- the one request path ---------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        """An absolute URL for an API path (``/v2/...``) or a URL the registry gave."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.base_url + path_or_url

    @staticmethod
    def scopes(repository: str | None, actions: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        """Token scopes for an operation on ``repository`` with ``actions`` (``pull,push``)."""
        out = (f"repository:{repository}:{actions}",) if repository else ()
        return tuple(dict.fromkeys(out + tuple(extra)))

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1, 2 ...): exponential, jittered."""
        return min(self.backoff * (2 ** (attempt - 1)), 10.0) * (1 + random.random() / 10)

    def sleep_backoff(self, attempt: int) -> None:
        time.sleep(self.backoff_delay(attempt))

    def _switch_to_http(self, url: str) -> str:
        with self._switch_lock:
            if not self.plain_http:
                log.info("TLS failed on %s; falling back to plain HTTP (insecure)", self.registry)
                self.plain_http = True
                self.base_url = "http://" + self.base_url.split("://", 1)[1]
                self._may_fall_back = False
        return "http://" + url.split("://", 1)[1] if url.startswith("https://") else url

    def _send(self, method: str, url: str, authorization: str | None,
              kwargs: dict[str, Any]) -> tuple[Response, int]:
        """Send with retries (no auth handling); return the response and attempts used.
        Unless ``stream`` is true the body (at most 1 MiB) is read before returning, and
        a body cut short is retried like a failed connection."""
        from .session import HttpFailure, TlsFailure, read_document, send

        headers = dict(kwargs.get("headers") or {})
        if authorization:
            headers["Authorization"] = authorization
        data = kwargs.get("data")
        stream = kwargs.get("stream", False)
        replay, position = _replayable(data)
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1 and position is not None:
                data.seek(position)
            try:
                self._count_request()
                response = send(self.session, method, url, headers=headers, data=data,
                                params=kwargs.get("params"),
                                allow_redirects=kwargs.get("allow_redirects", True),
                                timeout=self.timeout, use_proxies=self._use_proxies)
                if not stream:
                    read_document(response, _SMALL_BODY_LIMIT, self.deadline)
            except TlsFailure as exc:
                if self._may_fall_back and url.startswith("https://") and url.startswith(self.base_url):
                    url = self._switch_to_http(url)
                    attempt -= 1
                    continue
                raise RegistryUnavailableError(
                    f"{method} {url}: TLS failed ({exc.reason}); for a registry "
                    "without valid TLS use --insecure or --plain-http", url=url) from None
            except HttpFailure as exc:
                if attempt > self.retries or not replay or not exc.retryable:
                    raise RegistryUnavailableError(
                        f"{method} {url}: cannot reach the registry ({exc.reason})"
                        + (f" after {attempt} attempts" if attempt > 1 else ""), url=url) from None
                log.debug("%s %s: %s, retrying", method, url, exc.reason)
                self.sleep_backoff(attempt)
                continue
            status = response.status_code
            if is_retryable_status(status) and attempt <= self.retries and replay:
                delay = retry_after(response.headers, self.backoff_delay(attempt))
                log.debug("%s %s: HTTP %d, retrying in %.2fs", method, url, status, delay)
                _read_error_body(response, self.deadline)
                time.sleep(delay)
                continue
            return response, attempt

    def request(self, method: str, path_or_url: str, *, repository: str | None = None,
                actions: str = "pull", expected: tuple[int, ...] = (200,),
                scopes: tuple[str, ...] = (), **kwargs: Any) -> Response:
        """Send one API request: authenticated, retried, with timeouts; raise a
        :class:`RegistryError` (``AuthenticationError``, ``RegistryUnavailableError``,
        ``RegistryProtocolError``) unless the status is in ``expected``. ``repository`` and
        ``actions`` (plus any extra ``scopes``) say what token scope to ask for.
        ``kwargs``: ``headers``, ``data`` (the body: bytes, a dict or pairs to form-encode,
        a binary file, or an iterable of bytes sent chunked), ``params``, ``stream`` (leave
        the body unread), ``allow_redirects`` (``GET`` and ``HEAD`` only)."""
        url = self.url(path_or_url)
        scope = self.scopes(repository, actions, scopes)
        sent = self._auth.header(scope) if self._auth is not None else None
        replay, position = _replayable(kwargs.get("data"))
        response, attempts = self._send(method, url, sent, kwargs)
        if response.status_code == 401 and 401 not in expected and replay:
            authorization = self._authenticator().respond(method, response.url, response.headers, scope, sent)
            _read_error_body(response, self.deadline)  # read, the connection is kept
            if position is not None:
                kwargs["data"].seek(position)
            response, more = self._send(method, url, authorization, kwargs)
            attempts += more
            if response.status_code == 401:
                response.close()
                refused = self._auth.refusal(method, response.url, response.headers, authorization)
                if refused is not None:
                    raise refused
        if response.status_code not in expected:
            _read_error_body(response, self.deadline)
            raise error_from_response(response, method, attempts)
        return response

    def _get_limited(self, path_or_url: str, repository: str | None, limit: int, what: str,
                     headers: dict[str, str] | None = None,
                     scopes: tuple[str, ...] = ()) -> Fetched:
        """GET a small body (manifest, config, listing page), at most ``limit`` bytes,
        whole within :attr:`deadline`; retried when the body breaks or is late."""
        from .session import HttpFailure, read_document

        url = self.url(path_or_url)
        attempt = 0
        while True:
            attempt += 1
            response = self.request("GET", url, repository=repository, stream=True,
                                    headers=headers, scopes=scopes)
            try:
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > limit:
                    raise RegistryProtocolError(
                        f"GET {response.url}: {what} of {int(length)} bytes exceeds the "
                        f"{limit}-byte limit", url=response.url)
                body = read_document(response, limit, self.deadline)
                if len(body) > limit:
                    raise RegistryProtocolError(
                        f"GET {response.url}: {what} exceeds the {limit}-byte limit", url=response.url)
                return Fetched(body, response.headers, response.url, response.status_code)
            except HttpFailure as exc:
                if attempt > self.retries:
                    raise RegistryUnavailableError(
                        f"GET {response.url}: {what} body broken ({exc.reason}) "
                        f"after {attempt} attempts", url=response.url) from None
                self.sleep_backoff(attempt)
            finally:
                response.close()


def _read_error_body(response: Response, deadline: float) -> None:
    """Read an error answer's body (its first 64 KiB, which only add detail: a body
    that breaks or is late reads as empty)."""
    from .session import HttpFailure, read_document

    try:
        read_document(response, _ERROR_BODY_LIMIT, deadline)
    except HttpFailure:
        response._content, response._content_consumed = b"", True  # type: ignore[attr-defined]
    response.close()
