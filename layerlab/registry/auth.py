"""Basic authentication from an htpasswd file (bcrypt entries, as Distribution uses).

Permissions are ``pull`` or ``push`` (push includes pull).  Without a permissions map,
every user of the file may push; anonymous requests get nothing.  The key ``"*"`` in the
map gives anonymous requests a permission (``{"*": "pull"}`` for public reads).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from pathlib import Path
from typing import Mapping

from .codes import APIError

LEVELS = {"none": 0, "pull": 1, "push": 2}
REALM = "layerlab"


def load_htpasswd(path: str | Path) -> dict[str, bytes]:
    """``user:$2y$...`` lines -> {user: bcrypt hash}; only bcrypt entries are accepted."""
    users: dict[str, bytes] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith(("$2y$", "$2b$", "$2a$")):
            raise ValueError(f"{path}:{n}: not a bcrypt htpasswd entry (use htpasswd -B)")
        users[user] = hashed.encode()
    return users


class BasicAuth:
    """Checks ``Authorization: Basic`` headers; caches successful bcrypt checks."""

    def __init__(self, htpasswd: str | Path, permissions: Mapping[str, str] | None = None) -> None:
        self.users = load_htpasswd(htpasswd)
        for who, level in (permissions or {}).items():
            if level not in LEVELS:
                raise ValueError(f"permission for {who!r} must be pull or push, not {level!r}")
        self.permissions = dict(permissions) if permissions is not None else None
        self._verified: dict[str, bytes] = {}

    def level(self, user: str | None) -> int:
        if self.permissions is None:
            return LEVELS["push"] if user is not None else 0
        return LEVELS[self.permissions.get(user if user is not None else "*", "none")]

    def _check_password(self, user: str, password: str) -> bool:
        import bcrypt

        stored = self.users.get(user)
        if stored is None:
            return False
        token = hashlib.sha256(password.encode()).digest()
        if hmac.compare_digest(self._verified.get(user, b""), token):
            return True
        candidate = stored.replace(b"$2y$", b"$2b$", 1)
        if bcrypt.checkpw(password.encode(), candidate):
            self._verified[user] = token
            return True
        return False

    def authenticate(self, header: str | None) -> str | None:
        """The user of a valid header, None when no header; raise UNAUTHORIZED if invalid."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise self.challenge("only Basic authentication is supported")
        try:
            user, sep, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise self.challenge("malformed Basic credentials") from None
        if not sep or not self._check_password(user, password):
            raise self.challenge("invalid username or password")
        return user

    def authorize(self, user: str | None, needed: str, scope: str) -> None:
        """Raise UNAUTHORIZED (no user) or DENIED unless ``user`` has ``needed`` access."""
        if self.level(user) >= LEVELS[needed]:
            return
        if user is None:
            raise self.challenge("authentication required")
        raise APIError("DENIED", f"user {user!r} may not {needed} {scope}",
                       detail={"user": user, "access": needed, "scope": scope})

    @staticmethod
    def challenge(message: str) -> APIError:
        return APIError("UNAUTHORIZED", message,
                        headers={"WWW-Authenticate": f'Basic realm="{REALM}"'})
