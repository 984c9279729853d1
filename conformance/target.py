"""Where the suite sends its requests (STYLE rule 6: same test, two targets).

- :class:`MockTarget`: a fresh in-process mock (frozen virtual clock, fixed seed, self-check
  off since a drift scenario breaks the contract on purpose), restricted to the suite's key,
  and reset before every check with the drift scenario's rules applied. Time passes when the
  suite says so.
- :class:`LiveTarget`: the real origins with the keys from the environment. Time is real.

Both give each provider's origin and key, :meth:`~MockTarget.prepare` (before a check) and
:meth:`~MockTarget.wait` (between polls).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from nanobanana_mock.client.errors import ConfigurationError
from nanobanana_mock.client.providers import adapter
from nanobanana_mock.config import MockConfig
from nanobanana_mock.control.pytest_plugin import MockServer

__all__ = [
    "MOCK_KEY",
    "MOCK_SEED",
    "WRONG_KEY",
    "LiveTarget",
    "MockTarget",
    "Target",
    "live_endpoints",
]

MOCK_KEY = "conformance-suite-key"
WRONG_KEY = "conformance-wrong-key"
MOCK_SEED = 20240601


class Target(Protocol):
    kind: str

    def origin(self, provider: str) -> str: ...
    def key(self, provider: str) -> str: ...
    def prepare(self) -> None: ...
    def wait(self, seconds: float) -> None: ...
    def close(self) -> None: ...


class MockTarget:
    """A mock started for this run; ``scenario`` (a scenario object) is applied on every
    reset."""

    kind = "mock"

    def __init__(self, scenario: Mapping[str, Any] | None = None) -> None:
        self.scenario = dict(scenario) if scenario else None
        config = MockConfig(
            host="127.0.0.1",
            port=0,
            seed=MOCK_SEED,
            time_scale=0.0,
            self_check=False,
            api_keys=frozenset({MOCK_KEY}),
        )
        self.server = MockServer(config).start()
        assert self.server.control is not None
        self.control = self.server.control

    def origin(self, provider: str) -> str:
        return self.server.base_url

    def key(self, provider: str) -> str:
        return MOCK_KEY

    def prepare(self) -> None:
        """Forget every job, clock back to 0, the scenario's rules in place."""
        self.control.reset(scenario=self.scenario)

    def wait(self, seconds: float) -> None:
        self.control.clock.advance(seconds)

    def close(self) -> None:
        self.server.stop()


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
