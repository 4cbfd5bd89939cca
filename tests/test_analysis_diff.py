"""Image diffs: exact layer and config tables for the samples, and file-level diffs
checked against an independent computation (both images extracted to directories with
whiteouts applied, then compared file by file)."""

from __future__ import annotations

import dataclasses
import filecmp
import json
from pathlib import Path

import pytest

from analysis_images import extract_archive_image, image, tree_listing, write_archive
from layerlab.analysis import diff
from layerlab.errors import CorruptArchiveError
from layerlab.sources import open_image
from layerlab.samples.imagewriter import write_docker_archive

PAIRS = [("app-v1", "app-v2"), ("app-v2", "app-v1"), ("base", "wasted"), ("wasted", "base"),
         ("app24", "app14"), ("app14", "wasted"), ("base", "app24")]


def archive(samples: Path, name: str):
    return open_image(str(samples / "docker-archive" / f"{name}.tar"))


def independent_diff(root_a: Path, root_b: Path) -> dict[str, list]:
    """added/removed/modified paths of two extracted trees, with filecmp for contents."""
    a, b = tree_listing(root_a), tree_listing(root_b)
    modified = []
    for path in sorted(a.keys() & b.keys()):
        (ka, _, ma, ta, _), (kb, _, mb, tb, _) = a[path], b[path]
        changes = []
        if ka != kb:
            changes.append("type")
        elif ka == "file" and not filecmp.cmp(root_a / path, root_b / path, shallow=False):
            changes.append("content")
        if ka == kb == "file" and ma != mb:
            changes.append("mode")
        if ta != tb:
            changes.append("link")
        if changes:
            modified.append((path, changes))
    return {"added": sorted(b.keys() - a.keys()), "removed": sorted(a.keys() - b.keys()),
            "modified": modified}


@pytest.mark.parametrize("a,b", PAIRS)
def test_file_diff_matches_extracted_trees(samples, tmp_path, a, b):
    root_a = extract_archive_image(samples / "docker-archive" / f"{a}.tar", tmp_path / "a")
    root_b = extract_archive_image(samples / "docker-archive" / f"{b}.tar", tmp_path / "b")
    expected = independent_diff(root_a, root_b)
    files = diff(archive(samples, a), archive(samples, b), files=True).files
    # directory modes are not compared by the extractor (it widens them), hard links
    # are files there: compare kinds of change it can see
    got = {"added": [p.path for p in files.added], "removed": [p.path for p in files.removed],
           "modified": [(c.path, [x for x in c.changes if x in ("type", "content", "link")
                                  or (x == "mode" and c.type_a == c.type_b == "file")])
                        for c in files.modified]}
    got["modified"] = [m for m in got["modified"] if m[1]]
    assert got == expected
    assert not any("mtime" in c.changes for c in files.modified)  # same mtimes everywhere


@pytest.mark.parametrize("a,b", [("app-v1", "app-v2"), ("base", "wasted"), ("app24", "app14")])
def test_oci_layouts_give_the_same_file_diff(samples, a, b):
    from_archives = diff(archive(samples, a), archive(samples, b), files=True)
    from_layouts = diff(open_image(f"oci:{samples}/oci/family:{a}"),
                        open_image(f"oci:{samples}/oci/family:{b}"), files=True)
    assert from_layouts.files.to_json() == from_archives.files.to_json()
    assert from_layouts.layers.to_json()["common"] != []  # sizes differ (gzip), ids do not
    assert [r.diff_id for r in from_layouts.layers.added] == \
        [r.diff_id for r in from_archives.layers.added]


def test_app_v1_to_v2_exact(samples):
    a, b = archive(samples, "app-v1"), archive(samples, "app-v2")
    result = diff(a, b, files=True)
    layers = result.layers
    assert [(r.index, r.size, r.in_other) for r in layers.common] == \
        [(0, 109568, 0), (1, 62464, 1), (2, 54272, 2)]
    assert [(r.index, r.digest, r.size, r.in_other) for r in layers.removed] == \
        [(3, str(a.layers[3].digest), 19456, None)]
    assert [(r.index, r.digest, r.size, r.in_other) for r in layers.added] == \
        [(3, str(b.layers[3].digest), 25088, None), (4, str(b.layers[4].digest), 12288, None)]
    assert (layers.size_a, layers.size_b, layers.size_delta) == (245760, 263680, 17920)
    assert layers.recompressed == ()
    config = result.config.to_json()
    assert config["changed"] == {
        "created": {"a": "2024-01-02T00:11:00Z", "b": "2024-01-03T00:13:00Z"},
        "cmd": {"a": ["python3", "/app/main.py"], "b": ["python3", "/app/main.py", "--serve"]}}
    assert config["env"] == {"added": {}, "removed": {},
                             "changed": {"APP_VERSION": {"a": "1.0", "b": "2.0"}}}
    assert config["labels"] == {"added": {"org.opencontainers.image.version": "2.0"},
                                "removed": {}, "changed": {}}
    assert [(h["a"] is None, h["b"] is None) for h in config["history"] if not h["same"]] == \
        [(False, False), (False, False), (True, False), (False, False), (True, False)]
    files = result.files.to_json()
    assert [(p["path"], p["type"], p["size"], p["layer"]) for p in files["added"]] == [
        ("app/__pycache__", "dir", 0, 4),
        ("app/__pycache__/api.cpython-311.pyc", "file", 4000, 4),
        ("app/__pycache__/main.cpython-311.pyc", "file", 5000, 4),
        ("app/api.py", "file", 3500, 3)]
    assert files["removed"] == []
    assert files["modified"] == [{"path": "app/main.py", "changes": ["content"],
                                  "type_a": "file", "type_b": "file", "size_a": 5500,
                                  "size_b": 7000, "delta": 1500, "layer_a": 3, "layer_b": 3}]
    assert files["directories"] == [
        {"path": "app", "size_a": 14030, "size_b": 28030, "delta": 14000, "added": 4,
         "removed": 0, "modified": 1},
        {"path": "app/__pycache__", "size_a": 0, "size_b": 9000, "delta": 9000, "added": 2,
         "removed": 0, "modified": 0}]
    assert (files["paths_a"], files["paths_b"], files["size_delta"]) == (51, 55, 14000)
    assert files["common_layers_skipped"] == 3
    # only same-size files written by different layers were compared
    assert (files["compared_files"], files["compared_bytes"]) == (3, 8530)
    assert not result.identical
    assert result.summary() == ("3 common layers, 1 removed, 2 added (+17.9 kB); 4 config "
                                "changes; 4 added, 0 removed, 1 modified paths (+14.0 kB)")


def test_same_image_other_compression_is_identical(samples):
    result = diff(archive(samples, "app-v1"), open_image(f"oci:{samples}/oci/family:app-v1"),
                  files=True)
    assert result.identical
    assert len(result.layers.common) == 4 and len(result.layers.recompressed) == 4
    assert result.files.compared_files == 0


def test_wasted_against_base_sees_whiteouts(samples):
    files = diff(archive(samples, "base"), archive(samples, "wasted"), files=True).files
    added = [p.path for p in files.added]
    assert "opt/data/tmp.log" not in added and "opt/cache/a.dat" not in added
    assert [p for p in added if p.split("/")[0] == "opt"] == [
        "opt", "opt/cache", "opt/cache/d.dat", "opt/conf", "opt/conf/app.conf", "opt/data",
        "opt/data/big.bin", "opt/keep.txt"]


def test_common_layers_are_read_once(samples):
    a, b = archive(samples, "app-v1"), archive(samples, "app-v2")
    opened: dict[str, int] = {}

    def counting(img):
        layers = []
        for layer in img.layers:
            def opener(layer=layer):
                opened[str(layer.digest)] = opened.get(str(layer.digest), 0) + 1
                return layer.opener()
            layers.append(dataclasses.replace(layer, opener=opener))
        return dataclasses.replace(img, layers=tuple(layers))

    diff(counting(a), counting(b), files=True)
    for layer in a.layers[:3]:  # the common base: one header scan, no content reads
        assert opened[str(layer.digest)] == 1


def _pair(tmp_path, layer_a, layer_b, **kw):
    write_archive(tmp_path / "a.tar", [[("file", "base", b"x")], layer_a], **kw)
    write_archive(tmp_path / "b.tar", [[("file", "base", b"x")], layer_b], **kw)
    return open_image(str(tmp_path / "a.tar")), open_image(str(tmp_path / "b.tar"))


def test_mtime_only_change(tmp_path):
    a, b = _pair(tmp_path, [("file", "f", b"same", 0o644, 1000)],
                 [("file", "f", b"same", 0o644, 2000)])
    result = diff(a, b, files=True)
    assert [(c.path, c.changes) for c in result.files.modified] == [("f", ("mtime",))]
    assert result.files.compared_files == 1
    ignored = diff(a, b, files=True, ignore_mtime=True)
    assert ignored.files.identical


def test_each_kind_of_change(tmp_path):
    a, b = _pair(tmp_path,
                 [("file", "content", b"aaaa"), ("file", "mode", b"m", 0o644),
                  ("symlink", "link", "t1"), ("file", "type", b"t"), ("file", "gone", b"g"),
                  ("file", "grow", b"1")],
                 [("file", "content", b"bbbb"), ("file", "mode", b"m", 0o600),
                  ("symlink", "link", "t2"), ("symlink", "type", "x"), ("file", "new", b"n"),
                  ("file", "grow", b"12")])
    files = diff(a, b, files=True).files
    assert [(c.path, c.changes) for c in files.modified] == [
        ("content", ("content",)), ("grow", ("content",)), ("link", ("link",)),
        ("mode", ("mode",)), ("type", ("type", "mode"))]
    assert [p.path for p in files.added] == ["new"]
    assert [p.path for p in files.removed] == ["gone"]
    assert files.compared_files == 2  # "content" and "mode": same sizes, other layers


def test_different_platforms_warn_but_diff(samples):
    amd = open_image(f"oci:{samples}/oci/multi:latest", platform="linux/amd64")
    arm = open_image(f"oci:{samples}/oci/multi:latest", platform="linux/arm64/v8")
    result = diff(amd, arm, files=True)
    assert result.warnings[0] == "different platforms: linux/amd64 vs linux/arm64/v8"
    assert result.config.changed["platform"] == ("linux/amd64", "linux/arm64/v8")
    assert [r.index for r in result.layers.common] == []
    assert [c.path for c in result.files.modified] == ["bin/hello", "etc/os-release"]


def test_corrupt_layer_is_an_error(tmp_path):
    img = image([[("file", "a", b"a" * 3000)], [("file", "b", b"b")]])
    data = bytearray(img.layers[1].data)
    data[10] ^= 0xFF  # a flipped byte in the first header: its checksum fails
    broken = dataclasses.replace(img.layers[1], data=bytes(data))
    write_docker_archive(tmp_path / "bad.tar", [dataclasses.replace(img, layers=(img.layers[0], broken))])
    write_docker_archive(tmp_path / "good.tar", [image([[("file", "a", b"a" * 3000)]])])
    with pytest.raises(CorruptArchiveError, match="bad header checksum"):
        diff(open_image(str(tmp_path / "good.tar")), open_image(str(tmp_path / "bad.tar")),
             files=True)
    # without --files no layer is read: the layers and config still diff
    assert len(diff(open_image(str(tmp_path / "good.tar")),
                    open_image(str(tmp_path / "bad.tar"))).layers.common) == 1


def test_json_is_serialisable_and_frames(samples):
    result = diff(archive(samples, "app24"), archive(samples, "app14"), files=True)
    data = json.loads(json.dumps(result.to_json()))
    assert set(data) == {"a", "b", "identical", "summary", "layers", "config", "files", "warnings"}
    assert set(data["layers"]) >= {"common", "added", "removed"}
    assert set(data["files"]) >= {"added", "removed", "modified"}
    assert all(not p["path"].startswith(("/", "./"))
               for key in ("added", "removed", "modified") for p in data["files"][key])
    frame = result.to_frame()
    assert list(frame["status"]).count("common") == 2
    assert len(result.files.to_frame()) == len(data["files"]["added"]) + \
        len(data["files"]["removed"]) + len(data["files"]["modified"])
    assert "app24" in result._repr_html_() and result.plot().data


def test_zstd_and_oci_archive_sources(samples):
    plain = archive(samples, "app-v1")
    zstd = open_image(f"oci:{samples}/oci/zstd:app-v1")
    assert diff(zstd, plain, files=True).identical
    packed = open_image(f"oci-archive:{samples}/oci-archive/app-v1.tar")
    result = diff(packed, archive(samples, "app-v2"), files=True)
    assert result.files.summary() == "4 added, 0 removed, 1 modified paths (+14.0 kB)"


def test_public_api():
    import layerlab
    from layerlab import analysis

    assert layerlab.diff is analysis.diff
    assert layerlab.efficiency is analysis.efficiency
    assert layerlab.shared_layers is analysis.shared_layers
    assert layerlab.layer_advice is analysis.layer_advice
    assert layerlab.context_report is analysis.context_report
