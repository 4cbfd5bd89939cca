"""Every endpoint of layerlab's registry: exact statuses, headers and bodies."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests

from layerlab import mediatypes as mt

API = ("Docker-Distribution-API-Version", "registry/2.0")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def codes(response: requests.Response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


@pytest.fixture
def reg(local_registry):
    return local_registry


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def push_blob(http, reg, repo: str, data: bytes) -> str:
    digest = sha(data)
    r = http.post(f"{reg.url}/v2/{repo}/blobs/uploads/", params={"digest": digest}, data=data)
    assert r.status_code == 201, r.text
    return digest


def image_manifest(http, reg, repo: str, media_type: str = mt.OCI_MANIFEST,
                   layers: tuple[bytes, ...] = (b"layer one",), **extra) -> bytes:
    """Push a config and layers; return manifest bytes (not pushed)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": len(layers)}).encode()
    config_type = mt.OCI_CONFIG if media_type == mt.OCI_MANIFEST else mt.DOCKER_CONFIG
    layer_type = mt.OCI_LAYER_GZIP if media_type == mt.OCI_MANIFEST else mt.DOCKER_LAYER_GZIP
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": push_blob(http, reg, repo, config),
                   "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": push_blob(http, reg, repo, data),
                    "size": len(data)} for data in layers],
        **extra,
    }
    return json.dumps(doc, indent=3).encode()


def put_manifest(http, reg, repo: str, ref: str, body: bytes, media_type: str) -> requests.Response:
    return http.put(f"{reg.url}/v2/{repo}/manifests/{ref}", data=body,
                    headers={"Content-Type": media_type})


# -- base ----------------------------------------------------------------------------------
def test_ping(reg, http):
    r = http.get(f"{reg.url}/v2/")
    assert r.status_code == 200
    assert r.headers[API[0]] == API[1]
    assert r.json() == {}


def test_v2_without_slash_redirects(reg, http):
    r = http.get(f"{reg.url}/v2", allow_redirects=False)
    assert r.status_code == 301
    assert r.headers["Location"] == "/v2/"


def test_unknown_endpoint_is_404_unsupported(reg, http):
    r = http.get(f"{reg.url}/v2/repo/nothing/here")
    assert (r.status_code, codes(r)) == (404, ["UNSUPPORTED"])
    assert r.headers[API[0]] == API[1]


def test_method_not_allowed_is_405_unsupported_with_allow(reg, http):
    r = http.post(f"{reg.url}/v2/repo/manifests/latest")
    assert (r.status_code, codes(r)) == (405, ["UNSUPPORTED"])
    assert r.headers["Allow"] == "DELETE, GET, HEAD, PUT"


def raw_get(reg, path: str) -> tuple[int, dict]:
    """GET a path exactly as written (no client-side dot-segment normalisation)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


@pytest.mark.parametrize("name", ["UPPER", "a//b", "-a", "a_", "_a", "a" * 256, "a/_layers"])
def test_invalid_repository_name(reg, http, name):
    r = http.get(f"{reg.url}/v2/{name}/tags/list")
    assert (r.status_code, codes(r)) == (400, ["NAME_INVALID"])


@pytest.mark.parametrize("path", ["/v2/a/../b/tags/list", "/v2/a/%2e%2e/%2e%2e/etc/tags/list",
                                  "/v2/../../etc/blobs/sha256:" + "0" * 64,
                                  "/v2/a/%2F..%2F..%2Fx/tags/list"])
def test_dot_segments_never_reach_storage(reg, path):
    status, body = raw_get(reg, path)
    assert status in (400, 404)
    assert body["errors"][0]["code"] in ("NAME_INVALID", "UNSUPPORTED")


# -- blobs: read ----------------------------------------------------------------------------
def test_blob_head_get_and_headers(reg, http):
    data = bytes(range(256)) * 40
    digest = push_blob(http, reg, "lib/app", data)
    head = http.head(f"{reg.url}/v2/lib/app/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.headers["Content-Type"] == "application/octet-stream"
    assert head.content == b""
    get = http.get(f"{reg.url}/v2/lib/app/blobs/{digest}")
    assert get.status_code == 200
    assert get.content == data
    assert get.headers["Docker-Content-Digest"] == digest
    assert get.headers[API[0]] == API[1]


@pytest.mark.parametrize("header,status,body_slice,content_range", [
    ("bytes=2-5", 206, slice(2, 6), "bytes 2-5/100"),
    ("bytes=90-", 206, slice(90, 100), "bytes 90-99/100"),
    ("bytes=-3", 206, slice(97, 100), "bytes 97-99/100"),
])
def test_blob_range(reg, http, header, status, body_slice, content_range):
    data = bytes(range(100))
    digest = push_blob(http, reg, "r", data)
    r = http.get(f"{reg.url}/v2/r/blobs/{digest}", headers={"Range": header})
    assert r.status_code == status
    assert r.content == data[body_slice]
    assert r.headers["Content-Range"] == content_range


def test_blob_range_not_satisfiable(reg, http):
    digest = push_blob(http, reg, "r", b"0123456789")
    r = http.get(f"{reg.url}/v2/r/blobs/{digest}", headers={"Range": "bytes=100-200"})
    assert r.status_code == 416


def test_blob_unknown(reg, http):
    missing = sha(b"missing")
    r = http.get(f"{reg.url}/v2/r/blobs/{missing}")
    assert (r.status_code, codes(r)) == (404, ["BLOB_UNKNOWN"])
    assert r.json()["errors"][0]["detail"] == {"digest": missing}
    assert http.head(f"{reg.url}/v2/r/blobs/{missing}").status_code == 404


@pytest.mark.parametrize("bad", ["sha256:totallywrong", "sha256:" + "A" * 64, "md5:abcd", "nocolon"])
def test_malformed_digest_in_url_is_400_digest_invalid(reg, http, bad):
    r = http.get(f"{reg.url}/v2/r/blobs/{bad}")
    assert (r.status_code, codes(r)) == (400, ["DIGEST_INVALID"])
    assert http.head(f"{reg.url}/v2/r/blobs/{bad}").status_code == 400


def test_blobs_are_linked_per_repository(reg, http):
    digest = push_blob(http, reg, "a/x", b"private to a/x")
    assert http.head(f"{reg.url}/v2/a/x/blobs/{digest}").status_code == 200
    r = http.get(f"{reg.url}/v2/b/y/blobs/{digest}")
    assert (r.status_code, codes(r)) == (404, ["BLOB_UNKNOWN"])


def test_blob_delete(reg, http):
    digest = push_blob(http, reg, "r", b"delete me")
    r = http.delete(f"{reg.url}/v2/r/blobs/{digest}")
    assert r.status_code == 202
    assert r.headers["Docker-Content-Digest"] == digest
    assert http.head(f"{reg.url}/v2/r/blobs/{digest}").status_code == 404
    again = http.delete(f"{reg.url}/v2/r/blobs/{digest}")
    assert (again.status_code, codes(again)) == (404, ["BLOB_UNKNOWN"])


# -- uploads --------------------------------------------------------------------------------
def test_monolithic_post_with_digest(reg, http):
    data = b"monolithic"
    digest = sha(data)
    r = http.post(f"{reg.url}/v2/r/blobs/uploads/", params={"digest": digest}, data=data)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/r/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert http.get(reg.url + r.headers["Location"]).content == data


def test_post_then_put(reg, http):
    start = http.post(f"{reg.url}/v2/r/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    assert location == f"/v2/r/blobs/uploads/{upload_id}"
    assert start.headers["Docker-Upload-UUID"] == upload_id
    assert start.headers["Range"] == "0-0"
    assert start.headers["OCI-Chunk-Min-Length"] == "1048576"
    assert start.headers["Content-Length"] == "0"
    data = b"x" * 5000
    done = http.put(reg.url + location, params={"digest": sha(data)}, data=data)
    assert done.status_code == 201
    assert done.headers["Location"] == f"/v2/r/blobs/{sha(data)}"
    assert done.headers["Docker-Content-Digest"] == sha(data)
    assert http.get(f"{reg.url}/v2/r/blobs/{sha(data)}").content == data


def test_streamed_patch_without_content_range(reg, http):
    """What Docker does: one PATCH, chunked transfer encoding, then PUT ?digest=."""
    parts = [bytes([n]) * 70000 for n in range(10)]
    data = b"".join(parts)
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    patch = http.patch(reg.url + location, data=iter(parts))  # a generator: chunked encoding
    assert patch.request.headers["Transfer-Encoding"] == "chunked"
    assert patch.status_code == 202
    assert patch.headers["Range"] == f"0-{len(data) - 1}"
    assert patch.headers["Location"] == location
    done = http.put(reg.url + patch.headers["Location"], params={"digest": sha(data)})
    assert done.status_code == 201
    assert http.get(f"{reg.url}/v2/r/blobs/{sha(data)}").content == data


def test_chunked_patch_in_order_then_status_then_final_put(reg, http):
    data = bytes(range(256)) * 4
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    first = http.patch(reg.url + location, data=data[:300],
                       headers={"Content-Range": "0-299", "Content-Type": "application/octet-stream"})
    assert first.status_code == 202
    assert first.headers["Range"] == "0-299"
    status = http.get(reg.url + location)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-299"
    assert status.headers["Location"] == location
    second = http.patch(reg.url + location, data=data[300:700], headers={"Content-Range": "300-699"})
    assert (second.status_code, second.headers["Range"]) == (202, "0-699")
    done = http.put(reg.url + location, params={"digest": sha(data)}, data=data[700:],
                    headers={"Content-Range": f"700-{len(data) - 1}"})
    assert done.status_code == 201
    assert http.get(f"{reg.url}/v2/r/blobs/{sha(data)}").content == data


@pytest.mark.parametrize("content_range", ["5-9", "0-9", "x-y", "10"])
def test_out_of_order_chunk_is_416_with_range(reg, http, content_range):
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    assert http.patch(reg.url + location, data=b"0123", headers={"Content-Range": "0-3"}).status_code == 202
    r = http.patch(reg.url + location, data=b"0123456789"[: 5], headers={"Content-Range": content_range})
    assert r.status_code == 416
    assert r.headers["Range"] == "0-3"
    assert r.headers["Location"] == location
    assert codes(r) == ["BLOB_UPLOAD_INVALID"]
    assert http.get(reg.url + location).headers["Range"] == "0-3"  # nothing was appended


def test_chunk_length_not_matching_range_is_size_invalid(reg, http):
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    r = http.patch(reg.url + location, data=b"abc", headers={"Content-Range": "0-9"})
    assert (r.status_code, codes(r)) == (400, ["SIZE_INVALID"])


def test_upload_cancel(reg, http):
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    http.patch(reg.url + location, data=b"partial")
    assert http.delete(reg.url + location).status_code == 204
    for method in ("GET", "PATCH", "DELETE"):
        r = http.request(method, reg.url + location)
        assert (r.status_code, codes(r)) == (404, ["BLOB_UPLOAD_UNKNOWN"])


def test_completed_upload_url_is_gone(reg, http):
    data = b"done"
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    assert http.put(reg.url + location, params={"digest": sha(data)}, data=data).status_code == 201
    for method in ("GET", "PATCH"):
        r = http.request(method, reg.url + location)
        assert (r.status_code, codes(r)) == (404, ["BLOB_UPLOAD_UNKNOWN"])
    again = http.put(reg.url + location, params={"digest": sha(data)}, data=data)
    assert (again.status_code, codes(again)) == (404, ["BLOB_UPLOAD_UNKNOWN"])


def test_upload_url_of_another_repository_is_unknown(reg, http):
    location = http.post(f"{reg.url}/v2/one/blobs/uploads/").headers["Location"]
    other = location.replace("/v2/one/", "/v2/two/")
    r = http.get(reg.url + other)
    assert (r.status_code, codes(r)) == (404, ["BLOB_UPLOAD_UNKNOWN"])


def test_digest_mismatch_leaves_nothing(reg, http):
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    claimed = sha(b"something else")
    r = http.put(reg.url + location, params={"digest": claimed}, data=b"actual bytes")
    assert (r.status_code, codes(r)) == (400, ["DIGEST_INVALID"])
    assert r.json()["errors"][0]["detail"] == {"digest": claimed, "actual": sha(b"actual bytes")}
    assert http.head(f"{reg.url}/v2/r/blobs/{claimed}").status_code == 404
    assert http.head(f"{reg.url}/v2/r/blobs/{sha(b'actual bytes')}").status_code == 404
    assert http.get(reg.url + location).status_code == 404
    assert list((reg.root / "blobs").rglob("data")) == []


def test_put_without_or_with_bad_digest(reg, http):
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    r = http.put(reg.url + location, data=b"abc")
    assert (r.status_code, codes(r)) == (400, ["DIGEST_INVALID"])
    r = http.put(reg.url + location, params={"digest": "sha256:short"}, data=b"abc")
    assert (r.status_code, codes(r)) == (400, ["DIGEST_INVALID"])
    assert http.get(reg.url + location).status_code == 204  # the session is still usable


def test_monolithic_body_shorter_than_declared_is_size_invalid(reg, http):
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    r = http.put(reg.url + location, params={"digest": sha(b"abcdef")}, data=b"abc",
                 headers={"Content-Range": "0-5"})
    assert (r.status_code, codes(r)) == (400, ["SIZE_INVALID"])


def test_sha512_digest_upload(reg, http):
    data = b"sha512 content"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    http.patch(reg.url + location, data=data)
    assert http.put(reg.url + location, params={"digest": digest}).status_code == 201
    assert http.get(f"{reg.url}/v2/r/blobs/{digest}").content == data


# -- cross-repository mount -----------------------------------------------------------------
def test_mount_from_repository_holding_the_blob(reg, http):
    digest = push_blob(http, reg, "src/app", b"shared layer")
    r = http.post(f"{reg.url}/v2/dst/app/blobs/uploads/", params={"mount": digest, "from": "src/app"})
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/dst/app/blobs/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert http.get(f"{reg.url}/v2/dst/app/blobs/{digest}").content == b"shared layer"


@pytest.mark.parametrize("params", [
    {"mount": sha(b"never pushed"), "from": "src/app"},
    {"mount": "__DIGEST__"},  # no from
    {"mount": "__DIGEST__", "from": "Bad Name"},
    {"mount": "__DIGEST__", "from": "elsewhere"},  # blob not in from
    {"mount": "sha256:bad", "from": "src/app"},
])
def test_mount_falls_back_to_an_upload(reg, http, params):
    digest = push_blob(http, reg, "src/app", b"shared layer")
    params = {k: (digest if v == "__DIGEST__" else v) for k, v in params.items()}
    r = http.post(f"{reg.url}/v2/dst/app/blobs/uploads/", params=params)
    assert r.status_code == 202
    assert r.headers["Location"].startswith("/v2/dst/app/blobs/uploads/")
    assert http.head(f"{reg.url}/v2/dst/app/blobs/{digest}").status_code == 404


# -- manifests ------------------------------------------------------------------------------
@pytest.mark.parametrize("media_type", [mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_V2])
def test_manifest_put_get_head_by_tag_and_digest(reg, http, media_type):
    body = image_manifest(http, reg, "lib/app", media_type)
    digest = sha(body)
    r = put_manifest(http, reg, "lib/app", "v1", body, media_type)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/lib/app/manifests/{digest}"
    assert r.headers["Docker-Content-Digest"] == digest
    assert "OCI-Subject" not in r.headers
    for ref in ("v1", digest):
        get = http.get(f"{reg.url}/v2/lib/app/manifests/{ref}", headers={"Accept": media_type})
        assert get.status_code == 200
        assert get.content == body
        assert get.headers["Content-Type"] == media_type
        assert get.headers["Docker-Content-Digest"] == digest
        head = http.head(f"{reg.url}/v2/lib/app/manifests/{ref}", headers={"Accept": media_type})
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(body))
        assert head.headers["Docker-Content-Digest"] == digest
        assert head.headers["Content-Type"] == media_type


def test_manifest_put_by_digest(reg, http):
    body = image_manifest(http, reg, "r")
    r = put_manifest(http, reg, "r", sha(body), body, mt.OCI_MANIFEST)
    assert r.status_code == 201
    assert http.get(f"{reg.url}/v2/r/manifests/{sha(body)}").content == body
    wrong = put_manifest(http, reg, "r", sha(b"other"), body, mt.OCI_MANIFEST)
    assert (wrong.status_code, codes(wrong)) == (400, ["DIGEST_INVALID"])


def test_manifest_list_and_index_need_their_children(reg, http):
    child = image_manifest(http, reg, "multi", mt.DOCKER_MANIFEST_V2)
    assert put_manifest(http, reg, "multi", sha(child), child, mt.DOCKER_MANIFEST_V2).status_code == 201
    for index_type, child_type in ((mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST_V2),
                                   (mt.OCI_INDEX, mt.DOCKER_MANIFEST_V2)):
        missing = sha(b"not a pushed manifest")
        doc = {"schemaVersion": 2, "mediaType": index_type, "manifests": [
            {"mediaType": child_type, "digest": sha(child), "size": len(child),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": child_type, "digest": missing, "size": 10,
             "platform": {"os": "linux", "architecture": "arm64"}},
        ]}
        body = json.dumps(doc).encode()
        r = put_manifest(http, reg, "multi", "all", body, index_type)
        assert (r.status_code, codes(r)) == (400, ["MANIFEST_BLOB_UNKNOWN"])
        assert r.json()["errors"][0]["detail"] == {"digest": missing}
        doc["manifests"].pop()
        body = json.dumps(doc).encode()
        assert put_manifest(http, reg, "multi", "all", body, index_type).status_code == 201
        get = http.get(f"{reg.url}/v2/multi/manifests/all", headers={"Accept": index_type})
        assert (get.content, get.headers["Content-Type"]) == (body, index_type)


def test_index_falls_back_to_linux_amd64_for_clients_without_index_support(reg, http):
    child = image_manifest(http, reg, "multi", mt.DOCKER_MANIFEST_V2)
    put_manifest(http, reg, "multi", sha(child), child, mt.DOCKER_MANIFEST_V2)
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_LIST, "manifests": [
        {"mediaType": mt.DOCKER_MANIFEST_V2, "digest": sha(child), "size": len(child),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    put_manifest(http, reg, "multi", "latest", index, mt.DOCKER_MANIFEST_LIST)
    r = http.get(f"{reg.url}/v2/multi/manifests/latest", headers={"Accept": mt.DOCKER_MANIFEST_V2})
    assert r.status_code == 200
    assert r.content == child
    assert r.headers["Docker-Content-Digest"] == sha(child)
    both = http.get(f"{reg.url}/v2/multi/manifests/latest",
                    headers={"Accept": f"{mt.DOCKER_MANIFEST_V2}, {mt.DOCKER_MANIFEST_LIST}"})
    assert both.content == index


def test_accept_excluding_the_stored_type_is_manifest_unknown(reg, http):
    body = image_manifest(http, reg, "r")
    put_manifest(http, reg, "r", "v1", body, mt.OCI_MANIFEST)
    r = http.get(f"{reg.url}/v2/r/manifests/v1", headers={"Accept": mt.DOCKER_MANIFEST_V2})
    assert (r.status_code, codes(r)) == (404, ["MANIFEST_UNKNOWN"])
    for accept in ("*/*", f"{mt.DOCKER_MANIFEST_V2};q=0.9, {mt.OCI_MANIFEST}"):
        assert http.get(f"{reg.url}/v2/r/manifests/v1", headers={"Accept": accept}).content == body


def _schema1(http, reg, repo: str, key) -> tuple[bytes, str]:
    from schema1_signing import sign

    layer = push_blob(http, reg, repo, b"schema1 layer")
    payload = json.dumps({"schemaVersion": 1, "name": repo, "tag": "old", "architecture": "amd64",
                          "fsLayers": [{"blobSum": layer}, {"blobSum": layer}],
                          "history": [{"v1Compatibility": "{}"}, {"v1Compatibility": "{}"}]},
                         indent=3).encode()
    return sign(payload, key), sha(payload)


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_schema1_manifests_are_stored_and_served_byte_for_byte(reg, http, kind):
    from schema1_signing import ec_key, rsa_key

    body, digest = _schema1(http, reg, "old/app", ec_key() if kind == "ec" else rsa_key())
    media_type = mt.DOCKER_MANIFEST_V1_SIGNED
    r = put_manifest(http, reg, "old/app", "old", body, media_type)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == digest
    for ref in ("old", digest):
        get = http.get(f"{reg.url}/v2/old/app/manifests/{ref}", headers={"Accept": media_type})
        assert get.content == body
        assert get.headers["Content-Type"] == media_type
        assert get.headers["Docker-Content-Digest"] == digest


def test_manifest_with_unknown_blobs(reg, http):
    body = image_manifest(http, reg, "r")
    doc = json.loads(body)
    missing = [sha(b"missing layer"), sha(b"missing config")]
    doc["layers"].append({"mediaType": mt.OCI_LAYER_GZIP, "digest": missing[0], "size": 1})
    doc["config"]["digest"] = missing[1]
    r = put_manifest(http, reg, "r", "v1", json.dumps(doc).encode(), mt.OCI_MANIFEST)
    assert r.status_code == 400
    assert codes(r) == ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]
    assert sorted(e["detail"]["digest"] for e in r.json()["errors"]) == sorted(missing)
    assert http.get(f"{reg.url}/v2/r/manifests/v1").status_code == 404


def test_manifest_blobs_must_be_in_the_same_repository(reg, http):
    body = image_manifest(http, reg, "a")
    r = put_manifest(http, reg, "b", "v1", body, mt.OCI_MANIFEST)
    assert (r.status_code, codes(r)) == (400, ["MANIFEST_BLOB_UNKNOWN"] * 2)  # config, layer


def test_foreign_layers_with_urls_need_not_be_present(reg, http):
    body = json.loads(image_manifest(http, reg, "win", mt.DOCKER_MANIFEST_V2))
    body["layers"].insert(0, {"mediaType": mt.DOCKER_LAYER_FOREIGN_GZIP, "size": 5,
                              "digest": sha(b"foreign"), "urls": ["https://example.com/l"]})
    raw = json.dumps(body).encode()
    assert put_manifest(http, reg, "win", "v1", raw, mt.DOCKER_MANIFEST_V2).status_code == 201


@pytest.mark.parametrize("body", [b"blablabla", b"[]", b'{"schemaVersion": 3}',
                                  b'{"schemaVersion": 2, "mediaType": "application/x-unknown"}',
                                  b'{"schemaVersion": 2, "config": {"digest": "sha256:bad"}}'])
def test_invalid_manifest(reg, http, body):
    r = put_manifest(http, reg, "r", "v1", body, mt.OCI_MANIFEST)
    assert (r.status_code, codes(r)) == (400, ["MANIFEST_INVALID"])


def test_content_type_contradicting_media_type_is_invalid(reg, http):
    body = image_manifest(http, reg, "r", mt.OCI_MANIFEST)
    r = put_manifest(http, reg, "r", "v1", body, mt.DOCKER_MANIFEST_V2)
    assert (r.status_code, codes(r)) == (400, ["MANIFEST_INVALID"])


def test_invalid_tag_on_put(reg, http):
    body = image_manifest(http, reg, "r")
    r = put_manifest(http, reg, "r", ".bad-tag", body, mt.OCI_MANIFEST)
    assert (r.status_code, codes(r)) == (400, ["MANIFEST_INVALID"])


def test_manifest_over_4_mib_is_413(reg, http):
    big = json.dumps({"schemaVersion": 2, "pad": "x" * (4 << 20)}).encode()
    r = put_manifest(http, reg, "r", "big", big, mt.OCI_MANIFEST)
    assert (r.status_code, codes(r)) == (413, ["SIZE_INVALID"])
    chunked = http.put(f"{reg.url}/v2/r/manifests/big", data=iter([big[:100], big[100:]]),
                       headers={"Content-Type": mt.OCI_MANIFEST})
    assert (chunked.status_code, codes(chunked)) == (413, ["SIZE_INVALID"])


def test_manifest_unknown(reg, http):
    r = http.get(f"{reg.url}/v2/r/manifests/nope")
    assert (r.status_code, codes(r)) == (404, ["MANIFEST_UNKNOWN"])
    assert http.head(f"{reg.url}/v2/r/manifests/{sha(b'x')}").status_code == 404
    invalid_tag = http.get(f"{reg.url}/v2/r/manifests/.INVALID_MANIFEST_NAME")
    assert (invalid_tag.status_code, codes(invalid_tag)) == (404, ["MANIFEST_UNKNOWN"])
    bad_digest = http.get(f"{reg.url}/v2/r/manifests/sha256:totallywrong")
    assert (bad_digest.status_code, codes(bad_digest)) == (400, ["DIGEST_INVALID"])


def test_manifest_delete_by_tag_and_by_digest(reg, http):
    body = image_manifest(http, reg, "r")
    digest = sha(body)
    for tag in ("a", "b", "c"):
        put_manifest(http, reg, "r", tag, body, mt.OCI_MANIFEST)
    r = http.delete(f"{reg.url}/v2/r/manifests/a")
    assert r.status_code == 202
    assert http.get(f"{reg.url}/v2/r/manifests/a").status_code == 404
    assert http.get(f"{reg.url}/v2/r/manifests/b").status_code == 200
    assert http.get(f"{reg.url}/v2/r/tags/list").json() == {"name": "r", "tags": ["b", "c"]}
    assert http.delete(f"{reg.url}/v2/r/manifests/{digest}").status_code == 202
    for ref in ("b", "c", digest):
        gone = http.get(f"{reg.url}/v2/r/manifests/{ref}")
        assert (gone.status_code, codes(gone)) == (404, ["MANIFEST_UNKNOWN"])
    assert http.get(f"{reg.url}/v2/r/tags/list").json() == {"name": "r", "tags": []}
    again = http.delete(f"{reg.url}/v2/r/manifests/{digest}")
    assert (again.status_code, codes(again)) == (404, ["MANIFEST_UNKNOWN"])
    tag_again = http.delete(f"{reg.url}/v2/r/manifests/a")
    assert (tag_again.status_code, codes(tag_again)) == (404, ["MANIFEST_UNKNOWN"])


def test_manifest_delete_in_unknown_repository(reg, http):
    r = http.delete(f"{reg.url}/v2/nobody/manifests/{sha(b'x')}")
    assert (r.status_code, codes(r)) == (404, ["NAME_UNKNOWN"])


# -- tags and catalog -----------------------------------------------------------------------
def test_tags_list_pagination(reg, http):
    body = image_manifest(http, reg, "r")
    tags = ["v2", "A", "v10", "latest", "_x", "b"]
    for tag in tags:
        put_manifest(http, reg, "r", tag, body, mt.OCI_MANIFEST)
    url = f"{reg.url}/v2/r/tags/list"
    everything = http.get(url)
    assert everything.json() == {"name": "r", "tags": ["A", "_x", "b", "latest", "v10", "v2"]}
    assert "Link" not in everything.headers
    first = http.get(url, params={"n": 2})
    assert first.json()["tags"] == ["A", "_x"]
    assert first.headers["Link"] == '</v2/r/tags/list?n=2&last=_x>; rel="next"'
    second = http.get(reg.url + first.headers["Link"][1:].split(">")[0])
    assert second.json()["tags"] == ["b", "latest"]
    last = http.get(url, params={"n": 2, "last": "latest"})
    assert last.json()["tags"] == ["v10", "v2"]
    assert "Link" not in last.headers
    assert http.get(url, params={"last": "b"}).json()["tags"] == ["latest", "v10", "v2"]
    zero = http.get(url, params={"n": 0})
    assert zero.json() == {"name": "r", "tags": []}
    assert "Link" not in zero.headers
    bad = http.get(url, params={"n": "many"})
    assert (bad.status_code, codes(bad)) == (400, ["UNSUPPORTED"])


def test_tags_list_of_unknown_repository(reg, http):
    r = http.get(f"{reg.url}/v2/nobody/tags/list")
    assert (r.status_code, codes(r)) == (404, ["NAME_UNKNOWN"])


def test_catalog_pagination(reg, http):
    for repo in ("zeta", "alpha/one", "alpha/two", "mid"):
        push_blob(http, reg, repo, repo.encode())
    url = f"{reg.url}/v2/_catalog"
    assert http.get(url).json() == {"repositories": ["alpha/one", "alpha/two", "mid", "zeta"]}
    page = http.get(url, params={"n": 3})
    assert page.json() == {"repositories": ["alpha/one", "alpha/two", "mid"]}
    assert page.headers["Link"] == '</v2/_catalog?n=3&last=mid>; rel="next"'
    rest = http.get(url, params={"n": 3, "last": "mid"})
    assert rest.json() == {"repositories": ["zeta"]}
    assert "Link" not in rest.headers


# -- referrers ------------------------------------------------------------------------------
def _artifact(http, reg, repo, subject_body: bytes, artifact_type: str | None, config_type: str,
              note: str) -> bytes:
    empty = push_blob(http, reg, repo, b"{}")
    blob = push_blob(http, reg, repo, note.encode())
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
           "config": {"mediaType": config_type, "digest": empty, "size": 2},
           "layers": [{"mediaType": "application/octet-stream", "digest": blob, "size": len(note)}],
           "subject": {"mediaType": mt.OCI_MANIFEST, "digest": sha(subject_body),
                       "size": len(subject_body)},
           "annotations": {"note": note}}
    if artifact_type:
        doc["artifactType"] = artifact_type
    return json.dumps(doc).encode()


def test_referrers(reg, http):
    subject = image_manifest(http, reg, "r")
    sbom = _artifact(http, reg, "r", subject, "application/vnd.example.sbom", mt.OCI_EMPTY, "sbom")
    sig = _artifact(http, reg, "r", subject, None, "application/vnd.example.sig", "sig")
    for body in (sbom, sig):  # before the subject exists: allowed
        r = put_manifest(http, reg, "r", sha(body), body, mt.OCI_MANIFEST)
        assert r.status_code == 201
        assert r.headers["OCI-Subject"] == sha(subject)
    put_manifest(http, reg, "r", "v1", subject, mt.OCI_MANIFEST)
    r = http.get(f"{reg.url}/v2/r/referrers/{sha(subject)}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == mt.OCI_INDEX
    assert "OCI-Filters-Applied" not in r.headers
    expected = sorted([
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(sbom), "size": len(sbom),
         "artifactType": "application/vnd.example.sbom", "annotations": {"note": "sbom"}},
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(sig), "size": len(sig),
         "artifactType": "application/vnd.example.sig", "annotations": {"note": "sig"}},
    ], key=lambda d: d["digest"])
    assert r.json() == {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": expected}
    filtered = http.get(f"{reg.url}/v2/r/referrers/{sha(subject)}",
                        params={"artifactType": "application/vnd.example.sig"})
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert filtered.json()["manifests"] == [d for d in expected if d["digest"] == sha(sig)]
    assert http.delete(f"{reg.url}/v2/r/manifests/{sha(sig)}").status_code == 202
    after = http.get(f"{reg.url}/v2/r/referrers/{sha(subject)}").json()["manifests"]
    assert after == [d for d in expected if d["digest"] == sha(sbom)]


def test_referrers_none_and_invalid(reg, http):
    r = http.get(f"{reg.url}/v2/r/referrers/{sha(b'nothing refers to me')}")
    assert r.status_code == 200
    assert r.json() == {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    bad = http.get(f"{reg.url}/v2/r/referrers/sha256:nope")
    assert (bad.status_code, codes(bad)) == (400, ["DIGEST_INVALID"])


def test_interrupted_patch_rolls_back_and_the_upload_continues(reg, http):
    import os
    import socket
    import time

    data = os.urandom(1000 + (10 << 20))
    location = http.post(f"{reg.url}/v2/r/blobs/uploads/").headers["Location"]
    assert http.patch(reg.url + location, data=data[:1000],
                      headers={"Content-Range": "0-999"}).status_code == 202
    with socket.create_connection(("127.0.0.1", reg.port)) as sock:  # sends 6 of 10 MiB, then hangs up
        sock.sendall(f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: {10 << 20}\r\n"
                     f"Content-Range: 1000-{len(data) - 1}\r\n\r\n".encode() + data[1000:1000 + (6 << 20)])
    deadline = time.monotonic() + 20
    while not any(r.kind == "upload_patch" and r.status == 400 for r in reg.log.entries):
        assert time.monotonic() < deadline, "the registry never noticed the broken request"
        time.sleep(0.01)
    assert http.get(reg.url + location).headers["Range"] == "0-999"
    assert http.patch(reg.url + location, data=data[1000:],
                      headers={"Content-Range": f"1000-{len(data) - 1}"}).status_code == 202
    assert http.put(reg.url + location, params={"digest": sha(data)}).status_code == 201
    assert http.get(f"{reg.url}/v2/r/blobs/{sha(data)}").content == data


def test_deeply_nested_json_manifest_is_400_manifest_invalid(reg, http):
    r = http.put(f"{reg.url}/v2/deep/manifests/v1", data=b"[" * 100000,
                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "MANIFEST_INVALID")


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", None])
def test_a_manifest_needs_its_media_type_as_content_type(http, reg, content_type):
    """As Distribution 2.8.2 answers (checked by hand against it): 400 MANIFEST_INVALID."""
    body = image_manifest(http, reg, "ct/app")
    headers = {"Content-Type": content_type} if content_type else {}
    r = http.put(f"{reg.url}/v2/ct/app/manifests/v1", data=body, headers=headers)
    assert (r.status_code, codes(r)) == (400, ["MANIFEST_INVALID"])
    r = http.put(f"{reg.url}/v2/ct/app/manifests/v1", data=body,
                 headers={"Content-Type": mt.OCI_MANIFEST})
    assert r.status_code == 201
