"""The committed sample images: reproducible, self-consistent, and what skopeo sees.

Every check here reads the files with its own code (tarfile, gzip, zstandard, hashlib),
independent of the script that made them and of the layerlab package.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from conftest import ROOT, SAMPLES, require_tool

EXPECTED = json.loads((SAMPLES / "expected.json").read_text())
IMAGES = EXPECTED["images"]
OUTPUTS = ("README.md", "expected.json", "docker-archive", "oci", "oci-archive")
EPOCH = 1704067200
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
FORMS = [(name, ref) for name, image in IMAGES.items() for ref in image["forms"] if name != "multi"]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def output_files(root: Path) -> dict[str, Path]:
    out = {}
    for name in OUTPUTS:
        path = root / name
        items = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        out.update({p.relative_to(root).as_posix(): p for p in items})
    return out


def tar_members(path: Path) -> dict[str, bytes]:
    """Regular files of a tar by name; symlinks resolved to their target's bytes."""
    files, links = {}, {}
    with tarfile.open(path) as tar:
        for m in tar:
            if m.isfile():
                files[m.name] = tar.extractfile(m).read()
            elif m.issym():
                links[m.name] = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.linkname))
    return files | {name: files[target] for name, target in links.items()}


def form_store(form: dict):
    """A function from a path inside the form's storage (layout dir or tar) to its bytes."""
    location = SAMPLES / form["path"]
    if location.is_dir():
        return lambda name: (location / name).read_bytes()
    members = tar_members(location)
    return members.__getitem__


def read_form(form: dict) -> tuple[bytes, list[tuple[bytes, bytes, str]]]:
    """(config bytes, [(stored blob, uncompressed tar, media type)]) of one form."""
    get = form_store(form)
    if form["transport"] == "docker-archive":
        entry = next(e for e in json.loads(get("manifest.json")) if form["tags"][0] in e["RepoTags"])
        layers = [get(p) for p in entry["Layers"]]
        return get(entry["Config"]), [(t, t, DOCKER_LAYER) for t in layers]
    index = json.loads(get("index.json"))
    desc = next(d for d in index["manifests"]
                if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == form["ref"])
    manifest = json.loads(get("blobs/" + desc["digest"].replace(":", "/")))
    config = get("blobs/" + manifest["config"]["digest"].replace(":", "/"))
    out = []
    for layer in manifest["layers"]:
        blob = get("blobs/" + layer["digest"].replace(":", "/"))
        if layer["mediaType"].endswith("+gzip"):
            tar = gzip.decompress(blob)
        elif layer["mediaType"].endswith("+zstd"):
            tar = zstandard.ZstdDecompressor().decompress(blob)
        else:
            tar = blob
        out.append((blob, tar, layer["mediaType"]))
    return config, out


def test_regenerating_gives_identical_bytes(tmp_path):
    subprocess.run([sys.executable, "-m", "layerlab.samples", "--out", str(tmp_path)],
                   check=True, capture_output=True)
    committed, fresh = output_files(SAMPLES), output_files(tmp_path)
    assert sorted(fresh) == sorted(committed)
    differing = [name for name in committed if committed[name].read_bytes() != fresh[name].read_bytes()]
    assert differing == []


def test_expected_file_digests_match_the_files():
    files = output_files(SAMPLES)
    listed = EXPECTED["files"]
    assert sorted(listed) == sorted(n for n in files if n not in ("README.md", "expected.json"))
    for name, info in listed.items():
        data = files[name].read_bytes()
        assert (sha256(data), len(data)) == (info["sha256"], info["size"]), name
    total = sum(info["size"] for info in listed.values())
    assert total < 5_000_000


def test_image_and_form_inventory():
    assert sorted(IMAGES) == ["app-v1", "app-v2", "app14", "app24", "base", "multi", "wasted"]
    assert sorted(IMAGES["app-v1"]["forms"]) == [
        "docker-archive:docker-archive/app-v1-docker25.tar",
        "docker-archive:docker-archive/app-v1.tar",
        "docker-archive:docker-archive/family.tar:app:v1",
        "oci-archive:docker-archive/app-v1-docker25.tar:v1",
        "oci-archive:oci-archive/app-v1.tar:app-v1",
        "oci:oci/family:app-v1",
        "oci:oci/zstd:app-v1",
    ]
    counts = {name: image.get("layer_count") for name, image in IMAGES.items()}
    assert counts == {"app-v1": 4, "app-v2": 5, "app14": 14, "app24": 24, "base": 2,
                      "multi": None, "wasted": 7}


@pytest.mark.parametrize("name,ref", FORMS)
def test_layers_hash_to_config_diff_ids(name, ref):
    image, form = IMAGES[name], IMAGES[name]["forms"][ref]
    config, layers = read_form(form)
    assert sha256(config) == form["config_digest"] == image["config_digest"]
    assert json.loads(config)["rootfs"]["diff_ids"] == image["diff_ids"]
    assert [sha256(tar) for _, tar, _ in layers] == image["diff_ids"]
    assert [(sha256(blob), len(blob), media) for blob, _, media in layers] == [
        (e["digest"], e["size"], e["media_type"]) for e in form["layers"]]
    if form["transport"] != "docker-archive":
        manifest = form_store(form)("blobs/" + form["manifest_digest"].replace(":", "/"))
        assert len(manifest) == form["manifest_size"]


@pytest.mark.parametrize("name,ref", FORMS)
def test_layer_tar_entries_are_clean(name, ref):
    _, layers = read_form(IMAGES[name]["forms"][ref])
    for _, tar_bytes, _ in layers:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        assert not any(n.startswith(("/", "./")) for n in names)
        assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "root", "root", EPOCH)}


def test_base_has_links_and_modes():
    _, layers = read_form(IMAGES["base"]["forms"]["oci:oci/family:base"])
    with tarfile.open(fileobj=io.BytesIO(layers[0][1])) as tar:
        members = {m.name: m for m in tar}
    assert (members["bin/sh"].issym(), members["bin/sh"].linkname) == (True, "busybox")
    hard = members["usr/bin/perl5.36.0"]
    assert (hard.islnk(), hard.linkname) == (True, "usr/bin/perl")
    names = ("bin", "root", "tmp", "bin/busybox", "etc/passwd", "etc/shadow")
    assert {n: oct(members[n].mode) for n in names} == {
        "bin": "0o755", "root": "0o700", "tmp": "0o1777", "bin/busybox": "0o755",
        "etc/passwd": "0o644", "etc/shadow": "0o640"}


def test_family_shares_layers():
    base, v1, v2 = (IMAGES[n]["diff_ids"] for n in ("base", "app-v1", "app-v2"))
    assert v1[:2] == v2[:2] == base
    assert v1[2] == v2[2] and v1[3] != v2[3]
    oci = {n: [e["digest"] for e in IMAGES[n]["forms"][f"oci:oci/family:{n}"]["layers"]]
           for n in ("base", "app-v1", "app-v2")}
    assert oci["app-v1"][:3] == oci["app-v2"][:3] and oci["app-v1"][:2] == oci["base"]
    family = IMAGES["app-v2"]["forms"]["docker-archive:docker-archive/family.tar:app:v2"]
    assert family["tags"] == ["app:v2", "app:latest"]
    # base:1's top layer is written under base's own legacy ID; app images link to it
    symlinked = [e["symlink"] for e in family["layers"]]
    assert symlinked == [False, True, False, False, False]
    v1_form = IMAGES["app-v1"]["forms"]["docker-archive:docker-archive/family.tar:app:v1"]
    v1_paths = [e["path"] for e in v1_form["layers"]]
    assert [e["path"] for e in family["layers"]][:3] == v1_paths[:3]


def test_app14_merges_app24_run_steps():
    configs = {n: json.loads(read_form(IMAGES[n]["forms"][f"oci:oci/family:{n}"])[0])
               for n in ("app24", "app14")}
    runs = {n: [h["created_by"].removeprefix("/bin/sh -c ") for h in c["history"][5:]
                if not h.get("empty_layer")] for n, c in configs.items()}
    assert (len(runs["app24"]), len(runs["app14"])) == (22, 12)
    merged, i = [], 0
    for n in (2, 2, 2, 1, 2, 2, 2, 2, 1, 2, 2, 2):
        merged.append(" && ".join(runs["app24"][i:i + n]))
        i += n
    assert runs["app14"] == merged
    assert IMAGES["app24"]["merged_files"] == IMAGES["app14"]["merged_files"]
    assert IMAGES["app24"]["diff_ids"][:2] == IMAGES["app14"]["diff_ids"][:2] == IMAGES["base"]["diff_ids"]


def test_wasted_merged_filesystem():
    files = {f["path"]: f for f in IMAGES["wasted"]["merged_files"]}
    opt = {p: (f["type"], f["size"], f["mode"]) for p, f in files.items() if p.startswith("opt")}
    assert opt == {
        "opt": ("dir", 0, "0755"), "opt/cache": ("dir", 0, "0755"),
        "opt/cache/d.dat": ("file", 4000, "0644"), "opt/conf": ("dir", 0, "0755"),
        "opt/conf/app.conf": ("file", 2000, "0600"), "opt/data": ("dir", 0, "0755"),
        "opt/data/big.bin": ("file", 32000, "0644"), "opt/keep.txt": ("file", 8, "0644"),
    }
    assert files["bin/sh"]["target"] == "busybox"
    assert not any(".wh." in p for p in files)


def test_docker25_layout():
    members = tar_members(SAMPLES / "docker-archive" / "app-v1-docker25.tar")
    assert {n for n in members if not n.startswith("blobs/")} == {
        "index.json", "manifest.json", "oci-layout", "repositories"}
    manifest = json.loads(members["manifest.json"])
    image = IMAGES["app-v1"]
    assert manifest == [{"Config": "blobs/sha256/" + image["config_digest"][7:], "RepoTags": ["app:v1"],
                         "Layers": ["blobs/sha256/" + d[7:] for d in image["diff_ids"]]}]
    form = image["forms"]["oci-archive:docker-archive/app-v1-docker25.tar:v1"]
    assert {e["media_type"] for e in form["layers"]} == {OCI_LAYER}
    index = json.loads(members["index.json"])
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": "docker.io/library/app:v1", "org.opencontainers.image.ref.name": "v1"}


def test_gzip_and_zstd_blobs_are_deterministic():
    form = IMAGES["app-v1"]["forms"]["oci:oci/family:app-v1"]
    for e in form["layers"]:
        head = (SAMPLES / "oci/family/blobs" / e["digest"].replace(":", "/")).read_bytes()[:10]
        assert head == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, OS unknown
    zstd = IMAGES["app-v1"]["forms"]["oci:oci/zstd:app-v1"]["layers"]
    assert [e["media_type"].rsplit(".", 1)[1] for e in zstd] == ["tar+zstd"] * 3 + ["tar"]


def test_multi_is_a_nested_index():
    index = json.loads((SAMPLES / "oci/multi/index.json").read_text())
    [root] = index["manifests"]
    assert root["mediaType"] == OCI_INDEX
    assert root["annotations"] == {"org.opencontainers.image.ref.name": "latest"}
    form = IMAGES["multi"]["forms"]["oci:oci/multi:latest"]
    assert root["digest"] == form["manifest_digest"]
    platforms = [m["platform"] for m in form["manifests"]]
    assert platforms == [{"architecture": "amd64", "os": "linux"},
                         {"architecture": "arm64", "os": "linux", "variant": "v8"},
                         {"architecture": "arm", "os": "linux", "variant": "v7"}]
    shared = {m["layers"][1]["digest"] for m in form["manifests"]}
    assert len(shared) == 1 and len({m["layers"][0]["digest"] for m in form["manifests"]}) == 3


def _skopeo_ref(form: dict) -> str:
    ref = f"{form['transport']}:{SAMPLES / form['path']}"
    return ref + (f":{form['ref']}" if form.get("ref") else "")


@pytest.mark.interop
@pytest.mark.parametrize("name,ref", FORMS)
def test_skopeo_agrees(name, ref):
    skopeo = require_tool("skopeo")
    form = IMAGES[name]["forms"][ref]
    raw = subprocess.run([skopeo, "inspect", "--raw", _skopeo_ref(form)], check=True,
                         capture_output=True).stdout
    config = subprocess.run([skopeo, "inspect", "--config", "--raw", _skopeo_ref(form)], check=True,
                            capture_output=True).stdout
    expected_manifest = form.get("skopeo_manifest_digest", form["manifest_digest"])
    assert (sha256(raw), sha256(config)) == (expected_manifest, form["config_digest"])


@pytest.mark.interop
def test_skopeo_agrees_on_multi_platform():
    skopeo = require_tool("skopeo")
    form = IMAGES["multi"]["forms"]["oci:oci/multi:latest"]
    ref = _skopeo_ref(form)
    raw = subprocess.run([skopeo, "inspect", "--raw", ref], check=True, capture_output=True).stdout
    assert sha256(raw) == form["manifest_digest"]
    for child in form["manifests"]:
        p = child["platform"]
        args = ["--override-os", p["os"], "--override-arch", p["architecture"]]
        args += ["--override-variant", p["variant"]] if "variant" in p else []
        config = subprocess.run([skopeo, *args, "inspect", "--config", "--raw", ref], check=True,
                                capture_output=True).stdout
        assert sha256(config) == child["config_digest"]


# --------------------------------------------------------------------------- genimage

sys.path.insert(0, str(ROOT / "benchmarks"))


def _layer_names(archive: Path) -> list[set[str]]:
    members = tar_members(archive)
    [entry] = json.loads(members["manifest.json"])
    out = []
    for path in entry["Layers"]:
        with tarfile.open(fileobj=io.BytesIO(members[path])) as tar:
            out.append({m.name: m.size for m in tar if m.isfile()})
    return out


def test_genimage_small_scale_structure(tmp_path):
    import genimage

    scale = 0.002
    paths = {n: genimage.generate(tmp_path, n, scale) for n in genimage.NAMES}
    assert {n: p.name for n, p in paths.items()} == {
        "big14": "big14-x0.002.tar", "big24": "big24-x0.002.tar", "big14-b": "big14-b-x0.002.tar"}
    meta = {n: json.loads(Path(f"{p}.json").read_text()) for n, p in paths.items()}
    assert [len(meta[n]["diff_ids"]) for n in genimage.NAMES] == [14, 24, 14]
    assert meta["big14"]["file_bytes"] == meta["big24"]["file_bytes"] == round(780_000_000 * scale)
    assert meta["big14"]["files"] == meta["big24"]["files"] == 48
    assert meta["big14-b"]["diff_ids"][:5] == meta["big14"]["diff_ids"][:5]
    assert not set(meta["big14-b"]["diff_ids"][5:]) & set(meta["big14"]["diff_ids"])

    layers = {n: _layer_names(p) for n, p in paths.items()}
    files24 = [sum(layer.values()) for layer in layers["big24"]]
    merged, i = [], 0
    for n in genimage.MERGE_14:  # big14 layer = consecutive big24 layers
        merged.append(dict(kv for layer in layers["big24"][i:i + n] for kv in layer.items()))
        i += n
    assert layers["big14"] == merged
    assert sum(files24) == meta["big24"]["file_bytes"]
    whiteouts = [n for layer in layers["big14-b"] for n in layer if "/.wh." in n]
    shared = {n for layer in layers["big14"][:5] for n in layer}
    assert len(whiteouts) == meta["big14-b"]["whiteouts"]
    assert all(w.replace(".wh.", "") in shared for w in whiteouts)

    before = paths["big14"].stat().st_mtime_ns
    assert genimage.generate(tmp_path, "big14", scale) == paths["big14"]
    assert paths["big14"].stat().st_mtime_ns == before  # reused, not rebuilt
    again = genimage.build(tmp_path / "again", "big14-b", scale)  # deterministic
    assert again["sha256"] == meta["big14-b"]["sha256"]


def test_genimage_shares_the_sample_writer():
    import genimage

    assert genimage.write_docker_archive.__module__ == "layerlab.samples.imagewriter"
    plan = genimage.plan(0.01)
    by_kind = {k: sum(f.size for f in plan if f.kind == k) for k in ("text", "binary", "packed")}
    assert by_kind == {"text": 2_574_000, "binary": 4_212_000, "packed": 1_014_000}
