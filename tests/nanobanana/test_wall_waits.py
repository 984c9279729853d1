"""The client against a mock whose clock runs: it sleeps on the wall clock as the headers say
(no virtual timer here), tells ``on_retry`` of each wait, and prints nothing by itself.

Wall time is what is under test, so these tests sleep for real: about a second each, the
mock running 100 times faster than the wall so that a 30 s rate-limit wait is 0.3 s.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from nanobanana_mock.client import RateLimited, RetryNotice, RetryPolicy, TransportError, WallTimer
from tests.harness import Mock
from tests.nanobanana.conftest import MODEL, PARAMS, ClientFactory


async def control(mock: Mock, path: str, body: dict) -> None:
    resp = await mock.client.post(f"/_mock/{path}", json=body)
    assert resp.status in (200, 201), await resp.text()


async def submit_codes(mock: Mock) -> list[int]:
    resp = await mock.client.get("/_mock/journal", params={"operation": "submit"})
    return [entry["status"] for entry in (await resp.json())["entries"]]


@pytest.mark.parametrize("provider", ["segmind", "pixazo"])
async def test_a_rate_limited_submit_waits_the_wall_seconds_the_header_says(
    make_client: ClientFactory, mock: Mock, provider: str
) -> None:
    mock.advance(3600)  # an hour of uptime: the reset was an hour ahead of the wall
    await control(mock, "clock", {"speed": 100})
    await control(mock, "rate-limits", {"rpm": 2})  # the third submit waits 30 virtual s
    notices: list[RetryNotice] = []
    client = make_client(provider, timer=WallTimer(), on_retry=notices.append)
    started = time.monotonic()
    for _ in range(3):
        await asyncio.wait_for(client.submit(MODEL[provider], **PARAMS[provider]), 5)
    assert time.monotonic() - started < 2.5
    assert await submit_codes(mock) == [200, 200, 429, 200]
    [notice] = notices
    assert isinstance(notice.error, RateLimited)
    assert (notice.provider, notice.operation, notice.retry, notice.retries) == (
        provider,
        "submit",
        1,
        4,
    )
    assert notice.asked is not None and 0 < notice.asked <= 1.3  # 0.3 s, to the second
    assert notice.wait >= notice.asked
    assert "rate limited (HTTP 429" in str(notice) and "retry 1 of 4" in str(notice)


async def test_the_library_prints_nothing_while_it_retries(
    make_client: ClientFactory,
    mock: Mock,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await control(
        mock, "faults", {"effect": {"http_error": {"status": 429}}, "scope": {"first": 2}}
    )
    with caplog.at_level(logging.DEBUG, logger="nanobanana_mock.client"):
        await make_client("pixazo").submit(MODEL["pixazo"], **PARAMS["pixazo"])
    assert capsys.readouterr() == ("", "")
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2 and all(r.levelno == logging.DEBUG for r in caplog.records)


async def test_a_refused_connection_is_told_to_on_retry() -> None:
    from nanobanana_mock.client import Client

    notices: list[RetryNotice] = []
    async with Client(
        "seaart",
        api_key="k",
        base_url="http://127.0.0.1:9",
        retry=RetryPolicy(attempts=3, base=0.01, seed=1),
        on_retry=notices.append,
    ) as client:
        with pytest.raises(TransportError):
            await client.submit(MODEL["seaart"], prompt="x")
    assert [(n.retry, n.retries, n.asked) for n in notices] == [(1, 2, None), (2, 2, None)]
    assert all(str(n).startswith("[seaart] submit: cannot connect") for n in notices)
