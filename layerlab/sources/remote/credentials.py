"""Registry credentials: explicit, from Docker's ``config.json``, or from credential helpers.

Lookup order for a registry host (as ``docker login`` stores them):

1. ``credHelpers[host]`` -> the ``docker-credential-<helper>`` program;
2. ``credsStore`` -> the ``docker-credential-<store>`` program, for every host;
3. ``auths[host]`` -> ``auth`` (base64 ``user:password``), ``username``/``password``, or
   ``identitytoken`` (an OAuth2 refresh token).

The config file is ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json`` unless a
directory is given. Docker Hub's credentials live under ``https://index.docker.io/v1/``.

Secrets never appear in ``repr()``, in messages or in logs.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import AuthenticationError

__all__ = ["Credentials", "docker_config_path", "load_credentials"]

_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                    "registry-1.docker.io", "https://registry-1.docker.io")
_HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    """A username and secret (password or token). ``identity_token`` is an OAuth2
    refresh token (``docker login`` with some identity providers); the secret is hidden
    from ``repr``."""

    username: str
    secret: str = field(repr=False)
    identity_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, secret=<hidden>)"

    def basic_header(self) -> str:
        """The ``Authorization`` header value for HTTP Basic."""
        raw = f"{self.username}:{self.secret}".encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")


def docker_config_path(docker_config: str | None = None) -> Path:
    """The ``config.json`` to read: in ``docker_config`` (a directory or the file itself),
    else ``$DOCKER_CONFIG``, else ``~/.docker``."""
    base = docker_config or os.environ.get("DOCKER_CONFIG") or os.path.join(
        os.path.expanduser("~"), ".docker")
    path = Path(base)
    return path if path.suffix == ".json" else path / "config.json"


def _normalise_key(key: str) -> str:
    """``https://host:port/v1/`` -> ``host:port``."""
    text = key.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    return text.split("/", 1)[0].lower()


def _keys_for(registry: str) -> list[str]:
    keys = [registry]
    if registry in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        keys = list(_DOCKER_HUB_KEYS)
    return keys


def _run_helper(helper: str, server: str, config_path: Path) -> Credentials | None:
    import subprocess

    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run([program, "get"], input=server.encode(), capture_output=True,
                              timeout=_HELPER_TIMEOUT, check=False)
    except FileNotFoundError:
        raise AuthenticationError(
            f"{config_path}: credential helper {program!r} is not installed") from None
    except subprocess.TimeoutExpired:
        raise AuthenticationError(
            f"credential helper {program!r} did not answer within {_HELPER_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        # "credentials not found in native keychain" is the helpers' way to say "none".
        if b"not found" in done.stdout.lower() or b"not found" in done.stderr.lower():
            return None
        raise AuthenticationError(
            f"credential helper {program!r} failed with exit status {done.returncode}")
    try:
        data = json.loads(done.stdout)
        username, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise AuthenticationError(f"credential helper {program!r} printed an unreadable answer") from None
    if username == "<token>":
        return Credentials("", "", identity_token=secret)
    return Credentials(username, secret)


def _from_auths_entry(entry: Any, config_path: Path, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    identity = entry.get("identitytoken") or None
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
            username, colon, secret = decoded.partition(":")
            if not colon:
                raise ValueError("no colon")
        except (ValueError, UnicodeDecodeError):
            raise AuthenticationError(f"{config_path}: auths[{key!r}].auth is not base64 user:password") from None
        return Credentials(username, secret, identity)
    if entry.get("username") is not None:
        return Credentials(str(entry["username"]), str(entry.get("password") or ""), identity)
    if identity:
        return Credentials("", "", identity)
    return None


def load_credentials(registry: str, docker_config: str | None = None) -> Credentials | None:
    """The credentials Docker would use for ``registry`` (``host[:port]``), or ``None``."""
    path = docker_config_path(docker_config)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthenticationError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        config = json.loads(text)
    except ValueError:
        raise AuthenticationError(f"{path}: not valid JSON") from None
    if not isinstance(config, dict):
        raise AuthenticationError(f"{path}: expected a JSON object")
    keys = _keys_for(registry.lower())
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for raw_key, helper in helpers.items():
            if _normalise_key(raw_key) in keys or raw_key in keys:
                return _run_helper(str(helper), raw_key, path)
    auths = config.get("auths") or {}
    matching = [k for k in auths if k in keys or _normalise_key(k) in keys] if isinstance(auths, dict) else []
    store = config.get("credsStore")
    if store:
        found = _run_helper(str(store), matching[0] if matching else keys[0], path)
        if found is not None:
            return found
    for key in matching:
        found = _from_auths_entry(auths[key], path, key)
        if found is not None:
            return found
    return None
