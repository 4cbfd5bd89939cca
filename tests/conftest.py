"""Shared fixtures: free ports, the sample images, Debian's Distribution registry."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"


@pytest.fixture(scope="session", autouse=True)
def _private_digest_cache(tmp_path_factory):
    """Pushes and pulls that use the default digest cache (the CLI's children too) write
    it under the session's temporary directory, never the user's ``~/.cache``."""
    previous = os.environ.get("LAYERLAB_CACHE_DIR")
    os.environ["LAYERLAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("digest-cache"))
    yield
    if previous is None:
        os.environ.pop("LAYERLAB_CACHE_DIR", None)
    else:
        os.environ["LAYERLAB_CACHE_DIR"] = previous


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    """Poll until something accepts connections on 127.0.0.1:port (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def require_tool(name: str) -> str:
    """Path of a required external binary; in CI a missing one fails, elsewhere it skips."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/run must install it)")
        pytest.skip(f"{name} not installed")
    return path


@pytest.fixture(scope="session")
def samples() -> Path:
    """The committed sample images directory."""
    return SAMPLES


def start_distribution(tmp: Path, extra_config: str = "") -> tuple[subprocess.Popen, str]:
    """Start Debian's docker-registry (Distribution 2.8.2) on a free port; return (proc, host).
    A port taken between choosing it and the registry binding it (the child then exits)
    is retried on another port, twice."""
    binary = require_tool("docker-registry")
    for attempt in range(3):
        port = free_port()
        config = tmp / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
            "  cache:\n    blobdescriptor: inmemory\n"
            "  delete:\n    enabled: true\n"
            "http:\n"
            f"  addr: 127.0.0.1:{port}\n"
            + extra_config
        )
        proc = subprocess.Popen([binary, "serve", str(config)],
                                stdout=subprocess.DEVNULL,
                                # a file, not a pipe nobody reads: Distribution logs every 4xx
                                # at error level and blocks for good once a pipe's buffer is full
                                stderr=open(tmp / "registry.log", "ab"))
        try:
            wait_for_port(port, proc)
        except RuntimeError:
            if proc.poll() is None or attempt == 2:
                proc.kill()
                raise
            continue
        return proc, f"127.0.0.1:{port}"
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def distribution(tmp_path_factory):
    """Debian's Distribution registry on a free loopback port; yields ``host:port``."""
    tmp = tmp_path_factory.mktemp("distribution")
    proc, host = start_distribution(tmp)
    yield host
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def local_registry(tmp_path):
    """layerlab's LocalRegistry on a free loopback port, storage under tmp_path (per test)."""
    from layerlab.registry import LocalRegistry

    with LocalRegistry(tmp_path / "registry") as registry:
        yield registry
