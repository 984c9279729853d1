"""The fault engine: rules with a match, an effect and a scope, evaluated in order.

A rule's shape is the contract ``schemas/mock/fault_rule.json``. This module decides which
rules fire for a request; applying them (an error in the provider's envelope, a failed job,
a delay, a broken connection) is the middleware's and the providers' job. Every random draw
comes from a stream seeded by the mock's seed and the rule's id, so a run replays exactly.

Clients that can neither add headers nor reach the control plane can still ask for a fault
with markers in the prompt: ``[mock:fail]``, ``[mock:fail=CONTENT_BLOCKED]``,
``[mock:fail-at=start]``, ``[mock:fail-after-polls=3]``, ``[mock:status=429]``,
``[mock:delay=30]`` (extra processing seconds). Markers apply to the submit or sync call that
carries them.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import schemas

from .http import MAX_PROBLEMS, Problem, fingerprint, problems_of
from .jobs import Failure, Surface
from .journal import redact
from .validation import is_valid

__all__ = ["FaultEngine", "Fired", "JobEffects", "RequestFacts", "RuleError", "prompt_rules"]

TERMINAL_EFFECTS = ("http_error", "transport")
MAX_RULES = 1000
MARKER_PREFIX = "[mock:"  # every prompt marker starts so
MARKER = re.compile(r"\[mock:([a-z-]+)(?:=([A-Za-z0-9_.]+))?\]")


class RuleError(ValueError):
    """A fault rule or marker the engine cannot use; ``problems`` name each reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(slots=True)  # not frozen: built on every request, and frozen init is slower
class RequestFacts:
    """What a rule may match on, gathered once per request."""

    provider: str | None
    operation: str | None
    method: str
    key: str | None
    model: str | None
    prompt: str | None
    headers: Mapping[str, str]  # case-insensitive (the request's own headers)
    declared: frozenset[int] = frozenset()  # error codes this operation's contract allows


@dataclass(frozen=True, slots=True)
class Fired:
    """A rule that fired for a request: its id, effect kind and effect parameters."""

    rule_id: str
    kind: str
    params: Mapping[str, Any]
    draw: float = 0.0  # a uniform draw for latency distributions, from the rule's stream


@dataclass(slots=True)
class JobEffects:
    """What fired rules decide about the job a submit creates."""

    failure: Failure | None = None
    extra_queue: float = 0.0
    extra_processing: float = 0.0
    image_scale: float = 1.0


@dataclass(slots=True)
class Rule:
    id: str
    spec: dict[str, Any]
    added_at: float
    rng: random.Random
    matched: int = 0
    fired: int = 0
    _regex: re.Pattern[str] | None = None
    _keys: frozenset[str] | None = None

    @property
    def kind(self) -> str:
        return next(iter(self.spec["effect"]))

    def public(self) -> dict[str, Any]:
        """The rule as listed: its API keys as fingerprints, never in clear."""
        spec = self.spec
        match = spec.get("match")
        if match and "api_key" in match:
            keys = match["api_key"]
            shown = [redact(k) for k in keys] if isinstance(keys, list) else redact(keys)
            spec = {**spec, "match": {**match, "api_key": shown}}
        return {**spec, "matched": self.matched, "fired": self.fired}


@dataclass(slots=True)
class FaultEngine:
    """The ordered rule list of one mock."""

    seed: int
    rules: list[Rule] = field(default_factory=list)
    _next: int = 0

    def add(self, spec: Any, now: float) -> Rule:
        if len(self.rules) >= MAX_RULES:
            raise RuleError([f"at most {MAX_RULES} rules; remove some first"])
        problems = problems_of(schemas.validator("mock", "fault_rule"), spec)
        if problems:
            raise RuleError([str(p) for p in problems])
        spec = dict(spec)
        if "id" not in spec:
            self._next += 1
            spec["id"] = f"r{self._next}"
        if any(rule.id == spec["id"] for rule in self.rules):
            raise RuleError([f"id: a rule {spec['id']!r} exists already"])
        match = spec.get("match", {})
        regex = None
        if "prompt_regex" in match:
            try:
                regex = re.compile(match["prompt_regex"])
            except re.error as exc:
                raise RuleError([f"match.prompt_regex: {exc}"]) from None
        keys = match.get("api_key")
        rule = Rule(
            id=spec["id"],
            spec=spec,
            added_at=now,
            rng=random.Random(f"{self.seed}/fault/{spec['id']}"),
            _regex=regex,
            _keys=None if keys is None else frozenset(map(fingerprint, _listed(keys))),
        )
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [rule for rule in self.rules if rule.id != rule_id]
        return len(self.rules) < before

    def clear(self) -> None:
        self.rules.clear()
        self._next = 0

    def evaluate(self, facts: RequestFacts, now: float) -> list[Fired]:
        """The rules that fire for this request, in order, up to the first terminal one."""
        fired: list[Fired] = []
        for rule in self.rules:
            if not _matches(rule, facts):
                continue
            rule.matched += 1
            if not _admitted(rule, now):
                continue
            rule.fired += 1
            fired.append(
                Fired(rule.id, rule.kind, rule.spec["effect"][rule.kind], rule.rng.random())
            )
            if rule.kind in TERMINAL_EFFECTS:
                break
        return fired


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches(rule: Rule, facts: RequestFacts) -> bool:
    if rule.kind == "http_error" and not _declared(rule.spec["effect"]["http_error"], facts):
        return False  # an injected error stays inside the operation's contract
    match = rule.spec.get("match", {})
    for name, actual in (
        ("provider", facts.provider),
        ("operation", facts.operation),
        ("method", facts.method),
        ("model", facts.model),
    ):
        if name in match and actual not in _listed(match[name]):
            return False
    if rule._keys is not None and (facts.key is None or fingerprint(facts.key) not in rule._keys):
        return False
    prompt = facts.prompt
    if "prompt_contains" in match and (prompt is None or match["prompt_contains"] not in prompt):
        return False
    if rule._regex is not None and (prompt is None or not rule._regex.search(prompt)):
        return False
    return all(facts.headers.get(name) == value for name, value in match.get("headers", {}).items())


def _declared(effect: Mapping[str, Any], facts: RequestFacts) -> bool:
    status = effect["status"]
    if status in (402, 406):  # insufficient credits: each provider has its own code
        return bool({402, 406} & facts.declared)
    return status in facts.declared


def _admitted(rule: Rule, now: float) -> bool:
    """Apply the rule's scope to its latest matching request (``rule.matched`` counts it)."""
    scope = rule.spec.get("scope", {})
    n = rule.matched
    window = scope.get("window", {})
    if now < window.get("from", 0.0) or ("until" in window and now >= window["until"]):
        return False
    if "ttl" in scope and now >= rule.added_at + scope["ttl"]:
        return False
    if "times" in scope and rule.fired >= scope["times"]:
        return False
    if n <= scope.get("after", 0) or n > scope.get("first", n):
        return False
    if "every" in scope and n % scope["every"]:
        return False
    return "probability" not in scope or rule.rng.random() < scope["probability"]


def job_effects(fired: list[Fired]) -> JobEffects:
    """Fold the fired job_failure and queue/processing latency rules into one decision."""
    effects = JobEffects()
    for item in fired:
        if item.kind == "job_failure" and effects.failure is None:
            p = item.params
            effects.failure = Failure(
                error=p.get("error", "Task execution failed"),
                error_type=p.get("error_type", "INFERENCE_FAILURE"),
                surface=Surface(p.get("surface", "end")),
                after_polls=p.get("after_polls"),
            )
        elif item.kind == "drift" and "image_scale" in item.params:
            effects.image_scale *= float(item.params["image_scale"])
        elif item.kind == "latency" and item.params.get("target") in ("queue", "processing"):
            seconds = latency_seconds(item)
            if item.params["target"] == "queue":
                effects.extra_queue += seconds
            else:
                effects.extra_processing += seconds
    return effects


def latency_seconds(item: Fired) -> float:
    """The delay a latency effect asks for, drawn with the rule's own uniform draw."""
    p = item.params
    if "fixed" in p:
        return float(p["fixed"])
    if "uniform" in p:
        low, high = sorted(p["uniform"])
        return low + (high - low) * item.draw
    median, sigma = p["lognormal"]["median"], p["lognormal"]["sigma"]
    return float(median * _lognormal_quantile(item.draw, sigma))


def _lognormal_quantile(u: float, sigma: float) -> float:
    u = min(max(u, 1e-12), 1 - 1e-12)
    return math.exp(sigma * NormalDist().inv_cdf(u))


def prompt_rules(prompt: str | None) -> list[Fired]:
    """Faults asked for by ``[mock:...]`` markers in a prompt."""
    if not prompt or MARKER_PREFIX not in prompt:
        return []
    failure: dict[str, Any] = {}
    fired: list[Fired] = []
    for name, value in MARKER.findall(prompt):
        if name == "fail":
            failure.setdefault("error", "Task execution failed")  # a bare [mock:fail] fails
            if value:
                failure["error_type"] = value
        elif name == "fail-at" and value in ("submit", "start", "end"):
            failure["surface"] = value
        elif name == "fail-after-polls" and value.isdigit() and int(value) > 0:
            failure["after_polls"] = int(value)
        elif name == "status" and value.isdigit():
            fired.append(Fired("prompt", "http_error", {"status": int(value)}))
        elif name == "delay" and _number(value) is not None:
            fired.append(
                Fired("prompt", "latency", {"target": "processing", "fixed": _number(value)})
            )
    if failure:
        failure.setdefault("error", "Task execution failed")
        fired.insert(0, Fired("prompt", "job_failure", failure))
    _check_markers(fired)
    return fired


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 <= value <= 86400 else None


def _check_markers(fired: list[Fired]) -> None:
    """Markers follow the rule schema too: an unknown status or error type is refused. A
    prompt may hold a thousand markers: each distinct one is checked once, by jsonschema-rs,
    and at most MAX_PROBLEMS problems are explained (then counted)."""
    problems: list[Problem] = []
    validator = schemas.validator("mock", "fault_rule")
    seen: set[str] = set()
    unexplained = 0  # invalid markers past the problems shown
    for item in fired:
        rule = {"effect": {item.kind: dict(item.params)}}
        key = repr(rule)
        if key in seen or is_valid("mock", "fault_rule", rule):
            continue
        seen.add(key)
        if len(problems) < MAX_PROBLEMS:
            problems += problems_of(validator, rule)
        else:
            unexplained += 1
    if problems:
        lines = [f"prompt marker: {p}" for p in problems[:MAX_PROBLEMS]]
        if unexplained:
            lines.append(f"... and {unexplained} more invalid prompt markers")
        raise RuleError(lines)
