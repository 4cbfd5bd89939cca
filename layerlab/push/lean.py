"""HEAD-only registry access over a plain socket, for re-pushes the cache says are done.

A re-push whose every layer the digest cache places in the target repository needs only
HEAD requests. Importing ``requests`` (or even ``http.client``, which pulls in the
``email`` package) costs more than the whole rest of such a push, so these HEADs are
written and read directly: a HEAD response has a status line and headers, no body.
Anything outside the happy path -- a 401 challenge, an unexpected status, a connection
problem -- raises :class:`NeedFullClient` and the push carries on with the full
:class:`~layerlab.sources.remote.RegistryClient` (auth, retries, error mapping), so the
lean path never changes what a push does, only how fast a no-op is. Used only for plain
HTTP registries reached without a proxy (loopback ones, as Docker treats them).
"""

from __future__ import annotations

import os
import socket
import threading

from ..digest import Digest
from ..errors import InvalidDigestError
from ..manifest import Descriptor
from ..mediatypes import MANIFEST_ACCEPT
from ..reference import is_loopback

__all__ = ["LeanClient", "NeedFullClient", "lean_eligible"]


class NeedFullClient(Exception):
    """The lean client met something only the full client handles."""


def lean_eligible(registry: str, client_options: dict) -> bool:
    """Plain HTTP without a proxy: loopback registries (unless TLS is asked for), or
    ``plain_http`` ones when no proxy variable is set."""
    plain = client_options.get("plain_http")
    if is_loopback(registry):
        return plain is not False
    if not plain:
        return False
    return not any(os.environ.get(v) for v in ("http_proxy", "HTTP_PROXY", "all_proxy",
                                               "ALL_PROXY"))


class _Head:
    """A parsed HEAD response: status and lower-cased headers."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers


class LeanClient:
    """``head_blob`` and ``head_manifest`` of one plain-HTTP registry, one keep-alive
    connection per thread. ``request_count`` counts the requests sent."""

    def __init__(self, registry: str, timeout: float = 30.0,
                 user_agent: str = "layerlab/0.1") -> None:
        self.registry = registry
        host, _, port = registry.rpartition(":") if not registry.endswith("]") else (registry, "", "")
        if not port.isdigit():
            host, port = registry, "80"
        self._address = (host.strip("[]"), int(port))
        self.timeout = timeout
        self.user_agent = user_agent
        self.request_count = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.sock = sock
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _exchange(self, sock: socket.socket, request: bytes) -> _Head | None:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                return None  # closed (an idle keep-alive connection the server dropped)
            data += more
            if len(data) > 65536:
                raise NeedFullClient("HEAD response headers too large")
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise NeedFullClient(f"not an HTTP response: {head[0][:80]!r}")
        headers = {}
        for line in head[1:]:
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip()
        if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            self._drop(sock)
        return _Head(int(parts[1]), headers)

    def _drop(self, sock: socket.socket) -> None:
        sock.close()
        self._local.sock = None

    def _head(self, path: str, extra: str = "") -> _Head:
        request = (f"HEAD {path} HTTP/1.1\r\nHost: {self.registry}\r\n"
                   f"User-Agent: {self.user_agent}\r\n{extra}\r\n").encode()
        with self._lock:
            self.request_count += 1
        for attempt in (1, 2):
            sock = getattr(self._local, "sock", None)
            reused = sock is not None
            try:
                if sock is None:
                    sock = self._connect()
                response = self._exchange(sock, request)
            except OSError as exc:
                if sock is not None:
                    self._drop(sock)
                if reused and attempt == 1:
                    continue
                raise NeedFullClient(f"HEAD {path}: {exc}") from None
            if response is None:
                self._drop(sock)
                if reused and attempt == 1:
                    continue
                raise NeedFullClient(f"HEAD {path}: connection closed")
            if response.status not in (200, 404):
                raise NeedFullClient(f"HEAD {path}: HTTP {response.status}")
            return response
        raise NeedFullClient(f"HEAD {path}: no answer")

    def head_blob(self, repository: str, digest: str) -> int | None:
        response = self._head(f"/v2/{repository}/blobs/{digest}")
        if response.status == 404:
            return None
        length = response.headers.get("content-length", "")
        if not length.isdigit():
            raise NeedFullClient("HEAD blob without Content-Length")
        return int(length)

    def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        response = self._head(f"/v2/{repository}/manifests/{reference}",
                              f"Accept: {MANIFEST_ACCEPT}\r\n")
        if response.status == 404:
            return None
        try:
            digest = Digest(response.headers.get("docker-content-digest", "").strip())
            size = int(response.headers.get("content-length", ""))
        except (InvalidDigestError, ValueError):
            raise NeedFullClient("HEAD manifest without digest or length") from None
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        return Descriptor(media_type, digest, size)

    def close(self) -> None:
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()
