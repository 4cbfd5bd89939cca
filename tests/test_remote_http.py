"""The registry client's HTTP layer (layerlab.sources.remote.session, on requests) against
a scripted server on a loopback port: framing both ways, keep-alive, stale connections,
redirects, proxies, TLS, failures and their one-line reasons, deadlines."""

from __future__ import annotations

import io
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import pytest

from conftest import require_tool
from layerlab.registry import LocalRegistry
from layerlab.digest import digest_bytes
from layerlab.errors import RegistryUnavailableError
from layerlab.sources.remote.session import (HttpFailure, TlsFailure, complete_response, open_session,
                                             read_chunk, read_document, send)
from layerlab.sources.remote.transport import Transport
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
    session = open_session(headers={"User-Agent": "t/1"})

    def body_of(method: str, path: str, **kw) -> bytes:
        return read_document(send(session, method, srv.url + path, **kw), 1 << 20, 10)

    try:
        assert body_of("PUT", "/a", data=b"x" * 1000) == b"got 1000"
        with open(path, "rb") as f:
            f.seek(100_000)  # sent from the file's position: Content-Length 200000
            assert body_of("PUT", "/b", data=f) == b"got 200000"
        chunks = [b"a" * 70_000, b"", b"b" * 5]
        assert body_of("PATCH", "/c", data=iter(chunks)) == b"got 70005"
        assert body_of("POST", "/d", data=[("k", "v w")]) == b"got 5"
        assert body_of("POST", "/e") == b"got 0"
        unknown = io.BufferedReader(io.BytesIO(b"z" * 10))  # seekable: length known
        assert body_of("PUT", "/f", data=unknown) == b"got 10"
        assert body_of("GET", "/g", params={"n": "2", "last": "a b"}) == b"got 0"
    finally:
        session.close()
    a, b, c, d, e, f, g = srv.seen
    assert srv.connections == 1 and {s.connection for s in srv.seen} == {1}
    assert a.headers["content-length"] == "1000" and a.headers["user-agent"] == "t/1"
    assert a.headers["host"] == f"127.0.0.1:{srv.port}"
    assert a.headers["accept-encoding"] == "identity"  # wire bytes are digested bytes
    assert "authorization" not in a.headers
    assert b.headers["content-length"] == "200000" and b.body == b"f" * 200_000
    assert c.headers["transfer-encoding"] == "chunked" and c.body == b"a" * 70_000 + b"b" * 5
    assert d.body == b"k=v+w"
    assert d.headers["content-type"] == "application/x-www-form-urlencoded"
    assert e.headers["content-length"] == "0" and e.body == b""
    assert g.line == "GET /g?n=2&last=a+b HTTP/1.1" and "content-length" not in g.headers


def test_file_bodies_go_out_in_megabyte_blocks(server, tmp_path):
    """urllib3 reads a file body 16 KiB at a time unless told otherwise."""
    srv = server(lambda seen: ok())
    path = tmp_path / "blob"
    path.write_bytes(b"q" * (3 << 20))
    reads: list[int] = []

    class Counting(io.FileIO):
        def read(self, n=-1):  # type: ignore[override]
            reads.append(n)
            return super().read(n)

    session = open_session()
    with Counting(path, "rb") as f:
        send(session, "PUT", srv.url + "/blob", data=f).close()
    session.close()
    assert srv.seen[0].body == b"q" * (3 << 20)
    assert reads[:3] == [1 << 20] * 3


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
    session = open_session()
    chunked = send(session, "GET", srv.url + "/chunked")
    assert read_chunk(chunked, 3) == b"hel" and read_chunk(chunked, 4) == b"lo"
    assert read_document(chunked, 100, 10) == b", world"
    head = send(session, "HEAD", srv.url + "/head")
    assert head.headers["content-length"] == "12345" and read_document(head, 10, 10) == b""
    multi = send(session, "GET", srv.url + "/multi")
    assert multi.status_code == 401 and multi.reason == "Unauthorized"
    assert multi.headers["WWW-Authenticate"] == "Basic realm=a, Bearer realm=b"
    assert read_document(multi, 100, 10) == b""
    assert srv.connections == 1  # all three on one connection
    assert read_document(send(session, "GET", srv.url + "/close"), 100, 10) == b"until the end"
    send(session, "HEAD", srv.url + "/head").close()
    assert srv.connections == 2  # the close-delimited answer used its connection up
    session.close()


def test_stale_keep_alive_connection_is_retried_only_with_a_replayable_body(server):
    # the server answers the first request of each connection, then drops the connection
    # when the next one arrives (as a keep-alive timeout racing a request does)
    def first_only(seen: Seen) -> bytes | None:
        on_this = [s for s in srv.seen if s.connection == seen.connection]
        return ok(b"one") if len(on_this) == 1 else None

    srv = server(first_only)
    transport = Transport(f"127.0.0.1:{srv.port}", backoff=0.0)
    assert transport.request("GET", "/1").content == b"one"
    assert transport.request("PUT", "/2", data=b"again").content == b"one"
    assert srv.connections == 2 and transport.request_count == 3
    # a streamed body already consumed cannot be sent again: the failure is reported
    with pytest.raises(RegistryUnavailableError) as err:
        transport.request("PATCH", "/3", data=iter([b"x"]))
    assert str(err.value) == (f"PATCH {srv.url}/3: cannot reach the registry (connection "
                              "closed before the response (server disconnected))")
    assert transport.request("GET", "/4").content == b"one"
    assert srv.connections == 3
    transport.close()


def test_body_cut_short_and_garbage_raise_http_failure(server):
    answers = {
        "/short": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly this",
        "/garbage": b"SSH-2.0-OpenSSH_9.2\r\n",
        "/badchunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    }

    def answer(seen: Seen) -> bytes | None:
        return answers.get(seen.line.split()[1])

    srv = server(answer)
    session = open_session()
    short = send(session, "GET", srv.url + "/short", timeout=10)
    with pytest.raises(HttpFailure) as err:
        read_document(short, 1000, 10)
    assert err.value.reason == "connection closed in the middle of the body"
    with pytest.raises(HttpFailure) as err:
        send(session, "GET", srv.url + "/garbage")
    assert err.value.reason.startswith("not an HTTP response: ") and "SSH-2.0" in err.value.reason
    with pytest.raises(HttpFailure) as err:
        read_document(send(session, "GET", srv.url + "/badchunk"), 1000, 10)
    assert err.value.reason == "bad chunk size line"
    with pytest.raises(HttpFailure) as err:
        send(session, "GET", srv.url + "/nothing")
    assert err.value.reason == "connection closed before the response (server disconnected)"
    dead = socket.create_server(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    with pytest.raises(HttpFailure) as err:
        send(session, "GET", f"http://127.0.0.1:{port}/")
    assert err.value.reason == "Connection refused"
    session.close()


def test_body_iterator_errors_propagate_and_drop_the_connection(server):
    srv = server(lambda seen: ok())

    def failing():
        yield b"part"
        raise ValueError("source broke")

    session = open_session()
    with pytest.raises(ValueError, match="source broke"):
        send(session, "PATCH", srv.url + "/x", data=failing())
    assert send(session, "GET", srv.url + "/y").status_code == 200
    assert srv.connections == 2  # the half-sent request's connection was not reused
    session.close()


def test_redirects_followed_for_get_without_authorization_across_origins(server):
    storage = server(lambda seen: ok(b"blob bytes"))
    registry = server(lambda seen: (
        f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {storage.url}/s3/blob?sig=1\r\n"
        "Content-Length: 0\r\n\r\n").encode() if seen.line.startswith("GET /v2/b")
        else b"HTTP/1.1 301 Moved\r\nLocation: /v2/b\r\nContent-Length: 0\r\n\r\n")
    session = open_session()
    response = send(session, "GET", registry.url + "/v2/a", headers={"Authorization": "Bearer t"})
    assert read_document(response, 100, 10) == b"blob bytes"
    assert response.url == f"{storage.url}/s3/blob?sig=1"
    assert [s.line for s in registry.seen] == ["GET /v2/a HTTP/1.1", "GET /v2/b HTTP/1.1"]
    assert registry.seen[1].headers["authorization"] == "Bearer t"  # same origin: kept
    assert "authorization" not in storage.seen[0].headers  # another origin: dropped
    put = send(session, "PUT", registry.url + "/v2/a", data=b"")
    assert put.status_code == 301  # only GET and HEAD follow
    session.close()


def test_proxy_from_the_environment_but_never_for_loopback_registries(server, monkeypatch):
    proxy = server(lambda seen: ok(b"via proxy"))
    direct = server(lambda seen: ok(b"direct"))
    monkeypatch.setenv("http_proxy", f"http://user:pw@127.0.0.1:{proxy.port}")
    monkeypatch.setenv("no_proxy", "localhost")
    session = open_session()
    # the name is never resolved by the client: the proxy is asked for the absolute URL
    remote = Transport("registry.example:5000", plain_http=True)
    assert remote.request("GET", "/v2/").content == b"via proxy"
    seen = proxy.seen[0]
    assert seen.line == "GET http://registry.example:5000/v2/ HTTP/1.1"
    assert seen.headers["host"] == "registry.example:5000"
    assert seen.headers["proxy-authorization"] == "Basic dXNlcjpwdw=="
    # no_proxy names the host: straight to it
    assert read_document(send(session, "GET", f"http://localhost:{direct.port}/v2/"), 100, 10) == b"direct"
    # a loopback registry goes straight there whatever the environment says
    assert Transport(f"127.0.0.1:{direct.port}").request("GET", "/v2/").content == b"direct"
    assert len(proxy.seen) == 1 and len(direct.seen) == 2
    session.close()
    remote.close()


def test_netrc_credentials_answer_a_basic_challenge(server, tmp_path, monkeypatch):
    """requests would attach .netrc to every request; the transport offers it only to
    the registry's challenge."""
    def guarded(seen: Seen) -> bytes:
        if seen.headers.get("authorization") == "Basic " + "bmV0dXNlcjpuZXRwdw==":
            return ok(b"{}")
        return (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=r\r\n"
                b"Content-Length: 0\r\n\r\n")

    srv = server(guarded)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netuser password netpw\n")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    transport = Transport(f"127.0.0.1:{srv.port}")
    assert transport.request("GET", "/v2/").status_code == 200
    transport.close()
    assert ["authorization" in s.headers for s in srv.seen] == [False, True]


def test_complete_responses():
    done = complete_response(404, b'{"errors": []}', {"Content-Type": "application/json"},
                             "http://r/v2/x", "Not Found", "HEAD")
    assert done.json() == {"errors": []} and done.headers["content-type"] == "application/json"
    assert done.request.method == "HEAD" and read_document(done, 3, 1) == b'{"er'


class Dripper:
    """A server that sends its headers at once, then its body one byte every ``every``
    seconds (as a hostile or broken registry may)."""

    def __init__(self, headers: bytes, body: bytes, every: float) -> None:
        self.headers, self.body, self.every = headers, body, every
        self.requests = 0
        self.sock = listen(self._serve)
        self.port = self.sock.getsockname()[1]

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn:
            reader = conn.makefile("rb")
            while reader.readline() not in (b"\r\n", b""):
                pass
            self.requests += 1
            try:
                conn.sendall(self.headers)
                for i in range(len(self.body)):
                    conn.sendall(self.body[i:i + 1])
                    time.sleep(self.every)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


def test_a_dripped_manifest_fails_at_the_deadline():
    """Each byte comes well within the read timeout; the whole never within the deadline."""
    body = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}' * 4
    drip = Dripper(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body), body, 0.02)
    client = Transport(f"127.0.0.1:{drip.port}", timeout=5, deadline=0.5, retries=1, backoff=0.0)
    with pytest.raises(RegistryUnavailableError) as err:
        client._get_limited("/v2/a/manifests/v1", "a", 1 << 20, "manifest")
    assert str(err.value) == (f"GET http://127.0.0.1:{drip.port}/v2/a/manifests/v1: manifest body "
                              "broken (no whole answer within 0.5 s) after 2 attempts")
    assert drip.requests == 2
    client.close()
    drip.close()


def test_a_blob_slower_than_the_minimum_rate_fails():
    from layerlab.sources.remote import RegistryClient

    body = b"z" * 4000
    drip = Dripper(b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n", body, 0.01)  # ~100 B/s
    client = RegistryClient(f"127.0.0.1:{drip.port}", timeout=0.3, min_blob_rate=2000,
                            retries=0, backoff=0.0)
    stream = client.open_blob("a", digest_bytes(body))
    with pytest.raises(RegistryUnavailableError) as err:
        stream.read()
    message = str(err.value)
    assert message.startswith(f"GET http://127.0.0.1:{drip.port}/v2/a/blobs/{digest_bytes(body)}: "
                              "blob body broken at byte ")
    assert "B/s, under the minimum of 2000 B/s) after 1 attempts" in message
    client.close()
    drip.close()


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
        with pytest.raises(TlsFailure) as err:
            send(open_session(), "GET", url)
        assert err.value.reason.startswith("certificate verify failed: ")
        session = open_session(verify=False)
        first = send(session, "GET", url)
        assert first.status_code == 200 and read_document(first, 100, 10) == b"{}"
        assert send(session, "GET", url).status_code == 200
        session.close()
    assert proxy.asked == [f"CONNECT 127.0.0.1:{tls.port} HTTP/1.0"] * 2  # one per session
    proxy.close()


def test_a_ca_bundle_from_the_environment_is_trusted(tmp_path, monkeypatch):
    require_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    with LocalRegistry() as backend, FrontProxy(backend.host, tls=(cert, key)) as tls:
        registry = f"127.0.0.1:{tls.port}"
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        with pytest.raises(RegistryUnavailableError, match="TLS failed .certificate verify failed"):
            Transport(registry, plain_http=False, retries=0).request("GET", "/v2/")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        assert Transport(registry, plain_http=False).request("GET", "/v2/").status_code == 200


def test_a_redirect_loop_is_not_retried(server):
    """A loop fails at the first pass through it: 11 requests, not 11 per retry."""
    loop = server(lambda seen: b"HTTP/1.1 302 Found\r\nLocation: /v2/loop\r\nContent-Length: 0\r\n\r\n")
    transport = Transport(f"127.0.0.1:{loop.port}", retries=4, backoff=0.0)
    with pytest.raises(RegistryUnavailableError) as err:
        transport.request("GET", "/v2/loop")
    transport.close()
    assert str(err.value) == (f"GET http://127.0.0.1:{loop.port}/v2/loop: cannot reach the "
                              "registry (more than 10 redirects)")
    assert len(loop.seen) == 11


def test_an_insecure_session_silences_the_tls_warning_for_its_own_host_only():
    import warnings

    from urllib3.exceptions import InsecureRequestWarning

    def shown(host: str) -> bool:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")  # what a user's process would show ...
            open_session(verify=False, host="insecure.test").close()  # ... with this session
            warnings.warn(f"Unverified HTTPS request is being made to host '{host}'. Adding "
                          f"certificate verification is strongly advised.", InsecureRequestWarning)
        return any(issubclass(w.category, InsecureRequestWarning) for w in caught)

    assert not shown("insecure.test")
    assert shown("bank.example")
