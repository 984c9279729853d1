"""The official Segmind Python SDK (segmind 1.3.0) works unchanged against the mock.

Only ``base_url`` changes. The SDK is synchronous (httpx), so it runs in a worker thread
while the mock serves on the test's event loop; the test moves the virtual clock.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image
from segmind import SegmindClient

from tests.harness import validate

KEY = "SG_0123456789abcdef"


def client_for(mock) -> SegmindClient:
    return SegmindClient(api_key=KEY, base_url=f"{mock.base}/v1", timeout=30)


async def test_run_returns_the_final_result(mock_factory) -> None:
    # run() polls every 1.0 s on the wall clock; instant jobs make its first poll final.
    mock = await mock_factory(queue_seconds=0, processing_seconds={"*": 0})
    client = client_for(mock)
    result = await asyncio.to_thread(
        client.run,
        "nano-banana-pro",
        prompt="a comic page",
        aspect_ratio="9:16",
        output_format="jpg",
        output_resolution="1K",
        response_modalities="TEXT_AND_IMAGE",
    )
    validate("segmind", "result", result)
    assert result["status"] == "COMPLETED"
    assert (await mock.image(result["output"])).size == (768, 1376)


async def test_submit_async_status_and_wait(mock) -> None:
    client = client_for(mock)
    job = await asyncio.to_thread(
        client.submit_async, "nano-banana-2", prompt="a gold sign", seed=420875
    )
    assert job.request_id and job.status_url.startswith(mock.base)
    assert (await asyncio.to_thread(job.status))["status"] == "QUEUED"
    mock.advance(2)
    assert (await asyncio.to_thread(job.status))["status"] == "PROCESSING"
    mock.advance(40)
    result = await asyncio.to_thread(job.wait, 10, 0.0)
    assert result["status"] == "COMPLETED" and result["seed"] == 420875
    assert (await mock.image(result["output"])).size == (1024, 1024)


async def test_run_sync_returns_image_bytes_and_accounting_headers(mock) -> None:
    client = client_for(mock)
    call = asyncio.ensure_future(
        asyncio.to_thread(
            client.run_sync, "nano-banana", prompt="Dancing Banana", aspect_ratio="16:9"
        )
    )
    await mock.state.clock.wait_for_sleepers(1)
    mock.advance(20)
    response = await asyncio.wait_for(call, 30)
    assert response.status_code == 200
    validate("segmind", "sync_headers", {k.lower(): v for k, v in response.headers.items()})
    picture = Image.open(io.BytesIO(response.content))
    assert (picture.format, picture.size) == ("PNG", (1376, 768))


async def test_sdk_errors_carry_the_mock_message(mock) -> None:
    from segmind.exceptions import SegmindError

    client = SegmindClient(api_key=None, base_url=f"{mock.base}/v1")
    client._client.headers.pop("x-api-key", None)
    try:
        await asyncio.to_thread(client.submit_async, "nano-banana", prompt="x")
    except SegmindError as exc:
        assert exc.status == 401
        assert exc.detail == "Missing Authorization or x-api-key in header"
    else:
        raise AssertionError("submitting without a key must fail")


async def test_a_failed_job_raises_inference_failed_with_the_mock_error(mock) -> None:
    from segmind import InferenceFailed

    await mock.client.post(
        "/_mock/faults",
        json={
            "match": {"provider": "segmind"},
            "effect": {
                "job_failure": {"error": "Content blocked by safety filter", "surface": "start"}
            },
        },
    )
    client = client_for(mock)
    job = await asyncio.to_thread(client.submit_async, "nano-banana", prompt="x")
    mock.advance(5)
    try:
        await asyncio.to_thread(job.wait, 10, 0.0)
    except InferenceFailed as exc:
        assert exc.detail == "Content blocked by safety filter"
        assert exc.status_body["status"] == "FAILED"
    else:
        raise AssertionError("a failed job must raise InferenceFailed")


async def test_run_raises_inference_failed_from_a_prompt_marker(mock_factory) -> None:
    from segmind import InferenceFailed

    mock = await mock_factory(queue_seconds=0, processing_seconds={"*": 0})
    client = client_for(mock)
    try:
        await asyncio.to_thread(client.run, "nano-banana-2", prompt="a sign [mock:fail]")
    except InferenceFailed as exc:
        assert exc.detail == "Task execution failed"
    else:
        raise AssertionError("the marker must fail the job")


async def test_no_credits_and_rate_limits_raise_segmind_error(mock) -> None:
    from segmind.exceptions import SegmindError

    client = client_for(mock)
    await mock.client.post("/_mock/rate-limits", json={"rpm": 1})
    await asyncio.to_thread(client.submit_async, "nano-banana", prompt="x")
    for expected, setup in ((429, None), (406, {"key": KEY, "balance": 0.01})):
        if setup:
            mock.advance(60)  # the bucket refills; now the balance is too low
            await mock.client.post("/_mock/credits", json=setup)
        try:
            await asyncio.to_thread(client.submit_async, "nano-banana", prompt="x")
        except SegmindError as exc:
            assert exc.status == expected, exc
            assert exc.detail
        else:
            raise AssertionError(f"expected SegmindError {expected}")
