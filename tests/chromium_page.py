"""A tiny headless-Chromium driver over the DevTools protocol, for the report tests.

Starts Debian's ``chromium`` (root-safe flags, no network services, a throw-away profile),
opens one page, records JavaScript exceptions and console errors, evaluates expressions,
and takes screenshots. Nothing but 127.0.0.1 and file:// URLs is ever touched.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--window-size=1280,900", "--remote-debugging-port=0", "--remote-allow-origins=*",
]


class ChromiumPage:
    """One page in a headless Chromium; use as a context manager."""

    def __init__(self, binary: str = "chromium", timeout: float = 30.0) -> None:
        self.binary = binary
        self.timeout = timeout
        self.errors: list[str] = []
        self.console: list[str] = []
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> "ChromiumPage":
        import websocket  # websocket-client

        self._profile = tempfile.mkdtemp(prefix="layerlab-chromium-")
        self._proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._wait_for_devtools_port()
        page_ws = self._wait_for_page(port)
        self._ws = websocket.create_connection(page_ws, timeout=self.timeout,
                                               suppress_origin=True)
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable")
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001
            pass
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- start-up -------------------------------------------------------------------------
    def _deadline_loop(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}")
            yield
            time.sleep(0.05)
        raise TimeoutError("chromium did not become ready")

    def _wait_for_devtools_port(self) -> int:
        marker = Path(self._profile) / "DevToolsActivePort"
        for _ in self._deadline_loop():
            if marker.exists():
                lines = marker.read_text().split()
                if lines:
                    return int(lines[0])
        raise AssertionError  # unreachable

    def _wait_for_page(self, port: int) -> str:
        for _ in self._deadline_loop():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    targets = json.load(r)
            except OSError:
                continue
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        raise AssertionError  # unreachable

    # -- protocol -------------------------------------------------------------------------
    def _record(self, message: dict[str, Any]) -> None:
        method = message.get("method", "")
        params = message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled":
            args = " ".join(str(a.get("value", a.get("description", "")))
                            for a in params.get("args", []))
            self.console.append(f"{params.get('type')}: {args}")
            if params.get("type") in ("error", "assert"):
                self.errors.append(f"console.{params.get('type')}: {args}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.console.append(f"log {entry.get('level')}: {entry.get('text')}")
            if entry.get("level") == "error":
                self.errors.append(f"log: {entry.get('text')} ({entry.get('url', '')})")
        self._events.append(message)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result (events that arrive meanwhile are kept)."""
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._record(message)

    def wait_for_event(self, method: str) -> dict[str, Any]:
        """Block until the page sends event ``method`` (or one already came)."""
        for message in self._events:
            if message.get("method") == method:
                return message
        while True:
            message = json.loads(self._ws.recv())
            self._record(message)
            if message.get("method") == method:
                return message

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self._events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_until(self, expression: str, timeout: float | None = None) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.05)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole scroll height with ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics.get("contentSize")
            params["clip"] = {"x": 0, "y": 0, "width": size["width"],
                              "height": min(size["height"], 16000), "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
