"""Reusable contract checks. Each turns an observation into :class:`Finding` s.

A finding names the provider, the operation, the request, a JSON pointer, what the contract
expected and what was observed, and a severity:
- **breaking**: a missing field, a changed type, a value the contract does not allow
  (including any value outside a closed set the contract defines: a status outside the
  lifecycle, an unknown ``error_type``, content type or cancel status, since a client that
  switches on the documented values cannot handle it), an unexpected HTTP status code, an
  illegal lifecycle transition, a job that never ends, a wrong image;
- **additive**: an unknown new field: a client reading the contract still works, but the
  contract should learn about it.

These are contract findings, never errors of the tool itself (STYLE rule 5): the suite turns
breaking ones into failed tests (the contracts' :class:`ContractViolation`, whose
``violations`` are the findings). Schema findings are built from the contracts' one
explanation, :func:`nanobanana_mock.schemas.explain`.

They live in the contracts package, beside the schemas they read, because two sides use them:
the conformance suite and the mock's validating proxy (``sources/proxy.py``), and the mock
never imports the suite (the import contracts in pyproject.toml).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from nanobanana_mock import schemas
from nanobanana_mock.schemas import ContractViolation, Violation
from nanobanana_mock.schemas.violations import MORE

__all__ = [
    "ADDITIVE",
    "BREAKING",
    "ContractViolation",
    "Finding",
    "http_status_findings",
    "image_findings",
    "response_findings",
    "route_status_findings",
    "schema_findings",
    "transition_findings",
]

BREAKING = "breaking"
ADDITIVE = "additive"


@dataclass(frozen=True, slots=True)
class Finding:
    provider: str
    operation: str
    request: str  # e.g. "GET /v2/requests/{id}/status" or a short description
    pointer: str  # JSON pointer into the observed body ("" = the whole body or the answer)
    expected: str
    observed: str
    severity: str
    check: str = "schema"  # schema | http_status | transition | image | auth | ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"[{self.severity}] {self.provider}.{self.operation} {self.pointer or '/'}: "
            f"expected {self.expected}, observed {self.observed} ({self.request})"
        )


def _short(value: Any, limit: int = 120) -> str:
    import json

    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _leaves(violation: Violation) -> list[Violation]:
    """The violations that explain a failure. For ``oneOf``/``anyOf`` (state bodies are told
    apart by their ``status``), the branch that fits best: the one whose own ``status`` rule
    holds and that has the fewest violations."""
    branches = violation.branches()
    if not branches:
        return [violation]
    depth = len(violation.path)

    def on_status(each: Violation) -> bool:
        return list(each.path[depth:])[:1] == ["status"]

    def rank(found: tuple[Violation, ...]) -> tuple[int, int]:
        return (1 if any(on_status(e) for e in found) else 0, len(found))

    best = min(branches, key=rank)
    if rank(best)[0] == 1:  # no branch has this status: the status value itself is new
        status = [e for e in best if on_status(e)]
        return status[:1] or list(best)
    return [leaf for sub in best for leaf in _leaves(sub)]


def _classify(violation: Violation) -> tuple[str, str, str, str]:
    """(pointer, expected, observed, severity) for one leaf violation."""
    rule, value, expected = violation.rule, violation.value, violation.expected
    if rule in ("additionalProperties", "unevaluatedProperties"):
        name = violation.path[-1]
        return (
            violation.pointer,
            "no such field",
            f"new field {name!r} = {_short(value)}",
            ADDITIVE,
        )
    if rule == "required":
        return (violation.pointer, f"required field {expected!r}", "missing", BREAKING)
    if rule in ("enum", "const"):  # a closed set: any value outside it is breaking
        allowed = expected if rule == "enum" else [expected]
        return (violation.pointer, f"one of {_short(allowed)}", _short(value), BREAKING)
    if rule == "type":
        observed = f"{type(value).__name__} {_short(value)}"
        return (violation.pointer, f"type {expected}", observed, BREAKING)
    return (violation.pointer, f"{rule} {_short(expected)}", _short(value), BREAKING)


def _matched_no_state(parent: Violation, leaf: Violation) -> bool:
    """A status that no state body of a ``oneOf``/``anyOf`` allows (a lone ``const`` or
    ``enum``, as in a submit answer or SeaArt's cancel, keeps its own values)."""
    return leaf.rule in ("enum", "const") and parent.rule in ("oneOf", "anyOf")


EXPLAIN_LIMIT = 10_000  # violations a body's check names: all of them, for any real answer
EXPLAIN_SECONDS = 5.0  # off the mock's event loop: a hostile body still ends


def schema_findings(
    provider: str,
    schema: str,
    body: Any,
    *,
    operation: str,
    request: str,
    check: str = "schema",
    violations: Iterable[Violation] | None = None,
) -> list[Finding]:
    """Every way ``body`` breaks ``schemas/<provider>/<schema>.json`` (or, when the caller
    already has them, the ``violations`` it found: the mock passes a bounded list for a body
    a client sent, since an unbounded explanation of a hostile body would stall it)."""
    found: dict[tuple[str, str], Finding] = {}
    statuses = sorted(_neutral(provider))
    if violations is None:
        violations = schemas.explain(
            provider, schema, body, limit=EXPLAIN_LIMIT, seconds=EXPLAIN_SECONDS
        )
    for violation in violations:
        if violation.rule == MORE:
            continue
        for leaf in _leaves(violation):
            pointer, expected, observed, severity = _classify(leaf)
            if check == "request":  # the provider would refuse the request: never additive
                severity = BREAKING
            if pointer == "/status" and _matched_no_state(violation, leaf):
                expected = f"one of {_short(statuses)}"  # the lifecycle's wire statuses
            finding = Finding(
                provider, operation, request, pointer, expected, observed, severity, check
            )
            found.setdefault((pointer, expected), finding)
    return sorted(found.values(), key=lambda f: (f.severity != BREAKING, f.pointer))


def http_status_findings(
    provider: str,
    operation: str,
    status: int,
    *,
    request: str,
    expected: Iterable[int] | None = None,
) -> list[Finding]:
    """An HTTP code the operation's contract does not list (or not the one expected)."""
    declared = schemas.load(provider, "api")["operations"][operation]["responses"]
    allowed = sorted(set(expected) if expected is not None else {int(code) for code in declared})
    if status in allowed:
        return []
    return [
        Finding(
            provider,
            operation,
            request,
            "",
            f"HTTP {' or '.join(map(str, allowed))}",
            f"HTTP {status}",
            BREAKING,
            "http_status",
        )
    ]


def response_findings(
    provider: str,
    operation: str,
    status: int,
    body: Any,
    *,
    request: str,
    expected: Iterable[int] | None = None,
) -> list[Finding]:
    """The code must be declared for the operation (or be one of ``expected``), and the body
    must match the schema declared for that code."""
    found = http_status_findings(provider, operation, status, request=request, expected=expected)
    if found:
        return found
    spec = schemas.load(provider, "api")["operations"][operation]["responses"].get(str(status))
    if spec is None or "schema" not in spec:  # an expected code the contract has no body for
        return []
    return schema_findings(provider, spec["schema"], body, operation=operation, request=request)


def route_status_findings(
    provider: str, operation: str, status: int, wire: str | None, *, request: str
) -> list[Finding]:
    """The HTTP code ``lifecycle.json`` declares, on the operation's lifecycle route, for the
    state a body reports by its wire status (None: any state; a SeaArt result has no status)."""
    route = schemas.load(provider, "api")["operations"][operation].get("lifecycle_route")
    codes = schemas.load(provider, "lifecycle")["http_status"].get(route, {})
    states = _neutral(provider).get(wire, []) if wire is not None else list(codes)
    expected = {codes[s] for s in states if s in codes and s != "EXPIRED"}
    if not expected:  # not a lifecycle route, or a status the schema check reports
        return []
    found = http_status_findings(provider, operation, status, request=request, expected=expected)
    return [replace(f, expected=f"{f.expected} for {wire or 'a job'}") for f in found]


@functools.cache
def _neutral(provider: str) -> dict[str, tuple[str, ...]]:
    """Each wire status of the lifecycle and its states (cached: do not mutate it)."""
    lifecycle = schemas.load(provider, "lifecycle")
    wire: dict[str, tuple[str, ...]] = {}
    for state, info in lifecycle["states"].items():
        wire[info["wire"]] = (*wire.get(info["wire"], ()), state)
    return wire


def transition_findings(
    provider: str, observed: Sequence[Any], *, request: str, operation: str = "status"
) -> list[Finding]:
    """Does a sequence of observed wire statuses follow the lifecycle? Polling may skip
    states, so any state reachable from the previous one is allowed; a terminal state must
    stay terminal, and a status may never go back; a status outside the lifecycle is
    breaking (reported at its first read). A finding's pointer is the index of the offending
    read in ``observed`` (``/3``: the fourth status read); ``operation`` is the route read."""
    lifecycle = schemas.load(provider, "lifecycle")
    wire = _neutral(provider)

    def finding(index: int, expected: str, observed: str) -> Finding:
        return Finding(
            provider, operation, request, f"/{index}", expected, observed, BREAKING, "transition"
        )

    found: list[Finding] = []
    previous: str | None = None  # the last status in the lifecycle
    unknown: set[str] = set()  # each status outside the lifecycle is reported once
    for index, status in enumerate(observed):
        if not isinstance(status, str) or status not in wire:
            if _short(status) not in unknown:  # no client can tell what it means
                unknown.add(_short(status))
                found.append(finding(index, f"one of {_short(sorted(wire))}", _short(status)))
            continue
        if previous is not None and status != previous:
            allowed = _reachable(provider, previous)
            if not set(wire[status]) & allowed:
                terminal = all(lifecycle["states"][s]["terminal"] for s in wire[previous])
                expected = "to stay terminal" if terminal else f"one of {sorted(allowed)}"
                found.append(finding(index, f"after {previous}: {expected}", status))
                continue
        previous = status
    return found


@functools.cache
def _reachable(provider: str, status: str) -> frozenset[str]:
    """The states reachable in one or more transitions from a state of the wire ``status``
    (worked out once per status: the proxy asks on every status answer it relays)."""
    transitions = schemas.load(provider, "lifecycle")["transitions"]
    seen: set[str] = set()
    todo = list(_neutral(provider)[status])
    while todo:
        for nxt in transitions.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


def image_findings(
    provider: str,
    *,
    request: str,
    advertised: Mapping[str, Any],
    content_type: str | None,
    size: tuple[int, int] | None,
    expected_size: tuple[int, int],
) -> list[Finding]:
    """A downloaded output against what the result advertised and the request implies."""
    found = []
    if advertised.get("content_type") and content_type != advertised["content_type"]:
        found.append(
            Finding(
                provider,
                "image",
                request,
                "/content_type",
                str(advertised["content_type"]),
                str(content_type),
                BREAKING,
                "image",
            )
        )
    if size is None:
        found.append(
            Finding(
                provider,
                "image",
                request,
                "",
                "a decodable image",
                "not an image",
                BREAKING,
                "image",
            )
        )
        return found
    if size != expected_size:
        found.append(
            Finding(
                provider,
                "image",
                request,
                "",
                "{}x{} pixels".format(*expected_size),
                "{}x{} pixels".format(*size),
                BREAKING,
                "image",
            )
        )
    for name, actual in (("width", size[0]), ("height", size[1])):
        if isinstance(advertised.get(name), int) and advertised[name] != actual:
            found.append(
                Finding(
                    provider,
                    "image",
                    request,
                    f"/{name}",
                    str(advertised[name]),
                    str(actual),
                    BREAKING,
                    "image",
                )
            )
    return found
