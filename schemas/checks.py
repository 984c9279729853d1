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
breaking ones into failed tests (:class:`ContractViolation`).

They live in the contracts package, beside the schemas they read, because two sides use them:
the conformance suite and the mock's validating proxy (``sources/proxy.py``), and the mock
never imports the suite (the import contracts in pyproject.toml).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from jsonschema.exceptions import ValidationError

from nanobanana_mock import schemas

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


class ContractViolation(AssertionError):
    """A target broke its contract: the findings say where and how."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        super().__init__("\n".join(map(str, findings)))
        self.findings = list(findings)


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


def _pointer(path: Iterable[Any]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _short(value: Any, limit: int = 120) -> str:
    import json

    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors that explain a failure. For ``oneOf``/``anyOf`` (state bodies are told
    apart by their ``status``), the branch that fits best: the one whose own ``status`` rule
    holds and that has the fewest errors."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def rank(errors: list[ValidationError]) -> tuple[int, int]:
        on_status = any(list(e.relative_path)[:1] == ["status"] for e in errors)
        return (1 if on_status else 0, len(errors))

    best = min(branches.values(), key=rank)
    if rank(best)[0] == 1:  # no branch has this status: the status value itself is new
        status = [e for e in best if list(e.relative_path)[:1] == ["status"]]
        return status[:1] or best
    return [leaf for sub in best for leaf in _leaves(sub)]


def _classify(error: ValidationError) -> list[tuple[str, str, str, str]]:
    """(pointer, expected, observed, severity) for one leaf error; one per unknown field."""
    pointer = _pointer(error.absolute_path)
    rule = error.validator
    # JSON values; the stubs also allow Unset, which only a hand-made error leaves
    instance: Any = error.instance
    value: Any = error.validator_value
    if rule in ("additionalProperties", "unevaluatedProperties"):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        return [
            (
                f"{pointer}/{name}",
                "no such field",
                f"new field {name!r} = {_short(instance[name])}",
                ADDITIVE,
            )
            for name in extra
        ]
    if rule == "required":
        missing = [n for n in value if n not in instance]
        return [(f"{pointer}/{n}", f"required field {n!r}", "missing", BREAKING) for n in missing]
    if rule in ("enum", "const"):  # a closed set: any value outside it is breaking
        allowed = value if rule == "enum" else [value]
        return [(pointer, f"one of {_short(allowed)}", _short(instance), BREAKING)]
    if rule == "type":
        observed = f"{type(instance).__name__} {_short(instance)}"
        return [(pointer, f"type {value}", observed, BREAKING)]
    expected = f"{rule} {_short(value)}"
    return [(pointer, expected, _short(instance), BREAKING)]


def _matched_no_state(leaf: ValidationError) -> bool:
    """A status that no state body of a ``oneOf``/``anyOf`` allows (a lone ``const`` or
    ``enum``, as in a submit answer or SeaArt's cancel, keeps its own values)."""
    parent = leaf.parent
    return leaf.validator in ("enum", "const") and getattr(parent, "validator", None) in (
        "oneOf",
        "anyOf",
    )


def schema_findings(
    provider: str,
    schema: str,
    body: Any,
    *,
    operation: str,
    request: str,
    check: str = "schema",
    errors: Iterable[ValidationError] | None = None,
) -> list[Finding]:
    """Every way ``body`` breaks ``schemas/<provider>/<schema>.json`` (or, when the caller
    already has them, the ``errors`` it found: the mock passes a bounded list for a body a
    client sent, since an unbounded explanation of a hostile body would stall it)."""
    found: dict[tuple[str, str], Finding] = {}
    statuses = sorted(_neutral(provider))
    if errors is None:
        errors = schemas.validator(provider, schema).iter_errors(body)
    for error in errors:
        for leaf in _leaves(error):
            for pointer, expected, observed, severity in _classify(leaf):
                if check == "request":  # the provider would refuse the request: never additive
                    severity = BREAKING
                if pointer == "/status" and _matched_no_state(leaf):
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
