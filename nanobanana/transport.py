"""HTTP exchanges with retries: the one place aiohttp's failures become this library's errors.

Retries follow one rule: only what cannot create a second job is retried.
- Reads (status, result, image downloads) and SeaArt's cancel are retried on 429, 5xx and
  transport failures, with exponential backoff and full jitter. A ``Retry-After`` or
  ``x-rate-limit-reset-at-utc`` from the provider is honoured as the minimum wait.
- A submit is retried only when it certainly did not reach the provider: the connection was
  refused, or the provider answered 429 (refused, nothing created). After a reset, a timeout
  or a 5xx the job may exist and be paid for, so the error goes to the caller.
- No wait ever crosses the caller's deadline: the error that would need it is raised (as
  :class:`~.errors.Timeout` when a deadline was given). A provider asking for more
  than ``RetryPolicy.max_wait`` seconds gets its error raised at once.

Each wait before a retry is logged at DEBUG on the ``nanobanana_mock.client`` logger and,
when the client was given ``on_retry``, told to it as a :class:`RetryNotice` first (the
command line prints one line for each). Nothing is printed otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from .errors import ApiError, RateLimited, ServerError, Timeout, TransportError, error_from_response
from .providers import Call

__all__ = ["Answer", "RetryNotice", "RetryPolicy", "Timer", "WallTimer", "exchange"]

log = logging.getLogger("nanobanana_mock.client")


class Timer(Protocol):
    """Where time comes from: the wall clock, or a test's virtual clock."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class WallTimer:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits up to base * 2**(n-1), capped."""

    attempts: int = 5  # tries in all, the first included
    base: float = 0.5
    cap: float = 30.0
    max_wait: float = 120.0  # a provider asking to wait longer gets its error raised at once
    seed: int | None = None  # for reproducible jitter
    _rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base < 0 or self.cap < 0:
            raise ValueError("attempts must be >= 1 and base, cap >= 0")
        if self.seed is not None:
            self._rng.seed(self.seed)

    def delay(self, attempt: int, asked: float | None = None) -> float:
        """The wait before try ``attempt + 1``: jittered backoff, at least what was asked."""
        backoff = self._rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        return max(backoff, asked or 0.0)


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """A wait before a retry: what failed, which retry comes, and after how long."""

    provider: str
    operation: str  # of the contract: submit, status, result, cancel, image, ...
    error: ApiError  # how the last try ended: RateLimited, ServerError, TransportError
    retry: int  # 1 for the first retry
    retries: int  # the most retries the policy allows
    wait: float  # seconds about to be slept
    asked: float | None  # the wait the provider asked for (Retry-After, reset-at), if any

    def __str__(self) -> str:
        if self.asked is not None:
            why = f"the provider asked for {self.asked:.1f}s"
        else:
            why = "backing off"
        return (
            f"[{self.provider}] {self.operation}: {_reason(self.error)}; retry {self.retry} "
            f"of {self.retries} in {self.wait:.1f}s ({why})"
        )


RetryCallback = Callable[[RetryNotice], None]


def _reason(error: ApiError) -> str:
    if isinstance(error, RateLimited):
        return f"rate limited (HTTP {error.status}: {error.message})"
    if isinstance(error, TransportError):  # "cannot connect: ...", "no answer in time", ...
        return error.message
    return f"HTTP {error.status}: {error.message}"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or bytes when the answer is not JSON
    raw: bytes


async def _once(
    session: aiohttp.ClientSession,
    provider: str,
    call: Call,
    headers: Mapping[str, str],
    timeout: float | None,
) -> Answer:
    """One HTTP exchange; every aiohttp failure becomes a TransportError here."""
    try:
        async with session.request(
            call.method,
            call.url,
            json=call.json,
            headers=dict(headers),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            raw = await resp.read()
            content_type = resp.content_type
            status, resp_headers = resp.status, dict(resp.headers)
    except aiohttp.ClientConnectorError as exc:
        raise TransportError(f"cannot connect: {exc}", provider=provider, sent=False) from exc
    except TimeoutError as exc:
        raise TransportError("no answer in time", provider=provider) from exc
    except aiohttp.ClientPayloadError as exc:
        raise TransportError(f"the answer was cut short: {exc}", provider=provider) from exc
    except aiohttp.ClientError as exc:
        raise TransportError(f"connection failed: {exc!r}", provider=provider) from exc
    body: Any = raw
    if content_type == "application/json" or raw[:1] in (b"{", b"["):
        try:
            body = json.loads(raw)
        except ValueError as exc:
            if status < 400:
                raise TransportError(
                    f"malformed JSON in a {status} answer", provider=provider, status=status
                ) from exc
            body = raw.decode("utf-8", "replace")
    return Answer(status, resp_headers, body, raw)


async def exchange(
    session: aiohttp.ClientSession,
    provider: str,
    call: Call,
    headers: Mapping[str, str],
    *,
    policy: RetryPolicy,
    timer: Timer,
    ok: frozenset[int] = frozenset(),
    idempotent: bool,
    deadline: float | None = None,
    request_timeout: float = 60.0,
    on_retry: RetryCallback | None = None,
) -> Answer:
    """Send ``call`` with retries as the module doc says; 2xx and ``ok`` codes are answers,
    anything else raises the mapped error. ``on_retry`` hears of each wait before a retry."""
    attempt = 0
    while True:
        attempt += 1
        timeout = request_timeout
        if deadline is not None:
            remaining = deadline - timer.now()
            if remaining <= 0:
                raise Timeout("the deadline passed", provider=provider, handle=None)
            timeout = min(timeout, remaining)
        try:
            answer = await _once(session, provider, call, headers, timeout)
        except TransportError as err:
            error: ApiError = err
            retryable = idempotent or not err.sent
        else:
            if answer.status < 400 or answer.status in ok:
                return answer
            error = error_from_response(provider, answer.status, answer.body, answer.headers)
            retryable = isinstance(error, RateLimited) or (
                idempotent and isinstance(error, ServerError)
            )
        if not retryable or attempt >= policy.attempts:
            raise error
        wait = _wait_before_retry(error, attempt, policy, timer, deadline)
        notice = RetryNotice(
            provider, call.operation, error, attempt, policy.attempts - 1, wait, error.retry_after
        )
        log.debug("%s", notice)
        if on_retry is not None:
            on_retry(notice)
        await timer.sleep(wait)


def _wait_before_retry(
    error: ApiError, attempt: int, policy: RetryPolicy, timer: Timer, deadline: float | None
) -> float:
    """The wait before try ``attempt + 1``; ``error`` (or a Timeout) is raised instead when
    the provider asks for more than ``max_wait`` or the wait would cross the deadline."""
    asked = error.retry_after
    if asked is not None and asked > policy.max_wait:
        raise error
    wait = policy.delay(attempt, asked)
    if deadline is not None and timer.now() + wait > deadline:
        raise Timeout(
            f"deadline reached while retrying after: {error.message}",
            provider=error.provider,
            handle=None,
            status=error.status,
        ) from error
    return wait
