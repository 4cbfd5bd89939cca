"""The pull-cost model: how long a node takes to pull an image, and which step dominates.

``simulate_pull(image, node=..., network=..., profile=..., machine=..., files_read=...)``
turns a pull into steps on shared resources and runs them with the push model's
discrete-event engine (:mod:`.engine`: the link shared equally by concurrent downloads,
max-min fair). It is a pure function of its arguments: given :class:`PullLayer` values
it reads nothing; given an :class:`~layerlab.model.Image` it reads the manifest's sizes
(and, for lazy layers with ``files_read``, the layers' tar entries: :func:`pull_layers`).

The flow, for every client (:class:`PullProfile`):

0. **start** - the client's fixed cost (a process starting, reading its policy...);
1. **manifest** (after a ``GET /v2/`` ping for clients that ask first), then **config** - one GET each, one after the other (every client
   reads the config, even on a warm node);
2. **download** - the layers not on the node (:func:`layer_plan`), in manifest order,
   ``max_concurrent_downloads`` at a time: a GET (a round trip), then the body, its bytes
   on the shared link (``Network.bandwidth``, at most ``per_connection`` each), hashed
   (sha256 of the stored bytes), written to disk and, with ``fsync``, flushed (**sync**);
   a client with ``byte_cost`` spends that many seconds per byte on its own work, for
   all its streams together (its measured pace: HTTP reading, copying, bookkeeping);
3. **extract** - clients that unpack (Docker, containerd) do it in layer order, each
   layer once it is downloaded and the layer below it is extracted: reading the
   temporary file back, decompressing (``MachineProfile.decompress_speed``: gzip vs
   zstd), hashing the uncompressed tar (the diff_id) and writing the files; seconds =
   ``max(cpu, disk)`` with ``cpu = U/decompress + U/sha256`` and
   ``disk = (S + U)/disk_rate`` for a layer of S stored and U uncompressed bytes (the
   steps are pipelined; their CPU is not shared with the downloads - a simplification);
4. **lazy** layers (eStargz, zstd:chunked) with a lazy client and a ``files_read`` list:
   the footer and the table of contents (**toc**), then only the ranges of the files
   read (**fetch**), ``ranges_per_request`` ranges per GET; they are decompressed, not
   extracted. Without a TOC (no per-file offsets) a file's range is its size divided by
   the layer's ratio (stored / uncompressed).

What a warm node already has (:class:`Node`) and how each client decides
(:func:`layer_plan`): ``blob`` clients (skopeo, ``layerlab copy`` into an OCI layout)
skip a layer whose stored digest is in the destination; ``chain`` clients (Docker,
containerd) skip the download when the digest is known and the extract when the
layer's chain (it and every layer below, by diff_id: Docker's ChainID) is unpacked.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Sequence

from ..units import parse_duration, parse_rate
from .engine import Component, Parallel, Record, Step, run
from .inputs import Network
from .machine import MachineProfile, load_machine
from .pull_inputs import (ESTARGZ_FOOTER, MANIFEST_BYTES, PING_BYTES, PULL_PROFILES,
                          TOC_BYTES_PER_ENTRY, ZSTD_CHUNKED_FOOTER, Node, PullFile, PullLayer,
                          PullProfile, _is_specs, _normal, chain_ids, get_pull_profile,
                          pull_layers)

if TYPE_CHECKING:
    from ..model import Image

__all__ = ["PullFile", "PullLayer", "PullProfile", "PULL_PROFILES", "Node", "LayerPlan",
           "get_pull_profile", "pull_layers", "layer_plan", "chain_ids", "lazy_bytes",
           "simulate_pull", "ESTARGZ_FOOTER", "ZSTD_CHUNKED_FOOTER", "TOC_BYTES_PER_ENTRY",
           "MANIFEST_BYTES", "PING_BYTES"]

# -- the plan ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerPlan:
    """What the client does with one layer: ``download`` it (whole), ``extract`` it,
    fetch it ``lazy`` (``fetch_bytes`` in ``fetch_ranges`` ranges after ``toc_bytes``),
    or nothing (``outcome`` ``present``)."""

    index: int
    download: bool
    extract: bool
    lazy: bool = False
    toc_bytes: int = 0
    fetch_bytes: int = 0
    fetch_ranges: int = 0
    fetch_uncompressed: int = 0
    files_fetched: int = 0
    files_reused: int = 0

    @property
    def outcome(self) -> str:
        """``lazy``, ``downloaded``, ``unpacked`` (its blob was there) or ``present``."""
        if self.lazy:
            return "lazy"
        if self.download:
            return "downloaded"
        return "unpacked" if self.extract else "present"


def lazy_bytes(layer: PullLayer, files_read: Iterable[str], node_files: Iterable[str] = (),
               ) -> tuple[int, int, int, int, int, int]:
    """``(toc_bytes, fetch_bytes, ranges, uncompressed, files_fetched, files_reused)`` of a
    lazy pull of ``layer`` when start-up reads ``files_read``: the footer and TOC, then a
    range per file read that the layer holds and ``node_files`` does not (a file's
    ``compressed`` size, else ``size * layer.size / layer.uncompressed_size``, at least 1
    byte for a non-empty file)."""
    footer = layer.footer_size if layer.footer_size is not None else (
        ESTARGZ_FOOTER if layer.lazy_format == "estargz" else ZSTD_CHUNKED_FOOTER)
    toc = layer.toc_size if layer.toc_size is not None else TOC_BYTES_PER_ENTRY * len(layer.files)
    read = {_normal(p) for p in files_read}
    held = {_normal(p) for p in node_files}
    ratio = layer.size / layer.uncompressed_size if layer.uncompressed_size else 1.0
    fetch = ranges = uncompressed = fetched = reused = 0
    for f in layer.files:
        if f.path not in read:
            continue
        if f.path in held:
            reused += 1
            continue
        fetched += 1
        if f.size <= 0:
            continue
        ranges += 1
        uncompressed += f.size
        fetch += f.compressed if f.compressed is not None else max(1, int(round(f.size * ratio)))
    return footer + toc, fetch, ranges, uncompressed, fetched, reused


def _visible(layers: Sequence[PullLayer], files_read: Iterable[str]) -> list[set[str]]:
    """For each layer, the paths read that start-up finds in it (the topmost layer holding
    a path provides it)."""
    remaining = {_normal(p) for p in files_read}
    out: list[set[str]] = [set() for _ in layers]
    for i in range(len(layers) - 1, -1, -1):
        here = {f.path for f in layers[i].files} & remaining
        out[i] = here
        remaining -= here
    return out


def layer_plan(layers: Sequence[PullLayer], node: Node, profile: PullProfile,
               files_read: Iterable[str] | None = None) -> list[LayerPlan]:
    """What ``profile`` does with each layer on ``node`` (see the module docstring):

    * ``blob`` clients download a layer iff its digest is not in ``node.blobs`` or
      ``node.layers``; they never extract;
    * ``chain`` and ``content`` clients: the layer's chain is unpacked when its ChainID
      is in ``node.chains`` or every layer up to it is in ``node.layers`` (by digest or
      diff_id); the digest is known when in ``node.blobs``/``node.layers``. ``chain``
      (Docker) downloads unless both hold (a chain present under an unknown digest is
      downloaded, then found registered: no extract); ``content`` (containerd)
      downloads unless the digest is known, and extracts unless the chain is unpacked;
    * a lazy client with ``files_read`` fetches eStargz / zstd:chunked layers lazily
      (nothing when its chain is unpacked).
    """
    chains = chain_ids(layers)
    read = list(files_read) if files_read is not None else None
    visible = _visible(layers, read) if read is not None else [set() for _ in layers]
    plans: list[LayerPlan] = []
    prefix_held = True
    for i, layer in enumerate(layers):
        names = {layer.digest, layer.diff_id} - {None, ""}
        held_layer = bool(names & node.layers)
        prefix_held = prefix_held and held_layer
        blob = layer.digest in node.blobs or (layer.digest in node.layers if layer.digest else False)
        if profile.dedup == "blob":
            plans.append(LayerPlan(i, download=not blob, extract=False))
            continue
        unpacked = prefix_held or chains[i] in node.chains
        if profile.lazy and read is not None and layer.lazy_format and not unpacked:
            toc, fetch, ranges, unc, fetched, reused = lazy_bytes(
                layer, visible[i], node.files if profile.file_dedup else ())
            plans.append(LayerPlan(i, download=False, extract=False, lazy=True, toc_bytes=toc,
                                   fetch_bytes=fetch, fetch_ranges=ranges,
                                   fetch_uncompressed=unc, files_fetched=fetched,
                                   files_reused=reused))
            continue
        if profile.dedup == "content":  # the content store and the snapshots apart
            plans.append(LayerPlan(i, download=not blob,
                                   extract=profile.unpack and not unpacked))
            continue
        present = blob and unpacked
        plans.append(LayerPlan(i, download=not present,
                               extract=profile.unpack and not unpacked))
    return plans


# -- the process -------------------------------------------------------------------------
class _Costs:
    def __init__(self, network: Network, machine: MachineProfile, profile: PullProfile) -> None:
        self.network, self.machine, self.profile = network, machine, profile

    def request(self, nbytes: int, phase: str, layer: str, detail: str,
                work: tuple[Component, ...] = (), requests: int = 1, free: int = 0) -> Step:
        """One GET: a round trip plus the per-request costs (delay), then its answer's
        bytes on the link with ``work`` pipelined; ``free`` of them pass the link at once
        (a token bucket's burst), the client's work still paces them."""
        m, p = self.machine, self.profile
        delay = requests * (self.network.rtt + m.registry_request_overhead
                            + m.client_request_overhead + p.request_cost)
        on_link = max(0, nbytes - free)
        components = (Component(("net",), float(on_link), self.network.per_connection),) \
            if on_link else ()
        if nbytes and p.byte_cost > 0:
            components += (Component(("client",), nbytes * p.byte_cost),)
        return Step(phase, layer, components + tuple(work), delay=delay, bytes=nbytes,
                    requests=requests, detail=detail)


def _download(costs: _Costs, layer: PullLayer, plan: LayerPlan, free: int = 0) -> Iterator[Step]:
    m, p = costs.machine, costs.profile
    name = layer.key
    if plan.lazy:
        located = layer.footer_size == 0  # an annotation says where the TOC is
        yield costs.request(plan.toc_bytes, "toc", name, "TOC" if located else "footer and TOC",
                            requests=1 if located else 2)
        if plan.fetch_ranges:
            requests = math.ceil(plan.fetch_ranges / p.ranges_per_request)
            work = (Component(("cpu",), plan.fetch_uncompressed
                              / m.decompress_speed(layer.compression), 1.0),) \
                if layer.compression != "none" else ()
            yield costs.request(plan.fetch_bytes, "fetch", name,
                                f"{plan.files_fetched} files in {plan.fetch_ranges} ranges",
                                work, requests=requests)
        return
    work: list[Component] = []
    hashing = layer.size / m.sha256_rate if p.verify else 0.0
    written = layer.size
    if p.inline_decompress and layer.uncompressed_size:  # one thread does it all
        u = layer.uncompressed_size
        hashing += u / m.decompress_speed(layer.compression) + u / m.sha256_rate
        written = u
    if hashing > 0:
        work.append(Component(("cpu",), hashing, 1.0))
    if written:
        work.append(Component(("disk",), float(written)))
    yield costs.request(layer.size, "download", name, "GET", tuple(work), free=free)
    if p.fsync and layer.size:
        rate = m.fsync_rate or m.disk_rate
        yield Step("sync", name, (Component(("sync",), layer.size / rate, 1.0),),
                   detail="fsync")


def _worker(costs: _Costs, queue: deque[tuple[PullLayer, LayerPlan]],
            free: Mapping[int, int]) -> Iterator[Step]:
    while queue:
        layer, plan = queue.popleft()
        yield from _download(costs, layer, plan, free.get(plan.index, 0))


def _main(costs: _Costs, layers: Sequence[PullLayer], plans: Sequence[LayerPlan],
          manifest_bytes: int, config_bytes: int, burst: float = 0.0) -> Iterator[Step | Parallel]:
    p = costs.profile
    if p.start_cost > 0:
        yield Step("start", "image", delay=p.start_cost, detail="client start")
    if p.ping:
        yield costs.request(PING_BYTES, "manifest", "image", "GET /v2/")
    yield costs.request(manifest_bytes, "manifest", "image", "GET manifest")
    yield costs.request(config_bytes, "config", "image", "GET config")
    queue = deque((layers[pl.index], pl) for pl in plans if pl.download or pl.lazy)
    workers = min(p.max_concurrent_downloads, len(queue))
    free = _burst_bytes(costs, burst, [pl for _, pl in queue], layers, workers)
    if workers:
        yield Parallel(tuple(_worker(costs, queue, free) for _ in range(workers)))


def _burst_bytes(costs: _Costs, burst: float, queue: Sequence[LayerPlan],
                 layers: Sequence[PullLayer], workers: int) -> dict[int, int]:
    """Bytes of each whole download that pass at once: a link enforced by a token bucket
    on an absolute schedule lets a sender run up to ``burst`` seconds ahead of it, and
    after the link was idle for ``g`` seconds, ``min(burst, g)`` seconds' worth pass at
    once. One download at a time: each starts on a link idle for its request's delay;
    several: only the first wave does, sharing it; the later ones start while the
    others hold the link busy."""
    network = costs.network
    if burst <= 0 or math.isinf(network.bandwidth) or not queue:
        return {}
    m, p = costs.machine, costs.profile
    idle = (network.rtt + m.registry_request_overhead + m.client_request_overhead
            + p.request_cost)
    credit = min(burst, idle) * network.bandwidth
    wave = list(queue) if workers == 1 else list(queue)[:workers]
    share = credit if workers == 1 else credit / len(wave)
    return {pl.index: int(min(share, layers[pl.index].size)) for pl in wave if not pl.lazy}


# -- results -----------------------------------------------------------------------------
def _extract_seconds(layer: PullLayer, profile: PullProfile, machine: MachineProfile) -> float:
    """One layer's extract: ``max(cpu, disk)`` (see the module docstring)."""
    u = layer.uncompressed_size
    cpu = u / machine.decompress_speed(layer.compression) + u / machine.sha256_rate
    disk = ((layer.size if profile.temp_file else 0) + u) / machine.disk_rate
    return max(cpu, disk)


def simulate_pull(
    image: "Image | Sequence[PullLayer]",
    *,
    node: Node | None = None,
    network: Network | None = None,
    bandwidth: str | float | None = None,
    rtt: str | float | None = None,
    profile: str | PullProfile = "docker",
    machine: MachineProfile | str | None = None,
    files_read: Iterable[str] | None = None,
    manifest_bytes: int | None = None,
    config_bytes: int | None = None,
    burst: float = 0.0,
    label: str = "",
) -> "PullResult":
    """Predict a pull of ``image`` (an Image, or :class:`PullLayer` values) by a client
    ``profile`` (a :data:`PULL_PROFILES` name or a :class:`PullProfile`) onto ``node``
    (default cold) over ``network`` (or ``bandwidth``/``rtt``: ``"100 MB/s"``,
    ``"20 ms"``), on ``machine`` (a :class:`MachineProfile`, a path, ``"saved"`` or
    ``None`` for the shipped defaults). ``files_read``: the paths start-up reads (for
    lazy clients and eStargz / zstd:chunked layers). ``burst``: seconds of the link's
    rate a token bucket lets through at once after the link was idle (layerlab's
    ``LocalRegistry`` bandwidth knob: ``layerlab.registry.app.BURST_SECONDS``; a real
    link: 0). With PullLayer inputs the result depends on the arguments only."""
    from .pull_result import build_pull_result

    prof = get_pull_profile(profile)
    mach = load_machine(machine)
    read = list(files_read) if files_read is not None else None
    if _is_specs(image) or (isinstance(image, (list, tuple)) and not image):
        layers = tuple(image)  # type: ignore[arg-type]
        manifest_bytes = MANIFEST_BYTES if manifest_bytes is None else manifest_bytes
        config_bytes = MANIFEST_BYTES if config_bytes is None else config_bytes
    else:
        needs_files = read is not None and prof.lazy
        layers = pull_layers(image, read if needs_files else None, mach)  # type: ignore[arg-type]
        manifest_bytes = image.manifest.size if manifest_bytes is None else manifest_bytes  # type: ignore[union-attr]
        config_bytes = image.config.size if config_bytes is None else config_bytes  # type: ignore[union-attr]
    if network is None:
        network = Network.of(bandwidth, rtt)
    elif bandwidth is not None or rtt is not None:
        network = replace(network,
                          bandwidth=parse_rate(bandwidth) if bandwidth is not None else network.bandwidth,
                          rtt=parse_duration(rtt) if rtt is not None else network.rtt)
    node = node if node is not None else Node.cold()
    plans = layer_plan(layers, node, prof, read)
    costs = _Costs(network, mach, prof)
    capacity = {"net": network.bandwidth, "cpu": mach.cpu, "disk": mach.disk_rate,
                "client": 1.0, "sync": 1.0}
    records = run(_main(costs, layers, plans, manifest_bytes, config_bytes, burst), capacity)
    extracts = _extracts(records, layers, plans, prof, mach)
    inputs = {"profile": prof.to_json(), "network": network.to_json(), "node": node.to_json(),
              "machine": mach.source, "layers": [layer.to_json() for layer in layers],
              "files_read": None if read is None else len(read),
              "manifest_bytes": manifest_bytes, "config_bytes": config_bytes, "burst": burst}
    return build_pull_result(records, extracts, layers, plans, inputs, label=label,
                             profile=prof.name)


@dataclass(frozen=True)
class ExtractRecord:
    """An extract step placed after the engine's run: ``ready`` is when its download
    ended (``after`` that record) or the previous extract ended (``after_extract``)."""

    layer: str
    start: float
    end: float
    bytes_in: int
    after: int | None = None
    after_extract: int | None = None


def _extracts(records: Sequence[Record], layers: Sequence[PullLayer],
              plans: Sequence[LayerPlan], profile: PullProfile, machine: MachineProfile
              ) -> list[ExtractRecord]:
    """Extracts in layer order: each starts when its layer is downloaded (or, when
    nothing was downloaded, when the config arrived) and the previous one is done."""
    if not profile.unpack:
        return []
    config_end = max((r for r in records if r.step.phase == "config"), key=lambda r: r.end,
                     default=None)
    done: dict[str, Record] = {}
    for r in records:
        if r.step.phase in ("download", "sync"):
            done[r.step.layer] = r  # the last step of the layer's download
    out: list[ExtractRecord] = []
    for plan in plans:
        if not plan.extract:
            continue
        layer = layers[plan.index]
        ready_rec = done.get(layer.key) if plan.download else config_end
        ready = ready_rec.end if ready_rec is not None else 0.0
        previous = out[-1].end if out else 0.0
        start = max(ready, previous)
        seconds = _extract_seconds(layer, profile, machine)
        by_prev = bool(out) and previous > ready
        out.append(ExtractRecord(layer.key, start, start + seconds, layer.uncompressed_size,
                                 after=None if by_prev or ready_rec is None else ready_rec.index,
                                 after_extract=len(out) - 1 if by_prev else None))
    return out


from .pull_result import PullResult  # noqa: E402  (the result type, for annotations and re-export)
