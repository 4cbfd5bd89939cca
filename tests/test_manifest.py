"""Manifest parsing (layerlab.manifest): OCI/Docker manifests, indexes, schema1 (JWS)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from layerlab import mediatypes as mt
from layerlab.digest import SCHEMA1_EMPTY_LAYER
from layerlab.errors import InvalidManifestError, UnknownMediaTypeError
from layerlab.manifest import (Descriptor, ImageManifest, ManifestIndex, Schema1Manifest,
                               parse_manifest)
from layerlab.platform import Platform


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = sha(b"config")
L1, L2 = sha(b"layer1"), sha(b"layer2")
SUBJECT = sha(b"subject")


def oci_manifest(**extra) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": CONFIG, "size": 6},
        "layers": [
            {"mediaType": mt.OCI_LAYER_GZIP, "digest": L1, "size": 100,
             "annotations": {"org.opencontainers.image.title": "one"}},
            {"mediaType": mt.OCI_LAYER_NONDIST_GZIP, "digest": L2, "size": 200,
             "urls": ["https://example.com/layer2"]},
        ],
        **extra,
    }
    return json.dumps(body, indent=2).encode()


def test_oci_manifest_fields_and_digest_of_raw_bytes():
    raw = oci_manifest(annotations={"org.opencontainers.image.created": "2024-01-01"})
    m = parse_manifest(raw)
    assert isinstance(m, ImageManifest)
    assert m.raw == raw and m.size == len(raw)
    assert m.digest == sha(raw)
    assert m.media_type == mt.OCI_MANIFEST and m.is_oci
    assert m.config == Descriptor(mt.OCI_CONFIG, CONFIG, 6)
    assert [(d.digest, d.size, d.media_type) for d in m.layers] == [
        (L1, 100, mt.OCI_LAYER_GZIP), (L2, 200, mt.OCI_LAYER_NONDIST_GZIP)]
    assert dict(m.layers[0].annotations) == {"org.opencontainers.image.title": "one"}
    assert m.layers[1].urls == ("https://example.com/layer2",)
    assert dict(m.annotations) == {"org.opencontainers.image.created": "2024-01-01"}
    assert m.subject is None and m.artifact_type is None
    assert m.descriptor() == Descriptor(mt.OCI_MANIFEST, sha(raw), len(raw))
    assert m.json()["schemaVersion"] == 2


def test_subject_and_artifact_type():
    raw = oci_manifest(artifactType="application/vnd.example.sbom+json",
                       subject={"mediaType": mt.OCI_MANIFEST, "digest": SUBJECT, "size": 321})
    m = parse_manifest(raw)
    assert m.artifact_type == "application/vnd.example.sbom+json"
    assert m.subject == Descriptor(mt.OCI_MANIFEST, SUBJECT, 321)


def test_docker_schema2_manifest():
    body = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_V2,
            "config": {"mediaType": mt.DOCKER_CONFIG, "size": 6, "digest": CONFIG},
            "layers": [{"mediaType": mt.DOCKER_LAYER_GZIP, "size": 100, "digest": L1}]}
    raw = json.dumps(body, separators=(",", ":")).encode()
    m = parse_manifest(raw)
    assert isinstance(m, ImageManifest) and not m.is_oci
    assert m.media_type == mt.DOCKER_MANIFEST_V2
    assert m.digest == sha(raw)
    assert m.layers[0].digest == L1


def index_body(media_type: str = mt.OCI_INDEX) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {"mediaType": mt.OCI_MANIFEST, "digest": L1, "size": 500,
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": mt.OCI_MANIFEST, "digest": L2, "size": 501,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8",
                          "os.features": ["x"]},
             "annotations": {"org.opencontainers.image.ref.name": "arm"}},
        ],
        "annotations": {"a": "b"},
    }


def test_oci_index_with_platforms_annotations_and_subject():
    body = index_body()
    body["subject"] = {"mediaType": mt.OCI_MANIFEST, "digest": SUBJECT, "size": 9}
    body["artifactType"] = "application/vnd.example.index"
    raw = json.dumps(body).encode()
    index = parse_manifest(raw)
    assert isinstance(index, ManifestIndex)
    assert index.media_type == mt.OCI_INDEX and index.digest == sha(raw)
    assert [d.platform for d in index.manifests] == [
        Platform("linux", "amd64"), Platform("linux", "arm64", "v8", os_features=("x",))]
    assert index.manifests[1].ref_name == "arm"
    assert index.manifests[0].ref_name is None
    assert dict(index.annotations) == {"a": "b"}
    assert index.subject == Descriptor(mt.OCI_MANIFEST, SUBJECT, 9)
    assert index.artifact_type == "application/vnd.example.index"


def test_docker_manifest_list():
    index = parse_manifest(json.dumps(index_body(mt.DOCKER_MANIFEST_LIST)).encode())
    assert isinstance(index, ManifestIndex)
    assert index.media_type == mt.DOCKER_MANIFEST_LIST


def test_missing_media_type_is_inferred_from_the_body_or_the_descriptor():
    body = index_body()
    del body["mediaType"]
    assert parse_manifest(json.dumps(body).encode()).media_type == mt.OCI_INDEX
    manifest = json.loads(oci_manifest())
    del manifest["mediaType"]
    raw = json.dumps(manifest).encode()
    assert parse_manifest(raw).media_type == mt.OCI_MANIFEST
    assert parse_manifest(raw, mt.DOCKER_MANIFEST_V2).media_type == mt.DOCKER_MANIFEST_V2


def test_descriptor_round_trip():
    data = {"mediaType": mt.OCI_MANIFEST, "digest": L1, "size": 5, "urls": ["u"],
            "annotations": {"k": "v"}, "platform": {"architecture": "arm", "os": "linux",
                                                    "variant": "v7"},
            "artifactType": "x/y"}
    d = Descriptor.from_json(data)
    assert d.to_json() == data


@pytest.mark.parametrize("raw, error, message", [
    (b"{not json", InvalidManifestError, "invalid JSON"),
    (b"\xff\xfe", InvalidManifestError, "invalid JSON"),
    (b"[1, 2]", InvalidManifestError, "expected a JSON object"),
    (b'{"schemaVersion": 3}', InvalidManifestError, "unsupported schemaVersion 3"),
    (b'{"mediaType": "application/vnd.oci.image.manifest.v1+json"}', InvalidManifestError,
     "unsupported schemaVersion None"),
    (b'{"schemaVersion": 2, "mediaType": "application/vnd.example.thing"}',
     UnknownMediaTypeError, "application/vnd.example.thing"),
    (b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
     b' "layers": []}', InvalidManifestError, "without config"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                 "config": {"mediaType": mt.OCI_CONFIG, "digest": CONFIG, "size": 1},
                 "layers": {}}).encode(), InvalidManifestError, "'layers' must be a list"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                 "config": {"mediaType": mt.OCI_CONFIG, "digest": "sha256:abc", "size": 1},
                 "layers": []}).encode(), InvalidManifestError, "config"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                 "config": {"mediaType": mt.OCI_CONFIG, "digest": CONFIG, "size": -1},
                 "layers": []}).encode(), InvalidManifestError, "negative size"),
    (json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                 "config": {"mediaType": mt.OCI_CONFIG, "digest": CONFIG, "size": 1},
                 "layers": [{"digest": L1}]}).encode(), InvalidManifestError,
     "needs mediaType and size"),
])
def test_bad_manifests(raw, error, message):
    with pytest.raises(error, match=message) as info:
        parse_manifest(raw, what="registry.test/app:v1")
    assert str(info.value).startswith("registry.test/app:v1")


# ----------------------------------------------------------------------- schema1
def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def schema1_payload() -> bytes:
    history = [
        {"v1Compatibility": json.dumps({"id": "top", "parent": "mid",
                                        "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) CMD [\"sh\"]"]},
                                        "throwaway": True})},
        {"v1Compatibility": json.dumps({"id": "mid", "parent": "base",
                                        "container_config": {"Cmd": ["/bin/sh", "-c", "apk add curl"]}})},
        {"v1Compatibility": json.dumps({"id": "base",
                                        "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) ADD file:x in /"]}})},
    ]
    body = {"schemaVersion": 1, "name": "library/app", "tag": "v1", "architecture": "amd64",
            "fsLayers": [{"blobSum": SCHEMA1_EMPTY_LAYER}, {"blobSum": L2}, {"blobSum": L1}],
            "history": history}
    return json.dumps(body, indent=3).encode()


def sign(payload: bytes, signature: str = "c2lnbmF0dXJl") -> bytes:
    """A JWS-signed schema1 manifest as libtrust lays it out: the payload up to its final
    closing brace, a ``signatures`` member, then the tail. The signature value is not a
    real signature (parsing does not check it)."""
    format_length = payload.rindex(b"}")
    while payload[format_length - 1:format_length] in (b"\n", b" "):
        format_length -= 1
    tail = payload[format_length:]
    protected = {"formatLength": format_length, "formatTail": b64url(tail),
                 "time": "2024-01-01T00:00:00Z"}
    signatures = [{"header": {"jwk": {"crv": "P-256", "kty": "EC", "x": "x", "y": "y"},
                              "alg": "ES256"},
                   "signature": signature, "protected": b64url(json.dumps(protected).encode())}]
    return (payload[:format_length] + b',\n   "signatures": '
            + json.dumps(signatures, indent=3).encode() + tail)


def test_schema1_unsigned_digest_is_of_the_body():
    raw = schema1_payload()
    m = parse_manifest(raw)
    assert isinstance(m, Schema1Manifest)
    assert m.media_type == mt.DOCKER_MANIFEST_V1 and not m.signed
    assert m.digest == sha(raw)
    assert (m.name, m.tag, m.architecture) == ("library/app", "v1", "amd64")
    assert m.fs_layers == (SCHEMA1_EMPTY_LAYER, L2, L1)


def test_schema1_signed_digest_is_of_the_jws_payload():
    payload = schema1_payload()
    signed = sign(payload)
    assert signed != payload and b'"signatures"' in signed
    m = parse_manifest(signed)
    assert isinstance(m, Schema1Manifest)
    assert m.signed and m.media_type == mt.DOCKER_MANIFEST_V1_SIGNED
    assert m.payload == payload
    assert m.digest == sha(payload)
    assert m.raw == signed and m.digest != sha(signed)
    # a registry re-signing on every GET changes the bytes, not the digest
    assert parse_manifest(sign(payload, "b3RoZXI")).digest == sha(payload)


def test_schema1_layers_oldest_first():
    m = parse_manifest(sign(schema1_payload()))
    layers = m.layers_oldest_first()
    assert [layer.blob_sum for layer in layers] == [L1, L2, SCHEMA1_EMPTY_LAYER]
    assert [layer.throwaway for layer in layers] == [False, False, True]
    assert layers[1].created_by == "/bin/sh -c apk add curl"


def test_schema1_bad_protected_header():
    payload = schema1_payload()
    body = json.loads(payload)
    body["signatures"] = [{"protected": b64url(b'{"formatTail": "fQ"}'), "signature": "x"}]
    with pytest.raises(InvalidManifestError, match="protected header"):
        parse_manifest(json.dumps(body).encode())
    body["signatures"] = [{"protected": b64url(b'{"formatLength": 999999, "formatTail": "fQ"}'),
                           "signature": "x"}]
    with pytest.raises(InvalidManifestError, match="formatLength"):
        parse_manifest(json.dumps(body).encode())


def test_schema1_inconsistent_lengths():
    body = json.loads(schema1_payload())
    body["history"].pop()
    with pytest.raises(InvalidManifestError, match="lengths differ"):
        parse_manifest(json.dumps(body).encode())
    body["fsLayers"] = [{"blobSum": "sha256:nothex"}]
    with pytest.raises(InvalidManifestError, match="fsLayers"):
        parse_manifest(json.dumps(body).encode())
