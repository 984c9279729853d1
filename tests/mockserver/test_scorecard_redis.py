"""The scorecard on the Redis store: a careless client spread over two processes (two apps
on one real Redis, as tests/mockserver/test_store_redis.py plays them) is flagged the same
on both, per tenant: what the scorecard judges by travels with each journal entry."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from nanobanana_mock.engine.scorecard import RULES
from tests.harness import KEYS, validate
from tests.mockserver.test_store_redis import (
    PIXAZO,
    SEAART,
    Shared,
    Start,
    redis_server,
    seaart_status,
    start,
)

__all__ = ["redis_server", "start"]  # the fixtures, used by name


async def scorecard(mock: Shared, prefix: str = "") -> dict[str, Any]:
    resp = await mock.client.get(f"{prefix}/_mock/scorecard")
    answer: dict[str, Any] = await resp.json()
    assert resp.status == 200, answer
    validate("mock", "control/scorecard", answer)
    return answer


async def careless(a: Shared, b: Shared, prefix: str = "") -> None:
    """Every rule broken, each by requests to both processes."""
    faults = [
        {"match": {"provider": "pixazo"}, "effect": {"http_error": {"status": 429}}}
        | {"scope": {"first": 2}},
        {"match": {"provider": "seaart", "operation": "submit"}}
        | {"effect": {"transport": {"kind": "reset"}}, "scope": {"first": 1}},
    ]
    resp = await a.client.post(f"{prefix}/_mock/faults", json={"faults": faults})
    assert resp.status == 201, await resp.text()
    # Retry-After ignored twice (a 429 on a, then at once on b, then on a); the job abandoned
    for m, code in ((a, 429), (b, 429), (a, 200)):
        resp = await m.client.post(
            f"{prefix}{PIXAZO}/nano-banana-pro-request",
            json={"prompt": "a car", "image_urls": ["https://example.com/in.png"]},
            headers=KEYS["pixazo"],
        )
        assert resp.status == code
    # a submit whose answer was lost, sent again on the other process
    with pytest.raises(aiohttp.ClientError):
        await a.client.post(
            f"{prefix}{SEAART}/nano_banana_pro", json={"prompt": "x"}, headers=KEYS["seaart"]
        )
    resp = await b.client.post(
        f"{prefix}{SEAART}/nano_banana_pro", json={"prompt": "x"}, headers=KEYS["seaart"]
    )
    rid = (await resp.json())["request_id"]
    # polled in a tight loop from both, then read after it expired, twice
    for m in (a, b, a):
        assert (await seaart_status(m, rid, tenant=prefix))["status"] == "IN_QUEUE"
    # a 404 retried from both
    for m in (a, b):
        await seaart_status(m, "mmsu_nosuchjob", expect=404, tenant=prefix)
    resp = await a.client.post(f"{prefix}/_mock/clock", json={"advance": 7200})
    assert resp.status == 200
    for m in (b, a):
        await seaart_status(m, rid, expect=404, tenant=prefix)


@pytest.mark.parametrize("prefix", ["", "/t/team-a"])
async def test_the_scorecard_is_the_same_on_both_processes(start: Start, prefix: str) -> None:
    a, b = await start(), await start()
    await careless(a, b, prefix)
    on_a, on_b = await scorecard(a, prefix), await scorecard(b, prefix)
    assert on_a == on_b
    assert {f["rule"] for f in on_a["findings"]} == set(RULES), on_a["findings"]
    assert on_a["tenant"] == (prefix.removeprefix("/t/") or None)
    if prefix:  # the default tenant saw none of it
        assert (await scorecard(b))["entries"] == 0
