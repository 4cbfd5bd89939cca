"""``layerlab shared``: text and JSON."""

from __future__ import annotations

import json

from layerlab.cli import main


def test_shared_text(samples, capsys):
    refs = [str(samples / "docker-archive" / f"{n}.tar") for n in ("base", "app-v1", "app-v2")]
    assert main(["shared", *refs]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["1", "base:1", "2", "172.0", "kB", "172.0", "kB", "0", "B", "172.0", "kB"] in rows
    assert ["3", "app:v2", "5", "263.7", "kB", "226.3", "kB", "37.4", "kB", "37.4", "kB"] in rows
    assert out.rstrip().splitlines()[-1] == (
        "3 images, 6 distinct layers: 681.5 kB naive, 283.1 kB deduplicated (398.3 kB saved)")


def test_shared_json(samples, capsys):
    refs = [str(samples / "docker-archive" / "app-v1.tar"), f"oci:{samples}/oci/family:app-v1"]
    assert main(["shared", *refs, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"images", "layers", "totals", "push_sequence", "recompressed"}
    assert data["totals"]["saved_bytes"] == 0 and len(data["recompressed"]) == 4
    assert [i["label"] for i in data["images"]] == ["app:v1", "app-v1"]


def test_shared_needs_images(capsys):
    assert main(["shared"]) == 2
    assert "at least one image" in capsys.readouterr().err
