"""layerlab's registry against Distribution 2.8.2 (Debian ``docker-registry``), side by side.

Both run as subprocesses on loopback with filesystem storage (Distribution with its
in-memory blob descriptor cache; layerlab with its default cache on, fsync on), and one
client (python ``requests``) measures, per registry:

  * one 512 MiB blob, monolithic (POST, then PUT with the body)
  * the same size as one streamed PATCH (chunked transfer encoding, as Docker sends)
  * 500 blobs of 16 KiB (POST + PUT each, one connection)
  * 2,000 HEAD requests for existing blobs
  * 8 parallel uploads of 64 MiB (8 threads, one connection each)

Runs are interleaved (the registry order alternates), every upload has fresh content,
and the table shows medians of ``--runs`` (default 3): case, layerlab s, distribution s,
ratio (layerlab / distribution; below 1 means layerlab is faster).  The registry
processes' CPU seconds per case are shown too, as the steadier figure on a shared machine.

    python benchmarks/bench_registry.py [--runs 3] [--scale 1.0] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import requests

MiB = 1 << 20


def sha(data: bytes | memoryview) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Registry:
    """A registry subprocess and where to reach it."""

    def __init__(self, name: str, proc: subprocess.Popen, url: str) -> None:
        self.name, self.proc, self.url = name, proc, url

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_layerlab(root: Path) -> Registry:
    proc = subprocess.Popen(
        [sys.executable, "-m", "layerlab", "registry", "serve", "--root", str(root),
         "--port", "0", "--json"], stdout=subprocess.PIPE, text=True)
    event = json.loads(proc.stdout.readline())
    return Registry("layerlab", proc, event["url"])


def start_distribution(root: Path) -> Registry:
    binary = shutil.which("docker-registry")
    if binary is None:
        sys.exit("docker-registry (Debian's Distribution) is not installed")
    port = free_port()
    config = root / "config.yml"
    root.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n"
        f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  cache:\n    blobdescriptor: inmemory\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for_port(port, proc)
    return Registry("distribution", proc, f"http://127.0.0.1:{port}")


def _absolute(base: str, location: str) -> str:
    return location if location.startswith("http") else base + location


def upload_monolithic(session: requests.Session, url: str, repo: str, data, digest: str) -> None:
    start = session.post(f"{url}/v2/{repo}/blobs/uploads/")
    r = session.put(_absolute(url, start.headers["Location"]), params={"digest": digest}, data=data)
    assert r.status_code == 201, r.text


def upload_streamed(session: requests.Session, url: str, repo: str, data, digest: str) -> None:
    start = session.post(f"{url}/v2/{repo}/blobs/uploads/")
    view = memoryview(data)
    chunks = (view[i:i + MiB] for i in range(0, len(view), MiB))
    patch = session.patch(_absolute(url, start.headers["Location"]), data=chunks)
    assert patch.status_code == 202, patch.text
    r = session.put(_absolute(url, patch.headers["Location"]), params={"digest": digest})
    assert r.status_code == 201, r.text


class Workload:
    """Fresh content for every measurement, prepared outside the timed region."""

    def __init__(self, scale: float) -> None:
        self.big = int(512 * MiB * scale)
        self.parallel = int(64 * MiB * scale)
        self.small_count, self.small_size, self.heads = 500, 16 * 1024, 2000
        self._base = bytearray(os.urandom(max(self.big, self.parallel)))
        self._serial = 0
        self.small_digests: dict[str, list[str]] = {}

    def fresh(self, size: int) -> tuple[bytearray, str]:
        self._serial += 1
        data = bytearray(self._base[:size])
        data[:8] = self._serial.to_bytes(8, "big")
        return data, sha(data)


def case_monolithic(w: Workload, reg: Registry) -> Callable[[], None]:
    data, digest = w.fresh(w.big)
    session = requests.Session()
    return lambda: upload_monolithic(session, reg.url, "bench/big", data, digest)


def case_streamed(w: Workload, reg: Registry) -> Callable[[], None]:
    data, digest = w.fresh(w.big)
    session = requests.Session()
    return lambda: upload_streamed(session, reg.url, "bench/streamed", data, digest)


def case_small(w: Workload, reg: Registry) -> Callable[[], None]:
    blobs = [w.fresh(w.small_size) for _ in range(w.small_count)]
    w.small_digests[reg.name] = [d for _, d in blobs]
    session = requests.Session()

    def run() -> None:
        for data, digest in blobs:
            upload_monolithic(session, reg.url, "bench/small", data, digest)
    return run


def case_heads(w: Workload, reg: Registry) -> Callable[[], None]:
    digests = w.small_digests[reg.name]
    urls = [f"{reg.url}/v2/bench/small/blobs/{digests[i % len(digests)]}" for i in range(w.heads)]
    session = requests.Session()
    session.head(urls[0])  # open the connection outside the timed region

    def run() -> None:
        for u in urls:
            assert session.head(u).status_code == 200
    return run


def case_parallel(w: Workload, reg: Registry) -> Callable[[], None]:
    blobs = [w.fresh(w.parallel) for _ in range(8)]
    sessions = [requests.Session() for _ in blobs]

    def run() -> None:
        errors: list[BaseException] = []

        def one(i: int) -> None:
            try:
                upload_monolithic(sessions[i], reg.url, f"bench/parallel{i}", *blobs[i])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(blobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
    return run


CASES = [
    ("512 MiB blob, monolithic", case_monolithic),
    ("512 MiB blob, one streamed chunked PATCH", case_streamed),
    ("500 blobs of 16 KiB", case_small),
    ("2,000 HEAD of existing blobs", case_heads),
    ("8 parallel uploads of 64 MiB", case_parallel),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="scale the big blobs (quick checks)")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cases = [(c, make) for c, make in CASES if not args.only or args.only in c]
    if any("HEAD" in c for c, _ in cases) and not any("16 KiB" in c for c, _ in cases):
        cases.insert(0, next(x for x in CASES if "16 KiB" in x[0]))  # HEADs need those blobs

    work = Path(tempfile.mkdtemp(prefix="bench-registry-", dir=os.environ.get("TMPDIR")))
    regs = [start_layerlab(work / "layerlab"), start_distribution(work / "distribution")]
    workload = Workload(args.scale)
    wall: dict[str, dict[str, list[float]]] = {c: {r.name: [] for r in regs} for c, _ in cases}
    cpu: dict[str, dict[str, list[float]]] = {c: {r.name: [] for r in regs} for c, _ in cases}
    load_before = os.getloadavg()
    try:
        for run in range(args.runs):
            order = regs if run % 2 == 0 else regs[::-1]
            for case, make in cases:
                for reg in order:
                    action = make(workload, reg)
                    c0, t0 = cpu_seconds(reg.proc.pid), time.perf_counter()
                    action()
                    wall[case][reg.name].append(time.perf_counter() - t0)
                    cpu[case][reg.name].append(cpu_seconds(reg.proc.pid) - c0)
                print(f"run {run + 1}: {case}: " + ", ".join(
                    f"{r.name} {wall[case][r.name][-1]:.3f} s" for r in regs), file=sys.stderr)
    finally:
        for reg in regs:
            reg.stop()
        shutil.rmtree(work, ignore_errors=True)

    rows = []
    for case, _ in cases:
        ll, dist = (statistics.median(wall[case][n]) for n in ("layerlab", "distribution"))
        ll_cpu, dist_cpu = (statistics.median(cpu[case][n]) for n in ("layerlab", "distribution"))
        rows.append({"case": case, "layerlab_s": ll, "distribution_s": dist, "ratio": ll / dist,
                     "layerlab_cpu_s": ll_cpu, "distribution_cpu_s": dist_cpu,
                     "layerlab_runs": wall[case]["layerlab"],
                     "distribution_runs": wall[case]["distribution"]})
    if args.json:
        print(json.dumps({"runs": args.runs, "scale": args.scale, "cpus": os.cpu_count(),
                          "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                          "rows": rows}, indent=2))
        return 0
    print(f"registry benchmark: medians of {args.runs} interleaved runs, python requests client, "
          f"loopback, {os.cpu_count()} CPUs; load average before {load_before[0]:.1f}, after "
          f"{os.getloadavg()[0]:.1f} (a shared machine: compare ratios, not absolute times)")
    header = f"{'case':42} {'layerlab s':>11} {'distribution s':>15} {'ratio':>6}   " \
             f"{'cpu s (layerlab / distribution)':>31}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['case']:42} {r['layerlab_s']:11.3f} {r['distribution_s']:15.3f} "
              f"{r['ratio']:6.2f}   {r['layerlab_cpu_s']:14.2f} / {r['distribution_cpu_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
