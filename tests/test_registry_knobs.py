"""LocalRegistry as a library: storage kinds, experiment knobs, the request log, gc, auth."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading

import bcrypt
import pytest
import requests

from layerlab import mediatypes as mt
from layerlab.errors import UnsafePathError
from layerlab.registry import GCResult, LocalRegistry, RequestRecord
from layerlab.registry.app import Settings, Throttle
from layerlab.registry.backend import FilesystemBackend


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(url: str, repo: str, data: bytes, session=requests) -> requests.Response:
    location = session.post(f"{url}/v2/{repo}/blobs/uploads/").headers["Location"]
    return session.put(url + location, params={"digest": sha(data)}, data=data)


def push_image(url: str, repo: str, tag: str, layers: list[bytes]) -> bytes:
    config = json.dumps({"os": "linux", "layers": len(layers)}).encode()
    for blob in [config, *layers]:
        assert push(url, repo, blob).status_code == 201
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(x), "size": len(x)} for x in layers],
    }).encode()
    r = requests.put(f"{url}/v2/{repo}/manifests/{tag}", data=manifest,
                     headers={"Content-Type": mt.OCI_MANIFEST})
    assert r.status_code == 201
    return manifest


# -- storage kinds --------------------------------------------------------------------------
def test_memory_registry_round_trip_with_ranges():
    data = bytes(range(256)) * 5000
    with LocalRegistry(memory=True) as reg:
        assert reg.root is None
        assert push(reg.url, "m/x", data).status_code == 201
        get = requests.get(f"{reg.url}/v2/m/x/blobs/{sha(data)}")
        assert get.content == data
        assert get.headers["Docker-Content-Digest"] == sha(data)
        part = requests.get(f"{reg.url}/v2/m/x/blobs/{sha(data)}", headers={"Range": "bytes=10-19"})
        assert (part.status_code, part.content) == (206, data[10:20])
        assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        manifest = push_image(reg.url, "m/x", "v1", [b"layer"])
        assert requests.get(f"{reg.url}/v2/m/x/manifests/v1").content == manifest
        assert requests.get(f"{reg.url}/v2/_catalog").json() == {"repositories": ["m/x"]}


def test_temporary_root_is_removed_on_stop():
    reg = LocalRegistry().start()
    root = reg.root
    assert (root / "blobs").is_dir()
    reg.stop()
    assert not root.exists()


def test_given_root_persists_across_restarts(tmp_path):
    with LocalRegistry(tmp_path) as reg:
        push_image(reg.url, "keep", "v1", [b"persistent layer"])
    with LocalRegistry(tmp_path) as reg:
        assert requests.head(f"{reg.url}/v2/keep/blobs/{sha(b'persistent layer')}").status_code == 200
        assert requests.get(f"{reg.url}/v2/keep/tags/list").json() == {"name": "keep", "tags": ["v1"]}


def test_layout_on_disk(local_registry):
    manifest = push_image(local_registry.url, "lib/app", "v1", [b"the layer"])
    root = local_registry.root
    hexes = {"layer": sha(b"the layer")[7:], "manifest": sha(manifest)[7:]}
    assert (root / f"blobs/sha256/{hexes['layer'][:2]}/{hexes['layer']}/data").read_bytes() == b"the layer"
    repo = root / "repositories/lib/app"
    assert (repo / f"_layers/sha256/{hexes['layer']}/link").read_text() == sha(b"the layer")
    assert (repo / f"_manifests/revisions/sha256/{hexes['manifest']}/link").read_text() == sha(manifest)
    assert (repo / "_manifests/tags/v1/current/link").read_text() == sha(manifest)
    assert list((root / "uploads").iterdir()) == []


def test_storage_keys_cannot_leave_the_root(tmp_path):
    backend = FilesystemBackend(tmp_path)
    for key in ("../escape", "repositories/../../escape", "/etc/passwd"):
        with pytest.raises(UnsafePathError):
            backend.read_meta(key)


# -- knobs ----------------------------------------------------------------------------------
def test_blob_descriptor_cache_on_answers_from_memory_off_stats_storage(local_registry):
    reg = local_registry
    data = b"cached blob"
    push(reg.url, "c", data)
    url = f"{reg.url}/v2/c/blobs/{sha(data)}"
    assert requests.head(url).status_code == 200
    # remove the link behind the registry's back: only the cache still knows the blob
    link = reg.root / f"repositories/c/_layers/sha256/{sha(data)[7:]}/link"
    link.unlink()
    assert reg.cache is True
    assert requests.head(url).status_code == 200
    reg.cache = False
    assert requests.head(url).status_code == 404
    link.write_text(sha(data))
    assert requests.head(url).status_code == 200
    (reg.root / f"blobs/sha256/{sha(data)[7:9]}/{sha(data)[7:]}/data").unlink()
    assert requests.head(url).status_code == 404  # the blob itself is stat'ed too


def test_verify_reread_hashes_at_commit(local_registry):
    reg = local_registry
    reg.verify = "reread"
    data = b"r" * 300_000
    assert push(reg.url, "v", data).status_code == 201
    put = [r for r in reg.log.entries if r.kind == "upload_put"][-1]
    assert put.hash_seconds > 0
    bad = requests.post(f"{reg.url}/v2/v/blobs/uploads/").headers["Location"]
    r = requests.put(reg.url + bad, params={"digest": sha(b"other")}, data=data)
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "DIGEST_INVALID")
    reg.verify = "stream"
    assert push(reg.url, "v", b"streamed").status_code == 201
    with pytest.raises(ValueError):
        reg.verify = "sometimes"


def test_bandwidth_limited_transfers_stay_correct(local_registry):
    reg = local_registry
    reg.bandwidth = "200 MB/s"
    assert reg.bandwidth == 200e6
    data = bytes(range(256)) * 4096
    assert push(reg.url, "bw", data).status_code == 201
    assert requests.get(f"{reg.url}/v2/bw/blobs/{sha(data)}").content == data
    part = requests.get(f"{reg.url}/v2/bw/blobs/{sha(data)}", headers={"Range": "bytes=-5"})
    assert (part.status_code, part.content) == (206, data[-5:])
    get = [r for r in reg.log.entries if r.kind == "blob_get"]
    assert [(r.status, r.bytes_out) for r in get] == [(200, len(data)), (206, 5)]
    reg.bandwidth = None
    assert requests.get(f"{reg.url}/v2/bw/blobs/{sha(data)}").content == data


def test_throttle_schedules_bytes_at_the_rate():
    async def run() -> tuple[float, float]:
        settings = Settings(bandwidth=1e9)
        throttle = Throttle(settings)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await throttle.consume(10_000_000)  # 10 ms of budget: within the burst, no wait
        await throttle.consume(10_000_000)
        return start, throttle._next

    start, next_free = asyncio.run(run())
    assert next_free - start == pytest.approx(0.02, abs=0.005)


def test_latency_knob(local_registry):
    reg = local_registry
    reg.latency = "30 ms"
    assert reg.latency == pytest.approx(0.03)
    assert requests.get(f"{reg.url}/v2/").status_code == 200
    assert reg.log.entries[-1].duration >= 0.025
    reg.latency = None
    assert reg.latency == 0.0
    with pytest.raises(ValueError):
        reg.latency = "soon"


def test_read_only_and_delete_disabled(local_registry):
    reg = local_registry
    push(reg.url, "ro", b"before")
    reg.read_only = True
    r = requests.post(f"{reg.url}/v2/ro/blobs/uploads/")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (405, "UNSUPPORTED")
    assert requests.get(f"{reg.url}/v2/ro/blobs/{sha(b'before')}").status_code == 200
    reg.read_only = False
    reg.delete_enabled = False
    r = requests.delete(f"{reg.url}/v2/ro/blobs/{sha(b'before')}")
    assert (r.status_code, r.json()["errors"][0]["code"]) == (405, "UNSUPPORTED")


def test_max_blob_size(tmp_path):
    with LocalRegistry(tmp_path, max_blob_size="1 KiB") as reg:
        r = push(reg.url, "big", b"x" * 2000)
        assert (r.status_code, r.json()["errors"][0]["code"]) == (413, "SIZE_INVALID")
        assert push(reg.url, "big", b"x" * 1000).status_code == 201


# -- the request log ------------------------------------------------------------------------
def test_request_log_records_counters_frame_and_subscribers(local_registry):
    reg = local_registry
    seen: list[RequestRecord] = []
    unsubscribe = reg.log.subscribe(seen.append)
    data = b"logged blob" * 100
    push(reg.url, "lib/log", data)
    requests.head(f"{reg.url}/v2/lib/log/blobs/{sha(data)}")
    requests.get(f"{reg.url}/v2/lib/log/blobs/{sha(data)}")
    requests.get(f"{reg.url}/v2/lib/log/blobs/{sha(b'none')}")
    assert reg.log.wait(5)  # the blob GET is recorded once its last byte has gone out
    entries = reg.log.entries
    assert [(r.method, r.kind, r.status, r.repository) for r in entries] == [
        ("POST", "upload_start", 202, "lib/log"),
        ("PUT", "upload_put", 201, "lib/log"),
        ("HEAD", "blob_head", 200, "lib/log"),
        ("GET", "blob_get", 200, "lib/log"),
        ("GET", "blob_get", 404, "lib/log"),
    ]
    assert entries[1].bytes_in == len(data)
    assert entries[1].path.startswith("/v2/lib/log/blobs/uploads/")
    assert entries[1].store_seconds > 0
    assert (entries[2].bytes_out, entries[3].bytes_out) == (0, len(data))
    assert sorted(seen, key=lambda r: r.start) == entries
    counters = reg.log.counters()
    assert counters["requests"] == 5
    assert (counters["errors"], counters["misses"]) == (0, 1)  # a GET of a missing blob
    assert counters["bytes_in"] == len(data)
    assert counters["by_kind"] == {"upload_start": 1, "upload_put": 1, "blob_head": 1, "blob_get": 2}
    assert counters["by_status"] == {202: 1, 201: 1, 200: 2, 404: 1}
    frame = reg.log.to_frame()
    assert list(frame.columns) == ["method", "path", "repository", "kind", "status", "bytes_in",
                                   "bytes_out", "start", "duration", "hash_seconds", "store_seconds"]
    assert len(frame) == 5
    assert str(frame["start"].dtype).startswith("datetime64")
    unsubscribe()
    requests.get(f"{reg.url}/v2/")
    assert len(seen) == 5
    reg.log.clear()
    assert reg.log.entries == [] and len(reg.log) == 0


def test_reprs(local_registry):
    reg = local_registry
    push(reg.url, "r", b"x")
    text = repr(reg)
    assert text.startswith(f"LocalRegistry({reg.url}, root={reg.root}, cache=on, verify=stream")
    assert "requests=2" in text
    assert "<table>" in reg._repr_html_() and reg.url in reg._repr_html_()
    assert repr(reg.log) == "RequestLog(2 requests, 0 errors, 1 B in, 0 B out)"
    assert "upload_put" in reg.log._repr_html_()


# -- garbage collection ---------------------------------------------------------------------
def test_gc_deletes_only_unreferenced_blobs(local_registry):
    reg = local_registry
    keep = push_image(reg.url, "gc", "keep", [b"shared layer", b"kept layer"])
    drop = push_image(reg.url, "gc", "drop", [b"shared layer", b"dropped layer"])
    push(reg.url, "gc", b"never referenced")
    assert requests.delete(f"{reg.url}/v2/gc/manifests/{sha(drop)}").status_code == 202
    assert reg.gc() == GCResult(blobs_deleted=0, bytes_freed=0, blobs_kept=4, blobs_recent=3)
    result = reg.gc(grace=0)
    dropped_config = json.dumps({"os": "linux", "layers": 2}).encode()  # same config: kept
    assert result == GCResult(blobs_deleted=3, bytes_freed=len(drop) + len(b"dropped layer")
                              + len(b"never referenced"), blobs_kept=4)
    assert requests.head(f"{reg.url}/v2/gc/blobs/{sha(b'dropped layer')}").status_code == 404
    assert requests.head(f"{reg.url}/v2/gc/blobs/{sha(b'shared layer')}").status_code == 200
    assert requests.head(f"{reg.url}/v2/gc/blobs/{sha(dropped_config)}").status_code == 200
    assert requests.get(f"{reg.url}/v2/gc/manifests/keep").content == keep


# -- concurrency ----------------------------------------------------------------------------
def test_eight_clients_uploading_the_same_and_different_blobs(local_registry):
    reg = local_registry
    same = bytes(range(256)) * 8192  # 2 MiB, uploaded by four clients at once
    different = [bytes([n]) * (1 << 20) + bytes([n]) * n for n in range(4)]
    jobs = [("same", same)] * 4 + [(f"diff{n}", d) for n, d in enumerate(different)]
    barrier = threading.Barrier(len(jobs))
    results: list[tuple[str, int]] = []

    def client(name: str, data: bytes) -> None:
        with requests.Session() as s:
            location = s.post(f"{reg.url}/v2/conc/{name}/blobs/uploads/").headers["Location"]
            barrier.wait()
            half = len(data) // 2
            s.patch(reg.url + location, data=data[:half], headers={"Content-Range": f"0-{half - 1}"})
            r = s.put(reg.url + location, params={"digest": sha(data)}, data=data[half:],
                      headers={"Content-Range": f"{half}-{len(data) - 1}"})
            results.append((name, r.status_code))

    threads = [threading.Thread(target=client, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted((name, 201) for name, _ in jobs)
    for name, data in jobs:
        get = requests.get(f"{reg.url}/v2/conc/{name}/blobs/{sha(data)}")
        assert get.content == data
    assert len(list((reg.root / "blobs").rglob("data"))) == 5
    assert list((reg.root / "uploads").iterdir()) == []


# -- running inside a notebook's event loop -------------------------------------------------
def test_starts_while_an_asyncio_loop_runs_in_the_calling_thread():
    async def notebook_cell() -> int:
        with LocalRegistry(memory=True) as reg:  # as in a Jupyter cell: a loop is running
            loop = asyncio.get_running_loop()
            r = await loop.run_in_executor(None, requests.get, f"{reg.url}/v2/")
            return r.status_code

    assert asyncio.run(notebook_cell()) == 200


# -- authentication -------------------------------------------------------------------------
@pytest.fixture
def htpasswd(tmp_path):
    path = tmp_path / "htpasswd"
    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode().replace('$2b$', '$2y$', 1)}"
             for user, pw in (("alice", "wonder"), ("bob", "builder"))]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_basic_auth_with_pull_and_push_permissions(tmp_path, htpasswd):
    with LocalRegistry(tmp_path / "r", htpasswd=htpasswd,
                       permissions={"alice": "push", "bob": "pull"}) as reg:
        ping = requests.get(f"{reg.url}/v2/")
        assert ping.status_code == 401
        assert ping.headers["WWW-Authenticate"] == 'Basic realm="layerlab"'
        assert ping.json()["errors"][0]["code"] == "UNAUTHORIZED"
        wrong = requests.get(f"{reg.url}/v2/", auth=("alice", "nope"))
        assert (wrong.status_code, wrong.json()["errors"][0]["code"]) == (401, "UNAUTHORIZED")
        alice = requests.Session()
        alice.auth = ("alice", "wonder")
        assert push(reg.url, "team/app", b"by alice", alice).status_code == 201
        bob = requests.Session()
        bob.auth = ("bob", "builder")
        assert bob.get(f"{reg.url}/v2/team/app/blobs/{sha(b'by alice')}").content == b"by alice"
        denied = bob.post(f"{reg.url}/v2/team/app/blobs/uploads/")
        assert (denied.status_code, denied.json()["errors"][0]["code"]) == (403, "DENIED")
        anonymous = requests.get(f"{reg.url}/v2/team/app/blobs/{sha(b'by alice')}")
        assert anonymous.status_code == 401


def test_anonymous_pull(tmp_path, htpasswd):
    with LocalRegistry(tmp_path / "r", htpasswd=htpasswd,
                       permissions={"alice": "push", "*": "pull"}) as reg:
        alice = requests.Session()
        alice.auth = ("alice", "wonder")
        push(reg.url, "pub", b"public", alice)
        assert requests.get(f"{reg.url}/v2/pub/blobs/{sha(b'public')}").content == b"public"
        r = requests.post(f"{reg.url}/v2/pub/blobs/uploads/")
        assert r.status_code == 401


def test_authentication_comes_before_the_name_check(tmp_path, htpasswd):
    with LocalRegistry(tmp_path / "r", htpasswd=htpasswd, permissions={"alice": "push"}) as reg:
        stranger = requests.get(f"{reg.url}/v2/Bad..Name/tags/list")
        assert (stranger.status_code, stranger.json()["errors"][0]["code"]) == (401, "UNAUTHORIZED")
        alice = requests.get(f"{reg.url}/v2/Bad..Name/tags/list", auth=("alice", "wonder"))
        assert (alice.status_code, alice.json()["errors"][0]["code"]) == (400, "NAME_INVALID")


def test_upload_status_needs_push_access(tmp_path, htpasswd):
    with LocalRegistry(tmp_path / "r", htpasswd=htpasswd,
                       permissions={"alice": "push", "bob": "pull"}) as reg:
        started = requests.post(f"{reg.url}/v2/team/app/blobs/uploads/", auth=("alice", "wonder"))
        assert started.status_code == 202
        url = reg.url + started.headers["Location"] if started.headers["Location"].startswith("/") \
            else started.headers["Location"]
        assert requests.get(url, auth=("alice", "wonder")).status_code == 204
        bob = requests.get(url, auth=("bob", "builder"))
        assert (bob.status_code, bob.json()["errors"][0]["code"]) == (403, "DENIED")


def test_htpasswd_must_be_bcrypt(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    with pytest.raises(ValueError, match="bcrypt"):
        LocalRegistry(htpasswd=path)


def test_existence_checks_that_find_nothing_are_misses_not_errors():
    import requests

    from layerlab.registry import LocalRegistry

    missing = "sha256:" + "0" * 64
    with LocalRegistry(memory=True) as registry:
        base = f"http://{registry.host}/v2/demo/app"
        assert requests.head(f"{base}/blobs/{missing}").status_code == 404
        assert requests.get(f"{base}/blobs/{missing}").status_code == 404
        assert requests.head(f"{base}/manifests/v1").status_code == 404
        assert requests.get(f"{base}/manifests/v1").status_code == 404
        assert requests.put(f"{base}/manifests/v1", data=b"{}",
                            headers={"Content-Type": "application/json"}).status_code == 400
        c = registry.log.counters()
        assert (c["requests"], c["misses"], c["errors"]) == (5, 4, 1)
        assert repr(registry.log).startswith("RequestLog(5 requests, 1 errors, 4 misses, ")


def test_online_gc_keeps_what_an_open_upload_may_reference(local_registry):
    """A push in progress: one layer committed, the other still uploading, no manifest
    yet. gc (no grace) keeps the committed layer (younger than the open upload); the push
    then completes and its image resolves."""
    reg = local_registry
    old_orphan = b"orphan from before"
    push(reg.url, "live", old_orphan)
    session = requests.post(f"{reg.url}/v2/live/blobs/uploads/").headers["Location"]
    requests.patch(reg.url + session, data=b"second ", headers={
        "Content-Type": "application/octet-stream"}).raise_for_status()
    assert push(reg.url, "live", b"first layer").status_code == 201
    first = sha(b"first layer")
    import os

    from layerlab.digest import Digest

    os.utime(reg.storage.backend.blob_path(Digest(sha(old_orphan))), (1, 1))  # long ago
    result = reg.gc(grace=0)
    assert (result.blobs_deleted, result.blobs_recent) == (1, 1)
    assert requests.head(f"{reg.url}/v2/live/blobs/{sha(old_orphan)}").status_code == 404
    assert requests.head(f"{reg.url}/v2/live/blobs/{first}").status_code == 200
    location = requests.patch(reg.url + session, data=b"layer", headers={
        "Content-Type": "application/octet-stream"}).headers["Location"]
    assert requests.put(reg.url + location, params={"digest": sha(b"second layer")}).status_code == 201
    manifest = push_image(reg.url, "live", "v1", [b"first layer", b"second layer"])
    assert requests.get(f"{reg.url}/v2/live/manifests/v1").content == manifest


def test_blob_delete_and_commit_of_the_same_blob_keep_cache_and_disk_agreeing(local_registry):
    """The commit of a blob arrives while its DELETE is removing the link file: the cache
    and the link file must end up telling the same story."""
    import threading

    reg = local_registry
    storage = reg.storage
    data = b"raced blob"
    assert push(reg.url, "race", data).status_code == 201
    from layerlab.digest import Digest

    d = Digest(sha(data))
    original = storage.backend.delete_meta
    commit = threading.Thread(target=storage.link_blob, args=("race", d, len(data)))

    def delete_meta(key):  # the commit runs exactly now, between cache and disk updates
        commit.start()
        commit.join(timeout=0.5)  # blocked by the storage lock once the race is fixed
        return original(key)

    storage.backend.delete_meta = delete_meta
    try:
        assert storage.unlink_blob("race", d)
    finally:
        storage.backend.delete_meta = original
    commit.join()
    link = f"repositories/race/_layers/{d.algorithm}/{d.hex}/link"
    on_disk = storage.backend.read_meta(link) is not None
    assert on_disk and storage.blob_size("race", d) == len(data)
    storage.cache = False  # what a restart would see
    assert storage.blob_size("race", d) == len(data)


def test_abandoned_upload_sessions_hold_no_descriptors_and_are_bounded():
    import os

    from layerlab.registry import LocalRegistry

    with LocalRegistry(max_uploads=50) as reg, requests.Session() as http:
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(50):  # body-less POSTs, never finished
            assert http.post(f"{reg.url}/v2/abandon/blobs/uploads/").status_code == 202
        assert len(os.listdir("/proc/self/fd")) - before <= 5  # not one per session
        refused = http.post(f"{reg.url}/v2/abandon/blobs/uploads/")
        assert (refused.status_code, refused.json()["errors"][0]["code"]) == (429, "TOOMANYREQUESTS")
        assert refused.headers["Retry-After"] == "10"
        session = next(iter(reg.storage._uploads.values()))
        location = f"/v2/abandon/blobs/uploads/{session.id}"
        data = b"finished after all"
        r = http.patch(reg.url + location, data=data,
                       headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 202
        assert http.put(reg.url + r.headers["Location"], params={"digest": sha(data)}).status_code == 201
        assert http.post(f"{reg.url}/v2/abandon/blobs/uploads/").status_code == 202  # room again


def test_idle_and_slow_header_connections_are_closed():
    import socket

    from layerlab.registry import LocalRegistry

    def closed_by_server(sock: socket.socket) -> bool:
        sock.settimeout(10)  # bound: the server's 0.3 s must come first
        try:
            return sock.recv(65536) == b""
        except (socket.timeout, ConnectionResetError):
            return False

    with LocalRegistry(memory=True, idle_timeout="0.3 s") as reg:
        host, port = reg.host.split(":")
        with socket.create_connection((host, int(port))) as idle:  # says nothing
            assert closed_by_server(idle)
        with socket.create_connection((host, int(port))) as slow:  # headers never finish
            slow.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Drip: 1\r\n")
            assert closed_by_server(slow)
        with socket.create_connection((host, int(port))) as kept:  # answered, then idle
            kept.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            kept.settimeout(10)
            assert kept.recv(65536).startswith(b"HTTP/1.1 200")
            assert closed_by_server(kept)
        assert requests.get(f"{reg.url}/v2/").status_code == 200
