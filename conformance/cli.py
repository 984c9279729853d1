"""``nanobanana-conformance``: run the conformance suite against the mock or a live provider.

::

    nanobanana-conformance --provider seaart --target mock|live --max-spend 0.50
        [--accept-charges] [--base-url URL] [--report-dir DIR] [--scenario FILE] [--dry-run]
        [-- extra pytest arguments]

It runs pytest in this process on ``conformance/suite`` and returns its exit status
(decided in ``conformance/outcome.py``, and named by the run's last line, ``verdict: ...``):

====  ============================================================================
0     conformant: checks ran, no breaking finding (additive ones are in the report)
1     breaking drift found (see the report)
2     interrupted
3     tool error: the target gave no answer, or a check broke for another reason
4     usage, or refused: a bad option, or a live run without --accept-charges,
      --max-spend or a key, or whose estimated spend exceeds --max-spend
5     nothing checked: no check selected (``-- -k ...``), or every one skipped
====  ============================================================================

``--dry-run`` prints the plan (and what a live run would still need) and exits 0; it
sends nothing, so it needs no opt-in, cap or key. A refusal is one line, ``ERROR: ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from nanobanana_mock.schemas import PROVIDERS

from .options import DEFAULT_REPORT_DIR
from .outcome import USAGE

__all__ = ["SUITE", "USAGE", "build_parser", "main", "pytest_args"]

SUITE = Path(__file__).resolve().parent / "suite"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nanobanana-conformance",
        description="Check a target (the mock, or a live provider) against the contracts "
        "and write a drift report.",
        epilog="Exit status: 0 conformant, 1 breaking drift, 2 interrupted, 3 tool error, "
        "4 usage or refused, 5 nothing checked (none selected, or all skipped). "
        "Arguments after -- go to pytest.",
    )
    add = parser.add_argument
    add("--provider", action="append", help=f"{', '.join(PROVIDERS)} (repeat or comma list)")
    add("--target", choices=("mock", "live"), default="mock", help="default: mock")
    add("--max-spend", type=float, metavar="USD", help="spending cap; required for live")
    add("--accept-charges", action="store_true", help="opt in to a charged live run")
    add("--base-url", help="live origin (else <PROVIDER>_BASE_URL, else the provider's)")
    add("--report-dir", default=DEFAULT_REPORT_DIR, help=f"default: {DEFAULT_REPORT_DIR}")
    add(
        "--scenario",
        metavar="FILE|NAME",
        help="drift scenario or fault rules for the mock: a file, or the name of a packaged "
        "drift scenario (e.g. segmind-renamed-request-id)",
    )
    add(
        "--dry-run",
        action="store_true",
        help="print the plan and estimate; send nothing (needs no --accept-charges or key)",
    )
    return parser


# The suite runs on its own configuration, whatever project it is run from: pytest looks for
# an ini file and conftest.py files upwards from the suite, which in a ``.venv`` inside a
# user's project reaches that project's pyproject.toml (its addopts, filterwarnings) and root
# conftest.py, and pytest loads every plugin installed beside it (pytest-asyncio warns about
# settings only an ini file gives; pytest-randomly would shuffle the free checks after the
# paid ones). No ini file, the suite as rootdir and conftest boundary, no plugin it does not
# ask for (``-- -p NAME`` still loads one), and no warning that the package imported before
# pytest cannot have its asserts rewritten. The output options are the repository's own
# (pyproject.toml), so a clone and an install print the same.
ISOLATED = (
    "-q",
    "-ra",
    "--strict-markers",
    "--disable-plugin-autoload",
    f"--config-file={os.devnull}",
    f"--rootdir={SUITE}",
    f"--confcutdir={SUITE}",
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)


def pytest_args(options: argparse.Namespace, extra: Sequence[str] = ()) -> list[str]:
    """The pytest command line of a run."""
    args = [str(SUITE), *ISOLATED, "-p", "no:cacheprovider", "--target", options.target]
    for provider in options.provider or ():
        args += ["--provider", provider]
    for flag in ("max_spend", "base_url", "report_dir", "scenario"):
        value = getattr(options, flag)
        if value is not None:
            args += ["--" + flag.replace("_", "-"), str(value)]
    args += ["--accept-charges"] if options.accept_charges else []
    args += ["--dry-run"] if options.dry_run else []
    return [*args, *extra]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    try:
        options = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help is 0; argparse's own usage errors are our 4
        return 0 if exc.code in (0, None) else USAGE
    return int(pytest.main(pytest_args(options, extra), plugins=[_Usage()]))


class _Usage:
    """Names this command, not ``pytest.main()``, when pytest refuses an argument after --."""

    @staticmethod
    def pytest_addoption(parser: pytest.Parser) -> None:
        parser.prog = "nanobanana-conformance [options] --"

    @staticmethod
    def pytest_load_initial_conftests(parser: pytest.Parser) -> None:
        """Without pytest's "inifile:" and "rootdir:" lines: this command's, not the user's."""
        parser.extra_info.clear()


if __name__ == "__main__":
    raise SystemExit(main())
