"""Real Docker images for the interop tests, built once and cached between runs.

:func:`docker_fixtures` starts a private dockerd (:mod:`dockerd`) whose data root lives in
the fixture cache (``$LAYERLAB_FIXTURE_CACHE``, else ``~/.cache/layerlab-fixtures``),
makes the base image ``llbase:bookworm`` from ``debootstrap --variant=minbase bookworm``
(the only step that needs Debian's mirror) with ``docker import``, builds the Dockerfiles
of ``tests/docker/`` with the legacy builder (``DOCKER_BUILDKIT=0``: its output names
the build context size) and ``docker save``\\ s each image. Nothing of it is committed.

The images mirror the seed: ``many`` (one RUN per step, files overwritten, deleted and
``chown -R``-ed later), ``merged`` (the same filesystem in fewer layers), ``multistage``;
the build context has a ``.dockerignore`` that keeps large folders out.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from dockerd import DockerEngine, DockerUnavailable, start_dockerd

HERE = Path(__file__).resolve().parent / "docker"
FIXTURE_VERSION = "1"  # bump when the Dockerfiles or the context change
IMAGES = ("many", "merged", "multistage")
MIRROR = "http://deb.debian.org/debian"


def fixture_cache() -> Path:
    """Where the fixtures live between runs."""
    explicit = os.environ.get("LAYERLAB_FIXTURE_CACHE")
    return Path(explicit) if explicit else Path.home() / ".cache" / "layerlab-fixtures"


def write_context(directory: Path) -> None:
    """The build context: the app, and large folders that ``.dockerignore`` keeps out."""
    rng = random.Random(20241201)
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "app" / "lib").mkdir(parents=True)
    (directory / "app" / "main.sh").write_text(
        "#!/bin/sh\necho \"layerlab fixture app\"\nwc -l < /opt/app/data/numbers.txt\n")
    for i in range(20):
        (directory / "app" / "lib" / f"module{i:02}.txt").write_text(
            "".join(f"line {i} {n} {rng.random():.12f}\n" for n in range(400)))
    (directory / "app" / "debug.log").write_bytes(rng.randbytes(300_000))
    (directory / "app" / "keep.log").write_text("kept by the ! exception\n")
    for i in range(12):
        package = directory / "node_modules" / f"pkg{i:02}"
        package.mkdir(parents=True)
        (package / "index.js").write_bytes(rng.randbytes(1_000_000))
    (directory / ".git" / "objects").mkdir(parents=True)
    (directory / ".git" / "objects" / "pack.bin").write_bytes(rng.randbytes(2_000_000))
    shutil.copy(HERE / "dockerignore", directory / ".dockerignore")
    for name in IMAGES:
        shutil.copy(HERE / f"Dockerfile.{name}", directory / f"Dockerfile.{name}")


@dataclass(frozen=True)
class DockerFixtures:
    """The running engine and what was built with it."""

    engine: DockerEngine
    context: Path
    saves: dict[str, Path]              # image name -> its ``docker save`` archive
    context_sizes: dict[str, str]       # "with" / "without" .dockerignore -> docker's figure

    def tag(self, name: str) -> str:
        return f"llfix/{name}:{FIXTURE_VERSION}"


def _base_image(engine: DockerEngine, cache: Path) -> None:
    if engine.docker("image", "inspect", "llbase:bookworm", check=False).returncode == 0:
        return
    rootfs = cache / "rootfs"
    if not (rootfs / "etc" / "debian_version").exists():
        shutil.rmtree(rootfs, ignore_errors=True)
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR],
                       check=True, capture_output=True, timeout=900)
    tar = subprocess.Popen(["tar", "--sort=name", "--numeric-owner", "-C", str(rootfs),
                            "-c", "."], stdout=subprocess.PIPE)
    subprocess.run([engine.client, "import", "-", "llbase:bookworm"], stdin=tar.stdout,
                   env=engine.env, check=True, capture_output=True, timeout=600)
    tar.wait()


_SENDING = re.compile(r"Sending build context to Docker daemon\s+(\S+)")


def _build(engine: DockerEngine, context: Path, name: str, tag: str) -> str:
    proc = engine.docker("build", "--network", "none", "-f", str(context / f"Dockerfile.{name}"), "-t", tag,
                         str(context), env={"DOCKER_BUILDKIT": "0"}, timeout=900)
    return _SENDING.findall(proc.stdout.decode())[-1]


def build_fixtures(engine: DockerEngine, cache: Path) -> DockerFixtures:
    """Build (or find) every fixture image on ``engine``; save them under ``cache``."""
    _base_image(engine, cache)
    context = cache / f"context-{FIXTURE_VERSION}"
    sizes_file = cache / f"context-sizes-{FIXTURE_VERSION}.json"
    saves_dir = cache / f"saves-{FIXTURE_VERSION}"
    if not context.exists():
        write_context(context)
    fixtures = DockerFixtures(engine, context, {}, {})
    sizes = json.loads(sizes_file.read_text()) if sizes_file.exists() else {}
    for name in IMAGES:
        tag = fixtures.tag(name)
        if engine.docker("image", "inspect", tag, check=False).returncode != 0:
            sizes["with"] = _build(engine, context, name, tag)
        save = saves_dir / f"{name}.tar"
        if not save.exists():
            saves_dir.mkdir(parents=True, exist_ok=True)
            partial = save.with_suffix(".tar.partial")
            engine.docker("save", "-o", str(partial), tag)
            partial.replace(save)
        fixtures.saves[name] = save
    if "without" not in sizes:
        hidden = context / ".dockerignore"
        hidden.rename(context / "dockerignore.off")
        try:
            sizes["without"] = _build(engine, context, "multistage", "llfix/no-ignore:scratch")
        finally:
            (context / "dockerignore.off").rename(hidden)
        engine.docker("rmi", "llfix/no-ignore:scratch", check=False)
    if "with" not in sizes:  # images found built, figure lost: rebuild one from its cache
        sizes["with"] = _build(engine, context, "multistage", fixtures.tag("multistage"))
    sizes_file.write_text(json.dumps(sizes))
    fixtures.context_sizes.update(sizes)
    return fixtures


def docker_fixtures() -> tuple[DockerFixtures, FileLock]:
    """Start an engine on the cached data root and build the fixtures; returns them and
    the lock (one engine per data root: concurrent runs wait) to release after stopping."""
    cache = fixture_cache()
    cache.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cache / "engine.lock"))
    lock.acquire(timeout=1800)
    try:
        engine = start_dockerd(cache / "docker")
    except DockerUnavailable:
        lock.release()
        raise
    try:
        return build_fixtures(engine, cache), lock
    except BaseException:
        engine.stop()
        lock.release()
        raise
