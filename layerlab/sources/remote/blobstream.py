"""A streamed blob GET that resumes with ``Range`` when the connection breaks mid-body."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

from ...errors import RegistryProtocolError, RegistryUnavailableError
from .session import HttpFailure, Progress, read_chunk

if TYPE_CHECKING:  # pragma: no cover
    from requests import Response

    from .client import RegistryClient

__all__ = ["BlobStream"]

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class BlobStream(io.RawIOBase):
    """The bytes ``[start, end]`` (``end`` inclusive, ``None`` = to the end) of a blob.

    The GET is sent lazily on the first read. If the body stops early (connection
    reset, a proxy cutting it, a read timeout) the stream asks again from where it
    stopped with ``Range: bytes=N-``, at most ``client.retries`` times; a registry that
    ignores ``Range`` (``200``) has the bytes already read skipped. A body slower than
    ``client.min_blob_rate`` bytes/s over a ``client.timeout`` window counts as broken.
    The data read is therefore exactly the requested slice, or an error is raised.
    """

    def __init__(self, client: "RegistryClient", repository: str, url: str, start: int = 0,
                 end: int | None = None) -> None:
        super().__init__()
        self._client = client
        self._repository = repository
        self._url = url
        self._pos = start
        self._end = end
        self._stop: int | None = None if end is None else end + 1  # absolute, exclusive
        self._response: Response | None = None
        self._progress: Progress | None = None
        self._resumes = 0

    def readable(self) -> bool:
        return True

    def _open(self) -> None:
        headers = {}
        ranged = self._pos > 0 or self._end is not None
        if ranged:
            headers["Range"] = f"bytes={self._pos}-{'' if self._end is None else self._end}"
        response = self._client.request("GET", self._url, repository=self._repository,
                                        expected=(200, 206), stream=True, headers=headers)
        self._response = response
        self._progress = Progress(self._client.min_blob_rate, self._client.timeout)
        if response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != self._pos:
                response.close()
                raise RegistryProtocolError(
                    f"GET {response.url}: 206 with Content-Range "
                    f"{response.headers.get('Content-Range')!r}, asked for bytes from {self._pos}",
                    status=206, url=response.url)
            if self._stop is None and match.group(3) != "*":
                self._stop = int(match.group(3))
            return
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and self._stop is None:
            self._stop = int(length)
        if self._pos:  # the registry ignored Range: skip what we already have
            remaining = self._pos
            while remaining:
                chunk = read_chunk(response, min(remaining, 1 << 20), self._progress)
                if not chunk:
                    raise RegistryProtocolError(
                        f"GET {response.url}: blob shorter than {self._pos} bytes", url=response.url)
                remaining -= len(chunk)

    def _resume(self, reason: str) -> None:
        url = self._response.url if self._response is not None else self._url
        self._drop()
        self._resumes += 1
        if self._resumes > self._client.retries:
            raise RegistryUnavailableError(
                f"GET {url}: blob body broken at byte {self._pos} ({reason}) "
                f"after {self._resumes} attempts", url=url)
        self._client.sleep_backoff(self._resumes)

    def readinto(self, buf) -> int:  # type: ignore[override]
        want = len(buf)
        if self._stop is not None:
            want = min(want, self._stop - self._pos)
        if want <= 0:
            return 0
        while True:
            if self._response is None:
                self._open()
                if self._stop is not None:
                    want = min(want, self._stop - self._pos)
                    if want <= 0:
                        return 0
            assert self._response is not None
            try:
                data = read_chunk(self._response, want, self._progress)
            except HttpFailure as exc:
                self._resume(exc.reason)
                continue
            if not data:
                if self._stop is not None and self._pos < self._stop:
                    self._resume(f"body ended at byte {self._pos} of {self._stop}")
                    continue
                return 0
            n = len(data)
            buf[:n] = data
            self._pos += n
            return n

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def close(self) -> None:
        self._drop()
        super().close()
