"""The registry client: one registry host, the OCI distribution API as methods.

Built on :class:`~.transport.Transport` (session, auth, retries, error mapping): every
method raises a :class:`~layerlab.errors.RegistryError` carrying the registry's error
``code``, the HTTP ``status`` and the ``url`` when the registry refuses or fails.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, BinaryIO

from ...blobio import VerifyingReader
from ...digest import Digest, digest_bytes
from ...errors import RegistryProtocolError
from ...manifest import Descriptor, Manifest, parse_manifest
from ...mediatypes import MANIFEST_ACCEPT, SCHEMA1_MANIFESTS
from .httputil import add_query, describe_body, join_url, parse_link_next
from .transport import Transport
from .upload import BlobUpload

if TYPE_CHECKING:  # pragma: no cover
    from requests import Response

__all__ = ["RegistryClient", "BlobUpload", "MAX_MANIFEST_SIZE", "MAX_PAGES"]

MAX_MANIFEST_SIZE = 8 << 20  #: larger manifests are refused (Distribution's limit is 4 MiB)
MAX_PAGES = 10_000  #: a listing longer than this many pages is an error


class RegistryClient(Transport):
    """One registry host; pooled keep-alive connections; auth (Basic/Bearer, token cache
    per scope) and bounded retries with exponential backoff (connection errors,
    429 honouring ``Retry-After``, 5xx).

    ``RegistryClient(registry, *, plain_http=None, insecure=False, auth=None,
    docker_config=None, timeout=30.0, retries=4, pool_size=32, user_agent=..., backoff=0.25,
    deadline=60.0, min_blob_rate=1024.0)``

    ``plain_http`` defaults to ``True`` for ``localhost``, ``127.0.0.0/8`` and ``::1`` (as
    Docker does) and ``False`` otherwise; ``insecure`` skips TLS verification and, unless
    ``plain_http`` is given, falls back to plain HTTP when TLS fails. ``auth`` is a
    ``(username, password)`` pair; without it credentials come from Docker's
    ``config.json`` (``docker_config`` directory, ``$DOCKER_CONFIG`` or ``~/.docker``), else
    from ``~/.netrc``, when the registry asks. ``timeout`` (seconds) applies to connecting
    and to every read; a manifest, config, token or listing must arrive whole within
    ``deadline`` seconds; a blob body must keep up at least ``min_blob_rate`` bytes/s over
    each ``timeout`` window; ``retries`` bounds the retries of one request, waiting ``backoff * 2**n`` seconds
    (or what ``Retry-After`` says, at most 60 s). Use it as a context manager or call
    :meth:`close`.
    """

    max_pages = MAX_PAGES

    # --- base ----------------------------------------------------------------------------------
    def ping(self) -> None:
        """Check that this is a v2 registry we can talk to (``GET /v2/``, authenticating
        if challenged)."""
        response = self.request("GET", "/v2/", expected=(200, 404))
        with response:
            if response.status_code == 404:
                raise RegistryProtocolError(f"GET {response.url}: 404, not a v2 registry",
                                            status=404, url=response.url)
            if "html" in response.headers.get("Content-Type", "").lower():
                raise RegistryProtocolError(
                    f"GET {response.url}: answered {describe_body(response.headers)}, not a v2 registry",
                    status=response.status_code, url=response.url)

    # --- manifests -----------------------------------------------------------------------------
    def get_manifest(self, repository: str, reference: str, accept: str = MANIFEST_ACCEPT) -> Manifest:
        """Fetch and parse a manifest, verified.

        The digest of the body is checked against ``Docker-Content-Digest`` and, when
        ``reference`` is a digest, against it. For schema1 the identifying digest is
        that of the JWS *payload* (the body without ``signatures``): a registry may
        re-sign a schema1 manifest on every request, so the signed bytes differ from
        one GET to the next while the payload, and Distribution's digest, do not.
        (A registry that names a schema1 manifest by the digest of its signed body is
        accepted too.) Raises :class:`RegistryProtocolError` on any mismatch or an HTML
        answer, :class:`~layerlab.errors.ManifestError` on an unreadable or unknown kind.
        """
        path = f"/v2/{repository}/manifests/{reference}"
        fetched = self._get_limited(path, repository, MAX_MANIFEST_SIZE, "manifest",
                                    headers={"Accept": accept})
        url, raw = fetched.url, fetched.body
        content_type = fetched.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if "html" in content_type.lower() or raw.lstrip()[:1] == b"<":
            raise RegistryProtocolError(f"GET {url}: answered {describe_body(fetched.headers)}, "
                                        "not a manifest", status=fetched.status, url=url)
        manifest = parse_manifest(raw, content_type or None, what=f"manifest {url}")
        body_digest = digest_bytes(raw)
        accepted = {manifest.digest, body_digest}
        header = fetched.headers.get("Docker-Content-Digest")
        if header and header.strip() not in accepted:
            raise RegistryProtocolError(
                f"GET {url}: Docker-Content-Digest {header.strip()} does not match the "
                f"manifest's digest {manifest.digest}", status=fetched.status, url=url)
        if Digest.is_valid(reference) and reference not in accepted:
            raise RegistryProtocolError(
                f"GET {url}: asked for {reference}, got a manifest with digest {manifest.digest}",
                status=fetched.status, url=url)
        return manifest

    def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """The descriptor of a manifest (``HEAD``), or ``None`` if there is none."""
        response = self.request("HEAD", f"/v2/{repository}/manifests/{reference}",
                                repository=repository, expected=(200, 404),
                                headers={"Accept": MANIFEST_ACCEPT})
        with response:
            if response.status_code == 404:
                return None
            digest = response.headers.get("Docker-Content-Digest", "").strip()
            media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
            length = response.headers.get("Content-Length", "")
        if not Digest.is_valid(digest) or not length.isdigit() or media_type in SCHEMA1_MANIFESTS:
            manifest = self.get_manifest(repository, reference)
            return manifest.descriptor()
        return Descriptor(media_type, Digest(digest), int(length))

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> Digest:
        """Store a manifest under a tag or its digest; return its digest (checked against
        ``Docker-Content-Digest``)."""
        digest = (parse_manifest(raw, media_type).digest if media_type in SCHEMA1_MANIFESTS
                  else digest_bytes(raw))
        response = self.request("PUT", f"/v2/{repository}/manifests/{reference}",
                                repository=repository, actions="pull,push", expected=(201, 200),
                                data=raw, headers={"Content-Type": media_type})
        with response:
            returned = response.headers.get("Docker-Content-Digest", "").strip()
        if returned and returned != digest:
            raise RegistryProtocolError(
                f"PUT {response.url}: the registry answered {response.status_code} with "
                f"Docker-Content-Digest {returned}, but the manifest sent has digest {digest}",
                status=response.status_code, url=response.url)
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        self.request("DELETE", f"/v2/{repository}/manifests/{digest}", repository=repository,
                     actions="delete", expected=(202, 200)).close()

    # --- blobs ---------------------------------------------------------------------------------
    def head_blob(self, repository: str, digest: str) -> int | None:
        """The size of a blob, or ``None`` if the repository does not have it."""
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}",
                                repository=repository, expected=(200, 404))
        with response:
            if response.status_code == 404:
                return None
            length = response.headers.get("Content-Length", "")
        if not length.isdigit():
            raise RegistryProtocolError(f"HEAD {response.url}: no Content-Length for the blob",
                                        url=response.url)
        return int(length)

    def open_blob(self, repository: str, digest: str, *, verify: bool = True,
                  byte_range: tuple[int, int | None] | None = None) -> BinaryIO:
        """A stream of a blob's bytes, fetched as it is read (resuming on broken
        connections). With ``verify`` a whole-blob read checks the digest at its end;
        ``byte_range=(start, end)`` (``end`` inclusive or ``None``) reads a slice, which
        cannot be verified."""
        from .blobstream import BlobStream

        url = self.url(f"/v2/{repository}/blobs/{digest}")
        if byte_range is None:
            stream: io.RawIOBase = BlobStream(self, repository, url)
            if verify:
                stream = VerifyingReader(stream, Digest(digest), f"blob {url}")  # type: ignore[arg-type]
        else:
            start, end = byte_range
            if start < 0 or (end is not None and end < start):
                raise ValueError(f"invalid byte range {byte_range!r}")
            stream = BlobStream(self, repository, url, start, end)
        return io.BufferedReader(stream, 1 << 16)  # type: ignore[return-value]

    def get_blob_bytes(self, repository: str, digest: str, max_size: int = 16 << 20) -> bytes:
        """A small blob (a config) in memory, its digest verified."""
        fetched = self._get_limited(f"/v2/{repository}/blobs/{digest}", repository,
                                    max_size, f"blob {digest}")
        actual = digest_bytes(fetched.body, Digest(digest).algorithm)
        if actual != digest:
            raise RegistryProtocolError(f"GET {fetched.url}: blob digest mismatch, expected "
                                        f"{digest}, got {actual}", url=fetched.url)
        return fetched.body

    def _upload_of(self, response: Response, repository: str) -> BlobUpload:
        location = response.headers.get("Location")
        if not location:
            raise RegistryProtocolError(f"{response.request.method} {response.url}: 202 without Location",
                                        url=response.url)
        offset = BlobUpload.offset_from(response)
        return BlobUpload(self, repository, join_url(response.url, location), offset or 0)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> BlobUpload | None:
        """Mount a blob from another repository: ``None`` when mounted (201), else the
        upload session the registry opened instead (202)."""
        path = add_query(f"/v2/{repository}/blobs/uploads/", mount=digest, **{"from": from_repository})
        response = self.request("POST", path, repository=repository, actions="pull,push",
                                scopes=(f"repository:{from_repository}:pull",), expected=(201, 202))
        with response:
            return None if response.status_code == 201 else self._upload_of(response, repository)

    def start_upload(self, repository: str) -> BlobUpload:
        """Open an upload session (``POST /v2/<name>/blobs/uploads/``)."""
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/", repository=repository,
                                actions="pull,push", expected=(202,))
        with response:
            return self._upload_of(response, repository)

    def upload_blob(self, repository: str, digest: str, data: bytes) -> None:
        """Upload a small in-memory blob: a monolithic ``POST ?digest=``, or ``POST``
        then ``PUT`` where the registry opens a session instead (202)."""
        path = add_query(f"/v2/{repository}/blobs/uploads/", digest=digest)
        response = self.request("POST", path, repository=repository, actions="pull,push",
                                expected=(201, 202), data=data,
                                headers={"Content-Type": "application/octet-stream"})
        with response:
            if response.status_code == 201:
                returned = response.headers.get("Docker-Content-Digest", "").strip()
                if returned and returned != digest:
                    raise RegistryProtocolError(f"POST {response.url}: registry stored {returned}, "
                                                f"expected {digest}", url=response.url)
                return
            upload = self._upload_of(response, repository)
        upload.put(digest, data)

    def delete_blob(self, repository: str, digest: str) -> None:
        self.request("DELETE", f"/v2/{repository}/blobs/{digest}", repository=repository,
                     actions="delete", expected=(202, 200)).close()

    # --- listings --------------------------------------------------------------------------------
    def _paginate(self, path: str, key: str, page_size: int | None, repository: str | None,
                  scopes: tuple[str, ...] = ()) -> list[str]:
        url = self.url(add_query(path, n=str(page_size)) if page_size else path)
        seen: set[str] = set()
        items: list[str] = []
        for _ in range(self.max_pages):
            if url in seen:
                raise RegistryProtocolError(f"GET {url}: pagination loops (Link repeats a page)", url=url)
            seen.add(url)
            fetched = self._get_limited(url, repository, MAX_MANIFEST_SIZE, "listing", scopes=scopes)
            try:
                data = json.loads(fetched.body)
            except (ValueError, UnicodeDecodeError):
                raise RegistryProtocolError(f"GET {fetched.url}: answered {describe_body(fetched.headers)}, "
                                            "not a JSON listing", url=fetched.url) from None
            values = data.get(key) if isinstance(data, dict) else "?"
            if values is None:
                values = []
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise RegistryProtocolError(f"GET {fetched.url}: '{key}' is not a list of strings",
                                            url=fetched.url)
            items.extend(values)
            following = parse_link_next(fetched.headers.get("Link"))
            if not following:
                return items
            url = join_url(fetched.url, following)
        raise RegistryProtocolError(f"GET {self.url(path)}: more than {self.max_pages} pages, giving up",
                                    url=self.url(path))

    def list_tags(self, repository: str, page_size: int | None = None) -> list[str]:
        """Every tag of a repository, following ``Link`` pagination."""
        return self._paginate(f"/v2/{repository}/tags/list", "tags", page_size, repository)

    def catalog(self, page_size: int | None = None) -> list[str]:
        """Every repository of the registry (``/v2/_catalog``), following ``Link``."""
        return self._paginate("/v2/_catalog", "repositories", page_size, None,
                              scopes=("registry:catalog:*",))
