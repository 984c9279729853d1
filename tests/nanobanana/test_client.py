"""The client against the mock, for every provider: the happy path, statuses, failures,
retries, deadlines and resume, strict mode."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from nanobanana_mock.client import (
    ConfigurationError,
    JobCancelled,
    JobFailed,
    JobHandle,
    JobPending,
    JobStatus,
    NotSupported,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
)
from tests.harness import Mock
from tests.nanobanana.conftest import MODEL, PARAMS, MockTimer

PROVIDERS = ("segmind", "seaart", "pixazo")


async def rule(mock: Mock, spec: dict) -> None:
    resp = await mock.client.post("/_mock/faults", json=spec)
    assert resp.status == 201, await resp.text()


async def journal(mock: Mock, **filters: str) -> dict:
    return await (await mock.client.get("/_mock/journal", params=filters)).json()


@pytest.mark.parametrize(
    ("provider", "model", "params", "size", "mime"),
    [
        (
            "segmind",
            "nano-banana-pro",
            {"aspect_ratio": "21:9", "resolution": "1K", "output_format": "png"},
            (1584, 672),
            "image/png",
        ),
        (
            "segmind",
            "nano-banana-2",
            {"resolution": "512px", "aspect_ratio": "16:9"},
            (688, 384),
            "image/jpeg",
        ),
        (
            "seaart",
            "nano_banana_2",
            {"resolution": "0.5K", "aspect_ratio": "16:9"},
            (688, 384),
            "image/png",
        ),
        (
            "seaart",
            "nano_banana_pro",
            {"resolution": "2K", "aspect_ratio": "3:2"},
            (2528, 1696),
            "image/png",
        ),
        (
            "pixazo",
            "nano-banana-pro",
            {
                "resolution": "2K",
                "aspect_ratio": "9:16",
                "output_format": "jpg",
                "image_urls": ["https://a.io/b.png"],
            },
            (1536, 2752),
            "image/jpeg",
        ),
    ],
)
async def test_generate_downloads_images_of_the_right_size(
    make_client, provider, model, params, size, mime
) -> None:
    client = make_client(provider)
    statuses = []
    result = await client.generate(model, prompt="a test", on_status=statuses.append, **params)
    (image,) = result.images
    assert (image.width, image.height) == size
    assert image.content_type == mime and image.data and len(image.data) > 100
    assert statuses[0].status is JobStatus.QUEUED and statuses[-1].status is JobStatus.SUCCEEDED
    order = [list(JobStatus).index(s.status) for s in statuses]
    assert order == sorted(order)  # never backwards


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_statuses_are_normalised_and_the_raw_kept(make_client, mock, provider) -> None:
    client = make_client(provider)
    handle = await client.submit(MODEL[provider], **PARAMS[provider])
    queued = await client.status(handle)
    mock.advance(2)
    running = await client.status(handle)
    mock.advance(100)
    done = await client.status(handle)
    assert [r.status for r in (queued, running, done)] == [
        JobStatus.QUEUED,
        JobStatus.RUNNING,
        JobStatus.SUCCEEDED,
    ]
    raw = {
        "segmind": ["QUEUED", "PROCESSING", "COMPLETED"],
        "seaart": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"],
        "pixazo": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"],
    }[provider]
    assert [r.raw_status for r in (queued, running, done)] == raw
    assert queued.body["request_id"] == handle.request_id


async def test_segmind_metrics_and_cost(make_client) -> None:
    result = await make_client("segmind").generate("nano-banana", prompt="x")
    assert result.metrics.cost == pytest.approx(0.04)
    assert result.metrics.inference_time == pytest.approx(14.28)


@pytest.mark.parametrize(
    ("provider", "error_type"),
    [("segmind", None), ("seaart", "CONTENT_BLOCKED"), ("pixazo", None)],
)
async def test_failed_jobs_raise_job_failed_with_the_provider_text(
    make_client, mock, provider, error_type
) -> None:
    await rule(
        mock,
        {
            "effect": {
                "job_failure": {"error": "blocked by filter", "error_type": "CONTENT_BLOCKED"}
            }
        },
    )
    client = make_client(provider)
    with pytest.raises(JobFailed) as caught:
        await client.generate(MODEL[provider], **PARAMS[provider])
    assert type(caught.value) is JobFailed
    assert caught.value.error == "blocked by filter"
    assert caught.value.error_type == error_type
    assert caught.value.handle.provider == provider


async def test_seaart_cancel(make_client, mock) -> None:
    client = make_client("seaart")
    handle = await client.submit("nano_banana_pro", prompt="x")
    assert await client.cancel(handle) is True
    assert (await client.status(handle)).status is JobStatus.CANCELLED
    with pytest.raises(JobCancelled):
        await client.wait(handle)
    assert await client.cancel(handle) is False


@pytest.mark.parametrize("provider", ["segmind", "pixazo"])
async def test_cancel_is_not_supported_elsewhere(make_client, provider) -> None:
    client = make_client(provider)
    handle = await client.submit(MODEL[provider], **PARAMS[provider])
    with pytest.raises(NotSupported):
        await client.cancel(handle)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_result_before_the_end_is_pending(make_client, provider) -> None:
    client = make_client(provider)
    handle = await client.submit(MODEL[provider], **PARAMS[provider])
    with pytest.raises(JobPending) as caught:
        await client.result(handle)
    assert caught.value.report.status is JobStatus.QUEUED


async def test_reads_are_retried_with_backoff(make_client, mock) -> None:
    await rule(
        mock,
        {
            "match": {"operation": "status"},
            "effect": {"http_error": {"status": 502}},
            "scope": {"first": 3},
        },
    )
    client = make_client("segmind")
    handle = await client.submit("nano-banana", prompt="x")
    report = await client.status(handle)
    assert report.request_id == handle.request_id and not report.status.terminal
    polls = (await journal(mock, operation="status"))["entries"]
    assert [e["status"] for e in polls] == [502, 502, 502, 200]
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(polls)]
    assert all(0 <= gap <= cap for gap, cap in zip(gaps, (0.5, 1.0, 2.0), strict=True))


async def test_retry_after_is_honoured(make_client, mock) -> None:
    await rule(
        mock,
        {
            "match": {"provider": "pixazo", "operation": "result"},
            "effect": {"http_error": {"status": 429, "retry_after": 30}},
            "scope": {"first": 1},
        },
    )
    client = make_client("pixazo")
    handle = await client.submit("nano-banana-pro", **PARAMS["pixazo"])
    await client.status(handle)
    polls = (await journal(mock, operation="result"))["entries"]
    assert [e["status"] for e in polls] == [429, 200]
    assert polls[1]["t"] - polls[0]["t"] >= 30


async def test_segmind_reset_at_header_is_honoured(make_client, mock) -> None:
    await rule(
        mock,
        {
            "match": {"operation": "status"},
            "effect": {"http_error": {"status": 429, "retry_after": 45}},
            "scope": {"first": 1},
        },
    )
    client = make_client("segmind")
    handle = await client.submit("nano-banana", prompt="x")
    await client.status(handle)
    polls = (await journal(mock, operation="status"))["entries"]
    assert polls[1]["t"] - polls[0]["t"] >= 40  # the header is to the second, in wall time


@pytest.mark.parametrize(
    ("effect", "error"),
    [
        ({"transport": {"kind": "reset"}}, TransportError),
        ({"transport": {"kind": "truncate"}}, TransportError),
        ({"transport": {"kind": "malformed_json"}}, TransportError),
        ({"http_error": {"status": 502}}, ServerError),
        ({"http_error": {"status": 500}}, ServerError),
    ],
)
async def test_a_submit_that_may_have_arrived_is_never_retried(
    make_client, mock, effect, error
) -> None:
    await rule(mock, {"match": {"operation": "submit"}, "effect": effect})
    client = make_client("seaart")
    with pytest.raises(error):
        await client.submit("nano_banana_pro", prompt="x")
    assert (await journal(mock, operation="submit"))["count"] == 1


async def test_a_rate_limited_submit_is_retried_because_nothing_was_created(
    make_client, mock
) -> None:
    await rule(
        mock,
        {
            "match": {"operation": "submit"},
            "effect": {"http_error": {"status": 429, "retry_after": 5}},
            "scope": {"first": 2},
        },
    )
    client = make_client("pixazo")  # its gateway's 429 says Retry-After (SeaArt's says nothing)
    handle = await client.submit("nano-banana-pro", **PARAMS["pixazo"])
    submits = (await journal(mock, operation="submit"))["entries"]
    assert [e["status"] for e in submits] == [429, 429, 200]
    assert submits[1]["t"] - submits[0]["t"] >= 5
    assert [j.id for j in mock.state.store.jobs()] == [handle.request_id]


async def test_rate_limits_that_persist_end_in_rate_limited(make_client, mock) -> None:
    await rule(
        mock,
        {
            "match": {"operation": "submit"},
            "effect": {"http_error": {"status": 429, "retry_after": 5}},
        },
    )
    with pytest.raises(RateLimited) as caught:
        await make_client("segmind").submit("nano-banana", prompt="x")
    assert caught.value.retry_after is not None
    assert (await journal(mock, operation="submit"))["count"] == 5


async def test_a_refused_connection_is_retried_even_for_submit(mock) -> None:
    from nanobanana_mock.client import Client, RetryPolicy

    timer = MockTimer(mock)
    async with Client(
        "segmind",
        api_key="k",
        base_url="http://127.0.0.1:9",
        timer=timer,
        retry=RetryPolicy(attempts=3, seed=1),
    ) as client:
        with pytest.raises(TransportError) as caught:
            await client.submit("nano-banana", prompt="x")
    assert caught.value.sent is False and len(timer.sleeps) == 2


async def test_wait_times_out_with_the_handle_and_resumes(make_client, mock, tmp_path) -> None:
    client = make_client("segmind")
    handle = await client.submit("nano-banana-pro", prompt="x")  # ~60 s
    with pytest.raises(Timeout) as caught:
        await client.wait(handle, timeout=30)
    assert caught.value.handle == handle and caught.value.last.status is JobStatus.RUNNING
    assert mock.state.clock.now() <= 30
    saved = handle.save(tmp_path / "job.json")
    resumed = JobHandle.load(saved)
    assert resumed == handle
    result = await make_client("segmind").wait(resumed)
    assert result.handle.request_id == handle.request_id and result.images


async def test_retries_never_cross_the_deadline(make_client, mock) -> None:
    client = make_client("pixazo")
    handle = await client.submit("nano-banana-pro", **PARAMS["pixazo"])
    await rule(
        mock,
        {
            "match": {"operation": "result"},
            "effect": {"http_error": {"status": 503, "retry_after": 100}},
        },
    )
    with pytest.raises(Timeout) as caught:
        await client.wait(handle, timeout=50)
    assert caught.value.handle == handle
    assert mock.state.clock.now() <= 50


async def test_expired_results_are_not_found(make_client, mock) -> None:
    from nanobanana_mock.client import NotFound

    client = make_client("segmind")
    handle = await client.submit("nano-banana", prompt="x")
    mock.advance(3600)
    with pytest.raises(NotFound) as caught:
        await client.status(handle)
    assert caught.value.message == f"Request {handle.request_id} not found"


async def test_images_downloads_are_retried(make_client, mock) -> None:
    await rule(
        mock,
        {
            "match": {"operation": "image"},
            "effect": {"http_error": {"status": 503}},
            "scope": {"first": 1},
        },
    )
    result = await make_client("pixazo").generate("nano-banana-pro", **PARAMS["pixazo"])
    assert result.image.data and (await journal(mock, operation="image"))["count"] == 2


async def test_segmind_sync_generation(make_client, mock) -> None:
    client = make_client("segmind")
    task = asyncio.ensure_future(
        client.generate_sync("nano-banana-2", prompt="x", aspect_ratio="4:3", seed=5)
    )
    await mock.state.clock.wait_for_sleepers(1)
    mock.advance(40)
    result = await asyncio.wait_for(task, 30)
    assert (result.image.width, result.image.height) == (1200, 896)
    assert result.metrics.cost == pytest.approx(0.075) and result.handle.request_id
    with pytest.raises(NotSupported):
        await make_client("seaart").generate_sync("nano_banana_pro", prompt="x")


def test_configuration_errors(monkeypatch) -> None:
    from nanobanana_mock.client import Client

    monkeypatch.delenv("SEGMIND_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SEGMIND_API_KEY"):
        Client("segmind")
    monkeypatch.setenv("SEGMIND_API_KEY", "k")
    monkeypatch.setenv("SEGMIND_BASE_URL", "http://127.0.0.1:8080/v1")
    assert Client("segmind").base_url == "http://127.0.0.1:8080"
    assert Client("seaart", api_key="k", base_url="http://h:1/model/").base_url == "http://h:1"
    with pytest.raises(ConfigurationError, match="unknown provider"):
        Client("midjourney", api_key="k")
    with pytest.raises(ConfigurationError, match="base URL"):
        Client("pixazo", api_key="k", base_url="gateway.pixazo.ai")
    seaart = Client("seaart", api_key="k")
    with pytest.raises(ConfigurationError, match="does not take output_format"):
        seaart.adapter.body("nano_banana_pro", {"prompt": "x", "output_format": "png"})
    with pytest.raises(ConfigurationError, match="no model"):
        seaart.adapter.body("nano-banana", {"prompt": "x"})


async def test_invalid_requests_carry_the_provider_message(make_client) -> None:
    from nanobanana_mock.client import InvalidRequest

    with pytest.raises(InvalidRequest) as caught:
        await make_client("seaart").submit("nano_banana_2", prompt="x", aspect_ratio="7:3")
    assert "aspect_ratio" in caught.value.message and caught.value.status == 422


async def test_a_handle_follows_the_clients_base_url(make_client, mock) -> None:
    client = make_client("seaart")
    handle = await client.submit("nano_banana_pro", prompt="x")
    elsewhere = JobHandle.from_dict(
        {
            **handle.to_dict(),
            "base_url": "http://old.example",
            "status_url": "http://old.example" + handle.status_url[len(mock.base) :],
        }
    )
    assert (await client.status(elsewhere)).request_id == handle.request_id
    with pytest.raises(ValueError):
        JobHandle.from_dict([1])  # type: ignore[arg-type]


async def test_a_wait_longer_than_max_wait_is_not_slept(make_client, mock) -> None:
    from nanobanana_mock.client import RetryPolicy

    await rule(
        mock,
        {
            "match": {"operation": "submit"},
            "effect": {"http_error": {"status": 429, "retry_after": 600}},
        },
    )
    client = make_client("pixazo", retry=RetryPolicy(max_wait=60, seed=1))
    with pytest.raises(RateLimited) as caught:
        await client.submit("nano-banana-pro", **PARAMS["pixazo"])
    assert caught.value.retry_after == 600 and mock.state.clock.now() == 0


def test_origins_accept_the_providers_usual_base_urls() -> None:
    from nanobanana_mock.client import Client

    for given in (
        "https://cloud.seaart.ai/model/v1/queue",
        "https://cloud.seaart.ai/model/v1",
        "https://cloud.seaart.ai/",
    ):
        assert Client("seaart", api_key="k", base_url=given).base_url == "https://cloud.seaart.ai"
