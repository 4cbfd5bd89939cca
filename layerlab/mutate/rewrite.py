""":func:`rewrite`: a new image from an old one, with layers merged, squashed, filtered,
reordered, re-timestamped or recompressed.

The result is a real image: its new layer blobs are written (streamed, never held in
memory) under a work directory, its config and manifest are rebuilt, and it can go to
any transport with :func:`layerlab.copy`. A layer nothing changes keeps its blob (and
digest); a layer only recompressed keeps its tar bytes (and diff_id).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Sequence

from .. import mediatypes as mt
from ..analysis.dockerignore import DockerIgnore
from ..analysis.filesystem import MergedFilesystem
from ..analysis.merge import plan_merge
from ..config import HistoryEntry, parse_config
from ..digest import Digest
from ..blobio import decompressed
from ..errors import DigestMismatchError, RewriteError
from ..manifest import Descriptor, ImageManifest, parse_manifest
from ..model import Image, Layer
from ..pusher.compress import CompressingStream, CompressionSettings
from ..pusher.manifests import build_manifest
from ..tarstream import TarEntry
from .history import rebuilt_history
from .plan import check_order, layer_groups
from .result import LayerChange, RewriteResult
from .tarwrite import ChunkReader, plan_tar_chunks

__all__ = ["rewrite"]


def _settings(compression: str | None, level: int | None) -> CompressionSettings | None:
    if compression is None:
        if level is not None:
            raise RewriteError("a compression level needs a compression (gzip or zstd)")
        return None
    if compression == "gzip":
        return CompressionSettings("gzip", "isal" if level is None or level <= 3 else "zlib",
                                   1 if level is None else level)
    if compression in ("zstd", "zstd:chunked"):
        return CompressionSettings(compression, "zstandard", 3 if level is None else level)
    if compression in ("none", "uncompressed"):
        return CompressionSettings("none")
    raise RewriteError(f"unknown compression {compression!r} "
                       "(gzip, zstd, zstd:chunked or none)")


def _default_settings(members: Sequence[Layer]) -> CompressionSettings:
    """New blobs of an unchanged-compression rewrite: uncompressed stays uncompressed,
    zstd stays zstd, anything else becomes gzip."""
    kinds = {layer.compression for layer in members}
    if kinds == {"none"}:
        return CompressionSettings("none")
    if kinds == {"zstd"}:
        return CompressionSettings("zstd", "zstandard", 3)
    return CompressionSettings()


def _iso(timestamp: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _scan_all(layers: Sequence[Layer], workers: int) -> list[list[TarEntry]]:
    """Every layer's entries, read with the same parser the rewrite streams with (so
    entry ordinals agree)."""
    def entries(layer: Layer) -> list[TarEntry]:
        return list(layer.entries())

    with ThreadPoolExecutor(workers, thread_name_prefix="rewrite-scan") as pool:
        return list(pool.map(entries, layers))


class _Rewriter:
    def __init__(self, image: Image, workdir: str, workers: int, timestamp: int | None,
                 settings: CompressionSettings | None, recompress_all: bool,
                 ignore: DockerIgnore | None) -> None:
        self.image = image
        self.workdir = workdir
        self.workers = workers
        self.timestamp = timestamp
        self.settings = settings
        self.recompress_all = recompress_all
        self.ignore = ignore
        self.written: list[str] = []
        self._lock = threading.Lock()
        os.makedirs(os.path.join(workdir, "blobs"), exist_ok=True)

    def keep(self, entry: TarEntry) -> bool:
        if self.ignore is None:
            return True
        if self.ignore.excluded(entry.path):
            return False
        return entry.whiteout is None or not self.ignore.excluded(entry.whiteout)

    def check_links(self, entries: Sequence[Sequence[TarEntry]]) -> None:
        for index, layer_entries in enumerate(entries):
            for e in layer_entries:
                if e.type == "hardlink" and self.keep(e) and self.ignore is not None \
                        and self.ignore.excluded(e.linkname):
                    raise RewriteError(f"layer {index}: hard link {e.path} -> {e.linkname}: "
                                       "the target is excluded; exclude the link too")

    def _blob(self, chunks: Any, settings: CompressionSettings
              ) -> tuple[Digest, int, Digest, int, dict[str, str]]:
        """Compress (or copy) an uncompressed tar stream into the work directory."""
        source = ChunkReader(chunks) if not hasattr(chunks, "read") else chunks
        stream = CompressingStream(source, settings)  # type: ignore[arg-type]
        fd, temp = tempfile.mkstemp(prefix="blob-", dir=os.path.join(self.workdir, "blobs"))
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in stream:
                    out.write(chunk)
            digest = stream.digest
            os.replace(temp, self.blob_path(digest))
            with self._lock:
                self.written.append(self.blob_path(digest))
        except BaseException:
            os.unlink(temp)
            raise
        finally:
            source.close()
        annotations = dict(getattr(stream, "annotations", None) or {})
        return digest, stream.size_out, stream.diff_id, stream.size_in, annotations

    def blob_path(self, digest: Digest) -> str:
        return os.path.join(self.workdir, "blobs", digest.hex)

    def new_layer(self, members: Sequence[Layer], chunks: Any, settings: CompressionSettings,
                  oci: bool, history: HistoryEntry | None) -> Layer:
        digest, size, diff_id, size_in, annotations = self._blob(chunks, settings)
        kind = settings.compression
        compression = "zstd" if kind.startswith("zstd") else kind
        path = self.blob_path(digest)
        return Layer(digest=digest, diff_id=diff_id, size=size,
                     media_type=mt.layer_media_type(oci, compression),
                     uncompressed_size=size_in, compression=compression, history=history,
                     annotations=annotations,
                     opener=lambda: open(path, "rb"), seekable=True)  # noqa: SIM115


def rewrite(image: Image | str, *, merge: Sequence[Sequence[int]] | None = None,
            target: int | None = None, squash: bool = False, exclude: Sequence[str] = (),
            reorder: Sequence[int] | None = None, timestamp: int | None = None,
            compression: str | None = None, level: int | None = None,
            workdir: str | None = None, workers: int | None = None,
            progress: bool = False) -> RewriteResult:
    """Rewrite ``image`` (an :class:`Image` or any reference); return a
    :class:`RewriteResult` whose ``image`` holds the new layers.

    * ``merge``: runs of consecutive layer indexes (0-based, as ``layerlab history``
      numbers them) to merge into one layer each; ``target``: merge inside RUN runs,
      cheapest first, down to at most ``target`` layers (what :func:`layer_advice`
      computes, now produced); ``squash``: everything in one layer.
    * ``exclude``: ``.dockerignore``-syntax patterns of paths to drop from every layer.
    * ``reorder``: the new order of the (merged) layers as a permutation of their
      indexes; only layers that commute may pass each other (see
      :mod:`layerlab.mutate.plan`), else :class:`~layerlab.errors.RewriteError`.
    * ``timestamp``: set every file's mtime and the config's ``created`` times to this
      many seconds since the epoch (``0`` strips them, for reproducible builds).
    * ``compression``: ``gzip`` (``level`` 0-3 with ISA-L, 4-9 with zlib), ``zstd``,
      ``zstd:chunked`` or ``none``: layers stored otherwise are recompressed (all of
      them when ``level`` is given). New layers otherwise keep their sources'
      compression.

    New blobs go to ``workdir`` (default: a new temporary directory, removed by
    :meth:`RewriteResult.cleanup`), ``workers`` layers at a time (default: one per CPU);
    ``progress`` shows a bar of the layers done.
    """
    if isinstance(image, str):
        from ..sources import open_image

        image = open_image(image)
    if not isinstance(image.manifest, ImageManifest):
        from ..sources.remote.image import schema1_as_schema2

        image = schema1_as_schema2(image)
    settings = _settings(compression, level)
    workers = max(1, workers or os.cpu_count() or 1)
    layers = image.layers
    advice = None
    if target is not None:
        from ..analysis.history import layer_advice

        advice = layer_advice(image, workers=workers)
    groups = layer_groups(len(layers), merge=merge, target=target, squash=squash,
                          advice=advice)
    order = list(reorder) if reorder is not None else list(range(len(groups)))
    ignore = DockerIgnore(exclude) if exclude else None
    own_workdir = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="layerlab-rewrite-")
    rw = _Rewriter(image, workdir, workers, timestamp, settings, level is not None, ignore)
    t0 = time.perf_counter()

    structural = ignore is not None or any(len(g) > 1 for g in groups) or reorder is not None
    entries = _scan_all(layers, workers) if structural else None
    filtered = entries
    if entries is not None and ignore is not None:
        rw.check_links(entries)
        filtered = [[e for e in layer_entries if rw.keep(e)] for layer_entries in entries]
    if reorder is not None:
        assert filtered is not None
        check_order(order, [[e for i in g for e in filtered[i]] for g in groups])

    oci = image.manifest.media_type == mt.OCI_MANIFEST or (
        settings is not None and settings.compression.startswith("zstd"))
    lowers = _lowers(groups, filtered) if filtered is not None else {}
    histories = image.config.layer_history()
    jobs: list[Any] = []
    for number, group in enumerate(groups):
        members = [layers[i] for i in group]
        history = histories[group[0]] if len(group) == 1 and group[0] < len(histories) else None
        changed = filtered is not None and entries is not None and any(
            len(filtered[i]) != len(entries[i]) for i in group)
        wanted = settings or _default_settings(members)
        if len(group) == 1 and not changed and timestamp is None:
            layer = members[0]
            same = settings is None or (not rw.recompress_all
                                        and _compression_key(layer) == _settings_key(settings))
            if same:
                jobs.append(("keep", number, group, layer))
                continue
            jobs.append(("recompress", number, group, (layer, wanted, history)))
            continue
        jobs.append(("tar", number, group, (members, wanted, history)))

    def run(job: Any) -> tuple[int, Layer, str]:
        kind, number, group, payload = job
        if kind == "keep":
            return number, payload, "kept"
        if kind == "recompress":
            layer, wanted, history = payload
            # the stored digest is checked as the blob is read; the diff_id by the new
            # stream's own hash of the tar (not a second pass)
            raw = layer.open(verify=layer.compression != "none")
            with decompressed(raw, layer.compression, f"layer {layer.digest}") as tar:
                new = rw.new_layer([layer], tar, wanted, oci, history)
            expected = layer.diff_id or (layer.digest if layer.compression == "none" else None)
            if expected is not None and new.diff_id != expected:
                raise DigestMismatchError(f"layer {layer.digest} (diff_id)", expected,
                                          new.diff_id)
            return number, new, "recompressed"
        members, wanted, history = payload
        if filtered is not None:
            group_entries = [filtered[i] for i in group]
            plan = plan_merge(group_entries, lowers.get(group[0]),
                              keep_whiteouts=not (squash or group[0] == 0))
        else:
            plan = plan_merge([list(m.entries()) for m in members], None,
                              keep_whiteouts=group[0] != 0)
        spool = tempfile.mkdtemp(prefix="spool-", dir=workdir)
        try:
            chunks = plan_tar_chunks(members, plan, rw.keep, timestamp, spool)
            new = rw.new_layer(members, chunks, wanted, oci, history)
        finally:
            os.rmdir(spool)
        what = "merged" if len(group) > 1 else "rewritten"
        return number, new, what

    by_size = sorted(jobs, key=lambda j: -sum(layers[i].size for i in j[2]))
    bar = None
    if progress and any(job[0] != "keep" for job in jobs):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), unit="layer", desc="rewrite", leave=False)
    done: dict[int, tuple[Layer, str]] = {}
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="rewrite") as pool:
            for future in as_completed([pool.submit(run, job) for job in by_size]):
                number, layer, what = future.result()
                done[number] = (layer, what)
                if bar is not None:
                    bar.update(1)
    except BaseException:  # nothing of a failed rewrite stays behind
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for path in rw.written:
                if os.path.exists(path):
                    os.unlink(path)
        raise
    finally:
        if bar is not None:
            bar.close()
    out_layers = [done[number][0] for number in order]
    new_image = _assemble(image, out_layers, [groups[n] for n in order], timestamp, oci)
    changes = tuple(LayerChange(position, tuple(groups[number]), done[number][1],
                                tuple(layers[i] for i in groups[number]),
                                new_image.layers[position])
                    for position, number in enumerate(order))
    return RewriteResult(source=image, image=new_image, changes=changes, workdir=workdir,
                         owns_workdir=own_workdir,
                         seconds=time.perf_counter() - t0)


def _compression_key(layer: Layer) -> str:
    if layer.compression == "zstd":
        chunked = any(k.startswith("io.containers.zstd-chunked.") for k in layer.annotations)
        return "zstd:chunked" if chunked else "zstd"
    return layer.compression


def _settings_key(settings: CompressionSettings) -> str:
    return settings.compression


def _lowers(groups: Sequence[Sequence[int]], entries: Sequence[Sequence[TarEntry]]
            ) -> dict[int, MergedFilesystem]:
    """The filesystem below each merged group that has whiteouts (keyed by its first
    layer), so whiteouts that hide nothing are dropped, as the size estimate assumes."""
    out: dict[int, MergedFilesystem] = {}
    fs = MergedFilesystem()
    for group in groups:
        merged = len(group) > 1
        if merged and group[0] > 0 and any(e.whiteout is not None
                                           for i in group for e in entries[i]):
            out[group[0]] = fs.copy()
        for i in group:
            fs.apply(entries[i], i)
    return out


def _assemble(source: Image, layers: Sequence[Layer], groups: Sequence[Sequence[int]],
              timestamp: int | None, oci: bool) -> Image:
    """The new config and manifest over ``layers``."""
    body = source.config.json()
    body.setdefault("rootfs", {})["type"] = "layers"
    body["rootfs"]["diff_ids"] = [str(layer.diff_id) for layer in layers]
    body["history"] = rebuilt_history(body.get("history") or [], len(source.layers), groups,
                                      None if timestamp is None else _iso(timestamp))
    if timestamp is not None:
        body["created"] = _iso(timestamp)
    raw = source.config.raw if body == source.config.json() else \
        json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    manifest_type = mt.OCI_MANIFEST if oci else mt.DOCKER_MANIFEST_V2
    config_type = mt.OCI_CONFIG if oci else mt.DOCKER_CONFIG
    if isinstance(source.manifest, ImageManifest) and source.manifest.media_type == manifest_type:
        config_type = source.manifest.config.media_type
    config = parse_config(raw, config_type, what="rewritten config")
    history = config.layer_history()
    layers = [dataclasses.replace(layer, history=history[i] if i < len(history) else None)
              for i, layer in enumerate(layers)]
    descriptors = [Descriptor(_media_type(layer, oci), layer.digest, layer.size,
                              annotations=layer.annotations, urls=layer.urls)
                   for layer in layers]
    raw_manifest = build_manifest(source, manifest_type, Descriptor(config_type, config.digest,
                                                                     config.size), descriptors)
    manifest = parse_manifest(raw_manifest, manifest_type, what="rewritten manifest")
    layers = [dataclasses.replace(layer, media_type=d.media_type)
              for layer, d in zip(layers, descriptors)]
    return Image(reference=f"rewrite of {source.reference}", manifest=manifest, config=config,
                 layers=tuple(layers), name=source.name, platform=source.platform,
                 warnings=())


def _media_type(layer: Layer, oci: bool) -> str:
    """The layer's own media type where it is true and of the manifest's flavour (so
    nondistributable types survive), else the standard one."""
    if layer.media_type.startswith("application/vnd.oci.") == oci \
            and mt.layer_compression(layer.media_type) == layer.compression:
        return layer.media_type
    if layer.compression == "zstd" and not oci:
        raise RewriteError("zstd layers need an OCI manifest")
    return mt.layer_media_type(oci, layer.compression)
