"""The sample images: small, byte-reproducible images for the demo, notebooks and tests.

:func:`samples_dir` says where they are, building them on first use when layerlab runs
from an installed package rather than a checkout:

1. ``$LAYERLAB_SAMPLES``, when set (built there if it holds no samples yet);
2. ``sample_images/`` of a source checkout, beside the ``layerlab`` package (committed);
3. else ``<cache>/samples-<key>`` under the user cache directory
   (:func:`layerlab.cachedir.default_cache_dir`), where ``<key>`` names the generator's
   source, so a new layerlab version builds its own.

The generator (:mod:`.build`, :mod:`.defs`, :mod:`.imagewriter`, :mod:`.readback`)
uses the standard library and ``zstandard`` only, never the rest of layerlab: the samples
are fixtures that the package is tested against.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["samples_dir", "ensure_samples", "is_complete"]

_HERE = Path(__file__).resolve().parent
_CHECKOUT = _HERE.parent.parent / "sample_images"
_GENERATOR = ("build.py", "defs.py", "imagewriter.py", "readback.py", "readme.py")


def is_complete(directory: Path) -> bool:
    """Does ``directory`` hold a full set of samples (expected.json is written last)?"""
    return (directory / "expected.json").is_file() and (
        directory / "docker-archive" / "app24.tar").is_file()


def _generator_key() -> str:
    digest = hashlib.sha256()
    for name in _GENERATOR:
        digest.update((_HERE / name).read_bytes())
    return digest.hexdigest()[:12]


def ensure_samples(directory: Path, say: Callable[[str], None] = print) -> Path:
    """Build the samples into ``directory`` unless it already holds them; return it.

    Safe when several processes ask at once (a file lock) and never leaves a half-written
    set behind: the samples are written beside ``directory`` and renamed into place."""
    from filelock import FileLock

    directory = Path(directory)
    if is_complete(directory):
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory.parent / f".{directory.name}.lock")):
        if is_complete(directory):
            return directory
        from .build import build_samples

        say(f"building the sample images in {directory} ...")
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            build_samples(staging)
            if directory.exists():
                # an incomplete earlier set (its owner was killed): keep nothing of it
                for name in sorted(os.listdir(staging), key=lambda n: n == "expected.json"):
                    target = directory / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    os.replace(staging / name, target)
            else:
                os.replace(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def samples_dir(say: Callable[[str], None] = print) -> Path:
    """The directory of the sample images (see the module's docstring), built if needed."""
    explicit = os.environ.get("LAYERLAB_SAMPLES")
    if explicit:
        return ensure_samples(Path(explicit), say)
    if is_complete(_CHECKOUT):
        return _CHECKOUT
    from ..cachedir import default_cache_dir

    return ensure_samples(default_cache_dir() / f"samples-{_generator_key()}", say)
