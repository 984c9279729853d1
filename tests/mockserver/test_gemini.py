"""Gemini's generateContent over real HTTP: both paths, sizes, finish reasons, errors, keys."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from PIL import Image

from nanobanana_mock.providers import gemini
from nanobanana_mock.schemas.lifecycle import TERMINAL
from tests.harness import Mock, decoded_image

P = "gemini"
KEY = "AIza-test-0123456789"


def body(prompt: str = "a banana on a desk", **image: str) -> dict[str, Any]:
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if image:
        config["imageConfig"] = image
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config}


async def generate(
    mock: Mock,
    model: str,
    json: Any,
    *,
    version: str = "v1beta",
    expect: int = 200,
    advance: float = 60.0,
    **kwargs: Any,
) -> Any:
    """POST generateContent, moving the virtual clock while it blocks."""
    operation = "sync_generate" if version == "v1beta" else "sync_generate_stable"
    path = f"/{version}/models/{model}:generateContent"
    call = asyncio.ensure_future(
        mock.call(P, operation, "POST", path, json=json, expect=expect, **kwargs)
    )
    if expect == 200:
        await mock.state.clock.wait_for_sleepers(1)
        mock.advance(advance)
    _, data = await asyncio.wait_for(call, 30)
    return data


def picture(answer: dict[str, Any]) -> Image.Image:
    parts = answer["candidates"][0]["content"]["parts"]
    blob = next(part["inlineData"] for part in parts if "inlineData" in part)
    return decoded_image(base64.b64decode(blob["data"]), blob["mimeType"])


@pytest.mark.parametrize(
    ("model", "ratio", "size", "expected"),
    [
        ("gemini-2.5-flash-image", "16:9", None, (1344, 768)),
        ("gemini-2.5-flash-image", "3:4", None, (864, 1184)),
        ("gemini-3-pro-image-preview", "16:9", "2K", (2752, 1536)),
        ("gemini-3-pro-image", "21:9", "1K", (1584, 672)),
        ("gemini-3.1-flash-image", "1:1", "512", (512, 512)),
        ("gemini-3.1-flash-image-preview", "16:9", "512", (688, 384)),
        ("gemini-3.1-flash-lite-image", "4:5", "1K", (928, 1152)),
        ("gemini-3.1-flash-image", "1:4", "1K", (512, 2048)),
        ("gemini-3.1-flash-image", "8:1", "4K", (12288, 1536)),
    ],
)
async def test_the_image_is_real_at_the_documented_size(mock, model, ratio, size, expected):
    image = {"aspectRatio": ratio, **({"imageSize": size} if size else {})}
    answer = await generate(mock, model, body(**image))
    assert picture(answer).size == expected
    candidate = answer["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"][0]["text"]
    usage = answer["usageMetadata"]
    tokens = {"512": 747, "4K": 2000}.get(size or "", 1120)
    tokens = 1290 if model.startswith("gemini-2.5") else tokens
    assert usage["candidatesTokensDetails"][-1] == {"modality": "IMAGE", "tokenCount": tokens}
    assert answer["modelVersion"] == model


async def test_v1_is_gemini_and_segmind_keeps_its_v1(mock: Mock) -> None:
    answer = await generate(mock, "gemini-3-pro-image", body(), version="v1")
    assert picture(answer).size == (1024, 1024)
    resp, data = await mock.call(
        "segmind", "sync_generate", "POST", "/v1/models", json={"prompt": "x"}, expect=404
    )
    assert data == {"error": "Model not found: models"}
    resp = await mock.client.get("/v1/models/nope", headers={"x-goog-api-key": KEY})
    error = (await resp.json())["error"]
    assert resp.status == 404 and error == {
        "code": 404,
        "message": "Not Found",
        "status": "NOT_FOUND",
    }


async def test_a_key_in_the_query_string_works_and_is_never_journaled(mock: Mock) -> None:
    path = f"/v1beta/models/gemini-2.5-flash-image:generateContent?key={KEY}"
    call = asyncio.ensure_future(mock.client.post(path, json=body()))
    await mock.state.clock.wait_for_sleepers(1)
    mock.advance(60)
    resp = await asyncio.wait_for(call, 30)
    assert resp.status == 200
    journal = await (await mock.client.get("/_mock/journal")).text()
    assert "gemini" in journal and KEY not in journal


async def test_no_key_and_a_bad_key(mock_factory) -> None:
    mock = await mock_factory(api_keys=[KEY])
    path = "/v1beta/models/gemini-2.5-flash-image:generateContent"
    _, data = await mock.call(P, "sync_generate", "POST", path, json=body(), auth=False, expect=403)
    assert data["error"]["status"] == "PERMISSION_DENIED"
    _, data = await mock.call(
        P,
        "sync_generate",
        "POST",
        path,
        json=body(),
        auth=False,
        headers={"x-goog-api-key": "AIza-wrong"},
        expect=400,
    )
    assert data["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert "AIza-wrong" not in str(data)


@pytest.mark.parametrize(
    ("model", "json", "expect", "status", "words"),
    [
        ("gemini-9-image", body(), 404, "NOT_FOUND", "models/gemini-9-image is not found"),
        ("gemini-2.5-flash-image", {"contents": []}, 400, "INVALID_ARGUMENT", "contents"),
        (
            "gemini-2.5-flash-image",
            body(aspectRatio="8:1"),
            400,
            "INVALID_ARGUMENT",
            "generationConfig.imageConfig.aspectRatio",
        ),
        (
            "gemini-3-pro-image",
            body(imageSize="512"),
            400,
            "INVALID_ARGUMENT",
            "generationConfig.imageConfig.imageSize",
        ),
        ("gemini-3-pro-image", body(imageSize="4k"), 400, "INVALID_ARGUMENT", "imageSize"),
        ("gemini-3-pro-image", body(prompt=""), 400, "INVALID_ARGUMENT", "contents[].parts[].text"),
        ("gemini-3-pro-image", [1, 2], 400, "INVALID_ARGUMENT", ""),
    ],
)
async def test_bad_requests_get_googles_envelope(mock, model, json, expect, status, words):
    path = f"/v1beta/models/{model}:generateContent"
    _, data = await mock.call(P, "sync_generate", "POST", path, json=json, expect=expect)
    assert data["error"]["status"] == status and data["error"]["code"] == expect
    assert words in data["error"]["message"]


async def test_a_body_that_is_not_json_is_invalid_argument(mock: Mock) -> None:
    path = "/v1beta/models/gemini-3-pro-image:generateContent"
    _, data = await mock.call(P, "sync_generate", "POST", path, data=b"{nope", expect=400)
    assert data["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ({"error": "IMAGE_SAFETY"}, "IMAGE_SAFETY"),
        ({"error": "PROHIBITED_CONTENT"}, "PROHIBITED_CONTENT"),
        ({"error": "IMAGE_RECITATION", "surface": "start"}, "IMAGE_RECITATION"),
        ({"error": "blocked", "error_type": "CONTENT_BLOCKED"}, "IMAGE_SAFETY"),
        ({"error": "nothing", "error_type": "REQUEST_INVALID"}, "NO_IMAGE"),
        ({"error": "oops"}, "IMAGE_OTHER"),
    ],
)
async def test_a_failed_job_is_a_finish_reason_with_no_image(mock, failure, reason):
    rule = {"match": {"provider": P}, "effect": {"job_failure": failure}}
    resp = await mock.client.post("/_mock/faults", json=rule)
    assert resp.status == 201, await resp.text()
    answer = await generate(mock, "gemini-3-pro-image", body())
    assert answer["candidates"] == [{"finishReason": reason, "index": 0}]


async def test_a_prompt_marker_blocks_the_image(mock: Mock) -> None:
    answer = await generate(
        mock, "gemini-3.1-flash-image", body("a cat [mock:fail=CONTENT_BLOCKED]")
    )
    assert answer["candidates"][0]["finishReason"] == "IMAGE_SAFETY"


@pytest.mark.parametrize(
    ("error_type", "code", "status"),
    [("INTERNAL_SERVER_ERROR", 500, "INTERNAL"), ("INFERENCE_TIMEOUT", 504, "DEADLINE_EXCEEDED")],
)
async def test_failures_that_are_errors(mock, error_type, code, status):
    rule = {"match": {"provider": P}, "effect": {"job_failure": {"error_type": error_type}}}
    assert (await mock.client.post("/_mock/faults", json=rule)).status == 201
    path = "/v1beta/models/gemini-3-pro-image:generateContent"
    call = asyncio.ensure_future(
        mock.call(P, "sync_generate", "POST", path, json=body(), expect=code)
    )
    await mock.state.clock.wait_for_sleepers(1)
    mock.advance(60)
    _, data = await asyncio.wait_for(call, 30)
    assert data["error"]["status"] == status


async def test_a_429_is_resource_exhausted_with_retry_info(mock: Mock) -> None:
    rule = {"match": {"provider": P}, "effect": {"http_error": {"status": 429}}}
    assert (await mock.client.post("/_mock/faults", json=rule)).status == 201
    path = "/v1beta/models/gemini-3-pro-image:generateContent"
    _, data = await mock.call(P, "sync_generate", "POST", path, json=body(), expect=429)
    error = data["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.RetryInfo"


async def test_credits_run_out_as_resource_exhausted(mock: Mock) -> None:
    resp = await mock.client.post("/_mock/credits", json={"default": 0.05})
    assert resp.status == 200, await resp.text()
    path = "/v1beta/models/gemini-3-pro-image:generateContent"
    _, data = await mock.call(P, "sync_generate", "POST", path, json=body(), expect=429)
    assert "prepayment credits are depleted" in data["error"]["message"]


async def test_the_call_blocks_for_the_generation_time(mock: Mock) -> None:
    path = "/v1beta/models/gemini-3-pro-image:generateContent"
    call = asyncio.ensure_future(mock.call(P, "sync_generate", "POST", path, json=body()))
    await mock.state.clock.wait_for_sleepers(1)
    mock.advance(1)
    (job,) = mock.state.store.jobs()  # not ended at 1 s, so nothing to answer yet
    assert job.state(mock.state.clock.now()) not in TERMINAL
    await mock.state.clock.wait_for_sleepers(1)  # the call still waits on the clock
    assert not call.done()
    mock.advance(60)
    resp, _ = await asyncio.wait_for(call, 30)
    assert resp.status == 200


def batch(*prompts: str, **image: str) -> dict[str, Any]:
    requests = [{"request": body(prompt, **image)} for prompt in prompts]
    return {"batch": {"displayName": "b", "inputConfig": {"requests": {"requests": requests}}}}


async def batch_call(mock: Mock, operation: str, method: str, path: str, **kwargs: Any) -> Any:
    _, data = await mock.call(P, operation, method, path, **kwargs)
    return data


async def create_batch(mock: Mock) -> Any:
    """A batch of one request for gemini-2.5-flash-image, made (v1beta)."""
    path = "/v1beta/models/gemini-2.5-flash-image:batchGenerateContent"
    return await batch_call(mock, "batch_create", "POST", path, json=batch("a"), expect=200)


@pytest.mark.parametrize("version", ["v1beta", "v1"])
async def test_a_batch_runs_on_the_job_engine(mock: Mock, version: str) -> None:
    suffix = "" if version == "v1beta" else "_stable"
    created = await batch_call(
        mock,
        "batch_create" + suffix,
        "POST",
        f"/{version}/models/gemini-3-pro-image:batchGenerateContent",
        json=batch("a", "b", "c", aspectRatio="16:9", imageSize="2K"),
        expect=200,
    )
    name = created["name"]
    assert created["metadata"]["state"] == "BATCH_STATE_PENDING" and "done" not in created
    mock.advance(5)
    got = await batch_call(mock, "batch_get" + suffix, "GET", f"/{version}/{name}", expect=200)
    assert got["metadata"]["state"] == "BATCH_STATE_RUNNING"
    mock.advance(60)
    got = await batch_call(mock, "batch_get" + suffix, "GET", f"/{version}/{name}", expect=200)
    assert got["metadata"]["state"] == "BATCH_STATE_SUCCEEDED" and got["done"] is True
    responses = got["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert [picture(r["response"]).size for r in responses] == [(2752, 1536)] * 3
    assert responses[0]["response"]["usageMetadata"]["candidatesTokenCount"] == 1120
    cancel = f"/{version}/{name}:cancel"
    data = await batch_call(mock, "batch_cancel" + suffix, "POST", cancel, expect=400)
    assert data["error"]["status"] == "INVALID_ARGUMENT"


async def test_a_batch_is_cancelled_and_an_unknown_one_is_not_found(mock: Mock) -> None:
    created = await create_batch(mock)
    name = created["name"]
    assert (
        await batch_call(mock, "batch_cancel", "POST", f"/v1beta/{name}:cancel", expect=200) == {}
    )
    got = await batch_call(mock, "batch_get", "GET", f"/v1beta/{name}", expect=200)
    assert got["metadata"]["state"] == "BATCH_STATE_CANCELLED" and got["done"] is True
    data = await batch_call(mock, "batch_get", "GET", "/v1beta/batches/nope", expect=404)
    assert data["error"]["status"] == "NOT_FOUND"


async def test_a_failed_batch_says_so(mock: Mock) -> None:
    rule = {"match": {"provider": P}, "effect": {"job_failure": {"error": "IMAGE_SAFETY"}}}
    assert (await mock.client.post("/_mock/faults", json=rule)).status == 201
    created = await create_batch(mock)
    mock.advance(60)
    got = await batch_call(mock, "batch_get", "GET", f"/v1beta/{created['name']}", expect=200)
    assert got["metadata"]["state"] == "BATCH_STATE_FAILED" and "output" not in got["metadata"]


async def test_a_prompt_rule_reads_the_first_parts_only(
    mock: Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gemini, "MAX_PARTS", 3)  # 10,000: as many parts would be slow
    rule = {"match": {"provider": "gemini", "prompt_contains": "slow"}}
    resp = await mock.client.post(
        "/_mock/faults", json={**rule, "effect": {"http_error": {"status": 503}}}
    )
    assert resp.status == 201, await resp.text()
    path = "/v1beta/models/gemini-2.5-flash-image:generateContent"
    for texts, expect in ((["a", "slow"], 503), (["a", "b", "c", "slow"], 400)):
        parts = [{"text": text} for text in texts]
        contents = [{"role": "user", "parts": parts[:1]}, {"role": "user", "parts": parts[1:]}]
        wire = {**body(), "contents": contents, "generationConfig": {"seed": "x"}}
        _, data = await mock.call(P, "sync_generate", "POST", path, json=wire, expect=expect)
        assert data["error"]["code"] == expect
