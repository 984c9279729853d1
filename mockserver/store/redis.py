"""Tenants shared by every process through Redis (``--store redis://host:port/db``).

State-machine replication: each tenant has a log in Redis (a stream, ``nb:{tenant}:log``),
and every change to its state is an operation of ``ops.py`` appended to it. Every process
keeps a copy of each tenant it serves (a :class:`~..state.MockState`) and applies the log's
operations to it in log order, each with the clock pinned to the time the log stamped on it
(:class:`~.log.Pin`), so every copy is the same and an operation's answer is the same on any
process. One script (``log.STEP``) appends an operation and returns every entry after the
caller's cursor: **one round trip** per operation, its own answer included. When the
caller's own entry is the only one new to its copy (the common case), it is not read back:
the process applies a request's operation from the objects it already holds, at the time the
log stamped on it (a control operation is read back: its config goes sealed).

Linearizable: a request plans on its copy (are there rules? limits?) before its first
operation; that operation carries the copy's control version (``cv``, bumped by every
``ops.CONTROL`` operation). A copy that applies it under another ``cv`` (a control change
was logged meanwhile) applies nothing (on every copy alike) and the asker gets
:class:`~.tenant.Stale`: the pipeline serves the request again, up to date. A request that
makes no operation (a 401, a 400, an image) syncs at its end, and likewise.

Bounded: each copy is a snapshot plus the log after it. When the entries since the last
snapshot pass ``max(snapshot_every, 2 x jobs)``, the process that appended that entry writes
a snapshot (``nb:{tenant}:snap``) and trims the log up to the snapshot before it. A copy
behind the log's start, new, or of another epoch (Redis restarted) loads the snapshot and
replays after it; with neither snapshot nor log, the tenant starts afresh. Copies per
process are bounded as tenants are (``max_tenants``); entries per read are ``BATCH``.

Also shared: the journal (a capped stream per tenant, written by :meth:`RedisTenant.end` in
batches, one pipelined write per turn of the loop, not awaited: the request's mark, left by
its first operation or its end's sync, keeps the entry pending until written, and a journal
read waits for no pending entry, ``JOURNAL_WAIT`` at most: read-your-writes), and
wake-ups: a control operation publishes on ``nb:{tenant}:changed``, and one subscriber per
process brings up to date the copies that have sleepers (a Segmind ``/v1`` call waiting for
its job), so a clock moved on another process releases them.

The scripts go down one shared connection per process (``wire.py``); the rest through
redis-py's pool.

The store failing is an answer: :class:`~.tenant.StoreUnavailable` (the provider's 503 with
``X-Mock-Store``), and service resumes when Redis is back (redis-py reconnects).

Redis holds pickles and marshal data: it must be the mock's own, trusted like its memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from ..engine.clock import VirtualClock
from ..engine.journal import Entry, Journal, query
from ..faults.rules import portable
from ..state import MockState
from . import log as codec
from . import metrics
from .log import Pin
from .ops import CONTROL, apply
from .tenant import DEFAULT, Stale, StoreUnavailable, Tenant
from .tenants import Tenants
from .wire import Wire, bulk, head, supports

if TYPE_CHECKING:
    from ..config import MockConfig

__all__ = ["BATCH", "RedisTenant", "RedisTenants"]

log = logging.getLogger("nanobanana_mock")

BATCH = 1000  # log entries read per round trip (a copy far behind reads several times)
JOURNAL_WAIT = 2.0  # seconds a journal read waits for the entries still pending, at most
MAX_JOURNAL_BACKLOG = 10_000  # entries not yet written: a request past it waits for its own
SNAPSHOT_EVERY = 10_000  # entries between snapshots, at least (and 2 x the tenant's jobs)
MAX_JOURNAL_BATCH = 1000  # journal entries per pipelined write
SOCKET_TIMEOUT = 2.0  # seconds: an unreachable store is an answer soon, not a hang
HEALTH_EVERY = 1.0  # seconds between the health answer's pings while the store is down
STATE_FIELDS = ("config", "clock", "store", "faults", "ledger", "limiter", "_rngs")

_STALE: Any = object()  # an outcome: applied under another control version, nothing changed
_OK, _GAP, _BACK = object(), object(), object()  # how a copy met the rows it was given


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Lost(Exception):
    """A write's connection was lost: it may or may not have reached Redis."""


class _Request:
    """What a request's first operation carries: its tenant and that copy's ``cv``; and for
    a request with a journal entry, its mark (``log.STEP``): the entry is pending until
    written, so a journal read anywhere waits for it (read-your-writes)."""

    __slots__ = ("cv", "first", "mark", "tenant")

    def __init__(self, tenant: RedisTenant, cv: int, mark: str) -> None:
        self.tenant = tenant
        self.cv = cv
        self.first = True
        self.mark = mark


_REQUEST: ContextVar[_Request | None] = ContextVar("nanobanana_mock_redis_request", default=None)


def _reason(exc: BaseException) -> str:
    """Why the store failed, for a header and the health answer: the error's class and
    message (host and port, never a password: redis-py's messages hold none), bounded."""
    text = f"{type(exc).__name__}: {exc}".replace("\r", " ").replace("\n", " ")
    return text[:200]


class RedisTenant(Tenant):
    """One tenant: this process's copy of its state, kept up to date from its log."""

    remote = True

    def __init__(self, name: str, state: MockState, owner: RedisTenants) -> None:
        super().__init__(name, state)
        self._owner = owner
        self.keys = keys = codec.keys_of(name)
        self._step_keys = [
            *(keys[k] for k in ("log", "n", "epoch", "journal", "jseq", "snap")),
            codec.TENANTS_KEY,
            keys["pending"],
            f"{keys['seen']}:{owner._process}",
        ]
        # STEP's arguments the same for every step, and each command's start packed once
        # (by the script's SHA: Redis restarted, it may be loaded again)
        self._step_const: list[Any] = [BATCH, name, keys["changed"], 0]
        self._packed: dict[str, bytes] = {}
        self._in_flight = 0  # steps sent on the shared connection, not answered yet
        self._touched = -math.inf  # when this process last touched the tenant (monotonic)
        self._pin = Pin()
        self.n = 0  # entries applied
        self.cursor = "0-0"  # the stream id of the last one
        self.epoch: str | None = None  # the log's epoch (a Redis restarted empty has another)
        self.cv = 0  # control version: control operations applied
        self.snap_n = 0  # where the last snapshot was taken (in every copy alike)
        self.snap_id = "0-0"
        self.prev_snap_id = "0-0"
        self._waiting: dict[str, asyncio.Future[Any]] = {}  # this process's operations
        self._lock = asyncio.Lock()  # one slow catch-up (reload, long replay) at a time
        self._snapshotting: asyncio.Task[None] | None = None
        self._pin_clock(state.clock)
        # a named tenant's keys expire unused for the idle time (it starts afresh then, as
        # an evicted tenant does in memory); the default tenant's never do
        idle = owner.idle_seconds
        self.idle = int(min(max(idle, 1), 2**31)) if name and math.isfinite(idle) else 0
        self._step_const[3] = self.idle

    # -- the seam --------------------------------------------------------------------------

    @property
    def position(self) -> int:
        return self.n

    def draws(self, stream: str) -> random.Random:
        return random.Random(f"{self.state.config.seed}/{stream}/{self.n}")

    async def begin(self, journaled: bool = False) -> None:
        owner = self._owner
        if owner._listener is None:
            owner._listen()
        if self.epoch is None:  # new to this process: load it first
            await self.sync()
        mark = ""
        if journaled:  # served again (Stale): the same mark (each request has its own task)
            before = _REQUEST.get()
            mark = before.mark if before is not None and before.tenant is self else ""
            mark = mark or owner.token()
        _REQUEST.set(_Request(self, self.cv, mark))

    async def sync(self, mark: str = "") -> None:
        reply = await self._step(b"", "", mark)
        await self._catch_up(reply)

    async def do(self, name: str, *args: Any) -> Any:
        request = _REQUEST.get()
        cv = None
        mark = ""
        if request is not None and request.tenant is self:
            mark = request.mark
            if request.first:
                request.first = False
                cv = request.cv
        if name == "evaluate":  # the key as a fingerprint, only the headers rules name
            args = (portable(args[0], self.state.faults),)
        token = self._owner.token()
        payload = codec.dumps_op(name, args, cv, token)
        future: asyncio.Future[Any] = self._owner.loop().create_future()
        self._waiting[token] = future
        # a request's operation is applied here from its own objects when the log says it
        # is the only entry new to this copy ('o': not read back); the control plane's go
        # through the log (a config is sealed on its way)
        mine = None if name in CONTROL else (name, args, cv, token)
        try:
            flags = "o" if mine is not None else "c" + ("r" if name == "reset" else "")
            try:
                reply = await self._step(payload, flags, mark)
            except _Lost as lost:
                # the connection was lost (Redis restarted under an idle one): was it
                # appended? The log says (its token): if not, it is sent again, once
                await self.sync()
                if future.done():
                    reply, mine = await self._step(b"", "", mark), None
                else:
                    try:
                        reply = await self._step(payload, flags, mark)
                    except _Lost:
                        self._owner.ok, self._owner.error = False, str(lost)
                        raise StoreUnavailable(str(lost)) from None
            await self._catch_up(reply, mine)
            if not future.done():
                # its entry's number was one this copy had applied already: the log went
                # back (Redis restored from an older RDB/AOF file): the snapshot, then the log
                async with self._lock:
                    await self._reload(_text(reply[2]))
                await self._catch_up(await self._step(b"", ""))
        finally:
            self._waiting.pop(token, None)
        if not future.done():  # behind a snapshot already (the log moved on very fast)
            raise StoreUnavailable("the operation was applied but its answer was lost; retry")
        outcome = future.result()
        if outcome is _STALE:
            raise Stale()
        if isinstance(outcome, _Raised):
            raise outcome.error
        return outcome

    async def end(self, entry: Entry | None) -> None:
        """The journal entry goes to Redis unawaited (the answer does not wait for it): the
        request's mark, set by its first operation or here, keeps it pending until then."""
        request = _REQUEST.get()
        if request is None or request.tenant is not self:
            return
        if request.first:
            request.first = False  # no operation: was the copy it read up to date?
            await self.sync(request.mark if entry is not None else "")
            if self.cv != request.cv:
                raise Stale()
        if request.mark or entry is not None:
            await self._owner.write_journal(self, entry, request.mark)
        request.mark = ""

    async def journal(
        self, filters: dict[str, Any], since: int, limit: int | None
    ) -> dict[str, Any]:
        """The journal once no entry is pending (at most ``JOURNAL_WAIT`` seconds: after
        that, as it is), so an answered request's entry is in it whichever process asks."""
        entries, total = await self.entries()
        return query(entries, filters, since, limit, total, total - len(entries))

    async def entries(self) -> tuple[list[Entry], int]:
        """The shared journal's entries, oldest first, and its total, read as
        :meth:`journal` reads them."""
        size = self.state.config.journal_size
        keys = [self.keys["journal"], self.keys["jseq"], self.keys["pending"]]
        deadline = time.monotonic() + JOURNAL_WAIT
        pause = 0.0005
        while True:
            wait = time.monotonic() < deadline
            reply = await self._owner.run("read", keys, [size, "1" if wait else "0"], again=True)
            if reply is not None:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.02)
        rows, total = reply
        entries = []
        for _id, fields in reversed(rows):
            values = _fields(fields)
            entry = Entry.of_record(orjson.loads(values[b"e"]))
            entry.seq = int(values[b"s"])
            entries.append(entry)
        return entries, int(total or 0)

    async def clear_journal(self) -> None:
        try:
            await self._owner.redis.delete(self.keys["journal"], self.keys["jseq"])
        except (RedisError, OSError) as exc:
            raise self._owner.failed(exc) from None

    # -- the log ---------------------------------------------------------------------------

    async def _step(self, payload: bytes, flags: str, mark: str = "") -> list[Any]:
        """One run of ``log.STEP``. On the shared connection, a step behind another of this
        tenant's reads the log after where that one read (the one ahead is applied first:
        replies come in order), not after the cursor: under concurrent requests, a reply
        holds about the entries new to the copy, not every one since the cursor."""
        chained = "1" if self._in_flight and self._owner.wire is not None else ""
        touch = ""
        now = time.monotonic()
        if now - self._touched >= codec.TOUCH_SECONDS:
            self._touched, touch = now, "1"
        self._in_flight += 1
        try:
            reply: list[Any] = await self._owner.run(
                "step",
                self._step_keys,
                [self.cursor, self.n, payload, flags, mark, chained, touch],
                again=not payload,  # a sync changes nothing (but the last use, a mark)
                const=self._step_const,
                packed=self._packed,
            )
        finally:
            self._in_flight -= 1
        return reply

    async def _catch_up(
        self, reply: list[Any], mine: tuple[str, tuple[Any, ...], int | None, str] | None = None
    ) -> None:
        """Apply every entry up to the reply's ``n`` (fetching more, or loading the
        snapshot, when the reply alone does not get there). ``mine``: the operation the
        step appended (name, args, cv, token), applied from these objects when the reply
        says its entry is the only one new (no entries: ``log.STEP``'s 'o')."""
        own, top, epoch, entries, stamp = reply
        top, epoch = int(top), _text(epoch)
        kept = None
        if epoch == self.epoch and not self._lock.locked():
            if entries:
                kept = self._apply(entries)
            else:
                kept = _OK
                if own and mine is not None and self.n == top - 1:
                    self._apply_op(_text(own), top, float(stamp), *mine)
            if kept is _OK and self.n >= top:  # (more: a later reply was applied first)
                return  # the fast path: the reply had all of it
        async with self._lock:
            if epoch != self.epoch or kept is _BACK:  # another log: restarted, or restored
                await self._reload(epoch)
            reloads = 0
            while self.n < top:
                rows = await self._owner.call(
                    lambda r: r.xrange(self.keys["log"], f"({self.cursor}", "+", BATCH)
                )
                kept = self._apply(rows)
                if kept is _OK and rows:
                    continue
                if reloads == 2:  # the snapshot does not meet the log: nothing to do but say
                    raise StoreUnavailable(f"the log of tenant {self.name!r} has a gap")
                reloads += 1
                await self._reload(epoch)  # behind the log's start: from the snapshot

    def _apply(self, rows: list[Any]) -> object:
        """Apply the rows this copy has not applied yet, in order: :data:`_OK`, or
        :data:`_GAP` at a row after the next one (this copy is behind the log's start), or
        :data:`_BACK` at a row new to this copy with a number it had applied (the log went
        back: Redis restored from an older file); the rows before it applied.

        A reply holds every entry after the cursor its request was sent with; under
        concurrent requests most are applied already (by earlier replies): those are passed
        over by their count when the last of them is the one this copy applied last (else,
        the log went back, they are looked at one by one)."""
        if rows:
            last_id = _text(rows[-1][0])
            if last_id == self.cursor:
                return _OK  # all applied already, the last one last
            first = int(_row(rows[0][1])[0])
            skip = self.n - first  # rows[skip] is the entry this copy applied last
            if 0 <= skip < len(rows) and _text(rows[skip][0]) == self.cursor:
                rows = rows[skip + 1 :]  # (else: row by row, below)
        for row_id, fields in rows:
            number, stamp, payload = _row(fields)
            n = int(number)
            if n <= self.n:
                if _later(_text(row_id), self.cursor):
                    return _BACK
                continue
            if n != self.n + 1:
                return _GAP
            self._apply_one(_text(row_id), n, float(stamp), payload)
        return _OK

    def _apply_one(self, row_id: str, n: int, t: float, payload: bytes) -> None:
        name, args, cv, token = codec.loads_op(payload, self._owner.control_token)
        self._apply_op(row_id, n, t, name, args, cv, token)

    def _apply_op(
        self,
        row_id: str,
        n: int,
        t: float,
        name: str,
        args: tuple[Any, ...],
        cv: int | None,
        token: str,
    ) -> None:
        future = self._waiting.get(token)
        self._pin.t = t
        try:
            if cv is not None and cv != self.cv:
                outcome: Any = _STALE
            else:
                try:
                    outcome = apply(self.state, name, args)
                except Exception as exc:  # the same on every copy: only the asker sees it
                    outcome = _Raised(exc)
                if name in CONTROL:
                    self.cv += 1
                    if name == "reset":
                        self._pin_clock(self.state.clock)
        finally:
            self._pin.t = None
        self.n = n
        self.cursor = row_id
        if future is not None and not future.done():
            future.set_result(outcome)
        if n - self.snap_n >= max(self._owner.snapshot_every, 2 * len(self.state.store)):
            self.prev_snap_id, self.snap_id, self.snap_n = self.snap_id, row_id, n
            if future is not None:  # this process appended it: it writes the snapshot
                self._write_snapshot()

    def _pin_clock(self, clock: VirtualClock) -> None:
        """The copy's clock runs on :class:`Pin` (epoch seconds, pinned while applying)."""
        if clock.wall is not self._pin:
            clock.run_on(self._pin)

    # -- snapshots -------------------------------------------------------------------------

    def _snapshot(self) -> bytes:
        state = self.state
        return codec.dumps(
            {
                "epoch": self.epoch,
                "n": self.n,
                "id": self.cursor,
                "cv": self.cv,
                "snap": (self.snap_n, self.snap_id, self.prev_snap_id),
                "state": {name: getattr(state, name) for name in STATE_FIELDS},
            }
        )

    def _write_snapshot(self) -> None:
        if self._snapshotting is not None and not self._snapshotting.done():
            return  # one at a time: the next threshold takes the next one
        data, trim_to = self._snapshot(), self.prev_snap_id

        async def write() -> None:
            try:
                async with self._owner.redis.pipeline(transaction=False) as pipe:
                    pipe.set(self.keys["snap"], data, ex=self.idle or None)
                    if trim_to != "0-0":
                        pipe.xtrim(self.keys["log"], minid=trim_to)
                    await pipe.execute()
            except (RedisError, OSError) as exc:  # the next snapshot will do
                log.warning("tenant %r: snapshot not written: %s", self.name, _reason(exc))

        self._snapshotting = asyncio.create_task(write())

    async def _reload(self, epoch: str) -> None:
        """Load the snapshot of the log's ``epoch`` (or start afresh without one)."""
        data = await self._owner.call(lambda r: r.get(self.keys["snap"]))
        snap = codec.loads(data, self._owner.control_token) if data else None
        if snap is not None and snap["epoch"] != epoch:
            snap = None  # from before a restart: of no use to this log
        fresh = self._owner.shared_state(float(epoch)) if snap is None else None
        replaced = self.state.clock
        if snap is None:
            assert fresh is not None
            for name in STATE_FIELDS:
                setattr(self.state, name, getattr(fresh, name))
            self.n, self.cursor, self.cv = 0, "0-0", 0
            self.snap_n, self.snap_id, self.prev_snap_id = 0, "0-0", "0-0"
        else:
            for name, value in snap["state"].items():
                setattr(self.state, name, value)
            self.n, self.cursor, self.cv = snap["n"], snap["id"], snap["cv"]
            self.snap_n, self.snap_id, self.prev_snap_id = snap["snap"]
        self.state.clock._wall = self._pin
        self.state.journal = Journal(self.state.config.journal_size)
        self.state._rngs = dict(self.state._rngs)
        self.epoch = epoch
        if replaced is not self.state.clock:
            replaced.stop()  # its sleepers answer now (the state they waited in is gone)


SCRIPTS = {"step": codec.STEP, "journal": codec.JOURNAL, "read": codec.READ}


def _later(row_id: str, cursor: str) -> bool:
    """Is stream id ``row_id`` after ``cursor``?"""
    ms, _, seq = row_id.partition("-")
    cursor_ms, _, cursor_seq = cursor.partition("-")
    return (int(ms), int(seq or 0)) > (int(cursor_ms), int(cursor_seq or 0))


def _row(fields: Any) -> tuple[Any, Any, Any]:
    """A log entry's number, time and operation: by position as STEP's XADD wrote them
    (the shared connection's replies), else by name (redis-py's)."""
    if type(fields) is list and len(fields) == 6:
        return fields[1], fields[3], fields[5]
    values = _fields(fields)
    return values[b"n"], values[b"t"], values[b"op"]


def _fields(fields: Any) -> dict[bytes, Any]:
    if isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2], strict=True))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisTenants(Tenants):
    """Every tenant of one app, shared with every process using the same Redis. The copies
    this process keeps are bounded as named tenants are (``max_tenants``, idle ones
    dropped): a copy dropped here lives on in Redis, and is loaded again when next named."""

    remote = True

    def __init__(
        self,
        config: MockConfig,
        default_state: MockState,
        scenario: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        snapshot_every: int = SNAPSHOT_EVERY,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, default_state, scenario, wall=wall)
        self.control_token = config.control_token
        self.url = url or str(getattr(config, "store", ""))
        self.snapshot_every = snapshot_every
        self.redis = aioredis.Redis.from_url(
            self.url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            health_check_interval=0,
        )
        # the hot path (the scripts) on one shared connection; the rest on redis-py's pool
        self.wire = Wire(self.url, SOCKET_TIMEOUT) if supports(self.url) else None
        self.round_trips = 0  # awaited exchanges with Redis (a request waits for them)
        self.journal_writes = 0  # journal writes (pipelined, in the background)
        self._sha: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process = f"{os.getpid():x}.{random.getrandbits(32):08x}"
        self.default = self._default = RedisTenant(DEFAULT, default_state, self)
        self.default.last_used = wall()
        self._tokens = itertools.count()
        self._pending: list[tuple[RedisTenant, bytes | None, str, asyncio.Future[None] | None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self.ok = True
        self.error: str | None = None
        self._pinged = 0.0
        self._ping: asyncio.Task[None] | None = None

    # -- the interface ---------------------------------------------------------------------

    async def _make(self, name: str) -> Tenant:
        return RedisTenant(name, self.shared_state(), self)

    def health(self) -> dict[str, Any]:
        """The store's kind, the tenants this process holds, and while Redis cannot be
        reached, why (a ping at most every second finds out when it is back)."""
        if not self.ok and time.monotonic() - self._pinged > HEALTH_EVERY:
            self._pinged = time.monotonic()
            if self._ping is None or self._ping.done():
                self._ping = asyncio.get_running_loop().create_task(self.check())
        health: dict[str, Any] = {
            "store": "redis",
            "tenants": 1 + len(self),
            "store_round_trips": self.round_trips,
            "store_journal_writes": self.journal_writes,
        }
        if not self.ok:
            health["store_error"] = self.error or "unknown"
        return health

    async def close(self) -> None:
        for task in (self._listener, self._ping, self._writer):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await super().close()
        if self.wire is not None:
            self.wire.close()
        await self.redis.aclose()

    # -- helpers for the tenants -----------------------------------------------------------

    def shared_state(self, epoch: float | None = None) -> MockState:
        """A tenant as it starts (:meth:`Tenants.fresh_state`), its clock at 0 at ``epoch``
        (when its log began: the same instant on every process), keys sealed."""
        from ..control.api import apply_scenario, sealed_scenario

        pin = Pin()
        pin.t = time.time() if epoch is None else epoch
        base = self._default.state  # (made after the default tenant: shares its images)
        state = MockState.create(
            self.config, VirtualClock(self.config.time_scale, wall=pin), images=base.images
        )
        state.violations = base.violations
        apply_scenario(state, sealed_scenario(self.scenario))
        pin.t = None
        return state

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, kept (``asyncio.get_running_loop`` is a system call on Python
        3.11, and a request needs it); found again if the one kept was closed."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def token(self) -> str:
        return f"{self._process}.{next(self._tokens)}"

    def failed(self, exc: BaseException) -> StoreUnavailable:
        self.ok, self.error = False, _reason(exc)
        return StoreUnavailable(self.error)

    def succeeded(self) -> None:
        if not self.ok:
            log.warning("store: reachable again")
        self.ok, self.error = True, None

    async def call(
        self, command: Callable[[aioredis.Redis], Awaitable[Any]], *, counted: bool = True
    ) -> Any:
        """One command that changes nothing (a read, a ping); a failure of the store as
        :class:`StoreUnavailable`. A lost connection (a pooled one that a Redis restart
        closed) is tried once more, on a new one. ``counted``: a request waits for it (a
        health ping is no request's round trip)."""
        for attempt in range(2):
            self.round_trips += counted
            try:
                result = await command(self.redis)
            except (RedisError, OSError) as exc:
                await self._drop_idle(exc)
                if attempt or not isinstance(exc, RedisConnectionError):
                    raise self.failed(exc) from None
                continue
            self.succeeded()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def run(
        self,
        script: str,
        keys: list[str],
        args: list[Any],
        *,
        again: bool = False,
        const: list[Any] | None = None,
        packed: dict[str, bytes] | None = None,
    ) -> Any:
        """Run one of ``log``'s scripts by its SHA (loading it once, and again when Redis
        forgot it: NOSCRIPT). ``again``: it changes nothing, so a lost connection (Redis
        restarted under an idle one) is tried once more, on a new one. ``const``: the first
        arguments, the same for each run of a caller, which keeps in ``packed`` the
        command's start packed once (by SHA) for the shared connection."""
        source = SCRIPTS[script]
        for attempt in range(2):
            try:
                return await self._run(script, source, keys, args, const or [], packed)
            except (RedisError, OSError) as exc:
                await self._drop_idle(exc)
                lost = attempt == 0 and isinstance(exc, RedisConnectionError)
                if lost and not again:
                    raise _Lost(_reason(exc)) from None
                if not (again and lost):
                    raise self.failed(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(
        self,
        script: str,
        source: str,
        keys: list[str],
        args: list[Any],
        const: list[Any],
        packed: dict[str, bytes] | None,
    ) -> Any:
        wire = self.wire
        for attempt in range(2):
            sha = self._sha.get(script)
            if sha is None:
                sha = self._sha[script] = await self._load(source)
            self.round_trips += 1
            try:
                if wire is not None and packed is not None:
                    start = packed.get(sha)
                    if start is None:
                        start = packed[sha] = head(
                            3 + len(keys) + len(const) + len(args),
                            ["EVALSHA", sha, len(keys), *keys, *const],
                        )
                    result = await wire.execute_packed(start + bulk(args))
                elif wire is not None:
                    result = await wire.execute("EVALSHA", sha, len(keys), *keys, *const, *args)
                else:
                    result = await self.redis.evalsha(sha, len(keys), *keys, *const, *args)
            except NoScriptError:
                self._sha.pop(script, None)
                if attempt:
                    raise
                continue
            if not self.ok:
                self.succeeded()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _load(self, source: str) -> str:
        self.round_trips += 1
        if self.wire is not None:
            return _text(await self.wire.execute("SCRIPT", "LOAD", source))
        return str(await self.redis.script_load(source))

    async def _drop_idle(self, exc: BaseException) -> None:
        """After a lost connection, close the idle ones too: after a restart of Redis they
        are all dead, and each would fail one more request."""
        if isinstance(exc, RedisConnectionError | OSError):
            with contextlib.suppress(RedisError, OSError):
                await self.redis.connection_pool.disconnect(inuse_connections=False)

    async def check(self) -> None:
        """Ping Redis (bounded by the socket timeout), so that the health answer says
        whether it answers now, not only whether the last request found it."""
        with contextlib.suppress(StoreUnavailable):
            await self.call(lambda r: r.ping(), counted=False)

    # -- the journal -----------------------------------------------------------------------

    async def write_journal(self, tenant: RedisTenant, entry: Entry | None, mark: str) -> None:
        """Append ``entry`` to the tenant's journal with the other entries finished in this
        turn of the loop (one pipelined write), and remove the request's ``mark``. It
        returns at once, unless more than ``MAX_JOURNAL_BACKLOG`` entries are waiting to be
        written: then once this one is (the answer waits while Redis is slow)."""
        record = orjson.dumps(entry.record()) if entry is not None else None
        future: asyncio.Future[None] | None = None
        if len(self._pending) >= MAX_JOURNAL_BACKLOG:
            future = self.loop().create_future()
        self._pending.append((tenant, record, mark, future))
        if self._writer is None or self._writer.done():
            self._writer = self.loop().create_task(self._write_journal())
        if future is not None:
            await future

    async def _write_journal(self) -> None:
        await asyncio.sleep(0)  # the entries finished in this turn of the loop: one write
        while self._pending:
            batch = self._pending[:MAX_JOURNAL_BATCH]
            del self._pending[:MAX_JOURNAL_BATCH]
            by_tenant: dict[RedisTenant, tuple[list[str], list[bytes]]] = {}
            for tenant, record, mark, _ in batch:
                marks, records = by_tenant.setdefault(tenant, ([], []))
                if mark:
                    marks.append(mark)
                if record is not None:
                    records.append(record)
            error: StoreUnavailable | None = None
            try:
                await self._journal_pipeline(by_tenant)
            except (RedisError, OSError) as exc:  # lost: the marks expire (PENDING_SECONDS)
                await self._drop_idle(exc)
                error = self.failed(exc)
                log.warning("journal: %d entries not written: %s", len(batch), error.reason)
            else:
                self.succeeded()
            for _, _, _, future in batch:
                if future is not None and not future.done():
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(StoreUnavailable(error.reason))

    async def _journal_pipeline(
        self, by_tenant: dict[RedisTenant, tuple[list[str], list[bytes]]]
    ) -> None:
        counts, counted = metrics.ship(by_tenant)  # each request's counts before its entry
        for attempt in range(2):
            sha = self._sha.get("journal")
            if sha is None:
                sha = self._sha["journal"] = await self._load(codec.JOURNAL)
            commands = counts + [
                (
                    "EVALSHA",
                    sha,
                    3,
                    tenant.keys["journal"],
                    tenant.keys["jseq"],
                    tenant.keys["pending"],
                    tenant.state.config.journal_size,
                    tenant.idle,
                    len(marks),
                    *marks,
                    *records,
                )
                for tenant, (marks, records) in by_tenant.items()
            ]
            self.journal_writes += 1
            try:
                if self.wire is not None:
                    await self.wire.pipeline(commands)
                else:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for command in commands:
                            pipe.execute_command(*command)
                        await pipe.execute()
                metrics.shipped(counted)
                return
            except NoScriptError:  # the counts (EVAL) went in: not again
                metrics.shipped(counted)
                counts = []
                self._sha.pop("journal", None)
                if attempt:
                    raise

    # -- wake-ups --------------------------------------------------------------------------

    def _listen(self) -> None:
        if self._listener is None or self._listener.done():  # (it never ends but cancelled)
            self._listener = asyncio.get_running_loop().create_task(self._listen_loop())

    async def _listen_loop(self) -> None:
        """Bring up to date the copies with sleepers when another process changes their
        tenant's control state (a clock moved, a job forced): one subscriber per process,
        resubscribed after a failure of the store."""
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.psubscribe("nb:{*}:changed")
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None:
                            self._changed(_text(message["channel"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                await asyncio.sleep(0.5)

    def _changed(self, channel: str) -> None:
        name = channel[len("nb:{") : -len("}:changed")]
        name = DEFAULT if name == codec.DEFAULT_TAG else name
        copy = self._default if name == DEFAULT else self._named.get(name)
        if isinstance(copy, RedisTenant) and copy.state.clock.sleepers and copy.epoch is not None:
            task = asyncio.get_running_loop().create_task(copy.sync())
            task.add_done_callback(_quiet)


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # a failed wake-up sync: the next request syncs again
