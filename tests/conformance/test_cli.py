"""The runner: its pytest command line and its exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nanobanana_mock.conformance import cli

from .conftest import SCENARIOS, Runner

PAID = {"test_examples", "test_lifecycle", "test_cancel"}


def test_pytest_args_carry_every_option() -> None:
    options = cli.build_parser().parse_args(
        [
            *("--provider", "seaart", "--target", "live", "--max-spend", "0.5"),
            *("--accept-charges", "--base-url", "http://x", "--scenario", "s.json"),
            *("--dry-run", "--report-dir", "d"),
        ]
    )
    args = cli.pytest_args(options, ["-k", "auth"])
    assert args[0] == str(cli.SUITE)
    assert args[-2:] == ["-k", "auth"]
    joined = " ".join(args)
    for part in (
        "--provider seaart",
        "--target live",
        "--max-spend 0.5",
        "--base-url http://x",
        "--scenario s.json",
        "--report-dir d",
        "--accept-charges",
        "--dry-run",
    ):
        assert part in joined


def test_exit_0_when_conformant(run_suite: Runner) -> None:
    assert run_suite("--provider", "pixazo").code == 0


def test_exit_1_when_breaking_drift_is_found(run_suite: Runner) -> None:
    scenario = SCENARIOS / "pixazo-width-as-string.json"
    assert run_suite("--provider", "pixazo", "--scenario", str(scenario)).code == 1


def test_exit_4_on_usage_errors(run_suite: Runner, tmp_path: Path) -> None:
    assert run_suite("--target", "nowhere").code == 4
    unknown = run_suite("--provider", "nobody")
    assert unknown.code == 4 and "unknown provider(s) nobody" in unknown.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"faults": [{"effect": {"drift": {"explode": true}}}]}')
    bad = run_suite("--scenario", str(broken))
    assert bad.code == 4 and "--scenario" in bad.output


def test_exit_5_when_nothing_is_selected(run_suite: Runner) -> None:
    assert run_suite("--provider", "pixazo", "--", "-k", "no_such_check").code == 5


def test_help_is_exit_0(run_suite: Runner) -> None:
    run = run_suite("--help")
    assert run.code == 0 and "Exit status: 0 conformant, 1 breaking drift" in run.output


def test_free_checks_are_collected_first(run_suite: Runner) -> None:
    run = run_suite("--provider", "seaart", "--", "--collect-only")  # -q comes from the ini
    assert run.code == 0, run.output
    files = [line.split("::")[0] for line in run.output.splitlines() if "::" in line]
    kinds = ["paid" if Path(f).stem in PAID else "free" for f in files]
    assert kinds == sorted(kinds, key=lambda kind: kind == "paid")
    assert "free" in kinds and "paid" in kinds


def test_the_console_script_runs_the_suite(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "nanobanana-conformance"
    done = subprocess.run(
        [str(script), "--provider", "pixazo", "--dry-run", "--report-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "conformance plan, target mock" in done.stdout
