"""Test servers for the registry client: a fault-injecting, token-demanding front proxy
and a token endpoint. Both are threaded ``http.server``\\ s on free loopback ports.

* :class:`TokenServer` - Distribution-style token auth: ``GET /token?service=&scope=``
  with optional HTTP Basic, or ``POST`` with an OAuth2 refresh token; issues opaque
  JWT-looking tokens and remembers what each grants.
* :class:`FrontProxy` - forwards to a backend registry (keeping the ``Host`` header so
  ``Location`` URLs point back at the proxy); optionally demands Bearer tokens from a
  :class:`TokenServer`; ``faults`` intercept requests (error statuses, HTML, cut bodies,
  lying headers). ``log`` records every request seen.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import bcrypt

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"


@dataclass(frozen=True)
class Seen:
    """One request a test server received."""

    method: str
    path: str
    authorization: str | None
    range: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Base:
    def __init__(self, handler: type[BaseHTTPRequestHandler],
                 tls: tuple[Path, Path] | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.owner = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.log: list[Seen] = []

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    @property
    def owner(self):
        return self.server.owner  # type: ignore[attr-defined]

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str | None = "application/json") -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# --- the token endpoint ------------------------------------------------------------------------
class _TokenHandler(_Handler):
    def do_GET(self) -> None:
        ts: TokenServer = self.owner
        parts = urlsplit(self.path)
        params = parse_qs(parts.query)
        ts.log.append(Seen("GET", self.path, self.headers.get("Authorization"), None))
        if ts.fail is not None:
            status, body, kind = ts.fail
            return self.reply(status, body, content_type=kind)
        user = None
        header = self.headers.get("Authorization")
        if header:
            if not header.startswith("Basic "):
                return self.reply(401, b'{"details":"bad auth"}')
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if ts.users.get(name) != password:
                return self.reply(401, b'{"details":"wrong credentials"}')
            user = name
        elif not ts.anonymous:
            return self.reply(401, b'{"details":"login required"}')
        self.issue(params.get("scope", []), user)

    def do_POST(self) -> None:
        ts: TokenServer = self.owner
        form = parse_qs(self.read_body().decode())
        ts.log.append(Seen("POST", self.path, None, None))
        if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token", [""])[0] not in ts.refresh_tokens:
            return self.reply(401, b'{"error":"invalid_grant"}')
        scope = " ".join(form.get("scope", [])).split()
        self.issue(scope, ts.refresh_tokens[form["refresh_token"][0]])

    def issue(self, scopes: list[str], user: str | None) -> None:
        ts: TokenServer = self.owner
        granted = set()
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            for action in actions.split(","):
                if user is not None or (kind == "repository" and action == "pull"):
                    granted.add(f"{kind}:{name}:{action}")
        header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        token = f"{header}.{secrets.token_urlsafe(24)}.{secrets.token_urlsafe(8)}"
        ts.tokens[token] = granted
        body = {"token": token, "access_token": token, "expires_in": ts.expires_in,
                "issued_at": "2024-01-01T00:00:00Z"}
        self.reply(200, json.dumps(body).encode())


class TokenServer(_Base):
    """A token endpoint: ``users`` may log in with Basic auth and get every action;
    anonymous callers (when ``anonymous``) get ``pull`` only. ``fail = (status, body,
    content_type)`` makes every request fail that way."""

    def __init__(self, users: dict[str, str] | None = None, anonymous: bool = True,
                 expires_in: int = 300) -> None:
        super().__init__(_TokenHandler)
        self.users = dict(users or {})
        self.anonymous = anonymous
        self.expires_in = expires_in
        self.tokens: dict[str, set[str]] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.fail: tuple[int, bytes, str] | None = None

    @property
    def realm(self) -> str:
        return f"http://{self.host}/token"

    def revoke_all(self) -> None:
        self.tokens.clear()


# --- the front proxy ------------------------------------------------------------------------------
Fault = Callable[["_ProxyHandler", bytes], bool]
_REPO_PATH = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags)/")


class _ProxyHandler(_Handler):
    def handle_request(self) -> None:
        proxy: FrontProxy = self.owner
        body = self.read_body()
        proxy.log.append(Seen(self.command, self.path, self.headers.get("Authorization"),
                              self.headers.get("Range")))
        for fault in list(proxy.faults):
            if fault(self, body):
                return
        if proxy.tokens is not None and not self.authorized():
            return
        self.forward(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_request

    def required_scope(self) -> str | None:
        path = urlsplit(self.path).path
        if path.startswith("/v2/_catalog"):
            return "registry:catalog:*"
        match = _REPO_PATH.match(path)
        if not match:
            return None
        action = "pull" if self.command in ("GET", "HEAD") else "push"
        return f"repository:{match.group(1)}:{action}"

    def authorized(self) -> bool:
        proxy: FrontProxy = self.owner
        ts = proxy.tokens
        assert ts is not None
        needed = self.required_scope()
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else None
        granted = ts.tokens.get(token) if token else None
        if granted is not None and (needed is None or needed in granted):
            return True
        challenge = f'Bearer realm="{ts.realm}",service="test-registry"'
        if needed:
            kind, _, rest = needed.partition(":")
            name, _, action = rest.rpartition(":")
            scope = f"{kind}:{name}:pull,push" if action == "push" else needed
            challenge += f',scope="{scope}"'
            if granted is not None:
                challenge += ',error="insufficient_scope"'
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required",
                                       "detail": None}]}).encode()
        self.reply(401, body, {"WWW-Authenticate": challenge})
        return False

    def forward(self, body: bytes, cut_at: float | None = None,
                header_override: dict[str, str] | None = None, transform=None) -> None:
        proxy: FrontProxy = self.owner
        conn = http.client.HTTPConnection(proxy.backend, timeout=30)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("authorization", "connection", "content-length",
                                        "transfer-encoding", "keep-alive")}
        send_body = body if (body or self.command in ("PUT", "POST", "PATCH")) else None
        conn.request(self.command, self.path, body=send_body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if transform is not None:
            data = transform(data)
        self.send_response(response.status)
        length = response.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        for key, value in response.getheaders():
            if key.lower() in ("transfer-encoding", "connection", "content-length", "date", "server"):
                continue
            if header_override and key.lower() in {h.lower() for h in header_override}:
                continue
            self.send_header(key, value)
        for key, value in (header_override or {}).items():
            if value is not None:  # None drops the header
                self.send_header(key, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut_at is None:
            self.wfile.write(data)
            return
        self.wfile.write(data[: int(len(data) * cut_at)])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


class FrontProxy(_Base):
    """A proxy to ``backend`` (``host:port``); ``tokens`` makes it demand Bearer tokens
    from that :class:`TokenServer`; ``faults`` are tried in order on every request."""

    def __init__(self, backend: str, tokens: TokenServer | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        super().__init__(_ProxyHandler, tls)
        self.backend = backend
        self.tokens = tokens
        self.faults: list[Fault] = []

    def count(self, method: str, pattern: str) -> int:
        """How many requests matched ``method`` and the path regex ``pattern``."""
        return sum(1 for s in self.log if s.method == method and re.search(pattern, s.path))


# --- fault builders ---------------------------------------------------------------------------------
def matching(method: str, pattern: str) -> Callable[[_ProxyHandler], bool]:
    regex = re.compile(pattern)
    return lambda h: h.command == method and bool(regex.search(h.path))


def fail_times(method: str, pattern: str, status: int, times: int,
               headers: dict[str, str] | None = None, body: bytes = b"",
               content_type: str = "application/json") -> Fault:
    """Answer ``status`` to the first ``times`` matching requests (then pass through)."""
    match = matching(method, pattern)
    left = [times]

    def fault(handler: _ProxyHandler, _body: bytes) -> bool:
        if left[0] > 0 and match(handler):
            left[0] -= 1
            handler.reply(status, body, headers, content_type)
            return True
        return False

    return fault


def cut_body(method: str, pattern: str, times: int, at: float = 0.5, ranged: bool = False) -> Fault:
    """Forward but cut the body after ``at`` of it, for the first ``times`` matches
    (requests with a ``Range`` header only if ``ranged``)."""
    match = matching(method, pattern)
    left = [times]

    def fault(handler: _ProxyHandler, body: bytes) -> bool:
        if left[0] > 0 and match(handler) and (ranged or handler.headers.get("Range") is None):
            left[0] -= 1
            handler.forward(body, cut_at=at)
            return True
        return False

    return fault


def rewrite(method: str, pattern: str, *, headers: dict[str, str] | None = None,
            transform=None) -> Fault:
    """Forward, overriding response headers and/or transforming the body."""
    match = matching(method, pattern)

    def fault(handler: _ProxyHandler, body: bytes) -> bool:
        if match(handler):
            handler.forward(body, header_override=headers, transform=transform)
            return True
        return False

    return fault


# --- registries and samples -----------------------------------------------------------------------
def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 (``openssl req``)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file with bcrypt entries (what Distribution accepts)."""
    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()}"
             for user, pw in users.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def skopeo_push(host: str, pushes: list[tuple[list[str], str, str]]) -> None:
    """Run several ``skopeo copy`` at once: each ``(extra args, source, repo:tag)``."""
    procs = []
    for extra, source, target in pushes:
        cmd = ["skopeo", "copy", "-q", "--dest-tls-verify=false", *extra, source,
               f"docker://{host}/{target}"]
        procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    for cmd, proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode()[-500:]}")


def push_samples(host: str) -> None:
    """The sample pushes every registry under test gets."""
    family = f"oci:{SAMPLES / 'oci' / 'family'}"
    skopeo_push(host, [
        (["--format", "v2s2"], f"{family}:app-v1", "fam:v2s2"),
        (["--format", "oci"], f"{family}:app-v1", "fam:oci"),
        (["--format", "v2s1"], f"{family}:app-v1", "fam:v2s1"),
        (["--format", "oci"], f"{family}:app-v2", "fam:app-v2"),
        (["--all"], f"oci:{SAMPLES / 'oci' / 'multi'}:latest", "multi:latest"),
    ])


def expected() -> dict:
    return json.loads((SAMPLES / "expected.json").read_text())["images"]
