"""Strict mode against a drifting fake provider, and the sync facade against the mock."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from nanobanana_mock.client import Client, ContractViolation, JobStatus, SyncClient

DRIFTED = {"status": "QUEUED", "request_id": "r1", "metrics": "none", "eta": 5}


async def drifting_segmind(request: web.Request) -> web.Response:
    """A 'live' Segmind whose status answer drifted: a new field, a changed type."""
    return web.json_response(DRIFTED)


@pytest.fixture
async def drifting(aiohttp_server) -> str:
    app = web.Application()
    app.router.add_get("/v2/requests/{id}/status", drifting_segmind)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_strict_mode_reports_a_drifted_answer_as_one_whole_body_violation(
    drifting: str,
) -> None:
    from nanobanana_mock.client import JobHandle

    # The status schema is a oneOf of the per-state answers, so the drift (a string "metrics",
    # an unknown "eta") matches none of them: jsonschema reports a single error at the body
    # root (pointer ""), not one per drifted field.
    expected = [("", "status", 200, f"{DRIFTED!r} is not valid under any of the given schemas")]
    handle = JobHandle("segmind", "nano-banana", "r1", drifting)
    async with Client("segmind", api_key="k", base_url=drifting, strict=True) as client:
        report = await client.status(handle)  # reported, not raised
        assert report.status is JobStatus.QUEUED
        found = [(v.pointer, v.operation, v.http_status, v.message) for v in client.violations]
        assert found == expected
        assert all(v.provider == "segmind" for v in client.violations)
    async with Client("segmind", api_key="k", base_url=drifting, strict="raise") as client:
        with pytest.raises(ContractViolation) as caught:
            await client.status(handle)
        assert caught.value.violations == client.violations
        raised = caught.value.violations
        assert [(v.pointer, v.operation, v.http_status, v.message) for v in raised] == expected


async def test_strict_mode_is_silent_on_the_mock(make_client) -> None:
    client = make_client("seaart", strict="raise")
    result = await client.generate("nano_banana_pro", prompt="x")
    assert result.images and client.violations == []


@pytest.mark.nanobanana_mock(queue_seconds=0, processing_seconds={"*": 0})
def test_sync_client(nanobanana_mock) -> None:
    with SyncClient("pixazo", api_key="pz", base_url=nanobanana_mock.base_url) as client:
        result = client.generate(
            "nano-banana-pro", prompt="x", image_urls=["https://a.io/b.png"], num_images=2
        )
        assert len(result.images) == 2 and all(i.data for i in result.images)
        handle = client.submit("nano-banana-pro", prompt="y", image_urls=["https://a.io/b.png"])
        assert client.status(handle).status is JobStatus.SUCCEEDED
    assert nanobanana_mock.journal.count(provider="pixazo", operation="submit") == 2


async def test_sync_client_keeps_the_violations_as_client_does(drifting: str) -> None:
    from nanobanana_mock.client import JobHandle

    handle = JobHandle("segmind", "nano-banana", "r1", drifting)
    # The fake provider is served by this test's loop, so the blocking calls run in a thread.
    client = await asyncio.to_thread(
        SyncClient, "segmind", api_key="k", base_url=drifting, strict=True
    )
    try:
        report = await asyncio.to_thread(client.status, handle)
        assert report.status is JobStatus.QUEUED
        (violation,) = client.violations
        assert (violation.pointer, violation.operation, violation.provider) == (
            "", "status", "segmind"
        )  # fmt: skip
        assert client.violations is client.client.violations
    finally:
        await asyncio.to_thread(client.close)


def test_sync_client_offers_every_public_operation_and_attribute_of_client() -> None:
    with SyncClient("seaart", api_key="k", base_url="http://127.0.0.1:9") as sync:
        original = sync.client
        names = {name for name in dir(original) if not name.startswith("_")}
        settings = {  # how the client was built; read them on .client
            "adapter", "retry", "strict", "request_timeout", "poll_interval", "poll_backoff",
            "max_poll_interval", "timer", "on_retry",
        }  # fmt: skip
        missing = sorted(name for name in names - settings if not hasattr(sync, name))
        assert missing == []
        for name in ("provider", "base_url", "models", "violations"):
            assert getattr(sync, name) == getattr(original, name)
