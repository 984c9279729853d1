"""Paid: every documented example request is accepted (200 with the submit schema)."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.probe import Probe

pytestmark = [pytest.mark.paid, pytest.mark.cases("example", needs="submit")]
ACCEPTED = 200


def test_a_documented_request_is_accepted(probe: Probe, case: Case) -> None:
    probe.spend(case.plan)
    answer = probe.send("submit", body=dict(case.body))
    probe.check("submit", answer, expected={ACCEPTED})
    probe.verdict()
