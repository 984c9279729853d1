"""pytest plugin: one mock for the session, reset before every test.

Installed with the package (entry point ``pytest11``), so its fixtures are there in any project
that has ``nanobanana-mock`` installed::

    def test_my_client(nanobanana_mock):
        nanobanana_mock.faults.http_error(429, provider="segmind", operation="submit", first=1)
        client = SegmindClient(api_key="k", base_url=nanobanana_mock.segmind_url)
        ...
        nanobanana_mock.clock.advance(60)
        assert nanobanana_mock.journal.count(provider="segmind", operation="submit") == 2

Per-test settings come from the marker (settings as ``MockConfig`` names, plus a scenario,
fault rules and credits)::

    @pytest.mark.nanobanana_mock(workers=1, faults=[{"effect": {"http_error": {"status": 503}}}])
    def test_outage(nanobanana_mock): ...

``scenario=`` takes a scenario object, or a file path read exactly as ``--scenario`` reads
it. A marker the mock cannot use (an unknown setting name, a bad value, a scenario file with
a problem) errors the test at setup with the problem named, and no traceback.

Session-wide settings come from overriding the ``nanobanana_mock_config`` fixture in a
``conftest.py``. The server runs in a daemon thread with its own event loop, so sync tests,
async tests and threads of the code under test can all talk to it; its clock is frozen
(``time_scale=0``) and moves only when a test advances it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from nanobanana_mock import schemas

from ..app import create_app
from ..config import MockConfig
from ..names import unknown
from ..scenario import ScenarioError, load_scenario
from ..server import Served, serve_app
from .api import SETTABLE
from .client import (
    ClockControl,
    ControlError,
    CreditControl,
    FaultControl,
    JobControl,
    JournalControl,
    MockControl,
    RateLimitControl,
)

__all__ = [
    "MARKER",
    "MockHandle",
    "MockServer",
    "nanobanana_mock",
    "nanobanana_mock_config",
    "nanobanana_mock_server",
]

MARKER = "nanobanana_mock"
MARKER_HELP = (
    f"{MARKER}(**settings, scenario=None, faults=None, credits=None): settings of the "
    "nanobanana mock for this test (MockConfig names), a scenario (an object, or a file "
    'path as --scenario takes), a list of fault rules and credits ({"default": n, "keys": '
    "{key: n}})."
)
EXTRAS = ("scenario", "faults", "credits")  # what a marker takes besides settings
SETTINGS = frozenset(f.name for f in dataclasses.fields(MockConfig))


class MarkerError(TypeError):
    """A marker the plugin cannot use: positional arguments, an unknown name, a bad value."""


START_TIMEOUT = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)


class MockServer:
    """A mock serving from a daemon thread with its own event loop; a context manager.
    Without ``config``, the default settings on a free loopback port (``MockConfig(port=0)``)."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.config = config if config is not None else MockConfig(port=0)
        self.base_url = ""
        self.control: MockControl | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._served: Served | None = None
        self._thread = threading.Thread(target=self._serve, name="nanobanana-mock", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> MockServer:
        """Start serving; returns once the server listens (or raises why it could not)."""
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError(f"the mock did not start within {START_TIMEOUT} s")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError(f"the mock did not start: {self._error!r}") from self._error
        self.control = MockControl(self.base_url, token=self.config.control_token)
        return self

    def stop(self) -> None:
        """Clean up the app on its own loop, stop the loop and join the thread."""
        loop = self._loop
        if loop is None or not self._thread.is_alive():
            return
        try:
            if self._served is not None:
                cleanup = asyncio.run_coroutine_threadsafe(self._served.close(), loop)
                cleanup.result(START_TIMEOUT)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(START_TIMEOUT)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:  # reported to start(), in the test's thread
            self._error = exc
            if self._served is not None:
                loop.run_until_complete(self._served.close())
            loop.close()
            self._ready.set()
            return
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _listen(self) -> None:
        self._served = await serve_app(create_app(self.config), self.config)
        self.base_url = self._served.base_url


class MockHandle:
    """What a test gets: the provider URLs and every part of the control plane."""

    def __init__(self, server: MockServer, control: MockControl) -> None:
        self.server = server
        self.control = control
        self.base_url = server.base_url
        self.settings: dict[str, Any] = {}
        self.clock: ClockControl = control.clock
        self.faults: FaultControl = control.faults
        self.journal: JournalControl = control.journal
        self.credits: CreditControl = control.credits
        self.rate_limits: RateLimitControl = control.rate_limits
        self.jobs: JobControl = control.jobs

    def __repr__(self) -> str:
        return f"MockHandle({self.base_url!r})"

    @property
    def urls(self) -> dict[str, str]:
        """Base URL per provider: ``{"segmind": ..., "seaart": ..., "pixazo": ...}``."""
        return self.control.urls

    def url(self, provider: str) -> str:
        """The base URL a client of ``provider`` should use against this mock: its origin
        plus the ``base_url_path`` of the provider's ``api.json`` (Segmind's ends in ``/v1``,
        as its SDK's ``base_url`` does; Pixazo's is the origin)."""
        urls = self.urls
        if provider not in urls:
            raise KeyError(unknown("provider", provider, list(urls)))
        return urls[provider]

    def __getattr__(self, name: str) -> str:
        """``<provider>_url`` for every contract folder (``segmind_url``, ``seaart_url``,
        ``pixazo_url``...): :meth:`url` of that provider."""
        provider = name.removesuffix("_url")
        if provider != name and provider in schemas.PROVIDERS:
            return self.url(provider)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def reset(
        self, *, scenario: Mapping[str, Any] | None = None, **settings: Any
    ) -> dict[str, Any]:
        """Reset to the session's settings plus ``settings``; returns the effective settings."""
        self.settings = self.control.reset(scenario=scenario, **settings)
        return self.settings

    def apply_marker(self, marker: Mapping[str, Any]) -> None:
        """Reset with a marker's settings and scenario, then add its fault rules and credits.
        An unknown name is a :class:`MarkerError` naming it and the names allowed."""
        options = dict(marker)
        faults = _faults(options.pop("faults", None))
        credits = _credits(options.pop("credits", None))
        scenario = _scenario(options.pop("scenario", None))
        strange = [name for name in options if name not in SETTINGS]
        if strange:  # a start-up setting is the server's to refuse, by its own message
            raise MarkerError(unknown("setting", strange, [*EXTRAS, *sorted(SETTABLE)], SETTINGS))
        self.reset(scenario=scenario, **options)
        if faults:
            self.faults.add_many(faults)
        if credits:
            _apply_credits(self.credits, credits)


def _scenario(value: Any) -> Mapping[str, Any] | None:
    """A marker's ``scenario=``: an object as it is, or a path read as ``--scenario`` reads
    it (relative to the working directory)."""
    if value is None or isinstance(value, Mapping):
        return value
    if isinstance(value, str | os.PathLike):
        if not os.fspath(value):
            raise MarkerError("scenario= is an empty path")
        return load_scenario(value)
    raise MarkerError(f"scenario takes a mapping or a file path, not {type(value).__name__}")


def _faults(value: Any) -> list[Any]:
    """A marker's ``faults=``: one rule or a list of them, as ``POST /_mock/faults`` takes."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise MarkerError(f"faults takes a rule or a list of rules, not {type(value).__name__}")


def _credits(value: Any) -> Mapping[str, Any] | None:
    """A marker's ``credits=``: ``{"default": n, "keys": {key: balance}}``."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MarkerError(
            f'credits takes {{"default": n, "keys": {{...}}}}, not {type(value).__name__}'
        )
    strange = [name for name in value if name not in ("default", "keys")]
    if strange:
        raise MarkerError(unknown("credits field", strange, ("default", "keys")))
    if not isinstance(value.get("keys") or {}, Mapping):
        raise MarkerError(
            f"credits keys takes a mapping of key to balance, not {type(value['keys']).__name__}"
        )
    return value


def _apply_credits(control: CreditControl, credits: Mapping[str, Any]) -> None:
    if credits.get("default") is not None:
        control.set_default(credits["default"])
    for key, balance in (credits.get("keys") or {}).items():
        control.set(key, balance)


def marker_options(node: pytest.Item) -> dict[str, Any]:
    """The keyword arguments of every ``nanobanana_mock`` marker on a test; the closest wins."""
    options: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers(MARKER))):
        if mark.args:
            raise MarkerError(f"@pytest.mark.{MARKER} takes keyword arguments only")
        options.update(mark.kwargs)
    return options


@pytest.fixture(scope="session")
def nanobanana_mock_config() -> MockConfig:
    """The session mock's settings; override this fixture to change them for a whole run."""
    return MockConfig(port=0, time_scale=0.0, self_check=True, processing_jitter=0.0, seed=0)


@pytest.fixture(scope="session")
def nanobanana_mock_server(nanobanana_mock_config: MockConfig) -> Iterator[MockServer]:
    """The running mock, shared by the session; stopped at its end."""
    with MockServer(nanobanana_mock_config) as server:
        yield server


@pytest.fixture
def nanobanana_mock(
    nanobanana_mock_server: MockServer, request: pytest.FixtureRequest
) -> MockHandle:
    """The session mock, reset for this test with its marker's settings."""
    assert nanobanana_mock_server.control is not None
    handle = MockHandle(nanobanana_mock_server, nanobanana_mock_server.control)
    try:
        handle.apply_marker(marker_options(request.node))
    except (MarkerError, ScenarioError, ControlError) as exc:
        problem = str(exc)
    else:
        return handle
    pytest.fail(f"@pytest.mark.{MARKER}: {problem}", pytrace=False)  # no traceback, no chain
