"""A tenant's metrics in a shared store: every process's counts summed in one Redis hash.

Each process counts its own requests (``engine/metrics.py`` :class:`Counters`, in its copy
of the tenant's state) and ships what changed since its last shipment with the journal
entries (the same pipelined write, before them): so once a request's journal entry is
written, its counts are in ``nb:{tenant}:metrics``, and a scrape of any process, which waits
for the pending journal entries first, counts the whole tenant's requests. A reset deletes
the hash (``clear``): every copy's counters start anew with the reset they apply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..engine.metrics import Counters, Key, served_field
from .log import TENANTS_KEY, keys_of

if TYPE_CHECKING:
    from .redis import RedisTenant, RedisTenants

__all__ = ["SHIP", "clear", "fetch", "fetch_named", "metrics_key", "recent", "ship", "shipped"]

# KEYS: the hash.  ARGV: idle seconds (a named tenant's keys expire unused; 0 never), then
# field, increment pairs.
SHIP = """
for i = 2, #ARGV, 2 do redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1]) end
local idle = tonumber(ARGV[1])
if idle > 0 then redis.call('EXPIRE', KEYS[1], idle) end
return 0
"""


def metrics_key(tenant: RedisTenant) -> str:
    """The tenant's hash, under its hash tag (the journal's key, renamed)."""
    return _hash_of(tenant.keys["journal"])


def _hash_of(journal: str) -> str:
    return journal.removesuffix("journal") + "metrics"


class _Shipped:
    """What a process shipped of a tenant's counters so far (``Counters.shipped``)."""

    __slots__ = ("faults", "limited", "served", "store_errors")

    def __init__(self) -> None:
        self.served: dict[Key, list[float]] = {}
        self.faults: dict[tuple[str, str], int] = {}
        self.limited: dict[str, int] = {}
        self.store_errors: dict[str, int] = {}


TABLES = (("f", "faults"), ("l", "limited"), ("e", "store_errors"))  # field kind, attribute


def ship(tenants: Iterable[RedisTenant]) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """The commands that add what each tenant's counters gained since their last shipment,
    and what to note as shipped once they are written (:func:`shipped`). A request slot
    whose seconds did not change gained nothing: a batch looks at each slot once, and
    only at a changed one's buckets."""
    commands: list[tuple[Any, ...]] = []
    done: list[Any] = []
    for tenant in tenants:
        counters = tenant.state.metrics
        before = counters.shipped
        if before is None:
            before = counters.shipped = _Shipped()
        pairs: list[Any] = []
        served: dict[Key, list[float]] = {}
        for key, slot in counters.served.items():
            old = before.served.get(key)
            if old is not None and old[0] == slot[0]:
                continue
            head = served_field(key)
            for i, value in enumerate(slot):
                gained = value - (old[i] if old is not None else 0.0)
                if gained:
                    pairs += (f"{head}\x1f{i}", repr(gained))
            served[key] = slot.copy()
        tables = []
        for kind, attribute in TABLES:
            now, then = getattr(counters, attribute), getattr(before, attribute)
            if now != then:
                for name, n in now.items():
                    gained = n - then.get(name, 0)
                    if gained:
                        label = "\x1f".join(name) if isinstance(name, tuple) else name
                        pairs += (f"{kind}\x1f{label}", repr(gained))
                tables.append((attribute, dict(now)))
        if pairs:
            commands.append(("EVAL", SHIP, 1, metrics_key(tenant), tenant.idle, *pairs))
            done.append((before, served, tables))
    return commands, done


def shipped(done: list[Any]) -> None:
    """The shipment :func:`ship` made was written."""
    for before, served, tables in done:
        before.served.update(served)
        for attribute, table in tables:
            setattr(before, attribute, table)


async def fetch(tenant: RedisTenant) -> tuple[Counters, int]:
    """The whole tenant's counters, and how many journal entries it dropped, once no
    journal entry is pending (at most ``JOURNAL_WAIT`` seconds, as a journal read), so every
    answered request is counted, whichever process answered it."""
    from .redis import JOURNAL_WAIT

    owner = tenant._owner
    keys = [tenant.keys["journal"], tenant.keys["jseq"], tenant.keys["pending"]]
    deadline = time.monotonic() + JOURNAL_WAIT
    pause = 0.0005
    while True:
        wait = time.monotonic() < deadline
        reply = await owner.run("read", keys, [1, "1" if wait else "0"], again=True)
        if reply is not None:
            break
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.02)
    total = int(reply[1] or 0)
    key, journal = metrics_key(tenant), tenant.keys["journal"]

    async def read(redis: Any) -> list[Any]:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.xlen(journal)
            return list(await pipe.execute())

    raw, length = await owner.call(read)
    return _counters(raw), _dropped(total, length, tenant.state.config.journal_size)


async def recent(owner: RedisTenants, count: int) -> list[str]:
    """The named tenants of the store (every process's), most recently used first, at most
    ``count`` (the default tenant left out)."""
    names = await owner.call(lambda r: r.zrevrange(TENANTS_KEY, 0, count))
    return [name for name in map(_text, names or []) if name][:count]


async def fetch_named(owner: RedisTenants, name: str, journal_size: int) -> tuple[Counters, int]:
    """A tenant's summed counters and dropped entries by its name alone, for a tenant this
    process holds no copy of (nothing made, loaded or touched; its pending entries not
    waited for)."""
    keys = keys_of(name)
    journal = keys["journal"]
    key = _hash_of(journal)

    async def read(redis: Any) -> list[Any]:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(key)
            pipe.get(keys["jseq"])
            pipe.xlen(journal)
            return list(await pipe.execute())

    raw, total, length = await owner.call(read)
    return _counters(raw), _dropped(int(total or 0), length, journal_size)


def _dropped(total: int, length: Any, journal_size: int) -> int:
    """Entries dropped: all ever written less those the journal keeps (``XLEN``, capped)."""
    return max(0, total - min(int(length or 0), journal_size))


def _counters(raw: Any) -> Counters:
    fields: dict[str, float] = {}
    for name, value in (raw or {}).items():
        try:
            fields[_text(name)] = float(value)
        except ValueError:
            continue
    return Counters.of_fields(fields)


async def clear(tenant: RedisTenant) -> None:
    """Forget the tenant's shipped counts (a reset)."""
    await tenant._owner.call(lambda r: r.delete(metrics_key(tenant)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
