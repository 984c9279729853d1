"""The pytest plugin, as a user gets it: loaded from its entry point in a fresh pytest process."""

from __future__ import annotations

import pytest

from nanobanana_mock.config import MockConfig
from nanobanana_mock.control import pytest_plugin
from nanobanana_mock.control.pytest_plugin import MockServer

pytest_plugins = ["pytester"]

ARGS = (
    "-p",
    "no:cacheprovider",
    "--strict-markers",
    "-o",
    "asyncio_default_fixture_loop_scope=function",
)

COMMON = """
import json
import urllib.error
import urllib.request

import pytest
from segmind import SegmindClient
from segmind.exceptions import SegmindError

KEY = "SG_0123456789abcdef"
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def client(mock):
    return SegmindClient(api_key=KEY, base_url=mock.segmind_url, timeout=10)


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with DIRECT.open(request, timeout=10) as response:
        return response.status, json.loads(response.read())
"""

BASICS = """
SEEN = {}


def test_urls_work(nanobanana_mock):
    base = nanobanana_mock.base_url
    assert nanobanana_mock.urls == {
        "segmind": base + "/v1", "seaart": base + "/model", "pixazo": base, "gemini": base,
        "fal": base + "/fal/queue",
    }
    assert nanobanana_mock.segmind_url.endswith("/v1")
    assert nanobanana_mock.seaart_url.endswith("/model")
    assert get(nanobanana_mock.pixazo_url + "/_mock/health")[1]["ok"] is True
    for provider, url in nanobanana_mock.urls.items():  # one <provider>_url per contract
        assert getattr(nanobanana_mock, provider + "_url") == nanobanana_mock.url(provider) == url
    with pytest.raises(AttributeError, match="segmnd_url"):
        nanobanana_mock.segmnd_url
    with pytest.raises(KeyError, match="did you mean 'segmind'"):
        nanobanana_mock.url("segmnd")
    job = client(nanobanana_mock).submit_async("nano-banana", prompt="a banana")
    assert job.status()["status"] == "QUEUED"
    SEEN["server"] = base


def test_a_creates_a_job(nanobanana_mock):
    SEEN["job"] = client(nanobanana_mock).submit_async("nano-banana", prompt="x").request_id
    assert [job.id for job in nanobanana_mock.jobs.list()] == [SEEN["job"]]
    nanobanana_mock.clock.advance(5)


def test_b_starts_from_a_clean_mock(nanobanana_mock):
    from nanobanana_mock.control.client import ControlError

    assert nanobanana_mock.jobs.list() == []
    with pytest.raises(ControlError):
        nanobanana_mock.jobs.get(SEEN["job"])
    assert nanobanana_mock.clock.now() == 0.0
    assert nanobanana_mock.journal.count() == 0


@pytest.mark.nanobanana_mock(workers=1, queue_seconds=0, processing_seconds={"segmind/*": 5})
def test_marker_applies_settings(nanobanana_mock):
    assert nanobanana_mock.settings["workers"] == 1
    sdk = client(nanobanana_mock)
    first = sdk.submit_async("nano-banana", prompt="one").request_id
    second = sdk.submit_async("nano-banana", prompt="two").request_id
    assert nanobanana_mock.jobs.get(second).start_at == nanobanana_mock.jobs.get(first).end_at == 5


def test_settings_go_back_after_a_marked_test(nanobanana_mock):
    assert nanobanana_mock.control.settings()["workers"] == 4


def test_a_fault_fires(nanobanana_mock):
    nanobanana_mock.faults.http_error(429, provider="segmind", operation="submit", first=1)
    sdk = client(nanobanana_mock)
    with pytest.raises(SegmindError) as caught:
        sdk.submit_async("nano-banana", prompt="x")
    assert caught.value.status == 429
    job = sdk.submit_async("nano-banana", prompt="x")
    nanobanana_mock.clock.advance(60)
    assert job.status()["status"] == "COMPLETED"
    assert nanobanana_mock.journal.count(provider="segmind", operation="submit") == 2
    assert nanobanana_mock.journal.counts() == {"segmind.submit": 2, "segmind.status": 1}


@pytest.mark.asyncio
async def test_async_tests_can_use_it(nanobanana_mock):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        url = nanobanana_mock.base_url + "/v2/nano-banana"
        headers = {"x-api-key": KEY}
        async with session.post(url, json={"prompt": "x"}, headers=headers) as response:
            assert response.status == 200
    assert nanobanana_mock.clock.advance(1) == 1.0


def test_the_server_is_shared_by_the_session(nanobanana_mock, nanobanana_mock_server):
    assert nanobanana_mock.server is nanobanana_mock_server
    origin = nanobanana_mock_server.base_url
    assert SEEN["server"].startswith(origin + "/t/")  # a tenant of it per test
    assert nanobanana_mock.base_url.startswith(origin + "/t/")
    assert nanobanana_mock.base_url != SEEN["server"]
"""


OPTIONS = """
import pytest


@pytest.fixture(scope="session")
def nanobanana_mock_config():
    from nanobanana_mock.config import MockConfig

    return MockConfig(port=0, time_scale=0.0, self_check=True, workers=2, seed=5)
"""

MARKERS = """
def test_the_session_config_can_be_overridden(nanobanana_mock):
    assert nanobanana_mock.settings["workers"] == 2
    assert nanobanana_mock.settings["seed"] == 5


@pytest.mark.nanobanana_mock(faults=[{"id": "down", "effect": {"http_error": {"status": 503}}}])
def test_marker_faults(nanobanana_mock):
    with pytest.raises(SegmindError) as caught:
        client(nanobanana_mock).submit_async("nano-banana", prompt="x")
    assert caught.value.status == 503
    assert nanobanana_mock.journal.count(fault="down") == 1


@pytest.mark.nanobanana_mock(credits={"default": 0, "keys": {"rich": 50}})
def test_marker_credits(nanobanana_mock):
    assert nanobanana_mock.credits.get("rich") == 50
    with pytest.raises(SegmindError) as caught:
        client(nanobanana_mock).submit_async("nano-banana", prompt="x")
    assert caught.value.status == 406


@pytest.mark.nanobanana_mock(scenario={"rate_limits": [{"rpm": 1}]})
def test_marker_scenario(nanobanana_mock):
    assert nanobanana_mock.rate_limits.list()[0]["rpm"] == 1


@pytest.mark.nanobanana_mock(workers=3, queue_seconds=7)
class TestClassMarker:
    def test_class_settings(self, nanobanana_mock):
        assert nanobanana_mock.settings["workers"] == 3

    @pytest.mark.nanobanana_mock(workers=1)
    def test_the_closest_marker_wins(self, nanobanana_mock):
        settings = nanobanana_mock.settings
        assert (settings["workers"], settings["queue_seconds"]) == (1, 7)

    def test_handle_reset(self, nanobanana_mock):
        nanobanana_mock.clock.advance(3)
        assert nanobanana_mock.reset(workers=9)["workers"] == 9
        assert nanobanana_mock.clock.now() == 0.0


@pytest.mark.nanobanana_mock("positional")
def test_positional_marker_arguments_are_an_error(nanobanana_mock):
    pass


@pytest.mark.nanobanana_mock(workers=0)
def test_invalid_settings_are_an_error(nanobanana_mock):
    pass
"""


MISTAKES = """
import pytest


@pytest.mark.nanobanana_mock(wrokers=1)
def test_unknown_setting(nanobanana_mock):
    pass


@pytest.mark.nanobanana_mock(port=1)
def test_start_up_setting(nanobanana_mock):
    pass


SEGMND = {"match": {"provider": "segmnd"}, "effect": {"latency": {"fixed": 1}}}


@pytest.mark.nanobanana_mock(faults=[SEGMND])
def test_unknown_provider_in_a_rule(nanobanana_mock):
    pass


@pytest.mark.nanobanana_mock(processing_seconds={"segmind/nano-banan": 5})
def test_unknown_model_key(nanobanana_mock):
    pass


@pytest.mark.nanobanana_mock(scenario="scenarios/slow.yaml")
def test_scenario_path(nanobanana_mock):
    assert nanobanana_mock.settings["workers"] == 1
    assert [rule["id"] for rule in nanobanana_mock.faults.list()] == ["slow"]


@pytest.mark.nanobanana_mock(scenario="slow-queue")
def test_scenario_by_name(nanobanana_mock):
    assert nanobanana_mock.settings["queue_seconds"] == 5
    assert "congested-queue" in [rule["id"] for rule in nanobanana_mock.faults.list()]


@pytest.mark.nanobanana_mock(scenario="scenarios/bad.yaml")
def test_bad_scenario_path(nanobanana_mock):
    pass


ONE_RULE = {"id": "one", "match": {"operation": "submit"}, "effect": {"latency": {"fixed": 1}}}


@pytest.mark.nanobanana_mock(faults=ONE_RULE)
def test_one_rule_as_faults(nanobanana_mock):
    assert [rule["id"] for rule in nanobanana_mock.faults.list()] == ["one"]


@pytest.mark.nanobanana_mock(faults=5)
def test_faults_of_the_wrong_kind(nanobanana_mock):
    pass


@pytest.mark.nanobanana_mock(credits=5)
def test_credits_of_the_wrong_kind(nanobanana_mock):
    pass


@pytest.mark.nanobanana_mock(credits={"keys": ["k"]})
def test_credit_keys_of_the_wrong_kind(nanobanana_mock):
    pass


@pytest.mark.nanobanana_mock(scenario="")
def test_an_empty_scenario_path(nanobanana_mock):
    pass
"""

SLOW = """\
settings: {workers: 1}
faults:
  - id: slow
    match: {operation: submit}
    effect: {latency: {fixed: 1}}
"""


def test_marker_mistakes_are_named(pytester: pytest.Pytester) -> None:
    pytester.mkdir("scenarios")
    pytester.path.joinpath("scenarios", "slow.yaml").write_text(SLOW)
    pytester.path.joinpath("scenarios", "bad.yaml").write_text("settings: {sed: 1}\n")
    pytester.makepyfile(test_mistakes=MISTAKES)
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=3, errors=9)
    result.stdout.fnmatch_lines(
        [
            "*test_unknown_setting*",
            "*nanobanana_mock: unknown setting 'wrokers' (did you mean 'workers'?); allowed: "
            "scenario, faults, credits, api_keys,*",
        ]
    )
    result.stdout.fnmatch_lines(["*cannot change port on reset (start-up settings)*"])
    result.stdout.fnmatch_lines(
        [
            "*match.provider: 'segmnd' is not one of segmind, seaart, pixazo, gemini, fal "
            "(did you mean*"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*processing_seconds: unknown key 'segmind/nano-banan' "
            "(did you mean 'segmind/nano-banana'?)*"
        ]
    )
    result.stdout.fnmatch_lines(
        ["*scenarios/bad.yaml:1:12: settings.sed: unknown key (did you mean 'seed'?)*"]
    )
    # a marker value of the wrong shape is named, not a TypeError from the plugin's insides
    result.stdout.fnmatch_lines(
        ["*nanobanana_mock: faults takes a rule or a list of rules, not int"]
    )
    result.stdout.fnmatch_lines(['*nanobanana_mock: credits takes {"default": n, "keys": {...}}*'])
    result.stdout.fnmatch_lines(["*credits keys takes a mapping of key to balance, not list"])
    result.stdout.fnmatch_lines(["*nanobanana_mock: scenario= is an empty path"])
    assert "Traceback" not in result.stdout.str()
    assert "Error: '" not in result.stdout.str()  # TypeError: 'int' object is not iterable
    assert "cannot change wrokers" not in result.stdout.str()


def test_public_api_is_pinned() -> None:
    assert pytest_plugin.__all__ == [
        "MARKER",
        "MockHandle",
        "MockServer",
        "TenantControl",
        "nanobanana_mock",
        "nanobanana_mock_config",
        "nanobanana_mock_server",
    ]


def test_a_server_that_cannot_listen_says_why(nanobanana_mock_server: MockServer) -> None:
    port = int(nanobanana_mock_server.base_url.rsplit(":", 1)[1])
    server = MockServer(MockConfig(port=port))
    with pytest.raises(RuntimeError, match="did not start"):
        server.start()
    server.stop()  # nothing to stop: a no-op


def test_fixtures_reset_mark_fault_clock_and_journal(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_basics=COMMON + BASICS)
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=8)


def test_config_override_and_marker_options(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(OPTIONS)
    pytester.makepyfile(test_markers=COMMON + MARKERS)
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=7, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_positional_marker_arguments_are_an_error*",
            "*keyword arguments only*",
        ]
    )
    result.stdout.fnmatch_lines(["*ERROR at setup of test_invalid_settings_are_an_error*"])


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.nanobanana_mock(**settings, scenario=None*"])
