"""``layerlab registry serve|gc`` in a subprocess, and crash safety under kill -9."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from conftest import ROOT


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def serve(root: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """Start ``python -m layerlab registry serve`` on a free port; return (process, url)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "layerlab", "registry", "serve", "--root", str(root),
         "--port", "0", "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    line = proc.stdout.readline()  # printed once the socket is bound and serving
    if not line:
        raise RuntimeError(f"registry did not start: {proc.stderr.read()}")
    event = json.loads(line)
    assert event["event"] == "listening"
    assert event["root"] == str(root.resolve())
    return proc, event["url"]


def poll(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_serve_prints_its_address_and_stops_on_sigterm(tmp_path):
    proc, url = serve(tmp_path / "reg")
    try:
        assert requests.get(f"{url}/v2/").status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert json.loads(out) == {"event": "stopped", "requests": 1, "errors": 0, "misses": 0, "bytes_in": 0,
                               "bytes_out": 2}


def test_serve_usage_errors_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "layerlab", "registry", "serve", "--verify", "x"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    r = subprocess.run([sys.executable, "-m", "layerlab", "registry", "gc", "--root",
                        str(tmp_path / "nothing")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.startswith("layerlab: error: ") and r.stderr.count("\n") == 1


def test_gc_command(tmp_path):
    root = tmp_path / "reg"
    proc, url = serve(root)
    try:
        for data in (b"orphan one", b"orphan two"):
            location = requests.post(f"{url}/v2/g/blobs/uploads/").headers["Location"]
            assert requests.put(url + location, params={"digest": sha(data)}, data=data).status_code == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    r = subprocess.run([sys.executable, "-m", "layerlab", "registry", "gc", "--root", str(root),
                        "--json"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"blobs_deleted": 2, "bytes_freed": 20, "blobs_kept": 0,
                                    "blobs_recent": 0, "temporaries_removed": 0}
    assert list((root / "blobs").rglob("data")) == []


def test_gc_refuses_a_root_a_registry_serves_and_removes_stale_temporaries(tmp_path):
    root = tmp_path / "reg"
    proc, url = serve(root)
    try:
        location = requests.post(f"{url}/v2/g/blobs/uploads/").headers["Location"]
        assert requests.put(url + location, params={"digest": sha(b"orphan")},
                            data=b"orphan").status_code == 201
        r = subprocess.run([sys.executable, "-m", "layerlab", "registry", "gc", "--root",
                            str(root)], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 2
        assert r.stderr == (f"layerlab: error: {root.resolve()} is served by a running registry: "
                            "stop it first, or run LocalRegistry.gc() in the process that "
                            "serves it\n")
        assert len(list((root / "blobs").rglob("data"))) == 1  # nothing touched
    finally:
        proc.send_signal(signal.SIGKILL)  # the OS releases the lock even so
        proc.communicate(timeout=20)
    stale = root / "repositories" / "g" / "_layers" / "link.tmp-0123"
    stale.write_bytes(b"half")
    os.utime(stale, (1, 1))
    r = subprocess.run([sys.executable, "-m", "layerlab", "registry", "gc", "--root", str(root),
                        "--json"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["temporaries_removed"] == 1 and not stale.exists()


def _send_half(url: str, request_line: str, total: int, half: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"{request_line} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {total}\r\n"
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + half)
    return sock


def test_kill_9_mid_upload_leaves_no_visible_blob(tmp_path):
    root = tmp_path / "reg"
    proc, url = serve(root)
    big = os.urandom(12 << 20)
    committed = b"committed before the crash"
    sockets = []
    try:
        location = requests.post(f"{url}/v2/crash/blobs/uploads/").headers["Location"]
        assert requests.put(url + location, params={"digest": sha(committed)},
                            data=committed).status_code == 201
        # a monolithic upload and a PATCH, each killed half-way through its body
        sockets.append(_send_half(url, f"POST /v2/crash/blobs/uploads/?digest={sha(big)}",
                                  len(big), big[: len(big) // 2]))
        patch_location = requests.post(f"{url}/v2/crash/blobs/uploads/").headers["Location"]
        sockets.append(_send_half(url, f"PATCH {patch_location}", len(big), big[: len(big) // 2]))
        uploads = root / "uploads"
        poll(lambda: sum(1 for f in uploads.iterdir() if f.stat().st_size > 0) >= 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
        assert proc.returncode == -signal.SIGKILL
        assert len([f for f in uploads.iterdir() if f.stat().st_size > 0]) >= 2  # debris only
    finally:
        for s in sockets:
            s.close()
        proc.kill()
        proc.communicate()
    blob_files = sorted(p.relative_to(root / "blobs") for p in (root / "blobs").rglob("*")
                        if p.is_file())
    hexes = sha(committed)[7:]
    assert blob_files == [Path(f"sha256/{hexes[:2]}/{hexes}/data")]  # only the committed blob
    proc, url = serve(root)
    try:
        r = requests.head(f"{url}/v2/crash/blobs/{sha(big)}")
        assert r.status_code == 404
        r = requests.get(f"{url}/v2/crash/blobs/{sha(big)}")
        assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "BLOB_UNKNOWN")
        r = requests.get(url + patch_location)
        assert (r.status_code, r.json()["errors"][0]["code"]) == (404, "BLOB_UPLOAD_UNKNOWN")
        assert requests.get(f"{url}/v2/crash/blobs/{sha(committed)}").content == committed
        assert list((root / "uploads").iterdir()) == []  # debris cleared on start
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_serve_runs_gc_periodically_and_reports_each_run(tmp_path):
    proc, url = serve(tmp_path / "reg", "--gc-interval", "0.2 s", "--gc-grace", "0")
    try:
        location = requests.post(f"{url}/v2/g/blobs/uploads/").headers["Location"]
        assert requests.put(url + location, params={"digest": sha(b"orphan")},
                            data=b"orphan").status_code == 201
        while True:  # bounded by the gc interval; a hung server fails the test's timeout
            event = json.loads(proc.stdout.readline())
            assert event["event"] == "gc"
            if event["blobs_deleted"]:
                break
        assert event == {"event": "gc", "blobs_deleted": 1, "bytes_freed": 6, "blobs_kept": 0,
                         "blobs_recent": 0, "temporaries_removed": 0}
        assert requests.head(f"{url}/v2/g/blobs/{sha(b'orphan')}").status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
