"""Read the written samples back (tarfile, gzip, zstandard) and record what they hold.

Everything in expected.json is computed here from the bytes on disk, not from the
writer's own bookkeeping, so it doubles as a check of the writer.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from pathlib import Path

from .imagewriter import OCI_INDEX, REF_NAME

DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def uncompress(media_type: str, blob: bytes) -> bytes:
    """The layer tar inside a blob, by its media type."""
    if media_type.endswith("+gzip"):
        return gzip.decompress(blob)
    if media_type.endswith("+zstd"):
        import zstandard

        return zstandard.ZstdDecompressor().decompress(blob)
    return blob


def skopeo_schema2(config: bytes, layers: list[tuple[str, int]]) -> bytes:
    """The schema2 manifest skopeo (containers/image) synthesises for a docker-archive:
    Go field order, compact, and the gzip layer media type even though layer.tar is
    uncompressed (containers/image#1270).  ``layers`` are (digest, size) pairs."""
    def desc(media_type: str, size: int, digest: str) -> str:
        return f'{{"mediaType":"{media_type}","size":{size},"digest":"{digest}"}}'
    return (f'{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_V2}","config":'
            f'{desc(DOCKER_CONFIG, len(config), sha256(config))},"layers":['
            + ",".join(desc(DOCKER_LAYER_GZIP, size, digest) for digest, size in layers)
            + "]}").encode()


def _tar_files(path: Path, symlinks: set[str] | None = None) -> dict[str, bytes]:
    """Regular files of a tar by normalised name, symlinks resolved (and their names
    added to ``symlinks`` if given)."""
    files, links = {}, {}
    with tarfile.open(path) as tar:
        for member in tar:
            name = posixpath.normpath(member.name)
            if member.isfile():
                files[name] = tar.extractfile(member).read()
            elif member.issym():
                links[name] = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
    for name, target in links.items():
        files[name] = files[target]
    if symlinks is not None:
        symlinks.update(links)
    return files


def merged_files(layer_tars: list[bytes]) -> list[dict]:
    """The merged filesystem of layer tars, applying whiteouts and opaque markers."""
    state: dict[str, dict] = {}

    def drop(prefix: str, keep_self: bool) -> None:
        for path in [p for p in state if p == prefix or p.startswith(prefix + "/")]:
            if not (keep_self and path == prefix):
                del state[path]

    for data in layer_tars:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = [(posixpath.normpath(m.name), m) for m in tar]
        for name, _ in members:
            dirname, base = posixpath.split(name)
            if base == ".wh..wh..opq":
                drop(dirname, keep_self=True)
            elif base.startswith(".wh."):
                drop(posixpath.join(dirname, base[4:]), keep_self=False)
        for name, m in members:
            if posixpath.basename(name).startswith(".wh."):
                continue
            if not m.isdir():
                drop(name, keep_self=False)
            kind = {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}
            item = {"path": name, "type": kind.get(m.type, "file"), "size": m.size,
                    "mode": f"{m.mode:04o}"}
            if m.linkname:
                item["target"] = m.linkname
            state[name] = item
    return [state[p] for p in sorted(state)]


def _layer_entry(blob: bytes, tar_bytes: bytes, media_type: str, path: str = "",
                 symlink: bool = False) -> dict:
    entry = {"digest": sha256(blob), "diff_id": sha256(tar_bytes),
             "size": len(blob), "media_type": media_type}
    if path:
        entry["path"] = path
        entry["symlink"] = symlink
    return entry


def docker_archive_forms(rel: str, path: Path) -> list[tuple[str, dict, list[bytes]]]:
    """(reference, form, layer tars) for each tag of a docker-save archive."""
    symlinks: set[str] = set()
    files = _tar_files(path, symlinks)
    out = []
    for item in json.loads(files["manifest.json"]):
        config = files[item["Config"]]
        layers = [files[posixpath.normpath(p)] for p in item["Layers"]]
        manifest = skopeo_schema2(config, [(sha256(t), len(t)) for t in layers])
        # skopeo 1.9 reports the tar header size (0) of a symlinked layer.tar
        quirk = skopeo_schema2(config, [(sha256(t), 0 if p in symlinks else len(t))
                                        for t, p in zip(layers, item["Layers"])])
        form = {
            "transport": "docker-archive", "path": rel, "tags": item["RepoTags"],
            "manifest_digest": sha256(manifest), "manifest_size": len(manifest),
            "manifest_media_type": DOCKER_MANIFEST_V2, "manifest_synthesized": True,
            "skopeo_manifest_digest": sha256(quirk),
            "config_digest": sha256(config), "config_size": len(config),
            "layers": [_layer_entry(t, t, DOCKER_LAYER, p, p in symlinks)
                       for t, p in zip(layers, item["Layers"])],
        }
        tag = item["RepoTags"][0]
        ref = f"docker-archive:{rel}" + (f":{tag}" if path.name == "family.tar" else "")
        form["ref"] = tag if path.name == "family.tar" else ""
        out.append((ref, form, layers))
    return out


def oci_forms(transport: str, rel: str, files: dict[str, bytes]) -> list[tuple[str, dict, list[bytes]]]:
    """(reference, form, layer tars) for each ref of an OCI layout (dir or tar files)."""
    def blob(digest: str) -> bytes:
        data = files["blobs/" + digest.replace(":", "/")]
        assert sha256(data) == digest, digest
        return data

    def image(desc: dict) -> tuple[dict, list[bytes]]:
        manifest = blob(desc["digest"])
        parsed = json.loads(manifest)
        config = blob(parsed["config"]["digest"])
        tars, layers = [], []
        for layer in parsed["layers"]:
            data = blob(layer["digest"])
            tars.append(uncompress(layer["mediaType"], data))
            layers.append(_layer_entry(data, tars[-1], layer["mediaType"]))
        return {"manifest_digest": desc["digest"], "manifest_size": len(manifest),
                "manifest_media_type": parsed["mediaType"], "config_digest": sha256(config),
                "config_size": len(config), "layers": layers}, tars

    out = []
    for desc in json.loads(files["index.json"])["manifests"]:
        ref = desc.get("annotations", {}).get(REF_NAME, "")
        form = {"transport": transport, "path": rel, "ref": ref}
        if desc["mediaType"] == OCI_INDEX:
            index = json.loads(blob(desc["digest"]))
            form.update(manifest_digest=desc["digest"], manifest_size=desc["size"],
                        manifest_media_type=OCI_INDEX, manifests=[])
            for child in index["manifests"]:
                child_form, _ = image(child)
                form["manifests"].append({"platform": child["platform"], **child_form})
            out.append((f"{transport}:{rel}:{ref}", form, []))
        else:
            child_form, tars = image(desc)
            form.update(child_form)
            out.append((f"{transport}:{rel}:{ref}", form, tars))
    return out


def _dir_files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def describe_outputs(out: Path) -> dict:
    """Read every sample under ``out``; write expected.json and README.md; return the data."""
    forms: list[tuple[str, dict, list[bytes]]] = []
    for path in sorted((out / "oci").iterdir()):
        forms += oci_forms("oci", f"oci/{path.name}", _dir_files(path))
    for path in sorted((out / "oci-archive").glob("*.tar")):
        forms += oci_forms("oci-archive", f"oci-archive/{path.name}", _tar_files(path))
    for path in sorted((out / "docker-archive").glob("*.tar")):
        rel = f"docker-archive/{path.name}"
        forms += docker_archive_forms(rel, path)
        members = _tar_files(path)
        if "index.json" in members:  # Docker >= 25: also an OCI layout
            forms += oci_forms("oci-archive", rel, members)

    names = {f["config_digest"]: f["ref"] for r, f, _ in forms if r.startswith("oci:oci/family:")}
    images: dict[str, dict] = {}
    for ref, form, tars in forms:
        if form["manifest_media_type"] == OCI_INDEX:
            images.setdefault("multi", {"forms": {}})["forms"][ref] = form
            continue
        name = names[form["config_digest"]]  # KeyError: a config that differs between forms
        config = json.loads(_config_bytes(out, form))
        image = images.setdefault(name, {
            "config_digest": form["config_digest"], "config_size": form["config_size"],
            "diff_ids": config["rootfs"]["diff_ids"], "layer_count": len(tars),
            "history_count": len(config["history"]), "forms": {},
        })
        assert [layer["diff_id"] for layer in form["layers"]] == image["diff_ids"], ref
        if name in ("wasted", "app24", "app14") and "merged_files" not in image:
            image["merged_files"] = merged_files(tars)
        image["forms"][ref] = form

    files = {}
    for directory in ("docker-archive", "oci", "oci-archive"):
        for path in sorted((out / directory).rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                files[path.relative_to(out).as_posix()] = {"sha256": sha256(data), "size": len(data)}
    expected = {"images": dict(sorted(images.items())), "files": files}
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    from .readme import readme_text

    (out / "README.md").write_text(readme_text(expected))
    return expected


def _config_bytes(out: Path, form: dict) -> bytes:
    if form["transport"] == "oci":
        return (out / form["path"] / "blobs" / form["config_digest"].replace(":", "/")).read_bytes()
    files = _tar_files(out / form["path"])
    for candidate in (form["config_digest"].split(":")[1] + ".json",
                      "blobs/" + form["config_digest"].replace(":", "/")):
        if candidate in files:
            return files[candidate]
    raise KeyError(form["config_digest"])
