"""OCI image layouts, as a directory (``oci:DIR[:REF]``) or a tar of one
(``oci-archive:PATH[:REF]``).

``index.json`` lists the layout's roots; ``REF`` selects the one whose
``org.opencontainers.image.ref.name`` annotation equals it (``@N`` selects the N-th,
from 0). With no ``REF`` and a single root, that root is used. Roots that are image
indexes (multi-platform) are descended, nested ones too, choosing the wanted platform
(default: the host's); :attr:`Image.index_digest` is then the digest of the index the
image was chosen from, and :attr:`Image.platform` its platform.

Manifests, indexes and configs are verified (size and digest) when the image is
opened; layers when they are read (:meth:`Layer.open`, :meth:`Layer.verify`). Each
layer's compression is sniffed from its first bytes; a media type that says otherwise
gives a warning in :attr:`Image.warnings`. An archive is indexed once (headers only)
and its blobs read in place: nothing is extracted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

from .. import mediatypes as mt
from ..digest import Digest
from ..errors import (CorruptArchiveError, ImageNotFoundError, InvalidManifestError,
                      MissingBlobError, NotAnArchiveError, UnknownMediaTypeError)
from ..manifest import Descriptor, ImageManifest, Manifest, ManifestIndex, parse_manifest
from ..model import Image, ImageIndex
from ..platform import Platform, choose
from ..reference import LayoutReference
from . import ImageSummary
from ._archive import Tree, open_tree
from ._blobs import (blob_name, check_layer_count, load_config, make_layer, platform_warning,
                     read_verified, same_name)

__all__ = ["LayoutReader", "open_layout_image", "open_layout_all", "list_layout_images",
           "CONTAINERD_NAME"]

CONTAINERD_NAME = "io.containerd.image.name"
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Chosen:
    """An image manifest reached from a root, with the index it was chosen from."""

    root: Descriptor
    manifest: ImageManifest
    index_digest: Digest | None = None
    platform: Platform | None = None


class LayoutReader:
    """Reads an OCI image layout held in a :class:`~layerlab.sources._archive.Tree`."""

    def __init__(self, tree: Tree, transport: str = "oci") -> None:
        self.tree = tree
        self.label = tree.label
        self.transport = transport
        self._index: ManifestIndex | None = None

    # ---------------------------------------------------------------- documents
    def index(self) -> ManifestIndex:
        """The parsed ``index.json`` (the layout's roots)."""
        if self._index is None:
            if not self.tree.exists("index.json"):
                raise NotAnArchiveError(f"{self.label}: not an OCI image layout (no index.json)")
            self._check_layout_file()
            raw = self.tree.read("index.json")
            parsed = parse_manifest(raw, mt.OCI_INDEX, what=f"{self.label}: index.json")
            if not isinstance(parsed, ManifestIndex):
                raise InvalidManifestError(f"{self.label}: index.json is not an image index "
                                           f"(media type {parsed.media_type})")
            self._index = parsed
        return self._index

    def _check_layout_file(self) -> None:
        if not self.tree.exists("oci-layout"):
            raise NotAnArchiveError(f"{self.label}: not an OCI image layout (no oci-layout file)")
        try:
            version = json.loads(self.tree.read("oci-layout")).get("imageLayoutVersion")
        except (ValueError, AttributeError):
            raise InvalidManifestError(f"{self.label}: oci-layout: invalid JSON") from None
        if not isinstance(version, str) or not version.startswith("1."):
            raise InvalidManifestError(f"{self.label}: oci-layout: unsupported "
                                       f"imageLayoutVersion {version!r}")

    def manifest(self, descriptor: Descriptor) -> Manifest:
        """The verified manifest or index a descriptor names."""
        kind = "index" if mt.is_index(descriptor.media_type) else "manifest"
        if not mt.is_manifest(descriptor.media_type):
            raise UnknownMediaTypeError(
                f"{self.label}: {descriptor.digest} has media type {descriptor.media_type!r}, "
                "not an image manifest or index")
        raw = read_verified(self.tree, blob_name(descriptor.digest), descriptor.digest,
                            descriptor.size, kind)
        parsed = parse_manifest(raw, descriptor.media_type,
                                what=f"{self.label}: {kind} {descriptor.digest}")
        if mt.is_index(parsed.media_type) != mt.is_index(descriptor.media_type):
            raise InvalidManifestError(
                f"{self.label}: {descriptor.digest} is a {parsed.media_type} but its "
                f"descriptor says {descriptor.media_type}")
        return parsed

    # ---------------------------------------------------------------- choosing
    def roots(self) -> tuple[Descriptor, ...]:
        return self.index().manifests

    def select_root(self, ref: str | None) -> list[Descriptor]:
        """The roots ``ref`` names (by ref.name, containerd name or ``@N``)."""
        roots = self.roots()
        if not roots:
            raise ImageNotFoundError(f"{self.label}: the layout holds no images (empty index.json)")
        if ref is None:
            if len(roots) == 1 or all(r.platform is not None and not r.ref_name for r in roots):
                return list(roots)
            raise ImageNotFoundError(
                f"{self.label}: holds {len(roots)} images, name one: "
                + ", ".join(self._root_reference(i, r) for i, r in enumerate(roots)))
        if ref.startswith("@") and ref[1:].isdigit():
            n = int(ref[1:])
            if n >= len(roots):
                raise ImageNotFoundError(f"{self.label}: no image {ref} (the layout holds {len(roots)})")
            return [roots[n]]
        found = [r for r in roots if r.ref_name == ref]
        if not found:
            found = [r for r in roots if same_name(r.annotations.get(CONTAINERD_NAME), ref)]
        if not found:
            names = sorted({r.ref_name for r in roots if r.ref_name})
            raise ImageNotFoundError(
                f"{self.label}: no image with ref {ref!r} (refs: {', '.join(names) or 'none'})")
        return found

    def _root_reference(self, n: int, root: Descriptor) -> str:
        return f"{self.transport}:{self.label}:{root.ref_name or '@' + str(n)}"

    def choose(self, roots: list[Descriptor], platform: Platform | str | None) -> Chosen:
        """Descend from ``roots`` (one or several candidates) to one image manifest."""
        if len(roots) == 1:
            return self._descend(roots[0], roots[0], platform, 0, None, None)
        if any(r.platform is None for r in roots):
            every = self.roots()
            raise ImageNotFoundError(
                f"{self.label}: {len(roots)} images match, select one by position: "
                + ", ".join(f"{self.transport}:{self.label}:@{every.index(r)} ({r.digest})"
                            for r in roots))
        picked = choose([(r.platform, r) for r in roots], platform, self.label)
        return self._descend(picked, picked, platform, 0, None, picked.platform)

    def _descend(self, root: Descriptor, descriptor: Descriptor, platform: Platform | str | None,
                 depth: int, index_digest: Digest | None, chosen_platform: Platform | None) -> Chosen:
        if depth > _MAX_DEPTH:
            raise CorruptArchiveError(f"{self.label}: image indexes nested deeper than {_MAX_DEPTH}")
        parsed = self.manifest(descriptor)
        if isinstance(parsed, ImageManifest):
            return Chosen(root, parsed, index_digest, chosen_platform)
        if isinstance(parsed, ManifestIndex):
            images = [d for d in parsed.manifests if mt.is_manifest(d.media_type)]
            if len(images) == 1 and images[0].platform is None:
                child = images[0]
            else:
                child = choose([(d.platform, d) for d in images], platform,
                               f"{self.label}: index {parsed.digest}")
            return self._descend(root, child, platform, depth + 1, parsed.digest,
                                 child.platform or chosen_platform)
        raise UnknownMediaTypeError(f"{self.label}: {descriptor.digest}: schema1 manifests are "
                                    "not supported in OCI layouts")

    def walk_images(self) -> Iterator[Chosen]:
        """Every image manifest reachable from the roots (every platform)."""
        for root in self.roots():
            yield from self._walk(root, root, 0, None, root.platform)

    def _walk(self, root: Descriptor, descriptor: Descriptor, depth: int,
              index_digest: Digest | None, plat: Platform | None) -> Iterator[Chosen]:
        if depth > _MAX_DEPTH or not mt.is_manifest(descriptor.media_type):
            return
        try:
            parsed = self.manifest(descriptor)
        except MissingBlobError:
            if depth == 0:
                raise
            return  # a platform whose blobs were not saved (containerd image store)
        if isinstance(parsed, ImageManifest):
            yield Chosen(root, parsed, index_digest, plat)
        elif isinstance(parsed, ManifestIndex):
            for child in parsed.manifests:
                yield from self._walk(root, child, depth + 1, parsed.digest, child.platform)

    # ---------------------------------------------------------------- images
    def image(self, chosen: Chosen, reference: str, name: str | None,
              wanted: Platform | str | None = None) -> Image:
        """The :class:`Image` of a chosen manifest: config verified, layers checked.
        ``wanted`` is the platform asked for (a warning if a lone image has another)."""
        manifest = chosen.manifest
        config = load_config(self.tree, blob_name(manifest.config.digest), manifest.config)
        check_layer_count(config, manifest.layers, f"{self.label}: manifest {manifest.digest}")
        history = config.layer_history()
        layers, warnings = [], []
        warnings.append(platform_warning(config, wanted))
        for descriptor, diff_id, step in zip(manifest.layers, config.diff_ids, history):
            layer, warning = make_layer(self.tree, blob_name(descriptor.digest), descriptor,
                                        diff_id, step)
            layers.append(layer)
            if warning:
                warnings.append(warning)
        return Image(reference=reference, manifest=manifest, config=config, layers=tuple(layers),
                     name=name, index_digest=chosen.index_digest,
                     platform=chosen.platform,
                     warnings=tuple(w for w in warnings if w))

    def summaries(self) -> list[ImageSummary]:
        """One :class:`ImageSummary` per root of ``index.json``."""
        out = []
        for n, root in enumerate(self.roots()):
            platforms: tuple[str, ...] = ()
            if mt.is_index(root.media_type):
                index = self.manifest(root)
                assert isinstance(index, ManifestIndex)
                platforms = tuple(str(d.platform) for d in index.manifests if d.platform)
            elif root.platform is not None:
                platforms = (str(root.platform),)
            else:
                manifest = self.manifest(root)
                if isinstance(manifest, ImageManifest):
                    config = load_config(self.tree, blob_name(manifest.config.digest), manifest.config)
                    platforms = (str(config.platform),)
            name = root.annotations.get(CONTAINERD_NAME) or root.ref_name
            out.append(ImageSummary(self._root_reference(n, root), name, root.digest,
                                    root.media_type, platforms))
        return out


def open_layout_image(ref: LayoutReference, platform: Platform | str | None = None) -> Image:
    """Open one image of an OCI layout directory or archive (see the module docstring)."""
    reader = LayoutReader(open_tree(ref.path, ref.archive), ref.transport)
    roots = reader.select_root(ref.ref)
    chosen = reader.choose(roots, platform)
    name = chosen.root.annotations.get(CONTAINERD_NAME) or chosen.root.ref_name
    return reader.image(chosen, str(ref), name, platform)


def open_layout_all(ref: LayoutReference) -> Image | ImageIndex:
    """Everything the reference names: an :class:`ImageIndex` with every platform's image
    when its root is an index, else the one image. A platform whose blobs the layout
    lacks (a containerd export of one platform) is an error: the index cannot be copied
    whole; open one platform with :func:`open_layout_image` instead."""
    reader = LayoutReader(open_tree(ref.path, ref.archive), ref.transport)
    roots = reader.select_root(ref.ref)
    if len(roots) != 1 or not mt.is_index(roots[0].media_type):
        return open_layout_image(ref)
    root = roots[0]
    name = root.annotations.get(CONTAINERD_NAME) or root.ref_name

    def build(descriptor: Descriptor, depth: int) -> Image | ImageIndex:
        if depth > _MAX_DEPTH:
            raise CorruptArchiveError(f"{reader.label}: image indexes nested deeper than {_MAX_DEPTH}")
        parsed = reader.manifest(descriptor)
        if isinstance(parsed, ManifestIndex):
            return ImageIndex(str(ref), parsed, tuple(
                build_child(parsed, child, depth) for child in parsed.manifests), name)
        raise UnknownMediaTypeError(f"{reader.label}: {descriptor.digest}: not an index")

    def build_child(index: ManifestIndex, child: Descriptor, depth: int) -> Image | ImageIndex:
        if mt.is_index(child.media_type):
            return build(child, depth + 1)
        manifest = reader.manifest(child)
        if not isinstance(manifest, ImageManifest):
            raise UnknownMediaTypeError(f"{reader.label}: {child.digest}: schema1 manifests are "
                                        "not supported in OCI layouts")
        return reader.image(Chosen(root, manifest, index.digest, child.platform), str(ref), name)

    return build(root, 0)


def list_layout_images(ref: LayoutReference) -> list[ImageSummary]:
    """The roots of a layout's ``index.json``, each with the reference that opens it."""
    reader = LayoutReader(open_tree(ref.path, ref.archive), ref.transport)
    return reader.summaries()
