#!/usr/bin/env python3
"""Make the small, byte-reproducible sample images of layerlab.

    python sample_images/make_samples.py [--out DIR]

Writes docker-archive/ (``docker save`` tars, classic and Docker >= 25 layouts), oci/
(OCI image layout directories), oci-archive/, then reads every written file back to
record digests in expected.json and README.md.  Standard library plus ``zstandard``.
Running it twice gives identical bytes (with the same zlib and zstd libraries).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sample_defs as defs  # noqa: E402
from imagewriter import (  # noqa: E402
    OCI_INDEX, REF_NAME, BlobStore, Image, docker25_files, write_docker_archive,
    write_files_tar, write_layout_dir,
)
from readback import describe_outputs  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    """Write every sample under --out (default: this directory), then expected.json and README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)
    images = sample_images()
    write_docker_archives(out, images)
    write_oci(out, images)
    describe_outputs(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
