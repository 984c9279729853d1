"""Run the conformance suite in this process, against a fresh mock, and read its report."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nanobanana_mock.conformance import cli

SCENARIOS = Path(cli.__file__).resolve().parent / "drift_scenarios"


@dataclass
class Run:
    code: int
    output: str
    report_dir: Path

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.report_dir / "drift.json").read_text(encoding="utf-8"))

    @property
    def findings(self) -> list[dict[str, Any]]:
        return self.report["findings"]


Runner = Callable[..., Run]


@pytest.fixture
def run_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Runner:
    """``run_suite("--provider", "seaart", ...)``: the runner's exit code, what it printed
    and where its report went."""

    def run(*args: str) -> Run:
        report_dir = tmp_path / f"report-{len(list(tmp_path.iterdir()))}"
        code = cli.main([*args, "--report-dir", str(report_dir)])
        captured = capsys.readouterr()
        return Run(code, captured.out + captured.err, report_dir)

    return run


PYTEST_INTERNALS = ("_pytest", "Exit:", "!!!", "Traceback", "INTERNALERROR")


def assert_plain(output: str) -> None:
    """No pytest internals in what the runner printed."""
    for internal in PYTEST_INTERNALS:
        assert internal not in output, output


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: a request there fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
