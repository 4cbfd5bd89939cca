"""History and layer-count advice: runs of RUN layers, merged sizes (checked against
the real 14-layer build of the same steps), tiny layers, deleted files."""

from __future__ import annotations

import json

import pytest

from analysis_images import write_archive
from layerlab.analysis import layer_advice
from layerlab.analysis.history import instruction_of
from layerlab.sources import open_image

# the sample's 22 RUN steps grouped as the 14-layer Dockerfile groups them
MERGE_PLAN = [2, 2, 2, 1, 2, 2, 2, 2, 1, 2, 2, 2]


def plan_groups() -> list[list[int]]:
    groups, start = [], 2
    for n in MERGE_PLAN:
        groups.append(list(range(start, start + n)))
        start += n
    return groups


def archive(samples, name):
    return open_image(str(samples / "docker-archive" / f"{name}.tar"))


@pytest.mark.parametrize("text,expected", [
    ("/bin/sh -c #(nop)  ENV LANG=C.UTF-8", "ENV"),
    ("/bin/sh -c #(nop) COPY dir:abc in /app ", "COPY"),
    ("/bin/sh -c apt-get update", "RUN"),
    ("|2 A=1 B=2 /bin/sh -c make", "RUN"),
    ("RUN /bin/sh -c make # buildkit", "RUN"),
    ("COPY . /app # buildkit", "COPY"),
    ("WORKDIR /srv", "WORKDIR"),
    ("", ""),
    ("some tool did this", ""),
])
def test_instruction_of(text, expected):
    assert instruction_of(text) == expected


def test_app24_advice(samples):
    advice = layer_advice(archive(samples, "app24"))
    assert len(advice.layers) == 24
    assert [s.position for s in advice.empty_steps] == [1, 3, 4, 27, 28, 29, 30]
    assert [(layer.index, layer.instruction) for layer in advice.layers[:3]] == [
        (0, "ADD"), (1, "RUN"), (2, "RUN")]
    assert [(r.start, r.end, r.layers) for r in advice.runs] == [(2, 23, 22)]
    run = advice.runs[0]
    assert (run.size, run.uncompressed_size) == (403968, 403968)
    # every apt step rewrote var/lib/dpkg/status: merged, one copy is left
    assert run.merged_uncompressed_size == run.merged_size == 197632
    assert advice.tiny_layers == tuple(range(24))
    assert advice.deleted_files == ()
    merged = advice.merged_layers()
    assert len(merged) == 3 and merged[2]["uncompressed_size"] == 197632


def test_merged_sizes_equal_the_real_14_layer_build(samples):
    advice = layer_advice(archive(samples, "app24"))
    app14 = archive(samples, "app14")
    merged = advice.merged_layers(groups=plan_groups())
    assert [(s["size"], s["uncompressed_size"], s["compressibility"], s["created_by"])
            for s in merged] == \
        [(layer.size, layer.uncompressed_size, None, layer.created_by) for layer in app14.layers]


def test_merged_sizes_from_gzip_layout(samples):
    advice = layer_advice(open_image(f"oci:{samples}/oci/family:app24"))
    app14 = archive(samples, "app14")
    merged = advice.merged_layers(groups=plan_groups())
    assert [s["uncompressed_size"] for s in merged] == [layer.uncompressed_size for layer in app14.layers]
    for spec, layer in zip(merged, advice.layers[:2]):  # unmerged layers keep their sizes
        assert spec["size"] == layer.size
        assert spec["compressibility"] == pytest.approx(layer.uncompressed_size / layer.size)
    # merged layers: estimated with the members' ratio
    members = advice.layers[2:4]
    ratio = sum(m.uncompressed_size for m in members) / sum(m.size for m in members)
    assert merged[2]["compressibility"] == pytest.approx(ratio)
    assert merged[2]["size"] == round(merged[2]["uncompressed_size"] / ratio)


def test_target_layer_count(samples):
    advice = layer_advice(archive(samples, "app24"))
    merged = advice.merged_layers(target=14)
    assert len(merged) == 14
    assert merged[:2] == advice.merged_layers(groups=[])[:2]
    assert sum(s["uncompressed_size"] for s in merged) < sum(
        layer.uncompressed_size for layer in advice.layers)
    assert len(advice.merged_layers(target=1)) == 3  # runs cannot cross the base layers
    with pytest.raises(ValueError):
        advice.merged_layers(groups=[[2, 4]])


def test_wasted_advice(samples):
    advice = layer_advice(archive(samples, "wasted"))
    assert [(r.start, r.end) for r in advice.runs] == [(3, 6)]
    assert [(d.path, d.size, d.added_in, d.removed_in, d.fate) for d in advice.deleted_files] == [
        ("opt/data/tmp.log", 20000, 2, 4, "deleted"),
        ("opt/cache/a.dat", 6000, 2, 5, "hidden"),
        ("opt/cache/b.dat", 6000, 2, 5, "hidden"),
        ("opt/cache/c.dat", 6000, 2, 5, "hidden")]
    merged = advice.merged_layers()
    assert len(merged) == 4
    # the merged layer keeps the whiteout for tmp.log and the opaque marker for cache
    assert merged[3]["uncompressed_size"] == advice.runs[0].merged_uncompressed_size == 44032


def test_files_added_and_deleted_inside_a_run_vanish(tmp_path):
    layers = [[("file", "base", b"b" * 100)],
              [("file", "tmp/big", b"x" * 5000)],
              [("whiteout", "tmp/big"), ("file", "out", b"o" * 10)]]
    archive_path = write_archive(tmp_path / "a.tar", layers)
    advice = layer_advice(open_image(str(archive_path)))
    assert [(r.start, r.end) for r in advice.runs] == [(0, 2)]
    merged = advice.merged_layers()
    # one tar: base and out (header + one data block each), end blocks; tmp/big is gone
    # and its whiteout is not needed (nothing below the run has it)
    assert [s["uncompressed_size"] for s in merged] == [512 + 512 + 512 + 512 + 1024]
    assert merged[0]["created_by"] == "/bin/sh -c step 0 && step 1 && step 2"


def test_no_files_mode_and_json(samples):
    advice = layer_advice(archive(samples, "app-v2"), files=False)
    assert advice.deleted_files == () and advice.layers[0].entries is None
    data = json.loads(json.dumps(layer_advice(archive(samples, "app-v2")).to_json()))
    assert set(data) == {"reference", "name", "layers", "history", "empty_steps", "runs",
                         "tiny_threshold", "tiny_layers", "deleted_files", "merged"}
    assert data["merged"]["layer_count"] == 5
    assert set(data["merged"]["layers"][0]) == {"size", "uncompressed_size", "compressibility",
                                                "created_by"}
    frame = layer_advice(archive(samples, "app24")).to_frame()
    assert frame["run"].tolist() == [-1, -1] + [0] * 22


def test_presentation(samples):
    advice = layer_advice(archive(samples, "app24"))
    assert repr(advice) == ("<LayerAdvice app24:latest: 24 layers (7 empty steps), 1 mergeable "
                            "RUN runs -> 3 layers merged, 24 tiny layers, 0 files added then "
                            "deleted>")
    assert "run of 22" in advice.plot().to_json()
    assert "2-23" in advice._repr_html_()
