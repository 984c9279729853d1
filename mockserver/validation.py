"""Request validation: a fast yes/no for the hot path, and a bounded explanation of a no.

:func:`is_valid` uses the contracts compiled by jsonschema-rs. It answers only "valid or not",
about 250 times faster than the pure-Python validator (0.2 µs against 50 µs for a request
body, measured in BENCHMARKS.md). When a body is invalid, :func:`explain` says why with the
pure-Python ``jsonschema``, whose errors name the field and the rule (the two agree on every
stored example, tests/mockserver/test_validation.py).

An explanation runs on the event loop, so it is bounded whatever the body: it stops after
:data:`MAX_PROBLEMS` errors (then only counts, up to :data:`MAX_COUNTED_PROBLEMS`), within
:data:`EXPLAIN_SECONDS` of wall time (checked at every schema keyword, so no keyword tree is
walked to its end past the budget). The keywords that cost more than a walk are guarded:
``uniqueItems`` (quadratic in pure Python) is skipped on an array that already breaks its
``maxItems``; ``items`` explains only the first ``maxItems`` items of such an array (its
``maxItems`` error already says what is wrong with the rest); and the keywords whose message
would quote the whole instance (``type``, ``enum``, ``maxItems``, ...) quote an excerpt.
"""

from __future__ import annotations

import re
import reprlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema_rs
from jsonschema import validators
from jsonschema._utils import equal, uniq
from jsonschema.exceptions import ValidationError

from nanobanana_mock import schemas

__all__ = [
    "EXPLAIN_SECONDS",
    "MAX_COUNTED_PROBLEMS",
    "MAX_PROBLEMS",
    "Explanation",
    "explain",
    "is_valid",
    "warm",
]

MAX_PROBLEMS = 20
"""Problems an answer, a journal entry or a control-plane error names for one body; the rest
are only counted. Enough to fix any real body (a request schema has about ten fields), few
enough that an answer stays small whatever the body holds."""

MAX_COUNTED_PROBLEMS = 1000
"""Problems counted beyond the named ones; past this (or past the time budget, whichever
comes first) the count is reported as "at least". Counting costs 10-35 µs a problem in pure
Python: an exact count of 40,000 would stall the server for a second."""

EXPLAIN_SECONDS = 0.02
"""Wall time one explanation may take on the event loop. Past it the explanation ends with
what it found and says the count is a lower bound. 20 ms keeps every request's stall far
under the 50 ms the hardening target allows (issue 10), with room for parsing and answering."""

UNIQUE_ITEMS_CHECKED = 100
"""Longest array ``uniqueItems`` is checked on when its schema has no ``maxItems`` (every
request schema has one; tests/mockserver/test_hardening_validation.py checks it): the
pure-Python check is quadratic on unhashable items."""


@cache
def _registry() -> jsonschema_rs.Registry:
    return jsonschema_rs.Registry(list(schemas.documents()))


def _rust(schema: Any) -> Any:
    """``schema`` compiled by jsonschema-rs, every $ref resolved among the contracts."""
    return jsonschema_rs.validator_for(
        schema,
        registry=_registry(),
        offline=True,
        pattern_options=jsonschema_rs.RegexOptions(),  # Rust's regex: linear, no backtracking
    )


@cache
def _compiled(provider: str, name: str) -> Any:
    return _rust(schemas.load(provider, name))


def warm(provider: str, name: str) -> None:
    """Build both validators of a schema now: the first pure-Python one checks every schema
    file (about 0.3 s), which must not happen on the event loop at the first bad body."""
    _compiled(provider, name)
    _twins(schemas.validator(provider, name))


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
    (nesting is bounded at parse time by MAX_JSON_DEPTH)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(each) for each in value]
    return value


# -- bounded explanation ---------------------------------------------------------------------


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
_EXCERPT = reprlib.Repr()
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
    if more:
        names = ", ".join(repr(each) for each in [*more, first_valid])
        yield ValidationError(f"{_excerpt(instance)} is valid under each of {names}")


def _not(validator: Any, refused: Any, instance: Any, schema: dict[str, Any]) -> Any:
    if validator.evolve(schema=refused).is_valid(instance):
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


@cache
def _bounded_class(base: Any) -> Any:
    """The validator class ``base`` (schemas.validator()'s, whose patterns run on RE2) with
    the bounded keywords above."""
    return validators.extend(base, _bounded_keywords(base))


_BOUNDED: dict[int, tuple[Any, Any, Any]] = {}  # id(validator) -> (it, bounded twin, rust)


def _twins(validator: Any) -> tuple[Any, Any, Any]:
    """A validator, its bounded twin, and the same schema compiled by jsonschema-rs."""
    known = _BOUNDED.get(id(validator))
    if known is None or known[0] is not validator:
        twin = _bounded_class(type(validator))(validator.schema, registry=validator._registry)
        fast = _rust(validator.schema)
        known = _BOUNDED[id(validator)] = (validator, twin, fast)
    return known


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a bounded explanation found."""

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


def explain(
    validator: Any,
    instance: Any,
    limit: int = MAX_PROBLEMS,
    seconds: float | None = None,
) -> Explanation:
    """The first ``limit`` schema errors of ``instance`` and a count of the rest, found
    within ``seconds`` (default :data:`EXPLAIN_SECONDS`), for a jsonschema validator of
    ``schemas`` (see the module docstring). jsonschema-rs decides first whether there is
    anything to explain, so a valid instance costs microseconds and running out of time
    never makes it invalid."""
    if seconds is None:
        seconds = EXPLAIN_SECONDS
    _, bounded, fast = _twins(validator)
    if _fast_is_valid(fast, instance):  # about 1 µs against 250 µs for a fault rule in pure Python
        return Explanation([], 0, True)
    errors: list[ValidationError] = []
    more = 0
    complete = False
    token = _DEADLINE.set(time.perf_counter() + seconds)
    try:
        found: Iterator[ValidationError] = bounded.iter_errors(instance)
        for error in found:
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
    return Explanation(errors, more, complete)
