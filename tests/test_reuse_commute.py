"""The commute rule of the layer-order advice, case by case, on real layer tars; and it
refuses every pair that ``layerlab.rewrite``'s own check refuses."""

from __future__ import annotations

import pytest

from analysis_images import write_archive

from layerlab.analysis.commute import LayerPaths, conflict
from layerlab.sources import open_image

D755 = ("dir", "usr", 0o755)
CASES = [
    # (name, layer x, layer y, expected reason or None)
    ("disjoint files", [("file", "a", b"1")], [("file", "b", b"2")], None),
    ("identical parent directory", [D755, ("file", "usr/a", b"1")],
     [D755, ("file", "usr/b", b"2")], None),
    ("parent directory with another mode", [D755, ("file", "usr/a", b"1")],
     [("dir", "usr", 0o700), ("file", "usr/b", b"2")],
     "both layers have usr (directory with other metadata)"),
    ("same file", [("file", "etc/conf", b"1")], [("file", "etc/conf", b"1")],
     "both layers have etc/conf (entry)"),
    ("file where the other has a directory's entries",
     [("file", "opt", b"not a dir")], [("file", "opt/tool", b"x")],
     "opt is a file in one layer and a parent directory in the other"),
    ("symlink on the other's path", [("symlink", "lib", "usr/lib")],
     [("file", "lib/libc.so", b"x")],
     "lib is a symlink in one layer and a parent directory in the other"),
    ("whiteout of the other's file", [("whiteout", "app/README")],
     [("file", "app/README", b"x")], "one layer whites out app/README, which the other writes"),
    ("whiteout of the other's directory", [("whiteout", "cache")],
     [("file", "cache/a/b", b"x")], "one layer whites out cache, which the other writes"),
    ("whiteout of something else", [("whiteout", "tmp/old")], [("file", "tmp/new", b"x")],
     None),
    ("opaque directory over the other's files", [("opaque", "var/lib")],
     [("file", "var/lib/dpkg/status", b"x")],
     "one layer makes var/lib opaque, and the other writes it or below it"),
    ("opaque directory the other lists", [("opaque", "data")], [("dir", "data", 0o755)],
     "one layer makes data opaque, and the other writes it or below it"),
    ("both white out one path", [("whiteout", "x")], [("whiteout", "x")],
     "both layers have .wh.x (entry)"),
    ("hard link to the other's file", [("hardlink", "bin/b", "bin/a")],
     [("file", "bin/a", b"x")], "one layer hard-links to bin/a, which the other writes"),
]


def _layers(tmp_path, x, y):
    image = open_image(str(write_archive(tmp_path / "pair.tar", [x, y])))
    return [list(layer.entries()) for layer in image.layers]


@pytest.mark.parametrize("name,x,y,expected", CASES, ids=[c[0] for c in CASES])
def test_commute_rule(name, x, y, expected, tmp_path):
    ex, ey = _layers(tmp_path, x, y)
    px, py = LayerPaths.of(ex), LayerPaths.of(ey)
    assert conflict(px, py) == expected
    assert (conflict(py, px) is None) == (expected is None)  # symmetric
