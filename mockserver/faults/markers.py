"""Prompt markers: faults asked for in the prompt of a submit, for clients that can neither add
headers nor reach the control plane.

    [mock:fail]  [mock:fail=CONTENT_BLOCKED]  [mock:fail-at=start]  [mock:fail-after-polls=3]
    [mock:status=429]  [mock:delay=30]

The prefix ``[mock:`` is reserved, in any case and however the JSON spells it
(``\\u005bmock:``): every text that starts so is read as a marker, and one the mock cannot
use is refused with the provider's 400 naming it, never ignored. That covers an unknown name
(``[mock:bogus]``, ``[mock:statsu=500]``), a bad value, an unclosed marker, and a status the
operation's contract does not declare. The one equivalence is insufficient credits: 402 and
406 both ask for the provider's own code (Segmind 406, SeaArt and Pixazo 402), as in fault
rules. Markers apply to the submit or sync call that carries them; nothing is created or
charged when they are refused.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from nanobanana_mock import schemas

from ..names import CREDIT_STATUSES, answerable, did_you_mean
from .effects import Effect, HttpError, JobFailure, Latency
from .rules import RuleError

__all__ = [
    "CREDIT_STATUSES",
    "MARKER_NAMES",
    "MAX_MARKERS",
    "MAX_MARKER_VALUE",
    "may_hold_marker",
    "prompt_rules",
]

MAX_MARKER_VALUE = 32  # characters of a marker's name or value: every valid one is far shorter
MAX_MARKERS = 16  # markers in one prompt: each is checked against the rule schema (10,000 of
# them, 170 KB, took 1.5 s); a test needs a handful
MARKER_FORMS = {  # name -> how it is written (the refusal of an unknown name lists them)
    "fail": "[mock:fail] or [mock:fail=ERROR_TYPE]",
    "fail-at": "[mock:fail-at=submit|start|end]",
    "fail-after-polls": "[mock:fail-after-polls=N]",
    "status": "[mock:status=CODE]",
    "delay": "[mock:delay=SECONDS]",
}
MARKER_NAMES = frozenset(MARKER_FORMS)
KNOWN = ", ".join(MARKER_FORMS.values())

# Where a marker may start, in a body's bytes: "[mock:" in any case, or with any of its
# characters written as a JSON \u escape (searched in the lowered body only when it holds one).
_START_BYTES = re.compile(rb"\[(?i:mock):")
_ESCAPED_START = re.compile(
    rb"(?:\[|\\u005b)(?:m|\\u00[46]d)(?:o|\\u00[46]f)(?:c|\\u00[46]3)(?:k|\\u00[46]b)(?::|\\u003a)"
)
# A marker at a start found in the prompt. Bounded: the name and value are read up to one
# character past their limit, so each of the at most MAX_MARKERS starts costs a few dozen
# characters, however long the prompt.
_START = re.compile(r"\[(?i:mock):")
_LIMIT = MAX_MARKER_VALUE + 1
_MARKER = re.compile(
    rf"\[(mock):([^\[\]=]{{0,{_LIMIT}}})(?:(=)([^\[\]]{{0,{_LIMIT}}}))?(\])?", re.IGNORECASE
)
MARKER_NUMBER = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")  # ASCII only: "٣" is not a number
MARKER_INTEGER = re.compile(r"[0-9]{1,6}")


def may_hold_marker(raw: bytes) -> bool:
    """Might this body's prompt hold a marker? (A cheap look at the bytes, before parsing.)"""
    if _START_BYTES.search(raw) is not None:
        return True
    return b"\\u00" in raw and _ESCAPED_START.search(raw.lower()) is not None


def prompt_rules(
    prompt: str | None, declared: Collection[int] = (), where: str = "this operation"
) -> list[Effect]:
    """The effects the markers of ``prompt`` ask for: the same objects fault rules fire, from
    rule id ``"prompt"``. ``declared`` are the error codes the operation's contract allows
    (``where`` names it): a status outside them, other than the credits equivalence, is
    refused. Raises :class:`RuleError` naming the marker."""
    if not prompt or _START.search(prompt) is None:
        return []
    failure: dict[str, Any] = {}
    fired: list[Effect] = []
    for count, start in enumerate(_START.finditer(prompt), start=1):
        if count > MAX_MARKERS:
            raise RuleError([f"at most {MAX_MARKERS} prompt markers in one prompt"])
        match = _MARKER.match(prompt, start.start())
        assert match is not None  # every part after the prefix may be empty
        name, value = _checked(match)
        if name == "fail":
            failure.setdefault("error", "Task execution failed")  # a bare [mock:fail] fails
            if value is not None:
                failure["error_type"] = _marker_valid(match, JobFailure, "error_type", value)
        elif name == "fail-at":
            if value not in ("submit", "start", "end"):
                raise RuleError([f"{_shown(match)}: must be submit, start or end"])
            failure["surface"] = value
        elif name == "fail-after-polls":
            polls = _marker_integer(match)
            failure["after_polls"] = _marker_valid(match, JobFailure, "after_polls", polls)
        elif name == "status":
            fired.append(HttpError("prompt", {"status": _status(match, declared, where)}))
        else:  # delay
            seconds = _marker_number(match)
            fired.append(Latency("prompt", {"target": "processing", "fixed": seconds}))
    if failure:
        failure.setdefault("error", "Task execution failed")
        fired.insert(0, JobFailure("prompt", failure))
    return fired  # each value was checked against the rule schema as it was read


def _checked(match: re.Match[str]) -> tuple[str, str | None]:
    """The marker's name and value (None without ``=``), or the reason it is no marker."""
    name, value = match.group(2), match.group(4)
    reason = _flaw(match)
    if reason is not None:
        raise RuleError([f"{_shown(match)}: {reason}"])
    return name, value


def _flaw(match: re.Match[str]) -> str | None:
    """Why the text at a marker's start is not a marker the mock can read, if it is not."""
    prefix, name, equals, value, closed = match.groups()
    if len(name) > MAX_MARKER_VALUE or (value is not None and len(value) > MAX_MARKER_VALUE):
        return f"a name or value of at most {MAX_MARKER_VALUE} characters"
    if closed is None:
        return "not closed by ']'; a marker is written [mock:NAME] or [mock:NAME=VALUE]"
    if prefix != "mock":
        return "write [mock: in lower case (text starting so, in any case, is a marker)"
    if name not in MARKER_NAMES:
        guess = did_you_mean(name, MARKER_NAMES)
        return f"unknown prompt marker {name!r}{guess}; the markers are {KNOWN}"
    if equals and not value:
        return "a value after '=' cannot be empty"
    return None


def _status(match: re.Match[str], declared: Collection[int], where: str) -> int:
    """A status marker's code: one the operation declares, or a credits code where the
    operation declares either (the provider's own is answered)."""
    status: int = _marker_valid(match, HttpError, "status", _marker_integer(match))
    if answerable(status, declared):
        return status
    credits = CREDIT_STATUSES.intersection(declared)
    allowed = ", ".join(map(str, sorted({*declared, *(CREDIT_STATUSES if credits else ())})))
    raise RuleError(
        [
            f"{_shown(match)}: {where} does not answer {status}; it answers {allowed}"
            + (
                f" (402 and 406 both give its insufficient-credits {min(credits)})"
                if credits
                else ""
            )
        ]
    )


def _shown(match: re.Match[str]) -> str:
    text = match.group(0)
    return text if len(text) <= 60 else text[:56] + "...]"


def _marker_valid(match: re.Match[str], effect: type[Effect], name: str, value: Any) -> Any:
    """``value``, if the rule schema allows it as the ``name`` of an ``effect``."""
    problems = schemas.explain("mock", "fault_rule", {"effect": {effect.kind: {name: value}}})
    if problems:
        raise RuleError([f"{_shown(match)}: {p.message}" for p in problems])
    return value


def _marker_integer(match: re.Match[str]) -> int:
    """The marker's value as a small ASCII integer (the rule schema then checks its range)."""
    value = match.group(4) or ""
    if not MARKER_INTEGER.fullmatch(value):
        raise RuleError([f"{_shown(match)}: must be a whole number of at most 6 ASCII digits"])
    return int(value)


def _marker_number(match: re.Match[str]) -> float:
    """The marker's value as seconds: ASCII digits, an optional fraction, 0 to 86400."""
    value = match.group(4) or ""
    if not MARKER_NUMBER.fullmatch(value) or float(value) > 86400:
        raise RuleError([f"{_shown(match)}: must be a number of seconds from 0 to 86400"])
    return float(value)
