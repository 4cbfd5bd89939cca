"""Real clients against layerlab's registry: skopeo copies and inspects every manifest kind,
and images travel between Debian's Distribution and layerlab's registry unchanged."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import SAMPLES, require_tool
from layerlab import mediatypes as mt
from layerlab.digest import SCHEMA1_EMPTY_LAYER

pytestmark = pytest.mark.interop

EXPECTED = json.loads((SAMPLES / "expected.json").read_text()) \
    if (SAMPLES / "expected.json").exists() else {"images": {}}
ANY_MANIFEST = ", ".join(sorted(mt.MANIFESTS))


def skopeo(*args: str) -> str:
    result = subprocess.run([require_tool("skopeo"), *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"
    return result.stdout


def copy(src: str, dest: str, *extra: str) -> None:
    skopeo("copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", *extra, src, dest)


def expected_form(image: str, ref: str) -> dict:
    form = EXPECTED["images"].get(image, {}).get("forms", {}).get(ref)
    if form is None:
        pytest.skip(f"sample {ref} not generated")
    return form


def registry_manifest(reg, repo: str, ref: str) -> tuple[str, str, bytes]:
    r = requests.get(f"{reg.url}/v2/{repo}/manifests/{ref}", headers={"Accept": ANY_MANIFEST})
    assert r.status_code == 200, r.text
    return r.headers["Docker-Content-Digest"], r.headers["Content-Type"], r.content


def layout_manifest(directory: Path, ref: str) -> tuple[str, dict]:
    index = json.loads((directory / "index.json").read_text())
    for desc in index["manifests"]:
        if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
            blob = directory / "blobs" / desc["digest"].replace(":", "/")
            return desc["digest"], json.loads(blob.read_text())
    raise AssertionError(f"{ref} not in {directory}")


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    from layerlab.registry import LocalRegistry

    with LocalRegistry(tmp_path_factory.mktemp("layerlab-registry")) as registry:
        yield registry


@pytest.mark.parametrize("image,ref,layout,tag", [
    ("app-v1", "oci:oci/family:app-v1", "oci/family", "app-v1"),
    ("app-v2", "oci:oci/family:app-v2", "oci/family", "app-v2"),
    ("app-v1", "oci:oci/zstd:app-v1", "oci/zstd", "app-v1"),
])
def test_oci_layout_round_trip_keeps_every_digest(reg, tmp_path, image, ref, layout, tag):
    form = expected_form(image, ref)
    repo = f"interop/{layout.replace('/', '-')}"
    # --preserve-digests: skopeo would otherwise compress the zstd sample's uncompressed layer
    copy(f"oci:{SAMPLES / layout}:{tag}", f"docker://{reg.host}/{repo}:{tag}", "--preserve-digests")
    digest, media_type, body = registry_manifest(reg, repo, tag)
    assert (digest, media_type, len(body)) == (form["manifest_digest"], mt.OCI_MANIFEST,
                                               form["manifest_size"])
    for layer in form["layers"]:
        head = requests.head(f"{reg.url}/v2/{repo}/blobs/{layer['digest']}")
        assert (head.status_code, int(head.headers["Content-Length"])) == (200, layer["size"])
    copy(f"docker://{reg.host}/{repo}:{tag}", f"oci:{tmp_path / 'out'}:{tag}", "--preserve-digests",
         "--dest-oci-accept-uncompressed-layers")
    out_digest, out = layout_manifest(tmp_path / "out", tag)
    assert out_digest == form["manifest_digest"]
    assert out["config"]["digest"] == form["config_digest"]
    assert [d["digest"] for d in out["layers"]] == [x["digest"] for x in form["layers"]]


def test_oci_index_round_trip(reg, tmp_path):
    form = expected_form("multi", "oci:oci/multi:latest")
    copy(f"oci:{SAMPLES / 'oci/multi'}:latest", f"docker://{reg.host}/interop/multi:latest", "--all")
    digest, media_type, _ = registry_manifest(reg, "interop/multi", "latest")
    assert (digest, media_type) == (form["manifest_digest"], mt.OCI_INDEX)
    for child in form["manifests"]:
        assert registry_manifest(reg, "interop/multi", child["manifest_digest"])[0] == \
            child["manifest_digest"]
    copy(f"docker://{reg.host}/interop/multi:latest", f"oci:{tmp_path / 'out'}:latest", "--all")
    out_digest, out = layout_manifest(tmp_path / "out", "latest")
    assert out_digest == form["manifest_digest"]
    assert [m["digest"] for m in out["manifests"]] == [c["manifest_digest"] for c in form["manifests"]]


@pytest.mark.parametrize("image,archive", [
    ("app-v1", "docker-archive/app-v1.tar"),
    ("app-v2", "docker-archive/family.tar:app:v2"),
])
@pytest.mark.parametrize("fmt,media_type", [("oci", mt.OCI_MANIFEST), ("v2s2", mt.DOCKER_MANIFEST_V2)])
def test_docker_archive_round_trip(reg, tmp_path, image, archive, fmt, media_type):
    """docker-archive -> registry -> OCI layout (for an OCI push) or dir: (schema2, which an
    OCI layout would convert): the manifest, config and layer digests come back unchanged."""
    expected = EXPECTED["images"].get(image)
    if expected is None:
        pytest.skip(f"sample {image} not generated")
    repo = f"interop/archive-{image}-{fmt}"
    copy(f"docker-archive:{SAMPLES / archive}", f"docker://{reg.host}/{repo}:v", "--format", fmt)
    digest, stored_type, body = registry_manifest(reg, repo, "v")
    pushed = json.loads(body)
    assert stored_type == media_type
    if fmt == "v2s2":  # converting to OCI rewrites the config (same diff_ids)
        assert pushed["config"]["digest"] == expected["config_digest"]
    config = requests.get(f"{reg.url}/v2/{repo}/blobs/{pushed['config']['digest']}").json()
    assert config["rootfs"]["diff_ids"] == expected["diff_ids"]
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/{repo}:v"))
    assert inspected["Digest"] == digest
    assert inspected["Layers"] == [layer["digest"] for layer in pushed["layers"]]
    if fmt == "oci":
        copy(f"docker://{reg.host}/{repo}:v", f"oci:{tmp_path / 'out'}:v", "--preserve-digests")
        out_digest, out = layout_manifest(tmp_path / "out", "v")
    else:
        copy(f"docker://{reg.host}/{repo}:v", f"dir:{tmp_path / 'out'}", "--preserve-digests")
        raw = (tmp_path / "out" / "manifest.json").read_bytes()
        out_digest, out = "sha256:" + hashlib.sha256(raw).hexdigest(), json.loads(raw)
    assert out_digest == digest
    assert out["config"]["digest"] == pushed["config"]["digest"]
    assert [d["digest"] for d in out["layers"]] == [d["digest"] for d in pushed["layers"]]


@pytest.mark.parametrize("kind,media_type,args", [
    ("schema2", mt.DOCKER_MANIFEST_V2, ("--format", "v2s2")),
    ("oci", mt.OCI_MANIFEST, ("--format", "oci")),
    ("schema1", mt.DOCKER_MANIFEST_V1_SIGNED, ("--format", "v2s1")),
])
def test_skopeo_inspect_each_image_manifest_kind(reg, kind, media_type, args):
    if not (SAMPLES / "docker-archive/app-v1.tar").exists():
        pytest.skip("samples not generated")
    dest = f"docker://{reg.host}/kinds/{kind}:v1"
    copy(f"docker-archive:{SAMPLES / 'docker-archive/app-v1.tar'}", dest, *args)
    digest, stored_type, body = registry_manifest(reg, f"kinds/{kind}", "v1")
    assert stored_type == media_type
    assert skopeo("inspect", "--tls-verify=false", "--raw", dest).encode() == body
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", dest))
    assert inspected["Digest"] == digest
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")
    real_layers = [d for d in inspected["Layers"] if d != SCHEMA1_EMPTY_LAYER]
    assert len(real_layers) == 4  # schema1 lists one (empty) layer per no-op history step too


@pytest.mark.parametrize("kind,media_type,args", [
    ("docker-list", mt.DOCKER_MANIFEST_LIST, ("--format", "v2s2")),
    ("oci-index", mt.OCI_INDEX, ()),
])
def test_skopeo_inspect_each_index_kind(reg, kind, media_type, args):
    if not (SAMPLES / "oci/multi").exists():
        pytest.skip("samples not generated")
    dest = f"docker://{reg.host}/kinds/{kind}:latest"
    copy(f"oci:{SAMPLES / 'oci/multi'}:latest", dest, "--all", *args)
    digest, stored_type, body = registry_manifest(reg, f"kinds/{kind}", "latest")
    assert stored_type == media_type
    assert skopeo("inspect", "--tls-verify=false", "--raw", dest).encode() == body
    assert [m["mediaType"] for m in json.loads(body)["manifests"]] == \
        [mt.DOCKER_MANIFEST_V2 if media_type == mt.DOCKER_MANIFEST_LIST else mt.OCI_MANIFEST] * 3
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", dest))  # picks linux/amd64
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")


def test_distribution_to_layerlab_and_back(reg, distribution, tmp_path):
    if not (SAMPLES / "oci/family").exists():
        pytest.skip("samples not generated")
    form = expected_form("app-v2", "oci:oci/family:app-v2")
    copy(f"oci:{SAMPLES / 'oci/family'}:app-v2", f"docker://{distribution}/dist/app:v2")
    copy(f"docker://{distribution}/dist/app:v2", f"docker://{reg.host}/from-dist/app:v2")
    digest, media_type, body = registry_manifest(reg, "from-dist/app", "v2")
    dist = requests.get(f"http://{distribution}/v2/dist/app/manifests/v2",
                        headers={"Accept": ANY_MANIFEST})
    assert digest == dist.headers["Docker-Content-Digest"] == form["manifest_digest"]
    assert body == dist.content
    copy(f"docker://{reg.host}/from-dist/app:v2", f"docker://{distribution}/back/app:v2")
    back = requests.head(f"http://{distribution}/v2/back/app/manifests/v2",
                         headers={"Accept": ANY_MANIFEST})
    assert back.headers["Docker-Content-Digest"] == form["manifest_digest"]
    copy(f"docker://{reg.host}/from-dist/app:v2", f"oci:{tmp_path / 'out'}:v2")
    assert layout_manifest(tmp_path / "out", "v2")[0] == form["manifest_digest"]


def test_distribution_index_to_layerlab(reg, distribution):
    if not (SAMPLES / "oci/multi").exists():
        pytest.skip("samples not generated")
    form = expected_form("multi", "oci:oci/multi:latest")
    copy(f"oci:{SAMPLES / 'oci/multi'}:latest", f"docker://{distribution}/dist/multi:latest", "--all")
    copy(f"docker://{distribution}/dist/multi:latest", f"docker://{reg.host}/from-dist/multi:latest",
         "--all")
    assert registry_manifest(reg, "from-dist/multi", "latest")[0] == form["manifest_digest"]
