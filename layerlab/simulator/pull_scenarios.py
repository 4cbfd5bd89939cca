"""The seed story's pull-side twin: the same 780 MB image, pulled by a node.

The push story (:mod:`.scenarios`) sped up a CI push from 100 s to 20 s. Pulling is
where containers spend most of their start-up (Slacker, FAST '16: 76 % of start time is
pulling, and only 6.4 % of the pulled data is read), so the twin asks what each change
does to a pull by ``docker`` (3 downloads, extraction in order) over the same link:

1. a cold node pulls the 24-layer image (gzip);
2. the same files in 14 layers;
3. the node already holds the base image's layers (the first 4 of 14, 250 MB);
4. the layers compressed with zstd instead of gzip (smaller, much faster to decompress);
5. zstd:chunked layers pulled lazily by podman (containers/storage): start-up reads
   6.4 % of the bytes, fetched in multi-range GETs; the rest is never downloaded.

Assumptions (a node of 2016, documented so they can be argued with): 4 cores; Go's
``compress/gzip`` inflating about 150 MB/s of output per core, zstd about 600 MB/s;
sha256 350 MB/s; a disk doing 150 MB/s; the seed's 100 Mbit/s link (12.5 MB/s) with a
2 ms round trip; gzip ratio 2.41, zstd 2.59 (the 780 MB image's); 18,248 files spread
over the layers in proportion to their bytes, equal-sized within a layer; start-up reads
the first 6.4 % of each layer's files.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .inputs import Network
from .machine import MachineProfile
from .pull import Node, PullFile, PullLayer, simulate_pull
from .pull_result import PullResult
from .scenarios import BASE_14, SEED_NETWORK, seed_layers

__all__ = ["pull_seed_story", "PullStory", "seed_pull_layers", "SEED_PULL_MACHINE",
           "SEED_FILES", "SEED_READ_SHARE"]

MB = 1_000_000
SEED_FILES = 18_248
SEED_READ_SHARE = 0.064
ZSTD_RATIO = 2.59
SEED_PULL_MACHINE = MachineProfile(
    cores=4, sha256_rate=350 * MB, disk_rate=150 * MB,
    decompress_rate={"gzip": 150 * MB, "zstd": 600 * MB},
    client_request_overhead=0.002,
    source="seed pull story: 2016 4-core node (assumed)")


def seed_pull_layers(count: int = 14, compression: str = "gzip", lazy_format: str = "",
                     files: bool = False) -> tuple[PullLayer, ...]:
    """The seed's 780 MB image as :class:`PullLayer` values: 24 or 14 layers, gzip
    (ratio 2.41) or zstd (2.59), optionally zstd:chunked with its files listed."""
    specs = seed_layers(count)
    total = sum(spec.uncompressed_size for spec in specs)
    out = []
    for i, spec in enumerate(specs):
        ratio = spec.compressibility if compression == "gzip" else ZSTD_RATIO
        size = int(round(spec.uncompressed_size / ratio))
        listed: tuple[PullFile, ...] = ()
        if files:
            n = max(1, round(SEED_FILES * spec.uncompressed_size / total))
            each = spec.uncompressed_size // n
            listed = tuple(PullFile(f"layer{i}/file{j:05d}", each) for j in range(n))
        out.append(PullLayer(size, spec.uncompressed_size, compression, lazy_format,
                             digest=f"sha256:{compression}-{count}-{i:02d}",
                             diff_id=f"sha256:diff-{count}-{i:02d}", name=f"layer {i}",
                             files=listed))
    return tuple(out)


def seed_files_read(layers: tuple[PullLayer, ...], share: float = SEED_READ_SHARE) -> list[str]:
    """The first ``share`` of each layer's files: what start-up reads."""
    return [f.path for layer in layers
            for f in layer.files[:math.ceil(share * len(layer.files))]]


@dataclass(frozen=True)
class PullStory:
    """The twin's steps: ``(key, title, PullResult)`` in order."""

    steps: tuple[tuple[str, str, PullResult], ...]
    assumptions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def baseline(self) -> float:
        return self.steps[0][2].total

    def rows(self) -> list[dict[str, Any]]:
        """One dict per step: total, saved vs the cold 24-layer pull, bytes, dominant."""
        return [{"step": key, "title": title, "total": r.total,
                 "saved": self.baseline - r.total, "bytes_downloaded": r.bytes_downloaded,
                 "requests": r.requests, "dominant_phase": r.dominant_phase,
                 **{f"{p}_s": v["critical"] for p, v in r.phases.items()}}
                for key, title, r in self.steps]

    def to_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "steps": self.rows(),
                "assumptions": dict(self.assumptions)}

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows())

    def __repr__(self) -> str:
        return "<PullStory " + ", ".join(f"{k} {r.total:.1f} s" for k, _, r in self.steps) + ">"

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td>{html.escape(row['title'])}</td><td>{row['total']:.1f}</td>"
                       f"<td>{row['bytes_downloaded'] / MB:.0f}</td>"
                       f"<td>{html.escape(row['dominant_phase'])}</td></tr>" for row in self.rows())
        return ("<div><b>the seed's pull</b><table><tr><th>step</th><th>s</th><th>MB</th>"
                f"<th>dominant</th></tr>{body}</table></div>")


def pull_seed_story(network: Network = SEED_NETWORK,
                    machine: MachineProfile = SEED_PULL_MACHINE) -> PullStory:
    """The pull-side twin of :func:`~layerlab.simulator.seed_story` (see the module)."""
    l24, l14 = seed_pull_layers(24), seed_pull_layers(14)
    base = Node.holding(list(l14[:BASE_14]), label="base image")
    z14 = seed_pull_layers(14, "zstd")
    zbase = Node.holding(list(z14[:BASE_14]), label="base image (zstd)")
    chunked = seed_pull_layers(14, "zstd", "zstd:chunked", files=True)
    read = seed_files_read(chunked)
    chunked_base = Node.holding(list(chunked[:BASE_14]), label="base image (zstd:chunked)")

    def run(layers, node=None, profile="docker", files_read=None, label=""):
        return simulate_pull(layers, node=node, network=network, profile=profile,
                             machine=machine, files_read=files_read, label=label)

    steps = (
        ("cold-24", "cold node, 24 gzip layers", run(l24, label="cold-24")),
        ("cold-14", "cold node, 14 gzip layers", run(l14, label="cold-14")),
        ("warm-base", "node holds the base image (4 of 14 layers)", run(l14, base, label="warm-base")),
        ("zstd", "zstd layers, node holds the base", run(z14, zbase, label="zstd")),
        ("lazy", "zstd:chunked, lazy (podman): start-up reads 6.4 %",
         run(chunked, chunked_base, "podman-chunked", read, label="lazy")),
    )
    assumptions = {"network": network.to_json(), "machine": machine.to_json(),
                   "files": SEED_FILES, "read_share": SEED_READ_SHARE,
                   "zstd_ratio": ZSTD_RATIO, "profile": "docker (lazy: podman-chunked)"}
    return PullStory(steps, assumptions)
