"""OCI image layouts, directory and archive (layerlab.sources.layout)."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pytest

from layerlab import mediatypes as mt
from layerlab.errors import ImageNotFoundError, MissingBlobError, PlatformError
from layerlab.platform import Platform
from layerlab.sources import list_images, open_image

from local_images import (REF_NAME, SECOND_LAYER, SIMPLE_LAYER, Layout, config_json, gz,
                          sha256, write_tar, zst)


@pytest.fixture(scope="module")
def expected(samples):
    return json.loads((samples / "expected.json").read_text())["images"]


def layout_forms(expected):
    for image, info in expected.items():
        for form, want in info.get("forms", {}).items():
            if form.startswith(("oci:", "oci-archive:")):
                yield image, form, want


def check_image(image, want):
    assert image.digest == want["manifest_digest"]
    assert image.media_type == want["manifest_media_type"]
    assert image.manifest.size == want["manifest_size"]
    assert image.config.digest == want["config_digest"]
    assert image.config.size == want["config_size"]
    assert [(str(x.digest), str(x.diff_id), x.size, x.media_type) for x in image.layers] == [
        (x["digest"], x["diff_id"], x["size"], x["media_type"]) for x in want["layers"]]


def test_every_layout_sample(samples, expected):
    seen = 0
    for _, form, want in layout_forms(expected):
        transport, _, rest = form.partition(":")
        ref = f"{transport}:{samples}/{rest}"
        if "manifests" in want:  # a multi-platform index: every platform
            for child in want["manifests"]:
                plat = Platform.from_json(child["platform"])
                image = open_image(ref, platform=plat)
                check_image(image, child)
                assert image.index_digest == want["manifest_digest"]
                assert image.platform == plat
                assert image.to_json()["index_digest"] == want["manifest_digest"]
                seen += 1
            continue
        image = open_image(ref)
        check_image(image, want)
        assert image.index_digest is None
        assert image.warnings == ()
        seen += 1
    assert seen >= 11


def test_default_platform_is_the_host(samples):
    image = open_image(f"oci:{samples}/oci/multi")
    assert image.platform.matches(Platform.host()) or image.platform == Platform.host()
    with pytest.raises(PlatformError, match=r"no image for platform linux/s390x \(available: "
                                            r"linux/amd64, linux/arm64/v8, linux/arm/v7\)"):
        open_image(f"oci:{samples}/oci/multi", platform="linux/s390x")


def test_compression_is_sniffed(samples):
    image = open_image(f"oci:{samples}/oci/zstd:app-v1")
    assert [x.compression for x in image.layers] == ["zstd", "zstd", "zstd", "none"]
    assert [x.uncompressed_size for x in image.layers][3] == image.layers[3].size
    verified = image.verify()
    assert verified.uncompressed_size == sum(x.uncompressed_size for x in verified.layers) == 245760
    assert [x.diff_id for x in verified.layers] == list(image.config.diff_ids)


def test_blob_digests_against_hashlib(samples):
    root = samples / "oci" / "family"
    for ref in ("base", "app-v2", "wasted"):
        image = open_image(f"oci:{root}:{ref}")
        raw = (root / "blobs/sha256" / image.digest.hex).read_bytes()
        assert image.manifest.raw == raw
        assert image.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
        config = (root / "blobs/sha256" / image.config.digest.hex).read_bytes()
        assert image.config.digest == "sha256:" + hashlib.sha256(config).hexdigest()
        for layer in image.layers:
            data = (root / "blobs/sha256" / layer.digest.hex).read_bytes()
            assert layer.digest == "sha256:" + hashlib.sha256(data).hexdigest()
            import gzip
            assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()


def test_oci_archive_reads_in_place(samples, expected):
    path = samples / "oci-archive" / "app-v1.tar"
    image = open_image(f"oci-archive:{path}:app-v1")
    assert image.digest == expected["app-v1"]["forms"]["oci-archive:oci-archive/app-v1.tar:app-v1"]["manifest_digest"]
    assert open_image(str(path)).digest == image.digest  # bare path, single image
    with tarfile.open(path) as tar:
        for layer in image.layers:
            data = tar.extractfile(f"blobs/sha256/{layer.digest.hex}").read()
            with layer.open() as stream:
                assert stream.read() == data
    assert [e.path for e in image.layers[3].entries()][:2] == ["app", "app/main.py"]


def test_family_list_and_selection(samples, expected):
    root = samples / "oci" / "family"
    rows = list_images(f"oci:{root}")
    assert [r.name for r in rows] == ["base", "app-v1", "app-v2", "app24", "app14", "wasted"]
    assert rows[1].reference == f"oci:{root}:app-v1"
    assert rows[1].digest == expected["app-v1"]["forms"]["oci:oci/family:app-v1"]["manifest_digest"]
    assert open_image(f"oci:{root}:@1").digest == rows[1].digest
    with pytest.raises(ImageNotFoundError, match=r"holds 6 images, name one: oci:.*:base, "):
        open_image(f"oci:{root}")
    with pytest.raises(ImageNotFoundError, match=r"no image with ref 'nope' \(refs: app-v1, app-v2, "
                                                 r"app14, app24, base, wasted\)"):
        open_image(f"oci:{root}:nope")
    with pytest.raises(ImageNotFoundError, match="no image @9"):
        open_image(f"oci:{root}:@9")
    multi = list_images(f"oci:{samples}/oci/multi")
    assert [(r.name, r.media_type, r.platforms) for r in multi] == [
        ("latest", mt.OCI_INDEX, ("linux/amd64", "linux/arm64/v8", "linux/arm/v7"))]


def test_docker25_archive_as_oci_archive(samples):
    rows = list_images(f"oci-archive:{samples}/docker-archive/app-v1-docker25.tar")
    assert [(r.name, r.reference.rsplit(":", 1)[1]) for r in rows] == [("docker.io/library/app:v1", "v1")]
    by_containerd = open_image(
        f"oci-archive:{samples}/docker-archive/app-v1-docker25.tar:docker.io/library/app:v1")
    assert by_containerd.digest == rows[0].digest


def test_nested_indexes_and_lying_media_types(tmp_path):
    layout = Layout()
    amd = layout.image([SIMPLE_LAYER, SECOND_LAYER], ["zstd", "gzip"],
                       media_types=[mt.OCI_LAYER_GZIP, mt.OCI_LAYER_GZIP],
                       platform={"architecture": "amd64", "os": "linux"})
    arm = layout.image([SECOND_LAYER], "none", config=config_json([SECOND_LAYER], "arm64"),
                       platform={"architecture": "arm64", "os": "linux"})
    inner = layout.index([amd, arm])
    outer = layout.index([inner], annotations={"x": "y"})
    root = layout.write(tmp_path / "nested", [{**outer, "annotations": {REF_NAME: "v1"}}])
    image = open_image(f"oci:{root}:v1", platform="linux/amd64")
    assert image.index_digest == inner["digest"]  # the index it was chosen from
    assert image.platform == Platform("linux", "amd64")
    assert [x.compression for x in image.layers] == ["zstd", "gzip"]
    assert image.warnings == (f"layer {sha256(zst(SIMPLE_LAYER))}: media type says gzip but "
                              "the bytes are zstd",)
    verified = image.verify()  # decompression follows the bytes, not the label
    assert [x.uncompressed_size for x in verified.layers] == [len(SIMPLE_LAYER), len(SECOND_LAYER)]
    arm_image = open_image(f"oci:{root}", platform="linux/arm64")
    assert arm_image.layers[0].digest == sha256(SECOND_LAYER)


def test_platform_roots_without_refs(tmp_path):
    layout = Layout()
    amd = layout.image([SIMPLE_LAYER], platform={"architecture": "amd64", "os": "linux"})
    arm = layout.image([SECOND_LAYER], config=config_json([SECOND_LAYER], "arm64"),
                       platform={"architecture": "arm64", "os": "linux"})
    root = layout.write(tmp_path / "plat", [amd, arm])
    image = open_image(f"oci:{root}", platform="linux/arm64")
    assert image.digest == arm["digest"] and image.index_digest is None
    assert image.platform == Platform("linux", "arm64")


def test_foreign_layers_may_be_absent(tmp_path):
    layout = Layout()
    manifest = layout.image([SIMPLE_LAYER, SECOND_LAYER], "gzip")
    body = json.loads(layout.blobs[manifest["digest"]])
    foreign = body["layers"][0]
    foreign["mediaType"] = mt.OCI_LAYER_NONDIST_GZIP
    foreign["urls"] = ["https://example.com/base.tar.gz"]
    del layout.blobs[foreign["digest"]]
    del layout.blobs[manifest["digest"]]
    root = layout.write(tmp_path / "foreign",
                        [layout.blob(mt.OCI_MANIFEST, json.dumps(body).encode())])
    image = open_image(f"oci:{root}")
    assert image.layers[0].urls == ("https://example.com/base.tar.gz",)
    with pytest.raises(MissingBlobError):
        image.layers[0].open()


def test_layout_tar_with_leading_dot_slash(tmp_path):
    layout = Layout()
    manifest = layout.image([SIMPLE_LAYER], "gzip", annotations={REF_NAME: "x"})
    files = {"./" + k: v for k, v in layout.files([manifest]).items()}
    path = write_tar(tmp_path / "dot.tar", files)
    image = open_image(f"oci-archive:{path}:x")
    assert image.layers[0].digest == sha256(gz(SIMPLE_LAYER))
    image.verify()


def test_platform_asked_of_a_single_platform_image(samples):
    warning = ("platform linux/arm64 was asked for, but this is a single-platform image "
               "for linux/amd64")
    assert open_image(f"oci:{samples}/oci/zstd", platform="linux/arm64").warnings == (warning,)
    assert open_image(f"docker-archive:{samples}/docker-archive/base.tar",
                      platform="linux/arm64").warnings == (warning,)
    assert open_image(f"docker-archive:{samples}/docker-archive/app-v1-docker25.tar",
                      platform="linux/arm64").warnings == (warning,)
    assert open_image(f"oci:{samples}/oci/zstd", platform="linux/amd64").warnings == ()


def test_ambiguous_ref(tmp_path):
    layout = Layout()
    one = layout.image([SIMPLE_LAYER], annotations={REF_NAME: "dup"})
    two = layout.image([SECOND_LAYER], annotations={REF_NAME: "dup"})
    root = layout.write(tmp_path / "dup", [one, two])
    with pytest.raises(ImageNotFoundError, match=rf"2 images match, select one by position: "
                                                 rf"oci:{root}:@0 \({one['digest']}\), oci:{root}:@1"):
        open_image(f"oci:{root}:dup")
    assert open_image(f"oci:{root}:@1").digest == two["digest"]
