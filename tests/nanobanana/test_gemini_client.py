"""The client over Gemini's blocking generateContent: generic names in, a decoded image out."""

from __future__ import annotations

import asyncio

import pytest

from nanobanana_mock.client import JobFailed


async def _blocking(mock, call):
    task = asyncio.ensure_future(call)
    await mock.state.clock.wait_for_sleepers(1)
    mock.advance(60)
    return await asyncio.wait_for(task, 30)


async def test_generate_is_one_blocking_call(make_client, mock) -> None:
    client = make_client("gemini")
    result = await _blocking(
        mock,
        client.generate("gemini-3-pro-image", prompt="a cat", aspect_ratio="16:9", resolution="2K"),
    )
    image = result.image
    assert (image.width, image.height, image.content_type) == (2752, 1536, "image/png")
    assert image.data is not None and result.handle.request_id


async def test_a_blocked_image_raises_job_failed_with_the_finish_reason(make_client, mock) -> None:
    rule = {"match": {"provider": "gemini"}, "effect": {"job_failure": {"error": "IMAGE_SAFETY"}}}
    assert (await mock.client.post("/_mock/faults", json=rule)).status == 201
    client = make_client("gemini")
    with pytest.raises(JobFailed) as caught:
        await _blocking(mock, client.generate_sync("gemini-2.5-flash-image", prompt="x"))
    assert caught.value.error_type == "IMAGE_SAFETY"


def test_the_body_is_googles_nested_one(make_client) -> None:
    body = make_client("gemini").adapter.body(
        "gemini-3.1-flash-image", {"prompt": "x", "aspect_ratio": "1:4", "resolution": "0.5K"}
    )
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "x"}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "1:4", "imageSize": "512"},
        },
    }


@pytest.mark.nanobanana_mock(queue_seconds=0, processing_seconds={"*": 0})
def test_the_cli_generates_and_saves_a_gemini_image(nanobanana_mock, tmp_path, capsys) -> None:
    from PIL import Image

    from nanobanana_mock.client.cli import main

    argv = [
        "generate",
        *("--provider", "gemini", "--model", "gemini-3.1-flash-image", "--prompt", "a test"),
        *("--aspect-ratio", "16:9", "--resolution", "512"),
        *("--base-url", nanobanana_mock.base_url, "--api-key", "AIza-k", "--out", str(tmp_path)),
    ]
    assert main(argv) == 0
    (saved,) = tmp_path.glob("*.png")
    assert Image.open(saved).size == (688, 384)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"candidates": "x"},
        {"candidates": ["x"]},
        {"candidates": [{"content": "x", "finishReason": "STOP"}]},
        {"candidates": [{"content": {"parts": "x"}}]},
        {"candidates": [{"content": {"parts": [{"inlineData": "x"}]}}]},
    ],
)
def test_a_drifted_answer_is_no_image_not_a_crash(make_client, body) -> None:
    with pytest.raises(JobFailed, match="no image"):
        make_client("gemini").adapter.sync_result("http://x", "gemini-3-pro-image", body)
