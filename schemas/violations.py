"""Why an instance breaks a contract: one explanation, as :class:`Violation` s.

:func:`explain` is the only place a schema error is put into words. Every caller (the mock's
request checks, its self-check, fault rules and prompt markers, the control plane, scenario
files, the validating proxy, replays, the conformance suite and the client's strict mode)
gets the same list: each violation's place is a JSON pointer (RFC 6901); its dotted form
(``faults[0].match.model[1]``, :func:`dotted`) is for display only.

:func:`is_valid` answers "valid or not" with the contracts compiled by jsonschema-rs, about
250 times faster than the pure-Python validator (0.2 µs against 50 µs for a request body,
measured in BENCHMARKS.md). Only when it says no does :func:`explain` walk the schema with
the pure-Python ``jsonschema``, whose errors name the field and the rule (the two agree on
every stored example, tests/mockserver/test_validation.py).

An explanation may run on the event loop, so it is bounded whatever the instance: it stops
after ``limit`` violations (then only counts, up to :data:`MAX_COUNTED_PROBLEMS`), within
``seconds`` (default :data:`EXPLAIN_SECONDS`) of wall time, checked at every schema keyword.
The keywords that cost more than a walk are guarded: ``uniqueItems`` (quadratic in pure
Python) is skipped on an array that already breaks its ``maxItems``; ``items`` explains only
the first ``maxItems`` items of such an array; and the keywords whose message would quote
the whole instance (``type``, ``enum``, ``maxItems``, ...) quote an excerpt.

Two registers word the same violations: :attr:`Violation.message`, terse, for answers (a
provider's 4xx, a control-plane 400, a journal entry), and :func:`document_message`, for a
document a test author wrote (a scenario file), as ``schemas.located`` prints it.
"""

from __future__ import annotations

import difflib
import json
import re
import reprlib
import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import cache
from itertools import islice
from typing import Any

import jsonschema_rs
from jsonschema import validators
from jsonschema._utils import equal, uniq
from jsonschema.exceptions import ValidationError, best_match

__all__ = [
    "EXPLAIN_SECONDS",
    "MAX_COUNTED_PROBLEMS",
    "MAX_PROBLEMS",
    "MORE",
    "ContractViolation",
    "Violation",
    "did_you_mean",
    "document_message",
    "dotted",
    "explain",
    "is_valid",
    "pointer",
    "warm",
]

MAX_PROBLEMS = 20
"""Violations an answer, a journal entry or a control-plane error names for one body; the
rest are only counted. Enough to fix any real body (a request schema has about ten fields),
few enough that an answer stays small whatever the body holds."""

MAX_COUNTED_PROBLEMS = 1000
"""Violations counted beyond the named ones; past this (or past the time budget, whichever
comes first) the count is reported as "at least". Counting costs 10-35 µs a violation in pure
Python: an exact count of 40,000 would stall the server for a second."""

EXPLAIN_SECONDS = 0.02
"""Wall time one explanation may take on the event loop. Past it the explanation ends with
what it found and says the count is a lower bound. 20 ms keeps every request's stall far
under the 50 ms the hardening target allows (issue 10), with room for parsing and answering."""

UNIQUE_ITEMS_CHECKED = 100
"""Longest array ``uniqueItems`` is checked on when its schema has no ``maxItems`` (every
request schema has one; tests/mockserver/test_hardening_validation.py checks it): the
pure-Python check is quadratic on unhashable items."""

MORE = "more_problems"  # the rule of the last violation, which counts those not named

JsonPath = tuple[str | int, ...]


class ContractViolation(AssertionError):
    """Something broke its contract: the mock's own answer (self-check), a target's answer
    (the conformance suite), a provider's answer (the client's strict mode). ``violations``
    says where and how (:class:`Violation` s, or the suite's findings); it is an
    ``AssertionError``, a contract finding, never an error of the tool itself."""

    def __init__(self, violations: Sequence[object], message: str | None = None) -> None:
        super().__init__(message if message is not None else "\n".join(map(str, violations)))
        self.violations = list(violations)


@dataclass(frozen=True, slots=True)
class Violation:
    """One way an instance breaks its schema: where (a JSON pointer), which rule, and why.

    ``expected`` is the broken keyword's value (an enum's list, a bound, the type) and
    ``value`` the offending part of the instance; ``schema`` is the subschema that holds the
    rule. For ``oneOf``/``anyOf``, :meth:`branches` gives each alternative's violations."""

    pointer: str
    rule: str
    message: str
    path: JsonPath = ()
    expected: Any = field(default=None, compare=False, repr=False)
    value: Any = field(default=None, compare=False, repr=False)
    schema: Any = field(default=None, compare=False, repr=False)
    cause: Any = field(default=None, compare=False, repr=False)  # the jsonschema error

    @property
    def where(self) -> str:
        """The place, for display: ``image_urls[0]``, or ``body`` for the whole instance."""
        return dotted(self.path) or "body"

    def __str__(self) -> str:
        if self.rule == MORE:  # "... and 480 more problems" stands alone
            return self.message
        return f"{self.where}: {self.message}"

    def moved(self, path: JsonPath, message: str | None = None) -> Violation:
        """The same violation at ``path`` (with ``message``): a redacted or nested place."""
        text = self.message if message is None else message
        return replace(self, pointer=pointer(path), path=path, message=text)

    def branches(self) -> tuple[tuple[Violation, ...], ...]:
        """A ``oneOf``/``anyOf``'s alternatives: the violations of each branch that failed,
        in the schema's order (empty for any other rule)."""
        context = getattr(self.cause, "context", None)
        if self.rule not in ("oneOf", "anyOf") or not context:
            return ()
        found: dict[int, list[Violation]] = {}
        for error in context:
            found.setdefault(error.relative_schema_path[0], []).extend(_violations(error, False))
        return tuple(tuple(found[index]) for index in sorted(found))


def pointer(path: Iterable[str | int]) -> str:
    """The JSON pointer (RFC 6901) of a path: ``("a/b", 0)`` -> ``/a~1b/0``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def dotted(path: Iterable[str | int]) -> str:
    """A path for display: ``faults[0].match["x-y"]`` (indexes in brackets, names that are
    not identifiers quoted)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


def did_you_mean(word: object, allowed: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the known name closest to ``word``, or ``""``."""
    if not isinstance(word, str) or len(word) > 200:
        return ""
    lowered = {name.lower(): name for name in allowed}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


# -- the fast verdict --------------------------------------------------------------------------


def _documents() -> list[tuple[str, Any]]:
    from . import documents  # the package imports this module: load its loader on first use

    return list(documents())


@cache
def _registry() -> jsonschema_rs.Registry:
    return jsonschema_rs.Registry(_documents())


def _rust(schema: Any) -> Any:
    """``schema`` compiled by jsonschema-rs, every $ref resolved among the contracts."""
    return jsonschema_rs.validator_for(
        schema,
        registry=_registry(),
        offline=True,
        pattern_options=jsonschema_rs.RegexOptions(),  # Rust's regex: linear, no backtracking
    )


def _validator(provider: str, name: str, exact_integers: bool = False) -> Any:
    from . import validator

    return validator(provider, name, exact_integers=exact_integers)


@cache
def _compiled(provider: str, name: str) -> Any:
    from . import load

    return _rust(load(provider, name))


def warm(provider: str, name: str) -> None:
    """Build both validators of a schema now: the first pure-Python one checks every schema
    file (about 0.3 s), which must not happen on the event loop at the first bad body."""
    _compiled(provider, name)
    _twins(_validator(provider, name))


def is_valid(provider: str, name: str, instance: Any) -> bool:
    """Whether ``instance`` satisfies ``schemas/<provider>/<name>.json``."""
    return _fast_is_valid(_compiled(provider, name), instance)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _fast_is_valid(fast: Any, instance: Any) -> bool:
    """jsonschema-rs's verdict. It cannot take a lone surrogate (valid JSON, which the mock
    accepts): it raises. Then the instance is checked with each one read as U+FFFD, which
    keeps every length, type and structure the contracts constrain."""
    try:
        return bool(fast.is_valid(instance))
    except UnicodeEncodeError:
        return bool(fast.is_valid(_without_surrogates(instance)))


def _without_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate of its strings and keys replaced by U+FFFD
    (nesting is bounded where JSON is read, at 64 levels)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(each) for each in value]
    return value


# -- the bounded walk --------------------------------------------------------------------------


class _OutOfTime(Exception):
    """The explanation used its budget (raised from inside the keyword tree)."""


_DEADLINE: ContextVar[float] = ContextVar("explain_deadline", default=float("inf"))

Keyword = Callable[[Any, Any, Any, dict[str, Any]], Any]


def _timed(keyword: Keyword) -> Keyword:
    """``keyword``, refusing to start once the explanation's deadline has passed."""

    def check(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Any:
        if time.perf_counter() > _DEADLINE.get():
            raise _OutOfTime
        return keyword(validator, value, instance, schema)

    return check


def _over_max_items(instance: Any, schema: dict[str, Any]) -> int | None:
    """The ``maxItems`` an array breaks, if it does."""
    limit = schema.get("maxItems")
    if isinstance(instance, list) and isinstance(limit, int) and len(instance) > limit:
        return limit
    return None


def _unique_items(original: Keyword) -> Keyword:
    def keyword(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Any:
        if isinstance(instance, list) and (
            _over_max_items(instance, schema) is not None
            or ("maxItems" not in schema and len(instance) > UNIQUE_ITEMS_CHECKED)
        ):
            return ()  # maxItems already refuses it; uniq() would be quadratic
        return original(validator, value, instance, schema)

    return keyword


def _first_items(original: Keyword) -> Keyword:
    def keyword(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Any:
        limit = _over_max_items(instance, schema)
        if limit is not None:
            instance = instance[:limit]  # indexes, hence error paths, are unchanged
        return original(validator, value, instance, schema)

    return keyword


# jsonschema writes the whole instance into each message (``f"{instance!r} is too long"``):
# for a 256 KiB array that alone costs tens of milliseconds. These keywords decide exactly
# as jsonschema's own, and write a bounded excerpt instead.
class _Excerpt(reprlib.Repr):
    """``reprlib`` bounds, with a dict's keys in their order (as ``repr`` shows them), not
    sorted."""

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        shown = [
            f"{self.repr1(key, level - 1)}: {self.repr1(x[key], level - 1)}"
            for key in islice(x, self.maxdict)
        ]
        return "{" + ", ".join(shown) + (", ...}" if len(x) > self.maxdict else "}")


_EXCERPT = _Excerpt()
_EXCERPT.maxlevel, _EXCERPT.maxlist, _EXCERPT.maxdict = 3, 6, 6
_EXCERPT.maxstring, _EXCERPT.maxother = 80, 80


def _excerpt(value: Any) -> str:
    return _EXCERPT.repr(value)


def _type(validator: Any, types: Any, instance: Any, schema: dict[str, Any]) -> Any:
    types = types if isinstance(types, list) else [types]
    if not any(validator.is_type(instance, kind) for kind in types):
        names = ", ".join(repr(kind) for kind in types)
        yield ValidationError(f"{_excerpt(instance)} is not of type {names}")


def _enum(validator: Any, enums: Any, instance: Any, schema: dict[str, Any]) -> Any:
    if all(not equal(each, instance) for each in enums):
        yield ValidationError(f"{_excerpt(instance)} is not one of {enums!r}")


def _count(kind: str, most: bool, edge: int, at_edge: str, otherwise: str) -> Keyword:
    """``maxItems`` / ``minItems`` / ``maxProperties`` / ``minProperties``: jsonschema's
    messages, with an excerpt of the value instead of the whole of it."""

    def keyword(validator: Any, limit: Any, instance: Any, schema: dict[str, Any]) -> Any:
        if validator.is_type(instance, kind) and (
            len(instance) > limit if most else len(instance) < limit
        ):
            message = at_edge if limit == edge else otherwise
            yield ValidationError(f"{_excerpt(instance)} {message}")

    return keyword


_max_items = _count("array", True, 0, "is expected to be empty", "is too long")
_min_items = _count("array", False, 1, "should be non-empty", "is too short")
_max_properties = _count("object", True, 0, "is expected to be empty", "has too many properties")
_min_properties = _count(
    "object", False, 1, "should be non-empty", "does not have enough properties"
)


def _unique(validator: Any, unique: Any, instance: Any, schema: dict[str, Any]) -> Any:
    if unique and validator.is_type(instance, "array") and not uniq(instance):
        yield ValidationError(f"{_excerpt(instance)} has non-unique elements")


def _any_of(validator: Any, branches: Any, instance: Any, schema: dict[str, Any]) -> Any:
    errors = []
    for index, branch in enumerate(branches):
        found = list(validator.descend(instance, branch, schema_path=index))
        if not found:
            return
        errors.extend(found)
    message = f"{_excerpt(instance)} is not valid under any of the given schemas"
    yield ValidationError(message, context=errors)


def _one_of(validator: Any, branches: Any, instance: Any, schema: dict[str, Any]) -> Any:
    errors = []
    first_valid = None
    remaining = iter(enumerate(branches))
    for index, branch in remaining:
        found = list(validator.descend(instance, branch, schema_path=index))
        if not found:
            first_valid = branch
            break
        errors.extend(found)
    else:
        message = f"{_excerpt(instance)} is not valid under any of the given schemas"
        yield ValidationError(message, context=errors)
        return
    more = [each for _, each in remaining if validator.evolve(schema=each).is_valid(instance)]
    valid = [first_valid, *more]
    if more and all(isinstance(b, dict) and set(b) == {"required"} for b in valid):
        # branches that only require members: a non-object passes each one vacuously (its
        # sibling "type" names it), and an object that passes several has them together
        if validator.is_type(instance, "object"):
            listed = ", ".join(repr(name) for b in valid for name in b["required"])
            yield ValidationError(f"give only one of {listed}")
        return
    if more:
        names = ", ".join(repr(each) for each in [*more, first_valid])
        yield ValidationError(f"{_excerpt(instance)} is valid under each of {names}")


def _not(validator: Any, refused: Any, instance: Any, schema: dict[str, Any]) -> Any:
    if validator.evolve(schema=refused).is_valid(instance):
        names = refused.get("required") if isinstance(refused, dict) else None
        if isinstance(names, list) and set(refused) == {"required"}:
            # members that may not come together: name them, never quote the object (its
            # other members may hold an API key, or be large)
            listed = ", ".join(repr(name) for name in names)
            together = "both" if len(names) == 2 else "all of"
            yield ValidationError(f"must not have {together} {listed}")
        else:
            yield ValidationError(f"{_excerpt(instance)} should not be valid under {refused!r}")


def _bounded_keywords(base: Any) -> dict[str, Keyword]:
    keywords: dict[str, Keyword] = dict(base.VALIDATORS)  # the base's own pattern (RE2) kept
    keywords.update(
        type=_type,
        enum=_enum,
        maxItems=_max_items,
        minItems=_min_items,
        maxProperties=_max_properties,
        minProperties=_min_properties,
        anyOf=_any_of,
        oneOf=_one_of,
    )
    keywords["not"] = _not
    keywords["uniqueItems"] = _unique_items(_unique)
    keywords["items"] = _first_items(keywords["items"])
    return {name: _timed(keyword) for name, keyword in keywords.items()}


_BOUNDED: dict[type[Any], Any] = {}  # validator class -> its bounded twin class


def _bounded_class(base: type[Any]) -> Any:
    """The validator class ``base`` (schemas.validator()'s, whose patterns run on RE2) with
    the bounded keywords above."""
    if base not in _BOUNDED:
        extended = validators.extend(base, _bounded_keywords(base))  # type: ignore[no-untyped-call]
        _BOUNDED[base] = extended  # (validators.extend is untyped in types-jsonschema)
    return _BOUNDED[base]


_TWINS: dict[int, tuple[Any, Any, Any]] = {}  # id(validator) -> (it, bounded twin, rust)


def _twins(validator: Any) -> tuple[Any, Any, Any]:
    """A validator, its bounded twin, and the same schema compiled by jsonschema-rs."""
    known = _TWINS.get(id(validator))
    if known is None or known[0] is not validator:
        twin = _bounded_class(type(validator))(validator.schema, registry=validator._registry)
        fast = _rust(validator.schema)
        known = _TWINS[id(validator)] = (validator, twin, fast)
    return known


@dataclass(frozen=True, slots=True)
class _Walk:
    """What a bounded walk found."""

    errors: list[ValidationError]  # at most ``limit``, in the validator's order
    more: int  # errors found beyond them
    complete: bool  # False: stopped by the budget or the count cap; ``more`` is a lower bound

    def tail(self, extra: int = 0) -> str | None:
        """The line that stands for what is not shown (None when everything is)."""
        more = self.more + extra
        if self.complete:
            return f"... and {more} more problems" if more else None
        if more:
            return f"... and at least {more} more problems"
        return "... and possibly more problems (the explanation stopped at its time budget)"


def _walk(bounded: Any, instance: Any, limit: int, seconds: float) -> _Walk:
    errors: list[ValidationError] = []
    more = 0
    complete = False
    token = _DEADLINE.set(time.perf_counter() + seconds)
    try:
        for error in bounded.iter_errors(instance):
            if len(errors) < limit:
                errors.append(error)
                continue
            more += 1
            if more >= MAX_COUNTED_PROBLEMS:
                break
        else:
            complete = True
    except (_OutOfTime, RecursionError):
        pass
    finally:
        _DEADLINE.reset(token)
    return _Walk(errors, more, complete)


# -- explanation -------------------------------------------------------------------------------


def explain(
    provider: str,
    name: str,
    instance: Any,
    *,
    limit: int = MAX_PROBLEMS,
    seconds: float | None = None,
    exact_integers: bool = False,
) -> list[Violation]:
    """How ``instance`` breaks ``schemas/<provider>/<name>.json``: at most ``limit``
    violations sorted by place, then one :data:`MORE` violation counting the rest (or saying
    the count stopped); empty when it is valid. jsonschema-rs decides first whether there is
    anything to explain, so a valid instance costs microseconds and running out of time
    never makes it invalid. Bounded in time (``seconds``, default :data:`EXPLAIN_SECONDS`)
    and size whatever the instance.

    With ``exact_integers``, an ``integer`` must be written as one (``12.0`` is not): the
    mock holds its own answers to this; jsonschema-rs, like JSON Schema, would accept it, so
    the fast verdict is skipped."""
    check = _validator(provider, name, exact_integers)
    _, bounded, fast = _twins(check)
    if not exact_integers and _fast_is_valid(fast, instance):  # ~1 µs against 250 µs
        return []
    walk = _walk(bounded, instance, limit, EXPLAIN_SECONDS if seconds is None else seconds)
    hint = provider == "mock"  # the mock's own contracts: suggest the closest allowed name
    found = [each for error in walk.errors for each in _violations(error, hint)]
    shown = sorted(found, key=lambda v: (tuple(map(str, v.path)), v.rule))[:limit]
    tail = walk.tail(len(found) - len(shown))
    if tail is not None:
        shown.append(Violation("", MORE, tail))
    return shown


def _violations(error: ValidationError, hint: bool) -> list[Violation]:
    """One jsonschema error as violations: one per missing field of a ``required``, one per
    unknown key of an ``additionalProperties``, at the key a ``propertyNames`` refuses."""
    path: JsonPath = tuple(error.absolute_path)
    rule = str(error.validator)
    instance, value, _ = _facts(error)
    if rule == "required" and isinstance(instance, dict):
        return [
            _at((*path, name), rule, "field required", error, name, instance)
            for name in value
            if name not in instance
        ]
    if rule == "additionalProperties" and isinstance(instance, dict):
        return _unknown_keys(error, path, hint)
    if "propertyNames" in error.schema_path and isinstance(instance, str):
        return [_unknown_name(error, path, hint)]
    return [_at(path, rule, _message(error, hint), error, value, instance)]


def _facts(error: ValidationError) -> tuple[Any, Any, Any]:
    """An error's instance, keyword value and schema: JSON values (the stubs also allow
    jsonschema's Unset, which only a hand-made error leaves)."""
    return error.instance, error.validator_value, error.schema


def _at(
    path: JsonPath, rule: str, message: str, error: ValidationError, expected: Any, value: Any
) -> Violation:
    return Violation(pointer(path), rule, message, path, expected, value, error.schema, error)


def _unknown_keys(error: ValidationError, path: JsonPath, hint: bool) -> list[Violation]:
    """``unknown key (did you mean 'method'?); allowed: ...`` at each key of an object that
    its schema neither names nor matches with a ``patternProperties`` pattern."""
    from . import search

    instance, _, schema = _facts(error)
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    allowed = f"; allowed: {', '.join(known)}" if known else ""
    return [
        _at(
            (*path, key),
            "additionalProperties",
            f"unknown key{did_you_mean(key, known) if hint else ''}{allowed}",
            error,
            known,
            instance[key],
        )
        for key in list(instance)[:MAX_PROBLEMS]
        if key not in known and not any(search(p, key) for p in patterns)
    ]


def _unknown_name(error: ValidationError, path: JsonPath, hint: bool) -> Violation:
    """A mapping key its ``propertyNames`` refuses (``processing_seconds: {segmnd/*: 5}``),
    placed at the key itself."""
    key, value, _ = _facts(error)
    if error.validator != "enum":
        message = f"not an allowed key: {_message(error)}"
        return _at((*path, key), "propertyNames", message, error, value, key)
    names = _names(value)
    close = did_you_mean(key, names) if hint else ""
    message = f"unknown key{close}; allowed: {', '.join(names)}"
    return _at((*path, key), "propertyNames", message, error, names, key)


def _names(values: Iterable[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def _message(error: ValidationError, hint: bool = False) -> str:
    """One violation in the answer register; ``hint``: an unknown name suggests the closest
    allowed one (on the mock's own contracts only: a provider's answers keep the provider's
    plain wording)."""
    rule = error.validator
    instance, value, _ = _facts(error)
    if rule == "enum":
        close = did_you_mean(instance, map(str, value)) if hint else ""
        spelt = [v for v in value if type(v) in (int, float) and json.dumps(v) == instance]
        if hint and spelt:  # "500" for 500: the value is right, its JSON type is not
            close = f" (the number {spelt[0]}, not the string {instance!r})"
        return f"{_short(instance)} is not one of {', '.join(map(str, value))}{close}"
    if rule in _SIZES:
        noun, bound, verb = _SIZES[rule]
        return f"{bound} {value} {noun} {verb}, got {len(instance)}"
    if rule == "type":
        return f"must be of type {value}, got {type(instance).__name__}"
    if rule in ("minimum", "maximum"):
        sign = ">=" if rule == "minimum" else "<="
        return f"must be {sign} {value}, got {_short(instance)}"
    if rule == "pattern":
        return f"{_short(instance)} is not a valid value (must match {value})"
    return _cut(error.message, 300)


_SIZES = {
    "maxItems": ("items", "at most", "allowed"),
    "minItems": ("items", "at least", "required"),
    "maxLength": ("characters", "at most", "allowed"),
    "minLength": ("characters", "at least", "required"),
}


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return _cut(text, 80)


def _cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit - 3`` characters and "..." when it is longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- the document register ---------------------------------------------------------------------

_KINDS = {"object": "mapping", "array": "list"}


def document_message(violation: Violation) -> list[Violation]:
    """The violation worded for a document a test author wrote (a scenario file), at the
    place to show: ``faults[1]: missing required key 'effect'``. A ``oneOf`` of types is
    told by the branch whose type fits, which may hold several violations."""
    rule = violation.rule
    if rule == "required":
        return [
            violation.moved(violation.path[:-1], f"missing required key {violation.expected!r}")
        ]
    if rule in ("additionalProperties", "propertyNames", MORE):
        return [violation]
    if rule in ("oneOf", "anyOf"):
        inner = _branch_violations(violation)
        if inner:
            return [each for v in inner for each in document_message(v)]
    return [violation.moved(violation.path, _document_text(violation))]


def _document_text(v: Violation) -> str:
    rule, value, schema, expected = v.rule, v.value, v.schema or {}, v.expected
    if rule == "enum":
        allowed = ", ".join(_show(each) for each in expected)
        return f"{_show(value)} is not one of {allowed}{did_you_mean(value, _names(expected))}"
    if rule == "type":
        return f"expected {_wanted(_as_list(expected))}, got {_kind(value)} {_show(value, 40)}"
    if rule in ("minProperties", "maxProperties") and schema.get("maxProperties") == 1:
        given = f"got {', '.join(value)}" if value else "got none"
        return f"needs exactly one of {', '.join(schema.get('properties', {}))}; {given}"
    if rule in ("oneOf", "anyOf"):
        return _alternatives(v)
    if rule in ("minItems", "maxItems", "minProperties", "maxProperties"):
        bound = "at least" if rule.startswith("min") else "at most"
        return f"has {len(value)} entries, {bound} {expected} allowed"
    return _cut(getattr(v.cause, "message", v.message), 200)


def _branch_violations(v: Violation) -> list[Violation]:
    """For a oneOf/anyOf of types, the violations of the best error inside the branch whose
    type fits (jsonschema's ``best_match``), if any."""
    errors = getattr(v.cause, "context", None) or []
    fitting = [
        e for e in errors if _fits(v.expected[e.relative_schema_path[0]].get("type"), v.value)
    ]
    best = best_match(fitting) if fitting else None
    return [] if best is None else _violations(best, True)


def _alternatives(v: Violation) -> str:
    branches, value = v.expected, v.value
    required = [b["required"] for b in branches if set(b) == {"required"}]
    if len(required) == len(branches):
        names = ", ".join(k for keys in required for k in keys)
        given = [k for keys in required for k in keys if k in value]
        return f"needs exactly one of {names}; got {', '.join(given) or 'none'}"
    types = [t for b in branches for t in _as_list(b.get("type"))]
    if types and not any(_fits(t, value) for t in types):
        return f"expected {_wanted(types)}, got {_kind(value)} {_show(value, 40)}"
    return f"{_show(value)} does not match any allowed form"


def _wanted(types: Iterable[str]) -> str:
    return " or ".join(_KINDS.get(t, t) for t in types)


def _fits(types: str | list[str] | None, value: Any) -> bool:
    kind = _kind(value)
    return any(
        _KINDS.get(t, t) == kind or (t, kind) == ("number", "integer") for t in _as_list(types)
    )


def _as_list(types: str | list[str] | None) -> list[str]:
    return [] if types is None else [types] if isinstance(types, str) else list(types)


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    names = {int: "integer", float: "number", str: "string", dict: "mapping", list: "list"}
    return names.get(type(value), type(value).__name__)
