"""Pixazo over real HTTP: submit, the POST result route, images, errors, expiry."""

from __future__ import annotations

import pytest

from nanobanana_mock.jobs import Failure
from tests.harness import Mock

P = "pixazo"
BASE = "/nano-banana-pro-770/v1"
URLS = [
    "https://storage.googleapis.com/falserverless/example_inputs/nano-banana-edit-input.png",
    "https://storage.googleapis.com/falserverless/example_inputs/nano-banana-edit-input-2.png",
]


async def submit(mock: Mock, **body: object) -> str:
    _, data = await mock.call(
        P,
        "submit",
        "POST",
        f"{BASE}/nano-banana-pro-request",
        json={"prompt": "a car on the coast", "image_urls": URLS, **body},
        expect=200,
    )
    assert data["status"] == "IN_QUEUE"
    return data["request_id"]


async def poll(mock: Mock, rid: str, expect: int = 200) -> dict:
    _, data = await mock.call(
        P,
        "result",
        "POST",
        f"{BASE}/nano-banana-pro-request-result",
        json={"request_id": rid},
        expect=expect,
    )
    return data


async def test_states_with_queue_position_and_remaining_time(mock: Mock) -> None:
    ids = [await submit(mock) for _ in range(3)]  # two workers
    third = await poll(mock, ids[2])
    assert third["status"] == "IN_QUEUE"
    assert third["queue_position"] == 2  # the first two have not been picked up yet either
    assert third["estimated_remaining_seconds"] == pytest.approx(1 + 59.09 * 2, abs=0.1)
    mock.advance(1)
    first = await poll(mock, ids[0])
    assert (first["status"], first["queue_position"]) == ("IN_PROGRESS", 0)
    assert first["estimated_remaining_seconds"] == pytest.approx(59.1, abs=0.1)
    assert (await poll(mock, ids[2]))["queue_position"] == 0
    mock.advance(60)
    done = await poll(mock, ids[0])
    assert done["status"] == "COMPLETED"
    assert done["metadata"] == {"processing_time_seconds": 59.1, "input_image_count": 2}
    (image,) = done["images"]
    assert (image["width"], image["height"], image["content_type"]) == (1024, 1024, "image/png")
    assert (await mock.image(image["url"])).size == (1024, 1024)


async def test_optional_fields_shape_the_output(mock: Mock) -> None:
    rid = await submit(
        mock, aspect_ratio="16:9", resolution="2K", output_format="webp", num_images=2
    )
    mock.advance(100)
    images = (await poll(mock, rid))["images"]
    assert len(images) == 2 and images[0]["url"] != images[1]["url"]
    for image in images:
        assert (image["width"], image["height"], image["content_type"]) == (
            2752,
            1536,
            "image/webp",
        )
        assert (await mock.image(image["url"])).size == (2752, 1536)


async def test_failed_job(mock: Mock) -> None:
    rid = await submit(mock)
    mock.state.store.fail(mock.state.store.get(rid, 0.0), Failure("Invalid image URL"), 0.0)
    mock.advance(100)
    assert await poll(mock, rid) == {
        "status": "FAILED",
        "request_id": rid,
        "error": "Invalid image URL",
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt": "x"}, "image_urls: field required"),
        ({"prompt": "x", "image_urls": []}, "image_urls: at least 1 items"),
        ({"prompt": "x", "image_urls": ["http://insecure.example/a.png"]}, "image_urls.0:"),
        ({"prompt": "x", "image_urls": URLS * 8}, "image_urls: at most 14 items"),
        ({"image_urls": URLS}, "prompt: field required"),
    ],
)
async def test_invalid_body_is_400(mock: Mock, body: dict, fragment: str) -> None:
    _, data = await mock.call(
        P, "submit", "POST", f"{BASE}/nano-banana-pro-request", json=body, expect=400
    )
    assert data["error"].startswith("Invalid request parameters: ") and fragment in data["error"]


async def test_result_errors(mock: Mock) -> None:
    assert await poll(mock, "a1b2c3d4-e5f6-7890-g1h2-i3j4k5l6m7n8", expect=404) == {
        "error": "Request a1b2c3d4-e5f6-7890-g1h2-i3j4k5l6m7n8 not found"
    }
    _, data = await mock.call(
        P, "result", "POST", f"{BASE}/nano-banana-pro-request-result", json={}, expect=400
    )
    assert "request_id: field required" in data["error"]


async def test_auth_and_stray_routes(mock: Mock) -> None:
    _, data = await mock.call(
        P,
        "submit",
        "POST",
        f"{BASE}/nano-banana-pro-request",
        auth=False,
        json={"prompt": "x", "image_urls": URLS},
        expect=401,
    )
    assert data == {"error": "Invalid or missing authentication"}
    for method, path in (("GET", f"{BASE}/nano-banana-pro-request"), ("POST", f"{BASE}/other")):
        resp = await mock.client.request(method, path)
        assert resp.status == 404 and await resp.json() == {"error": "Endpoint not found"}


async def test_retention_is_a_setting(mock_factory) -> None:
    mock = await mock_factory(retention_seconds={"pixazo": 300})
    rid = await submit(mock)
    mock.advance(299)
    assert (await poll(mock, rid))["status"] == "COMPLETED"
    mock.advance(1)
    await poll(mock, rid, expect=404)
