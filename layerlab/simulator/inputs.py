"""The simulator's inputs: layers, the network, the registry.

All values are plain frozen dataclasses; sizes are bytes, rates bytes per second, times
seconds, but every constructor also takes readable strings (``"100 MB/s"``, ``"20 ms"``,
``"780 MB"``) through :meth:`Network.of` / :meth:`RegistrySettings.of` or the
``simulate(...)`` keyword arguments.

:func:`layers_from_image` turns an :class:`~layerlab.model.Image` into :class:`LayerSpec`
values; it reads samples of uncompressed layers to estimate how well they compress (the
only place the simulator touches real bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..units import parse_duration, parse_rate, parse_size
from .machine import DEFAULT_MACHINE, REFERENCE_KEY, MachineProfile

if TYPE_CHECKING:
    from ..model import Image

__all__ = ["LayerSpec", "Network", "RegistrySettings", "layers_from_image", "layer_specs",
           "split_layers", "commit_bytes"]

INF = math.inf

LOCAL_WRITEBACK_EVERY = 8 << 20  # layerlab.registry.backend.WRITEBACK_EVERY (tested equal)


def commit_bytes(size: int, writeback_every: int) -> int:
    """The bytes of a ``size``-byte blob still to flush when it is committed, when the
    registry started writing it back every ``writeback_every`` bytes received (the
    last stretch, still in flight or not started; 0: all of it)."""
    if writeback_every <= 0 or size <= writeback_every:
        return size
    return (size - 1) % writeback_every + 1


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the simulator sees it.

    * ``uncompressed_size``: bytes of the layer tar;
    * ``compressibility``: its ratio (uncompressed / compressed) under gzip level 6
      (zlib); other compressions scale from it by the machine's typical ratios, unless
      ``ratios`` gives a measured ratio for that compression key (``"isal-1"``);
    * ``size``: the stored size when the source already holds the layer compressed (then
      the pusher sends it as is, with no compression); ``None`` for an uncompressed tar;
    * ``name``: the label in events (a short digest, ``"layer 3"``...);
    * ``diff_id``: the layer's diff_id when known (to match a real push's events);
    * ``files``: entries of the layer tar (0: not counted), for a client that pays per
      file (:attr:`~layerlab.simulator.MachineProfile.client_file_cost`).
    """

    uncompressed_size: int
    compressibility: float = 2.41
    size: int | None = None
    name: str = ""
    created_by: str = ""
    ratios: Mapping[str, float] = field(default_factory=dict)
    diff_id: str | None = None
    files: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "ratios", MappingProxyType(dict(self.ratios)))
        if self.uncompressed_size < 0 or (self.size is not None and self.size < 0):
            raise ValueError("layer sizes cannot be negative")
        if self.compressibility < 1.0:
            object.__setattr__(self, "compressibility", 1.0)

    @property
    def precompressed(self) -> bool:
        """True when the source holds the layer compressed (no compression at push)."""
        return self.size is not None

    def ratio_for(self, key: str, machine: MachineProfile = DEFAULT_MACHINE) -> float:
        """The ratio this layer gets under compression ``key``.

        A measured ``ratios[key]`` wins; otherwise ``1 + (c - 1) * (r_key - 1) / (r_ref - 1)``
        with ``c`` the compressibility and ``r`` the machine's typical ratios of ``key``
        and of the reference (zlib level 6): incompressible data stays at 1, typical data
        gets the typical ratio.
        """
        if key in self.ratios:
            return max(1.0, float(self.ratios[key]))
        if key == REFERENCE_KEY:
            return self.compressibility
        ref = machine.typical_ratio(REFERENCE_KEY)
        typical = machine.typical_ratio(key)
        if ref <= 1.0:
            return typical
        return max(1.0, 1.0 + (self.compressibility - 1.0) * (typical - 1.0) / (ref - 1.0))

    def compressed_size(self, key: str, machine: MachineProfile = DEFAULT_MACHINE) -> int:
        """Bytes sent for this layer under compression ``key`` (``size`` if precompressed)."""
        if self.size is not None:
            return self.size
        return int(round(self.uncompressed_size / self.ratio_for(key, machine)))

    def with_options(self, **changes: Any) -> "LayerSpec":
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "uncompressed_size": self.uncompressed_size,
                "compressibility": self.compressibility, "size": self.size,
                "created_by": self.created_by, "ratios": dict(self.ratios),
                "diff_id": self.diff_id, "files": self.files}


@dataclass(frozen=True)
class Network:
    """The link between client and registry.

    * ``bandwidth``: bytes/s shared by all concurrent transfers (processor sharing);
      ``inf`` for no limit;
    * ``rtt``: seconds of round trip each request waits for;
    * ``per_connection``: bytes/s one transfer can reach at most (``inf``: no cap).
    """

    bandwidth: float = INF
    rtt: float = 0.0
    per_connection: float = INF

    @classmethod
    def of(cls, bandwidth: str | float | None = None, rtt: str | float | None = None,
           per_connection: str | float | None = None) -> "Network":
        """From readable values: ``Network.of("100 MB/s", "20 ms")``; ``None`` = no limit."""
        return cls(bandwidth=INF if bandwidth is None else parse_rate(bandwidth),
                   rtt=0.0 if rtt is None else parse_duration(rtt),
                   per_connection=INF if per_connection is None else parse_rate(per_connection))

    def to_json(self) -> dict[str, Any]:
        return {"bandwidth": _finite(self.bandwidth), "rtt": self.rtt,
                "per_connection": _finite(self.per_connection)}


@dataclass(frozen=True)
class RegistrySettings:
    """How the registry (and a proxy in front of it) handles a push.

    Figures left ``None`` come from the machine profile (its local registry).

    * ``cache``: the blob-descriptor cache: storage lookups cost ``cached_lookup_cost``
      instead of ``lookup_cost``;
    * ``verify``: ``"stream"`` hashes the body as it arrives; ``"reread"`` reads the
      uploaded file again on commit, at ``reread_rate``;
    * ``request_overhead``: fixed server time per request;
    * ``ingest_rate``: bytes/s one upload is received, hashed and written at;
      ``cores`` requests are processed at once at most (``inf``: unlimited);
    * ``blob_overhead``: the registry's own wait in each blob commit (creating, moving
      and linking its files), seconds, concurrent commits overlapping (for layerlab's
      registry, which stores one blob at a time, the machine profile's
      ``registry_blob_overhead`` instead);
    * ``mount_overhead``: the registry's own wait in a cross-repository mount (linking
      the blob into the repository), seconds;
    * ``move_rate``: bytes/s of moving a committed blob into backend storage (``None``:
      the machine profile's ``registry_commit_rate``, by default free: a rename);
    * ``writeback_every``: the registry starts writing a blob back to disk every this
      many bytes it receives, so its commit flushes only the last stretch
      (:func:`commit_bytes`; layerlab's registry: 8 MiB); 0: the whole blob;
    * ``colocated``: the registry runs in the pushing Python process (layerlab's
      ``LocalRegistry``): its work takes the client's cores and the interpreter lock,
      and it handles bodiless requests one at a time;
    * ``same_machine``: the registry is a process of its own on the client's machine
      (Distribution next to the client): receiving a body takes one of the client's
      cores, but requests are answered concurrently, with no lock;
    * ``serial_requests``: requests without a body are handled one at a time, in
      arrival order, however many the client sends at once (dockerd pushing to
      Distribution on one machine); the client's own time per request
      (``client_request_overhead``) still overlaps between concurrent requests
      (measured: a 48-layer re-push from 5 uploads at once takes 73 % of its time one
      upload at a time, 147 vs 201 ms);
    * ``serial_throttle``: the bandwidth limit is enforced by the registry itself, in the
      loop that receives bodies (layerlab's ``LocalRegistry`` emulating a WAN): the time
      the loop spends on each byte adds to the limit's, so the link carries
      ``1 / (1/bandwidth + 1/registry_loop_rate)`` in all (machine profile);
    * ``proxy_buffer``: a proxy (nginx) in front buffers every request body completely
      before forwarding it; bodies above this many bytes go to its disk, forwarded at
      ``proxy_disk_rate``; smaller ones from memory at ``proxy_memory_rate``.
      ``None``: no proxy.
    """

    cache: bool = True
    verify: str = "stream"
    request_overhead: float | None = None
    lookup_cost: float | None = None
    cached_lookup_cost: float | None = None
    ingest_rate: float | None = None
    reread_rate: float | None = None
    move_rate: float | None = None
    blob_overhead: float = 0.0
    mount_overhead: float = 0.0
    cores: float | None = None
    colocated: bool = False
    same_machine: bool = False
    serial_requests: bool = False
    serial_throttle: bool = False
    writeback_every: int = 0
    proxy_buffer: int | None = None
    proxy_disk_rate: float = 100e6
    proxy_memory_rate: float = INF

    def __post_init__(self) -> None:
        if self.verify not in ("stream", "reread"):
            raise ValueError(f"verify must be 'stream' or 'reread', not {self.verify!r}")

    @classmethod
    def of(cls, **values: Any) -> "RegistrySettings":
        """From readable values: ``RegistrySettings.of(ingest_rate="300 MB/s",
        request_overhead="2 ms", proxy_buffer="16 KiB")``."""
        rates = ("ingest_rate", "reread_rate", "move_rate", "proxy_disk_rate",
                 "proxy_memory_rate")
        times = ("request_overhead", "lookup_cost", "cached_lookup_cost", "blob_overhead",
                 "mount_overhead")
        out: dict[str, Any] = {}
        for key, value in values.items():
            if value is not None and key in rates:
                value = parse_rate(value)
            elif value is not None and key in times:
                value = parse_duration(value)
            elif value is not None and key == "proxy_buffer":
                value = parse_size(value)
            out[key] = value
        return cls(**out)

    @classmethod
    def local(cls, cache: bool = True, verify: str = "stream") -> "RegistrySettings":
        """layerlab's :class:`~layerlab.registry.LocalRegistry` running in the pushing
        process, its bandwidth knob emulating the link (figures from the machine
        profile): ``colocated``, ``serial_throttle`` and its ``writeback_every``."""
        return cls(cache=cache, verify=verify, colocated=True,
                   serial_throttle=True, writeback_every=LOCAL_WRITEBACK_EVERY)

    def with_options(self, **changes: Any) -> "RegistrySettings":
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {k: _finite(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else value


def layer_specs(sizes: Iterable[int | str], compressibility: float | Sequence[float] = 2.41,
                names: Sequence[str] | None = None) -> tuple[LayerSpec, ...]:
    """Layer specs from a plain list of uncompressed sizes (``[120e6, "40 MB"]``)."""
    sizes = [parse_size(s) for s in sizes]
    ratios = (list(compressibility) if isinstance(compressibility, Sequence)
              else [compressibility] * len(sizes))
    if len(ratios) != len(sizes):
        raise ValueError("one compressibility per layer, or a single one for all")
    return tuple(LayerSpec(size, ratio, name=(names[i] if names else f"layer {i}"))
                 for i, (size, ratio) in enumerate(zip(sizes, ratios)))


def split_layers(total: int | str, weights: Sequence[float], compressibility: float = 2.41,
                 prefix: str = "layer") -> tuple[LayerSpec, ...]:
    """``total`` uncompressed bytes split into layers in proportion to ``weights``."""
    total = parse_size(total)
    scale = total / sum(weights)
    sizes = [int(round(w * scale)) for w in weights]
    sizes[-1] += total - sum(sizes)
    return tuple(LayerSpec(s, compressibility, name=f"{prefix} {i}") for i, s in enumerate(sizes))


# -- from a real image -------------------------------------------------------------------
def _sample(layer: Any, sample_bytes: int, pieces: int = 8) -> bytes:
    """Up to ``sample_bytes`` of a layer's uncompressed bytes, in ``pieces`` spread over it."""
    total = layer.uncompressed_size or layer.size
    piece = max(1, sample_bytes // pieces)
    if total <= sample_bytes:
        offsets = [0]
        piece = total
    else:
        stride = total // pieces
        offsets = [i * stride for i in range(pieces)]
    chunks: list[bytes] = []
    with layer.open_uncompressed(verify=False) as stream:
        position = 0
        for offset in offsets:
            skip = offset - position
            while skip > 0:
                got = stream.read(min(skip, 1 << 20))
                if not got:
                    break
                skip -= len(got)
                position += len(got)
            data = stream.read(piece)
            position += len(data)
            chunks.append(data)
    return b"".join(chunks)


def measure_ratio(data: bytes, key: str) -> float:
    """The ratio ``len(data) / len(compressed)`` of ``data`` under compression ``key``."""
    engine, _, level_text = key.rpartition("-")
    level = int(level_text)
    if not data:
        return 1.0
    if engine == "isal":
        from isal import isal_zlib

        out = isal_zlib.compress(data, level)
    elif engine == "zstd":
        import zstandard

        out = zstandard.ZstdCompressor(level=level).compress(data)
    elif engine in ("zlib", "gzip"):
        import zlib

        out = zlib.compress(data, level)
    elif engine == "zlib-ng":
        from zlib_ng import zlib_ng  # type: ignore[import-not-found]

        out = zlib_ng.compress(data, level)
    else:
        raise ValueError(f"unknown compression engine {engine!r}")
    return max(1.0, len(data) / max(1, len(out)))


def layers_from_image(image: "Image", sample_bytes: int = 4 << 20,
                      keys: Sequence[str] = (), machine: MachineProfile = DEFAULT_MACHINE
                      ) -> tuple[LayerSpec, ...]:
    """:class:`LayerSpec` values for an image's layers.

    Compressed layers keep their stored ``size`` (the pusher sends them as they are) and
    their ratio. For uncompressed layers (a ``docker save`` archive) the compressibility is
    estimated by compressing ``sample_bytes`` spread over the layer with zlib level 6, and
    measured too for each compression key in ``keys`` (e.g. the profile's ``"isal-1"``).
    When ``machine`` has a per-file cost (``client_file_cost``), the entries of each
    uncompressed layer are counted too (a header scan), into ``files``.
    """
    specs = []
    for index, layer in enumerate(image.layers):
        name = str(layer.digest)
        diff_id = str(layer.diff_id) if layer.diff_id else None
        uncompressed = layer.uncompressed_size
        if layer.compression != "none":
            size = layer.size
            if uncompressed is None:
                uncompressed = int(round(size * machine.typical_ratio(REFERENCE_KEY)))
            ratio = uncompressed / size if size else 1.0
            specs.append(LayerSpec(uncompressed, ratio, size=size, name=name,
                                   created_by=layer.created_by, diff_id=diff_id))
            continue
        uncompressed = uncompressed if uncompressed is not None else layer.size
        sample = _sample(layer, sample_bytes) if uncompressed else b""
        compressibility = measure_ratio(sample, REFERENCE_KEY)
        ratios = {key: measure_ratio(sample, key) for key in keys if key != REFERENCE_KEY}
        files = 0
        if machine.client_file_cost > 0 and uncompressed:
            from ..analysis.scan import scan_layer

            files = len(scan_layer(layer).entries)
        specs.append(LayerSpec(uncompressed, compressibility, name=name,
                               created_by=layer.created_by, ratios=ratios, diff_id=diff_id,
                               files=files))
    return tuple(specs)
