"""Sinks: write images to an OCI image layout (directory or ``oci-archive`` tar) or to a
classic ``docker save`` archive.

Blobs are streamed (bounded memory) and verified while copied: a layer whose bytes do
not match its digest, size or diff_id aborts the write. Every file is first written
under a temporary name inside the target and renamed when complete, so a failed write
leaves no partial file under a final name; nothing is written outside the path named.

Both writers take ``(image, ref)`` pairs: ``ref`` is the name to record (the
``org.opencontainers.image.ref.name`` annotation of a layout, a ``RepoTags`` entry of a
docker archive), or ``None`` for none.
"""

from __future__ import annotations

import functools
import json
import os
from typing import BinaryIO, Iterable, Iterator

from .. import mediatypes as mt
from ..digest import Digest, digest_bytes
from ..errors import (ArchiveError, CorruptArchiveError, InvalidReferenceError,
                      UnknownMediaTypeError)
from ..manifest import Descriptor, ImageManifest, ManifestIndex, index_with_children, parse_manifest
from ..model import Image, ImageIndex, Layer
from ..reference import parse_registry_reference
from ._output import TarOut, copy_stream, target_dir, temp_file, write_small

__all__ = ["write_oci_layout", "write_docker_archive", "layout_manifest"]

REF_NAME = "org.opencontainers.image.ref.name"


def _writable_manifest(image: Image) -> ImageManifest:
    manifest = image.manifest
    if not isinstance(manifest, ImageManifest):
        raise UnknownMediaTypeError(f"{image.reference}: cannot write a {manifest.media_type} "
                                    "manifest (schema2 and OCI image manifests only)")
    return manifest


def _true_media_type(layer: Layer, oci: bool) -> str:
    """The layer's media type, corrected when it claims another compression than the bytes."""
    if mt.layer_compression(layer.media_type) == layer.compression:
        return layer.media_type
    if not oci and layer.compression == "zstd":
        raise UnknownMediaTypeError(f"layer {layer.digest}: zstd bytes cannot be described "
                                    "in a Docker schema2 manifest")
    return mt.layer_media_type(oci, layer.compression)


_OCI_FOR_DOCKER = {
    mt.DOCKER_LAYER: mt.OCI_LAYER,
    mt.DOCKER_LAYER_GZIP: mt.OCI_LAYER_GZIP,
    mt.DOCKER_LAYER_FOREIGN_GZIP: mt.OCI_LAYER_NONDIST_GZIP,
}


def _oci_layer_type(layer: Layer) -> str:
    media_type = _true_media_type(layer, oci=layer.compression == "zstd")
    if media_type in _OCI_FOR_DOCKER:
        return _OCI_FOR_DOCKER[media_type]
    return media_type if media_type.startswith("application/vnd.oci.") else \
        mt.layer_media_type(True, layer.compression)


def _oci_manifest(image: Image, manifest: ImageManifest) -> ImageManifest:
    """The OCI manifest of a Docker schema2 image: same config bytes and layer blobs."""
    def descriptor(media_type: str, digest: Digest, size: int, layer: Layer | None = None) -> dict:
        out: dict = {"mediaType": media_type, "digest": str(digest), "size": size}
        if layer is not None and layer.urls:
            out["urls"] = list(layer.urls)
        if layer is not None and layer.annotations:
            out["annotations"] = dict(layer.annotations)
        return out

    body: dict = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": descriptor(mt.OCI_CONFIG, image.config.digest, image.config.size),
        "layers": [descriptor(_oci_layer_type(layer), layer.digest, layer.size, layer)
                   for layer in image.layers],
    }
    if manifest.annotations:
        body["annotations"] = dict(manifest.annotations)
    return _reparse(body, image)


def _reparse(body: dict, image: Image) -> ImageManifest:
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    parsed = parse_manifest(raw, body["mediaType"], what=f"{image.reference}: manifest")
    assert isinstance(parsed, ImageManifest)
    return parsed


def layout_manifest(image: Image, keep_docker_manifests: bool = False) -> ImageManifest:
    """The manifest to store in an OCI layout for ``image``.

    An OCI manifest is kept byte for byte, unless a layer's media type misdescribes its
    bytes: then the same manifest with corrected layer media types (a new digest). A
    Docker schema2 manifest is converted to OCI (same config bytes and layer blobs; a
    new manifest digest), as ``skopeo copy`` does and as OCI-layout readers such as
    skopeo 1.9 require; with ``keep_docker_manifests`` it is kept (corrected only when
    a layer media type lies -- a synthesised docker-archive manifest labels
    uncompressed layers gzip, as skopeo does).
    """
    manifest = _writable_manifest(image)
    oci = manifest.media_type == mt.OCI_MANIFEST
    if not oci and not keep_docker_manifests:
        return _oci_manifest(image, manifest)
    wanted = [_true_media_type(layer, oci) for layer in image.layers]
    if [d.media_type for d in manifest.layers] == wanted:
        return manifest
    body = manifest.json()
    for descriptor, media_type in zip(body["layers"], wanted):
        descriptor["mediaType"] = media_type
    return _reparse(body, image)


def _descriptor_json(manifest: ImageManifest, image: Image, ref: str | None) -> dict:
    out: dict = {"mediaType": manifest.media_type, "digest": str(manifest.digest),
                 "size": manifest.size}
    if ref:
        out["annotations"] = {REF_NAME: ref}
    platform = image.platform or image.config.platform
    if platform.os and platform.architecture:
        out["platform"] = {"architecture": platform.architecture, "os": platform.os,
                           **({"variant": platform.variant} if platform.variant else {})}
    return out


def _layout_item(item: Image | ImageIndex, keep: bool
                 ) -> tuple[list[tuple[Digest, int, object]], dict]:
    """The blobs an image or a whole index puts in a layout, and its root descriptor
    (without a ref). An index is rewritten to point at its images' manifests as written
    (and made an OCI index unless ``keep``); its platforms and annotations stay."""
    if isinstance(item, Image):
        manifest = layout_manifest(item, keep)
        return list(_blobs(item, manifest)), _descriptor_json(manifest, item, None)
    blobs: list[tuple[Digest, int, object]] = []
    children = []
    for child in item.children:
        child_blobs, root = _layout_item(child, keep)
        blobs.extend(child_blobs)
        children.append(Descriptor(root["mediaType"], Digest(root["digest"]), root["size"]))
    media_type = item.media_type if keep else mt.OCI_INDEX
    raw = index_with_children(item.manifest, children, media_type)
    digest = digest_bytes(raw)
    blobs.append((digest, len(raw), raw))
    return blobs, {"mediaType": media_type, "digest": str(digest), "size": len(raw)}


def _with_ref(root: dict, ref: str | None) -> dict:
    return {**root, "annotations": {REF_NAME: ref}} if ref else root


def _blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def _blobs(image: Image, manifest: ImageManifest) -> Iterator[tuple[Digest, int, object]]:
    """(digest, size, source) for each blob of an image: bytes, or a Layer to stream."""
    yield image.config.digest, image.config.size, image.config.raw
    for layer in image.layers:
        yield layer.digest, layer.size, layer
    yield manifest.digest, manifest.size, manifest.raw


def _write_blob(out: BinaryIO, source: object, size: int, digest: Digest) -> None:
    if isinstance(source, (bytes, bytearray)):
        actual = digest_bytes(bytes(source), digest.algorithm)
        if actual != digest or len(source) != size:
            raise CorruptArchiveError(f"blob {digest}: content does not match its digest")
        out.write(source)
        return
    assert isinstance(source, Layer)
    with source.open(verify=True) as stream:
        copy_stream(stream, out, size)


# ------------------------------------------------------------------------- OCI layout
def _prepare_layout_dir(path: str) -> None:
    if os.path.isdir(path):
        if os.listdir(path) and not os.path.exists(os.path.join(path, "oci-layout")):
            raise ArchiveError(f"{path}: not empty and not an OCI image layout; refusing to write")
        return
    if os.path.exists(path):
        raise ArchiveError(f"{path}: exists and is not a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ArchiveError(f"{parent}: no such directory")
    os.mkdir(path)


def _read_index(path: str) -> list[dict]:
    index_path = os.path.join(path, "index.json")
    if not os.path.exists(index_path):
        return []
    with open(index_path, "rb") as f:
        parsed = parse_manifest(f.read(), mt.OCI_INDEX, what=f"{index_path}")
    if not isinstance(parsed, ManifestIndex):
        raise ArchiveError(f"{index_path}: not an image index")
    return list(parsed.json().get("manifests") or [])


def _merge_index(existing: list[dict], new: list[dict]) -> list[dict]:
    """New root descriptors replace existing ones with the same ref (or same digest when
    neither has a ref)."""
    def key(d: dict) -> tuple:
        ref = (d.get("annotations") or {}).get(REF_NAME)
        return ("ref", ref) if ref else ("digest", d.get("digest"))

    merged = {key(d): d for d in existing}
    for d in new:
        merged[key(d)] = d  # replaces in place, else appends
    return list(merged.values())


def _index_bytes(manifests: list[dict]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests},
                      separators=(",", ":")).encode()


_OCI_LAYOUT = json.dumps({"imageLayoutVersion": "1.0.0"}, separators=(",", ":")).encode()


def _write_layout_dir(pairs: list[tuple[Image | ImageIndex, str | None]], path: str,
                      keep: bool) -> None:
    _prepare_layout_dir(path)
    roots = []
    for item, ref in pairs:
        blobs, root = _layout_item(item, keep)
        for digest, size, source in blobs:
            directory = os.path.join(path, "blobs", digest.algorithm)
            os.makedirs(directory, exist_ok=True)
            final = os.path.join(directory, digest.hex)
            if os.path.isfile(final) and os.path.getsize(final) == size:
                continue  # content-addressed: already there
            with temp_file(directory, f".{digest.hex[:12]}.") as (out, tmp):
                _write_blob(out, source, size, digest)
                out.flush()
                os.replace(tmp, final)
        roots.append(_with_ref(root, ref))
    write_small(path, "oci-layout", _OCI_LAYOUT)
    write_small(path, "index.json", _index_bytes(_merge_index(_read_index(path), roots)))


def _write_layout_tar(pairs: list[tuple[Image | ImageIndex, str | None]], path: str,
                      keep: bool) -> None:
    directory = target_dir(path)
    with temp_file(directory, f".{os.path.basename(path)}.") as (out, tmp):
        tar = TarOut(out)
        tar.file("oci-layout", _OCI_LAYOUT)
        tar.directory("blobs/")
        written: set[Digest] = set()
        algorithms: set[str] = set()
        roots = []
        for item, ref in pairs:
            blobs, root = _layout_item(item, keep)
            for digest, size, source in blobs:
                if digest in written:
                    continue
                if digest.algorithm not in algorithms:
                    tar.directory(f"blobs/{digest.algorithm}/")
                    algorithms.add(digest.algorithm)
                tar.member(_blob_path(digest), size,
                           functools.partial(_write_blob, source=source, size=size, digest=digest))
                written.add(digest)
            roots.append(_with_ref(root, ref))
        tar.file("index.json", _index_bytes(_merge_index([], roots)))
        tar.close()
        out.flush()
        os.replace(tmp, path)


def write_oci_layout(images: Iterable[tuple[Image | ImageIndex, str | None]],
                     path: str | os.PathLike, *, archive: bool = False,
                     keep_docker_manifests: bool = False) -> None:
    """Write images (or whole indexes) to an OCI image layout: the directory ``path`` (created if its parent
    exists; merged into if it already is a layout: roots with the same ref are replaced)
    or, with ``archive``, the tar file ``path`` (replaced as a whole).

    Blobs are copied as stored (compressed layers stay compressed), verified on the way.
    Docker schema2 manifests are converted to OCI unless ``keep_docker_manifests``, and a
    manifest whose layer media types misdescribe the bytes is corrected (see
    :func:`layout_manifest`): config digest and layer digests never change. Root
    descriptors carry the ref as ``org.opencontainers.image.ref.name`` and the
    image's platform. An :class:`ImageIndex` is written whole: every image, then the
    index pointing at their manifests as written (an OCI index unless
    ``keep_docker_manifests``), as the root.
    """
    pairs = list(_pairs_checked(images))
    if archive:
        _write_layout_tar(pairs, os.fspath(path), keep_docker_manifests)
    else:
        _write_layout_dir(pairs, os.fspath(path), keep_docker_manifests)


# ------------------------------------------------------------------------- docker save
def _repo_tag(ref: str) -> str:
    """``ref`` as ``docker save`` records it: familiar name with a tag (``app:v1``)."""
    parsed = parse_registry_reference(ref)
    if parsed.digest is not None and parsed.tag is None:
        raise InvalidReferenceError(f"{ref!r}: a docker archive needs a tag, not a digest")
    repository = parsed.repository
    if parsed.registry == "docker.io":
        name = repository[len("library/"):] if repository.startswith("library/") else repository
    else:
        name = f"{parsed.registry}/{repository}"
    return f"{name}:{parsed.tag or 'latest'}"


def write_docker_archive(images: Iterable[tuple[Image, str | None]],
                         path: str | os.PathLike) -> None:
    """Write images as a classic ``docker save`` tar at ``path`` (replaced as a whole).

    Layers are stored uncompressed as ``<diff_id hex>/layer.tar`` (decompressed while
    copied; the stored digest and the diff_id are both checked), configs as
    ``<config hex>.json``; ``manifest.json`` lists each image once with all its refs
    as ``RepoTags``; ``repositories`` maps names to the top layer, as Docker does.
    """
    path = os.fspath(path)
    directory = target_dir(path)
    entries: dict[Digest, dict] = {}
    repositories: dict[str, dict[str, str]] = {}
    with temp_file(directory, f".{os.path.basename(path)}.") as (out, tmp):
        tar = TarOut(out)
        members: set[str] = set()
        for image, ref in _pairs_checked(images):
            config_name = f"{image.config.digest.hex}.json"
            if config_name not in members:
                tar.file(config_name, image.config.raw)
                members.add(config_name)
            layer_names = []
            for layer in image.layers:
                if layer.diff_id is None:
                    raise CorruptArchiveError(f"layer {layer.digest}: no diff_id in the config")
                name = f"{layer.diff_id.hex}/layer.tar"
                if name not in members:
                    tar.directory(f"{layer.diff_id.hex}/")
                    tar.file(f"{layer.diff_id.hex}/VERSION", b"1.0")
                    try:
                        with layer.open_uncompressed(verify=True) as stream:
                            tar.stream(name, stream)
                    except CorruptArchiveError:
                        layer.verify_stored()  # a blob that is not the declared one: say so
                        raise
                    members.add(name)
                layer_names.append(name)
            entry = entries.setdefault(image.config.digest, {
                "Config": config_name, "RepoTags": [], "Layers": layer_names})
            if ref:
                tag = _repo_tag(ref)
                if tag not in entry["RepoTags"]:
                    entry["RepoTags"].append(tag)
                repo, _, tag_name = tag.rpartition(":")
                if layer_names:
                    repositories.setdefault(repo, {})[tag_name] = layer_names[-1].split("/")[0]
        tar.file("manifest.json", json.dumps(list(entries.values()),
                                             separators=(",", ":")).encode())
        tar.file("repositories", json.dumps(repositories, separators=(",", ":")).encode())
        tar.close()
        out.flush()
        os.replace(tmp, path)


def _pairs_checked(images: Iterable[tuple[Image | ImageIndex, str | None]]
                   ) -> Iterator[tuple[Image | ImageIndex, str | None]]:
    """The ``(image or index, ref)`` pairs, each image manifest checked to be writable."""
    for item, ref in images:
        for image in item.images if isinstance(item, ImageIndex) else (item,):
            _writable_manifest(image)
        yield item, ref
