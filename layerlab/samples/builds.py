"""Deterministic series of CI builds (for ``layerlab reuse``, its tests and the
workshop's layer-order exercise), made with the sample images' writer: one docker-save
archive (uncompressed layers) per build.

``series`` (the layer-order advice case), 5 builds of 5 layers::

    0  ADD rootfs         stable
    1  COPY app /app      changes every build (main.py grows 500 bytes a build)
    2  RUN apt-get curl   stable, commutes with 1
    3  RUN apt-get jq     stable, commutes with 1
    4  COPY app.conf      stable, commutes with 1

``blocked=True`` adds two stable layers above ``COPY app`` that must not move below it::

    5  RUN rm /app/README.md        whiteout of a path layer 1 writes
    6  RUN echo ... (app/README.md)  writes a path layer 1 writes (and 5 whites out)
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from .defs import START, Step, build, exe, file, text
from .imagewriter import Entry, Image, write_docker_archive

BUILDS = 5


def _rootfs() -> Step:
    return Step("/bin/sh -c #(nop) ADD file:rootfs in / ", (
        exe("bin/busybox", 6000), Entry("bin/sh", "symlink", target="busybox"),
        file("etc/os-release", b'NAME="Sample Linux"\n'), exe("usr/lib/libc.so.6", 9000)))


def _app(n: int) -> Step:
    return Step("COPY app /app # buildkit", (
        file("app/main.py", text(f"main-{n}", 2000 + 500 * n)),
        file("app/README.md", b"# the app\n")))


def _apt(package: str, size: int) -> Step:
    return Step(f"RUN /bin/sh -c apt-get install -y {package} # buildkit", (
        exe(f"usr/bin/{package}", size), file(f"usr/share/doc/{package}/copyright",
                                               text(f"{package}-copyright", 700))))


def _conf() -> Step:
    return Step("COPY app.conf /etc/app.conf # buildkit",
                (file("etc/app.conf", b"listen = 8080\nworkers = 4\n"),))


def _remove_readme() -> Step:
    return Step("RUN /bin/sh -c rm /app/README.md # buildkit",
                (Entry("app", "dir"), file("app/.wh.README.md", b"")))


def _rewrite_readme() -> Step:
    return Step("RUN /bin/sh -c echo built >> /app/NOTES # buildkit",
                (file("app/NOTES", b"built\n"), file("app/README.md", b"# the app (built)\n")))


def steps(n: int, blocked: bool = False) -> list[Step]:
    """The steps of build ``n`` (0-based)."""
    out = [_rootfs(), _app(n), _apt("curl", 12000), _apt("jq", 5000), _conf()]
    if blocked:
        out += [_remove_readme(), _rewrite_readme()]
    return out


def build_image(n: int, blocked: bool = False) -> Image:
    """Build ``n``: tagged ``app:<n+1>``, made one day after build ``n - 1``."""
    return build(steps(n, blocked), {"Cmd": ["/app/main.py"]}, (f"app:{n + 1}",),
                 start=START + timedelta(days=n))


def write_series(directory: Path, builds: int = BUILDS, blocked: bool = False) -> list[Path]:
    """One docker-save archive per build, ``build-<n>.tar``, oldest first."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(builds):
        path = directory / f"build-{n}.tar"
        write_docker_archive(path, [build_image(n, blocked)])
        paths.append(path)
    return paths


def layer_sizes(n: int, blocked: bool = False) -> list[int]:
    """The tar size of each layer of build ``n``, from the writer (not from layerlab)."""
    return [layer.size for layer in build_image(n, blocked).layers]
