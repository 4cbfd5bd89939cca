"""A blob upload session: ``PATCH`` chunks, ``GET`` its status, ``PUT`` to finish."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, BinaryIO, Iterable

from ...digest import Digest
from ...errors import RegistryProtocolError
from .httputil import add_query, join_url

if TYPE_CHECKING:  # pragma: no cover
    from requests import Response

    from .client import RegistryClient

__all__ = ["BlobUpload"]

_RANGE = re.compile(r"^(?:bytes=)?(\d+)-(\d+)$")

Body = bytes | Iterable[bytes] | BinaryIO


class BlobUpload:
    """An upload session at ``location``. Each call follows the ``Location`` the registry
    returns (it may change after every chunk); ``offset`` is how many bytes the registry
    says it has.

    An iterable body is sent with chunked transfer encoding; bytes and files with a
    ``Content-Length``. Bodies that can be re-read (bytes, seekable files) are retried
    on connection errors and 5xx; an iterator cannot be, and fails at the first error.
    """

    def __init__(self, client: "RegistryClient", repository: str, location: str,
                 offset: int = 0) -> None:
        self.client = client
        self.repository = repository
        self.location = location
        self.offset = offset

    def __repr__(self) -> str:
        return f"<BlobUpload {self.repository} offset={self.offset}>"

    @staticmethod
    def offset_from(response: Response) -> int | None:
        """The byte count a ``Range: 0-N`` header reports (``N + 1``), or ``None``.

        Distribution answers ``0-0`` both for an empty upload and for one byte; it is
        read as 0 (an empty session), the common case."""
        match = _RANGE.match(response.headers.get("Range", "").strip())
        if not match:
            return None
        end = int(match.group(2))
        return 0 if end == 0 else end + 1

    def _follow(self, response: Response) -> None:
        location = response.headers.get("Location")
        if location:
            self.location = join_url(response.url, location)

    def _request(self, method: str, url: str, expected: tuple[int, ...], **kwargs) -> Response:
        return self.client.request(method, url, repository=self.repository, actions="pull,push",
                                   expected=expected, **kwargs)

    def patch(self, body: Body, *, content_range: bool = False, length: int | None = None) -> int:
        """Send one chunk (``PATCH``); return the new offset. ``content_range`` sends
        ``Content-Range: start-end`` (needs ``length`` unless ``body`` is bytes)."""
        if length is None and isinstance(body, (bytes, bytearray, memoryview)):
            length = len(body)
        headers = {"Content-Type": "application/octet-stream"}
        if content_range:
            if length is None:
                raise ValueError("content_range needs the chunk length")
            if length == 0:
                raise ValueError("content_range needs a non-empty chunk")
            headers["Content-Range"] = f"{self.offset}-{self.offset + length - 1}"
        response = self._request("PATCH", self.location, (202,), data=body, headers=headers)
        with response:
            self._follow(response)
            reported = self.offset_from(response)
        if length is not None and (reported is None or reported in (0, self.offset + length)):
            self.offset += length
        elif reported is not None:
            self.offset = reported
        return self.offset

    def status(self) -> int:
        """Ask the registry how many bytes it has (``GET`` the upload URL)."""
        response = self._request("GET", self.location, (204, 200))
        with response:
            self._follow(response)
            reported = self.offset_from(response)
        self.offset = reported if reported is not None else 0
        return self.offset

    def put(self, digest: str, body: Body | None = None, length: int | None = None) -> Digest:
        """Finish the upload (``PUT ?digest=``), optionally with a last chunk; return the
        digest, checked against the registry's ``Docker-Content-Digest``."""
        expected_digest = Digest(digest)
        url = add_query(self.location, digest=str(expected_digest))
        response = self._request("PUT", url, (201, 204), data=body if body is not None else b"",
                                 headers={"Content-Type": "application/octet-stream"})
        with response:
            returned = response.headers.get("Docker-Content-Digest", "").strip()
        if returned and returned != expected_digest:
            raise RegistryProtocolError(
                f"PUT {response.url}: registry stored {returned}, expected {expected_digest}",
                url=response.url)
        if length is not None:
            self.offset += length
        return expected_digest

    def cancel(self) -> None:
        """Abandon the upload (``DELETE``); an already forgotten session is fine."""
        self._request("DELETE", self.location, (204, 200, 202, 404)).close()
