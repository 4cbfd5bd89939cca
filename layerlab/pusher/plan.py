"""Planning a push: what each layer becomes, and what is already known about it.

For every source layer a :class:`LayerTask` says whether its bytes go as stored (blobs a
layout or a registry keeps compressed) or are compressed on the way, the media type of
the blob, and the candidate compressed blobs (:class:`~layerlab.pusher.lookup.Known`)
learned without compressing: from the source itself, the local digest cache, and the
destination registry's manifests and configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .. import mediatypes as mt
from ..digest import Digest
from ..errors import LayerlabError, PushError
from ..manifest import ImageManifest, Schema1Manifest
from ..model import Image, Layer
from ..reference import RegistryReference
from .cache import DigestCache
from .compress import CompressionSettings
from .lookup import Known, RegistryLookup
from .manifests import choose_format
from .result import EventLog, LayerOutcome

__all__ = ["LayerTask", "NONDISTRIBUTABLE", "plan_layers", "add_cached", "add_from_registry",
           "source_registry", "lookup_reference"]

NONDISTRIBUTABLE = frozenset({mt.DOCKER_LAYER_FOREIGN_GZIP, mt.OCI_LAYER_NONDIST,
                              mt.OCI_LAYER_NONDIST_GZIP, mt.OCI_LAYER_NONDIST_ZSTD})


@dataclass
class LayerTask:
    """One layer to get into the repository (mutable while planning)."""

    index: int
    layer: Layer
    stored: bool                  # push the bytes as the source stores them
    media_type: str               # of the pushed blob
    known: list[Known] = field(default_factory=list)
    outcome: LayerOutcome | None = None

    @property
    def name(self) -> str:
        return str(self.layer.digest)

    @property
    def diff_id(self) -> str | None:
        return str(self.layer.diff_id) if self.layer.diff_id else None


def source_registry(image: Image) -> RegistryReference | None:
    """The registry reference an image was opened from, if any."""
    if not image.reference.startswith("docker://"):
        return None
    from ..reference import parse_reference

    try:
        parsed = parse_reference(image.reference)
    except LayerlabError:
        return None
    return parsed if isinstance(parsed, RegistryReference) else None


def plan_layers(image: Image, manifest_format: str, settings: CompressionSettings,
                dest: RegistryReference) -> tuple[list[LayerTask], str]:
    """The tasks and the manifest media type. Compressed layers go as stored (zstd into a
    schema2 manifest excepted); uncompressed ones are compressed with ``settings``
    (unless its compression is ``none``)."""
    if isinstance(image.manifest, Schema1Manifest) or any(d is None for d in image.diff_ids):
        raise PushError(f"{image.reference}: a schema1 image (no diff_ids) cannot be pushed "
                        "as schema2/OCI; convert it first")
    stored_kinds = [layer.compression for layer in image.layers if layer.compression != "none"]
    media_type = choose_format(image, manifest_format, settings.compression, stored_kinds)
    oci = media_type == mt.OCI_MANIFEST
    origin = source_registry(image)
    same_registry = origin is not None and origin.registry == dest.registry
    tasks = []
    for i, layer in enumerate(image.layers):
        foreign = layer.media_type in NONDISTRIBUTABLE
        stored = layer.compression != "none" or settings.compression == "none" or foreign
        if stored and layer.compression == "zstd" and not oci:
            stored = False  # schema2 cannot carry zstd: recompress with gzip
        compression = layer.compression if stored else settings.blob_compression
        blob_type = layer.media_type if foreign else mt.layer_media_type(oci, compression)
        task = LayerTask(i, layer, stored, blob_type)
        if stored:
            repos = frozenset({origin.repository}) if same_registry and origin else frozenset()
            task.known.append(Known(layer.digest, layer.size, blob_type, compression,
                                    "source", "", repos, layer.annotations))
        tasks.append(task)
    return tasks, media_type


def add_cached(tasks: Sequence[LayerTask], cache: DigestCache | None, registry: str,
               settings: CompressionSettings) -> None:
    """Candidates from the local digest cache (and where it knows them to be)."""
    if cache is None:
        return
    found = cache.lookup([t.diff_id for t in tasks if t.diff_id])
    for task in tasks:
        for blob in found.get(task.diff_id or "", []):
            repos = frozenset(repo for reg, repo in blob.locations if reg == registry)
            if task.stored:
                if blob.digest == task.layer.digest:
                    source = task.known[0]
                    task.known[0] = Known(source.digest, source.size, source.media_type,
                                          source.compression, "cache", blob.settings,
                                          source.repositories | repos, source.annotations)
                continue
            if blob.compression == settings.compression:
                task.known.append(Known(Digest(blob.digest), blob.size, task.media_type,
                                        blob.compression, "cache", blob.settings, repos,
                                        blob.annotations))


def add_from_registry(tasks: Sequence[LayerTask], client: Callable[[], Any], log: EventLog,
                      dest: RegistryReference, settings: CompressionSettings,
                      lookup_refs: Sequence[str] = ()) -> ImageManifest | None:
    """Ask the registry about layers whose compressed form is not known to be there:
    the destination tag, the ``lookup_refs``, then other tags of the repository. Return
    the destination tag's current manifest (None when absent or not looked up).
    ``client`` gives the registry client, called only when there is something to ask."""
    unresolved = {t.diff_id for t in tasks if not t.stored and t.diff_id
                  and not any(k.repositories for k in t.known)}
    if not unresolved:
        return None
    lookup = RegistryLookup(client(), log)
    existing = lookup.destination(dest.repository, dest.reference)
    extra = [lookup_reference(text, dest) for text in lookup_refs]
    lookup.references([(ref.repository, ref.reference) for ref in extra], unresolved)
    if lookup.missing(unresolved):
        lookup.other_tags(dest.repository, dest.tag, unresolved)
    for task in tasks:
        if task.stored or not task.diff_id:
            continue
        for known in lookup.candidates(task.diff_id):
            if known.compression == settings.compression:
                task.known.append(Known(known.digest, known.size, task.media_type,
                                        known.compression, "registry", "", known.repositories,
                                        known.annotations))
    return existing


def lookup_reference(text: str, dest: RegistryReference) -> RegistryReference:
    """A ``--lookup`` entry: ``repo:tag`` in the destination registry, or a full ref."""
    from ..reference import parse_registry_reference

    first = text.split("/")[0]
    if "/" in text and ("." in first or ":" in first or first == "localhost"):
        ref = parse_registry_reference(text)
    else:
        ref = parse_registry_reference(f"{dest.registry}/{text}")
    if ref.registry != dest.registry:
        raise PushError(f"--lookup {text}: not in the destination registry {dest.registry}")
    return ref
