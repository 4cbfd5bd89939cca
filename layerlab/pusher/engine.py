"""The pusher: get an :class:`~layerlab.model.Image` into a registry repository.

Per layer, cheapest first: already in the repository (HEAD) -> skip; in another
repository of the registry -> cross-repository mount; else upload. The compressed
digest is learned without compressing wherever possible: from the source (stored
compressed blobs are pushed as they are), from the local digest cache, and from the
registry's own manifests and configs (:mod:`.lookup`). Uploads stream: compression and
both hashes in one pass, no temporary file (unless the profile asks for Docker 1.7's).
The config goes after the layers, the manifest last, and only once every blob is
confirmed; the digest cache learns only confirmed blobs. A manifest refused with
``MANIFEST_BLOB_UNKNOWN`` (a registry's gc collected blobs between their upload and the
manifest) makes the pusher push the blobs the registry lost again, once.

Which of these steps run is decided by the :class:`~layerlab.pusher.profiles.PushProfile`,
so historical clients are replayed by the same code.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager, nullcontext
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterator, Mapping

from ..digest import Digest, digest_bytes
from ..errors import DigestMismatchError, PushError, RegistryError, RegistryProtocolError
from ..manifest import Descriptor, ImageManifest
from ..model import Image, Layer
from ..reference import RegistryReference
from .cache import CacheRecord, DigestCache
from .compress import CompressingStream, CompressionSettings
from .lookup import Known
from .manifests import build_manifest, config_descriptor, same_content
from .memory import keep_freed_buffers
from .plan import (NONDISTRIBUTABLE, LayerTask, add_cached, add_from_registry, plan_layers,
                   source_registry)
from .progress import BlobClaims, Progress
from .result import EventLog, LayerOutcome, PushResult
from .upload import BlobSender, PushAborted, StoredStream

__all__ = ["Pusher"]

_CHUNKED_WRITERS = threading.BoundedSemaphore(1)
"""zstd:chunked layers compressed at once in this process. Its writer is mostly Python
(tar headers, chunking, the TOC) and compresses thousands of small frames, each call
giving up the GIL: several writers at once spend their time handing the GIL over. A
780 MB, 14-layer push on 2 cores took 31.1 s with 4 writers, 25.4 s with 2, 20.8 s with
1 (4.5x fewer system seconds)."""


class Pusher:
    """One push of one image (use :func:`layerlab.push`)."""

    def __init__(self, image: Image, destination: RegistryReference, profile: Any, client: Any,
                 cache: DigestCache | None, lookup: tuple[str, ...] = (),
                 progress: bool | Progress = True, temp_dir: str | None = None,
                 client_factory: Callable[[], Any] | None = None,
                 by_digest: bool = False, claims: BlobClaims | None = None) -> None:
        """``client`` is a RegistryClient, or None with ``client_factory`` to make one only
        when needed. ``by_digest``: put the manifest under its own digest, not the
        destination's tag (an index's children). ``progress``: on/off, or the bars of a
        session shared by concurrent pushes (then left open); ``claims``: the blobs those
        pushes are sending."""
        self.image = image
        self.dest = destination
        self.by_digest = by_digest
        self.manifest_size = 0
        self.profile = profile
        self._client = client
        self._client_factory = client_factory
        self._client_lock = threading.Lock()
        self.cache = cache if profile.use_cache else None
        self.lookup_refs = lookup
        threads = profile.compress_threads or (os.cpu_count() or 1)
        self.settings = CompressionSettings.from_profile(profile, threads)
        self.log = EventLog()
        self.abort = threading.Event()
        self._own_progress = not isinstance(progress, Progress)
        self.progress = (Progress(progress, f"push {destination.repository}")
                         if self._own_progress else progress)
        self.claims = claims if claims is not None else BlobClaims()
        self._streaming = 0  # layers being compressed and sent right now
        self.sender = BlobSender(lambda: self.client, destination.repository, profile, self.log,
                                 self.abort, temp_dir)
        self.confirmed: list[CacheRecord] = []
        self._lock = threading.Lock()
        self.source_ref = source_registry(image)
        self.pool: ThreadPoolExecutor | None = None
        self.warnings: list[str] = list(image.warnings)
        self._requests0 = getattr(client, "request_count", 0)

    @property
    def client(self) -> Any:
        """The full registry client (made on first use when a factory was given)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    assert self._client_factory is not None
                    self._client = self._client_factory()
        return self._client

    @property
    def requests(self) -> int:
        """HTTP requests this push sent."""
        return getattr(self._client, "request_count", 0) - self._requests0 if self._client else 0

    def _head_blob(self, digest: str) -> int | None:
        return self.client.head_blob(self.dest.repository, digest)

    def _head_manifest(self, reference: str) -> Descriptor | None:
        return self.client.head_manifest(self.dest.repository, reference)

    # per layer: check, mount, upload ----------------------------------------------------
    def _ordered(self, task: LayerTask) -> list[Known]:
        """Candidates to HEAD in the target repository, most promising first."""
        repo = self.dest.repository
        rule = self.profile.check_existing
        if rule == "never":
            return []
        out = []
        seen = set()
        for known in sorted(task.known, key=lambda k: (repo not in k.repositories,
                                                       k.settings != self.settings.key,
                                                       k.origin != "source")):
            if rule == "cached" and known.origin != "cache":
                continue
            if known.digest in seen:
                continue
            seen.add(known.digest)
            out.append(known)
        return out[:3]

    def _confirm(self, task: LayerTask | None, digest: str, size: int, media_type: str,
                 compression: str, settings: str, already_known: bool = False,
                 annotations: Mapping[str, str] | None = None) -> None:
        """Remember a blob the registry confirmed (written to the cache at the end)."""
        if self.cache is None or task is None or not task.diff_id or already_known:
            return
        with self._lock:
            self.confirmed.append(CacheRecord(task.diff_id, str(digest), size, media_type,
                                              compression, settings, self.dest.registry,
                                              self.dest.repository, dict(annotations or {})))

    def _check(self, task: LayerTask) -> LayerOutcome | None:
        for known in self._ordered(task):
            start = self.log.now()
            size = self._head_blob(known.digest)
            self.log.add(task.name, task.diff_id, "check", start,
                         outcome="exists" if size is not None else "missing",
                         detail=f"{known.digest} ({known.origin})")
            if size is not None:
                self._confirm(task, known.digest, size, known.media_type, known.compression,
                              known.settings, already_known=known.origin == "cache"
                              and self.dest.repository in known.repositories,
                              annotations=known.annotations)
                return LayerOutcome(str(known.digest), task.diff_id, size, known.media_type,
                                    "exists", None, known.origin, known.annotations)
            if known.origin == "cache" and self.cache is not None and \
                    self.dest.repository in known.repositories:
                self.cache.forget(known.digest, self.dest.registry, self.dest.repository)
        return None

    def _mount(self, task: LayerTask) -> tuple[LayerOutcome | None, Any]:
        """Try mounts; return (outcome, an upload session the registry opened instead)."""
        if not self.profile.mount:
            return None, None
        session = None
        tries = 0
        for known in task.known:
            for repo in sorted(known.repositories - {self.dest.repository}):
                if tries >= 3:
                    return None, session
                tries += 1
                if session is not None:
                    self.sender._cancel(session)
                start = self.log.now()
                session = self.client.mount_blob(self.dest.repository, known.digest, repo)
                self.log.add(task.name, task.diff_id, "mount", start,
                             outcome="mounted" if session is None else "refused",
                             detail=f"{known.digest} from {repo}")
                if session is None:
                    self._confirm(task, known.digest, known.size, known.media_type,
                                  known.compression, known.settings,
                                  annotations=known.annotations)
                    return LayerOutcome(str(known.digest), task.diff_id, known.size,
                                        known.media_type, "mounted", repo, known.origin,
                                        known.annotations), None
                if known.origin == "cache" and self.cache is not None:
                    self.cache.forget(known.digest, self.dest.registry, repo)
        return None, session

    def _run_task(self, task: LayerTask, checked: bool = False) -> LayerOutcome:
        layer = task.layer
        if self.abort.is_set():
            raise PushAborted(f"{task.name}: stopped, another blob failed")
        if layer.media_type in NONDISTRIBUTABLE and layer.urls:
            return LayerOutcome(task.name, task.diff_id, layer.size, layer.media_type,
                                "foreign", None, "source")
        outcome = None if checked else self._check(task)
        if outcome is not None:
            return outcome
        key = f"{layer.digest} {'' if task.stored else self.settings.key}"
        with self.claims.claim(key) as first:
            if not first:  # another push of this session just sent it, or failed to
                outcome = self._check(task)
                if outcome is not None:
                    return outcome
            outcome, session = self._mount(task)
            if outcome is None:
                keep_freed_buffers()  # a blob is about to stream through this process
                outcome = (self._upload_stored(task, session) if task.stored
                           else self._upload_compressed(task, session))
            return self._confirmed(task.name, task.diff_id, outcome)

    def _confirmed(self, name: str, diff_id: str | None, outcome: LayerOutcome) -> LayerOutcome:
        """With ``confirm_uploads``, HEAD a blob just committed or mounted."""
        if self.profile.confirm_uploads:
            start = self.log.now()
            size = self._head_blob(outcome.digest)
            self.log.add(name, diff_id, "check", start,
                         outcome="exists" if size is not None else "missing",
                         detail=f"{outcome.digest} (confirming the upload)")
            if size is None:
                raise RegistryProtocolError(f"{self.dest}: the registry accepted blob "
                                            f"{outcome.digest} but a HEAD does not find it")
        return outcome

    def _upload_stored(self, task: LayerTask, session: Any) -> LayerOutcome:
        layer = task.layer
        self.progress.expect(layer.size)
        advance, close = self.progress.blob(task.name, layer.size)

        def make(skip: int) -> StoredStream:
            return StoredStream(layer.open(verify=False), skip, advance)

        def check(stream: StoredStream) -> None:
            if stream.digest != layer.digest:
                raise DigestMismatchError(f"{self.image.reference}: layer {layer.digest}",
                                          layer.digest, stream.digest)

        try:
            self.sender.send(task.name, task.diff_id, make, check, session, layer.digest)
        finally:
            close()
        self._confirm(task, layer.digest, layer.size, task.media_type, layer.compression, "",
                      annotations=layer.annotations)
        return LayerOutcome(task.name, task.diff_id, layer.size, task.media_type, "pushed",
                            None, "source", layer.annotations)

    def _uncompressed(self, layer: Layer):
        if layer.compression == "none":
            return layer.open(verify=False)
        return layer.open_uncompressed(verify=True)

    def _upload_compressed(self, task: LayerTask, session: Any) -> LayerOutcome:
        layer = task.layer
        size_hint = layer.uncompressed_size or layer.size
        self.progress.expect(size_hint)
        advance, close = self.progress.blob(task.name, size_hint)
        settings = self.settings
        first = [True]

        def make(skip: int) -> CompressingStream:
            on_input = advance if first[0] else None
            first[0] = False
            return CompressingStream(self._uncompressed(layer), settings, self.pool,
                                     window=settings.threads + 1, skip=skip, on_input=on_input,
                                     spread=self._spread)

        def check(stream: CompressingStream) -> None:
            if layer.diff_id is not None and stream.diff_id != layer.diff_id:
                raise DigestMismatchError(f"{self.image.reference}: layer {layer.digest} (diff_id)",
                                          layer.diff_id, stream.diff_id)
            if layer.compression == "none" and stream.size_in != layer.size:
                raise DigestMismatchError(f"{self.image.reference}: layer {layer.digest} (size)",
                                          f"{layer.size} bytes", f"{stream.size_in} bytes")

        gate = _CHUNKED_WRITERS if settings.compression == "zstd:chunked" else nullcontext()
        try:
            with gate, self._streaming_one():  # zstd:chunked's writer is GIL-bound: one at a time
                if self.profile.temp_file:
                    path, stream = self.sender.compress_to_file(task.name, task.diff_id, make(0), check)
                    try:
                        self.sender.send_file(task.name, task.diff_id, path, stream.digest,
                                              stream.size_out, session)
                    finally:
                        os.unlink(path)
                elif self.profile.small_blob_limit and size_hint <= self.profile.small_blob_limit:
                    stream = self._send_small(task, make, check, session)
                else:
                    stream = self.sender.send(task.name, task.diff_id, make, check, session, None,
                                              compressing=True)
        finally:
            close()
        self._confirm(task, stream.digest, stream.size_out, task.media_type,
                      settings.compression, settings.key, annotations=stream.annotations)
        return LayerOutcome(str(stream.digest), task.diff_id, stream.size_out, task.media_type,
                            "pushed", None, "compressed", dict(stream.annotations))

    @contextmanager
    def _streaming_one(self) -> Iterator[None]:
        """Count a layer in :attr:`_streaming` while it is compressed and sent (a layer
        waiting for zstd:chunked's writer is not streaming yet)."""
        with self._lock:
            self._streaming += 1
        try:
            yield
        finally:
            with self._lock:
                self._streaming -= 1

    def _spread(self) -> bool:
        """Hand a block to the compression pool? Only while fewer layers stream than
        there are compression threads: otherwise the layers' own threads already keep
        the cores busy, and passing blocks between threads only adds switches (a fresh
        14-layer push on 2 cores: 0.24 CPU-s and 7 % of its time)."""
        return self._streaming < self.settings.threads

    def _send_small(self, task: LayerTask, make: Any, check: Any, session: Any) -> Any:
        start = self.log.now()
        stream = make(0)
        data = b"".join(stream)
        check(stream)
        if session is not None:
            session.put(stream.digest, data)
        else:
            self.client.upload_blob(self.dest.repository, stream.digest, data)
        self.log.add(task.name, task.diff_id, "upload", start, bytes=len(data),
                     bytes_in=stream.size_in, outcome="ok", detail="in memory, monolithic")
        return stream

    # config and manifest --------------------------------------------------------------
    def _push_config(self, media_type: str) -> LayerOutcome:
        config = self.image.config
        descriptor = config_descriptor(self.image, media_type)
        raw = config.raw
        actual = digest_bytes(raw)
        if actual != config.digest:
            raise DigestMismatchError(f"{self.image.reference}: config", config.digest, actual)
        name = "config"
        if self.profile.check_existing == "always" or self.profile.check_config:
            start = self.log.now()
            size = self._head_blob(config.digest)
            self.log.add(name, None, "check", start, outcome="exists" if size is not None
                         else "missing", detail=str(config.digest))
            if size is not None:
                return LayerOutcome(str(config.digest), None, size, descriptor.media_type, "exists")
        session = None
        if self.profile.mount and self.source_ref is not None and \
                self.source_ref.registry == self.dest.registry and \
                self.source_ref.repository != self.dest.repository:
            start = self.log.now()
            session = self.client.mount_blob(self.dest.repository, config.digest,
                                             self.source_ref.repository)
            self.log.add(name, None, "mount", start, outcome="mounted" if session is None
                         else "refused", detail=f"from {self.source_ref.repository}")
            if session is None:
                return self._confirmed(name, None, LayerOutcome(
                    str(config.digest), None, len(raw), descriptor.media_type, "mounted",
                    self.source_ref.repository))
        start = self.log.now()
        if self.profile.small_blob_limit and session is None:
            self.client.upload_blob(self.dest.repository, config.digest, raw)
            self.log.add(name, None, "upload", start, bytes=len(raw), detail="monolithic")
        else:
            import io

            def make(skip: int) -> StoredStream:
                return StoredStream(io.BytesIO(raw), skip)

            self.sender.send(name, None, make, lambda s: None, session, config.digest)
        return self._confirmed(name, None, LayerOutcome(str(config.digest), None, len(raw),
                                                        descriptor.media_type, "pushed"))

    def _push_manifest(self, media_type: str, layers: list[Descriptor],
                       existing: ImageManifest | None) -> tuple[str, str, str]:
        config = config_descriptor(self.image, media_type)
        raw = build_manifest(self.image, media_type, config, layers)
        digest = digest_bytes(raw)
        self.manifest_size = len(raw)
        repo, reference = self.dest.repository, self.dest.reference
        if self.by_digest:
            reference = str(digest)
        start = self.log.now()
        if not self.by_digest and self.dest.digest is not None and self.dest.digest != digest:
            raise PushError(f"cannot push to {self.dest}: the manifest's digest is {digest}")
        if self.by_digest and existing is not None and existing.digest == digest:
            self.log.add("manifest", None, "manifest", start, outcome="exists", detail=str(digest))
            return str(digest), media_type, "exists"
        if not self.by_digest and existing is not None \
                and same_content(existing, media_type, config, layers) \
                and (self.dest.digest is None or existing.digest == digest):
            self.log.add("manifest", None, "manifest", start, outcome="exists",
                         detail=f"{existing.digest} (same blobs)")
            self.manifest_size = len(existing.raw)
            return str(existing.digest), existing.media_type, "exists"
        if self.profile.check_existing == "always" and existing is None:
            head = self._head_manifest(reference)
            if head is not None and head.digest == digest:
                self.log.add("manifest", None, "manifest", start, outcome="exists",
                             detail=str(digest))
                return str(digest), media_type, "exists"
        try:
            returned = self.client.put_manifest(repo, reference, raw, media_type)
        except RegistryProtocolError as exc:
            if exc.status in (200, 201):  # the registry stored something: say so, not "no manifest"
                raise PushError(f"push to {self.dest}: {exc}") from exc
            raise
        if returned != digest:
            raise RegistryProtocolError(f"PUT manifest {self.dest}: registry says {returned}, "
                                        f"pushed {digest}")
        self.log.add("manifest", None, "manifest", start, bytes=len(raw), outcome="pushed",
                     detail=str(digest))
        return str(digest), media_type, "pushed"

    # the whole push -------------------------------------------------------------------
    def run(self) -> PushResult:
        tasks, media_type = plan_layers(self.image, self.profile.manifest_format, self.settings,
                                        self.dest)
        add_cached(tasks, self.cache, self.dest.registry, self.settings)
        existing = None
        if self.profile.registry_lookup:
            existing = add_from_registry(tasks, lambda: self.client, self.log, self.dest,
                                         self.settings, self.lookup_refs)
        threads = self.settings.threads
        if threads > 1 and any(not t.stored for t in tasks):
            self.pool = ThreadPoolExecutor(threads, thread_name_prefix="layerlab-compress")
        try:
            outcomes = self._run_layers(tasks)
            config = self._push_config(media_type)
            try:
                digest, final_type, manifest_outcome = self._push_manifest(
                    media_type, _descriptors(tasks, outcomes), existing)
            except RegistryError as exc:
                if exc.code != "MANIFEST_BLOB_UNKNOWN":
                    raise
                outcomes, config = self._push_collected(tasks, outcomes, media_type, exc)
                digest, final_type, manifest_outcome = self._push_manifest(
                    media_type, _descriptors(tasks, outcomes), existing)
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
            if self._own_progress:
                self.progress.close()
            if self.cache is not None and self.confirmed:
                self.cache.record(self.confirmed)
                self.warnings.extend(self.cache.warnings)
        return PushResult(
            source=self.image.reference, destination=str(self.dest), manifest_digest=digest,
            media_type=final_type, profile=self.profile.name, layers=tuple(outcomes),
            config=config, manifest_outcome=manifest_outcome, events=tuple(self.log.events),
            wall_seconds=self.log.now(), requests=self.requests,
            started_at=self.log.wall0, warnings=tuple(dict.fromkeys(self.warnings)),
            settings={"profile": self.profile.to_json(), "compression": self.settings.key},
            manifest_size=self.manifest_size,
            platform=str(self.image.platform or self.image.config.platform))

    def _push_collected(self, tasks: list[LayerTask], outcomes: list[LayerOutcome],
                        media_type: str, refusal: RegistryError
                        ) -> tuple[list[LayerOutcome], LayerOutcome]:
        """The registry refused the manifest because blobs this push confirmed are gone
        (a garbage collection ran between their upload and the manifest): push again
        every blob it no longer has, once."""
        start = self.log.now()
        missing = [i for i, o in enumerate(outcomes)
                   if o.outcome != "foreign" and self._head_blob(o.digest) is None]
        self.log.add("manifest", None, "manifest", start, outcome="retry",
                     detail=f"{refusal}; pushing {len(missing)} collected layers again")
        outcomes = list(outcomes)
        for i in missing:
            outcomes[i] = self._run_task(tasks[i], checked=True)
        return outcomes, self._push_config(media_type)

    def _run_layers(self, tasks: list[LayerTask]) -> list[LayerOutcome]:
        """Every layer, largest first, ``workers`` at a time. With a machine-sized
        profile the existence checks run first, all at once (a re-push is one round of
        HEADs); a profile with a fixed concurrency checks each layer in its turn."""
        results: dict[int, LayerOutcome] = {}
        checked = False
        if self.profile.concurrency == 0 and self.profile.check_existing != "never":
            to_check = [t for t in tasks if self._ordered(t)]  # a fresh push has none
            if to_check:
                with ThreadPoolExecutor(min(16, len(to_check)),
                                        thread_name_prefix="layerlab-check") as pool:
                    for task, outcome in zip(to_check, pool.map(self._check, to_check)):
                        if outcome is not None:
                            results[task.index] = outcome
            checked = True
        waiting = {t.index: t for t in tasks if t.index not in results}
        todo = [waiting[i] for i in self.profile.start_order(
            [(t.index, t.layer.uncompressed_size or t.layer.size) for t in waiting.values()])]
        workers = max(1, min(self.profile.workers, len(todo) or 1))
        if workers == 1:
            for task in todo:
                results[task.index] = self._run_task(task, checked)
            return [results[t.index] for t in tasks]
        with ThreadPoolExecutor(workers, thread_name_prefix="layerlab-push") as pool:
            futures: dict[Future, LayerTask] = {pool.submit(self._run_task, t, checked): t
                                                for t in todo}
            try:
                done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:  # Ctrl-C: stop the uploads in flight at their next chunk
                self.abort.set()
                for f in futures:
                    f.cancel()
                raise
            failure = next((f.exception() for f in done if f.exception() is not None), None)
            if failure is not None:
                self.abort.set()
                for f in pending:
                    f.cancel()
                wait(pending)
                raise failure  # what other workers confirmed is still written to the cache
            for f, task in futures.items():
                results[task.index] = f.result()
        return [results[t.index] for t in tasks]


def _descriptors(tasks: list[LayerTask], outcomes: list[LayerOutcome]) -> list[Descriptor]:
    """The manifest's layer descriptors, from what the push did with each layer.

    Annotations are facts about bytes: a blob that is the source's own (reused, mounted,
    already there) keeps the source layer's annotations; any other blob (compressed on
    the way, or an earlier compression found in the cache or the registry) carries only
    the annotations known for *its* bytes -- none of the source's, whose TOC offsets and
    digests (zstd:chunked, eStargz) would describe other bytes."""
    return [Descriptor(o.media_type, Digest(o.digest), o.size,
                       annotations=(t.layer.annotations if o.digest == str(t.layer.digest)
                                    else o.annotations),
                       urls=t.layer.urls) for t, o in zip(tasks, outcomes)]
