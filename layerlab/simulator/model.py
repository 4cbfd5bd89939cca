"""The push-cost model: a push turned into steps on shared resources, then run.

The flow follows the seed post and layerlab's pusher (:mod:`layerlab.pusher.engine`),
decided by the same :class:`~layerlab.pusher.PushProfile` fields:

0. **lookup** - with ``registry_lookup``, when some layer's compressed digest is not
   known from the cache: read the destination tag's manifest and config, then the
   repository's tag list and another tag (2 to 4 requests, in sequence);
1. layers go ``workers`` at a time, largest first;
2. **check** - a HEAD in the target repository when the profile checks and a candidate
   digest is known (``always``: from the source, the cache or the lookup; ``cached``:
   from the cache only); ``exists`` ends the layer;
3. **mount** - with ``mount``, when the cache knows another repository holding the blob;
   a refused mount leaves an upload session (no POST needed later);
4. **compress** - with ``temp_file``, compress and hash into a temporary file first
   (a ``monolithic`` upload that compresses on the fly pre-computes the digest the same
   way, without the file);
5. **upload** - POST, then the body: streamed (compression, hashing, network and the
   registry's ingest pipelined, at the pace of the slowest), or read from the temp file;
   a proxy that buffers request bodies receives the whole body, then forwards it.
   Layers up to ``small_blob_limit`` are compressed in memory and sent in one request;
6. **commit** - the final PUT: the registry verifies the digest (free with streaming
   hashing; a re-read with ``verify="reread"``) and moves the blob into storage (for a
   monolithic PUT this is the end of the upload request); with ``confirm_uploads`` a HEAD
   follows every committed or mounted blob;
7. **manifest** - the config blob (HEAD with ``always`` or ``check_config``, then
   uploaded if missing), then the manifest (HEAD with ``always``; PUT unless it is there
   already).

Resources (shared as in :mod:`.engine`): ``cpu`` (client cores), ``compress_pool`` (the
pusher's block-compression threads), ``net`` (the link), ``registry`` (its cores),
``disk`` (temp files), ``cache_db`` (the client's digest cache, one writer),
``proxy_disk``, ``backend`` (the registry's storage moves), ``store_lock`` (the registry
storing one blob at a time: ``registry_blob_overhead`` each), and ``gil`` when the
registry is ``colocated`` (a Python registry in the client's process: its receiving
and every request's handling hold the interpreter lock, and take client ``cpu``).
Every request waits ``rtt`` plus ``client_request_overhead + request_overhead +
lookups * lookup_cost`` (a delay; with a colocated registry, work under the lock; a
request without a body also queues on ``request_lock``: such requests are handled one
after another in arrival order, so a burst of HEADs finishes one by one, not all
together at the end; the client's start of each layer, ``client_layer_overhead``, takes
its turn in that row too).
With a colocated registry, each of the pusher's threads (the main one, every checker and
every upload worker) also pays ``client_connect_cost`` under the lock before its first
request: starting the thread and opening its connection, the registry accepting it.
When a pool of checkers or workers is done, the main thread shuts it down, waking and
joining each thread (``client_thread_join_cost`` each) before it goes on.
"""

from __future__ import annotations

from collections import deque
from copy import copy
from typing import Any, Iterator

from .engine import INF, Component, Parallel, Step, run
from .inputs import commit_bytes
from .plan import LayerPlan, Scenario, lookup_requests, plan_layers

__all__ = ["run_scenario"]


# -- the process ------------------------------------------------------------------------
_REQUEST_LOCK = ("gil", "cpu", "request_lock")  # a colocated registry handling a bodiless request
# Share of a bodiless request's handling done before its round trip (the client writing
# the request, the registry reading it); the rest comes after (answering, reading the
# answer). A burst of HEADs therefore leaves one by one as well as returning one by one.
_SENDING_SHARE = 0.5


def _in_a_row(resources: tuple[str, ...], busy: float, connect: float = 0.0) -> dict[str, Any]:
    """A bodiless request handled one at a time on ``resources``: ``connect`` and its
    sending share before the round trip, the rest after."""
    sending = busy * _SENDING_SHARE
    return {"lead": (Component(resources, connect + sending, 1.0),),
            "components": (Component(resources, busy - sending, 1.0),)}


class _Costs:
    """Per-request delays and per-byte work, from the scenario's figures."""

    def __init__(self, sc: Scenario) -> None:
        m, r = sc.machine, sc.registry
        self.sc = sc
        self.overhead = r.request_overhead if r.request_overhead is not None else m.registry_request_overhead
        if r.cache:
            self.lookup = (r.cached_lookup_cost if r.cached_lookup_cost is not None
                           else m.registry_cached_lookup_cost)
        else:
            self.lookup = r.lookup_cost if r.lookup_cost is not None else m.registry_lookup_cost
        self.ingest = r.ingest_rate if r.ingest_rate is not None else m.registry_ingest_rate
        self.reread = r.reread_rate if r.reread_rate is not None else m.registry_reread_rate
        self.colocated = r.colocated
        self.fresh = False  # this thread has not connected yet (see thread())
        self.client = m.client_request_overhead
        self.registry_resources = (("registry", "cpu", "gil") if r.colocated else
                                   ("registry", "cpu") if r.same_machine else ("registry",))

    def thread(self) -> "_Costs":
        """The costs as seen by a new thread of the pusher: its first request connects."""
        view = copy(self)
        view.fresh = True
        return view

    def req(self, lookups: float = 0, work: tuple[Component, ...] = (),
            extra: float = 0.0) -> dict[str, Any]:
        """``delay`` and ``components`` of a request step doing ``work``: a round trip,
        then the client's and the registry's time per request (``extra``: the registry's
        own wait in this request, e.g. committing a blob). When the registry is
        colocated (a Python registry in the client's process) that time is CPU work
        holding the interpreter lock, shared by all concurrent requests; a request without
        a body queues for it, part before its round trip (``_SENDING_SHARE``), the rest
        after. With ``serial_requests`` only the registry's share queues so (the client's
        own is a delay: concurrent requests overlap it). Otherwise a plain delay."""
        server = self.overhead + lookups * self.lookup
        busy = self.client + server
        if not self.colocated:
            if self.sc.registry.serial_requests and not work:  # the registry's share in a row
                return {"delay": self.sc.network.rtt + self.client + extra,
                        **_in_a_row(("request_lock",), server)}
            return {"delay": self.sc.network.rtt + busy + extra, "components": tuple(work)}
        connect = self.sc.machine.client_connect_cost if self.fresh else 0.0
        self.fresh = False
        if work:  # a body's handling shares the lock like the body
            return {"delay": self.sc.network.rtt + extra,
                    "lead": (Component(_REQUEST_LOCK, connect, 1.0),) if connect else (),
                    "components": tuple(work) + (Component(("gil", "cpu"), busy, 1.0),)}
        return {"delay": self.sc.network.rtt + extra, **_in_a_row(_REQUEST_LOCK, busy, connect)}

    def server(self, lookups: float, work: tuple[Component, ...] = (),
               extra: float = 0.0) -> dict[str, Any]:
        """The registry's lookups inside a request already counted (a monolithic PUT's
        commit)."""
        seconds = lookups * self.lookup
        if self.colocated:
            handling = Component(("gil", "cpu") if work else _REQUEST_LOCK, seconds, 1.0)
            return {"delay": extra, "components": tuple(work) + (handling,)}
        return {"delay": seconds + extra, "components": tuple(work)}

    def registry_ingest(self, nbytes: int) -> Component:
        """The registry receiving, hashing and writing ``nbytes`` (one core per request)."""
        return Component(self.registry_resources, nbytes / self.ingest, 1.0)

    def network(self, nbytes: int) -> Component:
        return Component(("net",), float(nbytes), self.sc.network.per_connection)

    def compression(self, plan: LayerPlan) -> tuple[Component, ...]:
        """Client CPU to compress and hash a layer: blocks on the compression threads (a
        pool shared by all layers when there are several threads), both hashes on the
        layer's own thread."""
        m, sc = self.sc.machine, self.sc
        size_in, size_out = plan.bytes_in, plan.bytes_out
        stream_work = (size_in + size_out) / m.sha256_rate  # both hashes
        if not plan.compress:
            return (Component(("cpu",), size_out / m.sha256_rate, 1.0),) if size_out else ()
        compress = size_in / m.compress_speed(sc.compression_key)
        # a client tarring the layer from files frames each on the layer's own stream
        stream_work += sc.layers[plan.index].files * m.client_file_cost
        if sc.threads <= 1:
            return (Component(("cpu",), compress + stream_work, 1.0),)
        return (Component(("cpu", "compress_pool"), compress, float(sc.threads)),
                Component(("cpu",), stream_work, 1.0))


def _body(costs: _Costs, name: str, nbytes: int, client: tuple[Component, ...],
          bytes_in: int, detail: str, requests: int = 1) -> Iterator[Step]:
    """One request carrying ``nbytes`` to the registry (through the proxy, if any): the
    request's delay, then the body; a buffering proxy receives it all, then forwards it."""
    reg = costs.sc.registry
    net = costs.network(nbytes)
    stream_cost = costs.sc.machine.client_stream_cost
    if stream_cost > 0:  # the client's own pace for one stream (a cap, no resource)
        client = client + (Component((), nbytes * stream_cost, 1.0),)
    if reg.proxy_buffer is None:
        yield Step("upload", name, **costs.req(0, client + (net, costs.registry_ingest(nbytes))),
                   bytes=nbytes, bytes_in=bytes_in, requests=requests, detail=detail)
        return
    to_disk = nbytes > reg.proxy_buffer
    receive = client + (net,)
    if to_disk:
        receive += (Component(("proxy_disk",), float(nbytes)),)
    yield Step("upload", name, **costs.req(0, receive), bytes=nbytes, bytes_in=bytes_in,
               requests=requests, detail=detail)
    forward = (Component(("proxy_disk",) if to_disk else ("proxy_memory",), float(nbytes)),
               costs.registry_ingest(nbytes))
    yield Step("upload", name, forward,
               detail="proxy forwards from disk" if to_disk else "proxy forwards")


def _commit_work(sc: Scenario, costs: _Costs, nbytes: int) -> tuple[Component, ...]:
    work: list[Component] = []
    if sc.machine.registry_blob_overhead > 0:  # syncing, moving and linking the blob: mostly
        # waiting for the disk, off the interpreter lock and the cores, one blob at a time
        work.append(Component(("store_lock",), sc.machine.registry_blob_overhead, 1.0))
    if sc.registry.verify == "reread":
        work.append(Component(costs.registry_resources, nbytes / costs.reread, 1.0))
    if sc.registry.move_rate is not None or sc.machine.registry_commit_rate < INF:
        flushed = commit_bytes(nbytes, sc.registry.writeback_every)
        work.append(Component(("backend",), float(flushed)))
    return tuple(work)


def _send(sc: Scenario, costs: _Costs, name: str, nbytes: int, client: tuple[Component, ...],
          bytes_in: int, session: bool) -> Iterator[Step]:
    """Upload a blob following the profile's ``upload`` mode (``session``: an upload
    session is open already, from a refused mount)."""
    p = sc.profile
    if not session:
        yield Step("upload", name, **costs.req(), requests=1, detail="POST")
    if p.upload == "monolithic":  # one PUT ?digest= carrying the body; commit inside it
        yield from _body(costs, name, nbytes, client, bytes_in, "PUT")
        yield Step("upload", name, **costs.server(1, _commit_work(sc, costs, nbytes),
                                                  sc.registry.blob_overhead), detail="commit")
        return
    if p.upload == "chunked" and nbytes > p.chunk_size > 0:
        sent = 0
        while sent < nbytes:
            part = min(p.chunk_size, nbytes - sent)
            share = part / nbytes
            part_client = tuple(Component(c.resources, c.amount * share, c.limit) for c in client)
            yield from _body(costs, name, part, part_client, int(round(bytes_in * share)),
                             "PATCH")
            sent += part
    else:
        yield from _body(costs, name, nbytes, client, bytes_in, "PATCH")
    yield Step("commit", name, **costs.req(1, _commit_work(sc, costs, nbytes),
                                           sc.registry.blob_overhead), requests=1, detail="PUT")


def _upload(sc: Scenario, costs: _Costs, plan: LayerPlan, name: str) -> Iterator[Step]:
    p = sc.profile
    size_in, size_out = plan.bytes_in, plan.bytes_out
    cpu = costs.compression(plan)
    session = plan.mount_from is not None  # a refused mount opened a session
    if plan.compress and p.temp_file:
        yield Step("compress", name, cpu + (Component(("disk",), float(size_out)),),
                   bytes=size_out, bytes_in=size_in, detail="to a temporary file")
        yield from _send(sc, costs, name, size_out, (Component(("disk",), float(size_out)),),
                         0, session)
        return
    if plan.small:  # compressed in memory, then one request with the body
        yield Step("upload", name, cpu, bytes_in=size_in, detail="in memory")
        yield from _body(costs, name, size_out, (), 0, "monolithic")
        yield Step("upload", name, **costs.server(1, _commit_work(sc, costs, size_out),
                                                  sc.registry.blob_overhead), detail="commit")
        return
    if plan.compress and p.upload == "monolithic":  # the digest must precede the body
        yield Step("compress", name, cpu, bytes=size_out, bytes_in=size_in,
                   detail="digest pre-computed")
    yield from _send(sc, costs, name, size_out, cpu, size_in if plan.compress else 0, session)


def _start(sc: Scenario, plan: LayerPlan) -> Iterator[Step]:
    """The client's own start of a layer (``client_layer_overhead``), one at a time and in
    the row of bodiless requests (measured of dockerd's first push into Distribution: from
    5 uploads at once the starts add as much as from one)."""
    if sc.machine.client_layer_overhead:
        yield Step("check" if plan.check else "upload", sc.layers[plan.index].name,
                   (Component(("request_lock",), sc.machine.client_layer_overhead, 1.0),),
                   detail="the client's start of the layer")


def _check(sc: Scenario, costs: _Costs, plan: LayerPlan) -> Iterator[Step]:
    name = sc.layers[plan.index].name
    yield from _start(sc, plan)
    if plan.check:
        yield Step("check", name, **costs.req(1), requests=1,
                   outcome="exists" if plan.exists else "missing")
        if plan.stale:  # the digest cache forgets the location (one writer at a time)
            yield Step("check", name, (Component(("cache_db",), sc.machine.client_cache_write),),
                       detail="stale cache entry forgotten")


def _layer(sc: Scenario, costs: _Costs, plan: LayerPlan, checked: bool) -> Iterator[Step]:
    name = sc.layers[plan.index].name
    if not checked:
        yield from _check(sc, costs, plan)
    elif not plan.check:  # the checkers started the others
        yield from _start(sc, plan)
    if plan.exists:
        return
    if plan.mount_from is not None:
        yield Step("mount", name, **costs.req(2, extra=sc.registry.mount_overhead), requests=1,
                   outcome="mounted" if plan.mounted else "refused")
        if plan.mounted:
            yield from _confirm(sc, costs, name)
            return
    yield from _upload(sc, costs, plan, name)
    yield from _confirm(sc, costs, name)


def _confirm(sc: Scenario, costs: _Costs, name: str) -> Iterator[Step]:
    if sc.profile.confirm_uploads:
        yield Step("check", name, **costs.req(1), requests=1, outcome="exists",
                   detail="confirming the upload")


def _worker(sc: Scenario, costs: _Costs, queue: deque[LayerPlan], checked: bool) -> Iterator[Step]:
    while queue:
        yield from _layer(sc, costs, queue.popleft(), checked)


def _checker(sc: Scenario, costs: _Costs, queue: deque[LayerPlan]) -> Iterator[Step]:
    while queue:
        yield from _check(sc, costs, queue.popleft())


def _finish(sc: Scenario, costs: _Costs, looked_up: bool) -> Iterator[Step]:
    """The config blob, then the manifest."""
    p = sc.profile
    always = p.check_existing == "always"
    present = sc.config_present
    checked = always or p.check_config
    if checked:
        yield Step("check", "config", **costs.req(1), requests=1,
                   outcome="exists" if present else "missing")
    if not (checked and present):
        nbytes = sc.config_size
        if getattr(p, "small_blob_limit", 0):
            yield from _body(costs, "config", nbytes, (), 0, "monolithic")
            yield Step("upload", "config", **costs.server(1, extra=sc.registry.blob_overhead),
                       detail="commit")
        else:
            yield from _send(sc, costs, "config", nbytes, (), 0, False)
        yield from _confirm(sc, costs, "config")
    if always and present and looked_up:
        yield Step("manifest", "manifest", outcome="exists", detail="same blobs")
        return
    if always:
        yield Step("manifest", "manifest", **costs.req(1), requests=1,
                   outcome="exists" if present else "missing", detail="HEAD")
        if present:
            return
    yield Step("manifest", "manifest",
               **costs.req(len(sc.layers) + 1, (costs.network(sc.manifest_size),)),
               bytes=sc.manifest_size, requests=1, outcome="pushed")


def _join(per_thread: float, threads: int, phase: str, what: str) -> Iterator[Step]:
    """The main thread shutting down a finished pool of ``threads``."""
    if per_thread:
        yield Step(phase, "", delay=threads * per_thread,
                   detail=f"{what}' {threads} threads joined")


def run_scenario(sc: Scenario):
    """Run one scenario through the engine; return ``(records, plans)``."""
    plans = plan_layers(sc)
    costs = _Costs(sc).thread()  # the main thread's
    lookups = lookup_requests(sc)
    # a machine-sized profile checks every layer first, all at once (up to 16 threads)
    check_first = sc.profile.concurrency == 0 and sc.profile.check_existing != "never"

    def main() -> Iterator[Any]:
        for k in range(lookups):
            yield Step("lookup", "lookup", **costs.req(), requests=1,
                       detail=f"request {k + 1} of {lookups}")
        todo = plans
        if check_first:
            queue = deque(pl for pl in plans if pl.check)
            if queue:  # the pusher starts no checkers when no layer has a digest to check
                checkers = min(16, len(queue))
                yield Parallel(tuple(_checker(sc, costs.thread(), queue) for _ in range(checkers)))
                yield from _join(m.client_thread_join_cost, checkers, "check", "the checkers")
            todo = [pl for pl in plans if not pl.exists]
        by_index = {pl.index: pl for pl in todo}
        order = deque(by_index[i] for i in sc.profile.start_order(
            [(pl.index, sc.layers[pl.index].uncompressed_size) for pl in todo]))
        workers = min(sc.workers, len(order)) or 1
        if order:
            yield Parallel(tuple(_worker(sc, costs.thread(), order, check_first)
                                 for _ in range(workers)))
            if workers > 1:  # one worker runs on the main thread, without a pool
                yield from _join(m.client_thread_join_cost, workers, "upload",
                                 "the upload workers")
        yield from _finish(sc, costs, lookups > 0)
        if m.client_push_overhead:
            yield Step("manifest", "manifest", delay=m.client_push_overhead,
                       detail="client bookkeeping (start-up, digest cache)")

    m, n, r = sc.machine, sc.network, sc.registry
    link = n.bandwidth
    if r.serial_throttle and link < INF:  # the registry's limit and its loop add up
        link = 1.0 / (1.0 / link + 1.0 / m.registry_loop_rate)
    capacity = {
        "cpu": m.cpu,
        "cache_db": 1.0,
        "gil": 1.0,
        "request_lock": 1.0,
        "store_lock": 1.0,
        "compress_pool": float(sc.threads),
        "net": link,
        "registry": float(r.cores if r.cores is not None else m.registry_cores),
        "disk": m.disk_rate,
        "proxy_disk": r.proxy_disk_rate,
        "proxy_memory": r.proxy_memory_rate,
        "backend": r.move_rate if r.move_rate is not None else m.registry_commit_rate,
    }
    return run(main(), capacity, fifo=("request_lock",)), plans


