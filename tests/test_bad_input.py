"""Bad input: each case gives a specific LayerlabError naming the file and the problem;
the CLI prints one line and exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from layerlab import mediatypes as mt
from layerlab.cli import main
from layerlab.errors import (CorruptArchiveError, DigestMismatchError, ImageNotFoundError,
                             InvalidManifestError, InvalidReferenceError, LayerlabError,
                             MissingBlobError, NotAnArchiveError, SizeMismatchError,
                             UnknownMediaTypeError, UnsafePathError)
from layerlab.sources import open_image

from local_images import (REF_NAME, SECOND_LAYER, SIMPLE_LAYER, Layout, compact, config_json,
                          docker_archive_files, gz, tar_of, write_tar)


def one_image_layout(tmp_path, layers=(SIMPLE_LAYER, SECOND_LAYER), compression="gzip"):
    layout = Layout()
    manifest = layout.image(list(layers), compression, annotations={REF_NAME: "v1"})
    root = layout.write(tmp_path / "layout", [manifest])
    body = json.loads(layout.blobs[manifest["digest"]])
    return root, manifest, body


def blob(root, digest):
    return root / "blobs" / "sha256" / digest.split(":")[1]


def cli_error(capsys, *args) -> str:
    """Run the CLI in-process: assert exit 2 and one stderr line; return that line."""
    code = main(["inspect", *map(str, args)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("layerlab: error: "), err
    return err.strip()


# ------------------------------------------------------------------ not an archive
def test_not_a_tar(tmp_path, capsys):
    path = tmp_path / "notes.tar"
    path.write_text("just some text, not a tar archive\n" * 30)
    for ref in (f"docker-archive:{path}", f"oci-archive:{path}"):
        with pytest.raises(NotAnArchiveError, match=f"{path}: not a tar archive"):
            open_image(ref)
    assert str(path) in cli_error(capsys, f"docker-archive:{path}")
    with pytest.raises(InvalidReferenceError, match=f"{path}: not a tar archive"):
        open_image(str(path))


def test_tar_that_is_no_image(tmp_path):
    path = write_tar(tmp_path / "other.tar", {"hello.txt": b"hi"})
    with pytest.raises(NotAnArchiveError, match=r"not a docker-save archive \(no manifest.json\)"):
        open_image(f"docker-archive:{path}")
    with pytest.raises(NotAnArchiveError, match=r"not an OCI image layout \(no index.json\)"):
        open_image(f"oci-archive:{path}")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "index.json").write_text("{}")
    with pytest.raises(NotAnArchiveError, match="no oci-layout"):
        open_image(f"oci:{tmp_path / 'dir'}")


def test_truncated_tar(tmp_path, capsys):
    files = docker_archive_files([([SIMPLE_LAYER, SECOND_LAYER], ["t:1"])])
    whole = tar_of([(k, v) for k, v in files.items()])
    path = tmp_path / "cut.tar"
    path.write_bytes(whole[: len(whole) // 2 + 100])  # inside some member's data
    with pytest.raises(CorruptArchiveError, match=f"{path}: truncated: member .* needs"):
        open_image(f"docker-archive:{path}")
    assert "truncated" in cli_error(capsys, path.as_posix() and f"docker-archive:{path}")


def test_corrupt_tar_header(tmp_path):
    files = docker_archive_files([([SIMPLE_LAYER], ["t:1"])])
    whole = bytearray(tar_of([(k, v) for k, v in files.items()]))
    # damage the checksum field of the second member's header
    first_size = int(whole[124:135].decode().strip("\0 ") or "0", 8)
    offset = 512 + (first_size + 511) // 512 * 512
    whole[offset + 148:offset + 156] = b"9999999\0"
    path = tmp_path / "bad-header.tar"
    path.write_bytes(bytes(whole))
    with pytest.raises(CorruptArchiveError, match=f"{path}: corrupt tar header at offset {offset}"):
        open_image(f"docker-archive:{path}")


# ------------------------------------------------------------------ compressed data
def test_truncated_gzip_layer(tmp_path, capsys):
    cut = gz(SIMPLE_LAYER)[:-30]
    layout = Layout()
    layer = layout.blob(mt.OCI_LAYER_GZIP, cut)
    config = layout.blob(mt.OCI_CONFIG, config_json([SIMPLE_LAYER]))
    manifest = layout.blob(mt.OCI_MANIFEST, compact({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config, "layers": [layer]}))
    root = layout.write(tmp_path / "l", [manifest])
    image = open_image(f"oci:{root}")
    with pytest.raises(CorruptArchiveError, match=f"layer {layer['digest']}: truncated gzip data"):
        image.verify()
    with pytest.raises(CorruptArchiveError, match="truncated gzip"):
        list(image.layers[0].entries())
    assert f"layer {layer['digest']}: truncated gzip data" in cli_error(capsys, f"oci:{root}", "--verify")


def test_corrupt_gzip_layer(tmp_path):
    data = bytearray(gz(SIMPLE_LAYER))
    data[2] = 9  # compression method 9: not deflate
    layout = Layout()
    layer = layout.blob(mt.OCI_LAYER_GZIP, bytes(data))
    config = layout.blob(mt.OCI_CONFIG, config_json([SIMPLE_LAYER]))
    manifest = layout.blob(mt.OCI_MANIFEST, compact({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config, "layers": [layer]}))
    root = layout.write(tmp_path / "l", [manifest])
    with pytest.raises(CorruptArchiveError, match=f"layer {layer['digest']}: corrupt gzip data"):
        open_image(f"oci:{root}").verify()


# ------------------------------------------------------------------ missing blobs
def test_missing_blobs(tmp_path, capsys):
    root, manifest, body = one_image_layout(tmp_path)
    layer_digest = body["layers"][1]["digest"]
    os.unlink(blob(root, layer_digest))
    with pytest.raises(MissingBlobError, match=f"{root}: layer {layer_digest} is missing "
                                               rf"\(blobs/sha256/{layer_digest[7:]}\)"):
        open_image(f"oci:{root}")
    assert layer_digest in cli_error(capsys, f"oci:{root}")
    os.unlink(blob(root, body["config"]["digest"]))
    with pytest.raises(MissingBlobError, match=f"config {body['config']['digest']} is missing"):
        open_image(f"oci:{root}")
    os.unlink(blob(root, manifest["digest"]))
    with pytest.raises(MissingBlobError, match=f"manifest {manifest['digest']} is missing"):
        open_image(f"oci:{root}")


def test_missing_docker_archive_layer(tmp_path):
    files = docker_archive_files([([SIMPLE_LAYER], ["m:1"])])
    layer_path = next(k for k in files if k.endswith("layer.tar"))
    del files[layer_path]
    path = write_tar(tmp_path / "m.tar", files)
    with pytest.raises(MissingBlobError, match=f"{path}: layer {layer_path} .* is missing"):
        open_image(f"docker-archive:{path}")


# ------------------------------------------------------------------ digest mismatches
def test_layer_digest_mismatch(tmp_path, capsys):
    root, _, body = one_image_layout(tmp_path)
    layer_digest = body["layers"][0]["digest"]
    path = blob(root, layer_digest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    image = open_image(f"oci:{root}")  # layers are checked when read
    with pytest.raises(DigestMismatchError, match=f"layer {layer_digest}: digest mismatch"):
        image.verify()
    assert f"layer {layer_digest}: digest mismatch" in cli_error(capsys, f"oci:{root}", "--verify")


def test_layer_size_mismatch(tmp_path):
    root, _, body = one_image_layout(tmp_path)
    layer_digest = body["layers"][0]["digest"]
    with open(blob(root, layer_digest), "ab") as f:
        f.write(b"extra")
    with pytest.raises(SizeMismatchError, match=f"layer {layer_digest}"):
        open_image(f"oci:{root}")


def test_config_and_manifest_digest_mismatch(tmp_path):
    root, manifest, body = one_image_layout(tmp_path)
    config_path = blob(root, body["config"]["digest"])
    original = config_path.read_bytes()
    config_path.write_bytes(original.replace(b"amd64", b"arm64"))
    with pytest.raises(DigestMismatchError, match=f"{root}: config .*expected {body['config']['digest']}"):
        open_image(f"oci:{root}")
    config_path.write_bytes(original)
    manifest_path = blob(root, manifest["digest"])
    manifest_path.write_bytes(manifest_path.read_bytes().replace(b'"schemaVersion":2',
                                                                 b'"schemaVersion":2 '))
    with pytest.raises((DigestMismatchError, SizeMismatchError), match="manifest"):
        open_image(f"oci:{root}")


def test_docker_archive_config_name_mismatch(tmp_path):
    files = docker_archive_files([([SIMPLE_LAYER], ["c:1"])])
    config_name = next(k for k in files if k.endswith(".json") and k != "manifest.json")
    files[config_name] = files[config_name].replace(b"amd64", b"arm64")
    path = write_tar(tmp_path / "c.tar", files)
    with pytest.raises(DigestMismatchError, match=f"{path}: config {config_name}: digest mismatch"):
        open_image(f"docker-archive:{path}")


# ------------------------------------------------------------------ invalid JSON
def test_invalid_json(tmp_path, capsys):
    files = docker_archive_files([([SIMPLE_LAYER], ["j:1"])])
    files["manifest.json"] = b"[{not json"
    path = write_tar(tmp_path / "j.tar", files)
    with pytest.raises(InvalidManifestError, match=f"{path}: manifest.json: invalid JSON"):
        open_image(f"docker-archive:{path}")
    assert "manifest.json: invalid JSON" in cli_error(capsys, f"docker-archive:{path}")

    root, manifest, body = one_image_layout(tmp_path)
    (root / "index.json").write_bytes(b'{"manifests": [')
    with pytest.raises(InvalidManifestError, match=f"{root}: index.json: invalid JSON"):
        open_image(f"oci:{root}")


def test_invalid_config_json(tmp_path):
    layout = Layout()
    manifest = layout.image([SIMPLE_LAYER], config=b"{broken")
    root = layout.write(tmp_path / "l", [manifest])
    with pytest.raises(InvalidManifestError, match=f"{root}: config sha256:.*: invalid JSON"):
        open_image(f"oci:{root}")


def test_layer_count_differs_from_diff_ids(tmp_path):
    layout = Layout()
    manifest = layout.image([SIMPLE_LAYER], config=config_json([SIMPLE_LAYER, SECOND_LAYER]))
    root = layout.write(tmp_path / "l", [manifest])
    with pytest.raises(InvalidManifestError, match="1 layers but the config lists 2 diff_ids"):
        open_image(f"oci:{root}")


# ------------------------------------------------------------------ unknown media types
def test_unknown_media_types(tmp_path, capsys):
    layout = Layout()
    odd_layer = layout.image([SIMPLE_LAYER], media_types=["application/vnd.example.blob"])
    root = layout.write(tmp_path / "a", [odd_layer])
    with pytest.raises(UnknownMediaTypeError, match="unknown media type 'application/vnd.example.blob'"):
        open_image(f"oci:{root}")
    assert "application/vnd.example.blob" in cli_error(capsys, f"oci:{root}")

    layout = Layout()
    artifact = layout.image([SIMPLE_LAYER], config_media_type="application/vnd.example.config+json")
    root = layout.write(tmp_path / "b", [artifact])
    with pytest.raises(UnknownMediaTypeError, match="not a container image config"):
        open_image(f"oci:{root}")

    layout = Layout()
    thing = layout.blob("application/vnd.example.thing", b"{}")
    root = layout.write(tmp_path / "c", [thing])
    with pytest.raises(UnknownMediaTypeError, match="not an image manifest or index"):
        open_image(f"oci:{root}")


# ------------------------------------------------------------------ unsafe paths
@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "usr/../../escape"])
def test_unsafe_paths_in_a_layer(tmp_path, capsys, name):
    bad = tar_of([("etc", "dir"), (name, b"boom")])
    root, _, body = one_image_layout(tmp_path, layers=(bad,))
    image = open_image(f"oci:{root}")
    with pytest.raises(UnsafePathError, match=f"layer {body['layers'][0]['digest']}: .*{name!r}"):
        list(image.layers[0].entries())
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafePathError):
        list(image.layers[0].walk())
    assert sorted(tmp_path.rglob("*")) == before  # nothing extracted or written
    assert not (tmp_path / "escape").exists()


def test_unsafe_paths_in_an_archive(tmp_path, capsys):
    files = docker_archive_files([([SIMPLE_LAYER], ["u:1"])])
    files["../outside"] = b"x"
    path = write_tar(tmp_path / "u.tar", files)
    with pytest.raises(UnsafePathError, match=f"{path}: member: path '../outside' escapes"):
        open_image(f"docker-archive:{path}")
    assert "escapes" in cli_error(capsys, f"docker-archive:{path}")
    files = docker_archive_files([([SIMPLE_LAYER], ["u:1"])])
    manifest = json.loads(files["manifest.json"])
    manifest[0]["Layers"] = ["/etc/passwd"]
    files["manifest.json"] = json.dumps(manifest).encode()
    path = write_tar(tmp_path / "u2.tar", files)
    with pytest.raises(UnsafePathError, match="absolute path '/etc/passwd'"):
        open_image(f"docker-archive:{path}")
    files["link"] = ("symlink", "../../etc")
    manifest[0]["Layers"] = ["link/passwd"]
    files["manifest.json"] = json.dumps(manifest).encode()
    path = write_tar(tmp_path / "u3.tar", files)
    with pytest.raises(UnsafePathError, match="escapes the archive root"):
        open_image(f"docker-archive:{path}")


def test_symlink_loop(tmp_path, capsys):
    files = docker_archive_files([([SIMPLE_LAYER], ["loop:1"])])
    manifest = json.loads(files["manifest.json"])
    files["a/layer.tar"] = ("symlink", "../b/layer.tar")
    files["b/layer.tar"] = ("symlink", "../a/layer.tar")
    manifest[0]["Layers"] = ["a/layer.tar"]
    files["manifest.json"] = json.dumps(manifest).encode()
    path = write_tar(tmp_path / "loop.tar", files)
    with pytest.raises(UnsafePathError, match=f"{path}: symbolic link loop resolving 'a/layer.tar'"):
        open_image(f"docker-archive:{path}")
    assert "symbolic link loop" in cli_error(capsys, f"docker-archive:{path}")


# ------------------------------------------------------------------ references naming nothing
def test_references_that_name_nothing(tmp_path, samples, capsys):
    with pytest.raises(ImageNotFoundError, match=f"{tmp_path}/none.tar: no such file"):
        open_image(f"docker-archive:{tmp_path}/none.tar")
    with pytest.raises(ImageNotFoundError, match=f"{tmp_path}/none: no such directory"):
        open_image(f"oci:{tmp_path}/none")
    with pytest.raises(ImageNotFoundError, match="no image named 'app:v9'"):
        open_image(f"docker-archive:{samples}/docker-archive/family.tar:app:v9")
    with pytest.raises(ImageNotFoundError, match=r"no image @3 \(the archive holds 3\)"):
        open_image(f"docker-archive:{samples}/docker-archive/family.tar:@3")
    with pytest.raises(ImageNotFoundError, match="no image with ref 'v9'"):
        open_image(f"oci:{samples}/oci/family:v9")
    line = cli_error(capsys, f"oci:{samples}/oci/family:v9")
    assert f"{samples}/oci/family: no image with ref 'v9'" in line
    assert "no such file" in cli_error(capsys, tmp_path / "missing.tar")
    layout = Layout()
    root = layout.write(tmp_path / "empty", [])
    with pytest.raises(ImageNotFoundError, match="holds no images"):
        open_image(f"oci:{root}")


def test_every_error_is_a_layerlab_error():
    for cls in (CorruptArchiveError, DigestMismatchError, ImageNotFoundError, InvalidManifestError,
                MissingBlobError, NotAnArchiveError, SizeMismatchError, UnknownMediaTypeError,
                UnsafePathError):
        assert issubclass(cls, LayerlabError)


def test_real_cli_process_exit_code(tmp_path):
    path = tmp_path / "x.tar"
    path.write_bytes(b"\x00garbage" * 100)
    proc = subprocess.run([sys.executable, "-m", "layerlab", "inspect", f"docker-archive:{path}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"layerlab: error: {path}: ")


def test_compressed_archive(tmp_path, samples):
    path = tmp_path / "base.tar.gz"
    path.write_bytes(gz((samples / "docker-archive" / "base.tar").read_bytes()))
    with pytest.raises(NotAnArchiveError, match=f"{path}: a gzip-compressed file, not a plain tar"):
        open_image(f"docker-archive:{path}")
