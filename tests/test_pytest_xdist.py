"""The pytest plugin under pytest-xdist: ONE mock for every worker, a tenant of it per test.

Each run is a fresh pytest process (pytester) with ``-n``; every test of it records, from an
autouse fixture, its worker's pid, the mock's origin, its own base URL and the tenant the mock
says served it (``/_mock/health``), so the outer test can count servers and tenants."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from pathlib import Path

import pytest

from nanobanana_mock.control.api import SETTABLE
from nanobanana_mock.control.client import ControlError, MockControl
from nanobanana_mock.control.pytest_plugin import MockServer, default_config, origin_of
from tests.test_pytest_plugin import ARGS, BASICS, COMMON, MARKERS, OPTIONS

pytest_plugins = ["pytester"]

README = Path(__file__).parents[1] / "README.md"
PLUGIN_EXAMPLE = re.compile(
    r"<!-- readme-test:start -->\s*```python\n(.*?)```\s*<!-- readme-test:end -->", re.S
)

RECORD = """
import os
import pathlib

import pytest


@pytest.fixture(autouse=True)
def record_the_mock(request):
    # one line per test: worker pid, the mock's origin, the test's base URL, its tenant
    if "nanobanana_mock" not in request.fixturenames:
        return
    mock = request.getfixturevalue("nanobanana_mock")
    tenant = mock.control.health().get("tenant")
    line = f"{os.getpid()} {mock.server.base_url} {mock.base_url} {tenant}\\n"
    folder = pathlib.Path(os.environ["NANOBANANA_RECORDS"])
    with open(folder / f"{os.getpid()}.txt", "a") as out:
        out.write(line)
"""

# Tests that collide on one shared state: each sets a rule, submits, advances the clock by its
# own amount, and expects to see only its own rule, job, journal and time.
COLLIDE = """
from nanobanana_mock import schemas

STATUS = schemas.validator("segmind", "status", exact_integers=True)


@pytest.mark.parametrize("n", range(OFFSET, OFFSET + 4))
def test_tenants_do_not_collide(nanobanana_mock, n):
    rule = nanobanana_mock.faults.http_error(
        503, provider="segmind", operation="submit", first=1, id=f"down-{n}"
    )
    sdk = client(nanobanana_mock)
    with pytest.raises(SegmindError) as caught:
        sdk.submit_async("nano-banana", prompt=f"test {n}")
    assert caught.value.status == 503
    job = sdk.submit_async("nano-banana", prompt=f"test {n}")
    assert nanobanana_mock.clock.advance(n + 1) == n + 1
    status = job.status()
    assert not list(STATUS.iter_errors(status)), status
    assert [r["id"] for r in nanobanana_mock.faults.list()] == [rule]
    assert [j.id for j in nanobanana_mock.jobs.list()] == [job.request_id]
    assert nanobanana_mock.journal.counts() == {"segmind.submit": 2, "segmind.status": 1}
    assert nanobanana_mock.journal.count(fault=rule) == 1
    assert nanobanana_mock.clock.now() == n + 1
    assert nanobanana_mock.control.health()["violations"] == []
"""


def collide_files() -> dict[str, str]:
    """COLLIDE in four files of four tests: ``--dist loadfile`` runs them on four workers at
    once (and each of BASICS's files on one worker, in order, as its SEEN needs)."""
    return {f"test_collide_{i}": COMMON + f"OFFSET = {4 * i}\n" + COLLIDE for i in range(4)}


def records(folder: Path) -> list[tuple[str, str, str, str]]:
    lines = [line for path in folder.glob("*.txt") for line in path.read_text().splitlines()]
    return [tuple(line.split(" ")) for line in lines]  # type: ignore[misc]


@pytest.fixture
def folder(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the run's tests record what they saw (an environment variable tells them)."""
    path = pytester.path / "records"
    path.mkdir()
    monkeypatch.setenv("NANOBANANA_RECORDS", str(path))
    return path


def readme_example() -> str:
    (code,) = PLUGIN_EXAMPLE.findall(README.read_text(encoding="utf-8"))
    return code


def test_every_worker_shares_one_mock_and_no_test_sees_another(
    pytester: pytest.Pytester, folder: Path
) -> None:
    pytester.makeconftest(RECORD)
    pytester.makepyfile(
        test_basics=COMMON + BASICS,
        test_readme_example=readme_example(),
        **collide_files(),
    )
    result = pytester.runpytest_subprocess(*ARGS, "-n", "4", "--dist", "loadfile")
    result.assert_outcomes(passed=8 + 1 + 16)
    seen = records(folder)
    assert len(seen) == 8 + 1 + 16
    pids = {pid for pid, _, _, _ in seen}
    origins = {origin for _, origin, _, _ in seen}
    assert len(pids) >= 2, seen  # the tests ran in several worker processes...
    assert len(origins) == 1, origins  # ...against ONE mock
    (origin,) = origins
    tenants = [tenant for _, _, _, tenant in seen]
    assert len(set(tenants)) == len(seen)  # a tenant per test
    for _, _, base_url, tenant in seen:
        assert re.fullmatch(r"gw[0-3]-[0-9a-f]{10}", tenant), tenant
        assert base_url == f"{origin}/t/{tenant}"  # where the SDKs' requests went
    with pytest.raises(ControlError) as caught:  # the controller stopped it at its end
        MockControl(origin, timeout=2).health()
    assert caught.value.status == 0


def test_the_session_config_and_markers_apply_to_each_tenant(
    pytester: pytest.Pytester, folder: Path
) -> None:
    pytester.makeconftest(OPTIONS + RECORD)  # workers=2, seed=5: sent with every reset
    pytester.makepyfile(test_markers=COMMON + MARKERS)
    result = pytester.runpytest_subprocess(*ARGS, "-n", "2")
    result.assert_outcomes(passed=7, errors=2)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_positional_marker_arguments*"])
    assert len({origin for _, origin, _, _ in records(folder)}) == 1


TOKEN_CONFIG = """
@pytest.fixture(scope="session")
def nanobanana_mock_config():
    from nanobanana_mock.config import MockConfig

    return MockConfig(port=0, time_scale=0.0, control_token="s3cret")
"""

TOKEN_TESTS = """
def test_one(nanobanana_mock):
    assert nanobanana_mock.control.token == "s3cret"
    assert nanobanana_mock.clock.advance(1) == 1.0


def test_two(nanobanana_mock):
    assert nanobanana_mock.clock.advance(2) == 2.0
"""


def test_a_start_up_setting_gives_a_worker_a_mock_of_its_own(
    pytester: pytest.Pytester, folder: Path
) -> None:
    """A control token is a start-up setting the shared mock lacks: each worker starts its
    own mock, as without xdist (still a tenant per test)."""
    pytester.makeconftest(RECORD + TOKEN_CONFIG)
    pytester.makepyfile(test_token=TOKEN_TESTS)
    result = pytester.runpytest_subprocess(*ARGS, "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=4)
    seen = records(folder)
    by_pid: dict[str, set[str]] = {}
    for pid, origin, _, _ in seen:
        by_pid.setdefault(pid, set()).add(origin)
    assert len(by_pid) == 2 and all(len(origins) == 1 for origins in by_pid.values())
    assert len({origin for _, origin, _, _ in seen}) == 2


def test_a_mock_already_running_is_used_by_url(pytester: pytest.Pytester, folder: Path) -> None:
    """``--nanobanana-mock-url``: no mock is started; every tenant's name begins with the
    run's id, so a second run (or another CI job) against the same mock meets none of them;
    the mock is left running. The second run, without xdist, asks for a tenant per worker
    (here: the one process, ``<run>-main``), reset before every test."""
    pytester.makeconftest(RECORD)
    pytester.makepyfile(**collide_files())
    with MockServer(default_config()) as server:
        option = f"--nanobanana-mock-url={server.base_url}/"
        runs = []
        for extra in (("-n", "2"), ("--nanobanana-mock-tenant=worker",)):
            result = pytester.runpytest_subprocess(*ARGS, option, *extra)
            result.assert_outcomes(passed=16)
            seen = records(folder)
            assert {origin for _, origin, _, _ in seen} == {server.base_url}
            runs.append([tenant for _, _, _, tenant in seen])
            for path in folder.iterdir():
                path.unlink()
        xdist_run, worker_run = runs
        assert len(set(xdist_run)) == 16
        assert all(re.fullmatch(r"[0-9a-f]{6}-gw[01]-[0-9a-f]{10}", t) for t in xdist_run)
        (one,) = set(worker_run)
        assert re.fullmatch(r"[0-9a-f]{6}-main", one) and one[:6] != xdist_run[0][:6]
        assert server.control is not None and server.control.health()["ok"] is True


@pytest.mark.parametrize(
    "value",
    ["ftp://127.0.0.1:1", "http://127.0.0.1:1/t/x", "127.0.0.1:1", "http://h:1/?a=1", "http://h:x"],
)
def test_a_url_that_is_not_an_origin_is_refused(value: str) -> None:
    with pytest.raises(pytest.UsageError, match="takes a mock's origin, http://host:port"):
        origin_of(value)
    assert origin_of("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"


def test_a_mock_url_that_does_not_answer_errors_the_tests(pytester: pytest.Pytester) -> None:
    """One run, two mistakes: a bad --nanobanana-mock-url is a usage error before any test;
    a good one where nothing answers errors each test with one line."""
    result = pytester.runpytest_subprocess(*ARGS, "--nanobanana-mock-url=127.0.0.1:1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--nanobanana-mock-url takes a mock's origin*"])
    pytester.makepyfile("def test_x(nanobanana_mock):\n    pass\n")
    dead = urllib.parse.urlunsplit(("http", "127.0.0.1:9", "", "", ""))
    result = pytester.runpytest_subprocess(*ARGS, f"--nanobanana-mock-url={dead}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the mock at http://127.0.0.1:9 does not answer*"])
    assert "Traceback" not in result.stdout.str()


def test_a_tenant_reset_starts_from_the_session_settings_below_a_scenario(
    nanobanana_mock_server: MockServer, tmp_path: Path
) -> None:
    """A shared mock started with other settings: each reset of a tenant sends the session's
    settable ones that differ; a scenario's settings win over them, the reset's own over
    both (as a scenario's win over the start-up settings of a mock of one's own)."""
    session = dataclasses.replace(default_config(), workers=2, queue_seconds=7)
    origin = nanobanana_mock_server.base_url
    server = MockServer(session, url=origin, started_with=default_config()).start()
    assert server.overrides == {"queue_seconds": 7, "workers": 2}
    control = server.tenant("precedence")
    assert (control.base_url, control.tenant_name) == (origin, "precedence")
    assert control.urls["segmind"] == origin + "/t/precedence/v1"
    assert control.reset()["workers"] == 2
    settings = control.reset(scenario={"settings": {"workers": 1}})
    assert (settings["workers"], settings["queue_seconds"]) == (1, 7)
    path = tmp_path / "one.yaml"
    path.write_text("settings: {workers: 1}\n")
    settings = control.reset(scenario=path)
    assert (settings["workers"], settings["queue_seconds"]) == (1, 7)
    assert control.reset(scenario={"settings": {"workers": 1}}, workers=3)["workers"] == 3
    everything = MockServer(session, url=origin).start()  # its start-up settings unknown
    assert set(everything.overrides) == set(SETTABLE)
    assert everything.tenant("all").reset()["queue_seconds"] == 7
