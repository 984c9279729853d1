"""pytest plugin: one mock for the session (for every xdist worker), a tenant of it per test.

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

Each test gets a tenant of its own (``/t/<tenant>/`` before every path), reset with the
session's settings and its marker's: its URLs, ``base_url`` and control client carry the
prefix, so the SDK clients built from them land in it, and no test sees another's jobs,
clock, rules, credits, limits or journal. ``--nanobanana-mock-tenant=worker`` gives each
process one tenant instead, reset before every test (without xdist, that is the mock's
default tenant: no prefix).

Under ``pytest -n N`` (pytest-xdist) the controller starts ONE mock (in a thread of its own
process, on a free loopback port) when it starts its workers, hands its URL to them
(``workerinput``) and stops it at its end; the workers' tests each use their own tenant of it.
``--nanobanana-mock-url URL`` (or the ``nanobanana_mock_url`` ini value) uses a mock that is
already running instead (e.g. a team's), with or without xdist; each run's tenant names then
begin with a random run id, so two runs against it never meet.

``scenario=`` takes a scenario object, or a file path read exactly as ``--scenario`` reads
it. A marker the mock cannot use (an unknown setting name, a bad value, a scenario file with
a problem) errors the test at setup with the problem named, and no traceback.

Session-wide settings come from overriding the ``nanobanana_mock_config`` fixture in a
``conftest.py``: on a shared mock they are sent with every reset of a test's tenant (a
start-up setting such as ``control_token`` that the shared mock lacks makes that worker start
a mock of its own, as without xdist). The server runs in a daemon thread with its own event
loop, so sync tests, async tests and threads of the code under test can all talk to it; its
clock is frozen (``time_scale=0``) and moves only when a test advances it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import secrets
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from nanobanana_mock import schemas

from ..config import MockConfig
from ..names import unknown
from ..scenario import ScenarioError, load_scenario
from ..scenario_files import UnknownScenario
from .api import SETTABLE

if TYPE_CHECKING:
    from ..server import Served
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
    "TenantControl",
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
URL_OPTION = "nanobanana_mock_url"  # option dest, ini name and workerinput key
TENANT_OPTION = "nanobanana_mock_tenant"
RUN_KEY = "nanobanana_mock_run"  # workerinput: the run id of tenant names on a mock elsewhere
TENANT_MODES = ("test", "worker")
MAIN = "main"  # the "worker id" of a run without xdist


def default_config() -> MockConfig:
    """The settings of the plugin's mock unless a ``conftest.py`` overrides
    ``nanobanana_mock_config``: a free loopback port, a frozen clock, exact timings,
    self-check on."""
    return MockConfig(port=0, time_scale=0.0, self_check=True, processing_jitter=0.0, seed=0)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nanobanana-mock")
    url_help = (
        "use the nanobanana mock already running at this origin (http://host:port) instead "
        "of starting one; every test (every xdist worker's) gets its own tenant of it"
    )
    group.addoption("--nanobanana-mock-url", dest=URL_OPTION, metavar="URL", help=url_help)
    parser.addini(URL_OPTION, url_help, default="")
    tenant_help = (
        "a tenant of the mock for each test (default) or for each worker process, reset "
        "before every test (without xdist: the default tenant)"
    )
    group.addoption(
        "--nanobanana-mock-tenant", dest=TENANT_OPTION, choices=TENANT_MODES, help=tenant_help
    )
    parser.addini(TENANT_OPTION, tenant_help, default="test")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    url = _option_url(config)  # a bad URL or mode is a usage error, before any worker starts
    _tenant_mode(config)
    if not hasattr(config, "workerinput"):  # the xdist controller, or a run without xdist
        config.pluginmanager.register(SharedMock(config, url), "nanobanana-mock-shared")


class SharedMock:
    """The xdist controller's part: ONE mock for every worker, started when the first worker
    is set up (so a run without workers starts none) and stopped at the controller's end."""

    def __init__(self, config: pytest.Config, url: str | None) -> None:
        self.config = config
        self.url = url  # a mock elsewhere (--nanobanana-mock-url), or the one started here
        self.run = secrets.token_hex(3)  # this run's id, in tenant names on a mock elsewhere
        self.server: MockServer | None = None

    @pytest.hookimpl(optionalhook=True)  # an xdist hook: no error where xdist is absent
    def pytest_configure_node(self, node: Any) -> None:
        if self.url is None:
            self.server = MockServer(default_config()).start()
            self.config.add_cleanup(self.server.stop)
            self.url = self.server.base_url
        node.workerinput[URL_OPTION] = self.url
        node.workerinput[RUN_KEY] = self.run


def _option_url(config: pytest.Config) -> str | None:
    """``--nanobanana-mock-url`` (or its ini value) as an origin, or None."""
    value = config.getoption(URL_OPTION) or str(config.getini(URL_OPTION) or "")
    return origin_of(value) if value else None


def origin_of(value: str) -> str:
    """A mock's URL as its origin (``scheme://host:port``), or a usage error saying why not."""
    parts = urllib.parse.urlsplit(value.strip())
    try:
        parts.port  # noqa: B018 (a port that is no number raises here)
    except ValueError:
        parts = parts._replace(scheme="")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path.strip("/")
        or parts.query
        or parts.fragment
    ):
        raise pytest.UsageError(
            f"--nanobanana-mock-url takes a mock's origin, http://host:port, not {value!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _tenant_mode(config: pytest.Config) -> str:
    mode = config.getoption(TENANT_OPTION) or str(config.getini(TENANT_OPTION) or "test")
    if mode not in TENANT_MODES:
        raise pytest.UsageError(f"{TENANT_OPTION} is {' or '.join(TENANT_MODES)}, not {mode!r}")
    return mode


class MockServer:
    """A mock serving from a daemon thread with its own event loop; a context manager.
    Without ``config``, the default settings on a free loopback port (``MockConfig(port=0)``).

    With ``url`` (an origin), the mock already serving there instead: nothing is started or
    stopped, and ``config`` is the settings its tenants should have. ``started_with`` is the
    settings that mock was started with, when known: a reset of a tenant (:meth:`control`)
    then sends only the settable ones that differ; unknown, it sends them all."""

    def __init__(
        self,
        config: MockConfig | None = None,
        *,
        url: str | None = None,
        started_with: MockConfig | None = None,
    ) -> None:
        self.config = config if config is not None else MockConfig(port=0)
        self.url = url.rstrip("/") if url is not None else None
        self.base_url = ""
        self.control: MockControl | None = None
        base = started_with if url is not None else self.config
        self.overrides: dict[str, Any] = _overrides(self.config, base)
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
        if self.url is not None:  # serving elsewhere: only check that it answers
            self.base_url = self.url
            self.control = MockControl(self.base_url, token=self.config.control_token)
            try:
                self.control.health()
            except ControlError as exc:
                raise RuntimeError(f"the mock at {self.url} does not answer: {exc}") from None
            return self
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
        from ..app import create_app  # the mock itself: only where one is started (not in
        from ..server import serve_app  # an xdist worker of a shared one)

        self._served = await serve_app(create_app(self.config), self.config)
        self.base_url = self._served.base_url

    def tenant(self, name: str) -> TenantControl:
        """The control plane of tenant ``name`` of this mock (``""``: the default tenant), whose
        reset gives it this server's :attr:`config` (plus the settings a reset is given)."""
        if not self.base_url:
            raise RuntimeError("the mock is not started")
        assert self.control is not None
        base = self.base_url + (f"/t/{name}" if name else "")
        urls = {p: base + url[len(self.base_url) :] for p, url in self.control.urls.items()}
        token = self.config.control_token
        return TenantControl(
            self.base_url, token=token, overrides=self.overrides, urls=urls, tenant=name
        )


def _overrides(config: MockConfig, base: MockConfig | None) -> dict[str, Any]:
    """The settable settings of ``config`` that differ from ``base`` (all of them if None)."""
    return {
        name: getattr(config, name)
        for name in sorted(SETTABLE)
        if base is None or getattr(config, name) != getattr(base, name)
    }


def _startup_differences(config: MockConfig, base: MockConfig) -> list[str]:
    """The start-up settings (those a reset cannot change) in which ``config`` differs from
    ``base``, the port aside (a free one either way)."""
    return [
        f.name
        for f in dataclasses.fields(MockConfig)
        if f.name not in SETTABLE
        and f.name != "port"
        and getattr(config, f.name) != getattr(base, f.name)
    ]


class TenantControl(MockControl):
    """The control plane of one tenant of the mock at ``base_url`` (its origin), whose
    :meth:`reset` starts from the session's settings, not the shared mock's start-up ones:
    ``overrides`` go with every reset, below a scenario's settings and the reset's own.
    ``urls``, if given, are the tenant's provider base URLs (else asked of the tenant)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        urls: Mapping[str, str] | None = None,
        *,
        tenant: str | None = None,
    ) -> None:
        super().__init__(base_url, token=token, tenant=tenant)
        self.overrides = dict(overrides or {})
        if urls is not None:  # known already (the origin's, prefixed): no request to ask
            self._urls = dict(urls)

    def reset(
        self,
        *,
        scenario: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        if self.overrides:
            own = _scenario_settings(scenario)  # a scenario's settings win over the session's
            settings = {
                **{k: v for k, v in self.overrides.items() if k not in own},
                **settings,
            }
        return super().reset(scenario=scenario, **settings)


def _scenario_settings(scenario: Mapping[str, Any] | str | os.PathLike[str] | None) -> set[str]:
    """The setting names a scenario sets (a file that cannot be read sets none here: the
    mock names its problem)."""
    if isinstance(scenario, str | os.PathLike):
        try:
            scenario = load_scenario(scenario)
        except (ScenarioError, UnknownScenario, OSError, ValueError):
            return set()
    settings = (scenario or {}).get("settings")
    return set(settings) if isinstance(settings, Mapping) else set()


class MockHandle:
    """What a test gets: the provider URLs and every part of the control plane, of its own
    tenant of the mock (``base_url`` is the mock's origin plus the tenant's prefix)."""

    def __init__(self, server: MockServer, control: MockControl) -> None:
        self.server = server
        self.control = control
        tenant = getattr(control, "tenant_name", None)  # the tenant's prefix, if any
        self.base_url = control.base_url + (f"/t/{tenant}" if tenant else "")
        self.settings: dict[str, Any] = {}
        self.clock: ClockControl = control.clock
        self.faults: FaultControl = control.faults
        self.journal: JournalControl = control.journal
        self.credits: CreditControl = control.credits
        self.rate_limits: RateLimitControl = control.rate_limits
        self.jobs: JobControl = control.jobs
        # this test's client resilience scorecard (``.assert_clean()`` in a test)
        self.scorecard = control.scorecard

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
    return default_config()


@pytest.fixture(scope="session")
def nanobanana_mock_server(
    nanobanana_mock_config: MockConfig, pytestconfig: pytest.Config
) -> Iterator[MockServer]:
    """The running mock, shared by the session (by every xdist worker: the controller's, or
    ``--nanobanana-mock-url``'s); one started here is stopped at the session's end."""
    config = nanobanana_mock_config
    url = _option_url(pytestconfig)
    started_with: MockConfig | None = None  # a mock elsewhere: its settings are unknown
    if url is None:
        url = getattr(pytestconfig, "workerinput", {}).get(URL_OPTION)
        started_with = default_config()  # the xdist controller's mock
        if url is not None and _startup_differences(config, started_with):
            url = None  # settings only a mock of this worker's own can have
    if url is None:
        with MockServer(config) as server:
            yield server
    else:
        try:
            server = MockServer(config, url=url, started_with=started_with).start()
        except RuntimeError as exc:
            problem = str(exc)
        else:
            yield server
            return
        pytest.fail(problem, pytrace=False)  # every test using it errors with this line


def tenant_name(config: pytest.Config, nodeid: str | None) -> str:
    """The tenant of a test (``nodeid``) or of this worker (None): the xdist worker id
    (``main`` without xdist), a short hash of the test's id, and on a mock given by
    ``--nanobanana-mock-url``, first, the run's id; ``""`` (the default tenant) for the one
    process of a run without xdist that has its own mock and a tenant per worker."""
    workerinput = getattr(config, "workerinput", None)
    worker = str(workerinput["workerid"]) if workerinput is not None else MAIN
    parts = [worker]
    if _option_url(config) is not None:
        run = workerinput.get(RUN_KEY) if workerinput is not None else None
        parts.insert(0, str(run or _own_run(config)))
    if nodeid is not None:
        parts.append(hashlib.sha1(nodeid.encode()).hexdigest()[:10])
    elif workerinput is None and _option_url(config) is None:
        return ""
    return "-".join(parts)


def _own_run(config: pytest.Config) -> str:
    shared = config.pluginmanager.get_plugin("nanobanana-mock-shared")
    return shared.run if isinstance(shared, SharedMock) else "run"


@pytest.fixture
def nanobanana_mock(
    nanobanana_mock_server: MockServer, request: pytest.FixtureRequest
) -> MockHandle:
    """This test's tenant of the session mock, reset with the session's settings and its
    marker's."""
    per_test = _tenant_mode(request.config) == "test"
    tenant = tenant_name(request.config, request.node.nodeid if per_test else None)
    if not tenant:  # the default tenant of this process's own mock
        assert nanobanana_mock_server.control is not None
        handle = MockHandle(nanobanana_mock_server, nanobanana_mock_server.control)
    else:
        handle = MockHandle(nanobanana_mock_server, nanobanana_mock_server.tenant(tenant))
    try:
        handle.apply_marker(marker_options(request.node))
    except (MarkerError, ScenarioError, ControlError) as exc:
        problem = str(exc)
    else:
        return handle
    pytest.fail(f"@pytest.mark.{MARKER}: {problem}", pytrace=False)  # no traceback, no chain
