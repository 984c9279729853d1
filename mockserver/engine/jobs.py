"""Provider-neutral jobs: scheduling on simulated workers and a lifecycle read off the clock.

A job is scheduled once, at submission: it gets the time a worker picks it up (``start_at``)
and the time it finishes (``end_at``). Its state is then a pure function of the virtual
time at which it is read, so there is no timer or task per job. Workers are a FIFO pool per
provider, so jobs really queue and queue positions and remaining times are true. Cancelling
frees the worker and re-plans the jobs still waiting. No HTTP here.
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

# Provider-neutral states, read from lifecycle.schema.json; each provider's lifecycle.json
# maps them to wire strings.
from nanobanana_mock.schemas.lifecycle import TERMINAL, State

__all__ = [
    "DELETED",
    "EVICTED",
    "EXPIRED",
    "FATES",
    "JOB_BYTES",
    "MAX_GONE",
    "TERMINAL",
    "UNKNOWN",
    "Failure",
    "Job",
    "JobStore",
    "Output",
    "State",
    "Surface",
]

# What a job costs in memory besides its prompt: the Job object (slots), its id, owner and
# float fields, and its places in the store's dict and queues (measured with tracemalloc,
# rounded up). A job keeps no part of the request body but its prompt, so this and the
# prompt's size are what ``JobStore`` counts against ``max_job_bytes``.
JOB_BYTES = 1024

# Why the store cannot show a job id (``JobStore.fate``): its retention passed; it was dropped
# before that to keep the store within ``max_jobs`` / ``max_job_bytes``; its owner deleted it
# (a Gemini batch); or it is not known (never made for this provider and key, or gone past
# the ``MAX_GONE`` remembered).
EXPIRED, EVICTED, DELETED, UNKNOWN = "expired", "evicted", "deleted", "unknown"
FATES = (EXPIRED, EVICTED, DELETED, UNKNOWN)  # every reason a job id is not shown
MAX_GONE = 100_000  # gone job ids remembered, the oldest forgotten first: about 130 bytes
# each (the id, its place in a dict and a queue; the record is shared), 13 MB at most


class Surface(StrEnum):
    """The point of the lifecycle at which a decided failure becomes visible."""

    SUBMIT = "submit"  # failed at once, never takes a worker
    START = "start"  # fails when a worker picks it up
    END = "end"  # fails when generation would have finished


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure decided at submission (by a fault rule or a test)."""

    error: str
    error_type: str = "INFERENCE_FAILURE"
    surface: Surface = Surface.END
    after_polls: int | None = None  # also fail on this many status reads, if sooner
    at: float | None = None  # an absolute virtual time instead of a surface (forced by hand)


@dataclass(frozen=True, slots=True)
class Output:
    """What a successful job produces: ``count`` images of one size and format."""

    width: int
    height: int
    fmt: str
    count: int = 1


@dataclass(slots=True, eq=False)
class Job:
    """One generation request and its schedule. Times are virtual seconds."""

    id: str
    provider: str
    model: str
    owner: str  # fingerprint of the API key: ids are only visible to their owner
    text: bytes  # the request's prompt in UTF-8 (schema-bounded): see ``prompt``
    output: Output
    image_seed: int  # from the mock's seed and a digest of the whole body (never kept)
    cost: float
    submitted_at: float
    ready_at: float  # earliest time a worker may take it (dispatch delay)
    duration: float  # generation time once running
    expires_at: float
    failure: Failure | None = None
    seq: int = 0
    start_at: float = 0.0
    end_at: float = 0.0
    cancelled_at: float | None = None
    polls: int = 0
    file_size: int | None = None  # bytes of its first image, once rendered
    seed: int | None = None  # the seed the request asked for, if any (answers echo it)
    inputs: int = 0  # how many input images the request gave (answers count them)
    kind: str = ""  # what the route that made it calls it: "" a generation, "batch" a batch
    size: int = 0  # roughly what it holds in bytes, set when stored (see ``footprint``)

    @property
    def prompt(self) -> str:
        """The request's prompt, echoed by answers and drawn on images. Kept as UTF-8: a str
        of non-ASCII text takes 2 or 4 bytes a character, and CPython adds a UTF-8 copy the
        first time it is written as JSON (160 KB for a prompt of 20,000 emoji, not 80)."""
        return self.text.decode("utf-8", "surrogatepass")

    def footprint(self) -> int:
        """Roughly what the job holds in memory, in bytes (``max_job_bytes`` counts it)."""
        return JOB_BYTES + len(self.text)

    @property
    def fail_at(self) -> float:
        """When the decided failure surfaces by time (inf when the job succeeds)."""
        failure = self.failure
        if failure is None:
            return math.inf
        if failure.at is not None:
            return failure.at
        if failure.surface is Surface.SUBMIT:
            return self.submitted_at
        return self.start_at if failure.surface is Surface.START else self.end_at

    @property
    def busy_until(self) -> float:
        """When the job stops holding its worker."""
        if self.cancelled_at is not None:
            return min(self.cancelled_at, self.end_at)
        return min(self.end_at, self.fail_at)

    def state(self, now: float) -> State:
        """The job's state at virtual time ``now`` (never moves back as ``now`` grows)."""
        if self.cancelled_at is not None:
            return State.CANCELLED
        failure = self.failure
        if failure is not None and (
            now >= self.fail_at
            or (failure.after_polls is not None and self.polls >= failure.after_polls)
        ):
            return State.FAILED
        if now >= self.end_at:
            return State.SUCCEEDED
        return State.RUNNING if now >= self.start_at else State.QUEUED

    def finished_at(self, now: float) -> float | None:
        """When the job reached its terminal state, or None while it is still live."""
        state = self.state(now)
        if state is State.CANCELLED:
            return self.cancelled_at
        if state is State.FAILED:
            return min(now, self.fail_at)
        return self.end_at if state is State.SUCCEEDED else None


class WorkerPool:
    """FIFO workers of one provider; every job is planned onto the first free worker.

    The jobs in flight are kept in submission order, a subset of the store's jobs of this
    provider: so a job the store lets go of is the first in flight, or not in flight at all."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._free = [0.0] * workers  # heap of the times each worker becomes free
        self._inflight: deque[Job] = deque()  # planned, not yet done, in submission order
        self._pruned_at = -math.inf  # the oldest in-flight job was still busy then
        # Queue positions, all worked out in one pass when a second job asks at the same
        # time under the same plan (polling every job of a queue of n is then n, not n²);
        # ``_version`` moves whenever a start time may have.
        self._version = 0
        self._positions: dict[int, int] = {}
        self._positions_key: tuple[float, int] | None = None
        self._walked_key: tuple[float, int] | None = None

    def plan(self, job: Job, now: float) -> None:
        if job.failure is not None and job.failure.surface is Surface.SUBMIT:
            job.start_at = job.end_at = job.submitted_at
            return
        self._assign(job, self._free)
        self._inflight.append(job)
        self._version += 1
        if now > self._pruned_at:  # until time moves, the oldest job is still busy
            self._prune(now)

    def release(self, job: Job, now: float) -> None:
        """Cancel ``job`` at ``now``: free its worker and re-plan the jobs still waiting."""
        before, waited = job.busy_until, job.start_at > now
        job.cancelled_at = now
        self.replan(now, job, before, waited)

    def replan(
        self, now: float, changed: Job | None = None, before: float = 0.0, waited: bool = False
    ) -> int:
        """Re-plan the waiting jobs after ``changed`` stopped early (cancelled, failed,
        finished): in the current plan it held a worker until ``before``, and was waiting
        (``waited``) or running.

        Only the starts (and so the ends) of the jobs waiting can move, and a job's plan
        depends only on when the workers are free as its turn comes. So the current plan is
        replayed beside the new one, and re-planning stops as soon as both leave the workers
        free at the same times: every later job keeps its plan. Cancelling the last of
        20,000 queued jobs, or a job no one was waiting behind, re-plans nothing; cancelling
        the first of a full queue still moves every job behind it (one cheap pass). Returns
        how many jobs were re-planned (tests count work, not wall time)."""
        self._version += 1
        running: list[float] = []  # the workers' busy times, new plan
        old_running: list[float] = []  # and in the current plan
        waiting: list[Job] = []  # in submission order, ``changed`` among them if it waited
        for j in self._inflight:  # one cheap pass: this is most of the cost
            if j is changed:
                busy = j.busy_until
                if waited:
                    waiting.append(j)
                elif before > now:
                    old_running.append(before)
                if busy > now:
                    if j.start_at <= now:
                        running.append(busy)
                    elif not waited:
                        waiting.append(j)
                continue
            if j.start_at > now:  # waiting (only ``changed`` can have stopped before its start)
                waiting.append(j)
                continue
            busy = j.end_at if j.failure is None and j.cancelled_at is None else j.busy_until
            if busy > now:
                running.append(busy)
                old_running.append(busy)
            # a job done already stays until it reaches the head (``_prune``): it is neither
            # running nor waiting, and ``queue_position`` does not count it
        if changed is not None and changed.busy_until <= now and changed in self._inflight:
            self._inflight.remove(changed)  # stopped before its start: it would count as waiting
        free = self._base(running, now)
        # Before ``changed``'s turn, a job that waited keeps its plan: the workers' free times
        # only move on through it. From ``changed`` on, the current plan (``old``) is replayed
        # beside the new one until both agree.
        old = None if waited else self._base(old_running, now)
        replanned = 0
        replace = heapq.heapreplace
        for j in waiting:
            if old is None:  # not yet at ``changed``, which waited
                if j is not changed:
                    replace(free, j.end_at if j.failure is None else j.busy_until)
                    continue
                old = list(free)
            if j is changed:
                if waited:
                    replace(old, before)
                if j.busy_until > now:
                    self._assign(j, free)
                    replanned += 1
                continue
            old_start, old_end = j.start_at, j.end_at
            failure = j.failure
            replace(old, old_end if failure is None else j.busy_until)
            start = j.start_at = max(j.ready_at, free[0])  # ``_assign``, inlined
            end = j.end_at = start + j.duration
            replace(free, end if failure is None else j.busy_until)
            replanned += 1
            if start == old_start and end == old_end and sorted(free) == sorted(old):
                return replanned  # both plans agree from here on (and so does ``_free``)
        self._free = free
        return replanned

    def _base(self, running: list[float], now: float) -> list[float]:
        """The workers' free times at ``now``: the running jobs' ends, the others at once."""
        free = running + [now] * max(0, self.workers - len(running))
        heapq.heapify(free)
        return free

    def queue_position(self, job: Job, now: float) -> int:
        """How many jobs a worker will take before this one (0 once it is running, or done)."""
        if job.start_at <= now or job.busy_until <= now:
            return 0
        key = (now, self._version)
        if self._positions_key == key:
            return self._positions.get(job.seq, 0)
        if self._walked_key == key:  # a second job asks: answer every job at once
            return self.queue_positions(now).get(job.seq, 0)
        self._walked_key = key
        self._prune(now)
        ahead = 0
        for other in self._inflight:
            if other.seq >= job.seq:
                break
            if other.start_at > now:
                ahead += 1
        return ahead

    def queue_positions(self, now: float) -> dict[int, int]:
        """The queue position of every waiting job, by ``seq``, in one pass (a listing of
        n jobs asks :meth:`queue_position` n times otherwise: a walk each, n² in all).
        Kept until the time or the plan changes; read it, never change it."""
        key = (now, self._version)
        if self._positions_key == key:
            return self._positions
        self._prune(now)
        positions: dict[int, int] = {}
        ahead = 0
        for other in self._inflight:
            if other.start_at > now:
                positions[other.seq] = ahead
                ahead += 1
        self._positions, self._positions_key = positions, key
        return positions

    def forget(self, job: Job) -> None:
        """The store let go of ``job`` (its oldest of this provider)."""
        if self._inflight and self._inflight[0] is job:
            self._inflight.popleft()

    @staticmethod
    def _assign(job: Job, free: list[float]) -> None:
        """Give ``job`` the first free worker (``free`` is a heap of when each is free)."""
        start = job.start_at = max(job.ready_at, free[0])
        end = job.end_at = start + job.duration
        heapq.heapreplace(free, end if job.failure is None else job.busy_until)

    def _prune(self, now: float) -> None:
        inflight = self._inflight
        while inflight and inflight[0].busy_until <= now:
            inflight.popleft()
        self._pruned_at = now


@dataclass(slots=True)
class _Owner:
    spent: float = 0.0


class _Gone(NamedTuple):
    """What the store remembers of a job it let go of: whose it was, and why it went."""

    provider: str
    owner: str
    model: str
    reason: str  # EXPIRED or EVICTED


class _Lane:
    """One provider's share of the store: its workers, and its jobs in submission order
    (which is also the order they expire in)."""

    __slots__ = ("pool", "queue")

    def __init__(self, workers: int) -> None:
        self.pool = WorkerPool(workers)
        self.queue: deque[Job] = deque()


class JobStore:
    """Every job of every provider, bounded by count, by bytes and by retention.

    A provider's jobs expire in the order they were submitted (its retention is one setting
    for the life of a store, and the clock only moves forward), so a queue per provider finds
    the expired ones in constant time, and the oldest job of all is at the head of one of
    them: no heap, no ordered dict, nothing to rebuild. A job whose expiry is forced early
    (the control plane) is hidden at once and freed when its turn comes. The ids of the
    last ``max_gone`` jobs let go of are remembered, with why they went (:meth:`fate`)."""

    def __init__(
        self,
        workers: int,
        max_jobs: int,
        max_owners: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        max_gone: int = MAX_GONE,
    ) -> None:
        self._workers = workers
        self._max_jobs = max_jobs
        self._max_bytes = max_bytes
        self.bytes = 0  # what the kept jobs hold, roughly (``Job.size``)
        self._max_owners = max_owners
        self._jobs: dict[str, Job] = {}  # by id, in submission order
        self._lanes: dict[str, _Lane] = {}
        self._owners: OrderedDict[str, _Owner] = OrderedDict()
        self._gone: dict[str, _Gone] = {}  # by id: whose job it was, and why it went
        self._gone_order: deque[str] = deque()  # the same ids, oldest first
        self._records: dict[_Gone, _Gone] = {}  # one shared record per owner, model, reason
        self._max_gone = max_gone
        self._seq = 0
        self.evicted = 0
        self._removed: set[int] = set()  # the seqs of removed jobs still queued
        self.charged: dict[str, float] = {}  # what jobs cost, by provider (the metrics)

    def __len__(self) -> int:
        return len(self._jobs)

    def pool(self, provider: str) -> WorkerPool:
        return self._lane(provider).pool

    def _lane(self, provider: str) -> _Lane:
        lane = self._lanes.get(provider)
        if lane is None:
            lane = self._lanes[provider] = _Lane(self._workers)
        return lane

    def add(self, job: Job, now: float) -> Job:
        """Plan ``job`` onto its provider's workers and keep it until it expires."""
        self.evict(now)
        self._seq += 1
        job.seq = self._seq
        lane = self._lanes.get(job.provider) or self._lane(job.provider)
        lane.pool.plan(job, now)
        self._jobs[job.id] = job
        lane.queue.append(job)
        job.size = job.footprint()
        self.bytes += job.size
        jobs = self._jobs
        # a removed job still queued counts (a client deleting what it makes is bounded too)
        while len(jobs) + len(self._removed) > self._max_jobs or (
            self.bytes > self._max_bytes and len(jobs) > 1
        ):
            self._drop(self._oldest_lane(), now)
        return job

    def _oldest_lane(self) -> _Lane:
        """The lane whose first job is the oldest of all."""
        oldest: _Lane | None = None
        for lane in self._lanes.values():
            if lane.queue and (oldest is None or lane.queue[0].seq < oldest.queue[0].seq):
                oldest = lane
        assert oldest is not None, "an empty store has nothing to drop"
        return oldest

    def _drop(self, lane: _Lane, now: float) -> None:
        """Forget the lane's first job, remembering its id and why it went."""
        job = lane.queue.popleft()
        if self._jobs.get(job.id) is job:
            del self._jobs[job.id]
            self.bytes -= job.size
            self.evicted += 1
            self._remember(job, EXPIRED if now >= job.expires_at else EVICTED)
        else:  # removed before (its owner deleted it): its place let go now
            self._removed.discard(job.seq)
        lane.pool.forget(job)

    def _remember(self, job: Job, reason: str) -> None:
        """Keep a gone job's id and why it went; past ``max_gone``, forget the oldest."""
        record = _Gone(job.provider, job.owner, job.model, reason)
        record = self._records.setdefault(record, record)
        if len(self._records) > self._max_gone:  # those remembered keep theirs alive
            self._records = {record: record}
        gone = self._gone
        if job.id not in gone:
            self._gone_order.append(job.id)
        gone[job.id] = record
        while len(gone) > self._max_gone:
            del gone[self._gone_order.popleft()]

    def fate(
        self,
        job_id: str,
        now: float,
        provider: str | None = None,
        owner: str | None = None,
        model: str | None = None,
    ) -> str:
        """Why :meth:`find` shows no job ``job_id`` to ``provider`` and ``owner`` (of
        ``model``; None: any): :data:`EXPIRED`, :data:`EVICTED` or :data:`UNKNOWN`. Another
        key's, provider's or model's job is unknown to them, as the providers answer."""
        job = self._jobs.get(job_id)
        if job is not None:  # kept until its turn to go, or shown to another
            mine = _same((job.provider, job.owner, job.model), (provider, owner, model))
            return EXPIRED if mine and now >= job.expires_at else UNKNOWN
        gone = self._gone.get(job_id)
        if gone is None or not _same(gone[:3], (provider, owner, model)):
            return UNKNOWN
        return gone.reason

    def get(self, job_id: str, now: float) -> Job | None:
        """The job with this id, or None when unknown or expired."""
        job = self._jobs.get(job_id)
        if job is None or now >= job.expires_at:
            return None
        return job

    def find(self, provider: str, job_id: str, owner: str, now: float) -> Job | None:
        """A job as its owner sees it: another provider's or another key's job is not found."""
        job = self.get(job_id, now)
        if job is None or job.provider != provider or job.owner != owner:
            return None
        return job

    def newest(
        self, provider: str, owner: str, now: float, before: int | None = None
    ) -> Iterator[Job]:
        """The jobs of ``provider`` shown to ``owner``, newest first; with ``before``, only
        those submitted before the job whose ``seq`` it is (a listing's next page). The
        provider's queue is in ``seq`` order: the start is found by bisection."""
        lane = self._lanes.get(provider)
        if lane is None:
            return
        queue = lane.queue
        skip = 0 if before is None else len(queue) - bisect_left(queue, before, key=_seq)
        jobs = self._jobs
        for job in itertools.islice(reversed(queue), skip, None):
            if job.owner == owner and now < job.expires_at and jobs.get(job.id) is job:
                yield job

    def remove(self, job: Job) -> None:
        """Forget ``job`` now, at its owner's request: it is shown no more, and its id is
        remembered as :data:`DELETED`. Its schedule stays (deleting is not cancelling: a
        running job keeps its worker until it would have ended), and its provider's queue
        lets go of it in its turn (until then it counts against ``max_jobs``)."""
        if self._jobs.get(job.id) is job:
            del self._jobs[job.id]
            self.bytes -= job.size
            self._removed.add(job.seq)
            self._remember(job, DELETED)

    def cancel(self, job: Job, now: float) -> bool:
        """Cancel a live job; False when it is already terminal."""
        if job.state(now) in TERMINAL:
            return False
        self.pool(job.provider).release(job, now)
        return True

    def fail(self, job: Job, failure: Failure, now: float) -> bool:
        """Decide that a live job ends FAILED (fault rules and tests); False when terminal."""
        if job.state(now) in TERMINAL:
            return False
        before, waited = job.busy_until, job.start_at > now
        job.failure = failure
        self.pool(job.provider).replan(now, job, before, waited)
        return True

    def finish(self, job: Job, now: float) -> bool:
        """Make a live job succeed now; False when it is already terminal."""
        if job.state(now) in TERMINAL:
            return False
        before, waited = job.busy_until, job.start_at > now
        job.start_at = min(job.start_at, now)
        job.end_at = now
        job.failure = None
        self.pool(job.provider).replan(now, job, before, waited)
        return True

    def queue_position(self, job: Job, now: float) -> int:
        return self.pool(job.provider).queue_position(job, now)

    def queue_positions(self, provider: str, now: float) -> dict[int, int]:
        """Every waiting job's queue position in one provider, by ``seq`` (one pass)."""
        return self.pool(provider).queue_positions(now)

    def charge(self, owner: str, cost: float, provider: str = "") -> float:
        """Record what an owner spent (on ``provider``); returns their total so far."""
        self.charged[provider] = self.charged.get(provider, 0.0) + cost
        owners = self._owners
        account = owners.get(owner)
        if account is None:
            account = owners[owner] = _Owner()
            while len(owners) > self._max_owners:
                owners.popitem(last=False)
        else:
            owners.move_to_end(owner)
        account.spent += cost
        return account.spent

    def spent(self, owner: str) -> float:
        account = self._owners.get(owner)
        return account.spent if account else 0.0

    def evict(self, now: float) -> int:
        """Forget the expired jobs at the head of each provider's queue; returns how many."""
        before = self.evicted
        for lane in self._lanes.values():
            queue = lane.queue
            while queue and queue[0].expires_at <= now:
                self._drop(lane, now)
        return self.evicted - before

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())


def _seq(job: Job) -> int:
    return job.seq


def _same(actual: tuple[str, ...], asked: tuple[str | None, ...]) -> bool:
    """Does a job's (provider, owner, model) match what was asked (None: any)?"""
    return all(a is None or a == b for b, a in zip(actual, asked, strict=True))
