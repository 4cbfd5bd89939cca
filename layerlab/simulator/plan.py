"""The scenario of a simulation and the client's per-layer decisions.

:class:`Scenario` holds every input resolved to numbers; :func:`plan_layers` applies the
profile's dedup rules (check, mount, how to upload) to the registry's known contents,
as layerlab's pusher does (:mod:`layerlab.pusher.engine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..pusher.profiles import PushProfile, get_profile
from .inputs import LayerSpec, Network, RegistrySettings
from .machine import MachineProfile, compression_key

__all__ = ["Scenario", "LayerPlan", "plan_layers", "build_scenario", "resolve_existing",
           "resolve_known", "lookup_requests", "CONFIG_SIZE", "MANIFEST_SIZE"]

CONFIG_SIZE = 2_000
MANIFEST_SIZE = 1_500


@dataclass(frozen=True)
class Scenario:
    """Every input of one simulation, resolved to numbers."""

    layers: tuple[LayerSpec, ...]
    profile: PushProfile
    network: Network
    registry: RegistrySettings
    machine: MachineProfile
    repository: str
    existing: Mapping[str, frozenset[int]]
    known: Mapping[int, str]
    config_present: bool = False
    config_size: int = CONFIG_SIZE
    manifest_size: int = MANIFEST_SIZE

    @property
    def workers(self) -> int:
        """Layers in flight: the profile's concurrency, or (0) sized to the machine as the
        pusher sizes it (at least 4, two per core)."""
        if self.profile.concurrency > 0:
            return self.profile.concurrency
        return max(4, 2 * self.machine.cores)

    @property
    def threads(self) -> int:
        """Block-compression threads (``compress_threads``, 0 = one per core)."""
        return getattr(self.profile, "compress_threads", 1) or self.machine.cores

    @property
    def compression_key(self) -> str:
        p = self.profile
        return compression_key(p.compression, p.engine, p.level)

    @property
    def target(self) -> frozenset[int]:
        return self.existing.get(self.repository, frozenset())


@dataclass(frozen=True)
class LayerPlan:
    """What the client will do for one layer (the registry's answers follow from
    ``existing``, so they are known before the run)."""

    index: int
    check: bool
    exists: bool
    stale: bool  # the cache said "in the target repository", the HEAD said no
    mount_from: str | None
    mounted: bool
    compress: bool  # the pusher compresses this layer (it is not stored compressed)
    small: bool  # compressed in memory, one request
    bytes_in: int
    bytes_out: int

    @property
    def upload(self) -> bool:
        return not self.exists and not self.mounted

    @property
    def outcome(self) -> str:
        return "exists" if self.exists else "mounted" if self.mounted else "pushed"


# -- inputs -----------------------------------------------------------------------------
def _index_set(layers: Sequence[LayerSpec], items: Any) -> frozenset[int]:
    if items is None or items == "none":
        return frozenset()
    if items == "all":
        return frozenset(range(len(layers)))
    names = {spec.name: i for i, spec in enumerate(layers)}
    out = set()
    for item in items:
        if isinstance(item, int):
            if not 0 <= item < len(layers):
                raise ValueError(f"no layer {item} (the image has {len(layers)})")
            out.add(item)
        elif item in names:
            out.add(names[item])
        else:
            raise ValueError(f"no layer named {item!r}")
    return frozenset(out)


def resolve_existing(layers: Sequence[LayerSpec], repository: str,
                     existing: Any) -> dict[str, frozenset[int]]:
    """``existing`` as repo -> layer indexes. Accepts ``None``/``"none"``, ``"all"``, a
    collection of layer indexes or names (in the target repository), or a mapping of
    repository -> such a collection."""
    if isinstance(existing, Mapping):
        return {repo: _index_set(layers, items) for repo, items in existing.items()}
    return {repository: _index_set(layers, existing)}


def resolve_known(layers: Sequence[LayerSpec], repository: str,
                  existing: Mapping[str, frozenset[int]], known: Any) -> dict[int, str]:
    """Which layers the client's digest cache knows, and in which repository.

    ``None``/``"existing"``: every layer the registry holds (the client pushed or pulled
    it before), located in the target repository when it is there; ``"none"``: a fresh
    client (after ``docker load``, on a new CI runner); ``"all"``: every layer, in the
    target repository; a collection of indexes/names (target repository); or a mapping
    index/name -> repository."""
    if known is None or known == "existing":
        out: dict[int, str] = {}
        for repo in sorted(existing, key=lambda r: (r != repository, r)):
            for i in sorted(existing[repo]):
                out.setdefault(i, repo)
        return out
    if isinstance(known, Mapping):
        result = {}
        for key, repo in known.items():
            (i,) = _index_set(layers, [key])
            result[i] = repo
        return result
    return {i: repository for i in sorted(_index_set(layers, known))}


def lookup_requests(sc: Scenario) -> int:
    """Requests the registry lookup makes before the layers (0 when it does not run):
    the destination tag's manifest (and config, when found), then the tag list (and
    another tag's manifest and config) while layers remain unknown."""
    p = sc.profile
    if not p.registry_lookup:
        return 0
    cache = sc.known if p.use_cache else {}
    unresolved = [i for i, spec in enumerate(sc.layers) if not spec.precompressed and i not in cache]
    if not unresolved:
        return 0
    if sc.config_present:  # the destination tag holds this image: manifest + config
        return 2
    if not sc.target:  # manifest 404, tag list 404
        return 2
    # manifest 404, tag list, another tag's manifest and config
    return 4


def plan_layers(sc: Scenario) -> list[LayerPlan]:
    """Decide per layer: check? exists? mount? how to upload? (the profile's rules)."""
    p = sc.profile
    key = sc.compression_key
    target = sc.target
    cache = sc.known if p.use_cache else {}
    looked_up = lookup_requests(sc) > 0
    small_limit = getattr(p, "small_blob_limit", 0)
    plans = []
    for i, spec in enumerate(sc.layers):
        cached_repo = cache.get(i)
        candidate = (cached_repo is not None or spec.precompressed
                     or (looked_up and i in target))
        if p.check_existing == "never":
            check = False
        elif p.check_existing == "always":
            check = candidate
        else:  # cached: only digests from the local cache are checked
            check = cached_repo is not None
        exists = check and i in target
        stale = check and not exists and cached_repo == sc.repository
        mount_from = None
        if not exists and p.mount and cached_repo is not None and cached_repo != sc.repository:
            mount_from = cached_repo
        mounted = mount_from is not None and i in sc.existing.get(mount_from, frozenset())
        compress = not spec.precompressed
        small = (compress and not p.temp_file and bool(small_limit)
                 and spec.uncompressed_size <= small_limit)
        upload = not exists and not mounted
        plans.append(LayerPlan(
            i, check, exists, stale, mount_from, mounted, compress, small,
            spec.uncompressed_size if (upload and compress) else 0,
            spec.compressed_size(key, sc.machine) if upload else 0))
    return plans


def build_scenario(layers: Sequence[LayerSpec], profile: str | PushProfile,
                   network: Network, registry: RegistrySettings, machine: MachineProfile,
                   repository: str, existing: Any, known: Any,
                   config_present: bool | None = None) -> Scenario:
    """A :class:`Scenario` from loosely typed inputs (see :func:`resolve_existing`)."""
    layers = tuple(layers)
    prof = get_profile(profile)
    held = resolve_existing(layers, repository, existing)
    knows = resolve_known(layers, repository, held, known)
    if config_present is None:  # a full re-push finds its config (and manifest) too
        config_present = bool(layers) and held.get(repository, frozenset()) >= set(range(len(layers)))
    return Scenario(layers, prof, network, registry, machine, repository, held, knows,
                    config_present)
