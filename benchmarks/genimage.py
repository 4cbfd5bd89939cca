#!/usr/bin/env python3
"""Deterministic generator of the big benchmark images (docker-save archives, not committed).

    python benchmarks/genimage.py [OUT_DIR] [--scale 0.25] [--only big14] [--no-ratio]

- ``big14.tar``: 780,000,000 bytes of files (18,248 files: about 33 % source-like text, 54 %
  binary-like, 13 % already-compressed) in 14 uncompressed layers; gzip -6 ratio about 2.4
  (the ratios of zlib levels 1 and 6 and ISA-L levels 1 and 3 are printed).
- ``big24.tar``: the same files split into 24 layers (big14's layers are merges of
  consecutive big24 layers, as in the seed post's 24 -> 14 layer Dockerfile).
- ``big14-b.tar``: shares big14's first 5 layer tars byte for byte; its 9 rebuilt layers
  have files modified, removed (dropped, or whiteouts for files of the shared layers) and
  added, and a newer mtime.

At ``--scale S`` sizes and file counts scale by S and files are named ``big14-xS.tar``.
A finished archive has a sidecar ``<archive>.json`` (size, digests, layout); ``generate``
reuses an archive whose sidecar matches.  Benchmarks import :func:`generate`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tarfile
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _content  # noqa: E402
from layerlab.samples.imagewriter import EPOCH, Image, Layer, TarWriter, canonical_json, write_docker_archive  # noqa: E402

GENERATOR_VERSION = 3
DEFAULT_OUT = Path("/tmp/layerlab-bench")
NAMES = ("big14", "big24", "big14-b")
TOTAL_BYTES = 780_000_000
FILE_COUNT = 18_248
KINDS = ("text", "binary", "packed")
BYTE_SHARE = {"text": 0.33, "binary": 0.54, "packed": 0.13}
FILE_SHARE = {"text": 0.62, "binary": 0.28, "packed": 0.10}
SIGMA = {"text": 1.0, "binary": 1.6, "packed": 1.2}
PACKAGES = (
    "rootfs", "libc", "openssl", "python3", "perl", "gcc", "nodejs", "nginx", "postgres", "redis",
    "imagemagick", "fonts", "locales", "java", "golang", "ruby", "php", "git", "curl", "vendor",
    "app-core", "app-api", "app-web", "app-assets",
)
GROUP_WEIGHTS = (12, 3, 6, 2, 5, 4, 3, 8, 2, 4, 6, 3, 5, 2, 4, 3, 7, 2, 3, 4, 2, 5, 3, 2)
MERGE_14 = (1, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1)  # big24 layers per big14 layer
SHARED_B = 5  # leading layers big14-b shares with big14
REBUILD_MTIME = EPOCH + 86400


@dataclass(frozen=True)
class FileSpec:
    """One generated file: where it lives, what material, how big, and which big24 layer."""

    path: str
    kind: str
    size: int
    seed: int
    group: int
    mtime: int = EPOCH

    @property
    def mode(self) -> int:
        """0755 for binaries, 0644 otherwise."""
        return 0o755 if self.kind == "binary" else 0o644


def archive_path(out_dir: Path, name: str, scale: float = 1.0) -> Path:
    """Where ``name`` at ``scale`` is written: ``big14.tar`` or ``big14-x0.25.tar``."""
    return Path(out_dir) / (f"{name}.tar" if scale == 1 else f"{name}-x{scale:g}.tar")


def _sizes(rng: random.Random, count: int, total: int, sigma: float) -> list[int]:
    raw = [rng.lognormvariate(0, sigma) for _ in range(count)]
    factor = total / sum(raw)
    sizes = [max(1, int(x * factor)) for x in raw]
    sizes[sizes.index(max(sizes))] += total - sum(sizes)
    return sizes


def _path(kind: str, group: int, index: int) -> str:
    pkg = PACKAGES[group]
    if kind == "text":
        return f"opt/app/src/{pkg}/m{index % 13:02d}/mod_{index:05d}.py"
    if kind == "binary":
        return f"usr/lib/{pkg}/lib{pkg}_{index:05d}.so"
    return f"opt/app/static/{pkg}/asset_{index:05d}.png"


def plan(scale: float = 1.0) -> list[FileSpec]:
    """The files of big14/big24 at ``scale``: exact byte total, kinds by byte share."""
    rng = random.Random(f"layerlab-bench-plan:{scale!r}")
    total, count = round(TOTAL_BYTES * scale), max(48, round(FILE_COUNT * scale))
    kinds: list[tuple[str, int]] = []
    left_bytes, left_files = total, count
    for i, kind in enumerate(KINDS):
        last = i == len(KINDS) - 1
        n = left_files if last else round(count * FILE_SHARE[kind])
        b = left_bytes if last else round(total * BYTE_SHARE[kind])
        kinds += [(kind, size) for size in _sizes(rng, n, b, SIGMA[kind])]
        left_bytes, left_files = left_bytes - b, left_files - n
    rng.shuffle(kinds)
    groups = list(range(len(PACKAGES))) + rng.choices(range(len(PACKAGES)), GROUP_WEIGHTS,
                                                      k=len(kinds) - len(PACKAGES))
    return [FileSpec(_path(kind, g, i), kind, size, rng.getrandbits(48), g)
            for i, ((kind, size), g) in enumerate(zip(kinds, groups))]


def layer_groups(name: str) -> list[list[int]]:
    """Which big24 groups make each layer of the named image."""
    if name == "big24":
        return [[g] for g in range(len(PACKAGES))]
    out, start = [], 0
    for n in MERGE_14:
        out.append(list(range(start, start + n)))
        start += n
    return out


def plan_b(files: list[FileSpec], scale: float) -> tuple[list[FileSpec], list[str]]:
    """big14-b's files and its whiteouts (for files of the shared layers)."""
    rng = random.Random(f"layerlab-bench-b:{scale!r}")
    rebuilt = {g for groups in layer_groups("big14")[SHARED_B:] for g in groups}
    out, whiteouts = [], []
    for f in files:
        r = rng.random()
        if f.group not in rebuilt:
            if r < 0.01:
                whiteouts.append(f.path)
            out.append(f)
        elif r < 0.06:  # modified: new content, size within +-10 %
            out.append(replace(f, size=max(1, int(f.size * rng.uniform(0.9, 1.1))),
                               seed=f.seed ^ 0x5A5A5A, mtime=REBUILD_MTIME))
        elif r >= 0.09:  # unchanged content, rebuilt layer mtime; 0.06-0.09: removed
            out.append(replace(f, mtime=REBUILD_MTIME))
    if not whiteouts:  # tiny scales: still exercise a whiteout
        whiteouts.append(next(f.path for f in files if f.group not in rebuilt))
    sizes = [f.size for f in files]
    for j in range(max(3, len(files) // 25)):
        like = files[rng.randrange(len(files))]
        group = rng.choice(sorted(rebuilt))
        out.append(FileSpec(_path(like.kind, group, 100000 + j), like.kind,
                            rng.choice(sizes), rng.getrandbits(48), group, REBUILD_MTIME))
    return out, whiteouts


def write_layer(path: Path, files: list[FileSpec], whiteouts: list[str], mtime: int) -> Layer:
    """Stream one layer tar (sorted entries with parent directories) to ``path``."""
    entries: dict[str, FileSpec | str] = {f.path: f for f in files}
    for w in whiteouts:
        head, _, base = w.rpartition("/")
        entries[f"{head}/.wh.{base}"] = "whiteout"
    for name in list(entries):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            entries.setdefault("/".join(parts[:i]), "dir")
    pools = _content.pools()
    with open(path, "wb") as raw:
        tar = TarWriter(raw, uname="root", gname="root", mtime=mtime)
        for name in sorted(entries):
            e = entries[name]
            if e == "dir":
                tar.add_dir(name)
            elif e == "whiteout":
                tar.add_file(name, b"")
            else:
                tar.add_chunks(name, e.size, _content.chunks(pools[e.kind], e.size, e.seed),
                               e.mode, e.mtime)
        diff_id, size = tar.close()
    return Layer(diff_id, size, path=path)


def _created_by(groups: list[int]) -> str:
    if groups == [0]:
        return "/bin/sh -c #(nop) ADD file:" + "0" * 56 + "a1b2c3d4 in / "
    cmds = [f"apt-get install -y --no-install-recommends {PACKAGES[g]}" if g < 20
            else f"cp -r /build/{PACKAGES[g]} /opt/app" for g in groups if g]
    return "/bin/sh -c " + " && ".join(cmds)


def _config(history_groups: list[list[int]], layers: list[Layer], created: str) -> bytes:
    history = [{"created": created, "created_by": _created_by(g)} for g in history_groups]
    history += [{"created": created, "created_by": f"/bin/sh -c #(nop)  {step}", "empty_layer": True}
                for step in ("WORKDIR /opt/app", 'CMD ["/opt/app/run"]')]
    config = {
        "architecture": "amd64", "os": "linux", "created": created, "history": history,
        "config": {"Cmd": ["/opt/app/run"], "WorkingDir": "/opt/app",
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }
    return canonical_json(config)


def build(out_dir: Path, name: str, scale: float = 1.0) -> dict:
    """Write one archive (no cache check); return its sidecar metadata."""
    if name not in NAMES:
        raise ValueError(f"unknown benchmark image {name!r} (one of {', '.join(NAMES)})")
    target = archive_path(out_dir, name, scale)
    work = target.with_name(f".work-{target.stem}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files, whiteouts = plan(scale), []
    if name == "big14-b":
        files, whiteouts = plan_b(files, scale)
    by_group: dict[int, list[FileSpec]] = {}
    for f in files:
        by_group.setdefault(f.group, []).append(f)
    groups = layer_groups(name)
    layers = []
    for i, layer_groups_ in enumerate(groups):
        rebuilt = name == "big14-b" and i >= SHARED_B
        members = [f for g in layer_groups_ for f in by_group.get(g, [])]
        layers.append(write_layer(work / f"layer-{i:02d}.tar", members,
                                  whiteouts if rebuilt and i == SHARED_B else [],
                                  REBUILD_MTIME if rebuilt else EPOCH))
    created = "2024-01-02T00:00:00Z" if name == "big14-b" else "2024-01-01T00:00:00Z"
    image = Image(_config(groups, layers, created), tuple(layers), (f"{name}:latest",))
    partial = target.with_suffix(".partial")
    digest, size = write_docker_archive(partial, [image])
    os.replace(partial, target)
    shutil.rmtree(work)
    meta = {
        "generator_version": GENERATOR_VERSION, "name": name, "scale": scale,
        "size": size, "sha256": digest, "config_digest": image.config_digest,
        "diff_ids": [layer.diff_id for layer in layers],
        "layer_sizes": [layer.size for layer in layers],
        "files": len(files), "file_bytes": sum(f.size for f in files), "whiteouts": len(whiteouts),
    }
    Path(f"{target}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def cached_meta(out_dir: Path, name: str, scale: float = 1.0) -> dict | None:
    """The sidecar of an existing, complete archive of this generator version, else None."""
    target = archive_path(out_dir, name, scale)
    try:
        meta = json.loads(Path(f"{target}.json").read_text())
        ok = (meta["generator_version"] == GENERATOR_VERSION and meta["scale"] == scale
              and target.stat().st_size == meta["size"])
    except (OSError, ValueError, KeyError):
        return None
    return meta if ok else None


def generate(out_dir: Path | str = DEFAULT_OUT, name: str = "big14", scale: float = 1.0) -> Path:
    """Path of the named benchmark archive at ``scale``, generated unless already there."""
    out_dir = Path(out_dir)
    if cached_meta(out_dir, name, scale) is None:
        out_dir.mkdir(parents=True, exist_ok=True)
        build(out_dir, name, scale)
    return archive_path(out_dir, name, scale)


def _deflaters() -> dict[str, Callable[[], Any]]:
    engines: dict[str, Callable[[], Any]] = {
        f"zlib-{level}": (lambda level=level: zlib.compressobj(level, zlib.DEFLATED, -15, 8))
        for level in (1, 6)}
    try:
        from isal import isal_zlib
    except ImportError:
        return engines
    for level in (1, 3):
        engines[f"isal-{level}"] = lambda level=level: isal_zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return engines


def engine_ratios(archive: Path) -> dict[str, float]:
    """Compression ratio of every layer.tar of ``archive`` per deflate engine (whole layers).

    zlib levels 1 and 6, and ISA-L levels 1 and 3 when ``isal`` is installed: the figures
    ``ANCHORS.md`` gives for the reference image, so the two can be compared.
    """
    raw_total, packed = 0, dict.fromkeys(_deflaters(), 0)
    with tarfile.open(archive) as tar:
        for member in tar:
            if not member.name.endswith("layer.tar") or not member.isfile():
                continue
            layer = tar.extractfile(member)
            engines = {name: make() for name, make in _deflaters().items()}
            while data := layer.read(1 << 20):
                raw_total += len(data)
                for name, engine in engines.items():
                    packed[name] += len(engine.compress(data))
            for name, engine in engines.items():
                packed[name] += len(engine.flush())
    return {name: raw_total / size for name, size in packed.items()}


def main(argv: list[str] | None = None) -> int:
    """Build the benchmark images, print sizes, timings and engine ratios."""
    parser = argparse.ArgumentParser(description="Generate the big benchmark images.")
    parser.add_argument("out_dir", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--scale", type=float, default=1.0, help="size factor (1 = 780 MB of files)")
    parser.add_argument("--only", choices=NAMES, action="append", help="build only this image")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--no-ratio", action="store_true", help="skip the engine ratios")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    for name in args.only or NAMES:
        started = time.perf_counter()
        meta = None if args.force else cached_meta(args.out_dir, name, args.scale)
        state = "cached"
        if meta is None:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            meta, state = build(args.out_dir, name, args.scale), "built"
        path = archive_path(args.out_dir, name, args.scale)
        line = (f"{path}: {state} in {time.perf_counter() - started:.1f} s, {meta['size']:,} bytes, "
                f"{len(meta['diff_ids'])} layers, {meta['files']:,} files, {meta['file_bytes']:,} file bytes")
        if not args.no_ratio:
            ratios = engine_ratios(path)
            line += ", ratios " + " ".join(f"{k} {v:.2f}" for k, v in ratios.items())
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
