"""The Redis store: two apps in one event loop play two processes against one real Redis
(``tests/redis_server.py``). Submit on one, poll, cancel, read and download on the other;
faults, credits, rate limits, the journal and the clock shared; a blocked Segmind call
released from the other process; replays identical on one process or two; snapshots; an
outage; and no API key in clear anywhere in Redis. Every answer is validated against its
schema (``Mock.call``)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from nanobanana_mock import app as app_module
from nanobanana_mock.app import create_app
from nanobanana_mock.config import MockConfig
from nanobanana_mock.state import STATE, MockState
from nanobanana_mock.store.redis import RedisTenants
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


@pytest.fixture
async def start(
    redis_server: RedisServer, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Start]:
    """Start apps (processes) on the one Redis, with settings and a scenario of the test's
    choosing; each is checked for contract violations at the end."""
    started: list[Shared] = []

    async def begin(scenario: dict[str, Any] | None = None, **overrides: Any) -> Shared:
        config = MockConfig(**{**BASE, **overrides})

        def tenants(state: MockState) -> RedisTenants:
            return RedisTenants(state.config, state, scenario, url=redis_server.url)

        monkeypatch.setattr(app_module, "Tenants", tenants)
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
        "seaart", "submit", "POST", f"{SEAART}/{endpoint}", json={"prompt": "x", **body},
        expect=200,
    )  # fmt: skip
    return str(data["request_id"])


async def seaart_status(mock: Mock, rid: str, expect: int = 200) -> Any:
    _, data = await mock.call(
        "seaart", "status", "GET", f"{SEAART}/nano_banana_pro/requests/{rid}/status",
        expect=expect,
    )  # fmt: skip
    return data


# -- every provider, across two processes -------------------------------------------------


async def test_segmind_submit_on_one_poll_and_download_on_the_other(start: Start) -> None:
    a, b = await start(), await start()
    _, job = await a.call(
        "segmind", "submit", "POST", "/v2/nano-banana", json={"prompt": "Dancing Banana"},
        expect=200,
    )  # fmt: skip
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
    _, cancelled = await b.call(
        "seaart", "cancel", "PUT", f"{SEAART}/nano_banana_pro/requests/{rid}/cancel",
        expect=202,
    )  # fmt: skip
    _, data = await a.call(
        "seaart", "result", "GET", f"{SEAART}/nano_banana_pro/requests/{rid}/response",
        expect=200,
    )  # fmt: skip
    assert data["status"] == "COMPLETED" and data.get("error_type")
    # an unknown id is the provider's 404 on either
    await seaart_status(a, "mmsu_unknown", expect=404)


async def test_pixazo_submit_on_one_result_on_the_other(start: Start) -> None:
    a, b = await start(), await start()
    _, data = await a.call(
        "pixazo", "submit", "POST", f"{PIXAZO}/nano-banana-pro-request",
        json={"prompt": "a car", "image_urls": PIXAZO_URLS}, expect=200,
    )  # fmt: skip
    rid = data["request_id"]
    await a.move(120)
    _, data = await b.call(
        "pixazo", "result", "POST", f"{PIXAZO}/nano-banana-pro-request-result",
        json={"request_id": rid}, expect=200,
    )  # fmt: skip
    assert data["status"] == "COMPLETED"
