"""Shared layers across sample images: exact tables and totals."""

from __future__ import annotations

import json

import pytest

from layerlab.analysis import shared_layers
from layerlab.sources import open_image


def archive(samples, name):
    return open_image(str(samples / "docker-archive" / f"{name}.tar"))


def test_base_and_app_versions_exact(samples):
    images = [archive(samples, n) for n in ("base", "app-v1", "app-v2")]
    result = shared_layers(images)
    assert [(i.label, i.layers, i.size, i.shared_bytes, i.unique_bytes) for i in result.images] == [
        ("base:1", 2, 172032, 172032, 0),
        ("app:v1", 4, 245760, 226304, 19456),
        ("app:v2", 5, 263680, 226304, 37376)]
    digests = [str(layer.digest) for layer in images[2].layers]
    v1 = [str(layer.digest) for layer in images[1].layers]
    assert [(u.digest, u.size, u.images) for u in result.layers] == [
        (v1[0], 109568, ("base:1", "app:v1", "app:v2")),
        (v1[1], 62464, ("base:1", "app:v1", "app:v2")),
        (v1[2], 54272, ("app:v1", "app:v2")),
        (v1[3], 19456, ("app:v1",)),
        (digests[3], 25088, ("app:v2",)),
        (digests[4], 12288, ("app:v2",))]
    assert result.naive_bytes == 172032 + 245760 + 263680
    assert result.deduplicated_bytes == 109568 + 62464 + 54272 + 19456 + 25088 + 12288
    assert result.saved_bytes == 398336
    assert [(s.label, s.sent_bytes, s.skipped_bytes, len(s.sent)) for s in result.push_sequence] == [
        ("base:1", 172032, 0, 2), ("app:v1", 73728, 172032, 2), ("app:v2", 37376, 226304, 2)]
    assert [u.digest for u in result.push_after("app:v2", "app:v1")] == digests[3:]
    assert result.recompressed == ()


def test_frame_is_keyed_by_digest_and_diff_id(samples):
    result = shared_layers([archive(samples, "app-v1"), archive(samples, "app-v2")])
    frame = result.to_frame()
    assert frame.index.names == ["digest", "diff_id"]
    assert list(frame.columns) == ["size", "uncompressed_size", "images", "app:v1", "app:v2"]
    assert frame["images"].tolist() == [2, 2, 2, 1, 1, 1]
    assert frame["app:v1"].tolist() == [True, True, True, True, False, False]
    assert result.images_frame().loc["app:v2", "unique_bytes"] == 37376


def test_same_content_other_compression(samples):
    result = shared_layers([archive(samples, "app-v1"),
                            open_image(f"oci:{samples}/oci/family:app-v1")])
    assert [(i.shared_bytes, i.unique_bytes) for i in result.images] == [
        (0, 245760), (0, result.images[1].size)]
    assert len(result.recompressed) == 4  # four diff_ids, each under two digests
    assert result.deduplicated_bytes == result.naive_bytes


def test_app24_and_app14_share_the_base(samples):
    a24, a14 = archive(samples, "app24"), archive(samples, "app14")
    result = shared_layers([a24, a14])
    both = [u.digest for u in result.layers if len(u.images) == 2]
    # the base, and the two RUN layers the 14-layer build did not merge (nginx, tzdata)
    assert both == [str(a24.layers[i].digest) for i in (0, 1, 8, 17)]
    assert both == [str(a14.layers[i].digest) for i in (0, 1, 5, 10)]
    assert len(result.layers) == 24 + 14 - 4
    assert result.push_sequence[1].skipped_bytes == sum(a24.layers[i].size for i in (0, 1, 8, 17))
    assert result.push_sequence[1].skipped_bytes == 210944


def test_duplicate_labels_and_presentation(samples):
    image = archive(samples, "base")
    result = shared_layers([image, image])
    assert [i.label for i in result.images] == ["base:1", "base:1#2"]
    assert result.push_sequence[1].sent == ()
    data = json.loads(json.dumps(result.to_json()))
    assert data["totals"] == {"naive_bytes": 344064, "deduplicated_bytes": 172032,
                              "saved_bytes": 172032}
    assert "base:1#2" in result._repr_html_()
    fig = result.plot()
    assert [t.type for t in fig.data] == ["heatmap", "bar", "bar"]
    assert repr(result) == "<SharedLayers 2 images, 2 layers, naive 344064, deduplicated 172032>"
    with pytest.raises(ValueError):
        shared_layers([])
