"""The validating proxy forwards fal in fal's real layout when its upstream is one of fal's
real hosts (``schemas.hosts``), and brings the URLs on those hosts back under the mock's prefix.

Offline: the contract's real hosts are replaced, for the test, by a loopback stand-in that
serves fal's real layout in front of a second mock (the upstream that owns the jobs)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from nanobanana_mock import schemas
from nanobanana_mock.app import create_app
from nanobanana_mock.config import MockConfig
from nanobanana_mock.state import STATE
from tests.fal_standin import FalStandIn, closed_port

CONFIG = {"seed": 3, "time_scale": 0.0, "self_check": True, "queue_seconds": 1.0}
AUTH = {"Authorization": "Key fal-id:fal-secret"}
SUBMIT = "/fal/queue/fal-ai/nano-banana"


async def test_fal_goes_upstream_in_its_real_layout(
    aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = await aiohttp_server(create_app(MockConfig(**CONFIG)))
    upstream_base = str(upstream.make_url("")).rstrip("/")
    with FalStandIn(upstream_base) as standin:
        real = {"/fal/queue": standin.origin, "/fal/run": f"http://127.0.0.1:{closed_port()}"}
        monkeypatch.setitem(schemas.load("fal", "api"), "hosts", real)
        proxied = create_app(MockConfig(**CONFIG, proxy={"fal": standin.origin}))
        proxy = await aiohttp_server(proxied)
        base = str(proxy.make_url("")).rstrip("/")
        async with aiohttp.ClientSession(headers=AUTH) as http:
            async with http.post(base + SUBMIT, json={"prompt": "a banana"}) as resp:
                assert resp.status == 200, await resp.text()
                job = await resp.json()
            for name in ("status_url", "response_url", "cancel_url"):
                assert job[name].startswith(base + SUBMIT + "/requests/"), job[name]
            async with http.get(job["status_url"]) as resp:
                assert resp.status == 200 and (await resp.json())["status"] == "IN_QUEUE"
            upstream.app[STATE].clock.advance(600)
            async with http.get(job["response_url"]) as resp:
                assert resp.status == 200 and (await resp.json())["images"]
            async with http.get(base + "/_mock/drift") as resp:
                assert (await resp.json())["findings"] == []
    request = f"/fal-ai/nano-banana/requests/{job['request_id']}"
    assert standin.requests == [
        ("POST", "/fal-ai/nano-banana"),
        ("GET", request + "/status"),
        ("GET", request),
    ]


async def test_an_edit_body_is_checked_by_its_edit_schema(aiohttp_server: Any) -> None:
    upstream = await aiohttp_server(create_app(MockConfig(**CONFIG)))
    upstream_base = str(upstream.make_url("")).rstrip("/")
    proxy = await aiohttp_server(create_app(MockConfig(**CONFIG, proxy={"fal": upstream_base})))
    base = str(proxy.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(headers=AUTH) as http:
        async with http.post(base + SUBMIT + "/edit", json={"prompt": "a banana"}) as resp:
            assert resp.status == 422, await resp.text()  # the upstream's: no image_urls
        async with http.get(base + "/_mock/drift") as resp:
            findings = (await resp.json())["findings"]
    # the real fal answers 422 too: a body its own edit schema refuses is a request finding
    sent = [(f["operation"], f["pointer"]) for f in findings if f["check"] == "request"]
    assert sent == [("submit_edit", "/image_urls")], findings
