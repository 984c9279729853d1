"""Memory is bounded: expired jobs are evicted, and the store never outgrows max_jobs."""

from __future__ import annotations

from tests.harness import Mock


async def submit(mock: Mock) -> str:
    _, data = await mock.call(
        "segmind", "submit", "POST", "/v2/nano-banana", json={"prompt": "x"}, expect=200
    )
    return data["request_id"]


async def test_store_keeps_at_most_max_jobs(mock_factory) -> None:
    mock = await mock_factory(max_jobs=3)
    ids = [await submit(mock) for _ in range(5)]
    assert len(mock.state.store) == 3
    for rid in ids[:2]:
        await mock.call("segmind", "status", "GET", f"/v2/requests/{rid}/status", expect=404)
    for rid in ids[2:]:
        await mock.call("segmind", "status", "GET", f"/v2/requests/{rid}/status", expect=200)


async def test_expired_jobs_are_evicted(mock: Mock) -> None:
    for _ in range(4):
        await submit(mock)
    mock.advance(3600)
    await submit(mock)
    assert len(mock.state.store) == 1
    assert mock.state.store.evicted == 4
