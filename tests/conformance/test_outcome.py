"""The verdict and exit status of a run: one decision, never "conformant" unless checks ran
and nothing broke."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.outcome import (
    BREAKING_DRIFT,
    CONFORMANT,
    INTERRUPTED,
    NOTHING_CHECKED,
    TOOL_ERROR,
    Tally,
    decide,
)


def tally(**values: int) -> Tally:
    return Tally(
        **{"selected": 5, "ran": 5, "skipped": 0, "breaking": 0, "tool_errors": 0} | values
    )


@pytest.mark.parametrize(
    ("counts", "pytest_status", "code", "verdict"),
    [
        ({}, 0, CONFORMANT, "conformant (5 checks ran)"),
        ({"ran": 3, "skipped": 2}, 0, CONFORMANT, "conformant (3 checks ran, 2 skipped)"),
        ({"breaking": 1}, 1, BREAKING_DRIFT, "BREAKING DRIFT: 1 breaking finding"),
        ({"tool_errors": 2}, 1, TOOL_ERROR, "TOOL ERROR: 2 checks could not judge the target"),
        (
            {"tool_errors": 1, "breaking": 3},
            1,
            TOOL_ERROR,
            "TOOL ERROR: 1 check could not judge the target; 3 breaking findings",
        ),
        ({"selected": 0, "ran": 0}, 5, NOTHING_CHECKED, "NOTHING CHECKED: no check was selected"),
        (
            {"ran": 0, "skipped": 5},
            0,
            NOTHING_CHECKED,
            "NOTHING CHECKED: 5 checks selected, all skipped",
        ),
        ({"ran": 1}, 2, INTERRUPTED, "INTERRUPTED: the report holds what was checked so far"),
        ({}, 3, 3, "TOOL ERROR: the run stopped (pytest exit 3)"),
    ],
    ids=[
        "conformant",
        "some-skipped",
        "breaking",
        "tool-error",
        "tool-error-and-breaking",
        "none-selected",
        "all-skipped",
        "interrupted",
        "internal-error",
    ],
)
def test_the_outcome_of_a_run(
    counts: dict[str, int], pytest_status: int, code: int, verdict: str
) -> None:
    outcome = decide(tally(**counts), pytest_status)
    assert (outcome.code, outcome.verdict) == (code, verdict)
