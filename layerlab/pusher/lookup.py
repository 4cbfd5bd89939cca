"""Learn compressed digests from the destination registry itself.

A manifest lists compressed layer digests; its config lists the diff_ids in the same
order. Reading the destination tag's manifest and config (then, if needed, other tags
of the repository, and any references the user names) maps a diff_id to a compressed
blob that is probably already there, without compressing anything. Every such
candidate is still confirmed (HEAD, or a mount) before the push relies on it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .. import mediatypes as mt
from ..config import parse_config
from ..digest import Digest
from ..errors import LayerlabError, RegistryError
from ..manifest import ImageManifest, ManifestIndex
from .result import EventLog

__all__ = ["Known", "RegistryLookup"]


@dataclass(frozen=True)
class Known:
    """A compressed blob known for a diff_id and where it was learned.

    ``origin``: ``source`` (the source stores it), ``cache`` (local digest cache),
    ``registry`` (a manifest of the destination registry). ``settings`` is the
    compression key when layerlab produced it. ``repositories`` are repositories of the
    destination registry believed to hold it. ``annotations``: those known to describe
    these very bytes (zstd:chunked's TOC position, ...), which a manifest naming the
    blob carries.
    """

    digest: Digest
    size: int
    media_type: str
    compression: str
    origin: str
    settings: str = ""
    repositories: frozenset[str] = frozenset()
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)


class RegistryLookup:
    """Reads manifests and configs of a registry to map diff_ids to compressed blobs."""

    def __init__(self, client, log: EventLog, max_tags: int = 64, workers: int = 8) -> None:
        self.client = client
        self.log = log
        self.max_tags = max_tags
        self.workers = workers
        self.found: dict[str, dict[str, Known]] = {}
        self.manifests: dict[tuple[str, str], ImageManifest | None] = {}
        self._configs: set[str] = set()

    def missing(self, wanted: Iterable[str]) -> set[str]:
        return {d for d in wanted if d not in self.found}

    def _read(self, repository: str, reference: str) -> list[ImageManifest]:
        """The image manifests behind ``repository:reference`` (index children included)."""
        start = self.log.now()
        try:
            manifest = self.client.get_manifest(repository, reference)
            images: list[ImageManifest] = []
            if isinstance(manifest, ManifestIndex):
                for child in manifest.manifests[:8]:
                    if child.media_type in mt.IMAGE_MANIFESTS:
                        sub = self.client.get_manifest(repository, str(child.digest))
                        if isinstance(sub, ImageManifest):
                            images.append(sub)
            elif isinstance(manifest, ImageManifest):
                images.append(manifest)
            for image in images:
                self._learn(repository, image)
        except RegistryError as exc:
            if exc.status == 404:
                self.log.add("lookup", None, "lookup", start, outcome="missing",
                             detail=f"{repository}:{reference}")
                return []
            raise
        except LayerlabError as exc:  # an unreadable manifest or config: just learn nothing
            self.log.add("lookup", None, "lookup", start, outcome="unreadable",
                         detail=f"{repository}:{reference}: {exc}")
            return []
        self.log.add("lookup", None, "lookup", start, outcome="found",
                     detail=f"{repository}:{reference}")
        return images

    def _learn(self, repository: str, manifest: ImageManifest) -> None:
        config_digest = str(manifest.config.digest)
        key = f"{repository}@{config_digest}"
        if key in self._configs or manifest.config.media_type not in mt.CONFIGS:
            return
        self._configs.add(key)
        raw = self.client.get_blob_bytes(repository, config_digest)
        config = parse_config(raw, manifest.config.media_type, digest=manifest.config.digest)
        if len(config.diff_ids) != len(manifest.layers):
            return
        for diff_id, layer in zip(config.diff_ids, manifest.layers):
            if not mt.is_layer(layer.media_type) or layer.urls:
                continue
            known = self.found.setdefault(str(diff_id), {})
            previous = known.get(str(layer.digest))
            repositories = frozenset({repository}) | (previous.repositories if previous else frozenset())
            known[str(layer.digest)] = Known(layer.digest, layer.size, layer.media_type,
                                             mt.layer_compression(layer.media_type), "registry",
                                             "", repositories, dict(layer.annotations))

    def destination(self, repository: str, tag: str) -> ImageManifest | None:
        """Read the destination tag; return its image manifest (None if absent)."""
        images = self._read(repository, tag)
        found = images[0] if len(images) == 1 else None
        self.manifests[(repository, tag)] = found
        return found

    def other_tags(self, repository: str, skip: str | None, wanted: set[str]) -> None:
        """Read other tags of the repository, a batch at a time, until ``wanted`` is known."""
        if not self.missing(wanted):
            return
        start = self.log.now()
        try:
            tags = self.client.list_tags(repository)
        except RegistryError as exc:
            if exc.status == 404:
                self.log.add("lookup", None, "lookup", start, outcome="missing",
                             detail=f"{repository} tags")
                return
            raise
        self.log.add("lookup", None, "lookup", start, outcome="found",
                     detail=f"{repository}: {len(tags)} tags")
        others = sorted((t for t in tags if t != skip), reverse=True)[: self.max_tags]
        self.references([(repository, t) for t in others], wanted)

    def references(self, refs: list[tuple[str, str]], wanted: set[str]) -> None:
        """Read ``(repository, reference)`` pairs concurrently, stopping early once every
        wanted diff_id is known."""
        if not refs:
            return
        with ThreadPoolExecutor(max(1, min(self.workers, len(refs)))) as pool:
            for i in range(0, len(refs), self.workers):
                if not self.missing(wanted):
                    return
                list(pool.map(lambda ref: self._read(*ref), refs[i:i + self.workers]))

    def candidates(self, diff_id: str) -> list[Known]:
        return list(self.found.get(diff_id, {}).values())
