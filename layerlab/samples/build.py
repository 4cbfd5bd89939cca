"""Write the small, byte-reproducible sample images of layerlab.

    python -m layerlab.samples --out DIR

Writes docker-archive/ (``docker save`` tars, classic and Docker >= 25 layouts), oci/
(OCI image layout directories), oci-archive/, then reads every written file back to
record digests in expected.json and README.md.  Standard library plus ``zstandard``.
Running it twice gives identical bytes (with the same zlib and zstd libraries).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

from . import defs
from .imagewriter import (
    OCI_INDEX, REF_NAME, BlobStore, Image, docker25_files, write_docker_archive,
    write_files_tar, write_layout_dir,
)
from .readback import describe_outputs

__all__ = ["OUTPUT_DIRS", "build_samples", "main", "sample_images"]

OUTPUT_DIRS = ("docker-archive", "oci", "oci-archive")


def sample_images() -> dict[str, Image]:
    """Every single-platform sample by its short name."""
    base = defs.build(defs.base_steps(), defs.BASE_SETTINGS, ("base:1",))
    return {
        "base": base,
        "app-v1": defs.app_image(1),
        "app-v2": defs.app_image(2),
        "app24": defs.layered_image(merge=False),
        "app14": defs.layered_image(merge=True),
        "wasted": defs.wasted_image(),
    }


def write_docker_archives(out: Path, images: dict[str, Image]) -> None:
    """docker-archive/*.tar: one per image, family.tar, and the Docker 25 layout."""
    directory = out / "docker-archive"
    directory.mkdir(parents=True)
    for name, image in images.items():
        write_docker_archive(directory / f"{name}.tar", [image])
    app_v2_latest = dataclasses.replace(images["app-v2"], tags=("app:v2", "app:latest"))
    write_docker_archive(directory / "family.tar",
                         [images["base"], images["app-v1"], app_v2_latest])
    write_files_tar(directory / "app-v1-docker25.tar", docker25_files([images["app-v1"]]))


def write_oci(out: Path, images: dict[str, Image]) -> None:
    """oci/family (gzip), oci/multi (nested index), oci/zstd, oci-archive/app-v1.tar."""
    store = BlobStore()
    roots = [store.add_image(image, ["gzip"] * len(image.layers), annotations={REF_NAME: name})
             for name, image in images.items()]
    write_layout_dir(out / "oci" / "family", store.layout_files(roots))

    store = BlobStore()
    platforms = []
    for image, (arch, variant) in zip(defs.multi_images(), defs.PLATFORMS):
        platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
        platforms.append(store.add_image(image, ["gzip", "gzip"], platform=platform))
    root = store.add_index(platforms, annotations={REF_NAME: "latest"})
    assert root["mediaType"] == OCI_INDEX
    write_layout_dir(out / "oci" / "multi", store.layout_files([root]))

    store = BlobStore()
    zstd_root = store.add_image(images["app-v1"], ["zstd", "zstd", "zstd", "none"],
                                annotations={REF_NAME: "app-v1"})
    write_layout_dir(out / "oci" / "zstd", store.layout_files([zstd_root]))

    store = BlobStore()
    root = store.add_image(images["app-v1"], ["gzip"] * 4, annotations={REF_NAME: "app-v1"})
    (out / "oci-archive").mkdir(parents=True)
    write_files_tar(out / "oci-archive" / "app-v1.tar", store.layout_files([root]))


def build_samples(out: Path) -> dict:
    """Write every sample under ``out`` (replacing earlier ones), then expected.json and
    README.md; returns what expected.json holds."""
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)
    images = sample_images()
    write_docker_archives(out, images)
    write_oci(out, images)
    return describe_outputs(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m layerlab.samples --out DIR``."""
    parser = argparse.ArgumentParser(prog="python -m layerlab.samples",
                                     description="Write the sample images of layerlab.")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)
    build_samples(args.out)
    return 0
