"""docker-save archives (layerlab.sources.tarball) against the samples and hand-made archives."""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile

import pytest

from layerlab import mediatypes as mt
from layerlab.errors import DigestMismatchError, ImageNotFoundError
from layerlab.sources import list_images, open_image
from layerlab.sources.tarball import skopeo_manifest

from local_images import (SECOND_LAYER, SIMPLE_LAYER, docker_archive_files, gz, sha256,
                          write_tar)


@pytest.fixture(scope="module")
def expected(samples):
    return json.loads((samples / "expected.json").read_text())["images"]


def docker_forms(expected):
    for image, info in expected.items():
        for form, want in info.get("forms", {}).items():
            if form.startswith("docker-archive:"):
                yield image, form, want


def test_every_docker_archive_sample(samples, expected):
    seen = 0
    for image_name, form, want in docker_forms(expected):
        image = open_image(form.replace("docker-archive:", f"docker-archive:{samples}/", 1))
        assert image.config.digest == want["config_digest"] == expected[image_name]["config_digest"]
        assert image.config.size == want["config_size"]
        assert [str(layer.digest) for layer in image.layers] == [x["digest"] for x in want["layers"]]
        assert [str(layer.diff_id) for layer in image.layers] == [x["diff_id"] for x in want["layers"]]
        assert [layer.size for layer in image.layers] == [x["size"] for x in want["layers"]]
        if form.endswith("docker25.tar"):
            # Docker >= 25: the stored OCI manifest, not a synthesised one
            stored = expected[image_name]["forms"][
                "oci-archive:docker-archive/app-v1-docker25.tar:v1"]
            assert image.digest == stored["manifest_digest"]
            assert image.media_type == mt.OCI_MANIFEST
            assert [layer.media_type for layer in image.layers] == [mt.OCI_LAYER] * 4
        else:
            assert image.digest == want["manifest_digest"]
            assert image.media_type == mt.DOCKER_MANIFEST_V2
            assert [layer.media_type for layer in image.layers] == [x["media_type"] for x in want["layers"]]
            assert all(layer.compression == "none" for layer in image.layers)
            assert [layer.uncompressed_size for layer in image.layers] == [layer.size for layer in image.layers]
        assert all(layer.seekable for layer in image.layers)
        assert image.name in want["tags"]
        assert image.warnings == ()
        seen += 1
    assert seen >= 9


def member_bytes(tar: tarfile.TarFile, name: str) -> bytes:
    member = tar.getmember(name)
    while member.issym():
        name = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        member = tar.getmember(name)
    return tar.extractfile(member).read()


@pytest.mark.parametrize("archive, selector", [
    ("app-v1.tar", ""), ("family.tar", ":app:v1"), ("family.tar", ":app:latest"),
    ("wasted.tar", ""), ("app24.tar", ""),
])
def test_digests_against_hashlib(samples, archive, selector):
    """Every digest layerlab reports equals hashlib over the raw bytes in the tar."""
    path = samples / "docker-archive" / archive
    image = open_image(f"docker-archive:{path}{selector}")
    with tarfile.open(path) as tar:
        entries = json.loads(member_bytes(tar, "manifest.json"))
        wanted = selector[1:] or entries[0]["RepoTags"][0]
        entry = next(e for e in entries if wanted in e["RepoTags"])
        config = member_bytes(tar, entry["Config"])
        assert image.config.digest == "sha256:" + hashlib.sha256(config).hexdigest()
        assert image.config.raw == config
        for layer, layer_path in zip(image.layers, entry["Layers"]):
            data = member_bytes(tar, layer_path)
            assert layer.digest == layer.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
            assert layer.size == len(data)
            with layer.open() as stream:
                assert stream.read() == data
    assert image.manifest.raw == skopeo_manifest(
        image.config.digest, len(config), [(layer.digest, layer.size) for layer in image.layers])
    assert image.digest == "sha256:" + hashlib.sha256(image.manifest.raw).hexdigest()
    verified = image.verify()
    assert verified.uncompressed_size == image.size


def test_synthesised_manifest_bytes():
    raw = skopeo_manifest("sha256:" + "a" * 64, 10, [("sha256:" + "b" * 64, 20)])
    assert raw == (
        b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":10,'
        b'"digest":"sha256:' + b"a" * 64 + b'"},"layers":[{"mediaType":'
        b'"application/vnd.docker.image.rootfs.diff.tar.gzip","size":20,"digest":"sha256:'
        + b"b" * 64 + b'"}]}')


def test_family_selection(samples, expected):
    path = samples / "docker-archive" / "family.tar"
    by_name = {
        "app:v1": "app-v1", "docker.io/library/app:v1": "app-v1", "app:v2": "app-v2",
        "app:latest": "app-v2", "app": "app-v2", "base:1": "base",
        "index.docker.io/library/base:1": "base",
    }
    for name, image_name in by_name.items():
        image = open_image(f"docker-archive:{path}:{name}")
        assert image.config.digest == expected[image_name]["config_digest"], name
    for n, image_name in enumerate(["base", "app-v1", "app-v2"]):
        image = open_image(f"docker-archive:{path}:@{n}")
        assert image.config.digest == expected[image_name]["config_digest"]
    assert open_image(f"docker-archive:{path}:@2").name == "app:v2"
    assert open_image(f"docker-archive:{path}:app:latest").name == "app:latest"


def test_family_list(samples, expected):
    path = samples / "docker-archive" / "family.tar"
    rows = list_images(str(path))
    assert [(r.reference, r.name) for r in rows] == [
        (f"docker-archive:{path}:base:1", "base:1"),
        (f"docker-archive:{path}:app:v1", "app:v1"),
        (f"docker-archive:{path}:app:v2", "app:v2"),
        (f"docker-archive:{path}:app:latest", "app:latest"),
    ]
    forms = {k: v for _, k, v in docker_forms(expected)}
    assert rows[1].digest == forms["docker-archive:docker-archive/family.tar:app:v1"]["manifest_digest"]
    assert rows[3].digest == rows[2].digest
    assert {r.media_type for r in rows} == {mt.DOCKER_MANIFEST_V2}
    assert all(r.platforms == ("linux/amd64",) for r in rows)
    assert rows[0].to_json()["digest"] == str(rows[0].digest)


def test_docker25_list_and_names(samples):
    path = samples / "docker-archive" / "app-v1-docker25.tar"
    rows = list_images(f"docker-archive:{path}")
    assert [(r.reference, r.name, r.media_type) for r in rows] == [
        (f"docker-archive:{path}:app:v1", "app:v1", mt.OCI_MANIFEST)]
    assert open_image(f"docker-archive:{path}:docker.io/library/app:v1").name == "app:v1"


def test_symlinked_layer_reads_its_target(samples):
    image = open_image(f"docker-archive:{samples}/docker-archive/family.tar:app:v1")
    base = open_image(f"docker-archive:{samples}/docker-archive/family.tar:base:1")
    linked = image.layers[1]
    assert linked.diff_id == base.layers[1].diff_id
    with linked.open() as a, base.layers[1].open() as b:
        assert a.read() == b.read()
    linked.verify()


def test_wasted_entries_merge_to_the_expected_filesystem(samples, expected):
    image = open_image(f"docker-archive:{samples}/docker-archive/wasted.tar")
    state: dict[str, dict] = {}
    for layer in image.layers:
        entries = list(layer.entries())
        for e in entries:
            if e.opaque:
                for p in [p for p in state if p.startswith(e.whiteout + "/")]:
                    del state[p]
            elif e.whiteout:
                for p in [p for p in state if p == e.whiteout or p.startswith(e.whiteout + "/")]:
                    del state[p]
        for e in entries:
            if e.whiteout is None:
                item = {"mode": f"{e.mode:04o}", "path": e.path, "size": e.size, "type": e.type}
                if e.type in ("symlink", "hardlink"):
                    item["target"] = e.linkname
                state[e.path] = item
    want = {f["path"]: f for f in expected["wasted"]["merged_files"]}
    assert state == want


def test_seekable_scan_equals_streaming_scan(samples):
    image = open_image(f"docker-archive:{samples}/docker-archive/app24.tar")
    for layer in image.layers:
        assert list(layer.entries()) == list(layer.entries(verify=True))


def test_gzip_layers_in_a_docker_archive(tmp_path):
    files = docker_archive_files([([SIMPLE_LAYER, SECOND_LAYER], ["gz:1"])], gzip_layers=True)
    path = write_tar(tmp_path / "gz.tar", files)
    image = open_image(f"docker-archive:{path}")
    stored = [gz(SIMPLE_LAYER), gz(SECOND_LAYER)]
    assert [layer.digest for layer in image.layers] == [sha256(s) for s in stored]
    assert [layer.diff_id for layer in image.layers] == [sha256(SIMPLE_LAYER), sha256(SECOND_LAYER)]
    assert [layer.compression for layer in image.layers] == ["gzip", "gzip"]
    assert [layer.media_type for layer in image.layers] == [mt.DOCKER_LAYER_GZIP] * 2
    assert image.uncompressed_size is None
    verified = image.verify()
    assert [layer.uncompressed_size for layer in verified.layers] == [
        len(SIMPLE_LAYER), len(SECOND_LAYER)]
    assert [e.path for e in image.layers[0].entries()] == ["etc", "etc/hello", "bin", "bin/sh"]


def test_declared_digest_in_a_layer_file_name(tmp_path):
    stored = gz(SIMPLE_LAYER)
    files = docker_archive_files([([SIMPLE_LAYER], ["named:1"])])
    files.pop(next(k for k in files if k.endswith("layer.tar")))
    name = sha256(stored).split(":")[1] + ".tar.gz"
    files[name] = stored
    manifest = json.loads(files["manifest.json"])
    manifest[0]["Layers"] = [name]
    files["manifest.json"] = json.dumps(manifest).encode()
    image = open_image(f"docker-archive:{write_tar(tmp_path / 'n.tar', files)}")
    assert image.layers[0].digest == sha256(stored)
    image.verify()


def test_links_in_directories_are_resolved(tmp_path):
    files = docker_archive_files([([SIMPLE_LAYER], ["d:1"])])
    layer_path = next(k for k in files if k.endswith("layer.tar"))
    real_dir = layer_path.split("/")[0]
    files["alias"] = ("symlink", real_dir)
    files["./hard.tar"] = ("hardlink", layer_path)
    manifest = json.loads(files["manifest.json"])
    for layers in (["alias/layer.tar"], ["hard.tar"], ["./alias/../" + layer_path]):
        manifest[0]["Layers"] = layers
        files["manifest.json"] = json.dumps(manifest).encode()
        path = write_tar(tmp_path / "links.tar", files)
        if ".." in layers[0]:
            from layerlab.errors import UnsafePathError
            with pytest.raises(UnsafePathError, match="escapes"):
                open_image(f"docker-archive:{path}")
            continue
        image = open_image(f"docker-archive:{path}")
        assert image.layers[0].digest == sha256(SIMPLE_LAYER)
        image.verify()


def test_layers_are_verified_when_read_not_when_opened(tmp_path):
    files = docker_archive_files([([SIMPLE_LAYER], ["lazy:1"])])
    layer_path = next(k for k in files if k.endswith("layer.tar"))
    data = bytearray(files[layer_path])
    data[600] ^= 0x01  # inside the first file's content: same size, different bytes
    files[layer_path] = bytes(data)
    path = write_tar(tmp_path / "lazy.tar", files)
    image = open_image(f"docker-archive:{path}")  # opening reads no layer data
    with pytest.raises(DigestMismatchError, match=f"layer {sha256(SIMPLE_LAYER)}"):
        image.verify()
    with pytest.raises(DigestMismatchError):
        image.layers[0].open().read()


def test_untagged_images_are_listed_by_position(tmp_path):
    files = docker_archive_files([([SIMPLE_LAYER], []), ([SECOND_LAYER], ["two:1"])])
    path = write_tar(tmp_path / "untagged.tar", files)
    rows = list_images(f"docker-archive:{path}")
    assert [(r.reference, r.name) for r in rows] == [
        (f"docker-archive:{path}:@0", None), (f"docker-archive:{path}:two:1", "two:1")]
    assert open_image(rows[0].reference).name is None
    with pytest.raises(ImageNotFoundError, match=r"holds 2 images, name one: .*:@0, .*:two:1"):
        open_image(f"docker-archive:{path}")
