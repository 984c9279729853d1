"""Free: an invalid body (a bad enum value, no prompt, too many image URLs) is refused with
a validation code the submit operation declares, in the provider's error envelope."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.facts import INVALID_KINDS, invalid_body
from nanobanana_mock.conformance.probe import Probe

pytestmark = [pytest.mark.free, pytest.mark.cases("model", needs="submit")]
VALIDATION_CODES = frozenset({400, 422})  # the codes of a refused body; api.json says which


@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_an_invalid_body_is_refused(probe: Probe, case: Case, kind: str) -> None:
    body = invalid_body(case.provider, case.model, case.body, kind)
    if body is None:
        pytest.skip(f"the {case.model} request schema has no rule for {kind}")
    answer = probe.send("submit", body=body)
    declared = {int(code) for code in probe.operations["submit"]["responses"]}
    probe.check("submit", answer, expected=declared & VALIDATION_CODES)
    probe.verdict()
