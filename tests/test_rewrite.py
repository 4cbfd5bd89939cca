"""``layerlab.rewrite`` / ``layerlab rewrite``: merged, squashed, filtered, reordered,
re-timestamped and recompressed images are real images with the same filesystem.

Ground truth: an extractor independent of layerlab (tests/analysis_images.py), umoci's
unpack and skopeo's reading of the written images; the merged sizes are the ones
``layerlab history`` predicted.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from analysis_images import extract_archive_image, tree_listing, write_archive
from conftest import require_tool

import layerlab
from layerlab.errors import RewriteError

EDGE_LAYERS = [
    [("dir", "a"), ("file", "a/x", b"1" * 10), ("dir", "a/d"), ("file", "a/d/y", b"2"),
     ("file", "h", b"hard"), ("hardlink", "h2", "h"), ("symlink", "s", "a/x")],
    [("whiteout", "a/d"), ("whiteout", "nothing/here"), ("file", "a/d", b"now a file"),
     ("file", "h", b"overwritten")],
    [("opaque", "a"), ("file", "a/z", b"z"), ("file", "s", b"was a link")],
    [("whiteout", "a"), ("dir", "a"), ("file", "a/new", b"new"), ("file", "x/y/z", b"deep")],
]


def _files_diff(a, b, **kwargs) -> dict:
    files = layerlab.diff(a, b, files=True, **kwargs).to_json()["files"]
    return {k: files[k] for k in ("added", "removed", "modified")}


NO_CHANGE = {"added": [], "removed": [], "modified": []}


def _layer_members(layer) -> list[tarfile.TarInfo]:
    with layer.open_uncompressed() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        return [m for m in tar]


@pytest.fixture()
def edge(tmp_path):
    return write_archive(tmp_path / "edge.tar", EDGE_LAYERS)


@pytest.mark.parametrize("groups", [[[0, 1]], [[1, 2]], [[2, 3]], [[1, 2, 3]], [[0, 1], [2, 3]],
                                    "squash"])
def test_merged_filesystem_equals_the_reference_extraction(edge, tmp_path, groups):
    source = layerlab.open_image(str(edge))
    squash = groups == "squash"
    result = layerlab.rewrite(source, squash=squash, merge=None if squash else groups)
    out = tmp_path / "out.tar"
    result.copy(f"docker-archive:{out}:edge:merged")
    expected = tree_listing(extract_archive_image(edge, tmp_path / "before"))
    assert tree_listing(extract_archive_image(out, tmp_path / "after")) == expected
    assert len(result.image.layers) == (1 if squash else 4 - sum(len(g) - 1 for g in groups))
    files = _files_diff(source, result.image)
    # merged with layer 1, which overwrites h, the link h2 -> h is a copy of the old h:
    # the same bytes on disk, but a regular file in the tar
    copied = squash or [0, 1] in groups
    assert [(m["path"], m["changes"], m["type_b"]) for m in files["modified"]] == (
        [("h2", ["type"], "file")] if copied else [])
    assert files["added"] == files["removed"] == []
    result.cleanup()


def test_a_hard_link_whose_target_is_overwritten_in_the_group_becomes_a_copy(edge):
    source = layerlab.open_image(str(edge))
    with layerlab.rewrite(source, merge=[[0, 1]]) as result:
        members = {m.name: m for m in _layer_members(result.image.layers[0])}
        assert members["h2"].isfile() and members["h2"].size == 4  # b"hard", not a link
        assert members["h"].size == len(b"overwritten")
        # the whiteout of a path nothing below has is dropped; nothing lies below layer 0
        assert not [n for n in members if ".wh." in n]
        assert [c.action for c in result.changes] == ["merged", "kept", "kept"]
        assert [c.layer.digest for c in result.changes[1:]] == [l.digest for l in source.layers[2:]]


def test_squash_writes_no_whiteouts_and_keeps_the_history_story(edge):
    source = layerlab.open_image(str(edge))
    with layerlab.rewrite(source, squash=True) as result:
        names = [m.name for m in _layer_members(result.image.layers[0])]
        assert not [n for n in names if ".wh." in n]
        assert sorted(n for n in names) == ["a", "a/new", "h", "h2", "s", "x/y/z"]
        (step,) = result.image.config.history
        assert step.created_by == "/bin/sh -c step 0 && step 1 && step 2 && step 3"
        assert step.comment == "layerlab rewrite: layers 0-3 merged"


def test_target_produces_the_merge_history_predicted(samples, tmp_path):
    source = layerlab.open_image(f"oci:{samples}/oci/family:app24")
    advice = layerlab.layer_advice(source)
    predicted = advice.merged_layers(target=14)
    with layerlab.rewrite(source, target=14) as result:
        image = result.image
        assert len(image.layers) == 14
        merged = [c for c in result.changes if c.action == "merged"]
        assert [c.indexes for c in merged] == [(3, 4), (5, 6), (7, 8), (9, 10, 11), (12, 13),
                                               (15, 16), (17, 18, 19), (22, 23)]
        for change in result.changes:
            spec = predicted[change.position]
            if change.action == "merged":  # exactly the predicted tar, and instruction
                assert change.layer.uncompressed_size == spec["uncompressed_size"]
                assert change.layer.created_by == spec["created_by"]
            else:
                assert change.layer.digest == source.layers[change.indexes[0]].digest
        assert image.config.diff_ids == tuple(layer.diff_id for layer in image.layers)
        assert [h.created_by for h in image.config.history if h.empty_layer] == \
            [h.created_by for h in source.config.history if h.empty_layer]
        assert _files_diff(source, image) == NO_CHANGE
        assert image.verify() is not None
        # real tools read it: skopeo lists the same blobs, umoci unpacks the same tree
        layout = tmp_path / "layout"
        result.copy(f"oci:{layout}:t14")
        skopeo = require_tool("skopeo")
        seen = json.loads(subprocess.run([skopeo, "inspect", f"oci:{layout}:t14"], check=True,
                                         capture_output=True, text=True).stdout)
        assert seen["Layers"] == [str(layer.digest) for layer in image.layers]
        umoci = require_tool("umoci")
        source_layout = tmp_path / "source"
        shutil.copytree(samples / "oci" / "family", source_layout)
        for ref, where, name in ((f"{source_layout}:app24", "a", "app24"),
                                 (f"{layout}:t14", "b", "t14")):
            subprocess.run([umoci, "unpack", "--rootless", "--image", ref, str(tmp_path / where)],
                           check=True, capture_output=True)
        assert tree_listing(tmp_path / "a" / "rootfs") == tree_listing(tmp_path / "b" / "rootfs")


def test_exclude_drops_exactly_the_matching_paths(samples):
    source = layerlab.open_image(f"docker-archive:{samples}/docker-archive/app-v1.tar")
    with layerlab.rewrite(source, exclude=["app/static", "**/requirements.txt"]) as result:
        files = _files_diff(source, result.image)
        assert sorted(p["path"] for p in files["removed"]) == [
            "app/requirements.txt", "app/static", "app/static/logo.png"]
        assert files["added"] == [] and files["modified"] == []
        assert [c.action for c in result.changes] == ["kept", "kept", "kept", "rewritten"]
        assert [c.layer.digest for c in result.changes[:3]] == [l.digest for l in source.layers[:3]]
        assert result.image.diff_ids[3] != source.diff_ids[3]


def test_a_hard_link_to_an_excluded_file_is_refused(edge):
    with pytest.raises(RewriteError, match=r"hard link h2 -> h: the target is excluded"):
        layerlab.rewrite(str(edge), exclude=["h"])


def test_reorder_moves_only_layers_that_commute(tmp_path):
    layers = [[("file", "base", b"b")], [("file", "app/v", b"1")], [("dir", "etc"),
              ("file", "etc/conf", b"c")], [("whiteout", "base")]]
    archive = write_archive(tmp_path / "r.tar", layers)
    source = layerlab.open_image(str(archive))
    with layerlab.rewrite(source, reorder=[0, 2, 1, 3]) as result:
        assert [c.indexes for c in result.changes] == [(0,), (2,), (1,), (3,)]
        assert [c.action for c in result.changes] == ["kept"] * 4
        assert [layer.digest for layer in result.image.layers] == \
            [source.layers[i].digest for i in (0, 2, 1, 3)]
        assert [h.created_by for h in result.image.config.history] == \
            [f"/bin/sh -c step {i}" for i in (0, 2, 1, 3)]
        assert _files_diff(source, result.image) == NO_CHANGE
    with pytest.raises(RewriteError, match=r"layers 0 and 3 do not commute \(one layer whites "
                                           r"out base, which the other writes\)"):
        layerlab.rewrite(source, reorder=[3, 0, 1, 2])
    with pytest.raises(RewriteError, match="each of the 4 layers"):
        layerlab.rewrite(source, reorder=[0, 1, 2])


def test_timestamps_are_set_and_the_result_is_reproducible(samples, tmp_path):
    ref = f"oci:{samples}/oci/family:app-v1"
    source = layerlab.open_image(ref)
    with layerlab.rewrite(source, timestamp=0) as a, layerlab.rewrite(ref, timestamp=0) as b:
        assert a.image.digest == b.image.digest
        assert a.image.config.created == "1970-01-01T00:00:00Z"
        assert {h.created for h in a.image.config.history} == {"1970-01-01T00:00:00Z"}
        for layer in a.image.layers:
            assert {m.mtime for m in _layer_members(layer)} == {0}
            assert not any(k in m.pax_headers for m in _layer_members(layer)
                           for k in ("mtime", "atime", "ctime"))
        assert _files_diff(source, a.image, ignore_mtime=True) == NO_CHANGE
        assert [c.action for c in a.changes] == ["rewritten"] * 4


@pytest.mark.parametrize("compression,media_type", [
    ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
    ("none", "application/vnd.docker.image.rootfs.diff.tar"),
    ("gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip")])
def test_recompress_keeps_the_tars(samples, tmp_path, compression, media_type):
    source = layerlab.open_image(f"docker-archive:{samples}/docker-archive/app-v1.tar")
    with layerlab.rewrite(source, compression=compression) as result:
        image = result.image
        assert image.diff_ids == source.diff_ids
        assert {layer.media_type for layer in image.layers} == {media_type}
        expected = "kept" if compression == "none" else "recompressed"
        assert [c.action for c in result.changes] == [expected] * 4
        image.verify()
        layout = tmp_path / "layout"
        result.copy(f"oci:{layout}:x")
        skopeo = require_tool("skopeo")
        seen = json.loads(subprocess.run([skopeo, "inspect", "--raw", f"oci:{layout}:x"],
                                         check=True, capture_output=True, text=True).stdout)
        assert [d["size"] for d in seen["layers"]] == [layer.size for layer in image.layers]


def test_cli_rewrite_json_and_errors(samples, tmp_path):
    out = tmp_path / "sq.tar"
    proc = subprocess.run([sys.executable, "-m", "layerlab", "rewrite",
                           f"docker-archive:{samples}/docker-archive/app-v1.tar",
                           f"docker-archive:{out}:app:sq", "--squash", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert sorted(data) == ["bytes_written", "destination", "layers", "result", "seconds",
                            "source"]
    assert data["source"]["layers"] == 4 and data["result"]["layers"] == 1
    assert data["layers"][0]["source_layers"] == [0, 1, 2, 3]
    assert data["layers"][0]["action"] == "merged"
    assert data["destination"]["reference"] == f"docker-archive:{out}:app:sq"
    assert layerlab.open_image(f"docker-archive:{out}").diff_ids == (
        data["layers"][0]["diff_id"],)

    def fails(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "layerlab", "rewrite", *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stdout == ""
        return proc.stderr.strip()

    src = f"docker-archive:{samples}/docker-archive/app-v1.tar"
    assert fails(src, f"oci:{tmp_path}/x", "--merge", "2-9") == (
        "layerlab: error: merge groups must be disjoint runs of layer indexes 0..3, "
        "got [2, 3, 4, 5, 6, 7, 8, 9]")
    assert "empty layer range '3-1'" in fails(src, f"oci:{tmp_path}/x", "--merge", "3-1")
    crossed = write_archive(tmp_path / "crossed.tar", [[("file", "etc/a", b"1")],
                                                       [("whiteout", "etc/a")]])
    assert fails(str(crossed), f"oci:{tmp_path}/x", "--reorder", "1,0") == (
        "layerlab: error: layers 0 and 1 do not commute (one layer whites out etc/a, "
        "which the other writes); they keep their order")
    assert fails(f"docker-archive:{tmp_path}/missing.tar", f"oci:{tmp_path}/x",
                 "--squash").startswith("layerlab: error:")
    assert not (tmp_path / "x").exists()


def test_recompress_to_zstd_chunked_carries_the_toc(samples, tmp_path):
    from layerlab.pusher.zstdchunked import read_toc

    source = layerlab.open_image(f"oci:{samples}/oci/family:app-v1")
    with layerlab.rewrite(source, compression="zstd:chunked") as result:
        image = result.image
        assert image.diff_ids == source.diff_ids
        assert image.media_type == "application/vnd.oci.image.manifest.v1+json"
        for layer, original in zip(image.layers, source.layers):
            assert sorted(layer.annotations) == ["io.containers.zstd-chunked.manifest-checksum",
                                                 "io.containers.zstd-chunked.manifest-position"]
            with layer.open(verify=False) as blob:  # the blob file itself: seekable
                toc = read_toc(blob, layer.annotations)
            names = [e["name"].rstrip("/") for e in toc if e["type"] != "chunk"]
            assert names == [e.path for e in original.entries()]
        descriptors = json.loads(image.manifest.raw)["layers"]
        assert [d["annotations"] for d in descriptors] == [dict(l.annotations) for l in image.layers]
        image.verify()


@pytest.mark.parametrize("options", [{"compression": "gzip"}, {"squash": True},
                                     {"timestamp": 0}])
def test_a_corrupt_layer_fails_the_rewrite_and_leaves_no_blob(samples, tmp_path, options):
    archive = tmp_path / "corrupt.tar"
    shutil.copy(samples / "docker-archive" / "app-v1.tar", archive)
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        member = outer.getmember(manifest[0]["Layers"][-1])
    with open(archive, "r+b") as f:  # one byte of file content inside the top layer's tar
        f.seek(member.offset_data + 1024 + 10)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    work = tmp_path / "work"
    with pytest.raises(layerlab.errors.DigestMismatchError, match="digest mismatch"):
        layerlab.rewrite(f"docker-archive:{archive}", workdir=str(work), **options)
    assert [p.name for p in (work / "blobs").iterdir()] == []


def test_rewrite_from_a_registry_to_the_registry_sends_only_new_layers(samples, tmp_path):
    from layerlab.registry import LocalRegistry

    with LocalRegistry(tmp_path / "registry") as registry:
        layerlab.push(f"oci:{samples}/oci/family:app24", f"{registry.host}/app:24", progress=False,
                      cache=False)
        source = layerlab.open_image(f"docker://{registry.host}/app:24", plain_http=True)
        with layerlab.rewrite(source, target=14) as result:
            pushed = result.copy(f"docker://{registry.host}/app:14", plain_http=True, cache=False)
        new = {str(c.layer.digest) for c in result.changes if c.action == "merged"}
        outcomes = {layer["digest"]: layer["outcome"] for layer in pushed.to_json()["layers"]}
        assert {d for d, o in outcomes.items() if o == "pushed"} == new and len(new) == 8
        assert {o for d, o in outcomes.items() if d not in new} == {"exists"}
        pulled = layerlab.open_image(f"docker://{registry.host}/app:14", plain_http=True)
        assert pulled.digest == result.image.digest
        assert _files_diff(source, pulled) == NO_CHANGE
