"""HEAD-only registry access over ``http.client``, for re-pushes the cache says are done.

A re-push whose every layer the digest cache places in the target repository needs only
HEAD requests. Importing ``requests`` (and ``urllib3``) costs more than the whole rest of
such a push, so these HEADs go through the standard library instead. Anything outside
the happy path -- a 401 challenge, an unexpected status, a connection problem -- raises
:class:`NeedFullClient` and the push carries on with the full
:class:`~layerlab.sources.remote.RegistryClient` (auth, retries, error mapping), so the
lean path never changes what a push does, only how fast a no-op is. Used only for plain
HTTP registries reached without a proxy (loopback ones, as Docker treats them).
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import threading

from ..digest import Digest
from ..errors import InvalidDigestError
from ..manifest import Descriptor
from ..mediatypes import MANIFEST_ACCEPT

__all__ = ["LeanClient", "NeedFullClient", "lean_eligible"]


class NeedFullClient(Exception):
    """The lean client met something only the full client handles."""


def _is_loopback(registry: str) -> bool:
    host = registry.lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lean_eligible(registry: str, client_options: dict) -> bool:
    """Plain HTTP without a proxy: loopback registries (unless TLS is asked for), or
    ``plain_http`` ones when no proxy variable is set."""
    plain = client_options.get("plain_http")
    if _is_loopback(registry):
        return plain is not False
    if not plain:
        return False
    return not any(os.environ.get(v) for v in ("http_proxy", "HTTP_PROXY", "all_proxy",
                                               "ALL_PROXY"))


class LeanClient:
    """``head_blob`` and ``head_manifest`` of one registry, one keep-alive connection per
    thread. ``request_count`` counts the requests sent."""

    def __init__(self, registry: str, timeout: float = 30.0,
                 user_agent: str = "layerlab/0.1") -> None:
        self.registry = registry
        self.timeout = timeout
        self.user_agent = user_agent
        self.request_count = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPConnection] = []

    def _head(self, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.registry, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        with self._lock:
            self.request_count += 1
        try:
            conn.request("HEAD", path, headers={"User-Agent": self.user_agent, **headers})
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            self._local.conn = None
            raise NeedFullClient(f"HEAD {path}: {exc}") from None
        if response.status not in (200, 404):
            raise NeedFullClient(f"HEAD {path}: HTTP {response.status}")
        return response

    def head_blob(self, repository: str, digest: str) -> int | None:
        response = self._head(f"/v2/{repository}/blobs/{digest}", {})
        if response.status == 404:
            return None
        length = response.getheader("Content-Length", "")
        if not length.isdigit():
            raise NeedFullClient("HEAD blob without Content-Length")
        return int(length)

    def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        response = self._head(f"/v2/{repository}/manifests/{reference}",
                              {"Accept": MANIFEST_ACCEPT})
        if response.status == 404:
            return None
        try:
            digest = Digest(response.getheader("Docker-Content-Digest", "").strip())
            size = int(response.getheader("Content-Length", ""))
        except (InvalidDigestError, ValueError):
            raise NeedFullClient("HEAD manifest without digest or length") from None
        media_type = (response.getheader("Content-Type") or "").split(";", 1)[0].strip()
        return Descriptor(media_type, digest, size)

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
