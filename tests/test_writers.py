"""Sinks (layerlab.sources.writers): OCI layouts and docker archives, read back by
layerlab and by skopeo."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest

from layerlab import mediatypes as mt
from layerlab.errors import ArchiveError, DigestMismatchError
from layerlab.sources import list_images, open_image
from layerlab.sources.writers import write_docker_archive, write_oci_layout

from conftest import require_tool
from local_images import REF_NAME, SIMPLE_LAYER, Layout, sha256


def same_image(a, b) -> None:
    assert a.config.digest == b.config.digest
    assert a.config.raw == b.config.raw
    assert [x.diff_id for x in a.layers] == [x.diff_id for x in b.layers]


def skopeo_json(*args: str) -> dict:
    proc = subprocess.run([require_tool("skopeo"), *args], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def sources(samples):
    return {
        "docker": open_image(f"docker-archive:{samples}/docker-archive/family.tar:app:v2"),
        "zstd": open_image(f"oci:{samples}/oci/zstd:app-v1"),
        "arm": open_image(f"oci:{samples}/oci/multi", platform="linux/arm/v7"),
        "gzip": open_image(f"oci:{samples}/oci/family:wasted"),
    }


def test_oci_layout_round_trip(tmp_path, sources):
    target = tmp_path / "layout"
    write_oci_layout([(image, name) for name, image in sources.items()], target)
    for name, original in sources.items():
        back = open_image(f"oci:{target}:{name}")
        same_image(back, original)
        back.verify()
        if original.media_type == mt.OCI_MANIFEST:  # OCI manifests are kept byte for byte
            assert back.digest == original.digest
            assert [x.digest for x in back.layers] == [x.digest for x in original.layers]
        else:  # Docker schema2 becomes OCI; layer blobs stay as they were
            assert back.media_type == mt.OCI_MANIFEST
            assert [x.digest for x in back.layers] == [x.digest for x in original.layers]
            assert [x.media_type for x in back.layers] == [mt.OCI_LAYER] * 5
    assert [r.name for r in list_images(f"oci:{target}")] == list(sources)
    index = json.loads((target / "index.json").read_text())
    assert index["manifests"][2]["platform"] == {"architecture": "arm", "os": "linux", "variant": "v7"}
    assert not [p for p in target.rglob("*.tmp")]
    assert oct(os.stat(target / "index.json").st_mode & 0o777) in ("0o644", "0o664")


def test_layout_merge_replaces_refs(tmp_path, sources):
    target = tmp_path / "layout"
    write_oci_layout([(sources["zstd"], "a"), (sources["gzip"], "b")], target)
    write_oci_layout([(sources["arm"], "a"), (sources["docker"], None)], target)
    rows = list_images(f"oci:{target}")
    assert [r.name for r in rows] == ["a", "b", None]
    assert open_image(f"oci:{target}:a").config.digest == sources["arm"].config.digest
    assert open_image(f"oci:{target}:@2").config.digest == sources["docker"].config.digest


def test_docker_manifests_can_be_kept(tmp_path, sources):
    write_oci_layout([(sources["docker"], "d")], tmp_path / "keep", keep_docker_manifests=True)
    back = open_image(f"oci:{tmp_path / 'keep'}:d")
    assert back.media_type == mt.DOCKER_MANIFEST_V2
    # the synthesised manifest labelled uncompressed layers gzip (as skopeo does): corrected
    assert [x.media_type for x in back.layers] == [mt.DOCKER_LAYER] * 5
    assert back.warnings == ()


def test_oci_archive_round_trip(tmp_path, sources):
    target = tmp_path / "out.tar"
    write_oci_layout([(sources["zstd"], "z"), (sources["gzip"], "g")], target, archive=True)
    with tarfile.open(target) as tar:
        names = tar.getnames()
    assert names[:2] == ["oci-layout", "blobs"] and names[-1] == "index.json"
    assert len(names) == len(set(names))  # shared blobs written once
    for ref, original in (("z", sources["zstd"]), ("g", sources["gzip"])):
        back = open_image(f"oci-archive:{target}:{ref}")
        assert back.digest == original.digest
        same_image(back, original)
        back.verify()
    assert os.listdir(tmp_path) == ["out.tar"]


def test_docker_archive_round_trip(tmp_path, sources):
    target = tmp_path / "saved.tar"
    write_docker_archive([(sources["zstd"], "zstd:1"), (sources["docker"], "docker.io/library/app:v2"),
                          (sources["docker"], "registry.test:5000/app:latest"),
                          (sources["arm"], None)], target)
    rows = list_images(f"docker-archive:{target}")
    assert [r.name for r in rows] == ["zstd:1", "app:v2", "registry.test:5000/app:latest", None]
    for ref, original in (("zstd:1", sources["zstd"]), ("app:v2", sources["docker"]),
                          ("@2", sources["arm"])):
        back = open_image(f"docker-archive:{target}:{ref}")
        same_image(back, original)
        assert all(x.compression == "none" for x in back.layers)
        assert [x.digest for x in back.layers] == [x.diff_id for x in original.layers]
        back.verify()
    # the same docker image saved again: identical synthesised manifest
    assert open_image(f"docker-archive:{target}:app:v2").digest == sources["docker"].digest
    with tarfile.open(target) as tar:
        repositories = json.loads(tar.extractfile("repositories").read())
    assert set(repositories) == {"zstd", "app", "registry.test:5000/app"}


def test_skopeo_reads_what_we_wrote(tmp_path, sources):
    write_oci_layout([(sources["docker"], "app-v2"), (sources["zstd"], "zstd")], tmp_path / "lay")
    write_oci_layout([(sources["gzip"], "wasted")], tmp_path / "lay.tar", archive=True)
    write_docker_archive([(sources["zstd"], "app:v1"), (sources["arm"], "arm:v7")], tmp_path / "d.tar")
    for ref, original in ((f"oci:{tmp_path}/lay:app-v2", sources["docker"]),
                          (f"oci:{tmp_path}/lay:zstd", sources["zstd"]),
                          (f"oci-archive:{tmp_path}/lay.tar:wasted", sources["gzip"]),
                          (f"docker-archive:{tmp_path}/d.tar:app:v1", sources["zstd"]),
                          (f"docker-archive:{tmp_path}/d.tar:arm:v7", sources["arm"])):
        ours = open_image(ref)
        info = skopeo_json("inspect", ref)
        assert info["Digest"] == ours.digest, ref
        assert info["Layers"] == [str(x.digest) for x in ours.layers]
        config = skopeo_json("inspect", "--config", ref)
        assert config["rootfs"]["diff_ids"] == [str(x) for x in original.config.diff_ids]


def test_a_lying_layer_aborts_the_write(tmp_path):
    layout = Layout()
    manifest = layout.image([SIMPLE_LAYER], "gzip", annotations={REF_NAME: "x"})
    root = layout.write(tmp_path / "src", [manifest])
    image = open_image(f"oci:{root}:x")
    blob = root / "blobs/sha256" / image.layers[0].digest.hex
    data = bytearray(blob.read_bytes())
    data[-5] ^= 1
    blob.write_bytes(bytes(data))
    (tmp_path / "dst").mkdir()
    with pytest.raises(DigestMismatchError, match=f"layer {image.layers[0].digest}"):
        write_oci_layout([(image, "x")], tmp_path / "dst")
    assert not (tmp_path / "dst" / "index.json").exists()
    assert not (tmp_path / "dst" / "blobs/sha256" / image.layers[0].digest.hex).exists()
    assert not [p for p in (tmp_path / "dst").rglob("*.tmp")]
    with pytest.raises(DigestMismatchError):
        write_docker_archive([(image, "x:1")], tmp_path / "dst" / "x.tar")
    assert not [p for p in (tmp_path / "dst").iterdir() if p.is_file()]


def test_writers_refuse_odd_targets(tmp_path, sources):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="not empty and not an OCI image layout"):
        write_oci_layout([(sources["zstd"], "z")], tmp_path / "full")
    with pytest.raises(ArchiveError, match="no such directory"):
        write_oci_layout([(sources["zstd"], "z")], tmp_path / "no" / "such")
    with pytest.raises(ArchiveError, match="no such directory"):
        write_docker_archive([(sources["zstd"], "z:1")], tmp_path / "no" / "x.tar")
    with pytest.raises(ArchiveError, match="is a directory"):
        write_docker_archive([(sources["zstd"], "z:1")], tmp_path / "full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    assert sha256(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
