"""``layerlab history``: text and JSON, the 24 -> 14 layer advice."""

from __future__ import annotations

import json

from layerlab.cli import main


def test_history_text(samples, capsys):
    assert main(["history", str(samples / "docker-archive" / "wasted.tar")]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["1:", "3-6", "4", "49.2", "kB", "44.0", "kB", "5.1", "kB"] in rows
    assert ["/opt/data/tmp.log", "20.0", "kB", "2", "4", "deleted"] in rows
    assert "merged: 7 -> 4 layers" in out


def test_history_json_with_target(samples, capsys):
    assert main(["history", str(samples / "docker-archive" / "app24.tar"), "--json",
                 "--target", "14"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["merged"]["layer_count"] == 14
    assert [r["layers"] for r in data["runs"]] == [22]
    assert len(data["layers"]) == 24 and data["empty_steps"] == [1, 3, 4, 27, 28, 29, 30]


def test_history_without_files(samples, capsys):
    assert main(["history", f"oci:{samples}/oci/family:app24", "--no-files", "--tiny", "20 kB",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["deleted_files"] == [] and data["layers"][0]["entries"] is None
    assert data["tiny_threshold"] == 20000
