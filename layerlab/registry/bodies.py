"""Reading request bodies with a progress rule, so a slow client cannot hold a request.

A client that sends headers and then drips (or stops sending) its body would keep its
connection, its upload session and a handler forever.  :class:`BodyReader` counts only
the time the handler spends *waiting for the client* (not time spent hashing, writing or
throttled by the bandwidth knob): in every ``timeout`` seconds of such waiting the client
must deliver at least ``min_rate × timeout`` bytes, else the read fails with
:class:`BodyTimeout` and the handler answers 408 with ``Connection: close`` (aiohttp then
discards what the client still sends for at most its lingering time, and closes).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from .codes import APIError


class BodyTimeout(Exception):
    """The client sent its request body too slowly (see :class:`BodyReader`)."""


class BodyReader:
    """``async with BodyReader(request, timeout, min_rate) as body: chunk = await body.read()``.

    ``read()`` returns the next bytes of the body, ``b""`` at its end.
    """

    def __init__(self, request: web.Request, timeout: float, min_rate: float) -> None:
        self._request = request
        self._content = request.content
        self._timeout = timeout
        self._min_rate = min_rate
        self._loop = asyncio.get_running_loop()
        self._waited = 0.0  # seconds spent waiting for the client so far
        self._wait_started: float | None = None
        self._received = 0
        self._window_waited = 0.0  # self._waited when the current window opened
        self._window_received = 0
        self._timer: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task | None = None
        self._expired: str | None = None  # why the body was cut off

    async def __aenter__(self) -> "BodyReader":
        if self._timeout > 0:
            self._timer = self._loop.call_later(self._timeout, self._check)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def read(self) -> bytes:
        if self._expired is not None:
            raise BodyTimeout(self._expired)
        self._reader = asyncio.current_task()
        self._wait_started = self._loop.time()
        try:
            chunk = await self._content.readany()
        except asyncio.CancelledError:
            # cancelled by _check (and by nobody else): a timeout, not a shutdown
            if self._expired is not None and self._reader is not None \
                    and self._reader.uncancel() == 0:
                raise BodyTimeout(self._expired) from None
            raise
        finally:
            self._waited += self._loop.time() - self._wait_started
            self._wait_started = None
        self._received += len(chunk)
        return chunk

    def _client_seconds(self) -> float:
        now_waiting = self._loop.time() - self._wait_started if self._wait_started else 0.0
        return self._waited + now_waiting - self._window_waited

    def _check(self) -> None:
        waited = self._client_seconds()
        if waited < self._timeout:  # the handler was busy, not the client slow: look later
            self._timer = self._loop.call_later(self._timeout - waited, self._check)
            return
        got = self._received - self._window_received
        if got < max(1.0, self._min_rate * self._timeout) and not self._content.is_eof():
            self._timer = None
            self._expired = (f"request body too slow: {got} bytes in {waited:.1f} s, at "
                             f"least {self._min_rate * self._timeout:.0f} expected")
            if self._wait_started is not None and self._reader is not None:
                self._reader.cancel()
            return
        self._window_waited += waited
        self._window_received = self._received
        self._timer = self._loop.call_later(self._timeout, self._check)


def body_timeout_error(exc: BodyTimeout, code: str) -> APIError:
    """The 408 answer to a too-slow body; the connection is closed after it."""
    return APIError(code, str(exc), status=408, headers={"Connection": "close"})
