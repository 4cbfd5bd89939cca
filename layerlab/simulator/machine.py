"""The machine profile: how fast this computer (and its local registry) does each step.

A :class:`MachineProfile` is what :func:`layerlab.simulator.calibrate` measures and what the
model reads for every rate it does not get from its other inputs. :data:`DEFAULT_MACHINE`
ships the figures of ``ANCHORS.md`` (a typical 2-core machine) so the simulator works
without calibrating. Profiles are saved as JSON, by default under
``${XDG_CACHE_HOME:-~/.cache}/layerlab/machine.json``.

Compression keys are ``"<engine>-<level>"`` (``"isal-1"``, ``"zlib-6"``, ``"zstd-3"``).
Rates are bytes per second of *input* on one core; ratios are uncompressed / compressed
for typical image content (a third source-like text, half binaries, the rest already
compressed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["MachineProfile", "DEFAULT_MACHINE", "REFERENCE_KEY", "default_machine_path",
           "compression_key", "load_machine"]

MB = 1_000_000
REFERENCE_KEY = "zlib-6"
"""The compression a :class:`~layerlab.simulator.LayerSpec`'s ``compressibility`` refers to."""


def compression_key(compression: str, engine: str, level: int) -> str:
    """The key of a compression setting: ``("gzip", "isal", 1)`` -> ``"isal-1"``;
    ``("zstd", ..., 3)`` -> ``"zstd-3"``."""
    if compression == "zstd":
        return f"zstd-{level}"
    return f"{engine}-{level}"


DEFAULT_DECOMPRESS_RATE: Mapping[str, float] = MappingProxyType({
    "gzip": 600 * MB, "zstd": 900 * MB})
"""Decompression speeds (bytes/s of output, one core) when a profile has none: ISA-L
igzip and zstandard on this project's 2-core machine kind (typical image content)."""


def _frozen(mapping: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class MachineProfile:
    """Measured (or assumed) speeds of a client machine and its local registry.

    * ``cores``: CPU cores the client may use;
    * ``compress_rate``: key -> bytes/s of input per core; ``ratio``: key -> typical ratio;
    * ``sha256_rate``: bytes/s per core;
    * ``client_request_overhead``: client CPU/latency per HTTP request, seconds;
    * ``client_connect_cost``: starting one of the pusher's threads and opening its
      connection to a colocated registry (the registry accepting it), seconds;
    * ``client_thread_join_cost``: shutting down one thread of a pool of the pusher's
      (the checkers, the upload workers) when the pool is done: waking it and joining
      it, seconds per thread, on the pusher's main thread;
    * ``client_push_overhead``: the client's fixed cost per push (planning, opening and
      writing its digest cache), seconds;
    * ``client_stream_cost``: seconds per byte one upload stream of the client needs at
      least (its thread reads, hashes and frames blocks and hands them to the compressor
      and the socket in turn): one body moves at most ``1 / client_stream_cost`` bytes/s
      (0: no such limit; measured on real pushes by ``validate``);
    * ``client_layer_overhead``: the client's own time per layer before its first request
      about it, one layer at a time and in the row of bodiless requests (a just-started
      dockerd's first push of an image: 1.6-2.5 ms a layer as fitted by
      ``bench_docker_validate`` in three runs; 0 for layerlab), seconds;
    * ``client_file_cost``: seconds of one upload stream's CPU per file of a layer it
      tars from a file system before compressing it (dockerd reassembling a layer from
      its graph driver: opening, stat-ing and framing each file); 0: the client reads a
      tar as one stream (layerlab, skopeo). A layer's file count is
      :attr:`~layerlab.simulator.LayerSpec.files`;
    * ``client_cache_write``: one write transaction of the client's digest cache (a
      stale entry forgotten after a HEAD found nothing), seconds; they run one at a time;
    * ``registry_request_overhead``: the local registry's fixed time per request, seconds;
    * ``registry_lookup_cost``: the local registry's storage lookup (a blob stat) without
      its descriptor cache; ``registry_cached_lookup_cost`` with it;
    * ``registry_ingest_rate``: bytes/s one registry request takes a body at (receive,
      hash, write), using one core of this machine when colocated;
    * ``registry_reread_rate``: bytes/s of the re-read a ``reread`` verify does;
    * ``registry_blob_overhead``: the local registry's fixed time per blob it stores
      (creating the upload file, syncing it, moving it into place, linking it into the
      repository), seconds: mostly a wait for the disk, which holds no core; 0 in the
      shipped defaults (ANCHORS.md has no such figure);
    * ``registry_commit_rate``: bytes/s of the commit itself (flushing to disk what of
      the blob is not yet written back, see
      :attr:`~layerlab.simulator.inputs.RegistrySettings.writeback_every`, and moving it
      into place); ``inf`` when it costs nothing per byte;
    * ``registry_loop_rate``: with the registry's own bandwidth limit (``serial_throttle``),
      the bytes/s its receiving loop would pass if the limit cost nothing: the link then
      carries ``1 / (1/bandwidth + 1/registry_loop_rate)`` in all;
    * ``registry_cores``: cores the registry can use at once (1 for a Python registry);
    * ``disk_rate``: bytes/s of local temporary-file writes and reads;
    * ``cpu_capacity``: cores' worth of CPU the client really gets (0: ``cores``; less on
      a machine shared with other work);
    * ``decompress_rate``: compression (``"gzip"``, ``"zstd"``) -> bytes/s of
      *uncompressed output* one core decompresses (layerlab's own decompressors: ISA-L's
      igzip, zstandard); formats missing here fall back to the shipped defaults (a pull
      model only; profiles saved before it existed load with the defaults);
    * ``fsync_rate``: bytes/s an ``fsync`` of freshly written data flushes (0: the
      ``disk_rate``);
    * ``registry_send_rate``: with the local registry's bandwidth limit on, the bytes/s
      its sending loop passes at most (a pull gets ``min(bandwidth, registry_send_rate)``:
      the limit's schedule is absolute, so the loop's own time hides in its waits);
    * ``probe_rate``: what :func:`~layerlab.simulator.calibration.cpu_probe` measured at
      calibration (bytes/s), the reference :meth:`under_load` scales from;
      ``probe_parallelism`` the parallelism it found then (0: not measured).
    """

    cores: int = 2
    compress_rate: Mapping[str, float] = field(default_factory=dict)
    ratio: Mapping[str, float] = field(default_factory=dict)
    sha256_rate: float = 2028 * MB
    client_request_overhead: float = 0.0005
    client_connect_cost: float = 0.0005
    client_thread_join_cost: float = 0.0001
    client_push_overhead: float = 0.005
    client_cache_write: float = 0.005
    client_stream_cost: float = 0.0
    client_file_cost: float = 0.0
    client_layer_overhead: float = 0.0
    registry_request_overhead: float = 0.001
    registry_lookup_cost: float = 0.0002
    registry_cached_lookup_cost: float = 0.0001
    registry_ingest_rate: float = 325 * MB
    registry_reread_rate: float = 1500 * MB
    registry_blob_overhead: float = 0.0
    registry_commit_rate: float = float("inf")
    registry_loop_rate: float = 800 * MB
    registry_cores: int = 1
    disk_rate: float = 1000 * MB
    decompress_rate: Mapping[str, float] = field(default_factory=dict)
    fsync_rate: float = 0.0
    registry_send_rate: float = float("inf")
    cpu_capacity: float = 0.0
    probe_rate: float = 0.0
    probe_parallelism: float = 0.0
    source: str = "defaults (ANCHORS.md)"

    def __post_init__(self) -> None:
        object.__setattr__(self, "compress_rate", _frozen(self.compress_rate))
        object.__setattr__(self, "ratio", _frozen(self.ratio))
        object.__setattr__(self, "decompress_rate",
                           _frozen({**DEFAULT_DECOMPRESS_RATE, **self.decompress_rate}))
        if self.cores < 1:
            raise ValueError("a machine has at least one core")

    # -- lookups -----------------------------------------------------------------------
    def _nearest(self, table: Mapping[str, float], key: str) -> float:
        if key in table:
            return table[key]
        engine, _, level = key.rpartition("-")
        same = [(abs(int(k.rpartition("-")[2]) - int(level)), k) for k in table
                if k.rpartition("-")[0] == engine]
        if same:
            return table[min(same)[1]]
        raise KeyError(f"no figure for compression {key!r} in the machine profile "
                       f"(known: {', '.join(sorted(table))})")

    def compress_speed(self, key: str) -> float:
        """Bytes of input per second on one core for compression ``key`` (the nearest
        known level of the same engine when the exact level was not measured)."""
        return self._nearest(self.compress_rate, key)

    def typical_ratio(self, key: str) -> float:
        """The typical ratio of compression ``key`` (nearest level, as above)."""
        return self._nearest(self.ratio, key)

    def decompress_speed(self, compression: str) -> float:
        """Bytes of uncompressed output per second on one core decompressing
        ``compression`` (``"none"``: no work, ``inf``)."""
        if compression == "none":
            return float("inf")
        try:
            return self.decompress_rate[compression]
        except KeyError:
            raise KeyError(f"no decompression figure for {compression!r} in the machine "
                           f"profile (known: {', '.join(sorted(self.decompress_rate))})") from None

    def with_options(self, **changes: Any) -> "MachineProfile":
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def cpu(self) -> float:
        """Cores' worth of CPU available to the client (``cpu_capacity`` or ``cores``)."""
        return self.cpu_capacity or float(self.cores)

    def under_load(self, probe_rate: float, parallelism: float) -> "MachineProfile":
        """This profile on the machine as it is now: every CPU-bound figure scaled by
        ``probe_rate / self.probe_rate`` (a single thread's speed now vs at calibration),
        and the cores' worth of CPU by ``parallelism / self.probe_parallelism`` (both from
        ``cpu_probe()``); without a calibrated ``cpu_capacity`` and ``probe_parallelism``,
        ``parallelism`` cores' worth."""
        factor = probe_rate / self.probe_rate if self.probe_rate > 0 and probe_rate > 0 else 1.0
        capacity = parallelism
        if self.cpu_capacity > 0 and self.probe_parallelism > 0:
            capacity = self.cpu_capacity * parallelism / self.probe_parallelism
        return replace(
            self,
            compress_rate={k: v * factor for k, v in self.compress_rate.items()},
            decompress_rate={k: v * factor for k, v in self.decompress_rate.items()},
            registry_send_rate=self.registry_send_rate * factor,
            sha256_rate=self.sha256_rate * factor,
            registry_ingest_rate=self.registry_ingest_rate * factor,
            registry_reread_rate=self.registry_reread_rate * factor,
            registry_loop_rate=self.registry_loop_rate * factor,
            client_request_overhead=self.client_request_overhead / factor,
            client_connect_cost=self.client_connect_cost / factor,
            client_thread_join_cost=self.client_thread_join_cost / factor,
            client_push_overhead=self.client_push_overhead / factor,
            client_stream_cost=self.client_stream_cost / factor,
            client_file_cost=self.client_file_cost / factor,
            client_layer_overhead=self.client_layer_overhead / factor,
            registry_request_overhead=self.registry_request_overhead / factor,
            registry_lookup_cost=self.registry_lookup_cost / factor,
            registry_cached_lookup_cost=self.registry_cached_lookup_cost / factor,
            registry_blob_overhead=self.registry_blob_overhead / factor,
            cpu_capacity=min(float(self.cores), max(0.1, capacity)),
            probe_rate=probe_rate, probe_parallelism=parallelism)

    # -- persistence -------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data = {f: getattr(self, f) for f in self.__dataclass_fields__}
        data["compress_rate"] = dict(self.compress_rate)
        data["ratio"] = dict(self.ratio)
        data["decompress_rate"] = dict(self.decompress_rate)
        return {k: (None if isinstance(v, float) and v == float("inf") else v)
                for k, v in data.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "MachineProfile":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        for key, value in list(values.items()):  # infinite rates are saved as null
            if value is None and key.endswith("_rate"):
                values[key] = float("inf")
        return cls(**values)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the profile as JSON (default :func:`default_machine_path`); return the path."""
        target = Path(path) if path is not None else default_machine_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> "MachineProfile":
        """Read a profile saved by :meth:`save`."""
        target = Path(path) if path is not None else default_machine_path()
        return cls.from_json(json.loads(target.read_text()))


def default_machine_path() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/layerlab/machine.json``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "layerlab" / "machine.json"


DEFAULT_MACHINE = MachineProfile(
    cores=2,
    compress_rate={
        "isal-0": 700 * MB, "isal-1": 644 * MB, "isal-2": 586 * MB, "isal-3": 434 * MB,
        "zlib-1": 94 * MB, "zlib-6": 29 * MB, "zlib-9": 11 * MB,
        "zlib-ng-1": 280 * MB, "zlib-ng-6": 86 * MB,
        "zstd-3": 325 * MB,
    },
    ratio={
        "isal-0": 2.10, "isal-1": 2.29, "isal-2": 2.30, "isal-3": 2.32,
        "zlib-1": 2.29, "zlib-6": 2.41, "zlib-9": 2.42,
        "zlib-ng-1": 1.86, "zlib-ng-6": 2.43,
        "zstd-3": 2.59,
    },
)
"""The figures of ANCHORS.md: a typical 2-core machine, Distribution-like registry."""


def load_machine(machine: "MachineProfile | str | os.PathLike[str] | None" = None) -> MachineProfile:
    """The profile to use: as given; ``None`` -> :data:`DEFAULT_MACHINE` (so a simulation
    depends on its arguments only); ``"saved"`` -> the calibrated profile saved at
    :func:`default_machine_path` if there is one, else the defaults; any other string or
    path -> the profile saved there."""
    if isinstance(machine, MachineProfile):
        return machine
    if machine is None:
        return DEFAULT_MACHINE
    if machine == "saved":
        path = default_machine_path()
        if not path.is_file():
            return DEFAULT_MACHINE
        try:
            return MachineProfile.load(path)
        except (OSError, ValueError, TypeError):
            return DEFAULT_MACHINE
    return MachineProfile.load(machine)
