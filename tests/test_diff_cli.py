"""``layerlab diff``: exit status, text and JSON."""

from __future__ import annotations

import json

from analysis_images import write_archive
from layerlab.cli import main


def test_diff_text_and_exit_status(samples, capsys):
    a = str(samples / "docker-archive" / "app-v1.tar")
    b = str(samples / "docker-archive" / "app-v2.tar")
    assert main(["diff", a, b, "--files"]) == 1
    out = capsys.readouterr().out
    assert "removed  3" in out and "added    4" in out
    assert "M  app/main.py" in out and "+  app/api.py" in out
    assert "env APP_VERSION" in out
    assert out.rstrip().splitlines()[-1] == (
        "3 common layers, 1 removed, 2 added (+17.9 kB); 4 config changes; 4 added, "
        "0 removed, 1 modified paths (+14.0 kB)")


def test_diff_identical_across_compressions(samples, capsys):
    a = str(samples / "docker-archive" / "app-v1.tar")
    assert main(["diff", a, f"oci:{samples}/oci/family:app-v1", "--files", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["identical"] is True
    assert data["files"] == {**data["files"], "added": [], "removed": [], "modified": []}
    assert len(data["layers"]["recompressed"]) == 4


def test_diff_json_shape(samples, capsys):
    a = str(samples / "docker-archive" / "base.tar")
    b = str(samples / "docker-archive" / "wasted.tar")
    assert main(["diff", a, b, "--files", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert set(data["layers"]) >= {"common", "added", "removed"}
    assert set(data["files"]) >= {"added", "removed", "modified"}
    assert [layer["index"] for layer in data["layers"]["added"]] == [2, 3, 4, 5, 6]
    assert "opt/keep.txt" in [p["path"] for p in data["files"]["added"]]
    assert main(["diff", a, b, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["files"] is None


def test_diff_mtime_option(tmp_path, capsys):
    write_archive(tmp_path / "a.tar", [[("file", "f", b"same", 0o644, 1000)]])
    write_archive(tmp_path / "b.tar", [[("file", "f", b"same", 0o644, 2000)]])
    a, b = str(tmp_path / "a.tar"), str(tmp_path / "b.tar")
    assert main(["diff", a, b, "--files", "--ignore-mtime"]) == 1  # the layers differ
    out = capsys.readouterr().out
    assert "0 added, 0 removed, 0 modified paths" in out
    assert main(["diff", a, b, "--files"]) == 1
    assert "M  f" in capsys.readouterr().out


def test_diff_errors_exit_2(tmp_path, samples, capsys):
    assert main(["diff", str(tmp_path / "missing.tar"),
                 str(samples / "docker-archive" / "base.tar")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("layerlab: error: ") and len(err.strip().splitlines()) == 1
    # an index where an image is needed: a platform that is not there
    assert main(["diff", f"oci:{samples}/oci/multi:latest", f"oci:{samples}/oci/multi:latest",
                 "--platform", "linux/s390x"]) == 2
    assert "s390x" in capsys.readouterr().err


def test_diff_platform_warning(samples, capsys):
    ref = f"oci:{samples}/oci/multi:latest"
    assert main(["diff", ref, ref, "--platform", "linux/arm64/v8"]) == 0
    assert main(["diff", ref, str(samples / "docker-archive" / "base.tar")]) == 1
    assert capsys.readouterr().err == ""  # both amd64
    assert main(["diff", ref, str(samples / "docker-archive" / "base.tar"),
                 "--platform", "linux/arm64/v8"]) == 1
    assert capsys.readouterr().err == (
        "layerlab: warning: different platforms: linux/arm64/v8 vs linux/amd64\n")
