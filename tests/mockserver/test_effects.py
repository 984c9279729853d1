"""Fault effects as classes (faults/effects.py): the registry is the schema's list of effects,
rules and prompt markers build the same objects, and each kind's decisions, tested directly.
(Their hooks on real requests are tested over HTTP in test_faults.py and test_markers.py.)"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.engine.jobs import Failure, Surface
from nanobanana_mock.faults.effects import (
    EFFECTS,
    Drift,
    HttpError,
    JobEffects,
    JobFailure,
    Latency,
    Transport,
    shape_job,
)
from nanobanana_mock.faults.markers import prompt_rules
from nanobanana_mock.faults.rules import FaultEngine, RequestFacts

ROOT = Path(__file__).resolve().parents[2]
RULE = schemas.load("mock", "fault_rule")


def test_the_registry_is_the_schemas_list_of_effects() -> None:
    assert set(EFFECTS) == set(RULE["$defs"]["effect"]["properties"])
    for kind, cls in EFFECTS.items():
        assert cls.kind == kind
        assert RULE["$defs"]["effect"]["properties"][kind] == {"$ref": f"#/$defs/{kind}"}


def test_the_effects_that_end_a_request_are_those_the_schema_names() -> None:
    """fault_rule.json: rules apply "until one ends the request (http_error or transport)"."""
    ending = {kind for kind, cls in EFFECTS.items() if cls.ends}
    assert ending == {HttpError.kind, Transport.kind}
    assert "until one ends the request (http_error or transport)" in RULE["description"]


def facts(**given: Any) -> RequestFacts:
    values: dict[str, Any] = {
        "provider": "segmind",
        "operation": "submit",
        "method": "POST",
        "key": "k",
        "model": "nano-banana",
        "prompt": "a cat",
        "headers": {},
        "declared": frozenset({400, 429, 500, 503}),
    }
    return RequestFacts(**{**values, **given})


@pytest.mark.parametrize(
    ("prompt", "effect"),
    [
        ("[mock:status=429]", {"http_error": {"status": 429}}),
        (
            "[mock:fail=CONTENT_BLOCKED]",
            {"job_failure": {"error": "Task execution failed", "error_type": "CONTENT_BLOCKED"}},
        ),
        ("[mock:delay=2.5]", {"latency": {"target": "processing", "fixed": 2.5}}),
    ],
)
def test_markers_build_the_objects_a_rule_fires(prompt: str, effect: dict[str, Any]) -> None:
    (marked,) = prompt_rules(prompt, {429})
    engine = FaultEngine(seed=1)
    engine.add({"id": "prompt", "effect": effect}, 0.0)
    (fired,) = engine.evaluate(facts(declared=frozenset({429})), 0.0)
    assert type(marked) is type(fired) is EFFECTS[next(iter(effect))]
    assert (marked.rule_id, dict(marked.params)) == (fired.rule_id, dict(fired.params))
    assert marked == type(fired)(fired.rule_id, fired.params)  # all but the rule's draw


def test_evaluation_stops_at_the_first_effect_that_ends_the_request() -> None:
    engine = FaultEngine(seed=1)
    for effect in (
        {"latency": {"fixed": 1}},
        {"transport": {"kind": "reset"}},
        {"http_error": {"status": 503}},
    ):
        engine.add({"effect": effect}, 0.0)
    fired = engine.evaluate(facts(), 0.0)
    assert [type(e) for e in fired] == [Latency, Transport]
    assert [r.fired for r in engine.rules] == [1, 1, 0]


def test_an_http_error_outside_the_operations_contract_is_not_admitted() -> None:
    assert HttpError.admits({"status": 503}, facts())
    assert not HttpError.admits({"status": 404}, facts())
    assert HttpError.admits({"status": 402}, facts(declared=frozenset({406})))  # credits
    assert all(cls.admits({}, facts()) for cls in (JobFailure, Latency, Transport, Drift))


def test_shaping_a_job() -> None:
    plan = shape_job(
        [
            JobFailure("a", {"error": "first", "surface": "start", "after_polls": 2}),
            JobFailure("b", {"error": "second"}),
            Latency("c", {"target": "queue", "fixed": 3}),
            Latency("d", {"target": "processing", "uniform": [10, 20]}, draw=0.5),
            Latency("e", {"fixed": 99}),  # a response latency: not the job's
            Latency("f", {"target": "queue", "fixed": 1}),
            Drift("g", {"image_scale": 2}),
            Drift("h", {"image_scale": 0.25, "status": 500}),
            HttpError("i", {"status": 503}),
            Transport("j", {"kind": "reset"}),
        ]
    )
    assert plan == JobEffects(
        failure=Failure("first", "INFERENCE_FAILURE", Surface.START, after_polls=2),
        extra_queue=4.0,
        extra_processing=15.0,
        image_scale=0.5,
    )
    assert shape_job([]) == JobEffects()


@pytest.mark.parametrize(
    ("params", "draw", "seconds"),
    [
        ({"fixed": 7}, 0.9, 7.0),
        ({"uniform": [30, 10]}, 0.25, 15.0),  # either order
        ({"lognormal": {"median": 4, "sigma": 1}}, 0.5, 4.0),  # the median at the middle draw
        ({"lognormal": {"median": 4, "sigma": 0}}, 0.99, 4.0),
    ],
)
def test_latency_seconds_come_from_the_rules_draw(
    params: dict[str, Any], draw: float, seconds: float
) -> None:
    assert Latency("r", params, draw).seconds() == pytest.approx(seconds)


def test_only_a_response_latency_holds_the_answer() -> None:
    assert Latency.holds_answer({"fixed": 1})
    assert Latency.holds_answer({"fixed": 1, "target": "response"})
    assert not Latency.holds_answer({"fixed": 1, "target": "queue"})
    for cls in (HttpError, JobFailure, Transport, Drift):
        assert not cls.holds_answer({})


def test_each_kind_says_where_it_can_never_apply() -> None:
    status = (["segmind"], ["status"])
    assert JobFailure.unreachable({}, *status)[0][0] == ("effect", "job_failure")
    assert Latency.unreachable({"target": "queue", "fixed": 1}, *status)[0][0] == (
        "effect",
        "latency",
    )
    assert Latency.unreachable({"fixed": 1}, *status) == []
    assert HttpError.unreachable({"status": 400}, *status)[0][0] == (
        "effect",
        "http_error",
        "status",
    )
    assert HttpError.unreachable({"status": 429}, *status) == []
    assert JobFailure.unreachable({}, ["segmind"], ["submit", "status"]) == []
    assert Transport.unreachable({"kind": "reset"}, *status) == []


EFFECT_MODULE = ROOT / "mockserver" / "faults" / "effects.py"


def _comparisons_of_effect_names(path: Path) -> list[str]:
    """Every comparison in ``path`` with an effect's name as a string (``kind == "drift"``,
    ``kind in ("http_error", ...)``, ``kind in frozenset({...})``, a key of a dict compared
    against, ``case "drift":`` in a ``match``)."""
    names = set(EFFECTS)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            operands: list[ast.AST] = [node.left, *node.comparators]
        elif isinstance(node, ast.match_case):
            operands = [node.pattern]
        else:
            continue
        for operand in operands:
            for value in ast.walk(operand):  # the set, tuple, dict or call that holds it too
                if isinstance(value, ast.Constant) and value.value in names:
                    line = getattr(node, "lineno", None) or getattr(value, "lineno", 0)
                    found.append(f"{path.relative_to(ROOT)}:{line}: {value.value}")
    return found


def test_no_effect_name_is_compared_as_a_string_outside_its_class() -> None:
    modules = [
        path
        for folder in ("mockserver", "conformance", "nanobanana", "schemas")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != EFFECT_MODULE
    ]
    assert len(modules) > 50
    assert [hit for path in modules for hit in _comparisons_of_effect_names(path)] == []
    assert _comparisons_of_effect_names(EFFECT_MODULE) == []  # not even there: classes decide


def test_the_prompt_regexes_are_worked_out_once_per_change_of_the_rules() -> None:
    engine = FaultEngine(seed=1)
    http_error = {"http_error": {"status": 503}}
    engine.add({"id": "a", "match": {"prompt_regex": "cat"}, "effect": http_error}, 0.0)
    first = engine.regexes()
    assert list(first) == ["cat"] and engine.regexes() is first  # per request: no rebuild
    engine.add({"id": "b", "match": {"prompt_regex": "dog"}, "effect": http_error}, 0.0)
    assert list(engine.regexes()) == ["cat", "dog"]
    assert engine.remove("a") and list(engine.regexes()) == ["dog"]
    engine.clear()
    assert engine.regexes() == {}


def test_the_headers_rules_name_are_worked_out_once_per_change_of_the_rules() -> None:
    engine = FaultEngine(seed=1)
    http_error = {"http_error": {"status": 503}}
    engine.add({"id": "a", "match": {"headers": {"X-One": "1"}}, "effect": http_error}, 0.0)
    first = engine.header_names()
    assert first == {"x-one"} and engine.header_names() is first  # per request: no rebuild
    engine.add({"id": "b", "match": {"headers": {"X-Two": "2"}}, "effect": http_error}, 0.0)
    assert engine.header_names() == {"x-one", "x-two"}
    assert engine.remove("a") and engine.header_names() == {"x-two"}
    engine.clear()
    assert engine.header_names() == frozenset()
