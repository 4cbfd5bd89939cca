"""A small deterministic discrete-event engine for fluid (rate-shared) work.

Processes are generators that yield :class:`Step` values (or :class:`Parallel` groups of
child processes) and resume when the step is done. A step is a piece of work made of
*components*, each needing an amount of one or more resources (core-seconds of ``cpu``,
bytes of ``net``...). All components of a step progress together, so a step that needs
both CPU and network (a streamed, compressed upload) moves at the pace of the slower.
A step with no components is a pure delay of ``delay`` seconds. A step may also have
``lead`` components, done before its delay (a request's sending side: the delay is the
round trip, the components the answer).

Sharing rule (hand-computable): each resource is shared equally among the steps using it
(processor sharing); a step that cannot use its whole share, because another resource or
its own limit holds it back, leaves the rest to the others (max-min fairness by
progressive filling). Example: two uploads over a 100 MB/s link get 50 MB/s each; if one
of them can only be fed at 20 MB/s by its compressor, the other gets 80 MB/s.

A resource named in ``fifo`` is served in start order instead: the earliest step using it
takes what it can, the next one gets what is left, and so on. That is how short pieces
of work queue for a lock (requests handled one after another by one event loop): each
finishes in turn, where equal sharing would finish them all together at the end.

Time advances from one step completion to the next, so results are exact up to float
rounding and depend on the inputs only (no wall clock, no randomness). Ties are broken
by start order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Collection, Generator, Iterator, Mapping, Union

__all__ = ["Component", "Step", "Parallel", "Record", "run"]

INF = math.inf
_EPS = 1e-12


@dataclass(frozen=True)
class Component:
    """``amount`` units of work taken from every resource in ``resources`` at once, at
    most ``limit`` units per second (a single thread: 1 core-second per second)."""

    resources: tuple[str, ...]
    amount: float
    limit: float = INF


@dataclass(frozen=True)
class Step:
    """One piece of a process: a delay, or work on shared resources (or both: the delay
    comes first, after the ``lead`` work if any). The other fields label the event it
    produces."""

    phase: str
    layer: str = ""
    components: tuple[Component, ...] = ()
    delay: float = 0.0
    lead: tuple[Component, ...] = ()
    bytes: int = 0
    bytes_in: int = 0
    requests: int = 0
    outcome: str = "ok"
    detail: str = ""


@dataclass(frozen=True)
class Parallel:
    """Run child processes concurrently; resume when all are done."""

    children: tuple["Process", ...]


Process = Generator[Union[Step, Parallel], None, None]


@dataclass
class Record:
    """What happened to one step: when it ran, and what it waited for."""

    index: int
    step: Step
    start: float
    end: float = 0.0
    after: int | None = None  # the record whose end let this step start


@dataclass
class _Running:
    record: Record
    wait_until: float  # the delay part ends here
    remaining: float = 1.0  # fraction of the work part left
    demand: dict[str, float] = field(default_factory=dict)
    cap: float = INF  # max progress rate (fraction / s) from component limits
    leading: bool = False  # doing the lead work; the delay and the components follow


def _load(run: _Running, components: tuple[Component, ...]) -> None:
    """Set ``run``'s demand and cap to ``components`` (no work: nothing remains)."""
    run.demand, run.cap, run.remaining = {}, INF, 1.0
    for comp in components:
        if comp.amount <= 0:
            continue
        for res in comp.resources:
            run.demand[res] = run.demand.get(res, 0.0) + comp.amount
        if comp.limit < INF:
            run.cap = min(run.cap, comp.limit / comp.amount)
    if not run.demand and run.cap == INF:
        run.remaining = 0.0


@dataclass
class _Proc:
    gen: Iterator[Union[Step, Parallel]]
    parent: "_Proc | None"
    last: int | None  # record index of the last step this process finished
    pending_children: int = 0


def _prepare(record: Record, now: float) -> _Running:
    step = record.step
    leading = bool(step.lead)  # the lead first; its end starts the delay (see run)
    run = _Running(record, now if leading else now + step.delay, leading=leading)
    _load(run, step.lead if leading else step.components)
    return run


def allocate(demands: list[dict[str, float]], caps: list[float],
             capacity: Mapping[str, float], fifo: Collection[str] = (),
             arrival: list[float] | None = None) -> list[float]:
    """Progress rates (fraction of the step per second) by progressive filling.

    Each round, every resource's remaining capacity is split equally among the unsettled
    steps using it; a step's candidate rate is the smallest its shares and its own cap
    allow. Steps held by their cap, and all users of a resource that holds every one of
    its users, are settled at their candidate; the rest share what is left next round.
    A ``fifo`` resource goes whole to its earliest unsettled user (by ``arrival``, then
    index); its later users wait for a later round.
    """
    n = len(demands)
    rates = [INF] * n
    todo = set(range(n))
    remaining = {r: capacity.get(r, INF) for d in demands for r in d}
    while todo:
        users: dict[str, list[int]] = {}
        for i in sorted(todo):
            for res in demands[i]:
                if remaining[res] < INF:
                    users.setdefault(res, []).append(i)
        waiting = set()
        for res in fifo:
            if len(users.get(res, ())) > 1:
                queue = sorted(users[res], key=lambda i: (arrival[i] if arrival else 0.0, i))
                waiting.update(queue[1:])
        if waiting:
            users = {res: [i for i in idx if i not in waiting] for res, idx in users.items()}
            users = {res: idx for res, idx in users.items() if idx}
        share = {res: max(0.0, remaining[res]) / len(idx) for res, idx in users.items()}
        cand: dict[int, float] = {}
        held: dict[int, set[str]] = {}
        for i in todo - waiting:
            best = caps[i]
            limits = {"cap": caps[i]}
            for res, amount in demands[i].items():
                if res in share:
                    limits[res] = share[res] / amount
                    best = min(best, limits[res])
            cand[i] = best
            held[i] = {k for k, v in limits.items() if v <= best * (1 + 1e-12) + 1e-300}
        settle = {i for i in cand if "cap" in held[i]}
        for res, idx in users.items():
            if all(res in held[i] for i in idx):
                settle.update(idx)
        if not settle:  # a cycle of different bottlenecks: settle the slowest step
            settle = {min(cand, key=lambda i: (cand[i], i))}
        for i in sorted(settle):
            rates[i] = cand[i]
            for res, amount in demands[i].items():
                if res in remaining and remaining[res] < INF and cand[i] < INF:
                    remaining[res] -= cand[i] * amount
        todo -= settle
    return rates


def run(main: Process, capacity: Mapping[str, float], fifo: Collection[str] = ()) -> list[Record]:
    """Run ``main`` (and the processes it starts) to the end; return every step's record.
    ``fifo`` names the resources served in start order (see :func:`allocate`)."""
    records: list[Record] = []
    running: list[_Running] = []
    waiting: dict[int, _Proc] = {}  # record index -> process waiting for it
    ready: list[tuple[_Proc, int | None]] = [(_Proc(iter(main), None, None), None)]
    now = 0.0

    def advance(proc: _Proc, after: int | None) -> None:
        """Resume ``proc`` until it blocks on a step or a group, or ends."""
        try:
            item = next(proc.gen)
        except StopIteration:
            parent = proc.parent
            if parent is not None:
                parent.pending_children -= 1
                if _is_later(proc.last, parent.last, records):
                    parent.last = proc.last
                if parent.pending_children == 0:
                    ready.append((parent, parent.last))
            return
        if isinstance(item, Parallel):
            if not item.children:
                ready.append((proc, after))
                return
            proc.pending_children = len(item.children)
            proc.last = after
            for child in item.children:
                ready.append((_Proc(iter(child), proc, after), after))
            return
        record = Record(len(records), item, now, after=after)
        records.append(record)
        running.append(_prepare(record, now))
        waiting[record.index] = proc

    while True:
        while ready:
            proc, after = ready.pop(0)
            advance(proc, after)
        finished = [r for r in running if r.wait_until <= now + _EPS and r.remaining <= _EPS]
        leads = [r for r in finished if r.leading]
        if leads:  # lead work done: the delay, then the components
            for r in leads:
                r.leading = False
                r.wait_until = now + r.record.step.delay
                _load(r, r.record.step.components)
            continue
        if finished:
            for r in finished:
                running.remove(r)
                r.record.end = now
                proc = waiting.pop(r.record.index)
                proc.last = r.record.index
                ready.append((proc, r.record.index))
            continue
        if not running:
            break
        working = [r for r in running if r.wait_until <= now + _EPS and r.remaining > _EPS]
        rates = allocate([r.demand for r in working], [r.cap for r in working], capacity, fifo,
                         [r.wait_until for r in working])
        horizon = INF
        for r in running:
            if r.wait_until > now + _EPS:
                horizon = min(horizon, r.wait_until - now)
        for r, rate in zip(working, rates):
            if rate == INF:
                horizon = 0.0
            elif rate > 0:
                horizon = min(horizon, r.remaining / rate)
        if horizon == INF:
            raise RuntimeError("simulation stalled: work with no capacity to run on")
        for r, rate in zip(working, rates):
            r.remaining = 0.0 if rate == INF else r.remaining - rate * horizon
        now += horizon
        for r in running:
            if r.wait_until <= now + _EPS and r.remaining <= 1e-9:
                r.remaining = 0.0  # float rounding: the step is done
    return records


def _is_later(a: int | None, b: int | None, records: list[Record]) -> bool:
    if a is None:
        return False
    if b is None:
        return True
    return (records[a].end, a) > (records[b].end, b)

