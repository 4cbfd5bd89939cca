"""The registry client's HTTP/1.1 layer (layerlab.sources.remote.http) against a scripted
server on a loopback port: framing both ways, keep-alive, stale connections, redirects,
proxies, failures."""

from __future__ import annotations

import io
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Callable

import pytest

from conftest import require_tool
from layerlab.registry import LocalRegistry
from layerlab.sources.remote.http import Headers, HttpClient, HttpFailure, Response, TlsFailure
from remote_servers import FrontProxy, self_signed_certificate


def listen(handle: Callable[[socket.socket, int], None]) -> socket.socket:
    """A listening loopback socket; each connection is handled on a thread of its own,
    with its number (1, 2 ... in accept order)."""
    sock = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        number = 0
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=handle, args=(conn, number), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return sock


@dataclass
class Seen:
    connection: int
    line: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Seen], bytes | None]  # the raw answer; None: close without answering


@dataclass
class Scripted:
    """A raw HTTP/1.1 server: parses requests (Content-Length or chunked bodies), logs
    them, and writes what ``handler`` returns."""

    handler: Handler
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self.sock = listen(self._serve)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def _serve(self, conn: socket.socket, number: int) -> None:
        self.connections = max(self.connections, number)
        reader = conn.makefile("rb")
        with conn:
            while True:
                line = reader.readline()
                if not line:
                    return
                headers: dict[str, str] = {}
                while (h := reader.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = b""
                if headers.get("transfer-encoding") == "chunked":
                    while (size_line := reader.readline().strip()) not in (b"0", b""):
                        body += reader.read(int(size_line, 16))
                        reader.readline()
                    if not size_line:
                        return  # the client gave up mid-body
                    reader.readline()
                elif "content-length" in headers:
                    body = reader.read(int(headers["content-length"]))
                seen = Seen(number, line.decode().strip(), headers, body)
                self.seen.append(seen)
                answer = self.handler(seen)
                if answer is None:
                    return
                conn.sendall(answer)
                if b"Connection: close" in answer:
                    return

    def close(self) -> None:
        self.sock.close()


def ok(body: bytes = b"", extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


@pytest.fixture
def server():
    servers: list[Scripted] = []

    def make(handler: Handler) -> Scripted:
        servers.append(Scripted(handler))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_bodies_are_framed_and_connections_kept_alive(server, tmp_path):
    srv = server(lambda seen: ok(b"got %d" % len(seen.body)))
    path = tmp_path / "blob"
    path.write_bytes(b"f" * 300_000)
    client = HttpClient(headers={"User-Agent": "t/1"})
    try:
        assert client.request("PUT", srv.url + "/a", body=b"x" * 1000).content == b"got 1000"
        with open(path, "rb") as f:
            f.seek(100_000)  # sent from the file's position: Content-Length 200000
            assert client.request("PUT", srv.url + "/b", body=f).content == b"got 200000"
        chunks = [b"a" * 70_000, b"", b"b" * 5]
        assert client.request("PATCH", srv.url + "/c", body=iter(chunks)).content == b"got 70005"
        assert client.request("POST", srv.url + "/d", body=[("k", "v w")]).content == b"got 5"
        assert client.request("POST", srv.url + "/e").content == b"got 0"
        unknown = io.BufferedReader(io.BytesIO(b"z" * 10))  # seekable: length known
        assert client.request("PUT", srv.url + "/f", body=unknown).content == b"got 10"
        get = client.request("GET", srv.url + "/g", params={"n": "2", "last": "a b"})
        assert get.read() == b"got 0"
    finally:
        client.close()
    a, b, c, d, e, f, g = srv.seen
    assert srv.connections == 1 and {s.connection for s in srv.seen} == {1}
    assert a.headers["content-length"] == "1000" and a.headers["user-agent"] == "t/1"
    assert a.headers["host"] == f"127.0.0.1:{srv.port}"
    assert b.headers["content-length"] == "200000" and b.body == b"f" * 200_000
    assert c.headers["transfer-encoding"] == "chunked" and c.body == b"a" * 70_000 + b"b" * 5
    assert d.body == b"k=v+w"
    assert d.headers["content-type"] == "application/x-www-form-urlencoded"
    assert e.headers["content-length"] == "0" and e.body == b""
    assert g.line == "GET /g?n=2&last=a+b HTTP/1.1" and "content-length" not in g.headers


def test_response_framing_chunked_head_and_close_delimited(server):
    answers = {
        "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
        "/head": b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nDocker-Content-Digest: d\r\n\r\n",
        "/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        "/multi": b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=a\r\n"
                  b"www-authenticate: Bearer realm=b\r\nContent-Length: 0\r\n\r\n",
    }
    srv = server(lambda seen: answers[seen.line.split()[1]])
    client = HttpClient()
    chunked = client.request("GET", srv.url + "/chunked")
    assert chunked.read(3) == b"hel" and chunked.read(4) == b"lo, " and chunked.read() == b"world"
    assert chunked.finished
    head = client.request("HEAD", srv.url + "/head")
    assert head.finished and head.headers["content-length"] == "12345" and head.content == b""
    multi = client.request("GET", srv.url + "/multi")
    assert multi.status_code == 401 and multi.reason == "Unauthorized"
    assert multi.headers["WWW-Authenticate"] == "Basic realm=a, Bearer realm=b"
    assert srv.connections == 1  # all three on one connection
    closing = client.request("GET", srv.url + "/close")
    assert closing.content == b"until the end"
    client.request("HEAD", srv.url + "/head").close()
    assert srv.connections == 2  # the close-delimited answer used its connection up
    client.close()


def test_stale_keep_alive_connection_is_replaced_once(server):
    # the server answers the first request of each connection, then drops the connection
    # when the next one arrives (as a keep-alive timeout racing a request does)
    def first_only(seen: Seen) -> bytes | None:
        on_this = [s for s in srv.seen if s.connection == seen.connection]
        return ok(b"one") if len(on_this) == 1 else None

    srv = server(first_only)
    client = HttpClient()
    assert client.request("GET", srv.url + "/1").content == b"one"
    assert client.request("PUT", srv.url + "/2", body=b"again").content == b"one"
    assert srv.connections == 2
    # a streamed body already consumed cannot be sent again: the failure is reported
    with pytest.raises(HttpFailure, match="closed before the response"):
        client.request("PATCH", srv.url + "/3", body=iter([b"x"]))
    assert client.request("GET", srv.url + "/4").content == b"one"
    assert srv.connections == 3
    client.close()


def test_body_cut_short_and_garbage_raise_http_failure(server):
    answers = {
        "/short": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly this",
        "/garbage": b"SSH-2.0-OpenSSH_9.2\r\n",
        "/badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    }

    def answer(seen: Seen) -> bytes | None:
        return answers.get(seen.line.split()[1])

    srv = server(answer)
    client = HttpClient(timeout=10)
    short = client.request("GET", srv.url + "/short")
    with pytest.raises(HttpFailure, match="closed in the middle of the body"):
        short.read()
    with pytest.raises(HttpFailure, match="not an HTTP response"):
        client.request("GET", srv.url + "/garbage")
    with pytest.raises(HttpFailure, match="bad chunk size"):
        client.request("GET", srv.url + "/badchunk").read()
    with pytest.raises(HttpFailure, match="closed before the response"):
        client.request("GET", srv.url + "/nothing")
    dead = socket.create_server(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    with pytest.raises(HttpFailure) as err:
        client.request("GET", f"http://127.0.0.1:{port}/")
    assert err.value.reason == "Connection refused"
    client.close()


def test_body_iterator_errors_propagate_and_drop_the_connection(server):
    srv = server(lambda seen: ok())

    def failing():
        yield b"part"
        raise ValueError("source broke")

    client = HttpClient()
    with pytest.raises(ValueError, match="source broke"):
        client.request("PATCH", srv.url + "/x", body=failing())
    assert client.request("GET", srv.url + "/y").status_code == 200
    assert srv.connections == 2  # the half-sent request's connection was not reused
    client.close()


def test_redirects_followed_for_get_without_authorization_across_origins(server):
    storage = server(lambda seen: ok(b"blob bytes"))
    registry = server(lambda seen: (
        f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {storage.url}/s3/blob?sig=1\r\n"
        "Content-Length: 0\r\n\r\n").encode() if seen.line.startswith("GET /v2/b")
        else b"HTTP/1.1 301 Moved\r\nLocation: /v2/b\r\nContent-Length: 0\r\n\r\n")
    client = HttpClient()
    response = client.request("GET", registry.url + "/v2/a", headers={"Authorization": "Bearer t"})
    assert response.content == b"blob bytes"
    assert response.url == f"{storage.url}/s3/blob?sig=1"
    assert [s.line for s in registry.seen] == ["GET /v2/a HTTP/1.1", "GET /v2/b HTTP/1.1"]
    assert registry.seen[1].headers["authorization"] == "Bearer t"  # same origin: kept
    assert "authorization" not in storage.seen[0].headers  # another origin: dropped
    put = client.request("PUT", registry.url + "/v2/a", body=b"")
    assert put.status_code == 301  # only GET and HEAD follow
    client.close()


def test_proxy_from_the_environment(server, monkeypatch):
    proxy = server(lambda seen: ok(b"via proxy"))
    direct = server(lambda seen: ok(b"direct"))
    monkeypatch.setenv("http_proxy", f"http://user:pw@127.0.0.1:{proxy.port}")
    monkeypatch.setenv("no_proxy", "localhost")
    client = HttpClient(trust_env=True)
    # the name is never resolved by the client: the proxy is asked for the absolute URL
    assert client.request("GET", "http://registry.example:5000/v2/").content == b"via proxy"
    seen = proxy.seen[0]
    assert seen.line == "GET http://registry.example:5000/v2/ HTTP/1.1"
    assert seen.headers["host"] == "registry.example:5000"
    assert seen.headers["proxy-authorization"] == "Basic dXNlcjpwdw=="
    # no_proxy names the host: straight to it
    assert client.request("GET", f"http://localhost:{direct.port}/v2/").content == b"direct"
    # a client that does not trust the environment ignores the proxy variables
    assert HttpClient(trust_env=False).request("GET", direct.url + "/").content == b"direct"
    assert len(proxy.seen) == 1 and len(direct.seen) == 2
    client.close()


def test_headers_and_complete_responses():
    headers = Headers([("Content-Type", "a"), ("X-A", "1"), ("x-a", "2")])
    assert headers["content-type"] == "a" and headers.get("X-a") == "1, 2"
    assert "CONTENT-TYPE" in headers and list(headers) == ["Content-Type", "X-A"]
    done = Response.complete(404, b'{"errors": []}', {"Content-Type": "application/json"},
                             "http://r/v2/x", "Not Found")
    assert done.json() == {"errors": []} and done.read(3) == b'{"e' and done.finished


class ConnectProxy:
    """An HTTP proxy that only tunnels (``CONNECT host:port``), logging what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.sock = listen(self._tunnel)
        self.port = self.sock.getsockname()[1]

    def _tunnel(self, conn: socket.socket, number: int) -> None:
        reader = conn.makefile("rb", buffering=0)
        line = reader.readline().decode().strip()
        while reader.readline() not in (b"\r\n", b""):
            pass
        self.asked.append(line)
        host, _, port = line.split()[1].rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                dst.close()

        threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()
        pump(conn, upstream)

    def close(self) -> None:
        self.sock.close()


def test_https_through_a_connect_tunnel(tmp_path, monkeypatch):
    require_tool("openssl")
    proxy = ConnectProxy()
    monkeypatch.setenv("https_proxy", f"127.0.0.1:{proxy.port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with LocalRegistry() as backend, \
            FrontProxy(backend.host, tls=self_signed_certificate(tmp_path)) as tls:
        url = f"https://127.0.0.1:{tls.port}/v2/"
        with pytest.raises(TlsFailure, match="certificate verify failed"):
            HttpClient(trust_env=True).request("GET", url)
        client = HttpClient(trust_env=True, verify=False)
        first = client.request("GET", url)
        assert first.status_code == 200 and first.json() == {}
        assert client.request("GET", url).status_code == 200
        client.close()
    assert proxy.asked == [f"CONNECT 127.0.0.1:{tls.port} HTTP/1.1"] * 2  # one per client
    proxy.close()


def test_a_ca_bundle_from_the_environment_is_trusted(tmp_path, monkeypatch):
    require_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    with LocalRegistry() as backend, FrontProxy(backend.host, tls=(cert, key)) as tls:
        url = f"https://127.0.0.1:{tls.port}/v2/"
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        with pytest.raises(TlsFailure, match="certificate verify failed"):
            HttpClient(trust_env=False).request("GET", url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        assert HttpClient(trust_env=False).request("GET", url).status_code == 200


def test_a_redirect_loop_is_not_retried(server):
    """A loop fails at the first pass through it: 11 requests, not 11 per retry."""
    from layerlab.errors import RegistryUnavailableError
    from layerlab.sources.remote.transport import Transport

    loop = server(lambda seen: b"HTTP/1.1 302 Found\r\nLocation: /v2/loop\r\nContent-Length: 0\r\n\r\n")
    transport = Transport(f"127.0.0.1:{loop.port}", retries=4, backoff=0.0)
    with pytest.raises(RegistryUnavailableError) as err:
        transport.request("GET", "/v2/loop")
    transport.close()
    assert str(err.value) == (f"GET http://127.0.0.1:{loop.port}/v2/loop: cannot reach the "
                              "registry (more than 10 redirects)")
    assert len(loop.seen) == 11
