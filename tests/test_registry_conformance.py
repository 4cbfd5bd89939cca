"""The OCI distribution-spec conformance suite (v1.1), ported check by check.

Go is not available here to run the suite itself, so each ``g.Specify`` of
opencontainers/distribution-spec ``conformance/`` (01_pull, 02_push, 03_discovery,
04_management, in the suite's order, with its default settings: all four workflows on,
setup on, ``OCI_DELETE_MANIFEST_BEFORE_BLOBS`` true, no automatic cross-mount) is one test
below, with the same requests and the same expectations.  The tests share one registry
and run in file order, as the suite's specs do.  Checks the suite itself skips under
these settings are skipped here too, with the reason.

Distribution 2.8.2 fails 12 of these checks; layerlab's registry must fail none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import uuid
from types import SimpleNamespace

import pytest
import requests

NAMESPACE = "conformance/myorg/myrepo"
CROSSMOUNT = f"conformance-{uuid.uuid4()}"
TAG = "tagtest0"
NONEXISTENT_MANIFEST = ".INVALID_MANIFEST_NAME"
ERROR_CODES = ["BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
               "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN",
               "MANIFEST_UNVERIFIED", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID",
               "TAG_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED"]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ANNOTATION = "org.opencontainers.conformance.test"
LAYER = base64.b64decode(
    "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0"
    "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD"
    "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def marshal(obj) -> bytes:
    """Like Go's json.MarshalIndent(obj, "", "\\t")."""
    return json.dumps(obj, indent="\t").encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Data:
    """The suite's test content (setup.go), built once."""

    def __init__(self) -> None:
        rng = random.Random(7)
        self.configs = [marshal({"architecture": "amd64", "os": "linux",
                                 "rootfs": {"type": "layers", "diff_ids": []},
                                 "author": "".join(rng.choice("abcdefghXYZ0123-") for _ in range(16))})
                        for _ in range(4 + 1)]
        layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "size": len(LAYER), "digest": sha(LAYER)}
        self.manifests = [marshal({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(c), "size": len(c), "data": _b64(c),
                       "newUnspecifiedField": _b64(b"hello world")},
            "layers": [layer_desc]}) for c in self.configs]
        self.empty_layer_manifest = marshal({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(self.configs[1]), "size": len(self.configs[1]),
                       "data": _b64(self.configs[1]), "newUnspecifiedField": _b64(b"hello world")},
            "layers": []})
        self.blob_a = bytes(rng.getrandbits(8) for _ in range(42))
        self.setup_chunked_blob(42)
        self.empty_json = b"{}"
        self.ref_blob_a = b"NHL Peanut Butter on my NHL bagel"
        self.ref_blob_b = b"NBA Strawberry Jam on my NBA croissant"
        self.type_a = "application/vnd.nhl.peanut.butter.bagel"
        self.type_b = "application/vnd.nba.strawberry.jam.croissant"
        empty_desc = {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                      "digest": sha(self.empty_json)}

        def subject(i):
            return {"mediaType": OCI_MANIFEST, "size": len(self.manifests[i]),
                    "digest": sha(self.manifests[i])}

        def blob_desc(media_type, blob):
            return {"mediaType": media_type, "size": len(blob), "digest": sha(blob)}

        self.annotations: dict[str, str] = {}

        def artifact(note, *, config, layers, subj, artifact_type=None):
            doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                   "subject": subject(subj), "layers": layers}
            if artifact_type:
                doc["artifactType"] = artifact_type
            if note:
                doc["annotations"] = {ANNOTATION: note}
            body = marshal(doc)
            if note:
                self.annotations[sha(body)] = note
            return body

        self.refs_a_config = artifact("test config a", config=blob_desc(self.type_a, self.ref_blob_a),
                                      layers=[empty_desc], subj=4)
        self.refs_b_config = artifact("test config b", config=blob_desc(self.type_b, self.ref_blob_b),
                                      layers=[empty_desc], subj=4)
        self.refs_a_layer = artifact("test layer a", config=empty_desc, subj=4, artifact_type=self.type_a,
                                     layers=[blob_desc(self.type_a, self.ref_blob_a)])
        self.refs_b_layer = artifact("test layer b", config=empty_desc, subj=4, artifact_type=self.type_b,
                                     layers=[blob_desc(self.type_b, self.ref_blob_b)])
        self.refs_c_layer = artifact(None, config=empty_desc, subj=3, artifact_type=self.type_b,
                                     layers=[blob_desc(self.type_b, self.ref_blob_b)])
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "application/vnd.food.stand",
                 "manifests": [blob_desc(OCI_MANIFEST, self.refs_a_config),
                               blob_desc(OCI_MANIFEST, self.refs_a_layer)],
                 "subject": subject(4), "annotations": {ANNOTATION: "test index"}}
        self.refs_index = marshal(index)
        self.annotations[sha(self.refs_index)] = "test index"
        self.dummy_digest = sha(b"hello world")

    def setup_chunked_blob(self, size: int) -> None:
        rng = random.Random(size)
        self.blob_b = bytes(rng.getrandbits(8) for _ in range(size))
        self.chunk1 = self.blob_b[: size // 2 + 1]
        self.chunk2 = self.blob_b[size // 2 + 1:]
        self.chunk1_range = f"0-{len(self.chunk1) - 1}"
        self.chunk2_range = f"{len(self.chunk1)}-{len(self.blob_b) - 1}"


D = Data()
STATE: dict = {}


class Client:
    """reggie's client in miniature: ``<name>`` is the namespace, Location may be relative."""

    def __init__(self, registry) -> None:
        self.base = registry.url
        self.session = requests.Session()

    def url(self, path: str, name: str = NAMESPACE) -> str:
        if path.startswith("http"):
            return path
        return self.base + path.replace("<name>", name)

    def do(self, method: str, path: str, *, name: str = NAMESPACE, **kw) -> requests.Response:
        return self.session.request(method, self.url(path, name), allow_redirects=False, **kw)


def relative(response: requests.Response) -> str:
    location = response.headers.get("Location", "")
    return location.split("://", 1)[1][location.split("://", 1)[1].index("/"):] \
        if "://" in location else location


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """layerlab's registry; ``LAYERLAB_CONFORMANCE_TARGET=distribution`` runs the same
    checks against Debian's Distribution 2.8.2 instead (to see the port reproduce its 12
    known failures: run by hand, they fail by design)."""
    if os.environ.get("LAYERLAB_CONFORMANCE_TARGET") == "distribution":
        from conftest import start_distribution

        proc, host = start_distribution(tmp_path_factory.mktemp("distribution"))
        yield Client(SimpleNamespace(url=f"http://{host}"))
        proc.terminate()
        proc.wait(timeout=10)
        return
    from layerlab.registry import LocalRegistry

    with LocalRegistry() as registry:
        yield Client(registry)


def ok(response: requests.Response) -> None:
    assert 200 <= response.status_code < 300, (response.status_code, response.text)


def ok_or(response: requests.Response, *statuses: int) -> None:
    assert 200 <= response.status_code < 300 or response.status_code in statuses, \
        (response.status_code, response.text)


def upload(client: Client, blob: bytes, name: str = NAMESPACE) -> requests.Response:
    post = client.do("POST", "/v2/<name>/blobs/uploads/", name=name)
    return client.do("PUT", relative(post), params={"digest": sha(blob)}, data=blob,
                     headers={"Content-Type": "application/octet-stream",
                              "Content-Length": str(len(blob))})


def put_manifest(client: Client, ref: str, body: bytes, media_type: str = OCI_MANIFEST):
    return client.do("PUT", f"/v2/<name>/manifests/{ref}", data=body,
                     headers={"Content-Type": media_type})


SUITE_SKIPS = "the suite skips this check when it populates the registry itself (the default)"


# ======================================= 01 Pull =========================================
def test_pull_setup_populate_registry_with_test_blob_0(client):
    ok(upload(client, D.configs[0]))


def test_pull_setup_populate_registry_with_test_blob_1(client):
    ok(upload(client, D.configs[1]))


def test_pull_setup_populate_registry_with_test_layer(client):
    ok(upload(client, LAYER))


def test_pull_setup_populate_registry_with_test_manifest_0(client):
    ok(put_manifest(client, TAG, D.manifests[0]))


def test_pull_setup_populate_registry_with_test_manifest_1(client):
    ok(put_manifest(client, sha(D.manifests[1]), D.manifests[1]))


def test_pull_setup_get_tag_name_from_environment():
    pytest.skip(SUITE_SKIPS)


def test_pull_head_nonexistent_blob_404(client):
    assert client.do("HEAD", f"/v2/<name>/blobs/{D.dummy_digest}").status_code == 404


def test_pull_head_existing_blob_200(client):
    r = client.do("HEAD", f"/v2/<name>/blobs/{sha(D.configs[0])}")
    assert r.status_code == 200
    assert r.headers.get("Docker-Content-Digest", sha(D.configs[0])) == sha(D.configs[0])


def test_pull_get_nonexistent_blob_404(client):
    assert client.do("GET", f"/v2/<name>/blobs/{D.dummy_digest}").status_code == 404


def test_pull_get_existing_blob_200(client):
    assert client.do("GET", f"/v2/<name>/blobs/{sha(D.configs[0])}").status_code == 200


def test_pull_head_nonexistent_manifest_404(client):
    assert client.do("HEAD", f"/v2/<name>/manifests/{NONEXISTENT_MANIFEST}").status_code == 404


@pytest.mark.parametrize("i", [0, 1])
def test_pull_head_manifest_by_digest_200(client, i):
    r = client.do("HEAD", f"/v2/<name>/manifests/{sha(D.manifests[i])}",
                  headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200
    assert r.headers.get("Docker-Content-Digest", sha(D.manifests[i])) == sha(D.manifests[i])


def test_pull_head_manifest_by_tag_200(client):
    r = client.do("HEAD", f"/v2/<name>/manifests/{TAG}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200
    assert r.headers.get("Docker-Content-Digest", sha(D.manifests[0])) == sha(D.manifests[0])


def test_pull_get_nonexistent_manifest_404(client):
    assert client.do("GET", f"/v2/<name>/manifests/{NONEXISTENT_MANIFEST}").status_code == 404


@pytest.mark.parametrize("i", [0, 1])
def test_pull_get_manifest_by_digest_200(client, i):
    r = client.do("GET", f"/v2/<name>/manifests/{sha(D.manifests[i])}",
                  headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200


def test_pull_get_manifest_by_tag_200(client):
    r = client.do("GET", f"/v2/<name>/manifests/{TAG}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200


def test_pull_error_400_body_is_oci_conforming_json(client):
    r = client.do("GET", "/v2/<name>/manifests/sha256:totallywrong", data=b"blablabla",
                  headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code in (400, 404)
    if r.status_code == 400:
        errors = r.json()["errors"]
        assert errors and errors[0]["code"] in ERROR_CODES


@pytest.mark.parametrize("i", [0, 1])
def test_pull_teardown_delete_manifest(client, i):
    ok_or(client.do("DELETE", f"/v2/<name>/manifests/{sha(D.manifests[i])}"), 405)


@pytest.mark.parametrize("blob", ["config0", "config1", "layer"])
def test_pull_teardown_delete_blob(client, blob):
    data = {"config0": D.configs[0], "config1": D.configs[1], "layer": LAYER}[blob]
    ok_or(client.do("DELETE", f"/v2/<name>/blobs/{sha(data)}"), 404, 405)


# ======================================= 02 Push =========================================
def test_push_streamed_patch_with_blob_in_body_202(client):
    post = client.do("POST", "/v2/<name>/blobs/uploads/")
    assert post.headers.get("Location")
    r = client.do("PATCH", relative(post), data=D.blob_a,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202
    STATE["last"] = r


def test_push_streamed_put_to_session_url_with_digest_201(client):
    # the suite also sets "Content-Length: 42" here, which Go's client drops (no body)
    r = client.do("PUT", relative(STATE["last"]), params={"digest": sha(D.blob_a)},
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201
    assert r.headers.get("Location")


def test_push_monolithic_get_nonexistent_blob_404(client):
    assert client.do("GET", f"/v2/<name>/blobs/{D.dummy_digest}").status_code == 404


def test_push_monolithic_post_with_digest_and_blob_201_or_202(client):
    r = client.do("POST", "/v2/<name>/blobs/uploads/", params={"digest": sha(D.configs[1])},
                  data=D.configs[1], headers={"Content-Type": "application/octet-stream"})
    assert r.headers.get("Location")
    assert r.status_code in (201, 202)
    STATE["last"] = r


def test_push_monolithic_get_blob_from_prior_request(client):
    r = client.do("GET", f"/v2/<name>/blobs/{sha(D.configs[1])}")
    assert r.status_code == (404 if STATE["last"].status_code == 202 else 200)


def test_push_monolithic_post_yields_session_id(client):
    r = client.do("POST", "/v2/<name>/blobs/uploads/")
    assert r.status_code == 202
    STATE["last"] = r


def test_push_monolithic_put_upload_of_blob_201(client):
    r = client.do("PUT", relative(STATE["last"]), params={"digest": sha(D.configs[1])},
                  data=D.configs[1], headers={"Content-Type": "application/octet-stream"})
    assert r.headers.get("Location")
    assert r.status_code == 201


def test_push_monolithic_get_existing_blob_200(client):
    assert client.do("GET", f"/v2/<name>/blobs/{sha(D.configs[1])}").status_code == 200


def test_push_monolithic_put_upload_of_layer_blob_201(client):
    post = client.do("POST", "/v2/<name>/blobs/uploads/")
    r = client.do("PUT", relative(post), params={"digest": sha(LAYER)}, data=LAYER,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.headers.get("Location")
    assert r.status_code == 201


def test_push_monolithic_get_existing_layer_200(client):
    assert client.do("GET", f"/v2/<name>/blobs/{sha(LAYER)}").status_code == 200


def test_push_chunked_out_of_order_upload_416(client):
    post = client.do("POST", "/v2/<name>/blobs/uploads/", headers={"Content-Length": "0"})
    assert post.headers.get("Location")
    min_size = post.headers.get("OCI-Chunk-Min-Length")
    if min_size and int(min_size) > len(D.chunk1):
        D.setup_chunked_blob(int(min_size) * 2 - 2)
    r = client.do("PATCH", relative(post), data=D.chunk2,
                  headers={"Content-Type": "application/octet-stream",
                           "Content-Range": D.chunk2_range})
    assert r.status_code == 416


def test_push_chunked_patch_first_chunk_202(client):
    post = client.do("POST", "/v2/<name>/blobs/uploads/", headers={"Content-Length": "0"})
    assert post.headers.get("Location")
    STATE["prev"] = post
    r = client.do("PATCH", relative(post), data=D.chunk1,
                  headers={"Content-Type": "application/octet-stream",
                           "Content-Range": D.chunk1_range})
    assert r.status_code == 202
    assert r.headers.get("Range") == D.chunk1_range
    STATE["last"] = r


def test_push_chunked_retry_previous_chunk_416(client):
    r = client.do("PATCH", relative(STATE["prev"]), data=D.chunk1,
                  headers={"Content-Type": "application/octet-stream",
                           "Content-Range": D.chunk1_range})
    assert r.status_code == 416


def test_push_chunked_get_on_stale_upload_204_with_range_and_location(client):
    r = client.do("GET", relative(STATE["prev"]))
    assert r.status_code == 204
    assert r.headers.get("Location")
    assert r.headers.get("Range") == D.chunk1_range
    STATE["last"] = r


def test_push_chunked_patch_second_chunk_202(client):
    r = client.do("PATCH", relative(STATE["last"]), data=D.chunk2,
                  headers={"Content-Range": D.chunk2_range,
                           "Content-Type": "application/octet-stream"})
    assert r.status_code == 202
    assert r.headers.get("Location")
    STATE["last"] = r


def test_push_chunked_put_with_digest_201(client):
    r = client.do("PUT", relative(STATE["last"]), params={"digest": sha(D.blob_b)},
                  headers={"Content-Length": "0", "Content-Type": "application/octet-stream"})
    assert r.status_code == 201
    assert r.headers.get("Location")


def test_push_crossmount_without_from_yields_session_id(client):
    r = client.do("POST", "/v2/<name>/blobs/uploads/", name=CROSSMOUNT,
                  params={"mount": D.dummy_digest})
    assert r.status_code == 202
    assert r.headers.get("Location")


def test_push_crossmount_mount_another_repositorys_blob_201_or_202(client):
    r = client.do("POST", "/v2/<name>/blobs/uploads/", name=CROSSMOUNT,
                  params={"mount": sha(D.blob_a), "from": NAMESPACE})
    assert r.status_code in (201, 202)
    STATE["last"] = r


def test_push_crossmount_get_test_digest_within_crossmount_namespace_200(client):
    if STATE["last"].status_code != 201:
        pytest.skip("the suite runs this only after a 201")
    assert relative(STATE["last"]) == f"/v2/{CROSSMOUNT}/blobs/{sha(D.blob_a)}"
    assert client.do("GET", relative(STATE["last"])).status_code == 200


def test_push_crossmount_of_nonexistent_blob_yields_session_id(client):
    if STATE["last"].status_code != 202:
        pytest.skip("the suite runs this only after a 202 (the mount succeeded: 201)")
    assert relative(STATE["last"]).startswith(f"/v2/{CROSSMOUNT}/blobs/uploads/")


def test_push_crossmount_without_from_automatic_discovery_enabled_201():
    pytest.skip("the suite runs this only when OCI_AUTOMATIC_CROSSMOUNT is set")


def test_push_crossmount_without_from_automatic_discovery_disabled_202():
    pytest.skip("the suite runs this only when OCI_AUTOMATIC_CROSSMOUNT is set")


def test_push_manifest_get_nonexistent_manifest_404(client):
    assert client.do("GET", f"/v2/<name>/manifests/{NONEXISTENT_MANIFEST}").status_code == 404


def test_push_manifest_put_should_accept_a_manifest_upload(client):
    for i in range(4):
        r = put_manifest(client, f"test{i}", D.manifests[1])
        assert r.headers.get("Location")
        assert r.status_code == 201


def test_push_manifest_registry_should_accept_a_manifest_with_no_layers(client):
    r = put_manifest(client, "emptylayer", D.empty_layer_manifest)
    assert r.status_code == 201  # the suite only warns otherwise; layerlab accepts it
    assert r.headers.get("Location")
    STATE["empty_layer_ref"] = r.headers["Location"]


def test_push_manifest_get_manifest_by_digest_200(client):
    r = client.do("GET", f"/v2/<name>/manifests/{sha(D.manifests[1])}",
                  headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200


def test_push_teardown_delete_manifest_created_in_tests(client):
    ok_or(client.do("DELETE", f"/v2/<name>/manifests/{sha(D.manifests[1])}"), 405)
    if STATE.get("empty_layer_ref"):
        ok_or(client.do("DELETE", f"/v2/<name>/manifests/{sha(D.empty_layer_manifest)}"), 405)


def test_push_teardown_delete_config_blob_created_in_tests(client):
    ok_or(client.do("DELETE", f"/v2/<name>/blobs/{sha(D.configs[1])}"), 404, 405)


def test_push_teardown_delete_layer_blob_created_in_setup(client):
    ok_or(client.do("DELETE", f"/v2/<name>/blobs/{sha(LAYER)}"), 404, 405)


# =================================== 03 Content discovery ================================
def test_discovery_setup_populate_registry_with_test_blob(client):
    ok(upload(client, D.configs[2]))


def test_discovery_setup_populate_registry_with_test_layer(client):
    ok(upload(client, LAYER))


def test_discovery_setup_populate_registry_with_test_tags(client):
    for i in range(4):
        ok(put_manifest(client, f"test{i}", D.manifests[2]))
    STATE["tags"] = client.do("GET", "/v2/<name>/tags/list").json()["tags"]


def test_discovery_setup_populate_registry_with_test_tags_no_push():
    pytest.skip(SUITE_SKIPS)


def test_discovery_setup_references(client):
    assert sha(D.empty_json) == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    ok(upload(client, D.empty_json))
    ok(upload(client, D.ref_blob_a))
    for body in (D.refs_a_config, D.refs_a_layer):
        r = put_manifest(client, sha(body), body)
        ok(r)
        assert r.headers.get("OCI-Subject") == sha(D.manifests[4])
    r = put_manifest(client, sha(D.refs_index), D.refs_index, OCI_INDEX)
    ok(r)
    assert r.headers.get("OCI-Subject") == sha(D.manifests[4])
    ok(upload(client, D.configs[4]))
    ok(upload(client, LAYER))
    ok(put_manifest(client, TAG, D.manifests[4]))
    ok(upload(client, D.ref_blob_b))
    for body in (D.refs_b_config, D.refs_b_layer):
        r = put_manifest(client, sha(body), body)
        ok(r)
        assert r.headers.get("OCI-Subject") == sha(D.manifests[4])
    r = put_manifest(client, sha(D.refs_c_layer), D.refs_c_layer)
    ok(r)
    assert r.headers.get("OCI-Subject") == sha(D.manifests[3])


def test_discovery_get_list_tags_200(client):
    r = client.do("GET", "/v2/<name>/tags/list")
    assert r.status_code == 200
    STATE["tags"] = r.json()["tags"]
    STATE["num_tags"] = len(STATE["tags"])


def test_discovery_number_of_tags_limitable_by_n(client):
    n = STATE["num_tags"] // 2
    r = client.do("GET", "/v2/<name>/tags/list", params={"n": n})
    assert r.status_code == 200
    assert len(r.json()["tags"]) == n


def test_discovery_start_of_tags_set_by_last(client):
    n = STATE["num_tags"] // 2
    tags = client.do("GET", "/v2/<name>/tags/list", params={"n": n}).json()["tags"]
    r = client.do("GET", "/v2/<name>/tags/list", params={"n": n, "last": tags[n - 1]})
    assert r.status_code == 200
    assert len(tags) <= n
    assert tags[n - 1] in tags


def _index(r: requests.Response) -> list[dict]:
    assert r.status_code == 200
    assert r.headers.get("Content-Type") == OCI_INDEX
    return r.json()["manifests"]


def test_discovery_referrers_of_nonexistent_blob_empty_200(client):
    assert _index(client.do("GET", f"/v2/<name>/referrers/{D.dummy_digest}")) == []


def test_discovery_referrers_of_existing_manifest_200(client):
    manifests = _index(client.do("GET", f"/v2/<name>/referrers/{sha(D.manifests[4])}"))
    assert len(manifests) == 5
    assert manifests[0]["digest"] != manifests[1]["digest"]
    for m in manifests:
        assert len(m["annotations"]) == 1
        assert m["annotations"][ANNOTATION] == D.annotations[m["digest"]]


def test_discovery_referrers_with_filter_200(client):
    r = client.do("GET", f"/v2/<name>/referrers/{sha(D.manifests[4])}",
                  params={"artifactType": D.type_a})
    manifests = _index(r)
    assert r.headers.get("OCI-Filters-Applied") == "artifactType"  # layerlab filters
    assert len(manifests) == 2
    for m in manifests:
        assert len(m["annotations"]) == 1
        assert m["annotations"][ANNOTATION] == D.annotations[m["digest"]]


def test_discovery_referrers_of_missing_manifest_200(client):
    manifests = _index(client.do("GET", f"/v2/<name>/referrers/{sha(D.manifests[3])}"))
    assert len(manifests) == 1
    assert manifests[0]["digest"] == sha(D.refs_c_layer)


def test_discovery_teardown_delete_created_manifest_and_associated_tags(client):
    for ref in (sha(D.refs_index), sha(D.manifests[2]), sha(D.manifests[4]), sha(D.refs_a_config),
                sha(D.refs_a_layer), TAG, sha(D.refs_b_config), sha(D.refs_b_layer),
                sha(D.refs_c_layer)):
        ok_or(client.do("DELETE", f"/v2/<name>/manifests/{ref}"), 405, 404)


def test_discovery_teardown_delete_config_blob_created_in_tests(client):
    ok_or(client.do("DELETE", f"/v2/<name>/blobs/{sha(D.configs[2])}"), 405)


def test_discovery_teardown_delete_layer_blob_created_in_setup(client):
    ok_or(client.do("DELETE", f"/v2/<name>/blobs/{sha(LAYER)}"), 405)


def test_discovery_teardown_references(client):
    for ref in (sha(D.refs_index), sha(D.refs_a_config), sha(D.refs_a_layer), sha(D.manifests[4]),
                sha(D.refs_b_config), sha(D.refs_b_layer)):
        ok_or(client.do("DELETE", f"/v2/<name>/manifests/{ref}"), 405, 404)
    for blob in (D.configs[4], D.ref_blob_a, D.ref_blob_b, D.empty_json):
        ok_or(client.do("DELETE", f"/v2/<name>/blobs/{sha(blob)}"), 405, 404)


# =================================== 04 Content management ===============================
def test_management_setup_populate_registry_with_test_config_blob(client):
    ok(upload(client, D.configs[3]))


def test_management_setup_populate_registry_with_test_layer(client):
    ok(upload(client, LAYER))


def test_management_setup_populate_registry_with_test_tag(client):
    ok(put_manifest(client, TAG, D.manifests[3]))


def test_management_setup_check_how_many_tags_before_deletion(client):
    r = client.do("GET", "/v2/<name>/tags/list")
    assert r.status_code == 200
    STATE["num_tags"] = len(r.json()["tags"])


def test_management_delete_manifest_tag_202(client):
    r = client.do("DELETE", f"/v2/<name>/manifests/{TAG}")
    assert r.status_code in (400, 202, 405)
    if r.status_code == 400:
        assert r.json()["errors"][0]["code"] == "UNSUPPORTED"
    assert r.status_code == 202  # layerlab deletes tags


def test_management_delete_manifest_by_digest_202(client):
    r = client.do("DELETE", f"/v2/<name>/manifests/{sha(D.manifests[3])}")
    assert r.status_code in (202, 404)


def test_management_get_deleted_manifest_404(client):
    r = client.do("GET", f"/v2/<name>/manifests/{sha(D.manifests[3])}")
    assert r.status_code in (404, 200)
    assert r.status_code == 404  # layerlab deletes manifests


def test_management_tags_list_reflects_manifest_deletion(client):
    r = client.do("GET", "/v2/<name>/tags/list")
    assert r.status_code == 200
    assert len(r.json()["tags"]) < STATE["num_tags"]


def test_management_delete_blob_202(client):
    for blob in (D.configs[3], LAYER):
        r = client.do("DELETE", f"/v2/<name>/blobs/{sha(blob)}")
        assert r.status_code in (202, 404, 405)
        assert r.status_code == 202  # layerlab deletes blobs


def test_management_get_deleted_blob_404(client):
    assert client.do("GET", f"/v2/<name>/blobs/{sha(D.configs[3])}").status_code == 404
