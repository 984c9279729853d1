"""Expired versus never existed: the provider's 404 body stays as documented, and the mock says
which in its ``X-Mock-Job-State`` header and in the journal (``job``)."""

from __future__ import annotations

from typing import Any

import pytest

from nanobanana_mock.engine.jobs import Job, JobStore, Output
from tests.conftest import MockFactory
from tests.harness import KEYS, Mock

HEADER = "X-Mock-Job-State"
Q = "/model/v1/queue"
SUBMIT = {
    "segmind": ("/v2/nano-banana", {"prompt": "x"}),
    "seaart": (f"{Q}/nano_banana_pro", {"prompt": "x"}),
    "pixazo": (
        "/nano-banana-pro-770/v1/nano-banana-pro-request",
        {"prompt": "x", "image_urls": ["https://a.io/b.png"]},
    ),
}
ROUTES = [  # every route that looks a job up, and the body its 404 documents
    ("segmind", "status", "GET", "/v2/requests/{id}/status", {"error": "Request {id} not found"}),
    ("segmind", "result", "GET", "/v2/requests/{id}", {"error": "Request {id} not found"}),
    ("segmind", "poll", "GET", "/v1/requests/{id}", {"error": "Request {id} not found"}),
    ("seaart", "status", "GET", f"{Q}/nano_banana_pro/requests/{{id}}/status", None),
    ("seaart", "result", "GET", f"{Q}/nano_banana_pro/requests/{{id}}/response", None),
    ("seaart", "cancel", "PUT", f"{Q}/nano_banana_pro/requests/{{id}}/cancel", None),
    ("pixazo", "result", "POST", "/nano-banana-pro-770/v1/nano-banana-pro-request-result", None),
]
IDS = [f"{provider}.{operation}" for provider, operation, *_ in ROUTES]
NOT_FOUND = {
    "seaart.status": {"detail": "Request not found"},
    "seaart.result": {"detail": "Request not found"},
    "seaart.cancel": {"status": "NOT_FOUND"},
    "pixazo.result": {"error": "Request {id} not found"},
}
NEVER = "00000000-0000-4000-8000-000000000000"


async def submit(mock: Mock, provider: str) -> str:
    path, body = SUBMIT[provider]
    _, data = await mock.call(provider, "submit", "POST", path, json=body, expect=200)
    return str(data["request_id"])


async def ask(
    mock: Mock, route: tuple[Any, ...], job_id: str, headers: dict[str, str] | None = None
) -> tuple[int, Any, str | None]:
    """Ask a job route about ``job_id``; the answer is checked against the contract."""
    provider, operation, method, path, _ = route
    kwargs = {"json": {"request_id": job_id}} if provider == "pixazo" else {}
    resp, body = await mock.call(
        provider, operation, method, path.format(id=job_id), headers=headers, **kwargs
    )
    return resp.status, body, resp.headers.get(HEADER)


def documented(route: tuple[Any, ...], job_id: str) -> dict[str, str]:
    provider, operation, _, _, body = route
    body = body or NOT_FOUND[f"{provider}.{operation}"]
    return {k: v.replace("{id}", job_id) for k, v in body.items()}


async def journal(mock: Mock, query: str = "limit=1") -> dict[str, Any]:
    resp = await mock.client.get(f"/_mock/journal?{query}")
    assert resp.status == 200
    return await resp.json()


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
async def test_expired_and_never_existed_differ_only_in_the_mocks_header(
    mock: Mock, route: tuple[Any, ...]
) -> None:
    provider = route[0]
    job_id = await submit(mock, provider)
    mock.advance(3600)  # every provider's retention here: one hour after submission
    for asked, state in ((job_id, "expired"), (NEVER, "unknown")):
        status, body, header = await ask(mock, route, asked)
        assert (status, body) == (404, documented(route, asked))  # the documented 404
        assert header == state
        (entry,) = (await journal(mock))["entries"]
        assert (entry["request_id"], entry["status"], entry["job"]) == (asked, 404, state)


@pytest.mark.parametrize("provider", list(SUBMIT))
async def test_another_keys_job_is_unknown_to_it_even_once_expired(
    mock_factory: MockFactory, provider: str
) -> None:
    mock = await mock_factory()
    route = next(r for r in ROUTES if r[0] == provider)
    job_id = await submit(mock, provider)
    other = {name: value + "-other" for name, value in KEYS[provider].items()}
    assert (await ask(mock, route, job_id, other))[2] == "unknown"
    mock.advance(3600)
    assert (await ask(mock, route, job_id, other))[2] == "unknown"
    assert (await ask(mock, route, job_id))[2] == "expired"


async def test_a_seaart_id_on_another_endpoint_is_unknown(mock: Mock) -> None:
    job_id = await submit(mock, "seaart")
    routes = [
        ("seaart", operation, method, f"{Q}/nano_banana_2/requests/{{id}}/{tail}", None)
        for operation, method, tail in (("status", "GET", "status"), ("cancel", "PUT", "cancel"))
    ]
    for advance in (0, 3600):  # live, then expired: not this endpoint's either way
        mock.advance(advance)
        for route in routes:
            assert (await ask(mock, route, job_id))[0::2] == (404, "unknown")


async def test_a_job_evicted_to_keep_the_store_bounded_says_so(
    mock_factory: MockFactory,
) -> None:
    mock = await mock_factory(max_jobs=1)
    first = await submit(mock, "segmind")
    await submit(mock, "segmind")  # the store keeps one job: the first goes
    status, _, header = await ask(mock, ROUTES[0], first)
    assert (status, header) == (404, "evicted")
    resp = await mock.client.get(f"/_mock/jobs/{first}")
    assert resp.status == 404 and "evicted" in (await resp.json())["error"]


async def test_a_job_expired_by_hand_and_the_journal_filter(mock: Mock) -> None:
    job_id = await submit(mock, "pixazo")
    resp = await mock.client.post(f"/_mock/jobs/{job_id}/state", json={"state": "EXPIRED"})
    assert resp.status == 200
    route = ROUTES[-1]
    assert (await ask(mock, route, job_id))[2] == "expired"
    assert (await ask(mock, route, NEVER))[2] == "unknown"
    found = await journal(mock, "job=expired")
    assert [e["request_id"] for e in found["entries"]] == [job_id]
    resp = await mock.client.get("/_mock/journal?job=expird")
    assert resp.status == 400
    assert "'expird' (did you mean 'expired'?)" in (await resp.json())["error"]
    resp = await mock.client.get(f"/_mock/jobs/{job_id}")
    assert resp.status == 404 and "expired" in (await resp.json())["error"]


async def test_an_expired_jobs_image_says_so(mock: Mock) -> None:
    job_id = await submit(mock, "segmind")
    mock.advance(60)
    _, result = await mock.call("segmind", "result", "GET", f"/v2/requests/{job_id}", expect=200)
    path = result["output"][len(mock.base) :]
    assert (await mock.client.get(path)).status == 200
    mock.advance(3600)
    for url, state in ((path, "expired"), (f"/_mock/files/{NEVER}/0.png", "unknown")):
        resp = await mock.client.get(url)
        assert resp.status == 404 and await resp.json() == {"error": "File not found"}
        assert resp.headers[HEADER] == state


async def test_a_live_job_carries_no_job_state_header(mock: Mock) -> None:
    job_id = await submit(mock, "segmind")
    status, _, header = await ask(mock, ROUTES[0], job_id)
    assert (status, header) == (200, None)
    assert (await journal(mock))["entries"][0]["job"] is None


def _job(job_id: str, now: float) -> Job:
    return Job(job_id, "segmind", "nano-banana", "owner", b"x", Output(1, 1, "png"), 0, 0.0,
               now, now, 1.0, now + 10)  # fmt: skip


def test_the_remembered_ids_are_bounded_the_oldest_forgotten_first() -> None:
    store = JobStore(workers=1, max_jobs=100, max_gone=3)
    for n in range(5):
        store.add(_job(f"j{n}", float(n)), float(n))
    assert store.evict(100.0) == 5
    fates = [store.fate(f"j{n}", 100.0, "segmind", "owner") for n in range(5)]
    assert fates == ["unknown", "unknown", "expired", "expired", "expired"]
    assert store.fate("j4", 100.0, "segmind", "someone else") == "unknown"
