"""``.dockerignore`` reading and matching (Docker's rules) and the build-context report."""

from __future__ import annotations

import json
import os

import pytest

from layerlab.analysis import context_report
from layerlab.analysis.dockerignore import DockerIgnore, clean_path, read_patterns
from layerlab.errors import LayerlabError


def test_read_patterns_like_docker():
    text = ("\ufeff# comment\n  #not a comment  \n\n  /build/  \n./docs\n!  ./docs/keep.md \n"
            "a//b/../c\n*.log\n")
    assert read_patterns(text) == ["#not a comment", "build", "docs", "!docs/keep.md", "a/c",
                                   "*.log"]


@pytest.mark.parametrize("path,expected", [
    ("", "."), ("./a/", "a"), ("a//b/./c/..", "a/b"), ("/../x", "/x"), ("../x", "../x"),
    ("/", "/")])
def test_clean_path(path, expected):
    assert clean_path(path) == expected


MATCHES = [
    # (patterns, path, excluded)
    (["node_modules"], "node_modules", True),
    (["node_modules"], "node_modules/x/y.js", True),
    (["node_modules"], "src/node_modules", False),
    (["*.log"], "a.log", True),
    (["*.log"], "logs/a.log", False),          # '*' does not cross '/'
    (["**/*.log"], "logs/deep/a.log", True),
    (["**/*.log"], "a.log", True),              # '**' matches no directory too
    (["*.log", "!keep.log"], "keep.log", False),
    (["*.log", "!keep.log", "keep*"], "keep.log", True),  # last match wins
    (["dir", "!dir/keep"], "dir/keep", False),
    (["dir", "!dir/keep"], "dir/other", True),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a/**/b"], "a/x/y/bb", False),
    (["a**"], "abc", True),                      # prefix match
    (["a/**"], "a/b/c", True),
    (["a/**"], "ab", False),
    (["**.txt"], "d/x.txt", True),               # suffix match
    (["**/foo"], "foo", True),
    (["**/foo"], "xfoo", False),
    (["**"], "anything/at/all", True),
    (["[a-c]at"], "bat", True),
    (["[a-c]at"], "eat", False),
    (["[^a-c]at"], "eat", True),
    (["?at"], "cat", True),
    (["?at"], "c/at", False),
    (["\\*star"], "*star", True),
    (["\\*star"], "xstar", False),
    (["a.b"], "axb", False),                     # '.' is literal
    (["(x)|y"], "(x)|y", True),
    (["docs/*.md", "!docs/keep.md"], "docs/keep.md", False),
    (["*/temp*"], "somedir/temporary.txt", True),
    (["*/*/temp*"], "somedir/subdir/temporary.txt", True),
    (["temp?"], "temp1", True),
]


@pytest.mark.parametrize("patterns,path,excluded", MATCHES)
def test_matching(patterns, path, excluded):
    assert DockerIgnore(patterns).excluded(path) is excluded


def test_invalid_patterns():
    with pytest.raises(LayerlabError, match='"!"'):
        DockerIgnore(["!"])
    with pytest.raises(LayerlabError, match="invalid .dockerignore pattern"):
        DockerIgnore(["[abc"])


def _tree(root, files: dict[str, int]) -> None:
    for path, size in files.items():
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(b"x" * size)


def test_context_report(tmp_path):
    _tree(tmp_path, {"Dockerfile": 20, "src/main.py": 300, "src/util.py": 200,
                     "node_modules/a/index.js": 5000, "node_modules/b/index.js": 4000,
                     "build.log": 700, "logs/deep.log": 50, "keep.log": 5, "docs/a.md": 90,
                     "docs/keep.md": 10})
    os.symlink("src/main.py", tmp_path / "link")
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / ".dockerignore").write_text(
        "node_modules\n*.log\n!keep.log\ndocs\n!docs/keep.md\nDockerfile\n.dockerignore\n")
    report = context_report(tmp_path)
    ignore_size = len((tmp_path / ".dockerignore").read_bytes())
    all_size = 20 + 300 + 200 + 5000 + 4000 + 700 + 50 + 5 + 90 + 10 + ignore_size
    assert (report.total_size, report.total_files) == (all_size, 12)
    # sent: Dockerfile and .dockerignore (always), src/*, logs/deep.log (nested: '*.log'
    # is root-only), keep.log, docs/keep.md, link
    assert (report.sent_files, report.sent_size) == (
        8, 20 + ignore_size + 300 + 200 + 50 + 5 + 10)
    assert [(i.path, i.size, i.files, i.is_dir) for i in report.dropped] == [
        ("node_modules", 9000, 2, True), ("build.log", 700, 1, False), ("docs", 90, 1, True)]
    assert [(i.path, i.size, i.files) for i in report.largest_sent][:2] == [
        ("src", 500, 2), (".dockerignore", ignore_size, 1)]
    assert report.largest_sent_files[0].path == "src/main.py"
    data = json.loads(json.dumps(report.to_json()))
    # 7 directories and 12 files of 512-byte headers; data padded to 512; the end blocks
    all_tar = 19 * 512 + 512 * 8 + 5120 + 4096 + 1024 + 1024
    assert data["without_dockerignore"] == {"size": all_size, "files": 12, "tar_size": all_tar}
    assert data["dropped_size"] == 9000 + 700 + 90
    assert report.to_frame()["status"].tolist()[:3] == ["dropped"] * 3
    assert "node_modules/" in report._repr_html_()


def test_context_without_ignore_file_and_dockerfile_specific_one(tmp_path):
    _tree(tmp_path, {"Dockerfile": 10, "dev.Dockerfile": 10, "big.bin": 1000})
    plain = context_report(tmp_path)
    assert plain.dockerignore is None and plain.sent_size == plain.total_size == 1020
    (tmp_path / "dev.Dockerfile.dockerignore").write_text("*.bin\n")
    dev = context_report(tmp_path, dockerfile="dev.Dockerfile")
    assert dev.dockerignore.endswith("dev.Dockerfile.dockerignore")
    assert dev.dropped_size == 1000
    with pytest.raises(LayerlabError, match="not a directory"):
        context_report(tmp_path / "nope")


def test_tar_size_counts_the_stream_the_legacy_builder_sends(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "empty").write_bytes(b"")
    (tmp_path / "d" / "data").write_bytes(b"x" * 513)
    os.link(tmp_path / "d" / "data", tmp_path / "d" / "hard")
    os.symlink("data", tmp_path / "d" / "link")
    long_name = "n" * 120
    (tmp_path / long_name).write_bytes(b"y")
    (tmp_path / "skip.log").write_bytes(b"z" * 5000)
    (tmp_path / ".dockerignore").write_text("*.log\n")
    report = context_report(tmp_path)
    headers = 512 * 7                   # d/, 4 entries in d/, the long name, .dockerignore
    data = 1024 + 512 + 512              # data padded (its hard link adds none), y, ignore file
    pax = 1024                           # the 120-byte name's PAX record
    assert report.sent_tar_size == headers + data + pax + 1024
    assert report.total_tar_size == report.sent_tar_size + 512 + 5120
