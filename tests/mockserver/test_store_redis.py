"""The Redis store: two apps in one event loop play two processes against one real Redis
(``tests/redis_server.py``). Submit on one, poll, cancel, read and download on the other;
faults, credits, rate limits, the journal and the clock shared; a blocked Segmind call
released from the other process; replays identical on one process or two; snapshots; an
outage; and no API key in clear anywhere in Redis. Every answer is validated against its
schema (``Mock.call``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from nanobanana_mock import app as app_module
from nanobanana_mock.app import create_app
from nanobanana_mock.config import MockConfig
from nanobanana_mock.engine.journal import redact
from nanobanana_mock.state import STATE, MockState
from nanobanana_mock.store.redis import RedisTenant, RedisTenants
from nanobanana_mock.store.tenants import TENANTS
from tests.harness import KEYS, Mock, validate
from tests.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]  # the fixture, used by name

BASE = {
    "seed": 7,
    "time_scale": 0.0,
    "self_check": True,
    "processing_jitter": 0.0,
    "queue_seconds": 1.0,
    "workers": 2,
}
SEAART = "/model/v1/queue"
PIXAZO = "/nano-banana-pro-770/v1"
PIXAZO_URLS = ["https://example.com/in.png"]

Start = Callable[..., Awaitable[Mock]]


class Shared(Mock):
    """A mock on the shared store: the clock moves through the control plane (the log)."""

    async def move(self, seconds: float) -> None:
        resp = await self.client.post("/_mock/clock", json={"advance": seconds})
        assert resp.status == 200, await resp.text()

    async def control(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        resp = await self.client.request(method, f"/_mock/{path}", **kwargs)
        body = await resp.json()
        assert resp.status == expect, body
        return body

    async def journal(self, **filters: Any) -> dict[str, Any]:
        data: dict[str, Any] = await self.control("GET", "journal", params=filters)
        return data

    async def snapshots_written(self) -> None:
        """This process's snapshot writes (tasks, one at a time per tenant) are done."""
        tenants = self.client.app[TENANTS]
        for tenant in (tenants.default, *tenants._named.values()):
            assert isinstance(tenant, RedisTenant)
            if tenant._snapshotting is not None:
                await tenant._snapshotting


@pytest.fixture
async def start(
    redis_server: RedisServer, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Start]:
    """Start apps (processes) on the one Redis, with settings and a scenario of the test's
    choosing; each is checked for contract violations at the end."""
    started: list[Shared] = []

    async def begin(
        scenario: dict[str, Any] | None = None, snapshot_every: int = 10_000, **overrides: Any
    ) -> Shared:
        config = MockConfig(**{**BASE, **overrides})

        def tenants(
            config: MockConfig, state: MockState, base: dict[str, Any] | None
        ) -> RedisTenants:
            return RedisTenants(
                config, state, base, url=redis_server.url, snapshot_every=snapshot_every
            )

        monkeypatch.setattr(app_module, "make_tenants", tenants)
        app = create_app(config, scenario=scenario)
        client: TestClient = await aiohttp_client(app)
        mock = Shared(client, app[STATE])
        started.append(mock)
        return mock

    yield begin
    for mock in started:
        assert mock.state.violations == [], "the mock broke its own contract"


async def seaart_submit(mock: Mock, endpoint: str = "nano_banana_pro", **body: Any) -> str:
    _, data = await mock.call(
        "seaart",
        "submit",
        "POST",
        f"{SEAART}/{endpoint}",
        json={"prompt": "x", **body},
        expect=200,
    )
    return str(data["request_id"])


async def seaart_status(mock: Mock, rid: str, expect: int = 200, tenant: str = "") -> Any:
    _, data = await mock.call(
        "seaart",
        "status",
        "GET",
        f"{tenant}{SEAART}/nano_banana_pro/requests/{rid}/status",
        expect=expect,
    )
    return data


# -- every provider, across two processes -------------------------------------------------


async def test_segmind_submit_on_one_poll_and_download_on_the_other(start: Start) -> None:
    a, b = await start(), await start()
    _, job = await a.call(
        "segmind",
        "submit",
        "POST",
        "/v2/nano-banana",
        json={"prompt": "Dancing Banana"},
        expect=200,
    )
    rid = job["request_id"]
    _, data = await b.call("segmind", "status", "GET", f"/v2/requests/{rid}/status", expect=200)
    assert data["status"] == "QUEUED"
    await b.move(30)
    _, data = await a.call("segmind", "status", "GET", f"/v2/requests/{rid}/status", expect=200)
    assert data["status"] == "COMPLETED"
    _, data = await b.call("segmind", "result", "GET", f"/v2/requests/{rid}", expect=200)
    image = await b.image(data["output"][0] if isinstance(data["output"], list) else data["output"])
    assert image.size[0] > 0
    # the same answer on either process
    _, again = await a.call("segmind", "result", "GET", f"/v2/requests/{rid}", expect=200)
    assert json.loads(json.dumps(again).replace(a.base, b.base)) == data


async def test_seaart_submit_on_one_cancel_on_the_other(start: Start) -> None:
    a, b = await start(), await start()
    rid = await seaart_submit(a)
    data = await seaart_status(b, rid)
    assert data["status"] == "IN_QUEUE"
    _, _cancelled = await b.call(
        "seaart",
        "cancel",
        "PUT",
        f"{SEAART}/nano_banana_pro/requests/{rid}/cancel",
        expect=202,
    )
    _, data = await a.call(
        "seaart",
        "result",
        "GET",
        f"{SEAART}/nano_banana_pro/requests/{rid}/response",
        expect=200,
    )
    assert data["status"] == "COMPLETED" and data.get("error_type")
    # an unknown id is the provider's 404 on either
    await seaart_status(a, "mmsu_unknown", expect=404)


async def test_a_gemini_batch_made_on_one_is_listed_and_deleted_on_the_other(
    start: Start,
) -> None:
    a, b = await start(), await start()
    path = "/v1beta/models/gemini-2.5-flash-image:batchGenerateContent"
    request = {"contents": [{"parts": [{"text": "x"}]}]}
    made = {"batch": {"inputConfig": {"requests": {"requests": [{"request": request}]}}}}
    _, created = await a.call("gemini", "batch_create", "POST", path, json=made, expect=200)
    name = created["name"]
    _, page = await b.call("gemini", "batch_list", "GET", "/v1beta/batches", expect=200)
    assert [item["name"] for item in page["operations"]] == [name]
    await b.call("gemini", "batch_delete", "DELETE", f"/v1beta/{name}", expect=200)
    resp, _ = await a.call("gemini", "batch_get", "GET", f"/v1beta/{name}", expect=404)
    assert resp.headers["X-Mock-Job-State"] == "deleted"
    _, page = await a.call("gemini", "batch_list", "GET", "/v1beta/batches", expect=200)
    assert page == {}
    assert len(a.state.store) == len(b.state.store) == 0  # the same copy on both


async def test_pixazo_submit_on_one_result_on_the_other(start: Start) -> None:
    a, b = await start(), await start()
    rid = (await pixazo_submit(a))["request_id"]
    await a.move(120)
    _, data = await b.call(
        "pixazo",
        "result",
        "POST",
        f"{PIXAZO}/nano-banana-pro-request-result",
        json={"request_id": rid},
        expect=200,
    )
    assert data["status"] == "COMPLETED"


async def pixazo_submit(mock: Mock, expect: int | None = 200, **headers: str) -> Any:
    resp, data = await mock.call(
        "pixazo",
        "submit",
        "POST",
        f"{PIXAZO}/nano-banana-pro-request",
        json={"prompt": "a car", "image_urls": PIXAZO_URLS},
        expect=expect,
        headers=headers,
    )
    return resp.status if expect is None else data


# -- faults, credits, rate limits: counted across both --------------------------------------


async def test_fault_scopes_count_across_processes(start: Start) -> None:
    a, b = await start(), await start()
    await a.control(
        "POST",
        "faults",
        201,
        json={
            "faults": [
                {
                    "id": "twice",
                    "match": {"provider": "pixazo", "operation": "submit"},
                    "effect": {"http_error": {"status": 500}},
                    "scope": {"every": 2, "times": 2},
                }
            ]
        },
    )
    codes = [await pixazo_submit(mock, expect=None) for mock in (a, b, a, b, a, b, a, b)]
    assert codes == [200, 500, 200, 500, 200, 200, 200, 200]
    listed = await b.control("GET", "faults")
    assert [(r["id"], r["matched"], r["fired"]) for r in listed["faults"]] == [("twice", 8, 2)]


async def test_credits_and_rate_limits_across_processes(start: Start) -> None:
    a, b = await start(), await start()
    await a.control("POST", "credits", json={"default": 0.1})  # two pixazo jobs (0.045)
    codes = [await pixazo_submit(mock, expect=None) for mock in (a, b, a, b)]
    assert codes == [200, 200, 402, 402]
    await b.control("DELETE", "credits")
    await b.control("POST", "rate-limits", json={"rpm": 2})
    codes = [await pixazo_submit(mock, expect=None) for mock in (a, b, a)]
    assert codes == [200, 200, 429]
    await a.move(30)
    assert [await pixazo_submit(mock, expect=None) for mock in (b, a)] == [200, 429]


# -- the journal and the clock --------------------------------------------------------------


async def test_the_journal_is_seen_from_both(start: Start) -> None:
    a, b = await start(), await start()
    rid = await seaart_submit(a)
    await seaart_status(b, rid)
    await seaart_status(a, rid)
    for mock in (a, b):
        journal = await mock.journal()
        assert [e["operation"] for e in journal["entries"]] == ["submit", "status", "status"]
        assert [e["seq"] for e in journal["entries"]] == [1, 2, 3]
        assert (journal["total"], journal["dropped"], journal["count"]) == (3, 0, 3)
        assert journal["counts"] == {"seaart.status": 2, "seaart.submit": 1}
    assert (await b.journal(operation="status", since=2))["count"] == 1
    await b.control("DELETE", "journal")
    assert (await a.journal())["total"] == 0


async def test_the_journal_is_capped_across_processes(start: Start) -> None:
    a, b = await start(journal_size=3), await start(journal_size=3)
    rid = await seaart_submit(a)
    for mock in (a, b, a, b):
        await seaart_status(mock, rid)
    journal = await b.journal()
    assert [e["seq"] for e in journal["entries"]] == [3, 4, 5]
    assert (journal["total"], journal["dropped"]) == (5, 2)


async def test_the_clock_moved_on_one_is_seen_on_the_other(start: Start) -> None:
    a, b = await start(), await start()
    await a.move(12.5)
    assert (await b.control("GET", "clock"))["now"] == 12.5
    await b.control("POST", "clock", json={"speed": 2})
    speed_a = (await a.control("GET", "clock"))["speed"]
    assert speed_a == 2
    one, two = (await a.control("GET", "clock"))["now"], (await b.control("GET", "clock"))["now"]
    assert 12.5 <= one <= two < 20  # one running clock: the same anchor on both


async def test_a_blocked_segmind_call_is_released_by_the_other_process(start: Start) -> None:
    a, b = await start(), await start()
    await a.control("GET", "clock")  # A's copy is loaded: its clock is the one slept on
    call = asyncio.ensure_future(
        a.client.post("/v1/nano-banana", json={"prompt": "x"}, headers=KEYS["segmind"])
    )
    await asyncio.wait_for(a.state.clock.wait_for_sleepers(1), 10)
    await b.move(60)
    resp = await asyncio.wait_for(call, 10)
    assert resp.status == 200, await resp.text()
    assert resp.content_type.startswith("image/")


async def test_a_fal_job_submitted_on_one_is_streamed_on_the_other(start: Start) -> None:
    a, b = await start(), await start()
    _, data = await a.call(
        "fal", "submit", "POST", "/fal/queue/fal-ai/nano-banana", json={"prompt": "x"}, expect=200
    )
    rid = data["request_id"]
    path = f"/fal/queue/fal-ai/nano-banana/requests/{rid}/status/stream"
    resp = await b.client.get(path, headers=KEYS["fal"])
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    seen = []
    for step in (0.0, 1.0, 14.28):  # moved on A: B's waiting copy is brought up to date
        if step:
            await asyncio.wait_for(b.state.clock.wait_for_sleepers(1), 10)
            await a.move(step)
        raw = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 10)
        event = json.loads(raw.removeprefix(b"data: "))
        validate("fal", "status", event)
        seen.append(event["status"])
    assert seen == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert await asyncio.wait_for(resp.content.read(), 10) == b""


async def test_the_default_seaart_gateway_error_is_the_same_on_both(start: Start) -> None:
    a, b = await start(), await start()
    bodies = []
    for mock in (a, b):
        _, body = await mock.call(
            "seaart",
            "status",
            "GET",
            f"{SEAART}/nano_banana_pro/requests/x/status",
            auth=False,
            expect=401,
        )
        bodies.append(body)
    assert bodies[0] == bodies[1]


# -- a replay: the same on one process or two -------------------------------------------------


async def _replay(first: Shared, second: Shared) -> list[Any]:
    """A scenario of submits, polls and a cancel, alternating between two mocks."""
    seen: list[Any] = []
    mocks = [first, second]
    ids = [await seaart_submit(mocks[i % 2], prompt=f"p{i}") for i in range(4)]
    seen.append(ids)
    await first.move(20)
    for i, rid in enumerate(ids):
        seen.append((await seaart_status(mocks[(i + 1) % 2], rid))["status"])
    _, body = await second.call(
        "seaart",
        "cancel",
        "PUT",
        f"{SEAART}/nano_banana_pro/requests/{ids[3]}/cancel",
        expect=None,
    )
    seen.append(body)
    await second.move(100)
    for i, rid in enumerate(ids):
        _, body = await mocks[i % 2].call(
            "seaart",
            "result",
            "GET",
            f"{SEAART}/nano_banana_pro/requests/{rid}/response",
        )
        seen.append(json.loads(json.dumps(body).replace(first.base, "").replace(second.base, "")))
    journal = await first.journal()
    seen.append([{k: v for k, v in e.items() if k != "path"} for e in journal["entries"]])
    return seen


async def test_a_scenario_replays_the_same_on_one_process_or_two(
    start: Start, redis_server: RedisServer
) -> None:
    one = await start(processing_jitter=0.2)
    alone = await _replay(one, one)
    redis_server.command("FLUSHALL")
    await one.control("POST", "reset", json={})
    a, b = await start(processing_jitter=0.2), await start(processing_jitter=0.2)
    redis_server.command("FLUSHALL")  # a new Redis: every tenant starts afresh
    together = await _replay(a, b)
    assert together == alone


# -- snapshots ------------------------------------------------------------------------------


async def test_snapshots_trim_the_log_and_a_late_process_catches_up(
    start: Start, redis_server: RedisServer
) -> None:
    a, b = await start(snapshot_every=5), await start(snapshot_every=5)
    ids = [await seaart_submit(a, prompt=f"p{i}") for i in range(2)]
    await a.control(
        "POST",
        "faults",
        201,
        json={
            "match": {"operation": "cancel", "prompt_regex": "^p[0-9]$"},
            "effect": {"http_error": {"status": 500}},
            "scope": {"first": 1},
        },
    )
    for _ in range(12):  # polls on A: the log passes three snapshots
        await seaart_status(a, ids[0])
    await a.snapshots_written()
    length = int(redis_server.command("XLEN", "nb:{=}:log").split(b"\r\n")[0][1:])
    assert length < 15, "the log was trimmed up to the snapshot before the last"
    assert redis_server.command("EXISTS", "nb:{=}:snap").startswith(b":1")
    await a.move(20)
    late = await start(snapshot_every=5)  # its copy: the snapshot, then the log after it
    data = await seaart_status(late, ids[1])
    assert data["status"] == "IN_PROGRESS"
    rules = (await late.control("GET", "faults"))["faults"]
    assert [(r["id"], r["matched"]) for r in rules] == [("r1", 0)]
    for mock in (late, b):  # B, far behind, catches up too
        _, _body = await mock.call(
            "seaart",
            "cancel",
            "PUT",
            f"{SEAART}/nano_banana_pro/requests/{ids[1]}/cancel",
            expect=None,
        )
    assert [e["status"] for e in (await b.journal(operation="cancel"))["entries"]] == [500, 202]
    assert (await a.journal())["total"] == 2 + 12 + 1 + 2


# -- the store failing ------------------------------------------------------------------------


async def test_health_finds_an_outage_before_any_request_does(
    start: Start, redis_server: RedisServer
) -> None:
    """Health pings the store: a load balancer learns of an outage from it, not from a
    user's failed request, and of the recovery at once; its ping counts as no round trip."""
    a = await start()
    await seaart_submit(a)
    before = await _trips(a)
    redis_server.stop()
    health = await a.client.get("/_mock/health")
    data = await health.json()
    validate("mock", "control/health", data)
    assert health.status == 503 and data["ok"] is False
    assert data["store_error"].startswith(("ConnectionError", "TimeoutError"))
    redis_server.start()
    health = await a.client.get("/_mock/health")
    data = await health.json()
    assert health.status == 200 and data["ok"] is True and "store_error" not in data
    assert data["store_round_trips"] == before  # its pings are no request's round trips


async def test_redis_stopped_is_a_503_and_service_resumes(
    start: Start, redis_server: RedisServer
) -> None:
    a, b = await start(), await start()
    rid = await seaart_submit(a)
    redis_server.stop()
    resp, _body = await b.call(
        "seaart",
        "status",
        "GET",
        f"{SEAART}/nano_banana_pro/requests/{rid}/status",
        expect=503,
    )
    assert resp.headers["X-Mock-Store"].startswith("unavailable: ")
    assert "Retry-After" in resp.headers
    resp, _body = await a.call(
        "pixazo",
        "submit",
        "POST",
        f"{PIXAZO}/nano-banana-pro-request",
        json={"prompt": "a car", "image_urls": PIXAZO_URLS},
        expect=503,
    )
    assert "unavailable" in resp.headers["X-Mock-Store"]
    health = await a.client.get("/_mock/health")
    data = await health.json()
    assert health.status == 503
    validate("mock", "control/health", data)
    assert data["ok"] is False and data["store"] == "redis"
    assert data["store_error"].startswith("ConnectionError")
    clock = await b.client.get("/_mock/clock")
    assert clock.status == 503
    assert (await clock.json())["error"].startswith("store unavailable: ")
    redis_server.start()  # empty: every tenant starts afresh
    await seaart_status(b, rid, expect=404)
    rid = await seaart_submit(a)
    assert (await seaart_status(b, rid))["status"] == "IN_QUEUE"
    health = await b.client.get("/_mock/health")
    data = await health.json()
    assert health.status == 200 and data["ok"] is True and data["store"] == "redis"
    assert "store_error" not in data
    validate("mock", "control/health", data)


# -- no key in clear --------------------------------------------------------------------------

RAW_KEYS = ("SG_0123456789abcdef", "sk-test", "pz-test", "Scenario-Key-42", "Rule-Key-77")


async def test_no_api_key_in_clear_anywhere_in_redis(
    start: Start, redis_server: RedisServer
) -> None:
    scenario = {
        "faults": [
            {"match": {"api_key": "Rule-Key-77"}, "effect": {"http_error": {"status": 500}}}
        ],
        "credits": {"default": 100, "keys": {"Scenario-Key-42": 50}},
        "rate_limits": [{"rpm": 1000, "key": "Scenario-Key-42"}],
    }
    keys = {"api_keys": frozenset(RAW_KEYS)}
    a = await start(scenario, snapshot_every=5, **keys)
    b = await start(scenario, snapshot_every=5, **keys)
    await a.control(
        "POST",
        "faults",
        201,
        json={
            "match": {
                "api_key": ["sk-test", "pz-test"],
                "headers": {"Authorization": "Key sk-test"},
            },
            "effect": {"latency": {"fixed": 0}},
        },
    )
    await b.control("POST", "credits", json={"key": "SG_0123456789abcdef", "balance": 10})
    await b.control("POST", "rate-limits", json={"rpm": 100, "key": "pz-test"})
    rid = await seaart_submit(a)
    for mock in (a, b, a, b, a, b):
        await seaart_status(mock, rid)
        await pixazo_submit(mock)
    _, _body = await b.call(
        "segmind", "submit", "POST", "/v2/nano-banana", json={"prompt": "x"}, expect=200
    )
    rules = (await b.control("GET", "faults"))["faults"]
    by_key = {rule["id"]: rule for rule in rules}
    assert by_key["r2"]["match"]["api_key"] == [redact("sk-test"), redact("pz-test")]
    assert by_key["r2"]["matched"] == 7  # SeaArt's requests: the key and the header sealed
    assert by_key["r1"]["match"]["api_key"] == redact("Rule-Key-77")
    await b.control("POST", "reset", json={"settings": {"api_keys": ["Reset-Key-9"]}})
    for mock in (a, b):
        await mock.snapshots_written()
    found = await _everything(redis_server)
    assert b"nb:{=}:snap" in found  # a snapshot was taken
    for key in (*RAW_KEYS, "Reset-Key-9"):
        assert key.encode() not in found, f"{key} is in Redis in clear"


async def _everything(server: RedisServer) -> bytes:
    """Every key of the Redis, its DUMP and its value read out, as one blob."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(server.url)
    out = []
    try:
        async for name in client.scan_iter(count=1000):
            out.append(name)
            out.append(await client.dump(name) or b"")
            kind = (await client.type(name)).decode()
            if kind == "string":
                out.append(await client.get(name) or b"")
            elif kind == "stream":
                for _id, fields in await client.xrange(name):
                    out += [v for pair in fields.items() for v in pair]
            elif kind == "zset":
                out += await client.zrange(name, 0, -1)
    finally:
        await client.aclose()
    return b"\n".join(out)


# -- linearizable: a request planned on a stale copy is served again ---------------------------


async def test_a_rule_added_on_the_other_process_applies_to_the_next_request(
    start: Start,
) -> None:
    a, b = await start(), await start()
    await pixazo_submit(a)  # A's copy: no rules, so A plans the next submit on the fast path
    await b.control(
        "POST",
        "faults",
        201,
        json={"match": {"operation": "submit"}, "effect": {"http_error": {"status": 500}}},
    )
    assert a.state.faults.rules == []  # A has not heard of it
    assert await pixazo_submit(a, expect=None) == 500  # served again, up to date
    entries = (await a.journal())["entries"]
    assert [(e["status"], e["fault"]) for e in entries] == [(200, None), (500, "r1")]


async def test_settings_reset_on_the_other_process_apply_to_a_request_without_operations(
    start: Start,
) -> None:
    a, b = await start(), await start()
    rid = await seaart_submit(a)
    await b.move(100)
    _, data = await a.call(
        "seaart", "result", "GET", f"{SEAART}/nano_banana_pro/requests/{rid}/response", expect=200
    )
    url = data["outputs"][0]["url"]
    await a.image(url)  # served from A's copy
    await b.control("POST", f"jobs/{rid}/state", json={"state": "EXPIRED"})
    resp = await a.client.get(url[len(a.base) :])  # no operation: A syncs at its end
    assert resp.status == 404
    assert resp.headers["X-Mock-Job-State"] == "expired"
    await b.control("POST", "reset", json={"settings": {"api_keys": ["only-this-one"]}})
    await seaart_status(a, rid, expect=401)  # A's copy had no keys: served again


async def test_redis_restored_from_an_older_file_brings_copies_back_to_it(
    start: Start, redis_server: RedisServer
) -> None:
    a, b = await start(snapshot_every=5), await start(snapshot_every=5)
    kept = [await seaart_submit(mock) for mock in (a, b, a)]
    for _ in range(4):
        await seaart_status(b, kept[0])  # past a snapshot
    assert redis_server.command("SAVE").startswith(b"+OK")
    lost = [await seaart_submit(mock) for mock in (b, a)]
    await b.move(5)
    redis_server.stop()
    redis_server.start()  # loads dump.rdb from its directory: the log as it was at SAVE
    for mock in (a, b):  # both copies were ahead of the log: they load the snapshot again
        await mock.control("GET", "clock")  # a sync
        assert (await mock.control("GET", "clock"))["now"] == 0
        for rid in kept:
            assert (await seaart_status(mock, rid))["status"] == "IN_QUEUE"
        for rid in lost:
            await seaart_status(mock, rid, expect=404)
    again = await seaart_submit(b)
    assert (await seaart_status(a, again))["status"] == "IN_QUEUE"


async def test_named_tenants_are_shared_and_kept_apart(start: Start) -> None:
    a, b = await start(), await start()
    _, data = await a.call(
        "seaart",
        "submit",
        "POST",
        f"/t/ci-1{SEAART}/nano_banana_pro",
        json={"prompt": "x"},
        expect=200,
    )
    rid = data["request_id"]
    assert "/t/ci-1/" in data["status_url"]
    await seaart_status(b, rid, tenant="/t/ci-1")
    await seaart_status(b, rid, expect=404, tenant="/t/ci-2")
    await seaart_status(b, rid, expect=404)  # the default tenant has no such job
    resp = await b.client.post("/t/ci-1/_mock/clock", json={"advance": 7})
    assert resp.status == 200
    clock = await (await a.client.get("/_mock/clock", headers={"X-Mock-Tenant": "ci-1"})).json()
    assert clock["now"] == 7
    assert (await a.control("GET", "clock"))["now"] == 0
    journal = await (await b.client.get("/t/ci-1/_mock/journal")).json()
    assert [e["operation"] for e in journal["entries"]] == ["submit", "status"]


async def test_concurrent_requests_on_both_leave_equal_copies(start: Start) -> None:
    a, b = await start(), await start()
    await a.control(
        "POST",
        "faults",
        201,
        json={
            "match": {"operation": "status"},
            "effect": {"http_error": {"status": 500}},
            "scope": {"every": 3},
        },
    )
    ids = await asyncio.gather(*(seaart_submit((a, b)[i % 2], prompt=f"p{i}") for i in range(40)))
    assert len(set(ids)) == 40
    codes = await asyncio.gather(
        *(
            (a, b)[i % 2].client.get(
                f"{SEAART}/nano_banana_pro/requests/{rid}/status", headers=KEYS["seaart"]
            )
            for i, rid in enumerate(ids)
        )
    )
    assert sorted(resp.status for resp in codes) == [200] * 27 + [500] * 13
    for mock in (a, b):
        await mock.control("GET", "clock")  # a sync: both copies at the log's end
    jobs = [
        [(j.id, j.seq, j.start_at, j.end_at, j.polls) for j in mock.state.store.jobs()]
        for mock in (a, b)
    ]
    assert len(jobs[0]) == 40 and jobs[0] == jobs[1]
    rules = [(await mock.control("GET", "faults"))["faults"][0] for mock in (a, b)]
    assert rules[0] == rules[1] and (rules[0]["matched"], rules[0]["fired"]) == (40, 13)
    journal = await b.journal()
    assert journal["total"] == 40 + 40 and [e["seq"] for e in journal["entries"]] == list(
        range(1, 81)
    )


async def test_a_named_tenants_keys_expire_when_idle_the_default_ones_never(
    start: Start, redis_server: RedisServer
) -> None:
    a = await start(tenant_idle_seconds=600)
    await a.call(
        "seaart",
        "submit",
        "POST",
        f"/t/ci-9{SEAART}/nano_banana_pro",
        json={"prompt": "x"},
        expect=200,
    )
    await seaart_submit(a)
    await a.journal()  # the journal entries are written after the answers: read, it waits
    await a.client.get("/t/ci-9/_mock/journal")
    for name in ("log", "n", "epoch", "journal", "jseq"):
        ttl = int(redis_server.command("TTL", f"nb:{{ci-9}}:{name}")[1:].split(b"\r")[0])
        assert 590 < ttl <= 600, name
        assert redis_server.command("TTL", f"nb:{{=}}:{name}").startswith(b":-1"), name


# -- the store's speed: round trips, the journal off the awaited path, the shared connection --


async def _trips(mock: Shared) -> int:
    resp = await mock.client.get("/_mock/health")
    data = await resp.json()
    validate("mock", "control/health", data)
    return int(data["store_round_trips"])


async def test_a_status_poll_is_one_round_trip_and_a_submit_at_most_two(start: Start) -> None:
    a = await start()
    rid = await seaart_submit(a)
    await seaart_status(a, rid)  # warm: scripts loaded, the copy loaded
    before = await _trips(a)
    await seaart_status(a, rid)
    assert await _trips(a) - before == 1
    before = await _trips(a)
    await seaart_submit(a)
    assert await _trips(a) - before <= 2


async def test_a_journal_read_right_after_answers_sees_them_on_the_other_process(
    start: Start,
) -> None:
    a, b = await start(), await start()
    rid = await seaart_submit(a)
    answers = await asyncio.gather(*(seaart_status(a, rid) for _ in range(20)))
    assert len(answers) == 20
    journal = await b.journal()  # the entries are written after the answers: it waits
    assert journal["total"] == 21
    assert [e["seq"] for e in journal["entries"]] == list(range(1, 22))


async def test_a_journal_read_waits_for_a_pending_entry_at_most_the_bound(
    start: Start, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nanobanana_mock.store import redis as store

    a = await start()
    await seaart_submit(a)
    await a.journal()
    # a request answered on a process that died before writing its entry: its mark stays
    redis_server.command("ZADD", "nb:{=}:pending", "99999999999", "dead.1")
    monkeypatch.setattr(store, "JOURNAL_WAIT", 0.2)
    loop = asyncio.get_running_loop()
    began = loop.time()
    journal = await a.journal()
    assert 0.2 <= loop.time() - began < 5
    assert journal["total"] == 1  # read as it is, after the bound


async def test_a_lost_mark_expires(start: Start, redis_server: RedisServer) -> None:
    a = await start()
    old = str(int(time.time()) - 60)  # older than PENDING_SECONDS
    redis_server.command("ZADD", "nb:{=}:pending", old, "dead.2")
    rid = await seaart_submit(a)
    await seaart_status(a, rid)
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert (await a.journal())["total"] == 2
    assert loop.time() - began < 1


async def test_the_shared_connection_survives_a_restart_and_matches_replies_in_order(
    redis_server: RedisServer,
) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError

    from nanobanana_mock.store.wire import Wire

    wire = Wire(redis_server.url, 2.0)
    try:
        replies = await asyncio.gather(*(wire.execute("ECHO", str(i)) for i in range(200)))
        assert replies == [str(i).encode() for i in range(200)]
        assert await wire.pipeline([("SET", "k", "1"), ("INCR", "k"), ("GET", "k")]) == [
            b"OK",
            2,
            b"2",
        ]
        with pytest.raises(ResponseError):
            await wire.execute("NOSUCHCOMMAND")
        assert await wire.execute("PING") == b"PONG"  # an error reply breaks nothing
        redis_server.stop()
        with pytest.raises(RedisConnectionError):
            await wire.execute("PING")
        redis_server.start()
        assert await wire.execute("PING") == b"PONG"  # connected again, by itself
    finally:
        wire.close()


async def test_the_shared_connection_times_out_instead_of_hanging(
    redis_server: RedisServer,
) -> None:
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from nanobanana_mock.store.wire import Wire

    wire = Wire(redis_server.url, 0.3)
    try:
        assert await wire.execute("PING") == b"PONG"
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(wire.execute("BLPOP", "nothing", "2"), 5)  # blocks 2 s
        assert await wire.execute("PING") == b"PONG"
    finally:
        wire.close()


def _calls(redis_server: RedisServer, command: str) -> int:
    """How many times Redis ran ``command`` (scripts' calls too) since its stats were reset."""
    stats = redis_server.command("INFO", "commandstats").decode()
    for line in stats.split("\r\n"):
        if line.startswith(f"cmdstat_{command}:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


async def test_an_operation_is_not_read_back_while_the_copy_is_up_to_date(
    start: Start, redis_server: RedisServer
) -> None:
    """A request's operation is applied from its own objects when it is the only entry new
    to the copy (no XRANGE); entries of the other process are read (and applied) first."""
    a, b = await start(), await start()
    rid = await seaart_submit(a)
    await seaart_status(a, rid)  # warm
    redis_server.command("CONFIG", "RESETSTAT")
    for _ in range(3):
        await seaart_status(a, rid)
    await asyncio.gather(*(seaart_status(a, rid) for _ in range(10)))  # chained on the wire
    await seaart_submit(a)
    assert _calls(redis_server, "xrange") == 0 and _calls(redis_server, "xadd") >= 14
    for _ in range(2):
        await seaart_status(b, rid)  # b: its copy loaded, then its own
    before = _calls(redis_server, "xrange")
    assert (await seaart_status(a, rid))["status"] == "IN_QUEUE"
    assert _calls(redis_server, "xrange") > before  # b's two polls, read by a
    for mock in (a, b):
        await mock.control("GET", "clock")  # a sync: both copies at the log's end
    polls = [[(j.id, j.polls) for j in mock.state.store.jobs()] for mock in (a, b)]
    assert polls[0] == polls[1] and dict(polls[0])[rid] == 1 + 3 + 10 + 2 + 1
    assert (await b.journal())["total"] == 2 + 1 + 3 + 10 + 2 + 1


async def test_a_command_packed_once_in_part_is_the_same_command(
    redis_server: RedisServer,
) -> None:
    """STEP's start is packed once per tenant (``head``), a request's arguments after it
    (``bulk``): the same bytes as the whole command packed at once, and Redis runs it."""
    from nanobanana_mock.store.wire import Wire, _pack, bulk, head

    args = ("SET", "k", "é" * 400, 12, 1.5, b"\x00\r\n" * 700, "", True)
    assert head(len(args), args[:2]) + bulk(args[2:]) == _pack(args)
    wire = Wire(redis_server.url, 2.0)
    try:
        start = head(3, ["SET", "k"])
        assert await wire.execute_packed(start + bulk([b"v" * 2000])) == b"OK"
        assert await wire.execute("GET", "k") == b"v" * 2000
    finally:
        wire.close()
