"""Where the suite sends its requests (STYLE rule 6: same test, two targets).

- :class:`MockTarget`: a fresh in-process mock (frozen virtual clock, fixed seed, self-check
  off since a drift scenario breaks the contract on purpose), restricted to the suite's key,
  and reset before every check with the drift scenario's rules applied. Time passes when the
  suite says so.
- :class:`LiveTarget`: the real origins with the keys from the environment. Time is real.

Both give each provider's origin and key, :meth:`~MockTarget.prepare` (before a check),
:meth:`~MockTarget.wait` (between polls) and :meth:`~MockTarget.blocking` (a call that answers
when its job ends: Segmind's /v1, Gemini's generateContent).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from nanobanana_mock.client.errors import ConfigurationError
from nanobanana_mock.client.providers import adapter
from nanobanana_mock.config import MockConfig
from nanobanana_mock.control.pytest_plugin import MockServer

from .exchange import Answer

__all__ = [
    "MOCK_KEY",
    "MOCK_SEED",
    "WRONG_KEY",
    "LiveTarget",
    "MockTarget",
    "Target",
    "live_endpoints",
    "mock_config",
]

MOCK_KEY = "conformance-suite-key"
WRONG_KEY = "conformance-wrong-key"
MOCK_SEED = 20240601
ARRIVAL_SECONDS = 0.01  # wall time between looks for the job a blocking call created
ARRIVAL_LIMIT = 60.0  # wall time for that job to appear (a call neither answered nor queued)
ANSWER_SECONDS = 120.0  # wall time for the answer once its job has ended


class Target(Protocol):
    kind: str

    def origin(self, provider: str) -> str: ...
    def key(self, provider: str) -> str: ...
    def prepare(self) -> None: ...
    def wait(self, seconds: float) -> None: ...
    def blocking(
        self, provider: str, send: Callable[[], Answer], seconds: float
    ) -> Answer | None: ...
    def close(self) -> None: ...


class MockTarget:
    """A mock started for this run; ``scenario`` (a scenario object) is applied on every
    reset."""

    kind = "mock"

    def __init__(self, scenario: Mapping[str, Any] | None = None) -> None:
        self.scenario = dict(scenario) if scenario else None
        self.server = MockServer(mock_config()).start()
        assert self.server.control is not None
        self.control = self.server.control
        self.waiting: list[Future[Answer]] = []  # blocking calls still waiting for their job

    def origin(self, provider: str) -> str:
        return self.server.base_url

    def key(self, provider: str) -> str:
        return MOCK_KEY

    def prepare(self) -> None:
        """Forget every job, clock back to 0, the scenario's rules in place."""
        self.control.reset(scenario=self.scenario)

    def wait(self, seconds: float) -> None:
        self.control.clock.advance(seconds)

    def blocking(self, provider: str, send: Callable[[], Answer], seconds: float) -> Answer | None:
        """``send`` a call that answers when its job ends, and move the clock to that end, at
        most ``seconds`` on: the answer, or None when the job would not end by then (the call
        is left waiting; the next reset ends it)."""
        deadline = self.control.clock.now() + seconds
        known = {job.id for job in self.control.jobs.list(provider)}
        answer: Future[Answer] = Future()
        self.waiting = [f for f in self.waiting if not f.done()] + [answer]
        threading.Thread(target=_settle, args=(send, answer), daemon=True).start()
        given_up = time.monotonic() + ARRIVAL_LIMIT
        while True:
            try:  # an answer at once: refused, or no job to wait for
                return answer.result(timeout=ARRIVAL_SECONDS)
            except TimeoutError:
                pass
            job = next((j for j in self.control.jobs.list(provider) if j.id not in known), None)
            if job is not None:
                break
            if time.monotonic() > given_up:  # no answer and no job: the call is left waiting
                return None
        end = job.end_at if job.end_at is not None else deadline
        self.control.clock.to(max(min(end, deadline), self.control.clock.now()))
        if job.end_at is None or job.end_at > deadline:
            ended = self.control.jobs.get(job.id).end_at
            if ended is None or ended > deadline:
                return None
        return answer.result(timeout=ANSWER_SECONDS)

    def close(self) -> None:
        if any(not f.done() for f in self.waiting):  # a reset ends them: stop waits for none
            self.control.reset()
        self.server.stop()


def mock_config(key: str = MOCK_KEY, *, self_check: bool = False) -> MockConfig:
    """The suite's mock: loopback, a free port, frozen virtual clock, fixed seed, ``key`` its
    only key; self-check off by default (a drift scenario breaks the contract on purpose)."""
    return MockConfig(
        host="127.0.0.1",
        port=0,
        seed=MOCK_SEED,
        time_scale=0.0,
        self_check=self_check,
        api_keys=frozenset({key}),
    )


def _settle(send: Callable[[], Answer], answer: Future[Answer]) -> None:
    try:
        answer.set_result(send())
    except BaseException as exc:  # handed to the check that waits for it
        answer.set_exception(exc)


class LiveTarget:
    """The real services: ``origins`` and ``keys`` per provider."""

    kind = "live"

    def __init__(self, origins: Mapping[str, str], keys: Mapping[str, str]) -> None:
        self.origins = dict(origins)
        self.keys = dict(keys)

    @classmethod
    def from_environment(cls, providers: Sequence[str], base_url: str | None = None) -> LiveTarget:
        """Origins from ``base_url``, else ``<PROVIDER>_BASE_URL``, else the provider's own;
        keys from the provider's variable (a missing key is refused before this is called)."""
        adapters = {p: adapter(p) for p in providers}
        origins = {p: a.origin(base_url) for p, a in adapters.items()}
        keys = {p: a.key_from_env() or "" for p, a in adapters.items()}
        return cls(origins, keys)

    def origin(self, provider: str) -> str:
        return self.origins[provider]

    def key(self, provider: str) -> str:
        return self.keys[provider]

    def prepare(self) -> None:
        return None

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def blocking(self, provider: str, send: Callable[[], Answer], seconds: float) -> Answer | None:
        """The call, answered in real time (the HTTP timeout bounds it)."""
        return send()

    def close(self) -> None:
        return None


def live_endpoints(providers: Sequence[str], base_url: str | None = None) -> list[str]:
    """Where a live run sends each provider's first request (its submit), as the plan shows
    it: the real hosts' layout for fal (``schemas.hosts``). A provider whose base URL is
    refused is left out (the run's refusals name it)."""
    lines = []
    for provider in providers:
        found = adapter(provider)
        operation = (
            "submit" if "submit" in found.api["operations"] else next(iter(found.api["operations"]))
        )
        try:
            url = found.url(found.origin(base_url), operation, model="{model}")
        except ConfigurationError:
            continue
        method = found.api["operations"][operation]["method"]
        lines.append(f"  {provider:8} {operation}: {method} {url}")
    return lines
