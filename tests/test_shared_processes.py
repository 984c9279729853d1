"""Two separate mock processes on one real Redis, as two hosts behind a load balancer: each
``python -m nanobanana_mock --port <its own> --store redis://…``, started once for the module.
Requests alternate between them: submit on one, poll, fetch, cancel and download on the
other, for every route of every provider (and the strays); fault scopes, a job failure,
credits, rate limits, the journal, SeaArt's queue, a named tenant and the clock are shared.
Every answer is validated against its contract. Each test runs in a tenant of its own
(``/t/<test>/``), so the tests need no reset and never see each other; the clock only moves
through the control plane (``--time-scale 0``)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from nanobanana_mock import schemas
from tests.harness import KEYS, mock_process, schema_for, validate
from tests.redis_server import RedisServer

SEAART = "/model/v1/queue/nano_banana_pro"
PIXAZO = "/nano-banana-pro-770/v1"
PIXAZO_BODY = {"prompt": "a car", "image_urls": ["https://example.com/in.png"]}
SETTINGS = ["--time-scale", "0", "--seed", "7", "--processing-jitter", "0"]
SETTINGS += ["--queue-seconds", "1", "--workers", "2", "--self-check", "--log-level", "ERROR"]


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """One Redis, and two mock processes on their own ports pointed at it."""
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer(tmp_path_factory.mktemp("redis")))
        found = []
        for _ in range(2):
            command = [sys.executable, "-m", "nanobanana_mock", "--port", "0"]
            command += ["--store", redis.url, *SETTINGS]
            base, _ = stack.enter_context(mock_process(command))
            found.append(base)
        yield found[0], found[1]


def _control_schema(method: str, path: str, status: int) -> str:
    """The schema the control plane's api.json names for this route's answer."""
    routes = schemas.load("mock", "control/api")["routes"].values()
    for route in routes:
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(route["path"]))
        if route["method"] == method and re.fullmatch(pattern, path):
            return str(route["answers"][str(status)])
    raise AssertionError(f"no control route {method} {path}")


class Proc:
    """One of the two processes, inside the test's tenant; every answer checked."""

    def __init__(self, session: aiohttp.ClientSession, base: str, tenant: str) -> None:
        self.session, self.origin, self.prefix = session, base, f"/t/{tenant}" if tenant else ""

    @property
    def base(self) -> str:
        return self.origin + self.prefix

    async def call(
        self,
        provider: str,
        operation: str,
        method: str,
        path: str,
        expect: int | None = None,
        auth: bool = True,
        **kwargs: Any,
    ) -> tuple[int, Any, Any]:
        """(status, headers, body): a JSON body validated against the operation's answer."""
        headers = KEYS[provider] if auth else {}
        async with self.session.request(
            method, self.base + path, headers=headers, **kwargs
        ) as resp:
            raw = await resp.read()
            if expect is not None:
                assert resp.status == expect, f"{method} {path}: {resp.status} {raw[:300]!r}"
            body: Any = raw
            if resp.content_type == "application/json":
                body = json.loads(raw)
                validate(provider, schema_for(provider, operation, resp.status), body)
            return resp.status, resp.headers, body

    async def control(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        async with self.session.request(method, f"{self.base}/_mock/{path}", **kwargs) as resp:
            body = await resp.json()
            assert resp.status == expect, body
            if resp.status < 300:
                schema = _control_schema(method, f"/_mock/{path.split('?')[0]}", resp.status)
                errors = list(schemas.validator("mock", f"control/{schema}").iter_errors(body))
                assert not errors, errors
            return body

    async def move(self, seconds: float) -> None:
        await self.control("POST", "clock", json={"advance": seconds})

    async def image(self, url: str) -> bytes:
        """Download an output image (its URL names the tenant, on whichever process)."""
        assert "/_mock/files/" in url and url.startswith(self.base), url
        async with self.session.get(self.origin + url[len(self.origin) :]) as resp:
            data = await resp.read()
            assert resp.status == 200 and resp.content_type.startswith("image/"), data[:200]
            assert int(resp.headers["Content-Length"]) == len(data)
            return data


def other(url: str, a: Proc, b: Proc) -> str:
    """The same URL on the other process (a load balancer would send it anywhere)."""
    return url.replace(a.origin, b.origin)


@pytest.fixture
async def pair(
    bases: tuple[str, str], request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Proc, Proc]]:
    tenant = request.node.name.replace("test_", "")[:60]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        a, b = Proc(session, bases[0], tenant), Proc(session, bases[1], tenant)
        yield a, b
        for proc in (a, b):  # neither copy broke its contract
            health = await proc.control("GET", "health")
            assert health.get("violations", []) == [], health


# -- every route of every provider ------------------------------------------------------------


async def test_segmind_every_route_across_two_processes(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    _, _, job = await a.call(
        "segmind", "submit", "POST", "/v2/nano-banana", 200, json={"prompt": "x"}
    )
    rid = job["request_id"]
    _, _, data = await b.call("segmind", "status", "GET", f"/v2/requests/{rid}/status", 200)
    assert data["status"] == "QUEUED"
    _, _, data = await a.call("segmind", "poll", "GET", f"/v1/requests/{rid}", 200)
    await b.move(60)
    _, _, data = await a.call("segmind", "status", "GET", f"/v2/requests/{rid}/status", 200)
    assert data["status"] == "COMPLETED"
    _, _, result = await b.call("segmind", "result", "GET", f"/v2/requests/{rid}", 200)
    output = result["output"]
    url = output[0] if isinstance(output, list) else output
    assert (await a.image(other(url, b, a))) == (await b.image(url))  # any process renders it
    _, _, polled = await b.call("segmind", "poll", "GET", f"/v1/requests/{rid}", 200)
    assert polled["status"] == "COMPLETED", polled
    # the /v1 sync call on one process, released by the clock moved on the other
    call = asyncio.ensure_future(
        a.call("segmind", "sync_generate", "POST", "/v1/nano-banana", json={"prompt": "y"})
    )
    for _ in range(50):
        await b.move(60)
        done, _ = await asyncio.wait({call}, timeout=0.2)
        if done:
            break
    status, headers, image = await asyncio.wait_for(call, 10)
    assert status == 200 and headers["Content-Type"].startswith("image/"), image[:200]
    await a.call("segmind", "status", "GET", "/v2/requests/nope/status", 404)
    _, _, stray = await b.call("segmind", "status", "GET", "/v2/requests/a/b/c", None)
    validate("segmind", "error", stray)
    await a.call(
        "segmind", "submit", "POST", "/v2/nano-banana", 401, auth=False, json={"prompt": "x"}
    )


async def test_seaart_every_route_across_two_processes(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    _, _, job = await a.call("seaart", "submit", "POST", SEAART, 200, json={"prompt": "x"})
    rid = job["request_id"]
    _, _, data = await b.call("seaart", "status", "GET", f"{SEAART}/requests/{rid}/status", 200)
    assert data["status"] == "IN_QUEUE"
    await b.call("seaart", "result", "GET", f"{SEAART}/requests/{rid}/response", 202)
    await a.move(120)
    _, _, data = await b.call("seaart", "result", "GET", f"{SEAART}/requests/{rid}/response", 200)
    images = [u for u in json.dumps(data).split('"') if "/_mock/files/" in u]
    assert images and await a.image(other(images[0], b, a))
    _, _, job = await b.call("seaart", "submit", "POST", SEAART, 200, json={"prompt": "x"})
    await a.call("seaart", "cancel", "PUT", f"{SEAART}/requests/{job['request_id']}/cancel", 202)
    _, _, data = await b.call(
        "seaart", "status", "GET", f"{SEAART}/requests/{job['request_id']}/status", 200
    )
    assert data["status"] == "COMPLETED" and data["error_type"] == "CANCELED", data
    await a.call("seaart", "sync", "POST", f"{SEAART}/sync", 404, json={"prompt": "x"})
    await b.call("seaart", "stream", "GET", f"{SEAART}/requests/{rid}/status/stream", 400)
    await a.call("seaart", "status", "GET", f"{SEAART}/requests/mmsu_unknown/status", 404)
    await b.call("seaart", "status", "GET", "/model/nowhere", 404)  # a stray


async def test_pixazo_every_route_across_two_processes(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    submit, result = f"{PIXAZO}/nano-banana-pro-request", f"{PIXAZO}/nano-banana-pro-request-result"
    _, _, job = await b.call("pixazo", "submit", "POST", submit, 200, json=PIXAZO_BODY)
    rid = job["request_id"]
    _, _, data = await a.call("pixazo", "result", "POST", result, 200, json={"request_id": rid})
    assert data["status"] != "COMPLETED"
    await b.move(120)
    _, _, data = await a.call("pixazo", "result", "POST", result, 200, json={"request_id": rid})
    assert data["status"] == "COMPLETED"
    images = [u for u in json.dumps(data).split('"') if "/_mock/files/" in u]
    assert images and await b.image(other(images[0], a, b))
    await b.call("pixazo", "result", "POST", result, 404, json={"request_id": "nope"})
    async with a.session.post(a.base + f"{PIXAZO}/other", headers=KEYS["pixazo"]) as resp:
        assert resp.status == 404 and await resp.json() == {"error": "Endpoint not found"}


# -- faults, credits, rate limits: counted across both ------------------------------------------


async def test_fault_scopes_and_a_job_failure_count_across_both(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    rules = [
        {
            "id": "every",
            "match": {"provider": "pixazo", "operation": "submit"},
            "effect": {"http_error": {"status": 500}},
            "scope": {"every": 2, "times": 2},
        },
        {
            "id": "first",
            "match": {"provider": "segmind", "operation": "status"},
            "effect": {"http_error": {"status": 503}},
            "scope": {"first": 2},
        },
        {
            "id": "fail",
            "match": {"provider": "seaart", "operation": "submit"},
            "effect": {"job_failure": {"error": "Blocked", "error_type": "CONTENT_BLOCKED"}},
            "scope": {"times": 1},
        },
    ]
    await a.control("POST", "faults", 201, json={"faults": rules})
    submit = f"{PIXAZO}/nano-banana-pro-request"
    codes = [
        (await p.call("pixazo", "submit", "POST", submit, json=PIXAZO_BODY))[0]
        for p in (a, b, a, b, a, b, a, b)
    ]
    assert codes == [200, 500, 200, 500, 200, 200, 200, 200]
    _, _, job = await b.call(
        "segmind", "submit", "POST", "/v2/nano-banana", 200, json={"prompt": "x"}
    )
    path = f"/v2/requests/{job['request_id']}/status"
    codes = [(await p.call("segmind", "status", "GET", path))[0] for p in (a, b, a, b)]
    assert codes == [503, 503, 200, 200]
    _, _, job = await b.call("seaart", "submit", "POST", SEAART, 200, json={"prompt": "x"})
    await b.move(120)
    status = f"{SEAART}/requests/{job['request_id']}/status"
    _, _, data = await a.call("seaart", "status", "GET", status, 200)
    assert data["status"] == "COMPLETED" and data["error_type"] == "CONTENT_BLOCKED", data
    _, _, job = await a.call("seaart", "submit", "POST", SEAART, 200, json={"prompt": "x"})
    await a.move(120)
    status = f"{SEAART}/requests/{job['request_id']}/status"
    _, _, data = await b.call("seaart", "status", "GET", status, 200)
    assert "error_type" not in data, data  # `times: 1` spent on the other process
    for proc in (a, b):
        listed = await proc.control("GET", "faults")
        fired = {r["id"]: (r["matched"], r["fired"]) for r in listed["faults"]}
        assert fired == {"every": (8, 2), "first": (4, 2), "fail": (2, 1)}, fired


async def test_credits_charged_on_one_are_refused_on_the_other(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    await a.control("POST", "credits", json={"default": 0.05})  # one job a key
    await a.call("segmind", "submit", "POST", "/v2/nano-banana", 200, json={"prompt": "x"})
    await b.call("segmind", "submit", "POST", "/v2/nano-banana", 406, json={"prompt": "x"})
    submit = f"{PIXAZO}/nano-banana-pro-request"  # each key its own balance: 0.045 a job
    await b.call("pixazo", "submit", "POST", submit, 200, json=PIXAZO_BODY)
    await a.call("pixazo", "submit", "POST", submit, 402, json=PIXAZO_BODY)
    credits = await b.control("GET", "credits")
    assert json.dumps(credits) == json.dumps(await a.control("GET", "credits"))


async def test_rate_limits_across_both(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    await b.control("POST", "rate-limits", json={"rpm": 2})
    submit = f"{PIXAZO}/nano-banana-pro-request"
    codes = [
        (await p.call("pixazo", "submit", "POST", submit, json=PIXAZO_BODY)) for p in (a, b, a)
    ]
    assert [c[0] for c in codes] == [200, 200, 429]
    assert int(codes[2][1]["Retry-After"]) >= 1
    codes = [
        await p.call("segmind", "submit", "POST", "/v2/nano-banana", json={"prompt": "x"})
        for p in (b, a, b)
    ]
    assert [c[0] for c in codes] == [200, 200, 429]
    assert "x-rate-limit-reset-at-utc" in codes[2][1] and "Retry-After" not in codes[2][1]
    await a.move(30)  # one token back, seen by both
    codes = [(await p.call("pixazo", "submit", "POST", submit, json=PIXAZO_BODY)) for p in (b, a)]
    assert [c[0] for c in codes] == [200, 429]


# -- the journal, SeaArt's queue, tenants, the clock ---------------------------------------------


async def test_each_journal_shows_every_request_of_both(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    _, _, job = await a.call("seaart", "submit", "POST", SEAART, 200, json={"prompt": "x"})
    path = f"{SEAART}/requests/{job['request_id']}/status"
    for proc in (b, a, b):
        await proc.call("seaart", "status", "GET", path, 200)
    await b.call(
        "pixazo", "submit", "POST", f"{PIXAZO}/nano-banana-pro-request", 200, json=PIXAZO_BODY
    )
    seen = []
    for proc in (a, b):
        journal = await proc.control("GET", "journal")
        seen.append(journal["entries"])
        ops = [(e["provider"], e["operation"]) for e in journal["entries"]]
        assert ops == [("seaart", "submit")] + [("seaart", "status")] * 3 + [("pixazo", "submit")]
        assert [e["seq"] for e in journal["entries"]] == [1, 2, 3, 4, 5]
        assert (journal["total"], journal["dropped"]) == (5, 0)
    assert seen[0] == seen[1]


async def test_seaart_cancel_on_the_other_replans_the_queue(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    await a.control("POST", "reset", json={"settings": {"workers": 1}})
    ids = [
        (await p.call("seaart", "submit", "POST", SEAART, 200, json={"prompt": "x"}))[2][
            "request_id"
        ]
        for p in (a, b, a, b)
    ]

    async def positions(proc: Proc) -> list[Any]:
        out = []
        for rid in ids:
            _, _, data = await proc.call(
                "seaart", "status", "GET", f"{SEAART}/requests/{rid}/status", 200
            )
            out.append(data.get("queue_position"))
        return out

    before = await positions(a)
    assert before == await positions(b) and before == [0, 1, 2, 3], before
    await b.call("seaart", "cancel", "PUT", f"{SEAART}/requests/{ids[1]}/cancel", 202)
    after = await positions(a)
    assert after == await positions(b) and after == [0, None, 1, 2], after


async def test_a_named_tenant_on_both_and_the_default_apart(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    assert a.prefix.startswith("/t/")
    _, _, job = await a.call(
        "segmind", "submit", "POST", "/v2/nano-banana", 200, json={"prompt": "x"}
    )
    assert job["status_url"].startswith(a.base + "/v2/"), job  # its URLs stay in the tenant
    _, _, data = await b.call(
        "segmind", "status", "GET", f"/v2/requests/{job['request_id']}/status", 200
    )
    assert data["status"] == "QUEUED"
    outside = Proc(b.session, b.origin, "")  # the default tenant does not know the job
    await outside.call("segmind", "status", "GET", f"/v2/requests/{job['request_id']}/status", 404)
    names = {t["name"] for t in (await outside.control("GET", "tenants"))["tenants"]}
    assert a.prefix[3:] in names
    assert [t["name"] for t in (await b.control("GET", "tenants"))["tenants"]] == [a.prefix[3:]]


async def test_the_clock_advanced_on_one_is_seen_on_the_other(pair: tuple[Proc, Proc]) -> None:
    a, b = pair
    await a.move(12.5)
    assert (await b.control("GET", "clock"))["now"] == 12.5
    await b.move(7.5)
    assert (await a.control("GET", "clock"))["now"] == 20
    health = [await p.control("GET", "health") for p in (a, b)]
    assert health[0]["pid"] != health[1]["pid"] and {h["store"] for h in health} == {"redis"}


# -- a Redis restart under an idle process ----------------------------------------------------


async def test_the_first_request_after_a_redis_restart_is_served(tmp_path: Path) -> None:
    """Redis restarted (empty) while a process is idle: its next request is answered as
    the provider would (a new job), not with the store's 503: Redis is up again."""
    with RedisServer(tmp_path) as redis:
        command = [sys.executable, "-m", "nanobanana_mock", "--port", "0"]
        with mock_process([*command, "--store", redis.url, *SETTINGS]) as (base, _):
            async with aiohttp.ClientSession() as session:
                a = Proc(session, base, "")
                await a.call(
                    "segmind", "submit", "POST", "/v2/nano-banana", 200, json={"prompt": "x"}
                )
                redis.stop()
                redis.start()
                await asyncio.sleep(0.5)  # idle a moment (no request: nothing met the restart)
                status, headers, body = await a.call(
                    "segmind", "submit", "POST", "/v2/nano-banana", json={"prompt": "x"}
                )
                assert status == 200, (headers.get("X-Mock-Store"), body)
