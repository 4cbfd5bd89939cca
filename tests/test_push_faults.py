"""Faults: broken uploads resumed, 5xx storms, lying registries, refusals, a full cache disk.

A small fault-injecting HTTP proxy (a real server on a loopback port) sits between the
pusher and a real registry; it forwards everything except what a test tells it to break.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import random
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

from layerlab.errors import (AuthenticationError, PushError, RegistryError,
                             RegistryProtocolError, RegistryUnavailableError)
from layerlab.pusher import push
from layerlab.pusher.cache import DigestCache
from layerlab.registry import LocalRegistry
from layerlab.sources import open_image

Rule = Callable[[str, str, int], bool]  # (method, path, n-th request of that method) -> hit?


class FaultProxy(ThreadingHTTPServer):
    """Forwards to ``backend`` (host:port); ``cut``/``fail``/``lie`` inject faults."""

    daemon_threads = True

    def __init__(self, backend: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.backend = backend
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.cut: tuple[Rule, int] | None = None    # close the connection after N body bytes
        self.fail: tuple[Rule, int] | None = None   # answer with this status
        self.lie: str | None = None                  # wrong Docker-Content-Digest on PUTs to paths with this
        self.cuts = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, *args) -> None:  # quiet
        pass

    def _body_reader(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def _handle(self) -> None:
        method, path = self.command, self.path
        with self.server.lock:
            n = self.server.counts[method] = self.server.counts.get(method, 0) + 1
        fail = self.server.fail
        if fail and fail[0](method, path, n):
            for _ in self._body_reader():
                pass
            body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "injected"}]}).encode()
            self.send_response(fail[1])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        cut = self.server.cut
        limit = cut[1] if cut and cut[0](method, path, n) else None
        body = b""
        for chunk in self._body_reader():
            body += chunk
            if limit is not None and len(body) >= limit:
                body = body[:limit]
                break
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("transfer-encoding", "connection", "content-length")}
        if limit is not None and "Content-Range" in headers:  # the part that got through
            start = int(headers["Content-Range"].split("-")[0])
            headers["Content-Range"] = f"{start}-{start + len(body) - 1}"
        conn = http.client.HTTPConnection(self.server.backend, timeout=30)
        conn.request(method, path, body=body if (body or method in ("PUT", "PATCH", "POST"))
                     else None, headers={**headers, "Content-Length": str(len(body))})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if limit is not None:  # the registry got part of the body: now die mid-upload
            with self.server.lock:
                self.server.cuts += 1
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() in ("transfer-encoding", "connection", "content-length", "date", "server"):
                continue
            if key.lower() == "docker-content-digest" and self.server.lie and method == "PUT" \
                    and self.server.lie in path:
                value = "sha256:" + "0" * 64
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


def _layer_tar(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(rng.randrange(3, 9))) for _ in range(300)]
    text = b" ".join(rng.choice(words) for _ in range(size // 12))[: size // 2]
    content = text + rng.randbytes(size - len(text))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(f"data{seed}.bin")
        info.size, info.mtime = len(content), 1704067200
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """A docker-archive with two layers of 1.5 MB and 600 kB (not 'small' blobs)."""
    layers = [_layer_tar(1_500_000, 1), _layer_tar(600_000, 2)]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    path = tmp_path_factory.mktemp("faults") / "two.tar"
    members = [(f"{config_hex}.json", config), ("l1/layer.tar", layers[0]), ("l2/layer.tar", layers[1]),
               ("manifest.json", json.dumps([{"Config": f"{config_hex}.json", "RepoTags": ["two:1"],
                                              "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode())]
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


@pytest.fixture()
def reg():
    with LocalRegistry(chunk_min_length=1024) as registry:
        yield registry


@pytest.fixture()
def proxy(reg):
    server = FaultProxy(reg.host)
    yield server
    server.close()


def _settle(reg, kinds_needed: int) -> list:
    deadline = time.monotonic() + 5
    while len(reg.log) < kinds_needed and time.monotonic() < deadline:
        time.sleep(0.02)
    return reg.log.entries


def _push(archive: Path, host: str, repo: str, **options):
    options.setdefault("cache", False)
    options.setdefault("small_blob_limit", 0)  # every blob through an upload session
    return push(f"docker-archive:{archive}", f"{host}/{repo}:1", progress=False, retry_backoff=0,
                **options)


def _patch_only(method: str, path: str, n: int) -> bool:
    return method == "PATCH"


def test_stream_upload_cut_mid_way_is_resumed(archive, reg, proxy):
    proxy.cut = (lambda m, p, n: m == "PATCH" and n == 1, 300_000)
    result = _push(archive, proxy.host, "resume/stream", concurrency=1)
    assert proxy.cuts == 1
    retries = [e for e in result.events if e.outcome == "retry"]
    assert len(retries) == 1 and retries[0].detail.endswith("resuming at byte 300000")
    entries = _settle(reg, result.requests)
    patches = [e.bytes_in for e in entries if e.kind == "upload_patch"]
    big, small = sorted(result.layers, key=lambda o: -o.size)
    assert patches == [300_000, big.size - 300_000, small.size, result.config.size]
    assert [e.kind for e in entries].count("upload_status") == 1
    open_image(f"docker://{reg.host}/resume/stream:1").verify()


def test_chunked_upload_cut_is_resumed_at_the_reported_offset(archive, reg, proxy):
    proxy.cut = (lambda m, p, n: m == "PATCH" and n == 3, 1000)
    result = _push(archive, proxy.host, "resume/chunked", upload="chunked", chunk_size=262144,
                   concurrency=1)  # one layer at a time (largest first): PATCH 3 is its 3rd chunk
    retry = next(e for e in result.events if e.outcome == "retry")
    assert retry.detail.endswith(f"resuming at byte {2 * 262144 + 1000}")
    entries = _settle(reg, result.requests)
    patches = [(e.status, e.bytes_in) for e in entries if e.kind == "upload_patch"]
    # the client re-sent the broken chunk as it was (416: the registry has 1000 more bytes),
    # then asked where the upload stands and went on from there
    assert patches[:5] == [(202, 262144), (202, 262144), (202, 1000), (416, 0), (202, 262144)]
    assert [e.kind for e in entries].count("upload_status") == 1
    open_image(f"docker://{reg.host}/resume/chunked:1").verify()


def test_registry_dying_for_good_fails_cleanly(archive, reg, proxy, tmp_path):
    proxy.cut = (_patch_only, 1000)
    cache = DigestCache(tmp_path)
    with pytest.raises(PushError, match="no manifest written") as caught:
        _push(archive, proxy.host, "dead/app", retries=2, cache=cache, concurrency=1)
    assert isinstance(caught.value.__cause__, RegistryUnavailableError)
    assert proxy.cuts == 3  # the first try and 2 retries of the first layer, then it stops
    kinds = [e.kind for e in _settle(reg, 0)]
    assert "manifest_put" not in kinds and "upload_put" not in kinds
    assert not cache.path.exists() or cache.lookup(
        [str(d) for d in open_image(f"docker-archive:{archive}").diff_ids]) == {}


def test_5xx_storm_is_retried_then_given_up(archive, reg, proxy):
    proxy.fail = (lambda m, p, n: n <= 2, 503)  # the first two requests of each method
    result = _push(archive, proxy.host, "storm/app")
    assert result.manifest_outcome == "pushed"
    open_image(f"docker://{reg.host}/storm/app:1").verify()
    proxy.fail = (lambda m, p, n: m == "POST", 503)  # never lets an upload start
    with pytest.raises(PushError) as caught:
        _push(archive, proxy.host, "storm/never", retries=1)
    cause = caught.value.__cause__
    assert isinstance(cause, RegistryUnavailableError) and cause.status == 503
    assert "manifest_put" not in [e.kind for e in reg.log.entries if e.repository == "storm/never"]


def test_registry_returning_another_digest_is_refused(archive, reg, proxy, tmp_path):
    proxy.lie = "/blobs/uploads/"
    cache = DigestCache(tmp_path)
    with pytest.raises(PushError, match="expected sha256:") as caught:
        _push(archive, proxy.host, "liar/app", cache=cache)
    assert isinstance(caught.value.__cause__, RegistryProtocolError)
    assert "manifest_put" not in [e.kind for e in _settle(reg, 0)]
    assert cache.lookup([str(d) for d in open_image(f"docker-archive:{archive}").diff_ids]) == {}


def test_manifest_put_answered_with_another_digest_says_what_the_registry_did(archive, reg, proxy):
    proxy.lie = "/manifests/"
    with pytest.raises(PushError) as caught:
        _push(archive, proxy.host, "liar/manifest", concurrency=1)
    assert "manifest_put" in [e.kind for e in _settle(reg, 0)]  # the registry did store one
    stored = open_image(f"docker://{reg.host}/liar/manifest:1").digest
    assert isinstance(caught.value.__cause__, RegistryProtocolError)
    assert caught.value.__cause__.status == 201
    assert str(caught.value) == (
        f"push to {proxy.host}/liar/manifest:1: PUT http://{proxy.host}/v2/liar/manifest/manifests/1: "
        f"the registry answered 201 with Docker-Content-Digest sha256:{'0' * 64}, "
        f"but the manifest sent has digest {stored}")


def test_authentication_refused_and_accepted(archive, tmp_path):
    import bcrypt

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode() + "\n")
    with LocalRegistry(htpasswd=htpasswd) as secured:
        with pytest.raises(PushError) as caught:
            _push(archive, secured.host, "auth/app")
        assert isinstance(caught.value.__cause__, AuthenticationError)
        assert caught.value.__cause__.code == "UNAUTHORIZED"
        cache = DigestCache(tmp_path / "cache")
        result = _push(archive, secured.host, "auth/app", auth=("alice", "secret"), cache=cache)
        assert result.totals["layers_pushed"] == 2
        # credentials from Docker's config.json: the cache-vouched re-push starts with bare
        # HEADs, is challenged (401), and goes on with the full, authenticating client
        import base64

        docker = tmp_path / "docker"
        docker.mkdir()
        token = base64.b64encode(b"alice:secret").decode()
        (docker / "config.json").write_text(json.dumps({"auths": {secured.host: {"auth": token}}}))
        again = _push(archive, secured.host, "auth/app", docker_config=str(docker), cache=cache)
        assert {o.outcome for o in again.layers} == {"exists"}
        assert again.manifest_outcome == "exists"
        statuses = [e.status for e in secured.log.entries if e.kind == "blob_head"][-4:]
        assert 200 in statuses


def test_quota_refusal(archive):
    with LocalRegistry(max_blob_size=100_000) as small:
        with pytest.raises(PushError) as caught:
            _push(archive, small.host, "quota/app")
        assert isinstance(caught.value.__cause__, RegistryError)
        assert caught.value.__cause__.status in (400, 413)
        assert "manifest_put" not in [e.kind for e in small.log.entries]


def test_full_cache_disk_warns_but_pushes(archive, reg, tmp_path):
    import resource
    import signal

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    out = subprocess.run([sys.executable, "-m", "layerlab", "push", f"docker-archive:{archive}",
                          f"{reg.host}/fullcache/app:1", "-q", "--cache-dir", str(tmp_path / "c")],
                         capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2 pushed" in out.stdout
    assert out.stderr.startswith("layerlab: warning: digest cache ")
    assert "cannot write it" in out.stderr


def test_blobs_collected_before_the_manifest_are_pushed_again(archive):
    """An online gc runs between the last blob's commit and the manifest PUT (the race a
    short gc grace allows): the registry answers 400 MANIFEST_BLOB_UNKNOWN, the pusher
    pushes the collected blobs again and the manifest then goes in."""
    with LocalRegistry(memory=True) as reg:
        collected: list = []

        def collect_once(record) -> None:
            if record.kind == "manifest_head" and not collected:  # just before the PUT
                collected.append(reg.gc(grace=0, idle=0))

        reg.log.subscribe(collect_once)
        result = _push(archive, reg.host, "gc/race")
        assert collected[0].blobs_deleted == 3  # two layers and the config
        retry = [e for e in result.events if e.phase == "manifest" and e.outcome == "retry"]
        assert len(retry) == 1 and retry[0].detail.endswith("pushing 2 collected layers again")
        assert reg.log.wait(result.requests)
        puts = [e.status for e in reg.log.entries if e.kind == "manifest_put"]
        assert puts == [400, 201]
        assert [o.outcome for o in result.layers] == ["pushed", "pushed"]
        open_image(f"docker://{reg.host}/gc/race:1").verify()
