"""Segmind over real HTTP: v2 queue, status, result, v1 poll and sync, errors, expiry."""

from __future__ import annotations

import asyncio

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.engine.jobs import Failure, Surface
from tests.harness import KEYS, Mock, validate

P = "segmind"


async def submit(mock: Mock, model: str = "nano-banana", **body: object) -> dict:
    _, data = await mock.call(
        P, "submit", "POST", f"/v2/{model}", json={"prompt": "Dancing Banana", **body}, expect=200
    )
    return data


async def status(mock: Mock, request_id: str, expect: int = 200) -> dict:
    _, data = await mock.call(
        P, "status", "GET", f"/v2/requests/{request_id}/status", expect=expect
    )
    return data


async def test_submit_returns_urls_on_the_mock_origin(mock: Mock) -> None:
    data = await submit(mock)
    assert data["status"] == "QUEUED"
    rid = data["request_id"]
    assert data["status_url"] == f"{mock.base}/v2/requests/{rid}/status"
    assert data["response_url"] == f"{mock.base}/v2/requests/{rid}"
    assert data["poll_url"] == f"{mock.base}/v1/requests/{rid}"


async def test_lifecycle_follows_the_virtual_clock(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]  # typical 14.28 s, queue 1 s, no jitter
    assert (await status(mock, rid))["status"] == "QUEUED"
    mock.advance(1.0)
    running = await status(mock, rid)
    assert running["status"] == "PROCESSING"
    assert running["metrics"] == {}
    _, pending = await mock.call(P, "result", "GET", f"/v2/requests/{rid}", expect=200)
    assert pending["status"] == "PROCESSING"
    mock.advance(14.0)
    assert (await status(mock, rid))["status"] == "PROCESSING"
    mock.advance(0.3)
    done = await status(mock, rid)
    assert done == {"status": "COMPLETED", "request_id": rid, "metrics": {"inference_time": 14.28}}
    _, legacy = await mock.call(P, "poll", "GET", f"/v1/requests/{rid}", expect=200)
    assert legacy["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("model", "body", "size", "mime"),
    [
        ("nano-banana", {}, (1024, 1024), "image/png"),
        ("nano-banana", {"aspect_ratio": "21:9"}, (1584, 672), "image/png"),
        ("nano-banana-2", {}, (1024, 1024), "image/jpeg"),
        (
            "nano-banana-2",
            {"aspect_ratio": "1:8", "output_resolution": "512px", "output_format": "png"},
            (176, 1464),
            "image/png",
        ),
        ("nano-banana-pro", {"output_resolution": "1K"}, (1376, 768), "image/jpeg"),
        (
            "nano-banana-pro",
            {"aspect_ratio": "3:4", "output_resolution": "2K"},
            (1792, 2400),
            "image/jpeg",
        ),
    ],
)
async def test_result_images_have_the_documented_size(
    mock: Mock, model: str, body: dict, size: tuple[int, int], mime: str
) -> None:
    rid = (await submit(mock, model, **body))["request_id"]
    mock.advance(120)
    _, result = await mock.call(P, "result", "GET", f"/v2/requests/{rid}", expect=200)
    assert result["status"] == "COMPLETED" and result["error"] is None
    (image,) = result["images"]
    assert image["url"] == result["output"]
    assert image["content_type"] == mime
    picture = await mock.image(result["output"])
    assert picture.size == size
    resp = await mock.client.get(result["output"][len(mock.base) :])
    assert image["file_size"] == len(await resp.read())
    assert result["metrics"]["cost"] > 0


async def test_pro_defaults_to_4k_16_9(mock: Mock) -> None:
    rid = (await submit(mock, "nano-banana-pro"))["request_id"]
    mock.advance(120)
    _, result = await mock.call(P, "result", "GET", f"/v2/requests/{rid}", expect=200)
    assert (await mock.image(result["output"])).size == (5504, 3072)


async def test_failed_job_is_422_on_status_and_result(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]
    job = mock.state.store.get(rid, mock.state.clock.now())
    assert mock.state.store.fail(job, Failure("Prompt is Mandatory", surface=Surface.START), 0.0)
    mock.advance(0.5)
    assert (await status(mock, rid))["status"] == "QUEUED"
    mock.advance(0.5)
    failed = await status(mock, rid, expect=422)
    assert failed["status"] == "FAILED" and failed["error"] == "Prompt is Mandatory"
    _, body = await mock.call(P, "result", "GET", f"/v2/requests/{rid}", expect=422)
    assert body["error"] == "Prompt is Mandatory"
    mock.advance(100)  # terminal stays terminal
    assert (await status(mock, rid, expect=422))["status"] == "FAILED"


async def test_results_expire_one_hour_after_submission(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]
    mock.advance(60)
    _, result = await mock.call(P, "result", "GET", f"/v2/requests/{rid}", expect=200)
    mock.advance(3600 - 60 - 0.001)
    await status(mock, rid)
    mock.advance(0.001)
    gone = await status(mock, rid, expect=404)
    assert gone == {"error": f"Request {rid} not found"}
    await mock.call(P, "result", "GET", f"/v2/requests/{rid}", expect=404)
    await mock.call(P, "poll", "GET", f"/v1/requests/{rid}", expect=404)
    resp = await mock.client.get(result["output"][len(mock.base) :])
    assert resp.status == 404


async def test_sync_call_answers_image_bytes_when_generation_ends(mock: Mock) -> None:
    call = asyncio.ensure_future(
        mock.call(
            P,
            "sync_generate",
            "POST",
            "/v1/nano-banana-2",
            json={"prompt": "a sign", "seed": 99, "output_format": "png"},
            expect=200,
        )
    )
    await mock.state.clock.wait_for_sleepers(1)
    assert not call.done()
    mock.advance(40)
    resp, data = await asyncio.wait_for(call, 30)
    headers = {k.lower(): v for k, v in resp.headers.items()}
    validate(P, "sync_headers", headers)
    assert headers["content-type"] == "image/png"
    assert headers["x-seed-value"] == "99"
    assert float(headers["x-cost"]) == pytest.approx(0.075)
    assert float(headers["x-remaining-credits"]) == pytest.approx(1000 - 0.075)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


async def test_sync_failure_is_a_500_with_the_error(mock: Mock) -> None:
    call = asyncio.ensure_future(
        mock.call(P, "sync_generate", "POST", "/v1/nano-banana", json={"prompt": "x"})
    )
    await mock.state.clock.wait_for_sleepers(1)
    (job,) = mock.state.store.jobs()
    mock.state.store.fail(job, Failure("Model error"), 0.0)
    mock.advance(60)
    resp, body = await asyncio.wait_for(call, 30)
    assert resp.status == 500 and body == {"error": "Model error"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing Authorization or x-api-key in header"),
        (
            {"Authorization": "Bearer SG_0123456789abcdef"},
            "Missing Authorization or x-api-key in header",
        ),
        ({"x-api-key": "   "}, "Missing Authorization or x-api-key in header"),
    ],
)
async def test_missing_key_is_401(mock: Mock, headers: dict, message: str) -> None:
    _, body = await mock.call(
        P,
        "submit",
        "POST",
        "/v2/nano-banana",
        auth=False,
        headers=headers,
        json={"prompt": "x"},
        expect=401,
    )
    assert body == {"error": message}


async def test_only_configured_keys_are_accepted(mock_factory) -> None:
    mock = await mock_factory(api_keys=frozenset({"SG_0123456789abcdef"}))
    await submit(mock)
    _, body = await mock.call(
        P,
        "submit",
        "POST",
        "/v2/nano-banana",
        auth=False,
        headers={"x-api-key": "SG_ffffffffffffffff"},
        json={"prompt": "x"},
        expect=401,
    )
    assert body["error"].startswith("Unauthorized. API key is invalid")


async def test_ids_are_private_to_their_key(mock: Mock) -> None:
    rid = (await submit(mock))["request_id"]
    await mock.call(
        P,
        "status",
        "GET",
        f"/v2/requests/{rid}/status",
        auth=False,
        headers={"x-api-key": "another"},
        expect=404,
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt": "x", "aspect_ratio": "7:3"}, "aspect_ratio: '7:3' is not one of"),
        ({"aspect_ratio": "1:1"}, "prompt: field required"),
        ({"prompt": 5}, "prompt: must be of type string"),
        ({"prompt": "x", "image_urls": ["ftp://x/y.png"]}, "image_urls[0]:"),
        (
            {"prompt": "x", "image_urls": ["https://x.io/a.png"] * 15},
            "image_urls: at most 14 items",
        ),
        ({"prompt": ""}, "prompt: at least 1 characters"),
    ],
)
async def test_invalid_body_is_400_naming_field_and_rule(
    mock: Mock, body: dict, fragment: str
) -> None:
    _, data = await mock.call(P, "submit", "POST", "/v2/nano-banana", json=body, expect=400)
    assert data["error"].startswith("Invalid parameters: ")
    assert fragment in data["error"]


async def test_nano_banana_2_rules_come_from_its_schema(mock: Mock) -> None:
    bad = {"prompt": "x", "safety_tolerance": 9, "thinking_level": "deep"}
    _, data = await mock.call(P, "submit", "POST", "/v2/nano-banana-2", json=bad, expect=400)
    assert "safety_tolerance: must be <= 6" in data["error"]
    assert "thinking_level:" in data["error"]


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        (
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "malformed JSON",
        ),
        ({"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}, 400, "UTF-8"),
        ({"data": b"", "headers": {"Content-Type": "application/json"}}, 400, "empty"),
        (
            {"data": b"prompt=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            406,
            "Invalid content type",
        ),
        ({"data": b'{"prompt":"x"}'}, 406, "Invalid content type"),
        ({"json": ["prompt"]}, 400, "must be of type object"),
        ({"data": b"[" * 100_000, "headers": {"Content-Type": "application/json"}}, 400, "JSON"),
        ({"data": b'{"prompt": NaN}', "headers": {"Content-Type": "application/json"}}, 400, "NaN"),
    ],
)
async def test_unreadable_bodies_get_clear_4xx(
    mock: Mock, kwargs: dict, status: int, fragment: str
) -> None:
    _, data = await mock.call(P, "submit", "POST", "/v2/nano-banana", expect=status, **kwargs)
    assert fragment in data["error"]


async def test_oversized_body_is_413(mock_factory) -> None:
    mock = await mock_factory(max_body_bytes=1024)
    _, data = await mock.call(
        P, "submit", "POST", "/v2/nano-banana", json={"prompt": "x" * 2000}, expect=413
    )
    assert "1024" in data["error"]


async def test_unknown_model_id_path_and_method(mock: Mock) -> None:
    _, data = await mock.call(
        P, "submit", "POST", "/v2/no-such-model", json={"prompt": "x"}, expect=404
    )
    assert data == {"error": "Model not found: no-such-model"}
    await mock.call(
        P, "status", "GET", "/v2/requests/00000000-0000-4000-8000-000000000000/status", expect=404
    )
    resp = await mock.client.put("/v2/requests/abc/status", headers=KEYS[P])
    assert resp.status == 405 and resp.content_type == "text/html"
    resp = await mock.client.get("/v2/requests/a/b/c", headers=KEYS[P])
    assert resp.status == 404
    validate(P, "error", await resp.json())


async def test_unknown_fields_are_accepted_with_a_warning(mock: Mock) -> None:
    resp, _ = await mock.call(
        P,
        "submit",
        "POST",
        "/v2/nano-banana",
        json={"prompt": "x", "aspect_ration": "1:1"},
        expect=200,
    )
    assert resp.headers["X-Mock-Warning"] == "unknown fields ignored: aspect_ration"


async def test_same_seed_same_ids_and_images(mock_factory) -> None:
    runs = []
    for seed in (11, 11, 12):
        mock = await mock_factory(seed=seed)
        rid = (await submit(mock, "nano-banana", aspect_ratio="4:3"))["request_id"]
        mock.advance(60)
        _, result = await mock.call(P, "result", "GET", f"/v2/requests/{rid}", expect=200)
        resp = await mock.client.get(result["output"][len(mock.base) :])
        runs.append((rid, await resp.read()))
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0] and runs[0][1] != runs[2][1]


def test_lifecycle_declares_failed_as_422() -> None:
    lifecycle = schemas.load(P, "lifecycle")
    assert lifecycle["http_status"]["status"]["FAILED"] == 422
    assert lifecycle["http_status"]["result"]["FAILED"] == 422


async def test_a_lone_surrogate_in_the_prompt_survives_the_round_trip(mock: Mock) -> None:
    raw = b'{"prompt": "banana \\ud800 split"}'
    _, data = await mock.call(
        P,
        "submit",
        "POST",
        "/v2/nano-banana",
        data=raw,
        headers={"Content-Type": "application/json"},
        expect=200,
    )
    mock.advance(60)
    _, result = await mock.call(
        P, "result", "GET", f"/v2/requests/{data['request_id']}", expect=200
    )
    assert result["prompt"] == "banana \ud800 split"
    assert (await mock.image(result["output"])).size == (1024, 1024)


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"1" * 5000])
async def test_out_of_range_numbers_are_400(mock: Mock, number: bytes) -> None:
    _, data = await mock.call(
        P,
        "submit",
        "POST",
        "/v2/nano-banana",
        data=b'{"prompt": "x", "n": ' + number + b"}",
        headers={"Content-Type": "application/json"},
        expect=400,
    )
    assert "malformed JSON" in data["error"]


async def test_unknown_field_names_cannot_break_or_inject_headers(mock: Mock) -> None:
    body = {"prompt": "x", "a\r\nX-Evil: 1": 1, "\t\u00e9\ud83c\udf4c": 2}
    resp, _ = await mock.call(P, "submit", "POST", "/v2/nano-banana", json=body, expect=200)
    assert "X-Evil" not in resp.headers
    warning = resp.headers["X-Mock-Warning"]
    assert warning.isascii() and "\\r\\n" in warning and "\\t" in warning
