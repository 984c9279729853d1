"""Free: an invalid body (a bad enum value, no prompt, too many image URLs) is refused with
a validation code the submit operation declares, in the provider's error envelope."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.blocking import send_blocking, wire_body
from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.facts import INVALID_KINDS, documented_invalid, invalid_body
from nanobanana_mock.conformance.probe import Probe

pytestmark = [pytest.mark.free]
VALIDATION_CODES = frozenset({400, 422})  # the codes of a refused body; api.json says which


@pytest.mark.cases("model", needs="submit")
@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_an_invalid_body_is_refused(probe: Probe, case: Case, kind: str) -> None:
    body = invalid_body(case.provider, case.model, case.body, kind)
    if body is None:
        pytest.skip(f"the {case.model} request schema has no rule for {kind}")
    answer = probe.send("submit", body=body)
    declared = {int(code) for code in probe.operations["submit"]["responses"]}
    probe.check("submit", answer, expected=declared & VALIDATION_CODES)
    probe.verdict()


@pytest.mark.cases("model", needs="sync_generate")
def test_an_invalid_blocking_call_is_refused(probe: Probe, case: Case, operation: str) -> None:
    """The same for a blocking call (Gemini: 400 INVALID_ARGUMENT), with every kind of
    invalid body the model's schema has a rule for, and the documented invalid bodies of the
    operation's wire request schema (Gemini's nested generateContent body)."""
    made = (invalid_body(case.provider, case.model, case.body, kind) for kind in INVALID_KINDS)
    bodies = [wire_body(probe, operation, body) for body in made if body is not None]
    bodies += documented_invalid(probe.provider, probe.operations[operation]["request"])
    declared = {int(code) for code in probe.operations[operation]["responses"]}
    for body in bodies:
        answer = send_blocking(probe, operation, body)
        if answer is None:
            probe.stop("an invalid body was not refused: it waited for a job")
        assert answer is not None
        probe.check(operation, answer, expected=declared & VALIDATION_CODES)
    probe.verdict()
