"""The registry's request log: one record per HTTP request, as a list, counters or a DataFrame."""

from __future__ import annotations

import html
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

from ..units import format_duration, format_size


@dataclass(frozen=True)
class RequestRecord:
    """One request the registry answered.

    ``kind`` names the operation (``blob_head``, ``upload_patch``, ``manifest_put``...);
    ``start`` is the wall-clock time (seconds since the epoch) it arrived; ``duration``
    runs until the response was sent; ``hash_seconds`` and ``store_seconds`` are the time
    spent hashing and writing/committing blob bytes inside it.
    """

    method: str
    path: str
    repository: str | None
    kind: str
    status: int
    bytes_in: int
    bytes_out: int
    start: float
    duration: float
    hash_seconds: float = 0.0
    store_seconds: float = 0.0


COLUMNS = [f.name for f in fields(RequestRecord)]


MISS_KINDS = frozenset({"blob_head", "manifest_head", "blob_get", "manifest_get"})


def _is_miss(record: "RequestRecord") -> bool:
    return record.status == 404 and record.kind in MISS_KINDS


def errors_text(counters: dict[str, Any]) -> str:
    """``"N errors"``, with ``", M misses"`` when some existence checks found nothing."""
    text = f"{counters['errors']} errors"
    return text + (f", {counters['misses']} misses" if counters.get("misses") else "")


def _zero_totals() -> dict[str, Any]:
    return {"requests": 0, "errors": 0, "misses": 0, "bytes_in": 0, "bytes_out": 0,
            "hash_seconds": 0.0, "store_seconds": 0.0, "by_kind": Counter(),
            "by_status": Counter()}


class RequestLog:
    """Thread-safe log of :class:`RequestRecord` with live subscribers.

    It keeps the last ``maxlen`` records (None: all); :meth:`counters` covers every
    request since the start or the last :meth:`clear`, however many were dropped.
    """

    def __init__(self, maxlen: int | None = 100_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._grown = threading.Condition(self._lock)
        self._subscribers: list[Callable[[RequestRecord], Any]] = []
        self._totals = _zero_totals()

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            t = self._totals
            t["requests"] += 1
            if _is_miss(record):
                t["misses"] += 1
            elif record.status >= 400:
                t["errors"] += 1
            t["bytes_in"] += record.bytes_in
            t["bytes_out"] += record.bytes_out
            t["hash_seconds"] += record.hash_seconds
            t["store_seconds"] += record.store_seconds
            t["by_kind"][record.kind] += 1
            t["by_status"][record.status] += 1
            self._grown.notify_all()
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(record)
            except Exception:  # noqa: BLE001 - a broken dashboard must not break the registry
                pass

    @property
    def entries(self) -> list[RequestRecord]:
        """A snapshot of the records, in the order the requests arrived."""
        with self._lock:
            records = list(self._records)
        return sorted(records, key=lambda r: r.start)

    def wait(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` records exist (a blob download is recorded once its last
        byte is sent, which the client may see a moment earlier); False on timeout."""
        with self._grown:
            return self._grown.wait_for(lambda: self._totals["requests"] >= count, timeout)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self):
        return iter(self.entries)

    def clear(self) -> None:
        """Forget every record (subscribers stay)."""
        with self._lock:
            self._records.clear()
            self._totals = _zero_totals()

    def subscribe(self, callback: Callable[[RequestRecord], Any]) -> Callable[[], None]:
        """Call ``callback(record)`` for every new request (from the server thread).

        Returns a function that unsubscribes it.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def counters(self) -> dict[str, Any]:
        """Totals: ``requests``, ``misses`` (404 answers to existence checks and reads of
        blobs and manifests: clients ask before they upload, so these are normal),
        ``errors`` (every other status >= 400), ``bytes_in``, ``bytes_out``,
        ``hash_seconds``, ``store_seconds``, ``by_kind`` and ``by_status`` counts."""
        with self._lock:  # the counters change under the server thread: copy them whole
            totals = dict(self._totals)
            totals["by_kind"] = dict(totals["by_kind"])
            totals["by_status"] = dict(totals["by_status"])
        return totals

    def to_frame(self):
        """The records as a pandas DataFrame (one row per request, ``start`` as datetime)."""
        import pandas as pd

        frame = pd.DataFrame([asdict(r) for r in self.entries], columns=COLUMNS)
        frame["start"] = pd.to_datetime(frame["start"], unit="s")
        return frame

    def __repr__(self) -> str:
        c = self.counters()  # "misses" only when there are some: the usual outputs stay short
        return (f"RequestLog({c['requests']} requests, {errors_text(c)}, "
                f"{format_size(c['bytes_in'])} in, {format_size(c['bytes_out'])} out)")

    def _repr_html_(self) -> str:
        c = self.counters()
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>"
                       for k, v in sorted(c["by_kind"].items()))
        recent = "".join(
            f"<tr><td>{r.method}</td><td>{html.escape(r.path)}</td><td>{r.status}</td>"
            f"<td>{format_size(r.bytes_in)}</td><td>{format_size(r.bytes_out)}</td>"
            f"<td>{format_duration(r.duration)}</td></tr>"
            for r in self.entries[-10:]
        )
        return (
            f"<div><b>RequestLog</b>: {c['requests']} requests, {errors_text(c)}, "
            f"{format_size(c['bytes_in'])} in, {format_size(c['bytes_out'])} out, "
            f"hashing {format_duration(c['hash_seconds'])}, storing "
            f"{format_duration(c['store_seconds'])}"
            f"<table><tr><th>kind</th><th>count</th></tr>{rows}</table>"
            f"<table><tr><th>method</th><th>path</th><th>status</th><th>in</th><th>out</th>"
            f"<th>duration</th></tr>{recent}</table></div>"
        )
