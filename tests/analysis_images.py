"""Small hand-made images for the analysis tests: raw layer tars (whiteouts, opaque
markers, missing parents, hard links ...) written as docker-save archives with the
sample images' writer, and a reference extractor that applies layers to a directory."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Iterable, Sequence

from layerlab.samples.imagewriter import EPOCH, Image, Layer, TarWriter, canonical_json, write_docker_archive  # noqa: E402

# An entry: ("file", path, data[, mode[, mtime]]), ("dir", path), ("symlink", path, target),
# ("hardlink", path, target), ("whiteout", path) -> dir/.wh.name, ("opaque", dir).
Spec = tuple


def layer_tar(entries: Iterable[Spec]) -> Layer:
    """A layer tar with exactly these entries, in this order (no parents added)."""
    buf = io.BytesIO()
    tar = TarWriter(buf, uname="root", gname="root")
    for spec in entries:
        kind, path = spec[0], spec[1]
        if kind == "file":
            data = spec[2]
            mode = spec[3] if len(spec) > 3 else 0o644
            mtime = spec[4] if len(spec) > 4 else None
            tar.add_file(path, data, mode, mtime)
        elif kind == "dir":
            tar.add_dir(path, spec[2] if len(spec) > 2 else 0o755)
        elif kind == "symlink":
            tar.add_symlink(path, spec[2])
        elif kind == "hardlink":
            tar.add_hardlink(path, spec[2])
        elif kind == "whiteout":
            head, _, name = path.rpartition("/")
            tar.add_file((head + "/" if head else "") + ".wh." + name, b"")
        elif kind == "opaque":
            tar.add_file(path + "/.wh..wh..opq", b"")
        else:
            raise ValueError(kind)
    diff_id, size = tar.close()
    return Layer(diff_id, size, data=buf.getvalue())


def image(layers: Sequence[Sequence[Spec]], tag: str = "test:latest",
          created_by: Sequence[str] | None = None, architecture: str = "amd64",
          env: Sequence[str] = ()) -> Image:
    """An image of raw layers, with a RUN history step per layer."""
    tars = [layer_tar(entries) for entries in layers]
    history = [{"created": "2024-01-01T00:00:00Z",
                "created_by": (created_by[i] if created_by else f"/bin/sh -c step {i}")}
               for i in range(len(tars))]
    config = {"architecture": architecture, "os": "linux",
              "config": {"Env": list(env) or ["PATH=/usr/bin:/bin"]},
              "created": "2024-01-01T00:00:00Z", "history": history,
              "rootfs": {"type": "layers", "diff_ids": [t.diff_id for t in tars]}}
    return Image(canonical_json(config), tuple(tars), (tag,))


def write_archive(path: Path, layers: Sequence[Sequence[Spec]], **kwargs) -> Path:
    """A docker-save archive of one image made of these raw layers."""
    write_docker_archive(path, [image(layers, **kwargs)])
    return path


# -- a reference extractor, independent of layerlab ------------------------------------
def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def apply_layer(root: Path, tar_bytes: bytes) -> None:
    """Apply one layer tar to ``root`` as the OCI spec says (whiteouts first, on the
    lower layers only; opaque directories; later entries win)."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        for m in members:
            name = m.name.strip("/").removeprefix("./")
            base = os.path.basename(name)
            parent = os.path.dirname(name)
            if base == ".wh..wh..opq":
                target = root / parent
                if target.is_dir() and not target.is_symlink():
                    for child in target.iterdir():
                        _remove(child)
            elif base.startswith(".wh."):
                target = root / parent / base[4:]
                if target.exists() or target.is_symlink():
                    _remove(target)
        for m in members:
            name = m.name.strip("/").removeprefix("./")
            if not name or os.path.basename(name).startswith(".wh."):
                continue
            target = root / name
            if target.is_symlink() or (target.exists() and not (m.isdir() and target.is_dir())):
                _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            if m.isdir():
                target.mkdir(exist_ok=True)
                os.chmod(target, m.mode | 0o700)
            elif m.issym():
                os.symlink(m.linkname, target)
            elif m.islnk():
                os.link(root / m.linkname.strip("/").removeprefix("./"), target)
            else:
                with tar.extractfile(m) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.chmod(target, m.mode)


def extract_archive_image(archive: Path, dest: Path, index: int = 0) -> Path:
    """Extract the image of a docker-save archive to ``dest`` layer by layer."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        for layer_path in manifest[index]["Layers"]:
            member = outer.getmember(layer_path)
            while member.issym():
                member = outer.getmember(os.path.normpath(
                    os.path.join(os.path.dirname(member.name), member.linkname)))
            apply_layer(dest, outer.extractfile(member).read())
    return dest


def tree_listing(root: Path) -> dict[str, tuple]:
    """path -> (kind, size, mode bits, link target, content) for every path under root."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if full.is_symlink():
                out[rel] = ("symlink", 0, None, os.readlink(full), None)
            elif full.is_dir():
                out[rel] = ("dir", 0, None, None, None)
            else:
                out[rel] = ("file", st.st_size, st.st_mode & 0o7777, None, full.read_bytes())
    return out


__all__ = ["EPOCH", "layer_tar", "image", "write_archive", "apply_layer",
           "extract_archive_image", "tree_listing"]
