#!/usr/bin/env python3
"""The measured reasons for the code layerlab writes itself where a library exists.

    python benchmarks/bench_handwritten.py [--entries N] [--rows N] [--runs N]

Side by side, medians of ``--runs``:

1. tar headers: :func:`layerlab.analysis.scan.scan_layer` against :mod:`tarfile`
   (``getmembers()`` of the same uncompressed layer file, N small files);
2. result tables: :func:`layerlab._html.html_table` / ``text_table`` against pandas
   (``DataFrame.to_html()`` / ``to_string()``; Styler needs jinja2, which layerlab does not
   depend on), rendering and the import each costs in a fresh interpreter.

Progress bars are tqdm's and argument parsing is argparse's: nothing to compare.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import hashlib

from layerlab import Digest, Layer
from layerlab.analysis.scan import scan_layer


def _median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def digest_file(path: Path) -> Digest:
    with open(path, "rb") as f:
        return Digest("sha256:" + hashlib.file_digest(f, "sha256").hexdigest())


def _write_tar(path: Path, entries: int) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(entries):
            data = b"x" * (i % 700)
            info = tarfile.TarInfo(f"usr/share/doc/package-{i // 50}/file-{i}.txt")
            info.size = len(data)
            info.mtime = 1704067200
            tar.addfile(info, io.BytesIO(data))


def _import_seconds(statement: str, runs: int) -> float:
    code = (f"import time; t = time.perf_counter(); {statement}; "
            "print(time.perf_counter() - t)")
    return statistics.median(
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout) for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "layer.tar"
        _write_tar(path, args.entries)
        size = path.stat().st_size
        digest = digest_file(path)
        layer = Layer(digest=digest, diff_id=digest, size=size, compression="none",
                      media_type="application/vnd.oci.image.layer.v1.tar",
                      opener=lambda: open(path, "rb"), seekable=True)
        ours = _median(lambda: scan_layer(layer), args.runs)

        def with_tarfile() -> None:
            with tarfile.open(path) as tar:
                tar.getmembers()

        theirs = _median(with_tarfile, args.runs)
        assert len(scan_layer(layer).entries) == args.entries
        rows_out.append((f"tar headers, {args.entries} entries ({size >> 20} MiB)",
                         "scan_layer", ours, "tarfile.getmembers", theirs))

    import pandas as pd

    from layerlab._html import html_table, text_table

    data = [{"layer": f"sha256:{i:064x}", "size": i * 1000, "created_by": f"RUN step {i}",
             "seconds": i / 7} for i in range(args.rows)]
    frame = pd.DataFrame(data)
    rows_out.append((f"HTML table, {args.rows} rows", "html_table",
                     _median(lambda: html_table(data), args.runs), "DataFrame.to_html",
                     _median(frame.to_html, args.runs)))
    rows_out.append((f"text table, {args.rows} rows", "text_table",
                     _median(lambda: text_table(data), args.runs), "DataFrame.to_string",
                     _median(frame.to_string, args.runs)))
    rows_out.append(("import", "layerlab._html", _import_seconds("import layerlab._html", args.runs),
                     "pandas", _import_seconds("import pandas", args.runs)))

    print(f"{'case':44} {'layerlab':>22} {'library':>28} {'ratio':>7}")
    for case, ours_name, ours_s, lib_name, lib_s in rows_out:
        print(f"{case:44} {ours_name:>12} {ours_s * 1000:7.1f} ms "
              f"{lib_name:>18} {lib_s * 1000:7.1f} ms {ours_s / lib_s:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
