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

from ..engine.metrics import Counters

if TYPE_CHECKING:
    from .redis import RedisTenant

__all__ = ["SHIP", "clear", "fetch", "metrics_key", "ship"]

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
    journal: str = tenant.keys["journal"]
    return journal.removesuffix("journal") + "metrics"


def ship(tenants: Iterable[RedisTenant]) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """The commands that add what each tenant's counters gained since their last shipment,
    and what to note as shipped once they succeeded (:func:`shipped`)."""
    commands: list[tuple[Any, ...]] = []
    done: list[Any] = []
    for tenant in tenants:
        counters = tenant.state.metrics
        fields = counters.fields()
        before = counters.shipped
        pairs: list[Any] = []
        for name, value in fields.items():
            gained = value - before.get(name, 0)
            if gained:
                pairs += (name, repr(gained))
        if pairs:
            commands.append(("EVAL", SHIP, 1, metrics_key(tenant), tenant.idle, *pairs))
            done.append((counters, fields))
    return commands, done


def shipped(done: list[Any]) -> None:
    """The shipment :func:`ship` made was written."""
    for counters, fields in done:
        counters.shipped = fields


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
    fields: dict[str, float] = {}
    for name, value in (raw or {}).items():
        try:
            fields[_text(name)] = float(value)
        except ValueError:
            continue
    kept = min(int(length or 0), tenant.state.config.journal_size)
    return Counters.of_fields(fields), max(0, total - kept)


async def clear(tenant: RedisTenant) -> None:
    """Forget the tenant's shipped counts (a reset)."""
    await tenant._owner.call(lambda r: r.delete(metrics_key(tenant)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
