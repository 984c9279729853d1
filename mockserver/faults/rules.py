"""The fault engine: rules with a match, an effect and a scope, evaluated in order.

A rule's shape is the contract ``schemas/mock/fault_rule.json``. This module decides which
rules fire for a request, as :class:`~.effects.Effect` objects of their kinds; applying them
(an error in the provider's envelope, a failed job, a delay, a broken connection) is the
effects' own hooks' job, which the pipeline calls. Every random draw comes from a stream
seeded by the mock's seed and the rule's id, so a run replays exactly.

Faults asked for by markers in a prompt (``[mock:fail]``) are read in ``markers.py``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

from nanobanana_mock import schemas
from nanobanana_mock.schemas.violations import dotted

from ..engine.journal import redact
from ..engine.keys import SEALED, sealed
from ..http import fingerprint, hide_secrets
from .effects import EFFECTS, Effect
from .facts import RequestFacts
from .reach import unreachable

__all__ = [
    "FaultEngine",
    "RequestFacts",
    "RuleError",
    "compile_prompt_regex",
    "portable",
    "rule_problems",
    "sealed_spec",
]

MAX_RULES = 1000

# prompt_regex runs on RE2, whose matching time is linear in the text (no backtracking: the
# "(a+)+$" that froze Python's re for 18 s is microseconds). What is left is bounded here:
REGEX_MAX_MEM = 256 * 1024  # bytes RE2 may use per rule (program and DFA cache): 1000 rules
# stay under 256 MiB, and a pattern too large for it is refused when the rule is added
REGEX_MAX_PROGRAM = 1000  # RE2 program size (instructions): the cost of a search is at most
# proportional to it per character, so a rule like "(.{0,100}){10}" is refused at once
REGEX_MAX_SUBJECT = 4096  # characters of a prompt a regex is searched in: a prompt can be
# 20,000 characters (and a refused body longer); rules match on its start, which keeps the
# worst search of the most complex allowed pattern to a few milliseconds


def _regex_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = REGEX_MAX_MEM
    options.never_capture = True  # only "does it match" is asked: the DFA answers that alone
    options.log_errors = False  # a refused pattern is the caller's 400, not a log line
    return options


def compile_prompt_regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2, or :class:`RuleError` naming ``match.prompt_regex``."""
    try:
        regex = re2.compile(pattern, _regex_options())
    except (re2.error, UnicodeEncodeError) as exc:  # a lone surrogate cannot be UTF-8
        reason = exc.args[0] if exc.args and not isinstance(exc, UnicodeError) else str(exc)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RuleError(
            [f"match.prompt_regex: not a regular expression RE2 accepts: {reason}"],
            [("match", "prompt_regex")],
        ) from None
    if regex.programsize > REGEX_MAX_PROGRAM:
        raise RuleError(
            [
                f"match.prompt_regex: too complex (RE2 program size {regex.programsize}, "
                f"at most {REGEX_MAX_PROGRAM}); simplify it, e.g. smaller repetition counts"
            ],
            [("match", "prompt_regex")],
        )
    return regex


class RuleError(ValueError):
    """A fault rule or marker the engine cannot use; ``problems`` name each reason, and
    ``paths`` (when known) where in the rule each one is. A problem with a path starts with
    its dotted form (``match.model[1]: ...``, :func:`~nanobanana_mock.schemas.dotted`)."""

    def __init__(
        self, problems: list[str], paths: list[tuple[str | int, ...]] | None = None
    ) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.paths = paths if paths is not None else [() for _ in problems]
        self.index = 0  # which of several rules added together (the control plane's list)

    def reasons(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Each problem's path, and the problem without the place it starts with."""
        return [
            (path, problem.removeprefix(f"{dotted(path)}: ") if path else problem)
            for path, problem in zip(self.paths, self.problems, strict=True)
        ]


@dataclass(slots=True)
class Rule:
    id: str
    spec: dict[str, Any]
    added_at: float
    rng: random.Random
    effect: type[Effect] = Effect  # the class of its effect's kind (EFFECTS)
    matched: int = 0
    fired: int = 0
    _regex: Any = None  # a compiled RE2 pattern
    _keys: frozenset[str] | None = None

    @property
    def params(self) -> Mapping[str, Any]:
        """The parameters of its effect."""
        params: Mapping[str, Any] = self.spec["effect"][self.effect.kind]
        return params

    def public(self) -> dict[str, Any]:
        """The rule as listed: its API keys as fingerprints, never in clear."""
        spec = self.spec
        match = spec.get("match")
        if match and "api_key" in match:
            keys = match["api_key"]
            shown = [redact(k) for k in keys] if isinstance(keys, list) else redact(keys)
            spec = {**spec, "match": {**match, "api_key": shown}}
        return {**spec, "matched": self.matched, "fired": self.fired}

    def __getstate__(self) -> tuple[Any, ...]:
        """Picklable (a shared store's snapshot): the compiled pattern is left out and made
        again when loaded."""
        return (self.id, self.spec, self.added_at, self.rng, self.effect, self.matched,
                self.fired, self._keys)  # fmt: skip

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.id, self.spec, self.added_at, self.rng, self.effect, self.matched, self.fired,
         self._keys) = state  # fmt: skip
        match = self.spec.get("match", {})
        self._regex = (
            compile_prompt_regex(match["prompt_regex"]) if "prompt_regex" in match else None
        )


def sealed_spec(spec: Any) -> Any:
    """A rule as it may go to a shared store: its ``match.api_key`` sealed (a fingerprint,
    :func:`~..engine.keys.sealed`), which the engine matches and lists as the key itself."""
    if not isinstance(spec, dict):
        return spec
    match = spec.get("match")
    if not isinstance(match, dict) or "api_key" not in match:
        return spec
    keys = match["api_key"]
    if isinstance(keys, str):
        keys = _sealed(keys)
    elif isinstance(keys, list):
        keys = [_sealed(k) for k in keys]
    return {**spec, "match": {**match, "api_key": keys}}


def _sealed(key: Any) -> Any:
    """A valid key sealed; anything else as it is (the rule is refused as it was given)."""
    return sealed(key) if isinstance(key, str) and 0 < len(key) <= 200 else key


def portable(facts: RequestFacts, engine: FaultEngine) -> RequestFacts:
    """``facts`` as they may go to a shared store's log: the key as its fingerprint
    (``key_id``), and of the headers only those a rule names, a value that holds the key
    sealed (a rule matches it by fingerprint)."""
    names = engine.header_names()
    key = facts.key
    headers: dict[str, str] = {}
    for name in names:
        value = facts.headers.get(name)
        if value is not None:
            headers[name] = sealed(value) if key and key in value else value
    return dataclasses.replace(
        facts,
        key=None,
        key_id=fingerprint(key) if key else facts.key_id,
        headers=headers,
    )


@dataclass(slots=True)
class FaultEngine:
    """The ordered rule list of one mock."""

    seed: int
    rules: list[Rule] = field(default_factory=list)
    _next: int = 0
    _ids: set[str] = field(default_factory=set, repr=False)  # of ``rules``: O(1) duplicates
    # regexes() by pattern, made when the rules change rather than on each request
    _regexes: dict[str, Any] | None = field(default=None, repr=False)
    _header_names: frozenset[str] | None = field(default=None, repr=False)  # (likewise)

    def __post_init__(self) -> None:
        self._ids = {rule.id for rule in self.rules}

    def add(self, spec: Any, now: float) -> Rule:
        if len(self.rules) >= MAX_RULES:
            raise RuleError([f"at most {MAX_RULES} rules; remove some first"])
        problems = [hide_secrets(v) for v in schemas.explain("mock", "fault_rule", spec)]
        if problems:
            raise RuleError([str(p) for p in problems], [p.path for p in problems])
        never = unreachable(spec)  # a known name the rule's other parts rule out
        if never:
            raise RuleError([f"{dotted(path)}: {m}" for path, m in never], [p for p, _ in never])
        spec = dict(spec)
        if "id" in spec and spec["id"] in self._ids:
            raise RuleError([f"id: a rule {spec['id']!r} exists already"], [("id",)])
        match = spec.get("match", {})
        regex = None
        if "prompt_regex" in match:
            regex = compile_prompt_regex(match["prompt_regex"])
        if "id" not in spec:
            self._next += 1
            while f"r{self._next}" in self._ids:
                self._next += 1  # "r2" given by hand earlier: the next free number
            spec["id"] = f"r{self._next}"
        keys = match.get("api_key")
        rule = Rule(
            id=spec["id"],
            spec=spec,
            added_at=now,
            rng=random.Random(f"{self.seed}/fault/{spec['id']}"),
            effect=EFFECTS[next(iter(spec["effect"]))],
            _regex=regex,
            _keys=None if keys is None else frozenset(map(fingerprint, _listed(keys))),
        )
        self.rules.append(rule)
        self._ids.add(rule.id)
        self._regexes = self._header_names = None
        return rule

    def check(self, specs: Iterable[Any]) -> list[tuple[int, tuple[str | int, ...], str]]:
        """Every problem adding ``specs`` in order after this engine's rules would raise, as
        (index, path in the rule, message); nothing is changed (a dry run on a copy)."""
        trial = FaultEngine(self.seed, list(self.rules), self._next)
        found: list[tuple[int, tuple[str | int, ...], str]] = []
        for index, spec in enumerate(specs):
            try:
                trial.add(spec, 0.0)
            except RuleError as err:
                found += [(index, path, reason) for path, reason in err.reasons()]
                given = spec.get("id") if isinstance(spec, dict) else None
                if isinstance(given, str) and given not in trial._ids:
                    # a later rule with the same id is still a duplicate
                    trial.rules.append(Rule(given, {}, 0.0, random.Random(0)))
                    trial._ids.add(given)
        return found

    def regexes(self) -> dict[str, Any]:
        """The compiled prompt_regex of every rule, by pattern (read on every request that
        has a prompt while rules exist: worked out once per change of the rules)."""
        if self._regexes is None:
            self._regexes = {
                r.spec["match"]["prompt_regex"]: r._regex
                for r in self.rules
                if r._regex is not None
            }
        return self._regexes

    def header_names(self) -> frozenset[str]:
        """The headers the rules name, lower-cased (read on every request a shared store
        logs while rules exist: worked out once per change of the rules)."""
        if self._header_names is None:
            self._header_names = frozenset(
                name.lower()
                for rule in self.rules
                for name in rule.spec.get("match", {}).get("headers", {})
            )
        return self._header_names

    @staticmethod
    def search_all(regexes: Mapping[str, Any], prompt: str) -> dict[str, bool]:
        """Which of ``regexes`` are found in ``prompt``: a pure function, safe to run in a
        worker thread (RE2 matches without the GIL), so that many complex rules on a long
        prompt never hold the event loop."""
        return {pattern: _search(regex, prompt) for pattern, regex in regexes.items()}

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules = [rule for rule in self.rules if rule.id != rule_id]
        self._ids.discard(rule_id)
        self._regexes = self._header_names = None
        return len(self.rules) < before

    def clear(self) -> None:
        self.rules.clear()
        self._ids.clear()
        self._regexes = self._header_names = None
        self._next = 0

    def evaluate(self, facts: RequestFacts, now: float) -> list[Effect]:
        """The effects of the rules that fire for this request, in order, up to the first
        that ends the request."""
        fired: list[Effect] = []
        for rule in self.rules:
            if not _matches(rule, facts):
                continue
            rule.matched += 1
            if not _admitted(rule, now):
                continue
            rule.fired += 1
            effect = rule.effect(rule.id, rule.params, rule.rng.random())
            fired.append(effect)
            if effect.ends:
                break
        return fired


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches(rule: Rule, facts: RequestFacts) -> bool:
    if not rule.effect.admits(rule.params, facts):
        return False  # e.g. an injected error stays inside the operation's contract
    match = rule.spec.get("match", {})
    for name, actual in (
        ("provider", facts.provider),
        ("operation", facts.operation),
        ("method", facts.method),
        ("model", facts.model),
    ):
        if name in match and actual not in _listed(match[name]):
            return False
    if rule._keys is not None:
        key_id = fingerprint(facts.key) if facts.key is not None else facts.key_id
        if key_id is None or key_id not in rule._keys:
            return False
    prompt = facts.prompt
    if "prompt_contains" in match and (prompt is None or match["prompt_contains"] not in prompt):
        return False
    if rule._regex is not None and (prompt is None or not _found(rule, prompt, facts.found)):
        return False
    return all(
        _header_is(facts.headers.get(name.lower()), value)
        for name, value in match.get("headers", {}).items()
    )


def _header_is(actual: str | None, value: str) -> bool:
    """A header's value equals a rule's (a sealed value, from a shared store's log, by its
    fingerprint)."""
    if actual is None:
        return False
    return actual == value or (actual.startswith(SEALED) and actual == sealed(value))


def _found(rule: Rule, prompt: str, found: Mapping[str, bool] | None) -> bool:
    hit = None if found is None else found.get(rule.spec["match"]["prompt_regex"])
    return _search(rule._regex, prompt) if hit is None else hit


def _search(regex: Any, prompt: str) -> bool:
    """Is ``regex`` found in the first :data:`REGEX_MAX_SUBJECT` characters of ``prompt``?
    (Searched as UTF-8 bytes: a lone surrogate, which JSON allows, cannot break it.)"""
    return regex.search(prompt[:REGEX_MAX_SUBJECT].encode("utf-8", "surrogatepass")) is not None


def rule_problems(
    specs: Iterable[Any], seed: int = 0
) -> list[tuple[int, tuple[str | int, ...], str]]:
    """The problems of adding ``specs`` in order to an empty engine (:meth:`FaultEngine.check`)."""
    return FaultEngine(seed).check(specs)


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
