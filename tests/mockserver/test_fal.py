"""fal.ai over real HTTP: queue, logs, 202 result, cancel, the edit variants, fal.run, errors."""

from __future__ import annotations

import pytest

from nanobanana_mock.engine.jobs import Failure
from tests.harness import Mock, releasing

P = "fal"
Q = "/fal/queue/fal-ai"
RUN = "/fal/run/fal-ai"


async def submit(mock: Mock, app: str = "nano-banana", **body: object) -> dict:
    _, data = await mock.call(
        P,
        "submit_edit" if app.endswith("/edit") else "submit",
        "POST",
        f"{Q}/{app}",
        json={"prompt": "A banana", **body},
        expect=200,
    )
    return data


async def status(
    mock: Mock, rid: str, app: str = "nano-banana", expect: int = 200, logs: str | None = None
) -> dict:
    params = {} if logs is None else {"logs": logs}
    _, data = await mock.call(
        P, "status", "GET", f"{Q}/{app}/requests/{rid}/status", params=params, expect=expect
    )
    return data


async def result(mock: Mock, rid: str, app: str = "nano-banana", expect: int = 200) -> dict:
    resp, data = await mock.call(P, "result", "GET", f"{Q}/{app}/requests/{rid}", expect=expect)
    if expect == 200:
        assert resp.headers["x-fal-request-id"] == rid
    return data


async def cancel(mock: Mock, rid: str, app: str = "nano-banana", expect: int = 202) -> dict:
    _, data = await mock.call(P, "cancel", "PUT", f"{Q}/{app}/requests/{rid}/cancel", expect=expect)
    return data


async def test_submit_answers_absolute_urls_back_to_the_mock(mock: Mock) -> None:
    data = await submit(mock)
    rid = data["request_id"]
    base = f"{mock.base}{Q}/nano-banana/requests/{rid}"
    assert (data["response_url"], data["status_url"], data["cancel_url"]) == (
        base,
        f"{base}/status",
        f"{base}/cancel",
    )


async def test_status_queue_position_then_logs_on_request(mock_factory) -> None:
    mock = await mock_factory(workers=1)
    first, second = [(await submit(mock))["request_id"] for _ in range(2)]
    mock.advance(1)
    queued = await status(mock, second)
    assert (queued["status"], queued["queue_position"]) == ("IN_QUEUE", 0)
    running = await status(mock, first)
    assert running["status"] == "IN_PROGRESS" and running["logs"] is None
    for asked in ("1", "true"):
        logs = (await status(mock, first, logs=asked))["logs"]
        assert [line["message"] for line in logs] == ["Generating 1 image"]
    assert (await status(mock, first, logs="0"))["logs"] is None
    mock.advance(20)
    done = await status(mock, first, logs="1")
    assert done["status"] == "COMPLETED" and "error" not in done
    assert done["metrics"] == {"inference_time": 14.28}
    assert [line["message"] for line in done["logs"]] == ["Generating 1 image", "Done"]


async def test_result_is_202_until_done_then_images_and_description(mock: Mock) -> None:
    rid = (
        await submit(
            mock,
            "nano-banana-pro",
            aspect_ratio="16:9",
            resolution="2K",
            num_images=2,
            output_format="webp",
        )
    )["request_id"]
    assert (await result(mock, rid, "nano-banana-pro", expect=202))["status"] == "IN_QUEUE"
    mock.advance(1)
    assert (await result(mock, rid, "nano-banana-pro", expect=202))["status"] == "IN_PROGRESS"
    mock.advance(100)
    done = await result(mock, rid, "nano-banana-pro")
    assert isinstance(done["description"], str)
    assert len(done["images"]) == 2
    for image in done["images"]:
        assert (image["width"], image["height"]) == (2752, 1536)
        assert image["content_type"] == "image/webp" and image["file_name"].endswith(".webp")
        assert (await mock.image(image["url"])).size == (2752, 1536)


async def test_defaults_png_one_image(mock: Mock) -> None:
    rid = (await submit(mock, "nano-banana-2"))["request_id"]
    mock.advance(100)
    (image,) = (await result(mock, rid, "nano-banana-2"))["images"]
    assert (image["content_type"], image["width"], image["height"]) == ("image/png", 1024, 1024)


async def test_an_edit_is_read_at_its_apps_urls(mock: Mock) -> None:
    data = await submit(mock, "nano-banana-2/edit", image_urls=["https://a.example/in.png"])
    rid = data["request_id"]
    assert data["status_url"] == f"{mock.base}{Q}/nano-banana-2/requests/{rid}/status"
    mock.advance(100)
    assert len((await result(mock, rid, "nano-banana-2"))["images"]) == 1
    await status(mock, rid, "nano-banana-pro", expect=404)  # scoped to its app


@pytest.mark.parametrize(("operation", "path"), [("submit_edit", Q), ("run_edit", RUN)])
async def test_an_edit_needs_image_urls(mock: Mock, operation: str, path: str) -> None:
    _, data = await mock.call(
        P, operation, "POST", f"{path}/nano-banana/edit", json={"prompt": "x"}, expect=422
    )
    assert data["detail"][0]["loc"] == ["body", "image_urls"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x", "safety_tolerance": 4}, "safety_tolerance"),  # a string on fal
        ({"prompt": "x", "num_images": 5}, "num_images"),
        ({"prompt": "x", "output_format": "jpg"}, "output_format"),
        ({"prompt": "x", "resolution": "0.5K"}, "resolution"),  # nano-banana-2 only
        ({}, "prompt"),
    ],
)
async def test_invalid_bodies_are_422_detail_lists(mock: Mock, body: dict, field: str) -> None:
    _, data = await mock.call(P, "submit", "POST", f"{Q}/nano-banana-pro", json=body, expect=422)
    assert data["detail"][0]["loc"] == ["body", field]


async def test_cancel_then_already_completed_and_not_found(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]
    assert await cancel(mock, rid) == {"status": "CANCELLATION_REQUESTED"}
    done = await status(mock, rid)
    assert (done["status"], done["error_type"]) == ("COMPLETED", "CANCELED")
    assert (await result(mock, rid, expect=400))["detail"] == "Request was canceled by the user"
    assert await cancel(mock, rid, expect=400) == {"status": "ALREADY_COMPLETED"}
    assert await cancel(mock, "0b8e0c5a-0000-4000-8000-000000000000", expect=404) == {
        "status": "NOT_FOUND"
    }


async def test_a_failed_job_is_completed_with_error_and_its_result_422(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]
    job = mock.state.store.get(rid, 0.0)
    mock.state.store.fail(job, Failure("Image blocked by safety filter", "CONTENT_BLOCKED"), 0.0)
    mock.advance(100)
    done = await status(mock, rid)
    assert (done["error"], done["error_type"]) == (
        "Image blocked by safety filter",
        "CONTENT_BLOCKED",
    )
    assert (await result(mock, rid, expect=422)) == {"detail": "Image blocked by safety filter"}


async def test_fal_run_blocks_on_the_virtual_clock(mock: Mock) -> None:
    async with releasing(mock, 5.0):
        resp, data = await mock.call(
            P,
            "run",
            "POST",
            f"{RUN}/nano-banana-pro",
            json={"prompt": "x", "aspect_ratio": "9:16"},
            expect=200,
        )
    (image,) = data["images"]
    assert (image["width"], image["height"]) == (768, 1376)
    assert resp.headers["x-fal-request-id"]
    assert mock.state.clock.now() >= 59.09
    async with releasing(mock, 5.0):
        await mock.call(
            P,
            "run_edit",
            "POST",
            f"{RUN}/nano-banana/edit",
            json={"prompt": "x", "image_urls": ["https://a.example/in.png"]},
            expect=200,
        )


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authentication is required to access this application."),
        ({"Authorization": "Bearer x"}, "Authentication is required to access this application."),
    ],
)
async def test_auth_errors_are_401_detail(mock: Mock, headers: dict, detail: str) -> None:
    _, data = await mock.call(
        P,
        "submit",
        "POST",
        f"{Q}/nano-banana",
        auth=False,
        headers=headers,
        json={"prompt": "x"},
        expect=401,
    )
    assert data == {"detail": detail}


async def test_a_rejected_key_and_an_unknown_app(mock_factory) -> None:
    mock = await mock_factory(api_keys=["fal-id:fal-secret"])
    _, data = await mock.call(
        P,
        "submit",
        "POST",
        f"{Q}/nano-banana",
        auth=False,
        headers={"Authorization": "Key other"},
        json={"prompt": "x"},
        expect=401,
    )
    assert data == {"detail": "No user found for Key ID and Secret"}
    _, data = await mock.call(P, "submit", "POST", f"{Q}/flux", json={"prompt": "x"}, expect=404)
    assert data == {"detail": "Application 'fal-ai/flux' not found"}


async def test_prices_are_charged_per_image_and_tier(mock: Mock) -> None:
    for app, body, cost in [
        ("nano-banana-pro", {"resolution": "4K"}, 0.30),
        ("nano-banana-2", {"resolution": "0.5K", "num_images": 2}, 0.12),
        ("nano-banana", {}, 0.039),
    ]:
        rid = (await submit(mock, app, **body))["request_id"]
        assert mock.state.store.get(rid, 0.0).cost == pytest.approx(cost)


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("POST", "/fal/queue/other-owner/nano-banana", 404),
        ("GET", f"{Q}/nano-banana", 405),
        ("POST", f"{Q}/nano-banana/requests/x/status", 405),
        ("GET", f"{Q}/nano-banana/requests/{'9' * 300}/status", 404),
        ("POST", f"{RUN}/nano-banana/other", 404),
    ],
)
async def test_stray_requests_get_fals_envelope(
    mock: Mock, method: str, path: str, code: int
) -> None:
    resp = await mock.client.request(method, path, headers={"Authorization": "Key k"}, json={})
    assert resp.status == code
    body = await resp.json()
    assert isinstance(body["detail"], str)
