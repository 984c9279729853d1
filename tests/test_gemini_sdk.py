"""The official google-genai SDK works unchanged against the mock: only its base URL is set.

The SDK is synchronous here (httpx), so it runs in a worker thread while the mock serves on
the test's event loop; the test moves the virtual clock while generateContent blocks.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from tests.harness import Mock, decoded_image

KEY = "AIza-test-0123456789"


def client_for(mock: Mock, **options: Any) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=mock.base, **options))


async def generate(mock: Mock, client: genai.Client, model: str, **config: Any) -> Any:
    call = asyncio.ensure_future(
        asyncio.to_thread(
            client.models.generate_content,
            model=model,
            contents="A banana wearing sunglasses on a beach",
            config=types.GenerateContentConfig(**config),
        )
    )
    await mock.state.clock.wait_for_sleepers(1)
    mock.advance(120)
    return await asyncio.wait_for(call, 60)


def decoded(response: Any) -> Image.Image:
    blobs = [p.inline_data for p in response.candidates[0].content.parts if p.inline_data]
    assert len(blobs) == 1
    return decoded_image(blobs[0].data, blobs[0].mime_type)


@pytest.mark.parametrize(
    ("model", "ratio", "size", "expected"),
    [
        ("gemini-2.5-flash-image", "16:9", None, (1344, 768)),
        ("gemini-3-pro-image-preview", "9:16", "2K", (1536, 2752)),
        ("gemini-3-pro-image", "1:1", "4K", (4096, 4096)),
        ("gemini-3.1-flash-image-preview", "4:3", "1K", (1200, 896)),
        ("gemini-3.1-flash-image", "16:9", "512", (688, 384)),
        ("gemini-3.1-flash-lite-image", "3:2", "1K", (1264, 848)),
    ],
)
async def test_images_at_several_ratios_and_sizes(mock, model, ratio, size, expected) -> None:
    image = types.ImageConfig(aspect_ratio=ratio, image_size=size)
    response = await generate(
        mock, client_for(mock), model, response_modalities=["TEXT", "IMAGE"], image_config=image
    )
    assert decoded(response).size == expected
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.text  # the text part
    assert response.usage_metadata.total_token_count > response.usage_metadata.prompt_token_count


@pytest.mark.parametrize("version", ["v1", "v1beta"])
async def test_both_api_versions(mock: Mock, version: str) -> None:
    client = client_for(mock, api_version=version)
    response = await generate(mock, client, "gemini-2.5-flash-image", response_modalities=["IMAGE"])
    assert decoded(response).size == (1024, 1024)
    entries = (await (await mock.client.get("/_mock/journal")).json())["entries"]
    assert entries[-1]["path"].startswith(f"/{version}/models/gemini-2.5-flash-image:")


async def test_the_environment_variable_is_enough(mock: Mock, monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", mock.base)
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    response = await generate(mock, genai.Client(), "gemini-3-pro-image")
    assert decoded(response).size == (1024, 1024)


async def test_a_safety_block_has_no_image(mock: Mock) -> None:
    rule = {"match": {"provider": "gemini"}, "effect": {"job_failure": {"error": "IMAGE_SAFETY"}}}
    assert (await mock.client.post("/_mock/faults", json=rule)).status == 201
    response = await generate(mock, client_for(mock), "gemini-3-pro-image")
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.IMAGE_SAFETY
    assert candidate.content is None and response.parts is None


async def test_a_429_is_retried_with_the_sdks_retry_options(mock: Mock) -> None:
    rule = {
        "match": {"provider": "gemini"},
        "effect": {"http_error": {"status": 429}},
        "scope": {"times": 2},
    }
    resp = await mock.client.post("/_mock/faults", json=rule)
    assert resp.status == 201, await resp.text()
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.05)
    client = client_for(mock, retry_options=retry)
    response = await generate(mock, client, "gemini-3.1-flash-image")
    assert decoded(response).size == (1024, 1024)
    entries = (await (await mock.client.get("/_mock/journal")).json())["entries"]
    assert [e["status"] for e in entries if "generateContent" in e["path"]] == [429, 429, 200]


async def test_a_429_without_retries_raises_client_error(mock: Mock) -> None:
    rule = {"match": {"provider": "gemini"}, "effect": {"http_error": {"status": 429}}}
    assert (await mock.client.post("/_mock/faults", json=rule)).status == 201
    client = client_for(mock)
    with pytest.raises(errors.ClientError) as caught:
        await asyncio.to_thread(
            client.models.generate_content, model="gemini-3-pro-image", contents="x"
        )
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.details["error"]["details"][0]["retryDelay"].endswith("s")


async def test_an_unknown_model_is_not_found(mock: Mock) -> None:
    client = client_for(mock)  # kept: a client that is collected closes its connections
    with pytest.raises(errors.ClientError) as caught:
        await asyncio.to_thread(
            client.models.generate_content, model="gemini-9-image", contents="x"
        )
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"


@pytest.mark.parametrize("version", ["v1", "v1beta"])
async def test_a_batch_with_the_sdk(mock: Mock, version: str) -> None:
    client = client_for(mock, api_version=version)
    config = types.GenerateContentConfig(
        response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio="9:16")
    )
    requests = [types.InlinedRequest(contents=prompt, config=config) for prompt in ("one", "two")]
    job = await asyncio.to_thread(
        client.batches.create, model="gemini-2.5-flash-image", src=requests
    )
    assert job.name.startswith("batches/") and job.state == types.JobState.JOB_STATE_PENDING
    mock.advance(60)
    done = await asyncio.to_thread(client.batches.get, name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED
    sizes = [decoded(each.response).size for each in done.dest.inlined_responses]
    assert sizes == [(768, 1344)] * 2


async def test_a_batch_cancelled_with_the_sdk(mock: Mock) -> None:
    client = client_for(mock)
    job = await asyncio.to_thread(
        client.batches.create,
        model="gemini-3-pro-image",
        src=[types.InlinedRequest(contents="x")],
    )
    await asyncio.to_thread(client.batches.cancel, name=job.name)
    ended = await asyncio.to_thread(client.batches.get, name=job.name)
    assert ended.state == types.JobState.JOB_STATE_CANCELLED


async def test_batches_listed_and_deleted_with_the_sdk(mock: Mock) -> None:
    client = client_for(mock)
    made = [
        await asyncio.to_thread(
            client.batches.create,
            model="gemini-3-pro-image",
            src=[types.InlinedRequest(contents=p)],
        )
        for p in ("one", "two", "three")
    ]
    pager = await asyncio.to_thread(client.batches.list, config={"page_size": 2})
    listed = await asyncio.to_thread(list, pager)  # the Pager follows nextPageToken
    assert [job.name for job in listed] == [job.name for job in reversed(made)]
    assert {job.state for job in listed} == {types.JobState.JOB_STATE_PENDING}
    await asyncio.to_thread(client.batches.delete, name=made[1].name)
    left = await asyncio.to_thread(list, await asyncio.to_thread(client.batches.list))
    assert [job.name for job in left] == [made[2].name, made[0].name]
    with pytest.raises(errors.ClientError) as caught:
        await asyncio.to_thread(client.batches.get, name=made[1].name)
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"
