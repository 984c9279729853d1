"""A live run stops before its first request unless it has the opt-in, a cap, the key and an
estimate within the cap; a dry run prints the plan and sends nothing. No test here reaches
the network: the base URL is a closed loopback port, and target creation is made to fail."""

from __future__ import annotations

import re

import pytest

from nanobanana_mock.conformance.exchange import Http
from nanobanana_mock.conformance.target import LiveTarget

from .conftest import Runner, assert_plain

LIVE = ("--target", "live", "--provider", "seaart")
KEY_VARIABLES = ("SEAART_API_KEY", "SEACLOUD_API_KEY")
USAGE = 4


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A live target or an HTTP call would fail the run with a tool error (exit 3)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the live target was reached")

    monkeypatch.setattr(LiveTarget, "from_environment", classmethod(refuse))
    monkeypatch.setattr(Http, "call", refuse)


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEAART_API_KEY", "sk-fake-key")


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _estimate(output: str) -> float:
    match = re.search(r"total\s+\d+ paid checks, estimated \$([0-9.]+)", output)
    assert match, output
    return float(match.group(1))


@pytest.mark.usefixtures("key", "no_network")
def test_live_without_accept_charges_is_refused(run_suite: Runner, closed_port: int) -> None:
    run = run_suite(*LIVE, "--max-spend", "5", "--base-url", f"http://127.0.0.1:{closed_port}")
    assert run.code == USAGE
    assert_plain(run.output)
    assert (
        "ERROR: refusing to run live: --accept-charges is required: "
        "a live run is charged to your account" in run.output.splitlines()
    )
    assert not run.report_dir.exists()


@pytest.mark.usefixtures("key", "no_network")
def test_live_without_max_spend_is_refused(run_suite: Runner, closed_port: int) -> None:
    run = run_suite(*LIVE, "--accept-charges", "--base-url", f"http://127.0.0.1:{closed_port}")
    assert run.code == USAGE
    assert_plain(run.output)
    assert "--max-spend USD is required" in run.output


@pytest.mark.usefixtures("no_key", "no_network")
def test_live_without_the_key_is_refused_naming_its_variable(run_suite: Runner) -> None:
    run = run_suite(*LIVE, "--accept-charges", "--max-spend", "5")
    assert run.code == USAGE
    assert "seaart: no API key; set SEAART_API_KEY" in run.output


@pytest.mark.usefixtures("key", "no_network")
def test_a_dry_run_prints_the_plan_and_sends_nothing(run_suite: Runner, closed_port: int) -> None:
    base = f"http://127.0.0.1:{closed_port}"
    run = run_suite(*LIVE, "--accept-charges", "--max-spend", "5", "--base-url", base, "--dry-run")
    assert run.code == 0, run.output
    assert "conformance plan, target live" in run.output
    assert re.search(r"seaart\s+\d+ free,\s+\d+ paid checks, estimated \$", run.output)
    assert 0 < _estimate(run.output) <= 5
    assert "dry run: no request was sent" in run.output
    assert "Cannot connect" not in run.output
    assert "refused" not in run.output
    assert_plain(run.output)
    assert not run.report_dir.exists()


@pytest.mark.usefixtures("no_key", "no_network")
def test_a_dry_run_needs_no_opt_in_cap_or_key(run_suite: Runner) -> None:
    """A dry run spends nothing: it prints the plan, and what a real run would still need."""
    run = run_suite(*LIVE, "--dry-run")
    assert run.code == 0, run.output
    assert_plain(run.output)
    assert "conformance plan, target live:" in run.output
    assert _estimate(run.output) > 0
    lines = run.output.splitlines()
    for need in (
        "--accept-charges is required: a live run is charged to your account",
        "--max-spend USD is required: the most this run may spend",
        "seaart: no API key; set SEAART_API_KEY or SEACLOUD_API_KEY",
    ):
        assert f"a live run would be refused: {need}" in lines
    assert "dry run: no request was sent" in lines
    assert not run.report_dir.exists()


@pytest.mark.usefixtures("key", "no_network")
def test_a_dry_run_says_when_the_cap_is_below_the_estimate(run_suite: Runner) -> None:
    run = run_suite(*LIVE, "--accept-charges", "--max-spend", "0.01", "--dry-run")
    assert run.code == 0, run.output
    estimate = _estimate(run.output)
    refused = f"a live run would be refused: the estimated spend ${estimate:.3f} exceeds"
    assert refused in run.output


@pytest.mark.usefixtures("key", "no_network")
def test_a_cap_below_the_estimate_is_refused(run_suite: Runner, closed_port: int) -> None:
    base = ("--accept-charges", "--base-url", f"http://127.0.0.1:{closed_port}")
    estimate = _estimate(run_suite(*LIVE, *base, "--max-spend", "5", "--dry-run").output)
    run = run_suite(*LIVE, *base, "--max-spend", f"{estimate - 0.01:.2f}")
    assert run.code == USAGE
    assert f"the estimated spend ${estimate:.3f} exceeds --max-spend" in run.output


@pytest.mark.usefixtures("key")
def test_an_unreachable_live_target_is_a_tool_error(run_suite: Runner, closed_port: int) -> None:
    """With everything given, the run starts; a closed port answers nothing: exit 3, and no
    contract finding is made up."""
    base = f"http://127.0.0.1:{closed_port}"
    args = (*LIVE, "--accept-charges", "--max-spend", "5", "--base-url", base)
    run = run_suite(*args, "--", "-k", "without_a_valid_key")
    assert run.code == 3, run.output
    assert run.report["findings"] == []
    assert "tool error" in run.output
    assert "verdict: TOOL ERROR: 4 checks could not judge the target" in run.output
    assert "conformant" not in run.output and run.report["verdict"].startswith("TOOL ERROR")


def test_a_scenario_is_for_the_mock_only(run_suite: Runner) -> None:
    run = run_suite(*LIVE, "--scenario", "whatever.json", "--dry-run")
    assert run.code == USAGE
    assert_plain(run.output)
    assert "ERROR: --scenario applies to the mock target only" in run.output
