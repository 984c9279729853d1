"""The conformance suite's options, fixtures and run rules.

- Options: ``--provider`` (repeatable or comma list), ``--target mock|live``, ``--max-spend``,
  ``--accept-charges``, ``--base-url``, ``--report-dir``, ``--scenario``, ``--dry-run``.
- Cases: a check taking ``case`` runs once per provider model (``@pytest.mark.cases("model")``,
  its cheapest request), per documented request (``cases("example")``) or per provider
  (``cases("provider")``, its cheapest request); ``needs=op`` (or a tuple of operations)
  keeps the providers that have that operation. A check that also takes ``operation`` runs
  once per path of its ``needs`` operation (Gemini's ``sync_generate`` and
  ``sync_generate_stable``: /v1beta/ and /v1/).
- Cost: free checks run first; each paid check costs its case's price. Before a live run (or
  with ``--dry-run``) the plan is printed, and a live run without its opt-in, cap or keys, or
  over its cap, is refused before any request.
- Exit status and verdict (``conformance/outcome.py``): 0 conformant (additive findings
  allowed), 1 breaking drift, 2 interrupted, 3 tool error (no answer, or a check broke for
  another reason than a finding), 4 usage or refused, 5 nothing checked (no check selected,
  or every one skipped). Refusals are one plain line (pytest's ``ERROR: ...``); a dry run
  prints the plan, sends nothing and ends 0.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from nanobanana_mock.conformance import cost
from nanobanana_mock.conformance.exchange import Http
from nanobanana_mock.conformance.facts import variants
from nanobanana_mock.conformance.options import (
    DEFAULT_REPORT_DIR,
    RunOptions,
    UsageError,
    live_problems,
    load_scenario,
)
from nanobanana_mock.conformance.outcome import TOOL_ERROR, Outcome, Tally, decide
from nanobanana_mock.conformance.probe import Probe
from nanobanana_mock.conformance.target import LiveTarget, MockTarget, Target, live_endpoints
from nanobanana_mock.schemas.checks import ContractViolation
from nanobanana_mock.schemas.report import Report

OPTIONS = pytest.StashKey[RunOptions]()
REPORT = pytest.StashKey[Report]()
BUDGET = pytest.StashKey[cost.Budget]()
SCENARIO = pytest.StashKey[dict[str, Any] | None]()
TOOL_ERRORS = pytest.StashKey[list[str]]()
STARTED = pytest.StashKey[bool]()
DRY_RUN_DONE = pytest.StashKey[bool]()
RAN = pytest.StashKey[set[str]]()  # node ids of the checks that passed or failed
SKIPPED = pytest.StashKey[set[str]]()
OUTCOME = pytest.StashKey[Outcome]()
WRITTEN = pytest.StashKey[Path]()  # the Markdown report, once written

MARKERS = (
    "free: a conformance check that costs nothing (runs first)",
    "paid: a conformance check that is charged on a live target (its case's price)",
    'cases(kind="model", needs=None): one run per provider model ("model"), per documented'
    ' request ("example") or per provider ("provider"), of the providers with operation needs',
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "Nano Banana conformance suite")
    group.addoption("--provider", action="append", help="provider(s); default: every one")
    group.addoption("--target", choices=("mock", "live"), default="mock")
    group.addoption("--max-spend", type=float, metavar="USD", help="cap of a live run")
    group.addoption("--accept-charges", action="store_true", help="opt in to a paid live run")
    group.addoption("--base-url", help="live origin (else <PROVIDER>_BASE_URL)")
    group.addoption("--report-dir", default=DEFAULT_REPORT_DIR, help="where the report goes")
    group.addoption(
        "--scenario", help="drift scenario or fault rules for the mock target: a file or a name"
    )
    group.addoption("--dry-run", action="store_true", help="print the plan, send nothing")


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        options = RunOptions.build(
            config.getoption("provider"),
            target=config.getoption("target"),
            max_spend=config.getoption("max_spend"),
            accept_charges=config.getoption("accept_charges"),
            base_url=config.getoption("base_url"),
            report_dir=config.getoption("report_dir"),
            scenario=config.getoption("scenario"),
            dry_run=config.getoption("dry_run"),
        )
        scenario = load_scenario(options.scenario) if options.scenario else None
    except UsageError as exc:  # pytest prints it as one line and ends with exit 4
        raise pytest.UsageError(str(exc)) from None
    config.stash[OPTIONS] = options
    config.stash[SCENARIO] = scenario
    config.stash[REPORT] = Report(target=options.target)
    live = options.target == "live"
    config.stash[BUDGET] = cost.Budget(options.max_spend if live else None)
    config.stash[TOOL_ERRORS] = []
    config.stash[STARTED] = False
    config.stash[DRY_RUN_DONE] = False
    config.stash[RAN] = set()
    config.stash[SKIPPED] = set()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("cases")
    kind = marker.args[0] if marker and marker.args else "model"
    needs = marker.kwargs.get("needs") if marker else None
    found = cost.cases(metafunc.config.stash[OPTIONS].providers, kind, needs)
    if "operation" not in metafunc.fixturenames:
        metafunc.parametrize("case", found, ids=[c.id for c in found])
        return
    first = str(needs if isinstance(needs, str) else next(iter(needs or ("submit",))))
    pairs = [(c, op) for c in found for op in variants(c.provider, first)]
    ids = [f"{c.id}-{op}" for c, op in pairs]
    metafunc.parametrize(("case", "operation"), pairs, ids=ids)


def _case(item: pytest.Item) -> cost.Case | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("case") if callspec is not None else None
    return value if isinstance(value, cost.Case) else None


def _price(item: pytest.Item) -> float:
    case = _case(item)
    return case.plan.price if case is not None and item.get_closest_marker("paid") else 0.0


@pytest.hookimpl(trylast=True)  # after -k and -m: the plan is of the checks that will run
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Free checks first; print the plan; end a dry run here; refuse a live run that may not
    start."""
    empty = [i for i in items if "case" in getattr(i, "fixturenames", ()) and not _case(i)]
    if empty:  # e.g. a cancel check when no selected provider can cancel
        config.hook.pytest_deselected(items=empty)
        items[:] = [i for i in items if i not in empty]
    items.sort(key=lambda item: item.get_closest_marker("paid") is not None)
    options = config.stash[OPTIONS]
    rows = _plan_rows(options.providers, items)
    if options.target == "live" or options.dry_run:
        cap = options.max_spend if options.target == "live" else None
        _write(config, cost.format_plan(options.target, rows, cap))
    live = options.target == "live"
    if live:
        _write(
            config, ["where the requests go:", *live_endpoints(options.providers, options.base_url)]
        )
    problems = live_problems(options, sum(row[3] for row in rows)) if live else []
    if options.dry_run:
        _write(config, [f"a live run would be refused: {p}" for p in problems])
        _write(config, ["dry run: no request was sent"])
        items[:] = []  # nothing runs; pytest_sessionfinish ends the run with 0
        config.stash[DRY_RUN_DONE] = True
        return
    if problems:  # pytest prints it as one line and ends with exit 4
        raise pytest.UsageError("refusing to run live: " + "; ".join(problems))
    config.stash[STARTED] = not config.option.collectonly


def _plan_rows(
    providers: tuple[str, ...], items: list[pytest.Item]
) -> list[tuple[str, int, int, float]]:
    """Per provider: free checks, paid checks, estimated USD."""
    rows = []
    for provider in providers:
        mine = [i for i in items if (c := _case(i)) is not None and c.provider == provider]
        paid = [i for i in mine if i.get_closest_marker("paid")]
        rows.append((provider, len(mine) - len(paid), len(paid), sum(map(_price, paid))))
    return rows


def _write(config: pytest.Config, lines: list[str]) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line)
        else:
            print(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Tally each check; a contract finding is shown as its findings (no traceback of the
    suite), anything else that broke a check is a tool error."""
    report = yield
    config = item.config
    excinfo = call.excinfo
    if report.failed and excinfo is not None:
        if excinfo.errisinstance(ContractViolation):
            report.longrepr = str(excinfo.value)
        else:
            config.stash[TOOL_ERRORS].append(f"{item.nodeid}: {_reason(excinfo)}")
    if report.failed or (report.when == "call" and report.passed):
        config.stash[RAN].add(item.nodeid)
    elif report.skipped:
        config.stash[SKIPPED].add(item.nodeid)
    return report


def _reason(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """One line: the message of a check that stopped (pytest.fail), else the error's."""
    text = str(excinfo.value).strip().splitlines()
    first = text[0] if text else ""
    if excinfo.errisinstance(pytest.fail.Exception):
        return first or "the check stopped"
    return f"{excinfo.typename}: {first}" if first else excinfo.typename


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the report; the exit status says what was found (see the module docstring)."""
    config = session.config
    if config.stash.get(DRY_RUN_DONE, False):
        session.exitstatus = 0
        return
    if not config.stash.get(STARTED, False):
        return
    options = config.stash[OPTIONS]
    report = config.stash[REPORT]
    ran = config.stash[RAN]
    skipped = config.stash[SKIPPED] - ran
    tally = Tally(
        selected=len(session.items),
        ran=len(ran),
        skipped=len(skipped),
        breaking=len(report.breaking),
        tool_errors=len(config.stash[TOOL_ERRORS]),
    )
    outcome = decide(tally, int(exitstatus))
    report.outcome = outcome.verdict
    try:
        config.stash[WRITTEN] = report.write(options.report_dir)["markdown"]
    except OSError as exc:
        problem = f"the report could not be written to {options.report_dir}: {exc.strerror}"
        outcome = Outcome(TOOL_ERROR, f"TOOL ERROR: {problem}")
    config.stash[OUTCOME] = outcome
    session.exitstatus = outcome.code


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    if OUTCOME not in config.stash:
        return
    options = config.stash[OPTIONS]
    report = config.stash[REPORT]
    budget = config.stash[BUDGET]
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", f"conformance: {options.target}")
    spent = "spent" if options.target == "live" else "live cost"
    for provider, row in report.summary().items():
        write(
            f"{provider:8} {row['checks']:4} checks {row['breaking']:3} breaking "
            f"{row['additive']:3} additive   {spent} ${budget.spent.get(provider, 0.0):.3f}"
        )
    for finding in report.breaking[:10]:
        write(f"  {finding}")
    if len(report.breaking) > 10:
        write(f"  ... and {len(report.breaking) - 10} more breaking findings")
    for error in config.stash[TOOL_ERRORS][:5]:
        write(f"  tool error: {error}")
    verdict = config.stash[OUTCOME].verdict
    written = config.stash.get(WRITTEN, None)
    write(f"verdict: {verdict}" + (f"; report: {written} (.json, .html)" if written else ""))


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def options(pytestconfig: pytest.Config) -> RunOptions:
    return pytestconfig.stash[OPTIONS]


@pytest.fixture(scope="session")
def report(pytestconfig: pytest.Config) -> Report:
    """The run's findings; written at the end of the session."""
    return pytestconfig.stash[REPORT]


@pytest.fixture(scope="session")
def budget(pytestconfig: pytest.Config) -> cost.Budget:
    return pytestconfig.stash[BUDGET]


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config, options: RunOptions) -> Iterator[Target]:
    """A fresh mock with the scenario's rules, or the live origins (checked already)."""
    if options.target == "mock":
        made: Target = MockTarget(pytestconfig.stash[SCENARIO])
    else:
        made = LiveTarget.from_environment(options.providers, options.base_url)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="session")
def http() -> Iterator[Http]:
    client = Http()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def probe(
    case: cost.Case,
    target: Target,
    http: Http,
    report: Report,
    budget: cost.Budget,
    request: pytest.FixtureRequest,
) -> Probe:
    """This check's probe of ``case``'s provider model; the mock is reset first."""
    target.prepare()
    name = request.node.originalname.removeprefix("test_")
    return Probe(
        case.provider,
        case.model,
        target=target,
        http=http,
        report=report,
        budget=budget,
        check=name,
    )
