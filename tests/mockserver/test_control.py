"""The control plane over HTTP: reset, clock, jobs, journal, token, bad input."""

from __future__ import annotations

import json

import pytest

from nanobanana_mock.engine.journal import redact
from tests.harness import KEYS, Mock
from tests.mockserver.test_faults import add_rule, submit


async def get(mock: Mock, path: str, **params: str) -> dict:
    resp = await mock.client.get(f"/_mock/{path}", params=params)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def post(mock: Mock, path: str, body: object, expect: int = 200) -> dict:
    resp = await mock.client.post(f"/_mock/{path}", json=body)
    assert resp.status == expect, await resp.text()
    return await resp.json()


async def test_clock_advance_to_and_speed(mock: Mock) -> None:
    assert await get(mock, "clock") == {"now": 0.0, "speed": 0.0}
    assert (await post(mock, "clock", {"advance": 12.5}))["now"] == 12.5
    assert (await post(mock, "clock", {"to": 20}))["now"] == 20.0
    await post(mock, "clock", {"to": 5}, expect=400)
    await post(mock, "clock", {"advance": -1}, expect=400)
    await post(mock, "clock", {}, expect=400)
    assert (await post(mock, "clock", {"speed": 0}))["speed"] == 0.0


@pytest.mark.parametrize(
    "body", [{"advance": 1, "to": 5}, {"advance": 1, "speed": 2}, {"to": 5, "speed": 0}]
)
async def test_clock_refuses_two_moves_in_one_body(mock: Mock, body: dict) -> None:
    """One move a request: the old code did the first and silently dropped the other."""
    answer = await post(mock, "clock", body, expect=400)
    assert all(name in answer["error"] for name in body), answer
    assert await get(mock, "clock") == {"now": 0.0, "speed": 0.0}  # nothing changed


async def test_jobs_can_be_listed_read_and_forced(mock: Mock) -> None:
    _, a = await submit(mock, "seaart")
    _, b = await submit(mock, "seaart")
    _, c = await submit(mock, "segmind")
    jobs = (await get(mock, "jobs", provider="seaart"))["jobs"]
    assert [j["id"] for j in jobs] == [a["request_id"], b["request_id"]]
    assert jobs[0]["wire_status"] == "IN_QUEUE" and jobs[0]["output"]["width"] == 1024
    forced = await post(
        mock,
        f"jobs/{a['request_id']}/state",
        {"state": "FAILED", "error": "boom", "error_type": "CONTENT_BLOCKED"},
    )
    assert (forced["state"], forced["wire_status"]) == ("FAILED", "COMPLETED")
    _, status = await mock.call(
        "seaart",
        "status",
        "GET",
        f"/model/v1/queue/nano_banana_pro/requests/{a['request_id']}/status",
        expect=200,
    )
    assert status["error_type"] == "CONTENT_BLOCKED"
    assert (await post(mock, f"jobs/{b['request_id']}/state", {"state": "SUCCEEDED"}))[
        "state"
    ] == "SUCCEEDED"
    await post(mock, f"jobs/{b['request_id']}/state", {"state": "CANCELLED"}, expect=409)
    await post(mock, f"jobs/{c['request_id']}/state", {"state": "EXPIRED"})
    await mock.call(
        "segmind", "status", "GET", f"/v2/requests/{c['request_id']}/status", expect=404
    )
    resp = await mock.client.get("/_mock/jobs/nope")
    assert resp.status == 404
    # an unknown state is a bad request whatever the job's state, and is named
    refused = await post(mock, f"jobs/{a['request_id']}/state", {"state": "DONE"}, expect=400)
    assert "'DONE'" in refused["error"] and "SUCCEEDED" in refused["error"]


async def test_forcing_a_running_job_frees_its_worker(mock_factory) -> None:
    mock = await mock_factory(workers=1)
    _, first = await submit(mock, "pixazo")
    _, second = await submit(mock, "pixazo")
    mock.advance(2)
    await post(mock, f"jobs/{first['request_id']}/state", {"state": "FAILED"})
    assert (await get(mock, f"jobs/{second['request_id']}"))["state"] == "RUNNING"


async def test_journal_records_every_request_with_keys_redacted(mock: Mock) -> None:
    _, sub = await submit(mock, "segmind")
    rid = sub["request_id"]
    for _ in range(4):
        await mock.call("segmind", "status", "GET", f"/v2/requests/{rid}/status", expect=200)
    await mock.call(
        "segmind", "submit", "POST", "/v2/nano-banana", json={"aspect_ratio": "9:9"}, expect=400
    )
    journal = await get(mock, "journal")
    assert journal["counts"] == {"segmind.status": 4, "segmind.submit": 2}
    first = journal["entries"][0]
    assert (
        first["key"] == redact(KEYS["segmind"]["x-api-key"])
        and first["request_id"] == rid
        and first["validation"] == "ok"
    )
    assert journal["entries"][-1]["validation"] == "invalid"
    assert "aspect_ratio" in journal["entries"][-1]["problems"][0]
    assert KEYS["segmind"]["x-api-key"] not in json.dumps(journal)
    polls = await get(mock, "journal", request_id=rid, operation="status")
    assert polls["count"] == 4 and {e["status"] for e in polls["entries"]} == {200}
    assert (await get(mock, "journal", key=KEYS["segmind"]["x-api-key"], status="400"))[
        "count"
    ] == 1
    assert (await get(mock, "journal", key="someone-else"))["count"] == 0
    assert (await get(mock, "journal", since=str(journal["total"] - 1)))["count"] == 1


async def test_journal_is_bounded(mock_factory) -> None:
    mock = await mock_factory(journal_size=3)
    for _ in range(5):
        await submit(mock, "pixazo")
    journal = await get(mock, "journal")
    assert (journal["count"], journal["total"], journal["dropped"]) == (3, 5, 2)
    assert [e["seq"] for e in journal["entries"]] == [3, 4, 5]


async def test_journal_filter_errors(mock: Mock) -> None:
    resp = await mock.client.get("/_mock/journal", params={"colour": "red"})
    assert resp.status == 400 and "colour" in (await resp.json())["error"]


async def test_reset_clears_everything_and_applies_settings(mock: Mock) -> None:
    await submit(mock, "segmind")
    await add_rule(
        mock, {"effect": {"http_error": {"status": 500}}, "scope": {"first": 1, "after": 5}}
    )
    await post(mock, "credits", {"default": 5})
    mock.advance(100)
    reply = await post(
        mock, "reset", {"settings": {"workers": 1, "retention_seconds": {"seaart": 10}}}
    )
    assert reply["settings"]["workers"] == 1 and reply["settings"]["retention_seconds"] == {
        "seaart": 10
    }
    assert await get(mock, "clock") == {"now": 0.0, "speed": 0.0}
    assert (await get(mock, "jobs"))["jobs"] == [] and (await get(mock, "faults"))["faults"] == []
    assert (await get(mock, "credits"))["enabled"] is False
    assert (await get(mock, "journal"))["total"] == 0
    await post(mock, "reset", {"settings": {"port": 1}}, expect=400)
    await post(mock, "reset", {"settings": {"workers": 0}}, expect=400)
    reply = await post(
        mock,
        "reset",
        {"scenario": {"faults": [{"effect": {"http_error": {"status": 418}}}]}},
        expect=400,
    )
    assert reply["problems"]


async def test_reset_with_a_scenario(mock: Mock) -> None:
    scenario = {
        "settings": {"queue_seconds": 0},
        "credits": {"default": 1},
        "faults": [{"id": "x", "effect": {"http_error": {"status": 502}}, "scope": {"first": 1}}],
    }
    await post(mock, "reset", {"scenario": scenario})
    await submit(mock, "segmind", expect=502)
    _, sub = await submit(mock, "segmind")
    assert (await get(mock, f"jobs/{sub['request_id']}"))["start_at"] == 0.0


@pytest.mark.parametrize("body", [b"{", b"[]", b""])
async def test_control_plane_rejects_bad_bodies(mock: Mock, body: bytes) -> None:
    resp = await mock.client.post(
        "/_mock/faults", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and "error" in await resp.json()


async def test_control_token(mock_factory) -> None:
    mock = await mock_factory(control_token="s3cret")
    resp = await mock.client.get("/_mock/clock")
    assert resp.status == 401
    resp = await mock.client.get("/_mock/clock", headers={"X-Mock-Token": "s3cret"})
    assert resp.status == 200
    await submit(mock, "segmind")  # provider routes do not need the token
    settings = await (
        await mock.client.get("/_mock/settings", headers={"X-Mock-Token": "s3cret"})
    ).json()
    assert settings["control_token"] is True and "s3cret" not in json.dumps(settings)


@pytest.mark.parametrize(
    "raw", [b'{"advance": Infinity}', b'{"advance": 1e400}', b'{"speed": NaN}']
)
async def test_the_clock_refuses_numbers_that_are_not_finite(mock: Mock, raw: bytes) -> None:
    resp = await mock.client.post(
        "/_mock/clock", data=raw, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400, await resp.text()
    assert await get(mock, "clock") == {"now": 0.0, "speed": 0.0}


async def test_a_refused_credits_request_changes_nothing(mock: Mock) -> None:
    await post(mock, "credits", {"default": 3, "key": "k-123456789", "balance": -1}, expect=400)
    await post(mock, "credits", {"default": 3, "key": ""}, expect=400)
    assert (await get(mock, "credits"))["default"] is None
