"""The registry's bounds on hostile or careless clients: upload sessions per client, their
expiry on a timer, the disk open uploads may hold, slow request bodies, periodic gc."""

from __future__ import annotations

import hashlib
import http.client
import socket
import time

import pytest
import requests

from layerlab.registry import LocalRegistry

OCTETS = {"Content-Type": "application/octet-stream"}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def poll(condition, timeout: float = 10.0) -> bool:
    """True once ``condition()`` holds (checked every 20 ms), False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def post_from(reg: LocalRegistry, source: str, repo: str) -> tuple[int, str]:
    """POST a new upload session from the loopback address ``source``."""
    host, port = reg.host.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        conn.request("POST", f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_upload_sessions_are_bounded_per_client():
    with LocalRegistry(memory=True, max_uploads_per_client=3) as reg:
        assert [post_from(reg, "127.0.0.1", "a")[0] for _ in range(3)] == [202, 202, 202]
        status, body = post_from(reg, "127.0.0.1", "b")
        assert status == 429
        assert '"TOOMANYREQUESTS"' in body and "client 127.0.0.1 holds 3 open uploads" in body
        assert post_from(reg, "127.0.0.2", "a")[0] == 202  # another client has its own share
        session = next(s for s in reg.storage._uploads.values() if s.client == "client 127.0.0.1")
        assert requests.delete(f"{reg.url}/v2/a/blobs/uploads/{session.id}").status_code == 204
        assert post_from(reg, "127.0.0.1", "b")[0] == 202  # room again


def test_unused_upload_sessions_expire_on_a_timer(tmp_path):
    with LocalRegistry(tmp_path, upload_timeout="0.3 s") as reg, requests.Session() as http:
        r = http.post(f"{reg.url}/v2/expire/blobs/uploads/")
        location = reg.url + r.headers["Location"]
        assert http.patch(location, data=b"half a layer", headers=OCTETS).status_code == 202
        assert reg.storage.upload_bytes == 12
        # nothing else happens: no other POST comes to trigger a sweep
        assert poll(lambda: not any((tmp_path / "uploads").iterdir()))
        status = http.get(location)
        assert (status.status_code, status.json()["errors"][0]["code"]) == (404, "BLOB_UPLOAD_UNKNOWN")
        assert reg.storage.upload_bytes == 0


def test_open_uploads_are_bounded_on_disk():
    with LocalRegistry(memory=True, max_upload_bytes=1000) as reg, requests.Session() as http:
        def start() -> str:
            return reg.url + http.post(f"{reg.url}/v2/quota/blobs/uploads/").headers["Location"]

        first, second = start(), start()
        assert http.patch(first, data=b"a" * 600, headers=OCTETS).status_code == 202
        refused = http.patch(second, data=b"b" * 600, headers=OCTETS)
        assert (refused.status_code, refused.json()["errors"][0]["code"]) == (429, "TOOMANYREQUESTS")
        assert refused.headers["Retry-After"] == "10"
        assert http.get(second).headers["Range"] == "0-0"  # nothing of it was kept
        assert reg.storage.upload_bytes == 600
        too_big = http.patch(start(), data=b"c" * 1001, headers=OCTETS)
        assert (too_big.status_code, too_big.json()["errors"][0]["code"]) == (413, "SIZE_INVALID")
        monolithic = http.post(f"{reg.url}/v2/quota/blobs/uploads/",
                               params={"digest": sha(b"d" * 1001)}, data=b"d" * 1001)
        assert monolithic.status_code == 413
        assert http.put(first, params={"digest": sha(b"a" * 600)}).status_code == 201
        assert reg.storage.upload_bytes == 0
        assert http.patch(second, data=b"b" * 600, headers=OCTETS).status_code == 202
        assert reg.storage.upload_bytes == 600


def _answer_and_close(sock: socket.socket) -> tuple[bytes, bool]:
    """What the server answers, and whether it then closed the connection."""
    sock.settimeout(10)  # bound: the server's half-second rule must come well before
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except socket.timeout:
        return data, False
    return data, True


def test_a_stalled_or_dripping_body_gets_408_and_loses_nothing():
    with LocalRegistry(memory=True, body_timeout="0.5 s", min_body_rate="1 KiB/s") as reg:
        host, port = reg.host.split(":")
        location = requests.post(f"{reg.url}/v2/slow/blobs/uploads/").headers["Location"]
        assert requests.patch(reg.url + location, data=b"kept", headers=OCTETS).status_code == 202
        with socket.create_connection((host, int(port))) as stalled:
            stalled.sendall(f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                            f"Content-Type: application/octet-stream\r\n\r\n".encode() + b"x" * 10)
            answer, closed = _answer_and_close(stalled)
        assert answer.startswith(b"HTTP/1.1 408") and b"BLOB_UPLOAD_INVALID" in answer and closed
        with socket.create_connection((host, int(port))) as drip:
            drip.sendall(b"PUT /v2/slow/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n"
                         b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n")
            drip.settimeout(0.1)
            answer = b""
            for _ in range(100):  # one byte per 0.1 s: far under 1 KiB/s
                try:
                    drip.sendall(b"{")
                    answer = drip.recv(65536)
                    break
                except socket.timeout:
                    continue
            rest, closed = _answer_and_close(drip)
        assert (answer + rest).startswith(b"HTTP/1.1 408") and b"MANIFEST_INVALID" in answer + rest
        assert closed
        assert requests.get(reg.url + location).headers["Range"] == "0-3"  # rolled back
        assert reg.storage.upload_bytes == 4
        put = requests.put(reg.url + location, params={"digest": sha(b"kept")})
        assert put.status_code == 201


def test_the_servers_own_throttle_is_not_blamed_on_the_client():
    data = b"t" * 40_000
    with LocalRegistry(memory=True, bandwidth="20 KB/s", body_timeout="0.5 s",
                       min_body_rate="1 MB/s") as reg:
        r = requests.post(f"{reg.url}/v2/throttled/blobs/uploads/", params={"digest": sha(data)},
                          data=data)
        assert r.status_code == 201


def test_periodic_gc_runs_while_serving():
    kept, garbage = b'{"config": true}', b"nobody references me"
    with LocalRegistry(memory=True, gc_interval="0.2 s", gc_grace=0) as reg, \
            requests.Session() as http:
        for data in (kept, garbage):
            assert http.post(f"{reg.url}/v2/gc/blobs/uploads/", params={"digest": sha(data)},
                             data=data).status_code == 201
        manifest = (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
                    b' "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "'
                    + sha(kept).encode() + b'", "size": ' + str(len(kept)).encode() + b'}, "layers": []}')
        assert http.put(f"{reg.url}/v2/gc/manifests/v1", data=manifest, headers={
            "Content-Type": "application/vnd.oci.image.manifest.v1+json"}).status_code == 201
        assert poll(lambda: http.head(f"{reg.url}/v2/gc/blobs/{sha(garbage)}").status_code == 404)
        assert reg.last_gc is not None and reg.last_gc.blobs_deleted >= 1
        assert http.get(f"{reg.url}/v2/gc/blobs/{sha(kept)}").content == kept
        assert http.get(f"{reg.url}/v2/gc/manifests/v1").content == manifest


def test_an_abandoned_session_does_not_hold_gc_back():
    data = b"unreferenced"
    with LocalRegistry(memory=True) as reg, requests.Session() as http:
        abandoned = http.post(f"{reg.url}/v2/gc/blobs/uploads/")
        assert abandoned.status_code == 202
        assert http.post(f"{reg.url}/v2/gc/blobs/uploads/", params={"digest": sha(data)},
                         data=data).status_code == 201
        time.sleep(1.2)  # time must pass: the blob and the session grow older than the grace
        result = reg.gc(grace=1.0, idle=1.0)
        assert (result.blobs_deleted, result.blobs_recent) == (1, 0)
        assert http.head(f"{reg.url}/v2/gc/blobs/{sha(data)}").status_code == 404
        # a session in use within the grace still protects what was committed after it began
        live = reg.url + http.post(f"{reg.url}/v2/gc/blobs/uploads/").headers["Location"]
        assert http.post(f"{reg.url}/v2/gc/blobs/uploads/", params={"digest": sha(data)},
                         data=data).status_code == 201
        time.sleep(1.2)
        assert http.patch(live, data=b"still pushing", headers=OCTETS).status_code == 202
        result = reg.gc(grace=1.0, idle=1.0)
        assert (result.blobs_deleted, result.blobs_recent) == (0, 1)


def test_the_request_log_counts_every_request_beyond_the_records_it_keeps():
    with LocalRegistry(memory=True, log_records=3) as reg, requests.Session() as http:
        for _ in range(5):
            assert http.get(f"{reg.url}/v2/").status_code == 200
        assert http.head(f"{reg.url}/v2/x/blobs/{sha(b'none')}").status_code == 404
        assert http.get(f"{reg.url}/v2/x/blobs/sha256:zz").status_code == 400
        assert reg.log.wait(7)
        assert len(reg.log.entries) == 3
        counters = reg.log.counters()
        assert (counters["requests"], counters["misses"], counters["errors"]) == (7, 1, 1)
        assert counters["by_kind"] == {"ping": 5, "blob_head": 1, "blob_get": 1}
        assert counters["by_status"] == {200: 5, 404: 1, 400: 1}


def test_limits_that_would_refuse_everything_are_refused_at_once():
    for bad in ({"max_uploads_per_client": 0}, {"max_uploads": 0}, {"upload_timeout": 0},
                {"max_upload_bytes": 0}, {"gc_interval": "0 s"}):
        with pytest.raises(ValueError, match="must be positive"):
            LocalRegistry(memory=True, **bad)
