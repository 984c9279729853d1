"""Credits and rate limits per API key, over HTTP, on the virtual clock."""

from __future__ import annotations

import pytest

from nanobanana_mock.engine.journal import redact
from tests.harness import KEYS, Mock
from tests.mockserver.test_faults import SUBMIT, submit


async def control(mock: Mock, method: str, path: str, body: dict | None = None) -> dict:
    resp = await mock.client.request(method, f"/_mock/{path}", json=body)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


@pytest.mark.parametrize(
    ("provider", "status"), [("segmind", 406), ("seaart", 402), ("pixazo", 402), ("fal", 403)]
)
async def test_balance_drops_then_insufficient_credits(
    mock: Mock, provider: str, status: int
) -> None:
    await control(mock, "POST", "credits", {"default": 0.1})
    codes = [(await submit(mock, provider, expect=None))[0].status for _ in range(4)]
    price = {"segmind": 0.04, "seaart": 0.134, "pixazo": 0.045, "fal": 0.15}[provider]
    allowed = int(0.1 // price)
    assert codes == [200] * allowed + [status] * (4 - allowed)
    assert len(mock.state.store.jobs()) == allowed


async def test_segmind_reports_the_ledger_in_headers_and_metrics(mock: Mock) -> None:
    key = KEYS["segmind"]["x-api-key"]
    await control(mock, "POST", "credits", {"key": key, "balance": 0.3})
    _, sub = await submit(mock, "segmind")
    mock.advance(60)
    _, result = await mock.call(
        "segmind", "result", "GET", f"/v2/requests/{sub['request_id']}", expect=200
    )
    assert result["metrics"]["remaining_credits"] == pytest.approx(0.26)
    credits = await control(mock, "GET", f"credits?key={key}")
    assert credits["accounts"] == [
        {
            "key": redact(KEYS["segmind"]["x-api-key"]),
            "balance": pytest.approx(0.26),
            "spent": pytest.approx(0.04),
        }
    ]
    _, body = await mock.call(
        "segmind", "submit", "POST", "/v2/nano-banana-pro", json={"prompt": "x"}, expect=406
    )  # 4K pro costs 0.27
    assert body == {"error": "Insufficient credits: balance $0.2600 is below the cost $0.2700"}


async def test_the_ledger_is_off_until_set_and_can_be_turned_off(mock: Mock) -> None:
    assert (await control(mock, "GET", "credits"))["enabled"] is False
    await control(mock, "POST", "credits", {"default": 0})
    await submit(mock, "pixazo", expect=402)
    await control(mock, "DELETE", "credits")
    await submit(mock, "pixazo", expect=200)


async def test_rate_limit_is_a_token_bucket_on_the_virtual_clock(mock: Mock) -> None:
    await control(mock, "POST", "rate-limits", {"rpm": 2})
    assert [(await submit(mock, "pixazo", expect=None))[0].status for _ in range(3)] == [
        200,
        200,
        429,
    ]
    resp, _body = await submit(mock, "pixazo", expect=429)
    assert resp.headers["Retry-After"] == "30"
    mock.advance(30)
    await submit(mock, "pixazo", expect=200)
    await submit(mock, "pixazo", expect=429)


async def test_rate_limits_count_only_generation_unless_asked(mock: Mock) -> None:
    await control(mock, "POST", "rate-limits", {"rpm": 1})
    _, sub = await submit(mock, "segmind")
    for _ in range(5):  # polling is not limited by default
        await mock.call(
            "segmind", "status", "GET", f"/v2/requests/{sub['request_id']}/status", expect=200
        )
    resp, _ = await submit(mock, "segmind", expect=429)
    assert "x-rate-limit-reset-at-utc" in resp.headers
    await control(mock, "POST", "rate-limits", {"rpm": 1, "scope": "all"})
    await mock.call(
        "segmind", "status", "GET", f"/v2/requests/{sub['request_id']}/status", expect=200
    )
    await mock.call(
        "segmind", "status", "GET", f"/v2/requests/{sub['request_id']}/status", expect=429
    )


async def test_rate_limits_are_per_key(mock: Mock) -> None:
    await control(mock, "POST", "rate-limits", {"rpm": 1, "key": "Key-A-123456"})
    method, path, body = SUBMIT["seaart"]
    codes = []
    for key in ("Key-A-123456", "Key-A-123456", "Key-B-123456", "Key-B-123456"):
        resp = await mock.client.request(
            method, path, json=body, headers={"Authorization": f"Key {key}"}
        )
        codes.append(resp.status)
    assert codes == [200, 429, 200, 200]
    limits = await control(mock, "GET", "rate-limits")
    assert limits == {"limits": [{"key": redact("Key-A-123456"), "rpm": 1.0, "scope": "generate"}]}
