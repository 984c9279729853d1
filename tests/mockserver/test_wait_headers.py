"""Headers a client sleeps on are true in wall time: ``Retry-After`` and Segmind's
``x-rate-limit-reset-at-utc`` say the virtual wait converted at the current time scale, and
a client that sleeps exactly as they say finds the rate limit reset. On a frozen clock they
say the virtual seconds a test must advance.

Wall time is what is under test here, so some tests sleep for real: at most about a second
each, the time scales chosen so that every wait is a fraction of a second.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime

import pytest
from aiohttp import ClientResponse

from nanobanana_mock.engine.clock import utc_stamp
from tests.harness import Mock
from tests.mockserver.test_faults import add_rule, submit

WAIT_HEADER = {"segmind": "x-rate-limit-reset-at-utc", "pixazo": "Retry-After"}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A 429 and the wall-clock instants its request was sent and its answer read."""

    resp: ClientResponse
    sent: float
    got: float

    def retry_after(self) -> int:
        value = self.resp.headers["Retry-After"]
        assert value.isdigit(), f"Retry-After is not delta-seconds: {value!r}"
        return int(value)

    def reset_at(self) -> float:
        value = self.resp.headers["x-rate-limit-reset-at-utc"]
        assert value.endswith("Z")
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

    def sleep_for(self) -> float:
        """How long a client sleeps from now on, doing exactly what the header says."""
        if "Retry-After" in self.resp.headers:
            return self.retry_after()
        return max(0.0, self.reset_at() - time.time())


async def control(mock: Mock, path: str, body: dict) -> None:
    resp = await mock.client.post(f"/_mock/{path}", json=body)
    assert resp.status == 200, await resp.text()


async def timed_submit(mock: Mock, provider: str, expect: int | None = None) -> Refusal:
    sent = time.time()
    resp, _ = await submit(mock, provider, expect=expect)
    return Refusal(resp, sent, time.time())


async def rate_limited(mock: Mock, provider: str, rpm: float) -> Refusal:
    """Submit until the limit of ``rpm`` refuses one (the bucket holds ``rpm`` tokens)."""
    await control(mock, "rate-limits", {"rpm": rpm})
    for _ in range(int(rpm) + 20):
        refusal = await timed_submit(mock, provider)
        if refusal.resp.status == 429:
            assert WAIT_HEADER[provider] in refusal.resp.headers
            return refusal
        assert refusal.resp.status == 200
    raise AssertionError(f"{rpm} rpm never refused a submit")


# -- a running clock: sleep as told, in wall time --------------------------------------------


@pytest.mark.parametrize("provider", ["segmind", "pixazo"])
@pytest.mark.parametrize(
    ("speed", "rpm", "moved"),
    [
        (1, 120, 0),  # real time: a wait of at most 0.5 s
        (1, 120, 3600),  # the clock was moved an hour ahead first (a date no wall shows)
        (10, 30, 0),  # make serve's scale: 2 virtual seconds are 0.2 wall seconds
        (100, 2, 0),  # 30 virtual seconds are 0.3 wall seconds
    ],
)
async def test_sleeping_as_the_header_says_finds_the_limit_reset(
    mock: Mock, provider: str, speed: float, rpm: float, moved: float
) -> None:
    mock.advance(moved)
    await control(mock, "clock", {"speed": speed})
    refusal = await rate_limited(mock, provider, rpm)
    virtual = 60 / rpm  # the longest the bucket can ask for
    wall = virtual / speed
    if provider == "pixazo":  # never longer than the wall wait, rounded up
        assert 1 <= refusal.retry_after() <= math.ceil(wall)
    else:  # never later than the wall reset, rounded up to the second
        assert refusal.sent <= refusal.reset_at() <= math.ceil(refusal.got + wall)
    await asyncio.sleep(refusal.sleep_for())
    await timed_submit(mock, provider, expect=200)


# -- a frozen clock: the headers say the virtual seconds to advance ----------------------------


@pytest.mark.parametrize("moved", [0, 3600])
async def test_frozen_retry_after_is_the_virtual_seconds_to_advance(
    mock: Mock, moved: float
) -> None:
    mock.advance(moved)
    refusal = await rate_limited(mock, "pixazo", 11)  # the bucket asks for 60/11 = 5.45 s
    assert refusal.retry_after() == 6  # rounded up: advancing 6 is enough, 5 is not
    mock.advance(5)
    assert (await timed_submit(mock, "pixazo", expect=429)).retry_after() == 1
    mock.advance(1)
    await timed_submit(mock, "pixazo", expect=200)


@pytest.mark.parametrize("moved", [0, 3600])
async def test_frozen_reset_at_is_wall_now_plus_the_virtual_seconds(
    mock: Mock, moved: float
) -> None:
    mock.advance(moved)
    refusal = await rate_limited(mock, "segmind", 11)
    virtual = 60 / 11
    assert refusal.sent + virtual <= refusal.reset_at() < refusal.got + virtual + 1
    needed = math.ceil(refusal.reset_at() - refusal.sent)  # what the README tells a test
    assert needed in (6, 7)
    mock.advance(5)  # less than the 5.45 s the bucket needs
    await timed_submit(mock, "segmind", expect=429)
    mock.advance(needed - 5)
    await timed_submit(mock, "segmind", expect=200)


# -- injected waits: the same rule, and headers that agree ------------------------------------


@pytest.mark.parametrize(("speed", "told"), [(0, 30), (0.5, 60), (10, 3), (1000, 1)])
@pytest.mark.parametrize(
    ("provider", "status"),
    [("segmind", 503), ("seaart", 503), ("pixazo", 503), ("pixazo", 429)],
)
async def test_an_injected_retry_after_is_converted_to_wall_seconds(
    mock: Mock, provider: str, status: int, speed: float, told: int
) -> None:
    await control(mock, "clock", {"speed": speed})
    await add_rule(mock, {"effect": {"http_error": {"status": status, "retry_after": 30}}})
    refusal = await timed_submit(mock, provider, expect=status)
    assert refusal.retry_after() == told  # 30 virtual seconds, ceil(30 / speed) wall ones


@pytest.mark.parametrize("speed", [0, 0.5, 10, 1000])
async def test_segmind_reset_at_and_retry_after_agree(mock: Mock, speed: float) -> None:
    """The same injected wait as Segmind's 429 (reset-at) and 503 (Retry-After)."""
    await control(mock, "clock", {"speed": speed})
    for status in (429, 503):
        effect = {"http_error": {"status": status, "retry_after": 30}}
        await add_rule(mock, {"effect": effect, "scope": {"times": 1}})
    limited = await timed_submit(mock, "segmind", expect=429)
    unavailable = await timed_submit(mock, "segmind", expect=503)
    wall = 30 / speed if speed else 30
    assert limited.sent + wall <= limited.reset_at() < limited.got + wall + 1
    told = unavailable.retry_after()
    assert limited.reset_at() - limited.got < told + 1
    assert limited.reset_at() - limited.sent > told - 1


# -- a replayed reset-at ------------------------------------------------------------------------


async def test_a_replayed_reset_at_tells_the_recorded_wait_from_now(mock_factory, tmp_path) -> None:
    recorded_at = time.time() - 3600  # recorded an hour ago, told a 30 s wait
    record = {
        "provider": "segmind",
        "operation": "submit",
        "method": "POST",
        "path": "/v2/nano-banana",
        "request_body": {"prompt": "x"},
        "status": 429,
        "response_headers": {
            "content-type": "application/json",
            "x-rate-limit-reset-at-utc": utc_stamp(recorded_at + 30),
        },
        "response_body": {"error": "rate_limit_exceeded"},
        "encoding": "json",
        "t": recorded_at,
    }
    (tmp_path / "segmind.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    mock = await mock_factory(replay_dir=str(tmp_path))
    refusal = await timed_submit(mock, "segmind", expect=429)
    assert refusal.sent + 29 <= refusal.reset_at() <= math.ceil(refusal.got + 30)


# -- a limit below one request per minute --------------------------------------------------------


@pytest.mark.parametrize("provider", ["segmind", "pixazo"])
async def test_a_limit_below_one_rpm_lets_one_request_through_after_the_wait_told(
    mock: Mock, provider: str
) -> None:
    """0.5 rpm is one request every 120 s: its bucket holds one token (it held 0.5, less than
    a request takes, so every request was refused for ever while the headers told a wait)."""
    await control(mock, "rate-limits", {"rpm": 0.5})
    await timed_submit(mock, provider, expect=200)
    refusal = await timed_submit(mock, provider, expect=429)
    needed = refusal.retry_after() if provider == "pixazo" else refusal.sleep_for()
    assert 119 <= needed <= 121  # the 120 virtual seconds to advance, on a frozen clock
    mock.advance(119)
    await timed_submit(mock, provider, expect=429)
    mock.advance(math.ceil(needed) - 119)
    await timed_submit(mock, provider, expect=200)
