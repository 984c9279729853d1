"""How findings are classified: a value outside a closed set the contract defines (a status
outside the lifecycle, an unknown error_type, content type or cancel status) is breaking, for
every provider; only an unknown new field is additive."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.schemas.checks import (
    ADDITIVE,
    BREAKING,
    schema_findings,
    transition_findings,
)

OUTSIDE = "RUNNING"  # a status no provider's lifecycle has


def _examples(predicate: Any) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(provider, example, schema, instance) of the valid documented answers that match."""
    found = []
    for provider in schemas.PROVIDERS:
        folder = Path(schemas.__file__).resolve().parent / provider / "examples"
        for path in sorted(folder.glob("*.json")):
            wrapper = schemas.load(provider, f"examples/{path.stem}")
            instance = wrapper.get("instance")
            if wrapper.get("valid") is True and predicate(provider, wrapper["schema"], instance):
                found.append((provider, path.stem, wrapper["schema"], instance))
    return found


def _wire(provider: str) -> set[str]:
    return {s["wire"] for s in schemas.load(provider, "lifecycle")["states"].values()}


def _state_body(provider: str, schema: str, instance: Any) -> bool:
    status = instance.get("status") if isinstance(instance, dict) else None
    return isinstance(status, str) and status in _wire(provider)


def _findings(provider: str, schema: str, body: Any) -> list[tuple[str, str, str]]:
    found = schema_findings(provider, schema, body, operation="status", request="GET status")
    return [(f.pointer, f.severity, f.expected) for f in found]


STATE_BODIES = _examples(_state_body)


def _answers_states(provider: str) -> bool:
    """Whether some answer of the provider carries a job's status (Gemini's blocking
    generateContent answers none: it is stateless on the wire)."""
    api = schemas.load(provider, "api")
    names = {
        r["schema"]
        for op in api["operations"].values()
        for r in op["responses"].values()
        if "schema" in r
    }
    return any("status" in schemas.load(provider, name).get("properties", {}) for name in names)


STATEFUL = [provider for provider in schemas.PROVIDERS if _answers_states(provider)]


def test_every_provider_has_state_bodies() -> None:
    assert {provider for provider, *_ in STATE_BODIES} == set(STATEFUL)


@pytest.mark.parametrize(
    ("provider", "schema", "body"),
    [(p, s, b) for p, _, s, b in STATE_BODIES],
    ids=[f"{p}-{e}" for p, e, _, _ in STATE_BODIES],
)
def test_a_status_outside_the_lifecycle_is_breaking(
    provider: str, schema: str, body: dict[str, Any]
) -> None:
    drifted = {**copy.deepcopy(body), "status": OUTSIDE}
    found = _findings(provider, schema, drifted)
    assert ("/status", BREAKING) in [(p, s) for p, s, _ in found], found
    assert all(severity == BREAKING for _, severity, _ in found), found


@pytest.mark.parametrize("provider", STATEFUL)
def test_a_state_body_names_the_lifecycle_statuses_as_expected(provider: str) -> None:
    _, _, schema, body = next(b for b in STATE_BODIES if b[0] == provider)
    ((_, _, expected),) = [
        f for f in _findings(provider, schema, {**body, "status": OUTSIDE}) if f[0] == "/status"
    ]
    assert all(repr(wire).replace("'", '"') in expected for wire in _wire(provider)), expected


@pytest.mark.parametrize("provider", schemas.PROVIDERS)
def test_a_status_outside_the_lifecycle_breaks_the_transitions(provider: str) -> None:
    initial = schemas.load(provider, "lifecycle")["initial"]
    first = schemas.load(provider, "lifecycle")["states"][initial]["wire"]
    found = transition_findings(provider, [first, OUTSIDE], request="GET status")
    assert [(f.pointer, f.severity, f.observed) for f in found] == [
        ("/1", BREAKING, f'"{OUTSIDE}"')
    ]


ENUM_DRIFTS = [
    # (provider, example, pointer, a value outside the enum)
    ("seaart", "status.completed-error.doc", "/error_type", "GPU_ON_FIRE"),
    ("seaart", "cancel.cancellation-requested", "/status", "CANCEL_PENDING"),
    ("seaart", "result.success.doc", "/outputs/0/content_type", "image/avif"),
    ("seaart", "result.success.doc", "/outputs/0/type", "video"),
    ("pixazo", "result.completed.seed004", "/images/0/content_type", "image/avif"),
]


def _put(body: Any, pointer: str, value: Any) -> Any:
    edited = copy.deepcopy(body)
    *parents, last = pointer.strip("/").split("/")
    node = edited
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return edited


@pytest.mark.parametrize(("provider", "example", "pointer", "value"), ENUM_DRIFTS)
def test_any_value_outside_a_closed_set_is_breaking(
    provider: str, example: str, pointer: str, value: str
) -> None:
    wrapper = schemas.load(provider, f"examples/{example}")
    body = _put(wrapper["instance"], pointer, value)
    found = _findings(provider, wrapper["schema"], body)
    assert [(p, s) for p, s, _ in found] == [(pointer, BREAKING)], found
    assert value not in found[0][2]  # expected lists the contract's own values


def test_a_lone_status_const_keeps_its_own_expected_value() -> None:
    """A submit answer's status is QUEUED, not any lifecycle status."""
    body = schemas.load("segmind", "examples/submit.doc")["instance"]
    found = _findings("segmind", "submit", {**body, "status": OUTSIDE})
    assert found == [("/status", BREAKING, 'one of ["QUEUED"]')]


def test_an_unknown_new_field_stays_additive() -> None:
    body = schemas.load("seaart", "examples/status.in_queue.doc")["instance"]
    found = _findings("seaart", "status", {**body, "eta": 12.5})
    assert found == [("/eta", ADDITIVE, "no such field")]
