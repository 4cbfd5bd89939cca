"""Where the sample images come from: ``layerlab.samples_dir()`` and ``ensure_samples``."""

from __future__ import annotations

import subprocess
import sys

from conftest import SAMPLES

import layerlab
from layerlab.samples import ensure_samples, is_complete


def test_a_checkout_uses_its_committed_samples(monkeypatch):
    monkeypatch.delenv("LAYERLAB_SAMPLES", raising=False)
    assert layerlab.samples_dir() == SAMPLES


def test_an_explicit_directory_is_built_once_with_the_committed_bytes(tmp_path, monkeypatch):
    target = tmp_path / "samples"
    monkeypatch.setenv("LAYERLAB_SAMPLES", str(target))
    said: list[str] = []
    assert layerlab.samples_dir(say=said.append) == target
    assert said == [f"building the sample images in {target} ..."]
    for name in ("expected.json", "README.md", "docker-archive/app24.tar", "oci/family/index.json"):
        assert (target / name).read_bytes() == (SAMPLES / name).read_bytes()
    stamp = (target / "expected.json").stat().st_mtime_ns
    assert layerlab.samples_dir(say=said.append) == target
    assert len(said) == 1 and (target / "expected.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == [".samples.lock", "samples"]


def test_an_incomplete_set_is_replaced_whole(tmp_path):
    target = tmp_path / "s"
    (target / "docker-archive").mkdir(parents=True)
    (target / "docker-archive" / "app24.tar").write_bytes(b"cut short")
    (target / "docker-archive" / "stray.tar").write_bytes(b"junk")
    assert not is_complete(target)
    ensure_samples(target, say=lambda text: None)
    assert is_complete(target)
    assert (target / "docker-archive" / "app24.tar").read_bytes() == (
        SAMPLES / "docker-archive" / "app24.tar").read_bytes()
    assert not (target / "docker-archive" / "stray.tar").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".s-")] == []


def test_python_m_layerlab_samples_needs_out(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "layerlab.samples"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "the following arguments are required: --out" in proc.stderr
