"""Sending one blob: streamed, chunked or monolithic, with resume after a broken upload.

A blob's bytes come from a *stream factory* ``make(skip)``: either the layer as stored
(:class:`StoredStream`) or the layer compressed on the fly
(:class:`~layerlab.pusher.compress.CompressingStream`). Both hash everything they produce
and drop the first ``skip`` bytes; since compression is deterministic, **resuming** an
upload at the offset the registry reports (``GET`` on the upload URL) means regenerating
the stream and skipping what the registry already has: no temporary file, no buffer of
past chunks. When the registry has forgotten the session (Distribution refuses an upload
URL whose state no longer matches), the upload restarts with a new ``POST``.

The final ``PUT ?digest=`` carries the digest computed while streaming, and only after
the source's own digest / diff_id were checked: a source that lies never becomes a blob.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from typing import Any, Callable, Iterator

from ..digest import Digest
from ..errors import (AuthenticationError, DigestMismatchError, LayerlabError, PushError,
                      RegistryError, RegistryUnavailableError)
from .compress import BlobStream, read_full
from .result import EventLog

__all__ = ["StoredStream", "BlobSender", "PushAborted"]

_READ = 1 << 20


class PushAborted(PushError):
    """Another blob of the same push failed; this one stopped early."""


class StoredStream(BlobStream):
    """A blob's stored bytes as they are, read in 1 MiB chunks (hashed, see
    :class:`~layerlab.pusher.compress.BlobStream`)."""

    def _chunks(self) -> Iterator[bytes]:
        read = self.source.read
        while True:
            chunk = read_full(read, _READ)
            if not chunk:
                return
            if self.on_input is not None:
                self.on_input(len(chunk))
            yield chunk


class _Guarded:
    """Iterate a stream for an HTTP body: stop on abort, count bytes sent, and turn source
    read errors (OSError) into :class:`PushError` so they are not taken for network
    failures and retried."""

    def __init__(self, stream: Any, abort: threading.Event, what: str) -> None:
        self.stream = stream
        self.abort = abort
        self.what = what
        self.sent = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        iterator = iter(self.stream)
        try:
            while True:
                if self.abort.is_set():
                    self.error = PushAborted(f"{self.what}: stopped, another blob failed")
                    raise self.error
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
                except OSError as exc:
                    self.error = PushError(f"{self.what}: cannot read the source ({exc})")
                    raise self.error from None
                except LayerlabError as exc:
                    self.error = exc
                    raise
                self.sent += len(chunk)
                yield chunk
        finally:
            self.stream.close()


def _rechunk(chunks: Any, size: int) -> Iterator[bytes]:
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


class BlobSender:
    """Uploads blobs to one repository following a profile's ``upload`` mode."""

    def __init__(self, client: Any, repository: str, profile: Any, log: EventLog,
                 abort: threading.Event, temp_dir: str | None = None) -> None:
        self._client = client  # a client, or a zero-argument callable giving one (lazily)
        self.repository = repository
        self.profile = profile
        self.log = log
        self.abort = abort
        self.temp_dir = temp_dir

    @property
    def client(self) -> Any:
        return self._client() if callable(self._client) else self._client

    # helpers ---------------------------------------------------------------------------
    def _session(self, session: Any) -> Any:
        return session if session is not None else self.client.start_upload(self.repository)

    def _cancel(self, session: Any) -> None:
        try:
            session.cancel()
        except LayerlabError:
            pass

    def _backoff(self, attempt: int) -> None:
        delay = min(self.profile.retry_backoff * (2 ** (attempt - 1)), 10.0)
        if delay > 0:
            time.sleep(delay)

    # the three ways -------------------------------------------------------------------
    def send(self, name: str, diff_id: str | None, make: Callable[[int], Any],
             check: Callable[[Any], None], session: Any = None,
             known_digest: Digest | None = None, compressing: bool = False) -> Any:
        """Upload the blob ``make`` produces; return the finished stream.

        ``check(stream)`` verifies the finished stream (digest, diff_id) and raises on a
        lie, before anything is committed. ``known_digest`` is required for
        ``monolithic`` uploads (else it is computed by a first, discarded pass).
        """
        mode = self.profile.upload
        if mode == "monolithic":
            return self._monolithic(name, diff_id, make, check, session, known_digest, compressing)
        return self._resumable(name, diff_id, make, check, session, mode, compressing)

    def _resumable(self, name: str, diff_id: str | None, make: Callable[[int], Any],
                   check: Callable[[Any], None], session: Any, mode: str,
                   compressing: bool) -> Any:
        start = self.log.now()
        session = self._session(session)
        offset, attempt, sent_total = 0, 0, 0
        while True:
            stream = make(offset)
            body = _Guarded(stream, self.abort, f"{name}")
            try:
                if mode == "chunked":
                    for chunk in _rechunk(body, self.profile.chunk_size):
                        session.patch(chunk, content_range=True)
                else:
                    session.patch(iter(body))
                sent_total += body.sent
                break
            except (AuthenticationError, PushError, DigestMismatchError):
                sent_total += body.sent
                self._cancel(session)
                raise
            except RegistryError as exc:
                sent_total += body.sent
                if body.error is not None:
                    self._cancel(session)
                    raise body.error from None
                if not isinstance(exc, RegistryUnavailableError) and exc.status != 416:
                    self._cancel(session)
                    raise
                attempt += 1
                if attempt > self.profile.retries:
                    self.log.add(name, diff_id, "upload", start, bytes=sent_total,
                                 outcome="failed", detail=str(exc))
                    raise
                self._backoff(attempt)
                retry_at = self.log.now()
                try:
                    offset = session.status()
                    how = f"resuming at byte {offset}"
                except RegistryError:
                    session = self.client.start_upload(self.repository)
                    offset = 0
                    how = "restarting (the registry forgot the session)"
                self.log.add(name, diff_id, "upload", start, end=retry_at, bytes=body.sent,
                             outcome="retry", detail=f"{exc}; {how}")
                start = self.log.now()
        try:
            check(stream)
        except LayerlabError:
            self._cancel(session)
            raise
        self.log.add(name, diff_id, "upload", start, bytes=body.sent, outcome="ok",
                     bytes_in=stream.size_in if compressing else 0,
                     detail=f"{mode}" + (" (compressing)" if compressing else ""))
        self._commit(name, diff_id, session, stream.digest, None)
        return stream

    def _commit(self, name: str, diff_id: str | None, session: Any, digest: Digest,
                body: Any, length: int | None = None) -> None:
        start = self.log.now()
        session.put(digest, body, length)
        self.log.add(name, diff_id, "commit", start, outcome="ok")

    def _monolithic(self, name: str, diff_id: str | None, make: Callable[[int], Any],
                    check: Callable[[Any], None], session: Any, known: Digest | None,
                    compressing: bool) -> Any:
        if known is None:  # the digest must be in the URL before the body: a first pass
            start = self.log.now()
            first = make(0)
            for _ in _Guarded(first, self.abort, name):
                pass
            check(first)
            known = first.digest
            self.log.add(name, diff_id, "compress", start, bytes=first.size_out,
                         bytes_in=first.size_in, outcome="ok", detail="digest pre-computed")
        start = self.log.now()
        session = self._session(session)
        stream = make(0)
        body = _Guarded(stream, self.abort, name)
        attempt = 0
        while True:
            try:
                session.put(known, iter(body))
                break
            except RegistryUnavailableError as exc:
                if body.error is not None:
                    raise body.error from None
                attempt += 1
                if attempt > self.profile.retries:
                    raise
                self._backoff(attempt)
                self.log.add(name, diff_id, "upload", start, bytes=body.sent, outcome="retry",
                             detail=str(exc))
                start = self.log.now()
                session = self.client.start_upload(self.repository)
                stream = make(0)
                body = _Guarded(stream, self.abort, name)
        check(stream)
        self.log.add(name, diff_id, "upload", start, bytes=body.sent, outcome="ok",
                     bytes_in=stream.size_in if compressing else 0,
                     detail="monolithic" + (" (compressing)" if compressing else ""))
        return stream

    def send_file(self, name: str, diff_id: str | None, path: str, digest: Digest, size: int,
                  session: Any = None) -> None:
        """Upload a finished temporary file (Docker 1.7's way: one monolithic PUT)."""
        start = self.log.now()
        session = self._session(session)
        if self.profile.upload == "monolithic":
            with open(path, "rb") as f:
                session.put(digest, f)
            self.log.add(name, diff_id, "upload", start, bytes=size, outcome="ok",
                         detail="monolithic from a temporary file")
            return
        def make(skip: int) -> StoredStream:
            return StoredStream(open(path, "rb"), skip)

        def check(stream: Any) -> None:
            if stream.digest != digest:
                raise DigestMismatchError(f"temporary file for {name}", digest, stream.digest)

        self._resumable(name, diff_id, make, check, session, self.profile.upload, False)

    def compress_to_file(self, name: str, diff_id: str | None, stream: Any,
                         check: Callable[[Any], None]) -> tuple[str, Any]:
        """Compress into a temporary file first ("Buffering to Disk"); return its path."""
        start = self.log.now()
        fd, path = tempfile.mkstemp(prefix="layerlab-push-", suffix=".gz", dir=self.temp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _Guarded(stream, self.abort, name):
                    out.write(chunk)
            check(stream)
        except BaseException:
            os.unlink(path)
            raise
        self.log.add(name, diff_id, "compress", start, bytes=stream.size_out,
                     bytes_in=stream.size_in, outcome="ok", detail="to a temporary file")
        return path, stream
