"""``docker save`` archives: ``docker-archive:PATH[:NAME[:TAG]]`` or ``docker-archive:PATH:@N``.

Two layouts exist, both with a ``manifest.json`` listing the images (``Config``,
``RepoTags``, ``Layers`` paths inside the tar):

* **classic** (Docker < 25): ``<id>/layer.tar`` (uncompressed; a layer already saved
  for another image is a symlink ``../<id>/layer.tar``), ``<config hex>.json``,
  ``repositories``. No registry manifest exists, so one is *synthesised*, byte for byte
  as skopeo does (``skopeo inspect --raw docker-archive:...``): a Docker schema2
  manifest, Go's compact JSON and field order, and -- skopeo's convention -- the media
  type ``application/vnd.docker.image.rootfs.diff.tar.gzip`` for every layer even when
  ``layer.tar`` is uncompressed. ``manifest_digest`` therefore equals skopeo's. (skopeo
  1.9.3 writes size 0 for a layer whose path is a symlink; we write the real size, so
  for those images only the digests differ.) The :class:`Layer` values tell the truth:
  ``media_type`` ``...diff.tar`` and ``compression`` ``none`` for an uncompressed
  layer.tar, whose ``digest`` is its ``diff_id``; ``uncompressed_size`` equals ``size``.
  A gzip layer file (written by some tools) gets ``...diff.tar.gzip``, and its digest is
  taken from its name when that is ``<hex>.tar.gz`` or ``blobs/sha256/<hex>``, else the
  file is hashed on open (the one case where opening reads layer bytes); its
  ``uncompressed_size`` is ``None`` until verified.
* **Docker >= 25**: the tar is also an OCI image layout (``oci-layout``, ``index.json``,
  ``blobs/``). The stored manifest is used (``manifest_digest`` is its digest), found
  through ``index.json`` by the entry's config digest; names come from ``RepoTags``.

Selecting an image: by ``NAME:TAG`` (``app:v1`` and ``docker.io/library/app:v1`` are the
same name; a missing tag means ``latest``) or by position ``@N`` in manifest.json; with
neither, the archive must hold exactly one image. The tar is indexed once by its headers;
layers are read in place through :class:`~layerlab.blobio.FileSection` (``os.pread``),
``Layer.seekable`` is True. Every declared digest is checked: configs on open, layers
when streamed (``Layer.open``/``verify``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from dataclasses import dataclass

from .. import mediatypes as mt
from ..config import parse_config
from ..digest import Digest, digest_bytes, digest_stream
from ..errors import (DigestMismatchError, ImageNotFoundError, InvalidManifestError,
                      MissingBlobError, NotAnArchiveError)
from ..manifest import parse_manifest
from ..model import Image, Layer
from ..platform import Platform
from ..reference import ArchiveReference, LayoutReference
from . import ImageSummary
from ._archive import TarTree
from ._blobs import check_layer_count, platform_warning, same_name
from .layout import CONTAINERD_NAME, Chosen, LayoutReader

__all__ = ["open_archive_image", "list_archive_images", "ArchiveEntry", "skopeo_manifest"]

_DECLARED = re.compile(r"(?:^|/)(?:blobs/(sha256|sha512)/)?([a-f0-9]{64}|[a-f0-9]{128})"
                       r"(\.json|\.tar\.gz|\.tgz)?$")


@dataclass(frozen=True)
class ArchiveEntry:
    """One image of ``manifest.json``."""

    position: int
    config: str
    tags: tuple[str, ...]
    layers: tuple[str, ...]


def _entries(tree: TarTree) -> list[ArchiveEntry]:
    where = f"{tree.label}: manifest.json"
    try:
        data = json.loads(tree.read("manifest.json"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidManifestError(f"{where}: invalid JSON ({exc})") from None
    if not isinstance(data, list):
        raise InvalidManifestError(f"{where}: expected a JSON list of images")
    out = []
    for n, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise InvalidManifestError(f"{where}: image {n} has no Config path")
        layers, tags = item.get("Layers") or [], item.get("RepoTags") or []
        if not isinstance(layers, list) or not all(isinstance(p, str) for p in layers):
            raise InvalidManifestError(f"{where}: image {n}: Layers must be a list of paths")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidManifestError(f"{where}: image {n}: RepoTags must be a list of names")
        out.append(ArchiveEntry(n, item["Config"], tuple(tags), tuple(layers)))
    return out


def _describe(entries: list[ArchiveEntry], path: str) -> str:
    choices = []
    for entry in entries:
        choices.extend(f"docker-archive:{path}:{tag}" for tag in entry.tags)
        if not entry.tags:
            choices.append(f"docker-archive:{path}:@{entry.position}")
    return ", ".join(choices)


def _select(entries: list[ArchiveEntry], ref: ArchiveReference, label: str
            ) -> tuple[ArchiveEntry, str | None]:
    if not entries:
        raise ImageNotFoundError(f"{label}: the archive holds no images (empty manifest.json)")
    if ref.index is not None:
        if not 0 <= ref.index < len(entries):
            raise ImageNotFoundError(f"{label}: no image @{ref.index} (the archive holds "
                                     f"{len(entries)})")
        entry = entries[ref.index]
        return entry, entry.tags[0] if entry.tags else None
    if ref.name:
        for entry in entries:
            for tag in entry.tags:
                if same_name(tag, ref.name):
                    return entry, tag
        raise ImageNotFoundError(f"{label}: no image named {ref.name!r} (it holds: "
                                 f"{_describe(entries, label)})")
    if len(entries) > 1:
        raise ImageNotFoundError(f"{label}: holds {len(entries)} images, name one: "
                                 f"{_describe(entries, label)}")
    return entries[0], entries[0].tags[0] if entries[0].tags else None


def _declared(name: str) -> Digest | None:
    """The digest a file name declares (``<hex>.json``, ``blobs/sha256/<hex>``, ...)."""
    match = _DECLARED.search(name)
    if not match:
        return None
    algorithm = match.group(1) or ("sha256" if len(match.group(2)) == 64 else "sha512")
    return Digest(f"{algorithm}:{match.group(2)}") if Digest.is_valid(
        f"{algorithm}:{match.group(2)}") else None


def _hash(opener) -> Digest:
    with opener() as stream:
        return digest_stream(stream)[0]


def _go_json(value: object) -> str:
    """Compact JSON as Go's encoding/json writes it (HTML characters escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def skopeo_manifest(config_digest: Digest, config_size: int,
                    layers: list[tuple[Digest, int]]) -> bytes:
    """The schema2 manifest skopeo synthesises for a docker-save image, byte for byte."""
    def descriptor(media_type: str, size: int, digest: Digest) -> dict:
        return {"mediaType": media_type, "size": size, "digest": str(digest)}

    body = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST_V2,
        "config": descriptor(mt.DOCKER_CONFIG, config_size, config_digest),
        "layers": [descriptor(mt.DOCKER_LAYER_GZIP, size, digest) for digest, size in layers],
    }
    return _go_json(body).encode()


def _classic_image(tree: TarTree, entry: ArchiveEntry, name: str | None, reference: str) -> Image:
    label = tree.label
    raw = tree.read(entry.config)
    config_digest = digest_bytes(raw)
    declared = _declared(entry.config)
    if declared is not None and digest_bytes(raw, declared.algorithm) != declared:
        raise DigestMismatchError(f"{label}: config {entry.config}", declared,
                                  digest_bytes(raw, declared.algorithm))
    config = parse_config(raw, mt.DOCKER_CONFIG, what=f"{label}: config {entry.config}",
                          digest=config_digest)
    check_layer_count(config, entry.layers, f"{label}: manifest.json image {entry.position}")
    layers, warnings = [], []
    for path, diff_id, step in zip(entry.layers, config.diff_ids, config.layer_history()):
        member = tree.member(path)
        if member is None:
            raise MissingBlobError(f"{label}: layer {path} (diff_id {diff_id}) is missing")
        compression = mt.detect_compression(tree.head(path, 4))
        opener = functools.partial(tree.open, path)
        if compression == "none":
            digest, media_type = diff_id, mt.DOCKER_LAYER
        else:
            digest = _declared(path) or _hash(opener)
            if compression == "gzip":
                media_type = mt.DOCKER_LAYER_GZIP
            else:
                media_type = mt.OCI_LAYER_ZSTD
                warnings.append(f"layer {path}: zstd layer in a docker-save archive")
        layers.append(Layer(
            digest=digest, diff_id=diff_id, size=member.size, media_type=media_type,
            uncompressed_size=member.size if compression == "none" else None,
            compression=compression, history=step, opener=opener, seekable=True))
    raw_manifest = skopeo_manifest(config_digest, len(raw),
                                   [(layer.digest, layer.size) for layer in layers])
    manifest = parse_manifest(raw_manifest, mt.DOCKER_MANIFEST_V2,
                              what=f"{label}: synthesised manifest")
    return Image(reference=reference, manifest=manifest, config=config, layers=tuple(layers),
                 name=name, warnings=tuple(warnings))


def _docker25_chosen(tree: TarTree, reader: LayoutReader, entry: ArchiveEntry,
                     name: str | None) -> Chosen | None:
    config_digest = _declared(entry.config) or digest_bytes(tree.read(entry.config))
    found = [c for c in reader.walk_images() if c.manifest.config.digest == config_digest]
    if not found:
        return None
    for chosen in found:
        if name and same_name(chosen.root.annotations.get(CONTAINERD_NAME), name):
            return chosen
    return found[0]


def _is_docker25(tree: TarTree) -> bool:
    return tree.exists("index.json") and tree.exists("oci-layout")


def _open_entry(tree: TarTree, entry: ArchiveEntry, name: str | None, reference: str,
                wanted: Platform | str | None = None) -> Image:
    if _is_docker25(tree):
        reader = LayoutReader(tree, "oci-archive")
        chosen = _docker25_chosen(tree, reader, entry, name)
        if chosen is not None:
            return reader.image(chosen, reference, name, wanted)
    image = _classic_image(tree, entry, name, reference)
    warning = platform_warning(image.config, wanted)
    return dataclasses.replace(image, warnings=image.warnings + (warning,)) if warning else image


def open_archive_image(ref: ArchiveReference, platform: Platform | str | None = None) -> Image:
    """Open one image of a docker-save archive (see the module docstring).

    ``platform`` does not select (a docker-save entry is one image; a Docker >= 25
    archive without ``manifest.json`` is read as an OCI layout, where it does): an
    image of another platform gets a warning.
    """
    tree = TarTree(ref.path)
    if not tree.exists("manifest.json"):
        if _is_docker25(tree):
            from .layout import open_layout_image

            layout_ref = ref.name if ref.name else (f"@{ref.index}" if ref.index is not None else None)
            return open_layout_image(LayoutReference(ref.path, layout_ref, archive=True), platform)
        raise NotAnArchiveError(f"{ref.path}: not a docker-save archive (no manifest.json)")
    entries = _entries(tree)
    entry, name = _select(entries, ref, tree.label)
    return _open_entry(tree, entry, name, str(ref), platform)


def list_archive_images(ref: ArchiveReference) -> list[ImageSummary]:
    """Every image of the archive, one row per tag (``@N`` for untagged images)."""
    tree = TarTree(ref.path)
    if not tree.exists("manifest.json") and _is_docker25(tree):
        from .layout import list_layout_images

        return list_layout_images(LayoutReference(ref.path, archive=True))
    if not tree.exists("manifest.json"):
        raise NotAnArchiveError(f"{ref.path}: not a docker-save archive (no manifest.json)")
    out = []
    for entry in _entries(tree):
        image = _open_entry(tree, entry, entry.tags[0] if entry.tags else None, str(ref))
        platforms = (str(image.config.platform),)
        for tag in entry.tags or (None,):
            reference = f"docker-archive:{ref.path}:{tag if tag else '@' + str(entry.position)}"
            out.append(ImageSummary(reference, tag, image.digest, image.media_type, platforms))
    return out
