#!/usr/bin/env python3
"""layerlab push vs skopeo copy, into Debian's Distribution (docker-registry) on loopback.

    python benchmarks/bench_push.py [--runs 3] [--scale 1.0] [--dir /tmp/layerlab-bench]
                                    [--json results.json] [--cases fresh14,fresh24,...]
                                    [--baseline CHECKOUT] [--baseline-python PYTHON]

``--baseline`` adds a third tool, ``before``: the layerlab of another checkout (e.g. a
``git worktree`` of the commit before a change), run in the same interleaved sequence,
so a change's before and after are measured in one run. ``--baseline-python`` runs the
``before`` tool with another interpreter (a venv's ``bin/python``; with no ``--baseline``,
on this checkout), so two interpreters are compared the same way.

Images come from ``benchmarks/genimage.py`` (780 MB of files in 14 layers, the same files
in 24 layers, and big14-b sharing big14's first 5 layers). Each tool runs as a child
process (wall time and peak RSS from ``wait4``), each tool against Distribution data
directories of its own, fresh every run; within a run the two tools alternate case by
case (which goes first alternates run by run), so the two figures of a case are taken
seconds apart. skopeo's blob-info cache
(``/var/lib/containers/cache/blob-info-cache-v1.boltdb``) is deleted before every skopeo
run except the warm-cache one, as on a fresh CI runner; layerlab gets an empty digest
cache except in the warm-cache case. Pushed bytes are measured in the registry's storage.

Cases (per tool, in this order; the first four on one registry):

* ``fresh14`` - push big14 to an empty registry;
* ``repush`` - push big14 again, unchanged, with an empty local cache;
* ``warm`` - push big14 again with the local cache of the fresh push (whole process);
* ``shared5`` - push big14-b (first 5 layers shared) to another tag of the same repository;
* ``fresh24`` - push big24 to another empty registry;
* ``chunked14`` - push big14 as zstd:chunked (skopeo: ``--format oci
  --dest-compress-format zstd:chunked``, both at zstd level 3) to a third empty registry.
  Not in the default cases: it takes about two minutes per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SKOPEO_CACHE = Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb")
LAYERLAB = [sys.executable, "-m", "layerlab"]
GOALS = {  # case -> (max time ratio layerlab/skopeo, max bytes ratio, absolute seconds)
    "fresh14": (0.4, 1.06, None),
    "fresh24": (0.4, None, None),
    "repush": (0.1, None, None),
    "warm": (None, None, 0.35),
    "shared5": (0.4, None, None),
    "chunked14": (None, 1.06, None),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Distribution:
    """A docker-registry process with its own data directory; ``storage_extra`` is more
    YAML under ``storage:`` (e.g. the blob-descriptor cache)."""

    def __init__(self, root: Path, storage_extra: str = "") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
            "  delete:\n    enabled: true\n" + storage_extra +
            f"http:\n  addr: 127.0.0.1:{self.port}\n")
        self.log = open(root / "registry.log", "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("docker-registry did not start")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """The registry process's user + system CPU so far (it shares the client's cores)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def blob_bytes(self) -> int:
        total = 0
        for dirpath, _, files in os.walk(self.root / "data" / "docker" / "registry" / "v2" / "blobs"):
            total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
        return total

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


CPU_SECONDS: list[float] = []  # user + system CPU of each child, in order


def run_child(argv: list[str], env: dict | None = None) -> tuple[float, int]:
    """Run a command; return (wall seconds, peak RSS bytes) and append its CPU seconds to
    :data:`CPU_SECONDS`. Fails loudly on error."""
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out_f, stderr=err_f, env=env,
                                cwd=tempfile.gettempdir())
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out_f.seek(0)
            err_f.seek(0)
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): "
                               f"{err_f.read().decode()[-2000:]}{out_f.read().decode()[-500:]}")
    CPU_SECONDS.append(usage.ru_utime + usage.ru_stime)
    return wall, usage.ru_maxrss * 1024


def skopeo(image: Path, dest: str, keep_cache: bool = False, chunked: bool = False
           ) -> tuple[float, int]:
    if not keep_cache:
        SKOPEO_CACHE.unlink(missing_ok=True)
    extra = ["--format", "oci", "--dest-compress-format", "zstd:chunked"] if chunked else []
    return run_child(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", *extra,
                      f"docker-archive:{image}", f"docker://{dest}"])


BASELINE: Path | None = None  #: the checkout the ``before`` tool runs from
BASELINE_PYTHON = sys.executable  #: the interpreter the ``before`` tool runs with
REPO = Path(__file__).resolve().parents[1]  #: the checkout the ``layerlab`` tool runs from


def _command(before: bool) -> list[str]:
    """How the ``layerlab`` (or ``before``) tool is started."""
    return [BASELINE_PYTHON, "-m", "layerlab"] if before else LAYERLAB


def layerlab(image: Path, dest: str, cache_dir: Path, before: bool = False,
             chunked: bool = False) -> tuple[float, int]:
    # the checkout comes first on the path, run from a neutral directory: ``python -m``
    # puts the working directory ahead of PYTHONPATH (run from a checkout, the "before"
    # tool would silently be that checkout's code)
    root = BASELINE if before else REPO
    assert root is not None
    env = {**os.environ, "PYTHONPATH": str(root)}
    extra = ["--compression", "zstd:chunked"] if chunked else []
    return run_child([*_command(before), "push", f"docker-archive:{image}", dest, "--quiet",
                      "--cache-dir", str(cache_dir), *extra], env=env)


class ToolSequence:
    """One tool's pushes of one run, step by step, each on registries of its own (so the
    two tools' steps can alternate: a case's pair of runs is seconds apart, not a whole
    sequence apart, on a machine whose speed drifts by 30 % within minutes)."""

    def __init__(self, tool: str, images: dict[str, Path], work: Path, run: int) -> None:
        self.tool, self.images, self.work, self.run = tool, images, work, run
        self.warm_cache = self._empty("warm")
        self.registries: dict[str, Distribution] = {}

    def _empty(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"ll-cache-{name}-", dir=self.work))

    def _push(self, image: str, dest: str, cache: Path | None, keep: bool = False,
              chunked: bool = False) -> tuple[float, int]:
        if self.tool == "skopeo":
            return skopeo(self.images[image], dest, keep_cache=keep, chunked=chunked)
        return layerlab(self.images[image], dest, cache if cache is not None else self._empty("x"),
                        before=self.tool == "before", chunked=chunked)

    def _registry(self, name: str) -> Distribution:
        if name not in self.registries:
            self.registries[name] = Distribution(self.work / f"reg-{self.tool}-{self.run}-{name}")
        return self.registries[name]

    def step(self, case: str) -> dict:
        """Run one case ({seconds, rss[, bytes, cpu]}); ``repush``, ``warm`` and
        ``shared5`` follow ``fresh14`` on its registry."""
        reg = self._registry({"fresh24": "b", "chunked14": "c"}.get(case, "a"))
        dest = f"{reg.host}/bench/big:{self.run}"
        registry_cpu = reg.cpu_seconds()
        if case == "fresh14":
            seconds, rss = self._push("big14", dest, self.warm_cache)
            return {"seconds": seconds, "rss": rss, "bytes": reg.blob_bytes(), "cpu": CPU_SECONDS[-1],
                    "registry_cpu": reg.cpu_seconds() - registry_cpu}
        if case == "repush":
            seconds, rss = self._push("big14", dest, None)
            return {"seconds": seconds, "rss": rss}
        if case == "warm":
            seconds, rss = self._push("big14", dest, self.warm_cache, keep=True)
            return {"seconds": seconds, "rss": rss}
        if case == "shared5":
            before = reg.blob_bytes()
            seconds, rss = self._push("big14-b", f"{dest}-b", None)
            return {"seconds": seconds, "rss": rss, "bytes": reg.blob_bytes() - before}
        if case == "fresh24":
            seconds, rss = self._push("big24", f"{reg.host}/bench/big24:{self.run}", self._empty("24"))
            return {"seconds": seconds, "rss": rss, "bytes": reg.blob_bytes(), "cpu": CPU_SECONDS[-1],
                    "registry_cpu": reg.cpu_seconds() - registry_cpu}
        if case == "chunked14":
            seconds, rss = self._push("big14", dest, self._empty("c"), chunked=True)
            return {"seconds": seconds, "rss": rss, "bytes": reg.blob_bytes(), "cpu": CPU_SECONDS[-1],
                    "registry_cpu": reg.cpu_seconds() - registry_cpu}
        raise ValueError(f"unknown case {case!r}")

    def stop(self) -> None:
        for reg in self.registries.values():
            reg.stop()


STEPS = ("fresh14", "repush", "warm", "shared5", "fresh24", "chunked14")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/layerlab-bench"))
    parser.add_argument("--cases", default="fresh14,repush,warm,shared5,fresh24")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--baseline", type=Path, help="also run the layerlab of this checkout")
    parser.add_argument("--baseline-python", help="the interpreter of the baseline tool")
    args = parser.parse_args(argv)
    global BASELINE, BASELINE_PYTHON
    BASELINE = args.baseline.resolve() if args.baseline else None
    if args.baseline_python:
        BASELINE_PYTHON = args.baseline_python
        BASELINE = BASELINE or REPO
    cases = args.cases.split(",")
    # Child processes get a bytecode cache, as an installed package has (pip compiles .pyc);
    # this machine sets PYTHONDONTWRITEBYTECODE, which would make every CLI run recompile.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(args.dir / "pycache")
    roots = {False: REPO} if BASELINE is None else {False: REPO, True: BASELINE}
    for before, root in roots.items():  # compile once
        subprocess.run([*_command(before), "--help"], stdout=subprocess.DEVNULL, check=True,
                       cwd=tempfile.gettempdir(), env={**os.environ, "PYTHONPATH": str(root)})
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    from genimage import generate

    images = {name: Path(generate(args.dir, name, scale=args.scale))
              for name in ("big14", "big24", "big14-b")}
    load_before = os.getloadavg()
    results: dict[str, dict[str, list[dict]]] = {"layerlab": {}, "skopeo": {}}
    if BASELINE is not None:
        results["before"] = {}
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        work = Path(tmp)
        for run in range(args.runs):
            order = ("layerlab", "skopeo") if run % 2 == 0 else ("skopeo", "layerlab")
            if BASELINE is not None:
                order = ("before", *order) if run % 2 == 0 else (*order, "before")
            tools = {tool: ToolSequence(tool, images, work, run) for tool in order}
            figures: dict[str, dict[str, dict]] = {tool: {} for tool in order}
            try:
                steps = [c for c in STEPS if c in cases or
                         (c == "fresh14" and {"repush", "warm", "shared5"} & set(cases))]
                for case in steps:
                    for tool in order:  # the pair of a case back to back
                        figures[tool][case] = tools[tool].step(case)
            finally:
                for sequence in tools.values():
                    sequence.stop()
            for tool in order:
                for case, value in figures[tool].items():
                    results[tool].setdefault(case, []).append(value)
                print(f"run {run + 1}/{args.runs} {tool}: " + ", ".join(
                    f"{c} {v['seconds']:.2f}s" for c, v in figures[tool].items()), file=sys.stderr)
    load_after = os.getloadavg()
    print_table(results, cases, args.runs, load_before, load_after)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "load": [load_before, load_after],
                                         "runs": args.runs, "scale": args.scale}, indent=1))
    return 0


def _median(values: list[dict], key: str) -> float | None:
    picked = [v[key] for v in values if key in v]
    return statistics.median(picked) if picked else None


def print_table(results: dict, cases: list[str], runs: int, load_before, load_after) -> None:
    print(f"median of {runs} interleaved runs; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); ratio of the medians "
          "(median of the per-run ratios)")
    print("| case | layerlab | skopeo | ratio | goal | met |")
    print("|---|---|---|---|---|---|")
    for case in cases:
        ll, sk = results["layerlab"].get(case), results["skopeo"].get(case)
        if not ll or not sk:
            continue
        t_ll, t_sk = _median(ll, "seconds"), _median(sk, "seconds")
        ratio = t_ll / t_sk
        paired = statistics.median(a["seconds"] / b["seconds"] for a, b in zip(ll, sk))
        time_goal, bytes_goal, absolute = GOALS[case]
        met: bool | None = None
        goal = ""
        if absolute is not None:
            goal, met = f"<= {absolute} s", t_ll <= absolute
        elif time_goal is not None:
            goal, met = f"<= {time_goal}x time", ratio <= time_goal
        print(f"| {case} time | {t_ll:.3f} s | {t_sk:.3f} s | {ratio:.2f}x ({paired:.2f}x) | "
              f"{goal} | {'' if met is None else 'yes' if met else 'no'} |")
        c_ll, c_sk = _median(ll, "cpu"), _median(sk, "cpu")
        if c_ll is not None and c_sk:
            print(f"| {case} client CPU (user+sys) | {c_ll:.2f} s | {c_sk:.2f} s | "
                  f"{c_ll / c_sk:.2f}x | | |")
            r_ll, r_sk = _median(ll, "registry_cpu"), _median(sk, "registry_cpu")
            if r_ll is not None and r_sk:
                cores = os.cpu_count() or 1
                print(f"| {case} Distribution CPU | {r_ll:.2f} s | {r_sk:.2f} s | "
                      f"{r_ll / r_sk:.2f}x | | |")
                print(f"| {case} CPU floor ((client + registry) / {cores} cores) | "
                      f"{(c_ll + r_ll) / cores:.3f} s | {(c_sk + r_sk) / cores:.3f} s | "
                      f"{(c_ll + r_ll) / (c_sk + r_sk):.2f}x | | |")
        if bytes_goal is not None or case in ("fresh24", "shared5"):
            b_ll, b_sk = _median(ll, "bytes"), _median(sk, "bytes")
            if b_ll is not None and b_sk:
                ok = "" if bytes_goal is None else ("yes" if b_ll / b_sk <= bytes_goal else "no")
                goal = "" if bytes_goal is None else f"<= {bytes_goal}x bytes"
                print(f"| {case} pushed bytes | {b_ll / 1e6:.1f} MB | {b_sk / 1e6:.1f} MB | "
                      f"{b_ll / b_sk:.3f}x | {goal} | {ok} |")
    rss_ll = max(v["rss"] for values in results["layerlab"].values() for v in values)
    rss_sk = max(v["rss"] for values in results["skopeo"].values() for v in values)
    print(f"| peak RSS (max over runs) | {rss_ll / 1e6:.0f} MB | {rss_sk / 1e6:.0f} MB | "
          f"{rss_ll / rss_sk:.2f}x | <= 1x | {'yes' if rss_ll <= rss_sk else 'no'} |")
    if "before" in results:
        print("\n| case | layerlab before | layerlab after | after/before |\n|---|---|---|---|")
        for case in cases:
            old, new = results["before"].get(case), results["layerlab"].get(case)
            if old and new:
                t_old, t_new = _median(old, "seconds"), _median(new, "seconds")
                print(f"| {case} time | {t_old:.3f} s | {t_new:.3f} s | {t_new / t_old:.2f}x |")
                b_old, b_new = _median(old, "bytes"), _median(new, "bytes")
                if b_old and b_new:
                    print(f"| {case} pushed bytes | {b_old / 1e6:.1f} MB | {b_new / 1e6:.1f} MB | "
                          f"{b_new / b_old:.3f}x |")
                c_old, c_new = _median(old, "cpu"), _median(new, "cpu")
                if c_old and c_new:
                    print(f"| {case} client CPU | {c_old:.2f} s | {c_new:.2f} s | {c_new / c_old:.2f}x |")
        rss_old = max(v["rss"] for values in results["before"].values() for v in values)
        print(f"| peak RSS (max over runs) | {rss_old / 1e6:.0f} MB | {rss_ll / 1e6:.0f} MB | "
              f"{rss_ll / rss_old:.2f}x |")


if __name__ == "__main__":
    raise SystemExit(main())
