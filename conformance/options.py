"""The suite's options, shared by the pytest suite (``conformance/suite/conftest.py``) and
the runner (``conformance/cli.py``), and the rules a live run must pass before it starts.

A live run spends money, so it needs all of: ``--accept-charges``, ``--max-spend``, each
provider's key in its environment variable, and an estimate within the cap
(:func:`live_problems`). Errors::

    UsageError   an option that cannot be used (unknown provider, unreadable scenario, a cap
                 that is no finite amount, a report folder that cannot be written)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanobanana_mock import schemas
from nanobanana_mock.client.errors import ConfigurationError
from nanobanana_mock.client.providers import adapter
from nanobanana_mock.faults.effects import EFFECTS
from nanobanana_mock.scenario import check_scenario
from nanobanana_mock.scenario_files import EXAMPLES, UnknownScenario, locate
from nanobanana_mock.schemas.located import Document, DocumentError, read_document

__all__ = ["DEFAULT_REPORT_DIR", "RunOptions", "UsageError", "live_problems", "load_scenario"]

DEFAULT_REPORT_DIR = "reports/conformance"
DRIFT_SCENARIOS = Path(__file__).resolve().parent / "drift_scenarios"


class UsageError(Exception):
    """An option the suite cannot use."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    providers: tuple[str, ...]
    target: str = "mock"
    max_spend: float | None = None
    accept_charges: bool = False
    base_url: str | None = None
    report_dir: str = DEFAULT_REPORT_DIR
    scenario: str | None = None
    dry_run: bool = False

    @classmethod
    def build(cls, providers: Iterable[str] | None, **values: Any) -> RunOptions:
        """Checked options: known providers, a finite cap, a scenario only for the mock, a
        report directory that can be written (unless nothing will be written)."""
        options = cls(providers=parse_providers(providers), **values)
        cap = options.max_spend
        if cap is not None and not (math.isfinite(cap) and cap >= 0):
            raise UsageError(f"--max-spend must be a finite amount of USD, 0 or more, not {cap}")
        if options.scenario and options.target != "mock":
            raise UsageError("--scenario applies to the mock target only")
        if not options.dry_run:
            check_report_dir(options.report_dir)
        return options


def check_report_dir(path: str) -> None:
    """The report can be written under ``path`` (created at the end, by then it may be too
    late to say): it is a writable folder, or the nearest one that exists is."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"--report-dir {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--report-dir {path}: {folder} is not writable")


def parse_providers(values: Iterable[str] | None) -> tuple[str, ...]:
    """``--provider a,b --provider c`` -> ("a", "b", "c"), in the contracts' order; none
    given means every one."""
    names = {n.strip() for v in values or () for n in v.split(",") if n.strip()}
    unknown = sorted(names - set(schemas.PROVIDERS))
    if unknown:
        raise UsageError(
            f"unknown provider(s) {', '.join(unknown)}; one of {', '.join(schemas.PROVIDERS)}"
        )
    return tuple(p for p in schemas.PROVIDERS if not names or p in names)


def load_scenario(path: str) -> dict[str, Any]:
    """A drift scenario: a scenario object (``{"faults": [...]}``, schemas/mock/scenario.json),
    one fault rule, or a list of rules; JSON or YAML. ``path`` may name a packaged drift or
    example scenario instead (``segmind-renamed-request-id``). It is read and checked as
    the mock reads a scenario file (one loader, one check), so a problem is the same
    ``file:line:column: path: message`` line that ``nanobanana-mock --scenario`` prints."""
    try:
        path = os.fspath(locate(path, (DRIFT_SCENARIOS, EXAMPLES)))
    except UnknownScenario as exc:
        raise UsageError(f"--scenario {exc}") from exc
    try:
        document = _as_scenario(read_document(path))
        data = check_scenario(document)
    except DocumentError as exc:
        raise UsageError(f"--scenario {'; '.join(exc.problems)}") from exc
    stuck = _frozen_response_waits(data)
    if stuck is not None:
        line, column = document.at(("faults", stuck))
        where = f"{path}:{line}:{column}: faults[{stuck}]"
        raise UsageError(f"--scenario {where}: {FROZEN_RESPONSE_LATENCY}")
    copy: dict[str, Any] = json.loads(json.dumps(data))
    return copy


def _as_scenario(document: Document) -> Document:
    """A list of rules as a scenario's ``faults``, one rule as its only rule."""
    data = document.data
    if isinstance(data, list):
        return document.nested(("faults",), {"faults": data})
    if isinstance(data, Mapping) and "effect" in data:
        return document.nested(("faults", 0), {"faults": [data]})
    if not isinstance(data, Mapping):
        raise UsageError(f"--scenario {document.source}: expected a scenario object or fault rules")
    return document


FROZEN_RESPONSE_LATENCY = (
    "a response latency waits on the mock's virtual clock, which the suite moves only "
    "between polls: every request the rule matches would hang until the suite's timeout "
    "(a latency with target queue or processing delays the job instead)"
)


def _frozen_response_waits(data: Mapping[str, Any]) -> int | None:
    """The index of the first rule that holds a response on the suite's frozen clock (the
    scenario may run the clock itself with ``settings.time_scale``)."""
    if (data.get("settings") or {}).get("time_scale", 0) > 0:
        return None
    for index, rule in enumerate(data.get("faults") or ()):  # schema-valid: one kind each
        ((kind, params),) = rule["effect"].items()
        if EFFECTS[kind].holds_answer(params):
            return index
    return None


def live_problems(options: RunOptions, estimate: float) -> list[str]:
    """Why a live run may not start (empty: it may)."""
    problems = []
    if not options.accept_charges:
        problems.append("--accept-charges is required: a live run is charged to your account")
    if options.max_spend is None:
        problems.append("--max-spend USD is required: the most this run may spend")
    elif estimate > options.max_spend + 1e-9:
        problems.append(
            f"the estimated spend ${estimate:.3f} exceeds --max-spend ${options.max_spend:.2f}"
        )
    for provider in options.providers:
        if adapter(provider).key_from_env() is None:
            names = " or ".join(adapter(provider).key_env)
            problems.append(f"{provider}: no API key; set {names}")
        try:
            adapter(provider).origin(options.base_url)
        except ConfigurationError as exc:  # a base URL that is neither a URL nor a host map
            problems.append(str(exc))
    return problems
