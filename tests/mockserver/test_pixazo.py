"""Pixazo over real HTTP: submit, the POST result route, images, errors, expiry."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.engine.jobs import Failure
from nanobanana_mock.providers import pixazo
from tests.conftest import MockFactory
from tests.harness import Mock

P = "pixazo"
BASE = "/nano-banana-pro-770/v1"
EXAMPLES = Path(schemas.__file__).resolve().parent / "pixazo" / "examples"
URLS = [
    "https://storage.googleapis.com/falserverless/example_inputs/nano-banana-edit-input.png",
    "https://storage.googleapis.com/falserverless/example_inputs/nano-banana-edit-input-2.png",
]


async def add_rule(mock: Mock, rule: dict) -> str:
    resp = await mock.client.post("/_mock/faults", json=rule)
    body = await resp.json()
    assert resp.status == 201, body
    return body["id"]


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
    assert third["estimated_remaining_seconds"] == 120  # 1 + 59.09 * 2, in whole seconds up
    mock.advance(1)
    first = await poll(mock, ids[0])
    assert (first["status"], first["queue_position"]) == ("IN_PROGRESS", 0)
    assert first["estimated_remaining_seconds"] == 60  # 59.09
    assert (await poll(mock, ids[2]))["queue_position"] == 0
    mock.advance(60)
    done = await poll(mock, ids[0])
    assert done["status"] == "COMPLETED"
    assert done["metadata"] == {"processing_time_seconds": 59.1, "input_image_count": 2}
    (image,) = done["images"]
    assert (image["width"], image["height"], image["content_type"]) == (1024, 1024, "image/png")
    assert (await mock.image(image["url"])).size == (1024, 1024)


async def test_remaining_seconds_are_an_integer_as_the_model_page_shows(
    mock_factory: MockFactory,
) -> None:
    """The model page shows ``"estimated_remaining_seconds": 8``: written as an integer on the wire,
    never ``31.0`` (which JSON Schema would count as an integer, and a client parse as a
    float), rounded up while the job runs."""
    mock = await mock_factory(processing_seconds={"pixazo/*": 30.0})
    rid = await submit(mock)
    for advance, status, remaining in (
        (0, "IN_QUEUE", 31),
        (0.5, "IN_QUEUE", 31),  # 30.5 left
        (0.75, "IN_PROGRESS", 30),  # 29.75 left
        (29.5, "IN_PROGRESS", 1),  # 0.25 left
    ):
        mock.advance(advance)
        resp, _ = await mock.call(
            P,
            "result",
            "POST",
            f"{BASE}/nano-banana-pro-request-result",
            json={"request_id": rid},
            expect=200,
        )
        raw = json.loads(await resp.text())
        assert raw["status"] == status
        assert raw["estimated_remaining_seconds"] == remaining
        assert type(raw["estimated_remaining_seconds"]) is int, raw


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
        ({"prompt": "x", "image_urls": ["http://insecure.example/a.png"]}, "image_urls[0]:"),
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


PAGE_ERRORS = {  # the model page's status table, as the stored examples hold it
    wrapper["http_status"]: wrapper["instance"]
    for wrapper in (
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(EXAMPLES.glob("error.*.seed004.json"))
        if path.name != "error.example.seed004.json"  # the page's second 400 example
    )
}
RATE_LIMITED = {"error": "Rate limit exceeded, please retry later"}


def test_the_model_pages_table_is_all_there() -> None:
    assert sorted(PAGE_ERRORS) == [400, 401, 403, 404, 429, 500]
    assert PAGE_ERRORS[429] == RATE_LIMITED


@pytest.mark.parametrize("status", sorted(PAGE_ERRORS))
async def test_an_injected_error_is_the_model_pages_body(mock: Mock, status: int) -> None:
    await add_rule(
        mock, {"match": {"operation": "submit"}, "effect": {"http_error": {"status": status}}}
    )
    _, data = await mock.call(
        P,
        "submit",
        "POST",
        f"{BASE}/nano-banana-pro-request",
        json={"prompt": "x", "image_urls": URLS},
        expect=status,
    )
    assert data == PAGE_ERRORS[status]


async def test_every_429_is_the_model_pages_body(mock: Mock) -> None:
    """However the mock comes to answer 429 (a rule on any route, a prompt marker, the rate
    limiter, an image download), the body is the model page's, not Azure APIM's {statusCode}."""
    rid = await submit(mock)
    mock.advance(100)
    image = (await poll(mock, rid))["images"][0]["url"][len(mock.base) :]
    answers = []
    resp, data = await mock.call(
        P,
        "submit",
        "POST",
        f"{BASE}/nano-banana-pro-request",
        json={"prompt": "x [mock:status=429]", "image_urls": URLS},
    )
    answers.append((resp, data))
    for operation in ("result", "image"):
        rule = {"match": {"operation": operation}, "effect": {"http_error": {"status": 429}}}
        await add_rule(mock, {**rule, "scope": {"first": 1}})
        if operation == "result":
            answers.append(
                await mock.call(
                    P,
                    "result",
                    "POST",
                    f"{BASE}/nano-banana-pro-request-result",
                    json={"request_id": rid},
                )
            )
        else:
            resp = await mock.client.get(image)
            answers.append((resp, await resp.json()))
    assert (await mock.client.post("/_mock/rate-limits", json={"rpm": 1})).status < 300
    await submit(mock)
    answers.append(
        await mock.call(
            P,
            "submit",
            "POST",
            f"{BASE}/nano-banana-pro-request",
            json={"prompt": "x", "image_urls": URLS},
        )
    )
    assert len(answers) == 4
    for resp, data in answers:
        assert (resp.status, data) == (429, RATE_LIMITED)
        assert int(resp.headers["Retry-After"]) >= 1  # the mock's [INF]: the page shows none


async def test_the_self_check_refuses_an_integer_written_as_a_float(
    mock: Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON Schema counts 31.0 as an integer; the mock's self-check does not, so an answer
    that writes one where the contract says integer is a contract violation."""
    rid = await submit(mock)
    monkeypatch.setattr(pixazo, "math", SimpleNamespace(ceil=lambda x: float(math.ceil(x))))
    resp = await mock.client.post(
        f"{BASE}/nano-banana-pro-request-result",
        json={"request_id": rid},
        headers={"Ocp-Apim-Subscription-Key": "pz-test"},
    )
    assert resp.status == 500
    assert mock.state.violations == ["pixazo.result 200"]
    mock.state.violations.clear()  # seen: the fixture checks there are no others
