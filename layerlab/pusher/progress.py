"""Progress bars for pushes (tqdm.auto: widgets in notebooks, text in terminals), and the
claims that keep concurrent pushes of one session from sending the same blob twice.

Bars are created only when a blob actually moves, so a push that finds everything in
place imports nothing and prints nothing.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

__all__ = ["Progress", "BlobClaims"]


class BlobClaims:
    """Blobs being sent by the concurrent pushes of one session (the platforms of an
    index): the first push to claim a blob sends it; a second one waits until the first
    is done (sent or failed), then checks the registry again, as a later push would."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, threading.Event] = {}

    @contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        """``True`` inside when this caller sends the blob; ``False`` after waiting for
        the caller that did."""
        with self._lock:
            done = self._done.get(key)
            first = done is None
            if first:
                done = self._done[key] = threading.Event()
        assert done is not None
        if not first:
            done.wait()
            yield False
            return
        try:
            yield True
        finally:
            done.set()


class Progress:
    """A total bar plus one bar per blob in flight; every method is a no-op when disabled."""

    def __init__(self, enabled: bool, description: str = "push") -> None:
        self.enabled = enabled
        self.description = description
        self._total: Any = None
        self._lock = threading.Lock()
        self._expected = 0

    def expect(self, nbytes: int) -> None:
        """Add ``nbytes`` to the total bar's goal."""
        if not self.enabled:
            return
        with self._lock:
            self._expected += nbytes
            if self._total is not None:
                self._total.total = self._expected
                self._total.refresh()

    def _total_bar(self) -> Any:
        if self._total is None:
            from tqdm.auto import tqdm

            self._total = tqdm(total=self._expected, unit="B", unit_scale=True,
                               unit_divisor=1024, desc=self.description, position=0,
                               dynamic_ncols=True)
        return self._total

    def blob(self, name: str, total: int | None) -> tuple[Callable[[int], None], Callable[[], None]]:
        """``(advance, close)`` for one blob's bar."""
        if not self.enabled:
            return _nothing, _nothing_close
        from tqdm.auto import tqdm

        with self._lock:
            overall = self._total_bar()
            bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=name[:19], leave=False, dynamic_ncols=True)

        def advance(n: int) -> None:
            bar.update(n)
            with self._lock:
                overall.update(n)

        return advance, bar.close

    def close(self) -> None:
        if self._total is not None:
            self._total.close()


def _nothing(n: int) -> None:
    return None


def _nothing_close() -> None:
    return None
