#!/usr/bin/env python3
"""``layerlab push`` vs ``docker push`` (Debian's dockerd 20.10) vs ``skopeo copy``, on the
same images, into Debian's Distribution (docker-registry 2.8.2) on loopback.

    python benchmarks/bench_docker_push.py [--runs 3] [--scale 0.5] [--dir /tmp/layerlab-bench]
                                           [--json results.json]

The images are genimage's big14 and big24 (``benchmarks/genimage.py``), ``docker load``-ed
into a private dockerd (started here: own socket, no iptables, no bridge) for ``docker
push``, and read from the same archives by layerlab and skopeo. Every tool pushes to
Distribution instances of its own, fresh every run; within a run the three tools alternate
case by case (the order rotates run by run). Wall time and peak RSS of each client process
come from ``wait4`` (for docker, the client: the engine does the work, so its RSS is not
comparable and is not shown); pushed bytes are measured in the registry's storage.

Cases: ``fresh14`` (big14 to an empty registry: each tool compresses and uploads every
layer), ``repush14`` (big14 again to the same registry, each tool with the state a
re-push on the same machine has: docker's layer metadata, layerlab's digest cache,
skopeo's blob-info cache), ``fresh24`` (big24 to another empty registry).

docker's engine keeps what it learned about layers between runs (its distribution
metadata), as a CI runner that pushed before does; a "fresh" push to a new registry still
compresses and uploads everything (the HEADs of known digests answer 404).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_push import SKOPEO_CACHE, Distribution, layerlab, run_child, skopeo  # noqa: E402
from dockerd import DockerEngine, start_dockerd  # noqa: E402

TOOLS = ("layerlab", "docker", "skopeo")
CASES = ("fresh14", "repush14", "fresh24")


class Runner:
    """One tool's pushes of one run, each on registries of its own."""

    def __init__(self, tool: str, engine: DockerEngine, images: dict[str, Path], work: Path,
                 run: int) -> None:
        self.tool, self.engine, self.images, self.work, self.run = tool, engine, images, work, run
        self.cache = Path(tempfile.mkdtemp(prefix=f"ll-cache-{tool}-", dir=work))
        self.registries: dict[str, Distribution] = {}

    def _registry(self, name: str) -> Distribution:
        if name not in self.registries:
            self.registries[name] = Distribution(self.work / f"reg-{self.tool}-{self.run}-{name}")
        return self.registries[name]

    def _push(self, image: str, dest: str, keep: bool) -> tuple[float, int]:
        if self.tool == "skopeo":
            return skopeo(self.images[image], dest, keep_cache=keep)
        if self.tool == "layerlab":
            return layerlab(self.images[image], dest, self.cache)
        self.engine.docker("tag", f"bench/{image}:loaded", dest)
        try:
            return run_child([self.engine.client, "push", "--quiet", dest], env=self.engine.env)
        finally:
            self.engine.docker("rmi", dest)

    def step(self, case: str) -> dict:
        reg = self._registry("b" if case == "fresh24" else "a")
        image = "big24" if case == "fresh24" else "big14"
        before = reg.blob_bytes()
        seconds, rss = self._push(image, f"{reg.host}/bench/{image}:{self.run}",
                                  keep=case == "repush14")
        return {"seconds": seconds, "rss": rss, "bytes": reg.blob_bytes() - before}

    def stop(self) -> None:
        for reg in self.registries.values():
            reg.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/layerlab-bench"))
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args(argv)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(args.dir / "pycache")
    from genimage import generate

    images = {name: Path(generate(args.dir, name, scale=args.scale)) for name in ("big14", "big24")}
    results: dict[str, dict[str, list[dict]]] = {tool: {} for tool in TOOLS}
    with start_dockerd() as engine, tempfile.TemporaryDirectory(prefix="bench-dpush-") as tmp:
        for name, archive in images.items():
            loaded = engine.docker("load", "-i", str(archive)).stdout.decode()
            engine.docker("tag", loaded.strip().split()[-1], f"bench/{name}:loaded")
        work = Path(tmp)
        for run in range(args.runs):
            order = TOOLS[run % 3:] + TOOLS[:run % 3]
            SKOPEO_CACHE.unlink(missing_ok=True)
            runners = {tool: Runner(tool, engine, images, work, run) for tool in order}
            try:
                for case in CASES:
                    for tool in order:
                        results[tool].setdefault(case, []).append(runners[tool].step(case))
            finally:
                for runner in runners.values():
                    runner.stop()
            print(f"run {run + 1}/{args.runs}: " + "; ".join(
                f"{t} " + " ".join(f"{c} {results[t][c][-1]['seconds']:.2f}s" for c in CASES)
                for t in order), file=sys.stderr)
    print_table(results, args.runs, args.scale, images)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "runs": args.runs,
                                         "scale": args.scale}, indent=1))
    return 0


def print_table(results: dict, runs: int, scale: float, images: dict[str, Path]) -> None:
    def med(tool: str, case: str, key: str) -> float:
        return statistics.median(v[key] for v in results[tool][case])

    sizes = ", ".join(f"{n} {p.stat().st_size / 1e6:.0f} MB" for n, p in images.items())
    print(f"\nmedians of {runs} runs, scale {scale} ({sizes}); ratios are layerlab / other")
    print(f"{'case':10} {'layerlab':>10} {'docker':>10} {'skopeo':>10} {'vs docker':>10} "
          f"{'vs skopeo':>10}  pushed MB (layerlab / docker / skopeo)")
    for case in CASES:
        t = {tool: med(tool, case, "seconds") for tool in TOOLS}
        b = {tool: med(tool, case, "bytes") / 1e6 for tool in TOOLS}
        print(f"{case:10} {t['layerlab']:9.3f}s {t['docker']:9.3f}s {t['skopeo']:9.3f}s "
              f"{t['layerlab'] / t['docker']:9.2f}x {t['layerlab'] / t['skopeo']:9.2f}x  "
              f"{b['layerlab']:.1f} / {b['docker']:.1f} / {b['skopeo']:.1f}")
    rss = {tool: med(tool, "fresh14", "rss") / 1e6 for tool in ("layerlab", "skopeo")}
    print(f"peak RSS fresh14: layerlab {rss['layerlab']:.0f} MB, skopeo {rss['skopeo']:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
