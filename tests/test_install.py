"""The installed package, not the checkout: build the wheel, install it into a fresh venv
outside the checkout, then run ``layerlab demo --json``, ``layerlab notebooks DIR`` and a
notebook (under nbval, outputs compared) with it.

The fresh venv gets layerlab from the wheel only; its third-party dependencies are those
of the test's own venv, put on its path by a ``.pth`` file, so the test needs no network
(``.ci/run`` also installs the wheel with pip into an empty venv, dependencies and all).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted(p.name for p in (ROOT / "layerlab" / "workshop").glob("*.ipynb"))


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}): {proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """``(fresh venv's python, environment for it, a work directory outside the checkout)``."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"  # build from a copy: the checkout gets no build/ or egg-info
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "layerlab", source / "layerlab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["LAYERLAB_CACHE_DIR"] = str(tmp / "cache")
    env.pop("LAYERLAB_SAMPLES", None)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", str(tmp / "dist"), str(source)], tmp, env)
    (wheel,) = (tmp / "dist").glob("layerlab-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheel)], tmp, env)
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                tmp, env).stdout.strip()
    Path(site, "outer_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    work = tmp / "work"
    work.mkdir()
    return python, env, work


def test_the_wheel_is_what_runs(installed):
    python, env, work = installed
    where = _run([str(python), "-c", "import layerlab; print(layerlab.__file__)"], work, env)
    assert Path(where.stdout.strip()).is_relative_to(python.parent.parent)


def test_demo_json_from_the_installed_package(installed):
    python, env, work = installed
    proc = _run([str(python.parent / "layerlab"), "demo", "--json", "--no-report"], work, env)
    data = json.loads(proc.stdout)
    assert proc.stderr == ""
    samples = Path(data["samples"])
    assert samples.parent == Path(env["LAYERLAB_CACHE_DIR"])
    assert samples.name.startswith("samples-")
    # built from the package's own generator: the same bytes as the committed samples
    assert (samples / "expected.json").read_bytes() == (SAMPLES / "expected.json").read_bytes()
    assert [(p["profile"], p["network"], p["layers"], p["pushed"]) for p in data["pushes"]] == [
        ("docker-1.7", "LAN", 24, 24), ("fast", "LAN", 24, 24),
        ("docker-1.7", "WAN 20 ms", 24, 24), ("fast", "WAN 20 ms", 24, 24),
        ("fast", "LAN", 4, 4), ("fast", "LAN", 5, 2)]
    assert data["efficiency"]["wasted_bytes"] == 104000
    assert data["report"] is None


def test_notebooks_copied_out_run_under_nbval(installed):
    python, env, work = installed
    target = work / "class"
    proc = _run([str(python.parent / "layerlab"), "notebooks", str(target), "--json"], work, env)
    data = json.loads(proc.stdout)
    assert [Path(p).name for p in data["notebooks"]] == NOTEBOOKS
    assert sorted(p.name for p in target.iterdir()) == sorted(NOTEBOOKS + ["README.md"])
    assert (target / NOTEBOOKS[0]).read_bytes() == (
        ROOT / "layerlab" / "workshop" / NOTEBOOKS[0]).read_bytes()

    again = subprocess.run([str(python.parent / "layerlab"), "notebooks", str(target)],
                           cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2
    assert again.stderr == (f"layerlab: error: {target / NOTEBOOKS[0]} exists "
                            "(pass overwrite=True / --force)\n")

    kernels = work / "jupyter" / "kernels" / "layerlab-installed"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "installed layerlab", "language": "python"}))
    env = {**env, "JUPYTER_PATH": str(work / "jupyter")}
    _run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
          "--nbval-kernel-name", "layerlab-installed", str(target / NOTEBOOKS[0])], target, env)
