"""The runner: its pytest command line and its exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nanobanana_mock.conformance import cli
from nanobanana_mock.schemas.report import Report

from .conftest import SCENARIOS, Run, Runner, assert_plain

USAGE = 4

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
    assert_plain(done.stdout + done.stderr)


def _refusal(run: Run, message: str) -> None:
    """Exit 4 and the reason on one plain line; nothing was run or written."""
    assert run.code == USAGE, run.output
    assert_plain(run.output)
    (line,) = [line for line in run.output.splitlines() if message in line]
    assert line == f"ERROR: {line.removeprefix('ERROR: ')}" and line.startswith("ERROR: ")
    assert not run.report_dir.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--provider", "nobody"),
            "unknown provider(s) nobody; one of segmind, seaart, pixazo, gemini, fal",
        ),
        (("--scenario", "/nonexistent/s.json"), "--scenario /nonexistent/s.json: "),
        (("--target", "live", "--scenario", "s.json"), "--scenario applies to the mock target"),
        (("--max-spend", "nan"), "--max-spend must be a finite amount of USD, 0 or more, not nan"),
        (("--max-spend", "inf"), "--max-spend must be a finite amount of USD, 0 or more, not inf"),
        (("--max-spend", "-1"), "--max-spend must be a finite amount of USD, 0 or more, not -1"),
    ],
    ids=["provider", "scenario-file", "scenario-live", "cap-nan", "cap-inf", "cap-negative"],
)
def test_a_refusal_is_one_plain_line(
    run_suite: Runner, args: tuple[str, ...], message: str
) -> None:
    _refusal(run_suite(*args), message)


def test_a_broken_scenario_is_one_plain_line(run_suite: Runner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"faults": [{"effect": {"drift": {"explode": true}}}]}')
    located = f"--scenario {broken}:1:35: faults[0].effect.drift.explode: unknown key"
    _refusal(run_suite("--scenario", str(broken)), located)


def test_a_report_dir_that_cannot_be_written_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = cli.main(["--provider", "pixazo", "--report-dir", str(blocker / "reports")])
    output = "".join(capsys.readouterr())
    assert code == USAGE, output
    assert_plain(output)
    assert f"ERROR: --report-dir {blocker / 'reports'}: {blocker} is not a folder" in output


def test_a_report_that_cannot_be_written_is_a_tool_error_on_one_line(
    run_suite: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Report, directory: object) -> None:
        raise PermissionError(13, "Permission denied", str(directory))

    monkeypatch.setattr(Report, "write", refuse)
    run = run_suite("--provider", "pixazo", "--", "-k", "without_a_valid_key")
    assert run.code == 3, run.output
    assert_plain(run.output)
    assert "verdict: TOOL ERROR: the report could not be written to " in run.output
    assert ": Permission denied" in run.output and "report: " not in run.output


def test_a_dry_run_on_the_mock_prints_the_plan_and_exits_0(run_suite: Runner) -> None:
    run = run_suite("--provider", "seaart", "--dry-run")
    assert run.code == 0, run.output
    assert_plain(run.output)
    assert "conformance plan, target mock:" in run.output
    assert "dry run: no request was sent" in run.output
    assert "verdict" not in run.output and not run.report_dir.exists()


def test_the_plan_counts_only_the_selected_checks(run_suite: Runner) -> None:
    """-k applies before the plan: its estimate is of the checks that will run."""
    row = re.compile(r"seaart\s+(\d+) free,\s+(\d+) paid checks, estimated \$([0-9.]+)")
    every = row.search(run_suite("--provider", "seaart", "--dry-run").output)
    run = run_suite("--provider", "seaart", "--dry-run", "--", "-k", "without_a_valid_key")
    assert run.code == 0, run.output
    selected = row.search(run.output)
    assert every and selected, run.output
    assert int(every[2]) > 0 and float(every[3]) > 0
    assert 0 < int(selected[1]) < int(every[1]) and selected.group(2, 3) == ("0", "0.000")


def test_nothing_selected_is_never_conformant(run_suite: Runner) -> None:
    run = run_suite("--provider", "pixazo", "--", "-k", "no_such_check")
    assert run.code == 5, run.output
    assert_plain(run.output)
    assert "verdict: NOTHING CHECKED: no check was selected" in run.output
    assert "conformant" not in run.output
    assert run.report["verdict"] == "NOTHING CHECKED: no check was selected"
    assert "**Verdict: NOTHING CHECKED" in (run.report_dir / "drift.md").read_text()


def test_every_check_skipped_is_never_conformant(run_suite: Runner, tmp_path: Path) -> None:
    """Every job fails, so the one selected check (the lifecycle's) has no output to check."""
    scenario = tmp_path / "all-jobs-fail.json"
    failure = {
        "match": {"provider": "pixazo", "operation": "submit"},
        "effect": {"job_failure": {}},
    }
    scenario.write_text(json.dumps({"faults": [failure]}))
    run = run_suite("--provider", "pixazo", "--scenario", str(scenario), "--", "-k", "lifecycle")
    assert run.code == 5, run.output
    assert "verdict: NOTHING CHECKED: 1 check selected, all skipped" in run.output
    assert "conformant" not in run.output
    assert run.report["verdict"].startswith("NOTHING CHECKED")


def test_a_bad_pytest_argument_names_this_command(tmp_path: Path, capsys) -> None:
    """An argument after -- that pytest refuses is usage (4), said as this command's."""
    code = cli.main(["--provider", "seaart", "--report-dir", str(tmp_path), "--", "--bogus"])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 4
    assert "nanobanana-conformance" in output and "--bogus" in output
    assert "pytest.main()" not in output
    assert "inifile:" not in output and "rootdir:" not in output  # pytest's, not ours
    assert_plain(output)


def test_a_response_latency_on_the_frozen_clock_is_refused(run_suite: Runner, tmp_path: Path):
    """The suite's mock moves its clock only between polls: a response latency would hold
    every request it matches until the suite's timeout (slow-queue: about an hour)."""
    rule = {"match": {"provider": "pixazo", "operation": "result"}, "effect": {"latency": {}}}
    held = tmp_path / "held.json"
    held.write_text(json.dumps([{**rule, "effect": {"latency": {"fixed": 1}}}]))
    for scenario in ("slow-queue", str(held)):
        run = run_suite("--provider", "pixazo", "--scenario", scenario)
        assert run.code == USAGE, run.output
        assert "faults[" in run.output and "response latency" in run.output
        assert_plain(run.output)
    # a job's latency, or a scenario that runs the clock itself, holds nothing
    job = tmp_path / "job.json"
    queued = {"match": {"provider": "pixazo", "operation": "submit"}}
    job.write_text(json.dumps([{**queued, "effect": {"latency": {"target": "queue", "fixed": 1}}}]))
    running = tmp_path / "running.json"
    running.write_text(
        json.dumps({"settings": {"time_scale": 100}, "faults": json.loads(held.read_text())})
    )
    for scenario in (job, running):
        run = run_suite("--provider", "pixazo", "--scenario", str(scenario), "--", "-k", "cycle")
        assert run.code == 0, run.output
