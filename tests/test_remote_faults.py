"""Bad registries: faults injected by a front proxy (or nothing listening at all). Each
must end in a clear LayerlabError naming the URL, after bounded retries, or recover."""

from __future__ import annotations

import hashlib
import json
import socket
import time

import pytest

from conftest import free_port, require_tool
from layerlab.digest import digest_bytes
from layerlab.errors import (DigestMismatchError, RegistryError, RegistryProtocolError,
                             RegistryUnavailableError, UnknownMediaTypeError)
from layerlab.registry import LocalRegistry
from layerlab.sources.remote import RegistryClient, open_remote_image
from layerlab.sources.remote.synthetic import push_image, synthetic_image, synthetic_layer
from remote_servers import FrontProxy, cut_body, fail_times, rewrite, self_signed_certificate

NOISE = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(8000))  # 256 KB
LAYER = synthetic_layer({"data/noise.bin": NOISE})
IMAGE = synthetic_image([LAYER])
LAYER_DIGEST, LAYER_BLOB = IMAGE.layers[0]


@pytest.fixture(scope="module")
def backend():
    with LocalRegistry(memory=True) as registry:
        with RegistryClient(registry.host) as client:
            push_image(client, "f/app", "v1", IMAGE)
        yield registry


@pytest.fixture()
def proxy(backend):
    with FrontProxy(backend.host) as front:
        yield front


def client_for(proxy, **options) -> RegistryClient:
    options.setdefault("backoff", 0.001)
    options.setdefault("retries", 2)
    return RegistryClient(proxy.host, **options)


# --- transient faults are retried ----------------------------------------------------------------
def test_503_twice_then_success(proxy):
    proxy.faults.append(fail_times("GET", r"/manifests/v1$", 503, 2))
    with client_for(proxy) as client:
        assert client.get_manifest("f/app", "v1").digest == IMAGE.digest
    assert proxy.count("GET", r"/manifests/v1$") == 3


def test_429_honours_retry_after(proxy):
    proxy.faults.append(fail_times("GET", r"/blobs/", 429, 1, headers={"Retry-After": "0"}))
    with client_for(proxy, backoff=30.0) as client:  # a 30 s backoff would hang: Retry-After wins
        assert client.get_blob_bytes("f/app", IMAGE.config_digest) == IMAGE.config
    assert proxy.count("GET", r"/blobs/") == 2


def test_persistent_503_gives_up_after_bounded_retries(proxy):
    body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "down for maintenance"}]}).encode()
    proxy.faults.append(fail_times("GET", r"/tags/list", 503, 100, body=body))
    with client_for(proxy) as client:
        with pytest.raises(RegistryUnavailableError) as err:
            client.list_tags("f/app")
    url = f"http://{proxy.host}/v2/f/app/tags/list"
    assert (err.value.status, err.value.code, err.value.url) == (503, "UNAVAILABLE", url)
    assert str(err.value) == f"GET {url}: HTTP 503 UNAVAILABLE: down for maintenance (after 3 attempts)"
    assert proxy.count("GET", r"/tags/list") == 3


def test_blob_cut_mid_stream_resumes_with_range(proxy):
    proxy.faults.append(cut_body("GET", rf"/blobs/{LAYER_DIGEST}", 1, at=0.5))
    with client_for(proxy) as client:
        with client.open_blob("f/app", LAYER_DIGEST) as stream:
            assert stream.read() == LAYER_BLOB
    ranges = [s.range for s in proxy.log if LAYER_DIGEST in s.path]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert len(ranges) == 2


def test_layer_of_an_image_survives_a_cut(proxy):
    image = open_remote_image(f"{proxy.host}/f/app:v1", client=client_for(proxy))
    proxy.faults.append(cut_body("GET", rf"/blobs/{LAYER_DIGEST}", 1, at=0.3))
    diff_id, _ = image.layers[0].verify()
    assert diff_id == LAYER[1]
    assert len([s for s in proxy.log if LAYER_DIGEST in s.path]) == 2


def test_blob_cut_every_time_fails_clearly(proxy):
    proxy.faults.append(cut_body("GET", rf"/blobs/{LAYER_DIGEST}", 100, at=0.5, ranged=True))
    with client_for(proxy) as client:
        with pytest.raises(RegistryUnavailableError, match="blob body broken at byte") as err:
            client.open_blob("f/app", LAYER_DIGEST).read()
    assert err.value.url == f"http://{proxy.host}/v2/f/app/blobs/{LAYER_DIGEST}"
    assert "after 3 attempts" in str(err.value)
    assert proxy.count("GET", LAYER_DIGEST) == 3


# --- nothing there, or nothing answering ------------------------------------------------------------
def test_registry_down():
    host = f"127.0.0.1:{free_port()}"
    with RegistryClient(host, retries=2, backoff=0.001) as client:
        with pytest.raises(RegistryUnavailableError) as err:
            client.get_manifest("f/app", "v1")
    assert str(err.value) == (f"GET http://{host}/v2/f/app/manifests/v1: cannot reach the registry "
                              "(Connection refused) after 3 attempts")


def test_registry_that_never_answers_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with RegistryClient(host, timeout=0.2, retries=1, backoff=0.001) as client:
            with pytest.raises(RegistryUnavailableError, match="timed out") as err:
                client.get_manifest("f/app", "v1")
        assert time.monotonic() - started < 10
    assert err.value.url == f"http://{host}/v2/f/app/manifests/v1"


# --- answers that break the protocol --------------------------------------------------------------------
def test_html_answers(proxy):
    page = b"<!doctype html><html><body>Welcome to nginx</body></html>"
    proxy.faults.append(fail_times("GET", r"/manifests/", 200, 1, body=page, content_type="text/html"))
    proxy.faults.append(fail_times("GET", r"/tags/list", 404, 1, body=page, content_type="text/html"))
    proxy.faults.append(fail_times("GET", r"^/v2/$", 200, 1, body=page, content_type="text/html"))
    with client_for(proxy) as client:
        with pytest.raises(RegistryProtocolError) as err:
            client.get_manifest("f/app", "v1")
        assert str(err.value) == (f"GET http://{proxy.host}/v2/f/app/manifests/v1: answered an HTML "
                                  "page, not a manifest")
        with pytest.raises(RegistryError) as err:
            client.list_tags("f/app")
        assert (err.value.status, err.value.code) == (404, None)
        assert str(err.value) == f"GET http://{proxy.host}/v2/f/app/tags/list: HTTP 404 Not Found (an HTML page)"
        with pytest.raises(RegistryProtocolError, match="not a v2 registry"):
            client.ping()
        client.ping()


def test_lying_digests(proxy):
    liar = "sha256:" + "1" * 64
    proxy.faults.append(rewrite("GET", r"/manifests/v1$", headers={"Docker-Content-Digest": liar}))
    proxy.faults.append(rewrite("GET", rf"/manifests/{IMAGE.digest}", transform=lambda b: b + b"\n",
                                 headers={"Docker-Content-Digest": None}))
    proxy.faults.append(rewrite("GET", rf"/blobs/{IMAGE.config_digest}", transform=lambda b: b.replace(b"amd64", b"arm64")))
    proxy.faults.append(rewrite("GET", rf"/blobs/{LAYER_DIGEST}", transform=lambda b: b[:-1] + bytes([b[-1] ^ 1])))
    with client_for(proxy) as client:
        with pytest.raises(RegistryProtocolError) as err:
            client.get_manifest("f/app", "v1")
        assert str(err.value) == (f"GET http://{proxy.host}/v2/f/app/manifests/v1: Docker-Content-Digest "
                                  f"{liar} does not match the manifest's digest {IMAGE.digest}")
        altered = digest_bytes(IMAGE.manifest + b"\n")
        with pytest.raises(RegistryProtocolError,
                           match=f"asked for {IMAGE.digest}, got a manifest with digest {altered}"):
            client.get_manifest("f/app", IMAGE.digest)
        with pytest.raises(RegistryProtocolError, match="blob digest mismatch"):
            client.get_blob_bytes("f/app", IMAGE.config_digest)
        with pytest.raises(DigestMismatchError) as mismatch:
            client.open_blob("f/app", LAYER_DIGEST).read()
        assert mismatch.value.expected == LAYER_DIGEST
        assert proxy.host in mismatch.value.what


def test_pagination_that_loops_or_never_ends(proxy):
    page = json.dumps({"name": "f/app", "tags": ["v1"]}).encode()
    proxy.faults.append(fail_times("GET", r"/f/app/tags/list", 200, 100, body=page,
                                   headers={"Link": '</v2/f/app/tags/list?n=1>; rel="next"'}))
    with client_for(proxy) as client:
        with pytest.raises(RegistryProtocolError, match="pagination loops") as err:
            client.list_tags("f/app", page_size=1)
    assert err.value.url == f"http://{proxy.host}/v2/f/app/tags/list?n=1"
    counter = iter(range(10**6))

    def endless(handler, _body) -> bool:
        if "/_catalog" not in handler.path:
            return False
        n = next(counter)
        handler.reply(200, json.dumps({"repositories": [f"r{n}"]}).encode(),
                      {"Link": f'</v2/_catalog?n=1&last=r{n}>; rel="next"'})
        return True

    proxy.faults[:] = [endless]
    with client_for(proxy) as client:
        client.max_pages = 25
        with pytest.raises(RegistryProtocolError, match="more than 25 pages, giving up"):
            client.catalog(page_size=1)
    assert proxy.count("GET", "/_catalog") == 25


def test_unknown_manifest_media_type(proxy):
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example.thing+json"}).encode()
    proxy.faults.append(fail_times("GET", r"/manifests/v1$", 200, 1, body=body,
                                   content_type="application/vnd.example.thing+json"))
    with client_for(proxy) as client:
        with pytest.raises(UnknownMediaTypeError) as err:
            client.get_manifest("f/app", "v1")
    assert str(err.value) == (f"manifest http://{proxy.host}/v2/f/app/manifests/v1: unknown manifest "
                              "media type 'application/vnd.example.thing+json'")


# --- TLS ------------------------------------------------------------------------------------------------
def test_self_signed_tls_needs_insecure(backend, tmp_path):
    require_tool("openssl")
    with FrontProxy(backend.host, tls=self_signed_certificate(tmp_path)) as tls_proxy:
        with RegistryClient(tls_proxy.host, plain_http=False, retries=1, backoff=0.001) as client:
            assert client.base_url == f"https://{tls_proxy.host}"
            with pytest.raises(RegistryUnavailableError, match="certificate verify failed") as err:
                client.get_manifest("f/app", "v1")
        assert "--insecure" in str(err.value)
        with RegistryClient(tls_proxy.host, plain_http=False, insecure=True) as client:
            assert client.get_manifest("f/app", "v1").digest == IMAGE.digest
            with client.open_blob("f/app", LAYER_DIGEST) as stream:
                assert stream.read() == LAYER_BLOB


def test_deeply_nested_manifest_from_a_lying_registry_is_one_line_exit_2(proxy):
    import subprocess
    import sys

    proxy.faults.append(rewrite("GET", r"/manifests/v1$", transform=lambda b: b"[" * 100_000,
                                headers={"Docker-Content-Digest": None}))
    proc = subprocess.run([sys.executable, "-m", "layerlab", "inspect", f"docker://{proxy.host}/f/app:v1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "nested too deeply" in proc.stderr
    assert proc.stderr.startswith("layerlab: error: ")
