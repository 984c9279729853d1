"""fal's status stream (Server-Sent Events) and its x-fal-billable-units header, over real HTTP.

The stream follows the job on the frozen virtual clock the test moves: no wall-clock wait for
the job. Every event's data is checked against the schema api.json names for it (status.json).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nanobanana_mock import schemas
from nanobanana_mock.providers.fal import Fal
from tests.harness import KEYS, Mock, releasing, serving, validate

P = "fal"
Q = "/fal/queue/fal-ai"
STREAM_200 = schemas.load(P, "api")["operations"]["status_stream"]["responses"]["200"]
EVENTS = STREAM_200["events"]


def stream_path(rid: str, app: str = "nano-banana") -> str:
    return f"{Q}/{app}/requests/{rid}/status/stream"


async def submit(mock: Mock, app: str = "nano-banana", **body: object) -> str:
    _, data = await mock.call(
        P, "submit", "POST", f"{Q}/{app}", json={"prompt": "A banana", **body}, expect=200
    )
    return str(data["request_id"])


async def next_event(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """The stream's next event (keep-alive comments skipped), its data validated."""
    while True:
        raw = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
        if not raw.startswith(b":"):
            break
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n"), raw
    data: dict[str, Any] = json.loads(raw[len(b"data: ") :])
    validate(P, EVENTS, data)
    return data


async def open_stream(mock: Mock, rid: str, **params: str) -> aiohttp.ClientResponse:
    resp = await mock.client.get(stream_path(rid), headers=KEYS[P], params=params)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == STREAM_200["content_type"] == "text/event-stream"
    return resp


async def test_a_stream_follows_the_job_from_the_queue_to_completed(mock_factory) -> None:
    mock = await mock_factory(workers=1)
    await submit(mock)  # ahead of it in the one worker's queue
    rid = await submit(mock)
    resp = await open_stream(mock, rid, logs="1")
    seen = [await next_event(resp)]
    for step in (1.0, 0.5, 14.28, 14.28):  # the half second moves nothing: no event
        mock.advance(step)
        if step != 0.5:
            seen.append(await next_event(resp))
    assert [(e["status"], e.get("queue_position")) for e in seen] == [
        ("IN_QUEUE", 1),
        ("IN_QUEUE", 0),
        ("IN_PROGRESS", None),
        ("COMPLETED", None),
    ]
    assert [line["message"] for line in seen[-1]["logs"]] == ["Generating 1 image", "Done"]
    assert seen[-1]["request_id"] == rid and seen[-1]["metrics"] == {"inference_time": 14.28}
    assert await asyncio.wait_for(resp.content.read(), 5) == b""  # closed after COMPLETED
    journal = await (await mock.client.get("/_mock/journal", params={"request_id": rid})).json()
    assert journal["counts"] == {"fal.submit": 1, "fal.status_stream": 1}
    (entry,) = [e for e in mock.state.journal.entries() if e.operation == "status_stream"]
    assert (entry.status, entry.state) == (200, "SUCCEEDED")  # one entry, as it ended
    assert mock.state.clock.sleepers == 0


async def test_a_finished_job_streams_one_completed_event(mock: Mock) -> None:
    rid = await submit(mock)
    mock.advance(30)
    resp = await open_stream(mock, rid)
    raw = await asyncio.wait_for(resp.read(), 5)
    (event,) = raw.split(b"\n\n")[:-1]
    data = json.loads(event.removeprefix(b"data: "))
    validate(P, EVENTS, data)
    assert data["status"] == "COMPLETED" and data["logs"] is None


async def test_an_unknown_id_is_404_detail_and_fault_rules_apply(mock: Mock) -> None:
    _, body = await mock.call(P, "status_stream", "GET", stream_path("nope"), expect=404)
    assert body == {"detail": "Request not found"}
    rule = {"match": {"operation": "status_stream"}, "effect": {"http_error": {"status": 503}}}
    assert (await mock.client.post("/_mock/faults", json=rule)).status == 201
    rid = await submit(mock)
    resp, body = await mock.call(P, "status_stream", "GET", stream_path(rid), expect=503)
    assert body == {"detail": "Service Unavailable"} and resp.headers["Retry-After"]
    assert (await mock.client.delete("/_mock/faults")).status == 200
    rule["effect"] = {"transport": {"kind": "reset"}}  # after the answer: cut after one event
    assert (await mock.client.post("/_mock/faults", json=rule)).status == 201
    cut = await open_stream(mock, rid)
    assert (await next_event(cut))["status"] == "IN_QUEUE"
    with pytest.raises(aiohttp.ClientPayloadError):  # at once: the clock never moved
        await asyncio.wait_for(cut.content.read(), 5)


async def test_a_quiet_stream_sends_keep_alive_comments(
    mock: Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Fal, "keepalive_seconds", 0.02)
    resp = await open_stream(mock, await submit(mock))
    assert (await next_event(resp))["status"] == "IN_QUEUE"
    assert await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5) == b": keep-alive\n\n"
    monkeypatch.setattr(Fal, "stream_seconds", 0.0)  # the next one is over at once
    resp = await open_stream(mock, await submit(mock))
    assert (await next_event(resp))["status"] == "IN_QUEUE"
    assert await asyncio.wait_for(resp.content.read(), 5) == b""


async def test_streams_end_when_the_client_leaves_or_the_mock_is_reset() -> None:
    async with serving(workers=1) as (served, state), aiohttp.ClientSession() as session:
        base = served.base_url
        rids = []
        for _ in range(2):
            async with session.post(
                f"{base}{Q}/nano-banana", json={"prompt": "x"}, headers=KEYS[P]
            ) as resp:
                rids.append((await resp.json())["request_id"])
        left = await session.get(f"{base}{stream_path(rids[0])}", headers=KEYS[P])
        kept = await session.get(f"{base}{stream_path(rids[1])}", headers=KEYS[P])
        for resp in (left, kept):
            assert (await next_event(resp))["status"] == "IN_QUEUE"
        await asyncio.wait_for(state.clock.wait_for_sleepers(2), 5)
        assert await waiting_gauge(session, base) == 2.0
        left.close()  # the client goes: its stream's task is cancelled, nothing waits on
        for _ in range(500):  # bounded: the server notices the closed connection at once
            async with session.get(f"{base}/_mock/health") as resp:
                if (await resp.json())["waiting"] == 1:
                    break
            await asyncio.sleep(0.01)
        assert state.clock.sleepers == 1
        async with session.post(f"{base}/_mock/reset", json={}) as resp:
            assert resp.status == 200
        assert await asyncio.wait_for(kept.content.read(), 5) == b""  # ended by the reset
        async with session.get(f"{base}/_mock/health") as resp:
            assert (await resp.json())["waiting"] == 0
        assert await waiting_gauge(session, base) == 0.0


async def waiting_gauge(session: aiohttp.ClientSession, base: str) -> float:
    async with session.get(f"{base}/_mock/metrics") as resp:
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        if family.name == "nanobanana_mock_waiting_requests":
            (sample,) = [s for s in family.samples if s.labels["tenant"] == ""]
            return float(sample.value)
    raise AssertionError("no waiting_requests gauge")


@pytest.mark.parametrize(
    ("app", "body", "units"),
    [
        ("nano-banana", {"num_images": 3}, "3"),
        ("nano-banana-pro", {"resolution": "4K", "num_images": 2}, "4"),
        ("nano-banana-2", {"resolution": "0.5K"}, "0.75"),
    ],
)
async def test_a_result_says_its_billable_units(
    mock: Mock, app: str, body: dict[str, object], units: str
) -> None:
    rid = await submit(mock, app, **body)
    mock.advance(200)
    resp, _ = await mock.call(P, "result", "GET", f"{Q}/{app}/requests/{rid}", expect=200)
    assert (resp.headers["x-fal-request-id"], resp.headers["x-fal-billable-units"]) == (rid, units)


async def test_fal_run_says_its_billable_units(mock: Mock) -> None:
    async with releasing(mock, 60.0):
        resp, _ = await mock.call(
            P,
            "run",
            "POST",
            "/fal/run/fal-ai/nano-banana-2",
            json={"prompt": "x", "resolution": "2K"},
            expect=200,
        )
    assert resp.headers["x-fal-billable-units"] == "1.5" and resp.headers["x-fal-request-id"]
