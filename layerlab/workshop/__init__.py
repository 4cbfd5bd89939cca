"""The workshop notebooks, shipped inside the package so that ``pip install layerlab``
has them: :func:`copy_notebooks` (``layerlab notebooks DIR``) copies them out for a class.

They find the sample images with :func:`layerlab.samples_dir`, so they run from any
directory, in a checkout or after a plain install.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

__all__ = ["notebook_names", "copy_notebooks"]

_EXTRA = ("README.md",)


def notebook_names() -> list[str]:
    """The file names of the workshop notebooks, in teaching order."""
    return sorted(entry.name for entry in resources.files(__name__).iterdir()
                  if entry.name.endswith(".ipynb"))


def copy_notebooks(directory: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the notebooks (and their README) into ``directory`` (created if needed);
    return the copied notebooks' paths.

    Raises :class:`FileExistsError` naming the first file that is already there, before
    copying anything, unless ``overwrite``: a class's edited notebooks are never lost."""
    target = Path(directory)
    names = notebook_names() + list(_EXTRA)
    if not overwrite:
        for name in names:
            if (target / name).exists():
                raise FileExistsError(f"{target / name} exists (pass overwrite=True / --force)")
    target.mkdir(parents=True, exist_ok=True)
    package = resources.files(__name__)
    for name in names:
        with resources.as_file(package / name) as source:
            shutil.copyfile(source, target / name)
    return [target / name for name in names if name.endswith(".ipynb")]
