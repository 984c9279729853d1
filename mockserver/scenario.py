"""Scenario files: settings, fault rules, credits and rate limits loaded at start-up.

A scenario is YAML or JSON, read by the contracts' one located loader
(:mod:`nanobanana_mock.schemas.located`) and checked against ``schemas/mock/scenario.json``
(the schema is the truth; nothing here restates it) and by the fault engine (what the
schema cannot see: duplicate rule ids, regexes RE2 refuses). Every problem names the file,
the line and column where the offending value starts, its path and the rule, e.g.::

    faults.yaml:7:15: faults[0].effect.http_error.status: 418 is not one of 400, 401, ...

and is worded the same on every way a scenario comes in: ``nanobanana-mock --scenario``,
the pytest marker's ``scenario=``, the control plane's reset (a ``scenario_file``, or a
scenario object, whose problems name their path only) and ``nanobanana-conformance
--scenario``, which all call :func:`check_scenario`.

Errors::

    ValueError
     └── DocumentError (ScenarioError)   problems: list[str]; str() is one problem per line
"""

from __future__ import annotations

import os
from typing import Any

from nanobanana_mock import schemas
from nanobanana_mock.schemas import Violation
from nanobanana_mock.schemas.located import (
    Document,
    DocumentError,
    parse_document,
    read_document,
)
from nanobanana_mock.schemas.violations import document_message, pointer

from .faults.rules import rule_problems
from .http import hide_secrets
from .scenario_files import UnknownScenario, locate

__all__ = ["ScenarioError", "check_scenario", "load_scenario", "parse_data", "parse_scenario"]

ScenarioError = DocumentError  # the one error of a document that cannot be used

MAX_PROBLEMS = 100
EXPLAIN_SECONDS = 2.0  # a file is read at start-up, before serving: it may be explained at length


def parse_scenario(text: str, source: str = "<scenario>") -> dict[str, Any]:
    """Parse a YAML or JSON scenario, check it and return its plain data.

    Text starting with ``{`` is read as JSON, anything else as YAML; an empty (or null)
    document is the empty scenario ``{}``. Raises :class:`ScenarioError` listing every
    problem, sorted by line, each as ``source:line:column: path: message``."""
    return check_scenario(parse_document(text, source))


def parse_data(text: str, source: str = "<scenario>") -> Any:
    """The plain data of a YAML or JSON document, with the checks of :func:`parse_scenario`
    (size, nesting, aliases, plain types, duplicate keys) but no schema."""
    return parse_document(text, source).data


def load_scenario(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a UTF-8 scenario file, or the packaged scenario of that name
    (:func:`~nanobanana_mock.scenario_files.locate`), and check it; problems name the path."""
    try:
        path = locate(path)
    except UnknownScenario as exc:
        raise ScenarioError(str(exc)) from exc
    return check_scenario(read_document(path))


def check_scenario(
    document: Document, *, limit: int = MAX_PROBLEMS, seconds: float | None = EXPLAIN_SECONDS
) -> dict[str, Any]:
    """The scenario a document holds, checked against its schema and by the fault engine;
    a :class:`ScenarioError` names every problem in place. ``limit`` and ``seconds`` bound
    the schema's explanation (a control-plane call gives None: the event loop's budget,
    :data:`~nanobanana_mock.schemas.violations.EXPLAIN_SECONDS`)."""
    data = document.data
    if data is None:  # no document, or an empty one
        return {}
    if not isinstance(data, dict):
        message = f"the top level must be a mapping, got {_kind(data)}"
        document.refuse([Violation("", "type", message)])
    found = schemas.explain("mock", "scenario", data, limit=limit, seconds=seconds)
    problems = [hide_secrets(v) for each in found for v in document_message(each)]
    if not found:  # what the schema cannot see: duplicate ids, regexes RE2 refuses
        problems = [
            Violation(pointer(path), "fault_rule", message, path)
            for path, message in _fault_rule_problems(data.get("faults", []))
        ]
    if problems:
        document.refuse(problems)
    return data


def _fault_rule_problems(specs: list[Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """(path, message) for every fault rule of a scenario that the fault engine would refuse
    when the scenario is applied (the rules are valid against their schema already)."""
    return [(("faults", index, *where), message) for index, where, message in rule_problems(specs)]


def _kind(value: Any) -> str:
    names = {int: "integer", float: "number", str: "string", list: "list", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
