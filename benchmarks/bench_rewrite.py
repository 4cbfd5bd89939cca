#!/usr/bin/env python3
"""layerlab rewrite vs the reference tools, on the 780 MB image (benchmarks/genimage.py).

    python benchmarks/bench_rewrite.py [--runs 3] [--scale 1.0] [--dir /tmp/layerlab-bench]
                                       [--cases gzip,zstd,squash,merge] [--json FILE]

Cases (each tool a child process: wall time, CPU, peak RSS; the two tools of a case run
back to back, which goes first alternating run by run; outputs go to fresh directories):

* ``gzip``  - big14 (docker-archive, uncompressed layers) to an OCI layout with gzip
  layers: ``layerlab rewrite --compression gzip`` vs ``skopeo copy`` (which gzips
  uncompressed layers for an OCI destination);
* ``zstd``  - the same with zstd: ``--compression zstd`` vs ``skopeo copy
  --dest-compress-format zstd``;
* ``squash`` - flatten big14 (from an OCI layout with gzip layers, prepared once with
  skopeo) into one gzip layer: ``layerlab rewrite --squash --compression gzip`` vs
  crane-style by hand: ``umoci unpack`` then ``tar -c | gzip -1`` (go-containerregistry's
  flatten writes gzip at BestSpeed) and ``sha256sum`` for the digest;
* ``merge`` - big24 -> 14 layers (``--target 14``), layerlab alone (no tool does it):
  the time, and whether the merged sizes are the ones ``layerlab history`` predicted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_push import CPU_SECONDS, LAYERLAB, run_child  # noqa: E402


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _layerlab_rewrite(src: str, out: Path, *args: str) -> dict:
    wall, rss = run_child([*LAYERLAB, "rewrite", src, f"oci:{out}:x", "-q", *args])
    return {"seconds": wall, "rss": rss, "cpu": CPU_SECONDS[-1], "bytes": _dir_bytes(out)}


def _skopeo(src: str, out: Path, *args: str) -> dict:
    wall, rss = run_child(["skopeo", "copy", "--quiet", *args, src, f"oci:{out}:x"])
    return {"seconds": wall, "rss": rss, "cpu": CPU_SECONDS[-1], "bytes": _dir_bytes(out)}


def _flatten_by_hand(layout: Path, out: Path) -> dict:
    script = (f"umoci unpack --rootless --image {layout}:x {out}/bundle && "
              f"tar --numeric-owner -C {out}/bundle/rootfs -cf - . | gzip -1 > {out}/layer.gz && "
              f"sha256sum {out}/layer.gz > {out}/digest && rm -rf {out}/bundle")
    out.mkdir(parents=True)
    wall, rss = run_child(["sh", "-c", script])
    return {"seconds": wall, "rss": rss, "cpu": CPU_SECONDS[-1],
            "bytes": (out / "layer.gz").stat().st_size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/layerlab-bench"))
    parser.add_argument("--cases", default="gzip,zstd,squash,merge")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    cases = args.cases.split(",")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(args.dir / "pycache")
    for tool in ("skopeo", "umoci"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    from genimage import generate

    big14 = Path(generate(args.dir, "big14", scale=args.scale))
    big24 = Path(generate(args.dir, "big24", scale=args.scale))
    load_before = os.getloadavg()
    results: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rewrite-", dir=args.dir) as tmp:
        work = Path(tmp)
        layout = work / "big14-oci"
        if "squash" in cases:
            subprocess.run(["skopeo", "copy", "--quiet", f"docker-archive:{big14}",
                            f"oci:{layout}:x"], check=True)
        n = 0

        def fresh() -> Path:
            nonlocal n
            n += 1
            return work / f"out-{n}"

        pairs = {
            "gzip": (lambda: _layerlab_rewrite(f"docker-archive:{big14}", fresh(),
                                               "--compression", "gzip"),
                     lambda: _skopeo(f"docker-archive:{big14}", fresh())),
            "zstd": (lambda: _layerlab_rewrite(f"docker-archive:{big14}", fresh(),
                                               "--compression", "zstd"),
                     lambda: _skopeo(f"docker-archive:{big14}", fresh(),
                                     "--dest-compress-format", "zstd")),
            "squash": (lambda: _layerlab_rewrite(f"oci:{layout}:x", fresh(), "--squash",
                                                 "--compression", "gzip"),
                       lambda: _flatten_by_hand(layout, fresh())),
            "merge": (lambda: _layerlab_rewrite(f"docker-archive:{big24}", fresh(),
                                                "--target", "14"), None),
        }
        for run in range(args.runs):
            for case in cases:
                ours, theirs = pairs[case]
                order = [("layerlab", ours), ("reference", theirs)]
                if run % 2:
                    order.reverse()
                for tool, fn in order:
                    if fn is None:
                        continue
                    figures = fn()
                    results.setdefault(case, {}).setdefault(tool, []).append(figures)
                    print(f"run {run + 1} {case} {tool}: {figures['seconds']:.2f} s",
                          file=sys.stderr)
                for out in work.glob("out-*"):
                    shutil.rmtree(out, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"median of {args.runs} runs; load average before {load_before[0]:.2f}, "
          f"after {load_after[0]:.2f}")
    print("| case | layerlab s | reference s | ratio | layerlab MB | reference MB | "
          "layerlab CPU s | reference CPU s | layerlab RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        ll, ref = results[case].get("layerlab", []), results[case].get("reference", [])

        def med(values: list[dict], key: str) -> float:
            return statistics.median(v[key] for v in values)

        t_ll = med(ll, "seconds")
        row = [case, f"{t_ll:.2f}"]
        if ref:
            t_ref = med(ref, "seconds")
            row += [f"{t_ref:.2f}", f"{t_ll / t_ref:.2f}x", f"{med(ll, 'bytes') / 1e6:.1f}",
                    f"{med(ref, 'bytes') / 1e6:.1f}", f"{med(ll, 'cpu'):.2f}",
                    f"{med(ref, 'cpu'):.2f}"]
        else:
            row += ["-", "-", f"{med(ll, 'bytes') / 1e6:.1f}", "-", f"{med(ll, 'cpu'):.2f}", "-"]
        row.append(f"{med(ll, 'rss') / 1e6:.0f}")
        print("| " + " | ".join(row) + " |")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "load": [load_before, load_after],
                                         "runs": args.runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
