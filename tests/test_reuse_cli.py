"""``layerlab reuse``: the table, the ``--json`` shape, ``--repo`` (a real local
registry), exit codes and one-line errors."""

from __future__ import annotations

import json

import pytest

from layerlab.samples.builds import write_series

import layerlab
from layerlab.cli import main


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    return [str(p) for p in write_series(tmp_path_factory.mktemp("cli"), blocked=True)]


def test_reuse_text(archives, capsys):
    assert main(["reuse", *archives]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["#", "BUILD", "DIGEST", "LAYERS", "DIVERGES", "AT", "REBUILT", "PUSHED",
                       "PULLED", "CACHE", "HITS", "PUSHED", "SO", "FAR", "PULLED", "SO", "FAR"]
    assert rows[2][:2] == ["0", "app:1"] and rows[2][3:5] == ["7", "-"]
    assert rows[3][:2] == ["1", "app:2"]
    assert rows[3][3:] == ["7", "1", "6", "5.6", "kB", "42.5", "kB", "14.3", "%", "68.6", "kB",
                           "105.5", "kB"]
    assert "5 builds: 88.6 kB pushed, 236.0 kB pulled, cache-hit rate 14.29 % after the first " \
           "build" in out
    assert "kept 5 above 1: one layer whites out app/README.md, which the other writes " \
           "(app:1)" in out
    assert "replayed: pushed 88.6 kB -> 88.6 kB, pulled 236.0 kB -> 111.1 kB, cache hits " \
           "14.3 % -> 57.1 %" in out
    assert out.rstrip().splitlines()[-1] == (
        "advice: moving layers 2, 3, 4 before layer 1 would have saved 31.2 kB per build over "
        "these 4 rebuilds (124.9 kB pulled, 0 B pushed in all)")


def test_reuse_json(archives, capsys):
    assert main(["reuse", *archives, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"builds", "totals", "advice"}
    assert set(data["builds"][0]) == {
        "position", "label", "reference", "digest", "created", "layers", "size",
        "first_diverging", "reused", "rebuilt", "pushed", "pushed_bytes", "pulled_bytes",
        "cache_hit_rate", "total_pushed_bytes", "total_pulled_bytes", "total_cache_hit_rate"}
    assert [b["first_diverging"] for b in data["builds"]] == [None, 1, 1, 1, 1]
    assert data["builds"][1]["rebuilt"] == [1, 2, 3, 4, 5, 6]
    assert data["builds"][4]["created"] == "2024-01-05T00:06:00Z"
    assert data["totals"] == {"builds": 5, "layers": 35, "reused": 4, "naive_bytes": 320000,
                              "pushed_bytes": 88576, "pulled_bytes": 236032,
                              "cache_hit_rate": 4 / 28}
    advice = data["advice"]
    assert advice["order"] == [0, 2, 3, 4, 1, 5, 6] and advice["advised"] is True
    assert set(advice["builds"][1]) == {"position", "label", "reordered", "before", "after"}
    assert set(advice["builds"][1]["after"]) == {"reused", "layers", "pushed_bytes",
                                                 "pulled_bytes", "cache_hit_rate"}
    assert advice["totals"]["before"]["pulled_bytes"] == 236032
    assert advice["totals"]["after"]["pulled_bytes"] == 111104


def test_reuse_no_advice(archives, capsys):
    assert main(["reuse", *archives[:2], "--json", "--no-advice"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["advice"] is None and len(data["builds"]) == 2
    assert main(["reuse", *archives[:2], "--no-advice"]) == 0
    assert "advice:" not in capsys.readouterr().out


def test_reuse_needs_two_builds(archives, capsys):
    assert main(["reuse", archives[0]]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "layerlab: error: build reuse needs at least two builds, got 1\n"


def test_reuse_unreadable_reference(archives, tmp_path, capsys):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive at all" * 40)
    assert main(["reuse", archives[0], str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("layerlab: error: ") and err.count("\n") == 1 and "junk.tar" in err
    assert main(["reuse", archives[0], str(tmp_path / "missing.tar")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.tar" in err


def test_reuse_repo_orders_tags_by_created(archives, local_registry, capsys):
    # tags whose alphabetical order is not the build order
    tags = ["zulu", "alpha", "mike"]
    for tag, archive in zip(tags, archives[:3]):
        layerlab.push(archive, f"{local_registry.host}/ci/app:{tag}", progress=False,
                      cache=False)
    assert main(["reuse", "--repo", f"{local_registry.host}/ci/app", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [b["reference"].rsplit(":", 1)[1] for b in data["builds"]] == tags
    assert [b["created"][:10] for b in data["builds"]] == ["2024-01-01", "2024-01-02",
                                                           "2024-01-03"]
    assert [b["first_diverging"] for b in data["builds"]] == [None, 1, 1]
    assert [b["pushed"] for b in data["builds"]] == [[0, 1, 2, 3, 4, 5, 6], [1], [1]]
    assert data["advice"]["order"] == [0, 2, 3, 4, 1, 5, 6]
