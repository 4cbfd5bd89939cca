"""Registry authentication: HTTP Basic (htpasswd) on both registries, the Bearer token
flow through a token-demanding front proxy, and credentials from Docker's config."""

from __future__ import annotations

import base64
import json
import os
import stat
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import start_distribution
from layerlab.errors import AuthenticationError, RegistryProtocolError, RegistryUnavailableError
from layerlab.registry import LocalRegistry
from layerlab.sources.remote import RegistryClient, load_credentials, open_remote_image
from layerlab.sources.remote import auth as auth_module
from layerlab.sources.remote.synthetic import push_image, synthetic_image, synthetic_layer
from remote_servers import FrontProxy, TokenServer, self_signed_certificate, write_htpasswd

USER, PASSWORD = "alice", "s3cret-pw"
IMAGE = synthetic_image([synthetic_layer({"etc/motd": b"hello\n"})])


@pytest.fixture(scope="module")
def backend():
    with LocalRegistry(memory=True) as registry:
        with RegistryClient(registry.host) as client:
            push_image(client, "secure/app", "v1", IMAGE)
            push_image(client, "other/app", "v1", IMAGE)
        yield registry


@pytest.fixture()
def tokens():
    with TokenServer(users={USER: PASSWORD}) as server:
        yield server


@pytest.fixture()
def front(backend, tokens):
    with FrontProxy(backend.host, tokens) as proxy:
        yield proxy


def _scopes(seen) -> list[str]:
    return parse_qs(urlsplit(seen.path).query).get("scope", [])


# --- Bearer --------------------------------------------------------------------------------------
def test_anonymous_bearer_pull_caches_one_token_per_repository(front, tokens):
    with RegistryClient(front.host) as client:
        manifest = client.get_manifest("secure/app", "v1")
        assert manifest.digest == IMAGE.digest
        assert client.get_blob_bytes("secure/app", IMAGE.config_digest) == IMAGE.config
        assert client.list_tags("secure/app") == ["v1"]
        assert client.head_blob("secure/app", IMAGE.layers[0][0]) == len(IMAGE.layers[0][1])
        assert client.token_fetches == 1
        assert [_scopes(s) for s in tokens.log] == [["repository:secure/app:pull"]]
        assert parse_qs(urlsplit(tokens.log[0].path).query)["service"] == ["test-registry"]
        assert tokens.log[0].authorization is None
        # one challenge, then every request carries the token up front
        assert sum(1 for s in front.log if s.authorization is None) == 1
        client.get_manifest("other/app", "v1")
        assert client.token_fetches == 2
        assert _scopes(tokens.log[1]) == ["repository:other/app:pull"]


def test_push_needs_credentials(front, tokens):
    with RegistryClient(front.host) as anonymous:
        with pytest.raises(AuthenticationError) as err:
            push_image(anonymous, "secure/new", "v1", IMAGE)
        assert err.value.status == 401 and err.value.code == "DENIED"
    with RegistryClient(front.host, auth=(USER, PASSWORD)) as client:
        assert push_image(client, "secure/new", "v1", IMAGE) == IMAGE.digest
        login = [s for s in tokens.log if s.authorization]
        assert login and all(s.authorization == "Basic " + base64.b64encode(
            f"{USER}:{PASSWORD}".encode()).decode() for s in login)
        assert parse_qs(urlsplit(login[0].path).query)["account"] == [USER]
        assert "repository:secure/new:pull,push" in {sc for s in login for sc in _scopes(s)}
        assert PASSWORD not in repr(client)


def test_catalog_scope(front):
    with RegistryClient(front.host, auth=(USER, PASSWORD)) as client:
        assert {"secure/app", "other/app"} <= set(client.catalog())


def test_revoked_token_is_renewed(front, tokens):
    with RegistryClient(front.host) as client:
        client.get_manifest("secure/app", "v1")
        tokens.revoke_all()
        assert client.get_manifest("secure/app", "v1").digest == IMAGE.digest
        assert client.token_fetches == 2


def test_expired_token_is_renewed_before_use(front, tokens, monkeypatch):
    now = [1000.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return now[0]

    monkeypatch.setattr(auth_module, "time", Clock)
    tokens.expires_in = 60
    with RegistryClient(front.host) as client:
        client.get_manifest("secure/app", "v1")
        now[0] += 45  # within lifetime minus the renewal margin (60 - 10)
        client.get_manifest("secure/app", "v1")
        assert client.token_fetches == 1
        now[0] += 10  # past it: renewed up front, no 401 round trip
        before = sum(1 for s in front.log if s.authorization is None)
        client.get_manifest("secure/app", "v1")
        assert client.token_fetches == 2
        assert sum(1 for s in front.log if s.authorization is None) == before


def test_token_endpoint_failures_are_clear(front, tokens):
    tokens.fail = (500, b"internal", "text/plain")
    with RegistryClient(front.host, retries=2, backoff=0.001) as client:
        with pytest.raises(RegistryUnavailableError) as err:
            client.get_manifest("secure/app", "v1")
    assert err.value.status == 500 and err.value.url == tokens.realm
    assert str(err.value) == f"token endpoint {tokens.realm}: HTTP 500 Internal Server Error"
    assert sum(1 for s in tokens.log) == 3
    tokens.fail = (200, b"<html>login</html>", "text/html")
    with RegistryClient(front.host, retries=0) as client:
        with pytest.raises(RegistryProtocolError, match=f"token endpoint {tokens.realm} answered text/html"):
            client.get_manifest("secure/app", "v1")
    tokens.fail = None
    with RegistryClient(front.host, auth=(USER, "wrong-password")) as client:
        with pytest.raises(AuthenticationError) as err:
            client.get_manifest("secure/app", "v1")
    assert "refused the credentials" in str(err.value) and "wrong-password" not in str(err.value)
    assert err.value.url == tokens.realm


def test_identity_token_from_docker_config(front, tokens, tmp_path):
    tokens.refresh_tokens["refresh-abc"] = USER
    (tmp_path / "config.json").write_text(json.dumps(
        {"auths": {front.host: {"auth": "", "identitytoken": "refresh-abc"}}}))
    with RegistryClient(front.host, docker_config=str(tmp_path)) as client:
        assert push_image(client, "secure/idt", "v1", IMAGE) == IMAGE.digest
    assert {s.method for s in tokens.log} == {"POST"}


# --- Basic (htpasswd) on both registries ------------------------------------------------------------
@pytest.fixture(scope="module", params=["local", "distribution"])
def basic_registry(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"htpasswd-{request.param}")
    htpasswd = write_htpasswd(tmp / "htpasswd", {USER: PASSWORD})
    if request.param == "local":
        with LocalRegistry(memory=True, htpasswd=htpasswd) as registry:
            yield registry.host
        return
    proc, host = start_distribution(
        tmp, f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {htpasswd}\n")
    yield host
    proc.terminate()
    proc.wait(timeout=10)


def test_basic_auth_with_htpasswd(basic_registry):
    with RegistryClient(basic_registry, docker_config="/nonexistent") as anonymous:
        with pytest.raises(AuthenticationError) as err:
            anonymous.get_manifest("basic/app", "v1")
    assert err.value.status == 401 and err.value.code == "UNAUTHORIZED"
    assert str(err.value) == (f"http://{basic_registry}/v2/basic/app/manifests/v1: the registry "
                              "requires a username and password (HTTP Basic); pass "
                              "auth=(user, password), --username, or run docker login")
    with RegistryClient(basic_registry, auth=(USER, "nope")) as wrong:
        with pytest.raises(AuthenticationError) as err:
            wrong.list_tags("basic/app")
    assert err.value.status == 401 and "nope" not in str(err.value)
    with RegistryClient(basic_registry, auth=(USER, PASSWORD)) as client:
        assert push_image(client, "basic/app", "v1", IMAGE) == IMAGE.digest
        assert client.list_tags("basic/app") == ["v1"]
        assert PASSWORD not in repr(client) and PASSWORD not in repr(client._auth.credentials())
    image = open_remote_image(f"{basic_registry}/basic/app:v1", auth=(USER, PASSWORD))
    assert image.digest == IMAGE.digest


def _helper(bin_dir, name: str, user: str, secret: str) -> None:
    script = bin_dir / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\nread server\n"
                      f"printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$server\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_credentials_from_docker_config(basic_registry, tmp_path, monkeypatch):
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config_dir = tmp_path / "auths"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"auths": {f"https://{basic_registry}/v1/": {"auth": encoded}}}))
    with RegistryClient(basic_registry, docker_config=str(config_dir)) as client:
        assert client.list_tags("basic/app") == ["v1"]
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    with RegistryClient(basic_registry) as client:
        assert client.list_tags("basic/app") == ["v1"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _helper(bin_dir, "lltest", USER, PASSWORD)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "config.json").write_text(json.dumps({"credHelpers": {basic_registry: "lltest"}}))
    assert load_credentials(basic_registry, str(helpers)).username == USER
    with RegistryClient(basic_registry, docker_config=str(helpers)) as client:
        assert client.list_tags("basic/app") == ["v1"]
    store = tmp_path / "store"
    store.mkdir()
    (store / "config.json").write_text(json.dumps({"credsStore": "lltest", "auths": {basic_registry: {}}}))
    with RegistryClient(basic_registry, docker_config=str(store)) as client:
        assert client.list_tags("basic/app") == ["v1"]


# --- which token realms get the user's credentials (Docker's rules) -------------------------------
def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_credentials_reach_a_loopback_http_realm_of_a_plain_http_registry(front, tokens):
    with RegistryClient(front.host, auth=(USER, PASSWORD)) as client:
        assert client.get_manifest("secure/app", "v1").digest == IMAGE.digest
    assert [s.authorization for s in tokens.log] == [_basic(USER, PASSWORD)]
    assert parse_qs(urlsplit(tokens.log[0].path).query)["account"] == [USER]


def test_an_https_registry_never_sends_credentials_to_an_http_realm(backend, tokens, tmp_path):
    with FrontProxy(backend.host, tokens, tls=self_signed_certificate(tmp_path)) as tls_front:
        with RegistryClient(tls_front.host, plain_http=False, insecure=True,
                            auth=(USER, PASSWORD)) as client:
            assert client.get_manifest("secure/app", "v1").digest == IMAGE.digest  # anonymous pull
    assert len(tokens.log) == 1
    assert tokens.log[0].authorization is None
    assert "account" not in parse_qs(urlsplit(tokens.log[0].path).query)


@pytest.mark.parametrize("realm, plain_http, insecure, sent", [
    ("https://auth.example.com/token", False, False, True),
    ("https://auth.example.com/token", True, False, True),
    ("http://127.0.0.1:5001/token", True, False, True),
    ("http://auth.example.com/token", True, True, True),
    ("http://auth.example.com/token", True, False, False),
    ("http://127.0.0.1:5001/token", False, True, False),
    ("http://auth.example.com/token", False, False, False),
])
def test_the_credential_rule(realm, plain_http, insecure, sent):
    from layerlab.sources.remote.httputil import may_send_credentials

    assert may_send_credentials(realm, plain_http, insecure) is sent
