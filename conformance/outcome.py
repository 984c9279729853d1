"""The verdict of a conformance run and its exit status, decided in one place, so the line
the run ends with, the report and the exit status always say the same thing.

====  ================  ==============================================================
0     conformant        checks ran, no breaking finding (additive ones are reported)
1     breaking drift    a breaking finding
2     interrupted       the run was stopped (the report holds what was seen so far)
3     tool error        a check could not judge the target (no answer, a check broke)
4     usage, refused    a bad option, or a live run without its opt-in, cap or keys
5     nothing checked   no check was selected, or every selected check was skipped
====  ================  ==============================================================

A tool error wins over breaking drift (a check that could not judge may hide more); both
are named in the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BREAKING_DRIFT",
    "CONFORMANT",
    "INTERRUPTED",
    "NOTHING_CHECKED",
    "TOOL_ERROR",
    "USAGE",
    "Outcome",
    "Tally",
    "decide",
]

CONFORMANT = 0
BREAKING_DRIFT = 1
INTERRUPTED = 2
TOOL_ERROR = 3
USAGE = 4
NOTHING_CHECKED = 5
_FINISHED = (CONFORMANT, BREAKING_DRIFT, NOTHING_CHECKED)  # pytest's own "the run ended"


@dataclass(frozen=True, slots=True)
class Tally:
    """What a run did: checks selected, checks that ran (passed or failed), checks skipped,
    breaking findings and tool errors."""

    selected: int
    ran: int
    skipped: int
    breaking: int
    tool_errors: int


@dataclass(frozen=True, slots=True)
class Outcome:
    code: int
    verdict: str  # one line, e.g. "conformant" or "NOTHING CHECKED: no check was selected"


def decide(tally: Tally, pytest_status: int) -> Outcome:
    """The outcome of a run that started, from its tally and pytest's own exit status."""
    if pytest_status not in _FINISHED:
        if pytest_status == INTERRUPTED:
            return Outcome(INTERRUPTED, "INTERRUPTED: the report holds what was checked so far")
        return Outcome(pytest_status, f"TOOL ERROR: the run stopped (pytest exit {pytest_status})")
    breaking = _count(tally.breaking, "breaking finding")
    if tally.tool_errors:
        unjudged = _count(tally.tool_errors, "check")
        also = f"; {breaking}" if tally.breaking else ""
        return Outcome(TOOL_ERROR, f"TOOL ERROR: {unjudged} could not judge the target{also}")
    if tally.breaking:
        return Outcome(BREAKING_DRIFT, f"BREAKING DRIFT: {breaking}")
    if tally.selected == 0:
        return Outcome(NOTHING_CHECKED, "NOTHING CHECKED: no check was selected")
    if tally.ran == 0:
        selected = _count(tally.selected, "check")
        return Outcome(NOTHING_CHECKED, f"NOTHING CHECKED: {selected} selected, all skipped")
    skipped = f", {tally.skipped} skipped" if tally.skipped else ""
    return Outcome(CONFORMANT, f"conformant ({_count(tally.ran, 'check')} ran{skipped})")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
