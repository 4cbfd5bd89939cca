"""Answering a registry's ``WWW-Authenticate`` challenge: HTTP Basic and Bearer tokens.

The Bearer flow is Distribution's token authentication (what Docker Hub uses): a
``401`` names a ``realm`` (the token endpoint), a ``service`` and the ``scope`` needed
(``repository:NAME:pull,push``, ``registry:catalog:*``). The client asks the realm for a
token - anonymously, with HTTP Basic credentials, or with an OAuth2 refresh token
(``identitytoken``) - and retries with ``Authorization: Bearer <token>``.

Tokens are cached per (realm, service, scopes) until shortly before they expire
(``expires_in``, 60 s when absent, as the spec says) and renewed when a registry
rejects one. Once a registry has challenged, later requests authenticate up front, so
a repository's first request costs one token fetch and no extra 401 round trip.
Concurrent requests needing the same token wait for one fetch.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

from ...errors import (AuthenticationError, RegistryError, RegistryProtocolError,
                       RegistryUnavailableError)
from .credentials import Credentials
from .httputil import is_retryable_status

if TYPE_CHECKING:  # pragma: no cover
    from requests import Response

log = logging.getLogger(__name__)

__all__ = ["Challenge", "parse_challenges", "Authenticator"]

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)')
_RENEW_MARGIN = 10.0


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: ``scheme`` (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse ``Bearer realm="...",service="...",scope="..."`` (and ``Basic realm=...``);
    several challenges in one header are split at each new scheme."""
    challenges: list[Challenge] = []
    rest = header.strip()
    while rest:
        match = re.match(r"([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)", rest)
        if not match:
            break
        scheme = match.group(1).lower()
        rest = rest[match.end():]
        params: dict[str, str] = {}
        while rest:
            param = _PARAM_RE.match(rest)
            if not param:
                break
            value = param.group(2)
            value = re.sub(r"\\(.)", r"\1", value) if value is not None else param.group(3)
            params[param.group(1).lower()] = value
            rest = rest[param.end():]
        challenges.append(Challenge(scheme, params))
        rest = rest.lstrip(", ")
    return challenges


@dataclass
class _Token:
    value: str
    expires_at: float


Fetch = Callable[..., "Response"]


class Authenticator:
    """The auth state of one registry client: the challenge seen, credentials, tokens.

    ``fetch(method, url, **kwargs)`` sends a request with retries but without auth
    (used for the token endpoint); ``credentials()`` loads credentials lazily;
    ``realm_trusted(realm)`` says whether the credentials may go to a token realm.
    """

    def __init__(self, fetch: Fetch, credentials: Callable[[], Credentials | None],
                 realm_trusted: Callable[[str], bool] = lambda realm: True) -> None:
        self._fetch = fetch
        self._realm_trusted = realm_trusted
        self._load_credentials = credentials
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str, tuple[str, ...]], _Token] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, str, tuple[str, ...]], threading.Lock] = {}
        self.token_fetches = 0  #: how many tokens were fetched (for tests and stats)

    def __repr__(self) -> str:
        scheme = self._challenge.scheme if self._challenge else "none"
        return f"<Authenticator scheme={scheme} tokens={len(self._tokens)}>"

    # --- credentials --------------------------------------------------------------------
    def credentials(self) -> Credentials | None:
        with self._lock:
            if not self._credentials_loaded:
                self._credentials = self._load_credentials()
                self._credentials_loaded = True
            return self._credentials

    # --- the header for a request -------------------------------------------------------
    def header(self, scopes: tuple[str, ...]) -> str | None:
        """The ``Authorization`` value to send up front, or ``None`` before any challenge."""
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self.credentials()
            return creds.basic_header() if creds and not creds.identity_token else None
        if challenge.scheme == "bearer":
            return "Bearer " + self._token(challenge, scopes, renew=False)
        return None

    def respond(self, method: str, url: str, headers: Mapping[str, str],
                scopes: tuple[str, ...], sent: str | None) -> str:
        """The ``Authorization`` value answering a 401 to ``method url`` whose response
        had ``headers``; raises :class:`AuthenticationError` when there is nothing
        (more) to try."""
        header = headers.get("WWW-Authenticate", "")
        challenges = parse_challenges(header)
        usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
        if not usable:
            raise AuthenticationError(
                f"{method} {url}: 401 Unauthorized without a usable "
                f"WWW-Authenticate challenge ({header[:80]!r})", code="UNAUTHORIZED",
                status=401, url=url)
        challenge = next((c for c in usable if c.scheme == "bearer"), usable[0])
        self._challenge = challenge
        if challenge.scheme == "basic":
            creds = self.credentials()
            if creds is None or creds.identity_token:
                raise AuthenticationError(
                    f"{url}: the registry requires a username and password (HTTP Basic); "
                    "pass auth=(user, password), --username, or run docker login",
                    code="UNAUTHORIZED", status=401, url=url)
            value = creds.basic_header()
            if sent == value:
                raise AuthenticationError(f"{url}: the registry refused the credentials (HTTP Basic)",
                                          code="UNAUTHORIZED", status=401, url=url)
            return value
        if challenge.params.get("error") == "insufficient_scope" and sent is not None:
            raise AuthenticationError(
                f"{url}: access denied, the token lacks scope {challenge.params.get('scope', '?')}",
                code="DENIED", status=401, url=url)
        extra = tuple(s for s in challenge.params.get("scope", "").split(" ") if s)
        wanted = tuple(dict.fromkeys(scopes + extra))
        token = self._token(challenge, wanted, renew=sent is not None, stale=sent)
        return "Bearer " + token

    def refusal(self, method: str, url: str, headers: Mapping[str, str],
                sent: str | None) -> AuthenticationError | None:
        """The error for a 401 that answered an authenticated request, naming why."""
        if not sent:
            return None
        challenges = parse_challenges(headers.get("WWW-Authenticate", ""))
        challenge = next((c for c in challenges if c.scheme in ("bearer", "basic")), None)
        if challenge is None:
            return None
        who = "anonymous access" if self.credentials() is None else "these credentials"
        if challenge.params.get("error") == "insufficient_scope":
            scope = challenge.params.get("scope", "?")
            return AuthenticationError(
                f"{method} {url}: access denied, the token for {who} lacks scope {scope}",
                code="DENIED", status=401, url=url)
        if sent.startswith("Basic "):
            return AuthenticationError(f"{method} {url}: the registry refused the credentials "
                                       "(HTTP Basic)", code="UNAUTHORIZED", status=401, url=url)
        return AuthenticationError(f"{method} {url}: the registry refused the token issued "
                                   f"for {who}", code="UNAUTHORIZED", status=401, url=url)

    # --- tokens --------------------------------------------------------------------------
    def _key_lock(self, key: tuple[str, str, tuple[str, ...]]) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _token(self, challenge: Challenge, scopes: tuple[str, ...], renew: bool,
               stale: str | None = None) -> str:
        key = (challenge.realm, challenge.params.get("service", ""), scopes)
        with self._key_lock(key):
            cached = self._tokens.get(key)
            if cached is not None and time.monotonic() < cached.expires_at:
                if not (renew and stale == "Bearer " + cached.value):
                    return cached.value
            token = self._fetch_token(challenge, scopes)
            self._tokens[key] = token
            return token.value

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> _Token:
        realm = challenge.realm
        if not realm.startswith(("http://", "https://")):
            raise RegistryProtocolError(f"Bearer challenge with an unusable realm {realm!r}",
                                        url=realm)
        service = challenge.params.get("service")
        creds = self.credentials()
        if creds is not None and not self._realm_trusted(realm):
            log.warning("not sending credentials to the token realm %s over plain http; "
                        "asking for an anonymous token", realm)
            creds = None
        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in scopes)
        who = "anonymous access"
        if creds is not None and creds.identity_token:
            who = "the identity token"
            form = params + [("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                             ("client_id", "layerlab")]
            response = self._fetch("POST", realm, data=form)
        else:
            headers = {}
            if creds is not None:
                who = "the credentials"
                params.append(("account", creds.username))
                headers["Authorization"] = creds.basic_header()
            response = self._fetch("GET", realm, params=params, headers=headers)
        url = response.url.split("?", 1)[0]
        started = time.monotonic()
        with response:
            if response.status_code in (401, 403):
                raise AuthenticationError(
                    f"token endpoint {url} refused {who} for scope {' '.join(scopes) or '(none)'} "
                    f"(HTTP {response.status_code})", code="UNAUTHORIZED" if response.status_code == 401 else "DENIED",
                    status=response.status_code, url=url)
            if response.status_code != 200:
                kind = (RegistryUnavailableError if is_retryable_status(response.status_code)
                        else RegistryError)
                raise kind(f"token endpoint {url}: HTTP {response.status_code} {response.reason}",
                           status=response.status_code, url=url)
            try:
                data = response.json()
            except ValueError:
                kind = response.headers.get("Content-Type", "?")
                raise RegistryProtocolError(f"token endpoint {url} answered {kind}, not a JSON token",
                                            status=200, url=url) from None
        value = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise RegistryProtocolError(f"token endpoint {url} answered JSON without a token",
                                        status=200, url=url)
        try:
            lifetime = float(data.get("expires_in") or 60)
        except (TypeError, ValueError):
            lifetime = 60.0
        margin = min(_RENEW_MARGIN, lifetime / 2)
        with self._lock:
            self.token_fetches += 1
        return _Token(value, started + lifetime - margin)
