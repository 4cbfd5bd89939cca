"""HTTP for the registry client: one :class:`requests.Session` per registry.

requests and urllib3 do the protocol: keep-alive pools, TLS and CA bundles
(``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``), proxies from the environment with
``NO_PROXY``, CONNECT tunnels, redirects (``Authorization`` dropped across hosts and
on https -> http), chunked framing. What this module adds on top:

* the pool sized to the caller's concurrency, and no urllib3 retries: the transport
  retries with backoff and knows which bodies can be sent again;
* file bodies sent in 1 MiB blocks (urllib3's 16 KiB block meant 48,000 ``send`` calls
  for a 780 MB push) and ``Accept-Encoding: identity``, so the bytes on the wire are the
  bytes that were digested and ``Content-Length`` is the blob's size;
* ``.netrc`` credentials offered to the transport's own auth (the registry decides
  when credentials are sent) instead of being attached by requests to every request;
* failures below HTTP as :class:`HttpFailure` with one readable ``reason``;
* bodies read under two clocks: a document (manifest, config, token, listing, error
  answer) must arrive whole within its deadline however slowly a server drips it, and a
  blob must keep delivering at least ``min_rate`` bytes per second over each window.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import re
import socket
import ssl
import threading
import time
import warnings
from typing import Any, Mapping

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

__all__ = ["HttpFailure", "TlsFailure", "TooManyRedirects", "open_session", "send", "read_document",
           "read_chunk", "complete_response", "netrc_credentials", "Progress"]

MAX_REDIRECTS = 10
BLOCK_SIZE = 1 << 20
_NO_PROXIES = {"http": None, "https": None, "all": None}


class HttpFailure(Exception):
    """The HTTP exchange failed below HTTP: no connection, reset, timeout, TLS, an answer
    that is not HTTP, a body cut short. ``reason`` is one readable line; ``retryable``
    says whether sending again may help."""

    retryable = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TlsFailure(HttpFailure):
    """The TLS handshake failed (a certificate that does not verify, a server without TLS)."""


class TooManyRedirects(HttpFailure):
    """More than :data:`MAX_REDIRECTS` redirects: a loop, not a transient failure."""

    retryable = False


class _NoAuth(requests.auth.AuthBase):
    """Attach nothing: keeps requests from applying ``.netrc`` to every request."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def open_session(*, verify: bool = True, pool_size: int = 32,
                 headers: Mapping[str, str] | None = None,
                 host: str | None = None) -> requests.Session:
    """A session for one registry: ``pool_size`` keep-alive connections per host, TLS
    verified unless ``verify`` is false, no urllib3 retries, ``headers`` on every request.
    Without verification, urllib3's warning is silenced for ``host`` only (every host
    when None): other sessions of the process keep theirs."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size), max_retries=0)
    adapter.poolmanager.connection_pool_kw["blocksize"] = BLOCK_SIZE
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = verify
    if not verify:  # asked for (--insecure) and logged once by the transport, not per request
        shown = re.escape(host) if host is not None else ".*"
        warnings.filterwarnings("ignore", f"Unverified HTTPS request is being made to host "
                                f"'{shown}'", urllib3.exceptions.InsecureRequestWarning)
    session.max_redirects = MAX_REDIRECTS
    session.auth = _NoAuth()
    session.headers.update({"Accept-Encoding": "identity", **(headers or {})})
    return session


def netrc_credentials(url: str) -> tuple[str, str] | None:
    """The ``(login, password)`` that ``~/.netrc`` (or ``$NETRC``) has for ``url``'s host."""
    from requests.utils import get_netrc_auth

    found = get_netrc_auth(url)
    return (found[0], found[1]) if found else None


def send(session: requests.Session, method: str, url: str, *, headers: Mapping[str, str] | None = None,
         data: Any = None, params: Any = None, allow_redirects: bool = True, timeout: float = 30.0,
         use_proxies: bool = True) -> requests.Response:
    """Send one request and return once the status line and headers are in; the body is
    left unread (see :func:`read_document`, :func:`read_chunk`). Only ``GET`` and ``HEAD``
    follow redirects. ``use_proxies=False`` goes straight to the host whatever the
    environment says (loopback registries). Raises :class:`HttpFailure`."""
    try:
        return session.request(method, url, headers=headers, data=data, params=params,
                               allow_redirects=allow_redirects and method in ("GET", "HEAD"),
                               timeout=timeout, stream=True,
                               verify=session.verify,  # else REQUESTS_CA_BUNDLE overrides False
                               proxies=None if use_proxies else _NO_PROXIES)
    except requests.TooManyRedirects:
        raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects") from None
    except requests.exceptions.SSLError as exc:
        raise TlsFailure(_reason(exc)) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema) as exc:
        failure = HttpFailure(f"unusable URL {url!r} ({exc})")
        failure.retryable = False
        raise failure from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError,
            http.client.HTTPException) as exc:
        raise HttpFailure(_reason(exc)) from None


class _Watchdog:
    """One thread that shuts the socket of any response whose deadline passes, which
    wakes a read blocked on it (a per-read timeout alone lets a 1 byte/s server go on)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, requests.Response]] = []
        self._live: set[int] = set()
        self._wake = threading.Condition()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, response: requests.Response, deadline: float) -> int:
        with self._wake:
            token = next(self._ids)
            heapq.heappush(self._heap, (deadline, token, response))
            self._live.add(token)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="layerlab-http-deadline",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()
            return token

    def release(self, token: int) -> bool:
        """Stop watching; ``False`` if the deadline had already passed."""
        with self._wake:
            if token in self._live:
                self._live.discard(token)
                return True
            return False

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, token, response = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(token)
            try:
                response.raw.shutdown()
            except Exception:  # noqa: BLE001 - the connection may be gone already
                pass


_WATCHDOG = _Watchdog()


def read_document(response: requests.Response, limit: int, deadline: float) -> bytes:
    """Read a small body whole, within ``deadline`` seconds: at most ``limit + 1`` bytes
    (so the caller can tell "too big"; the connection is then dropped). The bytes are
    also kept as ``response.content``. Raises :class:`HttpFailure` when the body breaks
    or does not arrive in time."""
    if response._content_consumed:  # type: ignore[attr-defined]
        return response.content[:limit + 1]
    token = _WATCHDOG.watch(response, time.monotonic() + deadline)
    parts: list[bytes] = []
    got = 0
    try:
        while got <= limit:
            block = response.raw.read(min(limit + 1 - got, 1 << 16))
            if not block:
                break
            parts.append(block)
            got += len(block)
    except (urllib3.exceptions.HTTPError, OSError, http.client.HTTPException) as exc:
        expired = not _WATCHDOG.release(token)
        response.close()
        if expired:
            raise HttpFailure(f"no whole answer within {deadline:g} s") from None
        raise HttpFailure(_reason(exc)) from None
    if not _WATCHDOG.release(token):  # woken by the deadline: what was read may be a part
        response.close()
        raise HttpFailure(f"no whole answer within {deadline:g} s")
    body = b"".join(parts)
    if got > limit:
        response.close()
    _hold(response, body)
    return body


def _hold(response: requests.Response, body: bytes) -> None:
    response._content = body  # type: ignore[attr-defined]
    response._content_consumed = True  # type: ignore[attr-defined]


class Progress:
    """The minimum-progress rule for a blob body: over each ``window`` seconds at least
    ``min_rate * window`` bytes, or :meth:`check` raises :class:`HttpFailure`."""

    def __init__(self, min_rate: float, window: float) -> None:
        self.min_rate, self.window = min_rate, window
        self._start = time.monotonic()
        self._bytes = 0

    def add(self, n: int) -> None:
        self._bytes += n
        now = time.monotonic()
        if now - self._start < self.window:
            return
        if self._bytes < self.min_rate * (now - self._start):
            raise HttpFailure(f"blob arriving at {self._bytes / (now - self._start):.0f} B/s, "
                              f"under the minimum of {self.min_rate:g} B/s")
        self._start, self._bytes = now, 0


def read_chunk(response: requests.Response, n: int, progress: Progress | None = None) -> bytes:
    """Up to ``n`` body bytes, as soon as some arrive (``b""`` at the end). Raises
    :class:`HttpFailure` when the body breaks, a read times out, or ``progress`` says
    the body is too slow."""
    try:
        data = response.raw.read1(n)
    except (urllib3.exceptions.HTTPError, OSError, http.client.HTTPException) as exc:
        response.close()
        raise HttpFailure(_reason(exc)) from None
    if progress is not None:
        try:
            progress.add(len(data))
        except HttpFailure:
            response.close()
            raise
    return data


def complete_response(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
                      url: str = "", reason: str = "", method: str = "GET") -> requests.Response:
    """A response already read whole (for answers made up locally, and tests)."""
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers or {})
    response.url = url
    response.reason = reason
    response.request = requests.Request(method, url or "http://localhost/").prepare()
    _hold(response, body)
    return response


def _reason(exc: BaseException) -> str:
    """One line for what went wrong below HTTP, from the innermost useful cause."""
    seen: BaseException | None = exc
    last = exc
    for _ in range(12):
        if seen is None:
            break
        last = seen
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {seen.verify_message}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS: {seen.reason or seen}"
        if isinstance(seen, (socket.timeout, urllib3.exceptions.ReadTimeoutError,
                             urllib3.exceptions.ConnectTimeoutError)) and \
                not isinstance(seen, urllib3.exceptions.NewConnectionError):
            return "timed out"
        if isinstance(seen, http.client.RemoteDisconnected):
            return "connection closed before the response (server disconnected)"
        if isinstance(seen, urllib3.exceptions.InvalidChunkLength) or (
                isinstance(seen, http.client.IncompleteRead) and _caused_by(seen, ValueError)):
            return "bad chunk size line"
        if isinstance(seen, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)):
            return "connection closed in the middle of the body"
        if isinstance(seen, http.client.BadStatusLine):
            return f"not an HTTP response: {str(seen)[:60]}"
        if isinstance(seen, http.client.LineTooLong):
            return f"answer line too long ({seen})"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in seen.args if isinstance(a, BaseException)), None)
        seen = seen.__cause__ or inner or seen.__context__
    return str(last) or type(last).__name__


def _caused_by(exc: BaseException, kind: type) -> bool:
    """Is there a ``kind`` among the exceptions ``exc`` was raised while handling?"""
    inner = exc.__context__
    for _ in range(8):
        if inner is None:
            return False
        if isinstance(inner, kind):
            return True
        inner = inner.__context__
    return False
