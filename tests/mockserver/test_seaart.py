"""SeaArt over real HTTP: queue, status, 202 result, cancel, webhooks, scoping, errors."""

from __future__ import annotations

import pytest

from nanobanana_mock.engine.jobs import Failure
from tests.harness import Mock

P = "seaart"
Q = "/model/v1/queue"


async def submit(mock: Mock, endpoint: str = "nano_banana_pro", **body: object) -> dict:
    _, data = await mock.call(
        P, "submit", "POST", f"{Q}/{endpoint}", json={"prompt": "A red apple", **body}, expect=200
    )
    return data


async def status(
    mock: Mock, rid: str, endpoint: str = "nano_banana_pro", expect: int = 200
) -> dict:
    _, data = await mock.call(
        P, "status", "GET", f"{Q}/{endpoint}/requests/{rid}/status", expect=expect
    )
    return data


async def result(
    mock: Mock, rid: str, endpoint: str = "nano_banana_pro", expect: int = 200
) -> dict:
    _, data = await mock.call(
        P, "result", "GET", f"{Q}/{endpoint}/requests/{rid}/response", expect=expect
    )
    return data


async def cancel(
    mock: Mock, rid: str, endpoint: str = "nano_banana_pro", expect: int = 202
) -> dict:
    _, data = await mock.call(
        P, "cancel", "PUT", f"{Q}/{endpoint}/requests/{rid}/cancel", expect=expect
    )
    return data


@pytest.mark.parametrize("scheme", ["Key", "Bearer"])
async def test_submit_with_either_scheme(mock: Mock, scheme: str) -> None:
    _resp, data = await mock.call(
        P,
        "submit",
        "POST",
        f"{Q}/nano_banana_2",
        auth=False,
        headers={"Authorization": f"{scheme} sk-1"},
        json={"prompt": "x"},
        expect=200,
    )
    rid = data["request_id"]
    assert rid.startswith("mmsu_")
    base = f"{mock.base}{Q}/nano_banana_2/requests/{rid}"
    assert (data["status_url"], data["response_url"], data["cancel_url"]) == (
        f"{base}/status",
        f"{base}/response",
        f"{base}/cancel",
    )
    assert data["queue_position"] == 0


async def test_queue_positions_are_true(mock: Mock) -> None:  # two workers
    ids = [(await submit(mock))["request_id"] for _ in range(5)]
    mock.advance(1.0)
    states = [await status(mock, rid) for rid in ids]
    assert [s["status"] for s in states] == ["IN_PROGRESS"] * 2 + ["IN_QUEUE"] * 3
    assert [s["queue_position"] for s in states[2:]] == [0, 1, 2]
    mock.advance(59.09)  # the first two finish, the next two start
    states = [await status(mock, rid) for rid in ids]
    assert [s["status"] for s in states] == ["COMPLETED"] * 2 + ["IN_PROGRESS"] * 2 + ["IN_QUEUE"]
    assert states[4]["queue_position"] == 0
    assert states[0]["metrics"] == {"inference_time": 59.09}


async def test_result_is_202_until_terminal_then_outputs(mock: Mock) -> None:
    rid = (await submit(mock, "nano_banana_2", aspect_ratio="4:1", resolution="2K"))["request_id"]
    pending = await result(mock, rid, "nano_banana_2", expect=202)
    assert pending["status"] == "IN_QUEUE"
    mock.advance(2)
    assert (await result(mock, rid, "nano_banana_2", expect=202))["status"] == "IN_PROGRESS"
    mock.advance(60)
    done = await result(mock, rid, "nano_banana_2")
    (output,) = done["outputs"]
    assert (output["width"], output["height"]) == (4128, 1024)
    assert done["metadata"] == {"prompt": "A red apple"}
    assert (await mock.image(output["url"])).size == (4128, 1024)


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"image_size": "4K", "aspect_ratio": "16:9"}, (5504, 3072)),
        ({"resolution": "2K", "aspect_ratio": "2:3"}, (1696, 2528)),
        ({"image_size": "1K", "resolution": "4K"}, (1024, 1024)),  # image_size wins
        ({}, (1024, 1024)),
    ],
)
async def test_pro_sizes(mock: Mock, body: dict, size: tuple[int, int]) -> None:
    rid = (await submit(mock, **body))["request_id"]
    mock.advance(100)
    (output,) = (await result(mock, rid))["outputs"]
    assert (output["width"], output["height"]) == size
    assert output["content_type"] == "image/png"


async def test_cancel_queued_then_already_completed(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]
    assert await cancel(mock, rid) == {"status": "CANCELLATION_REQUESTED"}
    done = await status(mock, rid)
    assert done["status"] == "COMPLETED" and done["error_type"] == "CANCELED"
    assert (await result(mock, rid))["error_type"] == "CANCELED"
    assert await cancel(mock, rid, expect=400) == {"status": "ALREADY_COMPLETED"}


async def test_cancel_frees_the_worker(mock_factory) -> None:
    mock = await mock_factory(workers=1)
    first, second = [(await submit(mock))["request_id"] for _ in range(2)]
    mock.advance(5)
    assert (await status(mock, first))["status"] == "IN_PROGRESS"
    assert (await status(mock, second))["queue_position"] == 0
    await cancel(mock, first)
    assert (await status(mock, second))["status"] == "IN_PROGRESS"
    mock.advance(59.08)
    assert (await status(mock, second))["status"] == "IN_PROGRESS"
    mock.advance(0.02)
    assert "error" not in await status(mock, second)


async def test_cancel_completed_unknown_and_wrong_endpoint(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]
    mock.advance(100)
    await cancel(mock, rid, expect=400)
    assert await cancel(mock, "mmsu_nope", expect=404) == {"status": "NOT_FOUND"}
    await cancel(mock, rid, "nano_banana_2", expect=404)


async def test_failure_is_completed_with_error_type(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]
    job = mock.state.store.get(rid, 0.0)
    mock.state.store.fail(job, Failure("Image blocked by safety filter", "CONTENT_BLOCKED"), 0.0)
    mock.advance(100)
    for body in (await status(mock, rid), await result(mock, rid)):
        assert body["status"] == "COMPLETED"
        assert (body["error"], body["error_type"]) == (
            "Image blocked by safety filter",
            "CONTENT_BLOCKED",
        )


async def test_ids_are_scoped_to_endpoint_and_key(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]
    assert await status(mock, rid, "nano_banana_2", expect=404) == {"detail": "Request not found"}
    await mock.call(
        P,
        "status",
        "GET",
        f"{Q}/nano_banana_pro/requests/{rid}/status",
        auth=False,
        headers={"Authorization": "Key other"},
        expect=404,
    )


@pytest.mark.parametrize(
    "how",
    [
        {"json": {"prompt": "x", "webhook_url": "https://example.com/hook"}},
        {"json": {"prompt": "x"}, "params": {"fal_webhook": "https://example.com/hook"}},
        {"json": {"prompt": "x"}, "headers": {"X-Webhook-URL": "https://example.com/hook"}},
    ],
)
async def test_webhooks_are_rejected(mock: Mock, how: dict) -> None:
    _, data = await mock.call(P, "submit", "POST", f"{Q}/nano_banana_pro", expect=400, **how)
    assert data == {"detail": "webhook not supported"}


@pytest.mark.parametrize(
    ("endpoint", "body", "loc", "rule"),
    [
        (
            "nano_banana_2",
            {"prompt": "x", "image_urls": ["https://a.io/x.png"] * 4},
            ["body", "image_urls"],
            "maxItems",
        ),
        ("nano_banana_pro", {"prompt": "x" * 2501}, ["body", "prompt"], "maxLength"),
        ("nano_banana_pro", {}, ["body", "prompt"], "required"),
        (
            "nano_banana_pro",
            {"prompt": "x", "aspect_ratio": "1:8"},
            ["body", "aspect_ratio"],
            "enum",
        ),
        (
            "nano_banana_2",
            {"prompt": "x", "response_modalities": ["Sound"]},
            ["body", "response_modalities", 0],
            "enum",
        ),
    ],
)
async def test_validation_is_422_fastapi_style(
    mock: Mock, endpoint: str, body: dict, loc: list, rule: str
) -> None:
    _, data = await mock.call(P, "submit", "POST", f"{Q}/{endpoint}", json=body, expect=422)
    assert [(d["loc"], d["type"]) for d in data["detail"]] == [(loc, rule)]


async def test_unknown_app_sync_and_stream(mock: Mock) -> None:
    _, data = await mock.call(
        P, "submit", "POST", f"{Q}/nano_banana", json={"prompt": "x"}, expect=404
    )
    assert data == {"detail": "App not found: nano_banana"}
    _, data = await mock.call(
        P, "sync", "POST", f"{Q}/nano_banana_pro/sync", json={"prompt": "x"}, expect=404
    )
    assert data == {"detail": "Not Found"}
    rid = (await submit(mock))["request_id"]
    _, data = await mock.call(
        P, "stream", "GET", f"{Q}/nano_banana_pro/requests/{rid}/status/stream", expect=400
    )
    assert data == {"detail": "SSE streaming not supported"}


@pytest.mark.parametrize(
    "header",
    [{}, {"Authorization": "sk-1"}, {"Authorization": "Basic sk-1"}, {"Authorization": "Bearer "}],
)
async def test_missing_auth_is_gateway_401(mock: Mock, header: dict) -> None:
    _, data = await mock.call(
        P,
        "submit",
        "POST",
        f"{Q}/nano_banana_pro",
        auth=False,
        headers=header,
        json={"prompt": "x"},
        expect=401,
    )
    assert data["error"] == {
        "code": "UNAUTHORIZED",
        "message": "Authorization Bearer or Key token is required",
    }


async def test_bad_json_and_method(mock: Mock) -> None:
    _, data = await mock.call(
        P,
        "submit",
        "POST",
        f"{Q}/nano_banana_pro",
        data=b"{",
        headers={"Content-Type": "application/json"},
        expect=422,
    )
    assert data["detail"][0]["type"] == "json_invalid"
    resp = await mock.client.delete(f"{Q}/nano_banana_pro/requests/x/cancel")
    assert resp.status == 405 and await resp.json() == {"detail": "Method Not Allowed"}


async def test_wrong_methods_say_what_is_allowed(mock: Mock) -> None:
    resp = await mock.client.request("TRACE", f"{Q}/nano_banana_pro")
    assert resp.status == 405 and resp.headers["Allow"] == "POST"
