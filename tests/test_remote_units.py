"""The registry client's pure parts: challenges, Link, Retry-After, hosts, credentials,
error mapping and the schema1 config synthesis (no servers needed)."""

from __future__ import annotations

import base64
import email.utils
import json
import time

import pytest
from requests import Response

from layerlab import mediatypes as mt
from layerlab.digest import SCHEMA1_EMPTY_LAYER, digest_bytes
from layerlab.errors import (AuthenticationError, RegistryError, RegistryProtocolError,
                             RegistryUnavailableError)
from layerlab.manifest import parse_manifest
from layerlab.sources.remote import Credentials, RegistryClient, client_for, load_credentials
from layerlab.sources.remote.auth import parse_challenges
from layerlab.sources.remote.httputil import (error_from_response, is_loopback, parse_link_next,
                                              retry_after)
from layerlab.sources.remote.session import complete_response
from layerlab.sources.remote.image import synthesize_schema1_config


def test_parse_challenges():
    bearer, = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/ubuntu:pull,push"')
    assert bearer.scheme == "bearer"
    assert dict(bearer.params) == {"realm": "https://auth.docker.io/token",
                                   "service": "registry.docker.io",
                                   "scope": "repository:library/ubuntu:pull,push"}
    basic, = parse_challenges('Basic realm="Registry Realm"')
    assert (basic.scheme, basic.realm) == ("basic", "Registry Realm")
    both = parse_challenges('Basic realm="r1", Bearer realm="http://t/x",error="insufficient_scope"')
    assert [c.scheme for c in both] == ["basic", "bearer"]
    assert both[1].params["error"] == "insufficient_scope"
    assert parse_challenges("") == []


def test_parse_link_next():
    assert parse_link_next('</v2/_catalog?last=b&n=2>; rel="next"') == "/v2/_catalog?last=b&n=2"
    assert parse_link_next("<http://r/v2/a/tags/list?n=1&last=x>; rel=next") == "http://r/v2/a/tags/list?n=1&last=x"
    assert parse_link_next('</first>; rel="prev", </second>; rel="next"') == "/second"
    assert parse_link_next('</first>; rel="prev"') is None
    assert parse_link_next(None) is None


def test_retry_after():
    assert retry_after({"Retry-After": "0"}, 7.0) == 0.0
    assert retry_after({"Retry-After": "5"}, 7.0) == 5.0
    assert retry_after({"Retry-After": "86400"}, 7.0) == 60.0
    assert retry_after({"Retry-After": email.utils.formatdate(time.time() - 100, usegmt=True)}, 7.0) == 0.0
    assert retry_after({"Retry-After": "soon"}, 7.0) == 7.0
    assert retry_after({}, 7.0) == 7.0


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.1.2.3", True),
    ("[::1]:5000", True), ("::1", True), ("registry.example.com:5000", False), ("10.0.0.1", False),
    ("docker.io", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_client_urls_and_repr():
    assert RegistryClient("127.0.0.1:5000").base_url == "http://127.0.0.1:5000"
    assert RegistryClient("localhost:5000", plain_http=False).base_url == "https://localhost:5000"
    assert RegistryClient("docker.io").base_url == "https://registry-1.docker.io"
    assert RegistryClient("registry.example.com", plain_http=True).base_url == "http://registry.example.com"
    client = RegistryClient("registry.example.com", auth=("bob", "hunter2-secret"))
    assert repr(client) == "<RegistryClient https://registry.example.com>"
    assert client._auth is None  # no challenge yet: no auth state
    auth = client._authenticator()
    assert "hunter2" not in repr(auth) and "hunter2" not in repr(auth.credentials())
    assert repr(Credentials("bob", "hunter2-secret")) == "Credentials(username='bob', secret=<hidden>)"


def test_client_for_is_cached_per_options():
    a = client_for("r.example.com:5000", plain_http=True)
    assert client_for("r.example.com:5000", plain_http=True) is a
    assert client_for("r.example.com:5000", plain_http=True, timeout=5.0) is not a


def _config(tmp_path, data) -> str:
    (tmp_path / "config.json").write_text(json.dumps(data) if not isinstance(data, str) else data)
    return str(tmp_path)


def test_credentials_from_auths(tmp_path):
    encoded = base64.b64encode(b"bob:pa:ss").decode()
    directory = _config(tmp_path, {"auths": {
        "https://reg.example.com:5000/v1/": {"auth": encoded},
        "other.example.com": {"username": "carol", "password": "pw"},
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:tok").decode()},
        "idt.example.com": {"identitytoken": "refresh-1"},
    }})
    assert load_credentials("reg.example.com:5000", directory) == Credentials("bob", "pa:ss")
    assert load_credentials("other.example.com", directory) == Credentials("carol", "pw")
    assert load_credentials("docker.io", directory) == Credentials("hub", "tok")
    assert load_credentials("idt.example.com", directory).identity_token == "refresh-1"
    assert load_credentials("unknown.example.com", directory) is None
    assert load_credentials("reg.example.com:5000", str(tmp_path / "missing")) is None


def test_credentials_errors(tmp_path):
    with pytest.raises(AuthenticationError, match="not valid JSON"):
        load_credentials("r", _config(tmp_path, "{nope"))
    with pytest.raises(AuthenticationError, match="not base64 user:password"):
        load_credentials("r", _config(tmp_path, {"auths": {"r": {"auth": "%%%"}}}))
    with pytest.raises(AuthenticationError, match="'docker-credential-no-such-helper' is not installed"):
        load_credentials("r", _config(tmp_path, {"credHelpers": {"r": "no-such-helper"}}))


def _response(status: int, body: bytes, content_type: str, url: str = "http://r/v2/x") -> Response:
    reason = {404: "Not Found", 502: "Bad Gateway", 400: "Bad Request", 403: "Forbidden"}[status]
    return complete_response(status, body, {"Content-Type": content_type}, url, reason)


def test_error_mapping():
    body = json.dumps({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry",
                                   "detail": "sha256:abc"}]}).encode()
    error = error_from_response(_response(404, body, "application/json"), "GET")
    assert type(error) is RegistryError
    assert (error.code, error.status, error.url) == ("BLOB_UNKNOWN", 404, "http://r/v2/x")
    assert str(error) == 'GET http://r/v2/x: HTTP 404 BLOB_UNKNOWN: blob unknown to registry ("sha256:abc")'
    gateway = error_from_response(_response(502, b"<html>bad gateway</html>", "text/html"), "GET", 5)
    assert isinstance(gateway, RegistryUnavailableError)
    assert str(gateway) == "GET http://r/v2/x: HTTP 502 Bad Gateway (an HTML page) (after 5 attempts)"
    odd = error_from_response(_response(400, b"<html>?</html>", "text/html"), "PUT")
    assert isinstance(odd, RegistryProtocolError)
    denied = error_from_response(_response(403, b"", "text/plain"), "GET")
    assert isinstance(denied, AuthenticationError) and denied.code == "DENIED"


def _v1(created: str, cmd: str, **extra) -> str:
    return json.dumps({"created": created, "container_config": {"Cmd": ["/bin/sh", "-c", cmd]}, **extra})


def test_schema1_config_synthesis():
    layer_a, layer_b = digest_bytes(b"a"), digest_bytes(b"b")
    raw = json.dumps({
        "schemaVersion": 1, "name": "app", "tag": "v1", "architecture": "arm64",
        "fsLayers": [{"blobSum": str(SCHEMA1_EMPTY_LAYER)}, {"blobSum": str(layer_b)}, {"blobSum": str(layer_a)}],
        "history": [
            {"v1Compatibility": _v1("2024-01-03T00:00:00Z", "#(nop) CMD [\"run\"]", throwaway=True,
                                    architecture="arm64", os="linux",
                                    config={"Env": ["A=1"], "Cmd": ["run"], "WorkingDir": "/app"})},
            {"v1Compatibility": _v1("2024-01-02T00:00:00Z", "apt-get install x")},
            {"v1Compatibility": _v1("2024-01-01T00:00:00Z", "#(nop) ADD file:1 in /")},
        ],
    }).encode()
    manifest = parse_manifest(raw, mt.DOCKER_MANIFEST_V1)
    config, made = synthesize_schema1_config(manifest)
    assert [h.created_by for h in config.history] == [
        "/bin/sh -c #(nop) ADD file:1 in /", "/bin/sh -c apt-get install x", '/bin/sh -c #(nop) CMD ["run"]']
    assert [h.empty_layer for h in config.history] == [False, False, True]
    assert [h.created_by for h in made] == ["/bin/sh -c #(nop) ADD file:1 in /", "/bin/sh -c apt-get install x"]
    assert (config.architecture, config.os, config.env, config.cmd, config.working_dir) == (
        "arm64", "linux", ("A=1",), ("run",), "/app")
    assert config.created == "2024-01-03T00:00:00Z"
    assert config.diff_ids == ()
    assert config.digest == digest_bytes(config.raw)
    assert config.media_type == mt.DOCKER_CONFIG
