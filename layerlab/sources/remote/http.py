"""HTTP/1.1 for the registry client, on plain sockets (TLS through :mod:`ssl`).

What a registry client needs from HTTP is small: keep-alive connections per origin,
request bodies from bytes, files and iterators, responses read lazily, redirects for
``GET``/``HEAD`` (blob downloads go to storage), proxies from the environment, TLS. This
module is that and nothing more, because the general-purpose stack costs where a push
hurts: importing ``requests`` took 0.1 s, a third of a push's start-up on a 2-core
machine, and each request went through several layers of Python.

* Bodies: bytes go out with the headers in one ``sendmsg``; files with ``sendfile``
  (their ``Content-Length`` from the caller or ``fstat``); iterables with chunked
  transfer encoding, each chunk written as one ``sendmsg`` of (size line, chunk, CRLF),
  so a megabyte of compressed layer is never copied to be framed.
* Responses: framed by ``Content-Length``, chunked encoding or connection close. A body
  read to its end hands the connection back to the pool; :meth:`Response.close` on an
  unfinished body closes it instead.
* An idle connection the server has closed is noticed before it is reused; a request
  that fails on a reused connection before any of its body was consumed is sent once
  more on a new one.
* Failures below HTTP (refused, reset, timed out, TLS, garbage instead of a status line)
  raise :class:`HttpFailure` with a one-line ``reason``; a body cut short raises it too.
"""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import sys
import threading
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import urlencode, urljoin, urlsplit

from .httputil import add_query

__all__ = ["HttpClient", "Response", "Headers", "HttpFailure", "TlsFailure", "TooManyRedirects"]

_MAX_LINE = 65536
_MAX_HEADERS = 256
_SEND_BLOCK = 1 << 20
_DRAIN_LIMIT = 1 << 16
_MAX_REDIRECTS = 10
_REDIRECTS = (301, 302, 303, 307, 308)


class HttpFailure(Exception):
    """The HTTP exchange failed below HTTP: no connection, reset, timeout, TLS, or an
    answer that is not HTTP. ``reason`` is one readable line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TlsFailure(HttpFailure):
    """The TLS handshake failed (a certificate that does not verify, a server without TLS)."""


class TooManyRedirects(HttpFailure):
    """The server redirected more than ``_MAX_REDIRECTS`` times: a loop, not a
    transient failure, so it is not retried."""


class _ClosedEarly(HttpFailure):
    """The connection closed or reset before any response: on a reused keep-alive
    connection, the server had dropped it."""


class Headers(Mapping[str, str]):
    """Response headers: case-insensitive; a repeated header's values joined by ``, ``."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            self.add(key, value)

    def add(self, key: str, value: str) -> None:
        low = key.lower()
        known = self._items.get(low)
        self._items[low] = (key, value) if known is None else (known[0], f"{known[1]}, {value}")

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


def _reason_of(exc: BaseException) -> str:
    """One line for a socket-level exception (``Connection refused``, ``timed out``...)."""
    if isinstance(exc, socket.timeout):
        return "timed out"
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _is_tls_error(exc: BaseException) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLError)


class _Connection:
    """One socket to one origin, with a buffered reader for responses."""

    __slots__ = ("sock", "reader", "tls", "origin")

    def __init__(self, sock: socket.socket, tls: bool, origin: tuple[str, str, int]) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=65536)
        self.tls = tls
        self.origin = origin

    def dropped(self) -> bool:
        """Has the server closed this idle connection (or sent something unasked)?"""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def send(self, parts: list[Any]) -> None:
        """Write ``parts`` in order: one ``sendmsg`` (no copy) on plain sockets."""
        if self.tls:
            self.sock.sendall(b"".join(parts))
            return
        views = [memoryview(p) for p in parts if len(p)]
        while views:
            sent = self.sock.sendmsg(views)
            while views and sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            if sent:
                views[0] = views[0][sent:]

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()


class Response:
    """An HTTP response; the body is read on demand (:meth:`read`, :attr:`content`).

    ``status_code``, ``reason``, ``headers`` (:class:`Headers`), ``url`` (after
    redirects) and ``method``. Use as a context manager, or call :meth:`close`, unless
    the body was read to its end."""

    def __init__(self, method: str, url: str, status: int, reason: str, headers: Headers,
                 conn: _Connection | None = None, pool: "HttpClient | None" = None,
                 keep_alive: bool = False) -> None:
        self.method = method
        self.url = url
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self._conn = conn
        self._pool = pool
        self._keep_alive = keep_alive
        self._content: bytes | None = None
        self._chunked = False
        self._chunk_left = 0
        self._left: int | None = None  # None: until the connection closes
        if conn is None:
            self._left = 0
        elif method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._left = 0
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            self._chunked = True
        else:
            length = headers.get("Content-Length", "").strip()
            if length.isdigit():
                self._left = int(length)
            else:
                self._keep_alive = False
        if self._left == 0 and not self._chunked:
            self._finish()

    @classmethod
    def complete(cls, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
                 url: str = "", reason: str = "", method: str = "GET") -> "Response":
        """A response already read whole (for error mapping and tests)."""
        response = cls(method, url, status, reason, Headers(headers or {}))
        response._content = body
        return response

    def __repr__(self) -> str:
        return f"<Response {self.method} {self.url} {self.status_code}>"

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def finished(self) -> bool:
        """Has the body been read to its end (or was there none)?"""
        return self._conn is None

    def _finish(self, reusable: bool = True) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if reusable and self._keep_alive and self._pool is not None:
            self._pool._checkin(conn)
        else:
            conn.close()

    def _broken(self, what: str) -> HttpFailure:
        self._finish(reusable=False)
        return HttpFailure(what)

    def _line(self) -> bytes:
        assert self._conn is not None
        try:
            line = self._conn.reader.readline(_MAX_LINE)
        except OSError as exc:
            raise self._broken(_reason_of(exc)) from None
        if not line.endswith(b"\n"):
            raise self._broken("connection closed in the middle of the body")
        return line

    def _read_exact(self, n: int) -> bytes:
        assert self._conn is not None
        try:
            data = self._conn.reader.read(n)
        except OSError as exc:
            raise self._broken(_reason_of(exc)) from None
        if len(data) < n:
            raise self._broken("connection closed in the middle of the body")
        return data

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` body bytes (all that is left when ``n < 0``); fewer only at the
        end. Raises :class:`HttpFailure` when the body is cut short."""
        if self._content is not None and self._conn is None:
            data = self._content if n < 0 else self._content[:n]
            self._content = self._content[len(data):]
            return data
        if self._conn is None or n == 0:
            return b""
        if self._chunked:
            return self._read_chunked(n)
        if self._left is None:
            try:
                data = self._conn.reader.read(n if n >= 0 else -1)
            except OSError as exc:
                raise self._broken(_reason_of(exc)) from None
            if n < 0 or not data:
                self._finish(reusable=False)
            return data
        take = self._left if n < 0 else min(n, self._left)
        data = self._read_exact(take)
        self._left -= take
        if self._left == 0:
            self._finish()
        return data

    def _read_chunked(self, n: int) -> bytes:
        parts: list[bytes] = []
        want = n
        while self._conn is not None and want != 0:
            if self._chunk_left == 0:
                line = self._line().split(b";", 1)[0].strip()
                try:
                    size = int(line, 16)
                except ValueError:
                    raise self._broken(f"bad chunk size line {line[:20]!r}") from None
                if size == 0:
                    while self._line() not in (b"\r\n", b"\n"):
                        pass  # trailers
                    self._finish()
                    break
                self._chunk_left = size
            take = self._chunk_left if want < 0 else min(want, self._chunk_left)
            parts.append(self._read_exact(take))
            self._chunk_left -= take
            if want > 0:
                want -= take
            if self._chunk_left == 0:
                self._line()
        return b"".join(parts)

    @property
    def content(self) -> bytes:
        """The whole body (read once, then kept)."""
        if self._content is None or self._conn is not None:
            self._content = (self._content or b"") + self.read()
        return self._content

    def preload(self, limit: int | None = None) -> None:
        """Read the body into :attr:`content` now: all of it, or at most ``limit`` bytes
        (then the connection is closed, and a body cut short reads as empty: this is for
        error answers, whose body only adds detail)."""
        if limit is None:
            self.content
            return
        try:
            data = self.read(limit)
        except HttpFailure:
            data = b""
        self._finish(reusable=False)
        self._content = data

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        return json.loads(self.content)

    def close(self) -> None:
        """Release the connection: back to the pool when the body was read (or is a
        small remainder, read now), closed otherwise."""
        if self._conn is None:
            return
        if not self._chunked and self._left is not None and self._left <= _DRAIN_LIMIT:
            try:
                self._content = (self._content or b"") + self.read()
                return
            except HttpFailure:
                return
        self._finish(reusable=False)


def _proxy_from_env(scheme: str, host: str) -> str | None:
    """The proxy URL the environment gives for ``scheme://host`` (``no_proxy`` honoured)."""
    env = os.environ
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return None
        entry = entry.lstrip(".")
        if entry and (host.lower() == entry or host.lower().endswith("." + entry)):
            return None
    for name in (f"{scheme}_proxy", "all_proxy"):
        value = env.get(name) or env.get(name.upper())
        if value:
            return value if "://" in value else "http://" + value
    return None


class HttpClient:
    """Keep-alive HTTP/1.1 connections, pooled per origin; one client is shared by any
    number of threads.

    ``timeout`` (seconds) bounds connecting and every read or write; ``verify=False``
    skips TLS certificate checks, which otherwise trust the system's authorities plus
    any bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``; ``trust_env``
    takes proxies from ``http_proxy``, ``https_proxy``, ``all_proxy`` and ``no_proxy``
    (looked up once per origin); ``pool_size`` idle connections are kept per origin.
    ``headers`` are sent with every request.
    """

    def __init__(self, *, timeout: float = 30.0, verify: bool = True, trust_env: bool = True,
                 pool_size: int = 32, headers: Mapping[str, str] | None = None) -> None:
        self.timeout = timeout
        self.verify = verify
        self.trust_env = trust_env
        self.pool_size = max(1, pool_size)
        self.headers = dict(headers or {})
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._tls_context: Any = None
        self._proxies: dict[tuple[str, str, int], str | None] = {}

    # --- connections --------------------------------------------------------------------------
    def _checkin(self, conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(conn.origin, [])
            if len(idle) < self.pool_size:
                idle.append(conn)
                return
        conn.close()

    def _checkout(self, origin: tuple[str, str, int]) -> _Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                conn = idle.pop() if idle else None
            if conn is None or not conn.dropped():
                return conn
            conn.close()

    def _proxy(self, origin: tuple[str, str, int]) -> str | None:
        """The proxy for ``origin`` (``None``: straight there), from the environment."""
        if not self.trust_env:
            return None
        if origin not in self._proxies:
            self._proxies[origin] = _proxy_from_env(origin[0], origin[1])
        return self._proxies[origin]

    def _context(self) -> Any:
        if self._tls_context is None:
            import ssl

            context = ssl.create_default_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle and self.verify:  # the variables Python tools and curl users set
                context.load_verify_locations(bundle)
            if not self.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls_context = context
        return self._tls_context

    def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        proxy = self._proxy(origin)
        address = (host, port)
        if proxy is not None:
            parts = urlsplit(proxy)
            address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        host_bytes = address[0].encode("ascii") if address[0].isascii() else address[0]
        try:  # an ASCII name as bytes: resolving a str first loads the IDNA codec (3 ms)
            sock = socket.create_connection((host_bytes, address[1]), timeout=self.timeout)
        except OSError as exc:
            where = f" (proxy {address[0]}:{address[1]})" if proxy else ""
            raise HttpFailure(_reason_of(exc) + where) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy is not None and scheme == "https":
                self._tunnel(sock, proxy, host, port)
            if scheme == "https":
                sock = self._context().wrap_socket(sock, server_hostname=host)
        except HttpFailure:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            kind = TlsFailure if _is_tls_error(exc) else HttpFailure
            raise kind(_reason_of(exc)) from None
        return _Connection(sock, scheme == "https", origin)

    def _tunnel(self, sock: socket.socket, proxy: str, host: str, port: int) -> None:
        """``CONNECT host:port`` through an HTTP proxy."""
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        credentials = _proxy_credentials(proxy)
        if credentials:
            lines.append(f"Proxy-Authorization: {credentials}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        reader = sock.makefile("rb", buffering=0)
        status = reader.readline(_MAX_LINE).split(b" ", 2)
        while reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
            pass
        if len(status) < 2 or status[1] != b"200":
            raise HttpFailure(f"proxy refused CONNECT {authority} ({b' '.join(status[1:]).decode('latin-1').strip()})")

    def close(self) -> None:
        """Close every idle connection (responses still being read keep theirs)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # --- requests -----------------------------------------------------------------------------
    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                body: Any = None, params: Any = None, allow_redirects: bool = True) -> Response:
        """Send one request and read the response's status and headers.

        ``body``: ``None``, bytes, ``str`` (UTF-8), a dict or list of pairs (form
        encoded), a binary file (sent from its position; ``Content-Length`` from
        ``headers`` or the file's size) or any other iterable of bytes (chunked).
        ``params`` (a dict or pairs) extend the URL's query. ``GET`` and ``HEAD`` follow
        redirects (without ``Authorization`` to another origin) unless ``allow_redirects``
        is false."""
        if params:
            url = add_query(url, params)
        sent = dict(self.headers)
        sent.update(headers or {})
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._exchange(method, url, sent, body)
            location = response.headers.get("Location")
            if not (allow_redirects and method in ("GET", "HEAD")
                    and response.status_code in _REDIRECTS and location):
                return response
            response.close()
            target = urljoin(url, location)
            if _origin(target) != _origin(url):
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
            url = target
        raise TooManyRedirects(f"more than {_MAX_REDIRECTS} redirects")

    def _exchange(self, method: str, url: str, headers: dict[str, str], body: Any) -> Response:
        origin = _origin(url)
        if origin[0] not in ("http", "https"):
            raise HttpFailure(f"unsupported URL scheme in {url!r}")
        head, payload, stream = self._prepare(method, url, origin, headers, body)
        conn = self._checkout(origin)
        reused = conn is not None
        while True:
            if conn is None:
                conn = self._connect(origin)
            started = [False]
            try:
                try:
                    self._send(conn, head, payload, stream, started)
                except HttpFailure:
                    if not started[0]:
                        raise
                    # the server may have answered (401, 413...) before taking the whole body
                    return self._read_head(conn, method, url, keep_alive=False)
                return self._read_head(conn, method, url)
            except _ClosedEarly:
                conn.close()
                if reused and not started[0]:
                    conn, reused = None, False  # a stale keep-alive connection: once more
                    continue
                raise
            except BaseException:  # including a body iterator's own errors
                conn.close()
                raise

    def _prepare(self, method: str, url: str, origin: tuple[str, str, int],
                 headers: dict[str, str], body: Any) -> tuple[bytes, bytes, Any]:
        """The request head, a body sent with it (bytes) and a body streamed after it."""
        payload: bytes = b""
        stream: Any = None
        fields = {k.lower(): (k, v) for k, v in headers.items()}
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif isinstance(body, (dict, list, tuple)):
            body = urlencode(body).encode("ascii")
            fields.setdefault("content-type", ("Content-Type", "application/x-www-form-urlencoded"))
        if body is None:
            if method in ("POST", "PUT", "PATCH"):
                fields["content-length"] = ("Content-Length", "0")
        elif isinstance(body, (bytes, bytearray, memoryview)):
            payload = bytes(body) if not isinstance(body, bytes) else body
            fields["content-length"] = ("Content-Length", str(len(payload)))
        elif hasattr(body, "read"):
            length = fields.get("content-length", ("", ""))[1]
            if not str(length).isdigit():
                length = _file_length(body)
            if length is None:
                stream = _file_blocks(body)
                fields["transfer-encoding"] = ("Transfer-Encoding", "chunked")
            else:
                stream = (body, int(length))
                fields["content-length"] = ("Content-Length", str(length))
        else:
            stream = body
            fields["transfer-encoding"] = ("Transfer-Encoding", "chunked")
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        proxy = self._proxy(origin) if origin[0] == "http" else None
        if proxy:
            target = url
            credentials = _proxy_credentials(proxy)
            if credentials:
                fields.setdefault("proxy-authorization", ("Proxy-Authorization", credentials))
        authority = parts.netloc.rpartition("@")[2]
        lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}"]
        lines.extend(f"{k}: {v}" for k, v in fields.values() if k.lower() != "host")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), payload, stream

    def _send(self, conn: _Connection, head: bytes, payload: bytes, stream: Any,
              started: list[bool]) -> None:
        try:
            conn.send([head, payload])
            if stream is None:
                return
            if isinstance(stream, tuple):
                source, length = stream
                started[0] = True
                sent = conn.sock.sendfile(source, count=length) if length else 0
                if sent != length:
                    raise HttpFailure(f"the body file ended after {sent} of {length} bytes")
                return
            started[0] = True
            for chunk in stream:
                if chunk:
                    conn.send([b"%x\r\n" % len(chunk), chunk, b"\r\n"])
            conn.send([b"0\r\n\r\n"])
        except OSError as exc:
            kind = _ClosedEarly if isinstance(exc, (ConnectionResetError, BrokenPipeError)) else HttpFailure
            raise kind(_reason_of(exc)) from None

    def _read_head(self, conn: _Connection, method: str, url: str,
                   keep_alive: bool = True) -> Response:
        reader = conn.reader
        try:
            while True:
                line = reader.readline(_MAX_LINE)
                if not line:
                    raise _ClosedEarly("connection closed before the response (server disconnected)")
                parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
                if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                    raise HttpFailure(f"not an HTTP response: {line[:60]!r}")
                status = int(parts[1])
                headers = Headers()
                for _ in range(_MAX_HEADERS):
                    field = reader.readline(_MAX_LINE)
                    if field in (b"\r\n", b"\n", b""):
                        break
                    key, sep, value = field.decode("latin-1").partition(":")
                    if sep:
                        headers.add(key.strip(), value.strip())
                else:
                    raise HttpFailure("too many response headers")
                if 100 <= status < 200 and status != 101:
                    continue  # 100 Continue and other interim answers
                break
        except OSError as exc:
            kind = (TlsFailure if _is_tls_error(exc) else
                    _ClosedEarly if isinstance(exc, ConnectionResetError) else HttpFailure)
            raise kind(_reason_of(exc)) from None
        keep_alive = (keep_alive and parts[0] == "HTTP/1.1"
                      and "close" not in headers.get("Connection", "").lower())
        return Response(method, url, status, parts[2] if len(parts) > 2 else "", headers,
                        conn, self, keep_alive)


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise HttpFailure(f"bad port in {url!r}") from None
    return scheme, parts.hostname or "", port or (443 if scheme == "https" else 80)


def _proxy_credentials(proxy: str) -> str | None:
    parts = urlsplit(proxy)
    if parts.username is None:
        return None
    import base64
    from urllib.parse import unquote

    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def _file_length(source: Any) -> int | None:
    """Bytes left in a file from its position, or ``None`` if that cannot be known."""
    try:
        info = os.fstat(source.fileno())
        if stat.S_ISREG(info.st_mode):
            return info.st_size - source.tell()
    except (AttributeError, OSError, ValueError):
        pass
    try:
        here = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


def _file_blocks(source: Any) -> Iterator[bytes]:
    while True:
        block = source.read(_SEND_BLOCK)
        if not block:
            return
        yield block
