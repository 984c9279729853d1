"""Gemini's batch listing and deletion over real HTTP: pages and tokens, a key sees only its
own batches and never a generateContent call, a deleted batch is gone, bad paging is a 400.
Every answer is checked against its schema (``Mock.call``)."""

from __future__ import annotations

from typing import Any

import pytest

from nanobanana_mock.providers import gemini
from tests.harness import Mock
from tests.mockserver.test_gemini import batch, body, generate

P = "gemini"
OTHER = {"x-goog-api-key": "AIza-other-key-9876543210"}
MODEL = "gemini-2.5-flash-image"


async def create(mock: Mock, prompt: str = "a", version: str = "v1beta") -> str:
    operation = "batch_create" + ("" if version == "v1beta" else "_stable")
    path = f"/{version}/models/{MODEL}:batchGenerateContent"
    _, data = await mock.call(P, operation, "POST", path, json=batch(prompt), expect=200)
    return str(data["name"])


async def listed(
    mock: Mock, version: str = "v1beta", expect: int = 200, **query: Any
) -> dict[str, Any]:
    """One page of GET batches (``query``: pageSize, pageToken, headers)."""
    operation = "batch_list" + ("" if version == "v1beta" else "_stable")
    headers = query.pop("headers", None)
    _, data = await mock.call(
        P, operation, "GET", f"/{version}/batches", params=query, headers=headers, expect=expect
    )
    return dict(data)


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page.get("operations", [])]


@pytest.mark.parametrize("version", ["v1beta", "v1"])
async def test_batches_are_listed_newest_first_a_page_at_a_time(mock: Mock, version: str) -> None:
    made = [await create(mock, prompt, version) for prompt in ("a", "b", "c")]
    first = await listed(mock, version, pageSize=2)
    assert names(first) == [made[2], made[1]]
    assert first["operations"][0]["metadata"]["state"] == "BATCH_STATE_PENDING"
    later = await create(mock, "d", version)  # made meanwhile: on no page after the first
    second = await listed(mock, version, pageSize=2, pageToken=first["nextPageToken"])
    assert names(second) == [made[0]] and "nextPageToken" not in second
    everything = await listed(mock, version)
    assert names(everything) == [later, *reversed(made)] and "nextPageToken" not in everything


async def test_a_listing_shows_the_keys_own_batches_and_never_a_generate_call(
    mock: Mock,
) -> None:
    answer = await generate(mock, MODEL, body())
    mine = await create(mock)
    assert await listed(mock, headers=OTHER) == {}  # another key's batches are not listed
    mock.advance(60)
    page = await listed(mock)
    assert names(page) == [mine]  # the generateContent job is not a batch
    item = page["operations"][0]
    assert item["metadata"]["state"] == "BATCH_STATE_SUCCEEDED" and item["done"] is True
    assert "output" not in item["metadata"]  # the images: GET batches/{id}
    assert item["metadata"]["batchStats"] == {"requestCount": "1", "successfulRequestCount": "1"}
    path = f"/v1beta/batches/{answer['responseId']}"
    for method, operation in (("GET", "batch_get"), ("DELETE", "batch_delete")):
        resp, _ = await mock.call(P, operation, method, path, expect=404)
        assert resp.headers["X-Mock-Job-State"] == "unknown"


async def test_the_page_size_is_clamped(mock: Mock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gemini, "MAX_PAGE_SIZE", 2)  # 100: as many batches would be slow
    monkeypatch.setattr(gemini, "PAGE_SIZE", 1)
    for prompt in "abc":
        await create(mock, prompt)
    page = await listed(mock, pageSize=2_000_000)
    assert len(page["operations"]) == 2 and page["nextPageToken"]
    for default in ({}, {"pageSize": 0}):
        assert len((await listed(mock, **default))["operations"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        {"pageToken": "not-a-token"},
        {"pageToken": "YmF0Y2hlczow"},  # batches:0
        {"pageToken": "YmF0Y2hlczox!"},  # batches:1 and a character base64 would skip
        {"pageToken": "YmF0Y2hlczox" * 6},  # too long
        {"pageToken": "\u00e9t\u00e9"},
        {"pageSize": "-1"},
        {"pageSize": "ten"},
        {"pageSize": "99999999999"},
    ],
)
async def test_bad_paging_is_invalid_argument(mock: Mock, query: dict[str, str]) -> None:
    data = await listed(mock, expect=400, **query)
    assert data["error"]["status"] == "INVALID_ARGUMENT"


async def test_a_deleted_batch_is_gone(mock: Mock) -> None:
    kept, deleted = await create(mock, "kept"), await create(mock, "deleted")
    rid = deleted.removeprefix("batches/")
    path = f"/v1/{deleted}"
    _, data = await mock.call(P, "batch_delete", "DELETE", path, headers=OTHER, expect=404)
    assert data["error"]["status"] == "NOT_FOUND"  # another key's: not found, nor deleted
    _, data = await mock.call(P, "batch_delete_stable", "DELETE", path, expect=200)
    assert data == {}
    for method, operation, url in (
        ("GET", "batch_get", f"/v1beta/{deleted}"),
        ("POST", "batch_cancel", f"/v1beta/{deleted}:cancel"),
        ("DELETE", "batch_delete", f"/v1beta/{deleted}"),
    ):
        resp, data = await mock.call(P, operation, method, url, expect=404)
        assert resp.headers["X-Mock-Job-State"] == "deleted" and rid in data["error"]["message"]
    assert names(await listed(mock)) == [kept]
    resp, _ = await mock.call(P, "batch_delete", "DELETE", "/v1beta/batches/nope", expect=404)
    assert resp.headers["X-Mock-Job-State"] == "unknown"
    journal = await (await mock.client.get("/_mock/journal", params={"job": "deleted"})).json()
    assert journal["count"] == 3


async def test_deleting_a_running_batch_does_not_cancel_it(mock_factory: Any) -> None:
    mock = await mock_factory(workers=1)
    running, waiting = await create(mock, "running"), await create(mock, "waiting")
    mock.advance(2)  # the first runs (1 s to 9 s), the second waits for its worker
    await mock.call(P, "batch_delete", "DELETE", f"/v1beta/{running}", expect=200)
    mock.advance(4)
    _, data = await mock.call(P, "batch_get", "GET", f"/v1beta/{waiting}", expect=200)
    assert data["metadata"]["state"] == "BATCH_STATE_PENDING"  # the worker is still taken
    mock.advance(4)
    _, data = await mock.call(P, "batch_get", "GET", f"/v1beta/{waiting}", expect=200)
    assert data["metadata"]["state"] == "BATCH_STATE_RUNNING"
