"""Push profiles: the settings that make the pusher behave like a given client.

A profile is data, not a code path: the pusher and the simulator read the same fields.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Sequence

__all__ = ["PushProfile", "PROFILES", "get_profile"]


@dataclass(frozen=True)
class PushProfile:
    """How a push is done.

    * ``concurrency``: layers in flight at once (0 = sized to the machine);
    * ``compression``/``engine``/``level``: how uncompressed layers are compressed
      (``gzip`` via ``isal`` or ``zlib``, ``zstd``, or ``zstd:chunked`` with its table
      of contents for partial pulls);
    * ``temp_file``: compress a layer completely into a temporary file before uploading
      it (Docker 1.7's "Buffering to Disk"), instead of streaming;
    * ``check_existing``: ``"always"`` HEAD every layer before uploading; ``"cached"`` only
      when a compressed digest is already known (Docker's metadata-service rule);
      ``"never"`` upload blindly;
    * ``registry_lookup``: learn compressed digests from the destination registry's
      manifests and configs (layerlab's own trick; no mainstream client does it);
    * ``mount``: try cross-repository mounts from repositories known to hold a blob;
    * ``use_cache``: read and write the local digest cache;
    * ``upload``: ``"stream"`` (POST, one streamed PATCH, PUT), ``"chunked"`` (ordered
      PATCHes of ``chunk_size`` with Content-Range) or ``"monolithic"`` (POST, one PUT);
    * ``manifest_format``: ``"source"`` keeps schema2/OCI as the source had it, or force
      ``"v2s2"``/``"oci"``;
    * ``check_config``: HEAD the config blob before uploading it even when
      ``check_existing`` is not ``"always"`` (its digest never depends on compression, so
      a client always knows it: dockerd does);
    * ``confirm_uploads``: HEAD every blob right after committing or mounting it
      (Distribution's Go client library does in ``Commit``, so dockerd does);
    * ``order``: which layers start first when more are to push than run at once:
      ``"largest"`` (the biggest first, which ends a parallel push soonest) or ``"top"``
      (the image's last layer first, down to its base: dockerd's upload manager queues
      layers so).

    Added by the pusher (the simulator may ignore them):

    * ``retry_backoff``: seconds before the first retry of a broken upload (doubling);
    * ``compress_threads``: threads compressing blocks of one layer (0 = the machine's
      CPU count), used while fewer layers stream than that (more layers keep the cores
      busy on their own threads); the output bytes do not depend on it;
    * ``block_size``: gzip block size (the output does depend on it: part of the cache key);
    * ``small_blob_limit``: layers up to this many uncompressed bytes are compressed in
      memory and sent in one monolithic request (0 = never).
    """

    name: str
    concurrency: int = 0
    compression: str = "gzip"
    engine: str = "isal"
    level: int = 1
    temp_file: bool = False
    check_existing: str = "always"
    registry_lookup: bool = True
    mount: bool = True
    use_cache: bool = True
    upload: str = "stream"
    chunk_size: int = 16 * 1024 * 1024
    manifest_format: str = "source"
    check_config: bool = False
    confirm_uploads: bool = False
    order: str = "largest"
    retries: int = 4
    retry_backoff: float = 0.5
    compress_threads: int = 0
    block_size: int = 1024 * 1024
    small_blob_limit: int = 1024 * 1024

    @property
    def workers(self) -> int:
        """The effective number of layers in flight."""
        if self.concurrency > 0:
            return self.concurrency
        return max(4, 2 * (os.cpu_count() or 2))

    def __post_init__(self) -> None:
        if self.order not in ("largest", "top"):
            raise ValueError(f"order must be 'largest' or 'top', not {self.order!r}")

    def start_order(self, layers: Sequence[tuple[int, int]]) -> list[int]:
        """The order layers start in, from ``(index in the image, size)`` pairs: their
        indices, following ``order`` (ties by index)."""
        if self.order == "top":
            return [index for index, _ in sorted(layers, key=lambda pair: -pair[0])]
        return [index for index, _ in sorted(layers, key=lambda pair: (-pair[1], pair[0]))]

    def with_options(self, **changes: Any) -> "PushProfile":
        """A copy with some fields changed (unknown names raise ``TypeError``)."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


PROFILES: dict[str, PushProfile] = {
    # One layer at a time, as the Jenkins docker plugin of the seed did.
    "serial": PushProfile("serial", concurrency=1, engine="zlib", level=6,
                          check_existing="cached", registry_lookup=False, upload="stream",
                          compress_threads=1, small_blob_limit=0),
    # Docker 1.7 + registry 2.2: serial, buffer each compressed layer to disk, no existence
    # check unless a cached digest is known (scoped to the target repository), no mounts,
    # one monolithic PUT per layer.
    "docker-1.7": PushProfile("docker-1.7", concurrency=1, engine="zlib", level=6,
                              temp_file=True, check_existing="cached", registry_lookup=False,
                              mount=False, upload="monolithic", compress_threads=1,
                              small_blob_limit=0),
    # Today's dockerd (20.10, checked against the real engine: tests/test_docker_interop.py,
    # benchmarks/bench_docker_validate.py): 5 concurrent uploads, existence checks only
    # from its metadata cache (and of the config, whose digest it knows), cross-repository
    # mounts, one streamed PATCH, a HEAD after every blob, layers queued from the top one
    # down to the base (its upload manager's order). Go's compress/gzip at level 6
    # is replayed with zlib 6 (as fast and within 1 % of its ratio on image content).
    "docker": PushProfile("docker", concurrency=5, engine="zlib", level=6,
                          check_existing="cached", registry_lookup=False, upload="stream",
                          compress_threads=1, small_blob_limit=0, check_config=True,
                          confirm_uploads=True, order="top"),
    # layerlab's default: everything that makes it fast.
    "fast": PushProfile("fast"),
}


def get_profile(profile: str | PushProfile) -> PushProfile:
    """A profile by name (``serial``, ``docker-1.7``, ``docker``, ``fast``) or as given."""
    if isinstance(profile, PushProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown push profile {profile!r} "
                         f"(choose from {', '.join(PROFILES)})") from None
