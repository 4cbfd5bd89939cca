"""Signed schema1 manifests: layerlab's registry checks their signatures as Distribution
2.8.2 does (with ``compatibility.schema1.enabled``), side by side on the same bodies."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests

from conftest import start_distribution
from schema1_signing import certificate_chain, ec_key, jwk, rsa_key, sign

S1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
LAYER = b"schema1 layer"
EC_KEY, RSA_KEY = ec_key(), rsa_key()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module", params=["layerlab", "distribution"])
def registry(request, tmp_path_factory):
    """``http://host:port`` of a registry holding the layer in repository ``s1/app``."""
    if request.param == "layerlab":
        from layerlab.registry import LocalRegistry

        with LocalRegistry(memory=True) as reg:
            yield request.param, reg.url
        return
    tmp = tmp_path_factory.mktemp("distribution-schema1")
    proc, host = start_distribution(tmp, "compatibility:\n  schema1:\n    enabled: true\n")
    try:
        yield request.param, f"http://{host}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def url(registry) -> str:
    base = registry[1]
    start = requests.post(f"{base}/v2/s1/app/blobs/uploads/")
    location = start.headers["Location"]
    location = location if location.startswith("http") else base + location
    put = requests.put(location, params={"digest": sha(LAYER)}, data=LAYER,
                       headers={"Content-Type": "application/octet-stream"})
    assert put.status_code == 201
    return base


def payload(tag: str) -> bytes:
    return json.dumps({"schemaVersion": 1, "name": "s1/app", "tag": tag, "architecture": "amd64",
                       "fsLayers": [{"blobSum": sha(LAYER)}],
                       "history": [{"v1Compatibility": json.dumps({"id": "a" * 64})}]},
                      indent=3).encode()


def put(url: str, tag: str, body: bytes) -> requests.Response:
    return requests.put(f"{url}/v2/s1/app/manifests/{tag}", data=body,
                        headers={"Content-Type": S1})


@pytest.mark.parametrize("how", ["jwk-ec", "jwk-rsa", "x5c-ec"])
def test_a_properly_signed_manifest_is_accepted(registry, url, how):
    key = RSA_KEY if how == "jwk-rsa" else EC_KEY
    header = {"x5c": certificate_chain(key), "alg": "ES256"} if how == "x5c-ec" else None
    body = sign(payload(how), key, header=header)
    r = put(url, how, body)
    assert (r.status_code, r.headers["Docker-Content-Digest"]) == (201, sha(payload(how)))
    got = requests.get(f"{url}/v2/s1/app/manifests/{how}", headers={"Accept": S1})
    assert got.headers["Docker-Content-Digest"] == sha(payload(how))
    if registry[0] == "layerlab":  # Distribution re-serialises the signatures it stores
        assert got.content == body


def _garbage_key(body: bytes) -> bytes:
    doc = json.loads(body)
    doc["signatures"][0]["header"]["jwk"]["x"] = "AAAA"
    return body[:body.index(b',\n   "signatures"')] + b',\n   "signatures": ' \
        + json.dumps(doc["signatures"]).encode() + b"\n}"


def _wrong_kid(body: bytes) -> bytes:
    return body.replace(jwk(EC_KEY)["kid"].encode(), b"AAAA:BBBB:CCCC")


def _edited(body: bytes) -> bytes:
    return body.replace(b'"amd64"', b'"arm64"', 1)  # the payload changed after signing


CASES = {  # name -> (body, code from layerlab, code from Distribution 2.8.2)
    "unsigned": (lambda t: payload(t), "MANIFEST_INVALID", "MANIFEST_INVALID"),
    "garbage-key": (lambda t: _garbage_key(sign(payload(t), EC_KEY)), "MANIFEST_INVALID",
                    "MANIFEST_INVALID"),
    "wrong-kid": (lambda t: _wrong_kid(sign(payload(t), EC_KEY)), "MANIFEST_INVALID",
                  "MANIFEST_INVALID"),
    "tampered-ec": (lambda t: sign(payload(t), EC_KEY, tamper=True), "MANIFEST_UNVERIFIED",
                    "MANIFEST_UNVERIFIED"),
    "edited-after-signing": (lambda t: _edited(sign(payload(t), EC_KEY)), "MANIFEST_UNVERIFIED",
                             "MANIFEST_UNVERIFIED"),
    # Distribution answers a bad RSA signature with 500 UNKNOWN (its bug); layerlab with 400
    "tampered-rsa": (lambda t: sign(payload(t), RSA_KEY, tamper=True), "MANIFEST_UNVERIFIED",
                     "UNKNOWN"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_manifest_whose_signature_does_not_hold_is_refused(registry, url, case):
    build, ours, distributions = CASES[case]
    expected = ours if registry[0] == "layerlab" else distributions
    r = put(url, case, build(case))
    assert r.status_code == (500 if expected == "UNKNOWN" else 400)
    assert r.json()["errors"][0]["code"] == expected
    assert requests.get(f"{url}/v2/s1/app/manifests/{case}", headers={"Accept": S1}).status_code == 404
