"""``layerlab efficiency``: text and JSON (dive's figures under dive's names)."""

from __future__ import annotations

import json

from layerlab.cli import main


def test_efficiency_json(samples, capsys):
    assert main(["efficiency", str(samples / "docker-archive" / "wasted.tar"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["efficiency"], data["wasted_bytes"], data["user_wasted_percent"]) == (
        0.741032319166568, 104000, 0.5805774512649889)
    assert data["corrected_wasted_bytes"] == 70000 and data["unreachable_bytes"] == 88000
    assert [p["path"] for p in data["inefficient_paths"]] == [
        "opt/data/big.bin", "opt/data/tmp.log", "opt/conf/app.conf"]


def test_efficiency_text(samples, capsys):
    assert main(["efficiency", f"oci:{samples}/oci/family:wasted", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "efficiency:             74.1032 %" in out
    assert "wasted bytes (dive):    104000 (104.0 kB)" in out
    assert "user wasted percent:    58.0577 %" in out
    assert "/opt/data/big.bin" in out and "L2 48.0 kB overwritten by L3; L3 32.0 kB kept" in out
    assert "... 4 more paths" in out


def test_efficiency_of_corrupt_archive(tmp_path, capsys):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"\0" * 100)
    assert main(["efficiency", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("layerlab: error: ")
