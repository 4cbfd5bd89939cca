"""Run ``layerlab demo --json`` once per test session and share its output and report."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def demo_once() -> tuple[dict, Path, str, float]:
    """``(json output, report path, stderr, wall seconds)`` of one demo run."""
    out = Path(tempfile.mkdtemp(prefix="layerlab-demo-test-"))
    atexit.register(shutil.rmtree, out, True)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "layerlab", "demo", "--json",
                           "--out", str(out / "report.html")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise AssertionError(f"demo failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout), out / "report.html", proc.stderr, elapsed
