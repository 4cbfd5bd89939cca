"""``layerlab context``: text and JSON."""

from __future__ import annotations

import json

from layerlab.cli import main


def test_context_cli(tmp_path, capsys):
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.js").write_bytes(b"x" * 4000)
    (tmp_path / "app.py").write_bytes(b"y" * 100)
    (tmp_path / ".dockerignore").write_text("node_modules\n")
    assert main(["context", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["without", ".dockerignore", "4.1", "kB", "3"] in rows
    assert ["node_modules/", "4.0", "kB", "1"] in rows
    assert main(["context", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["with_dockerignore"] == {"size": 113, "files": 2, "tar_size": 3072}
    assert main(["context", str(tmp_path / "nope")]) == 2
