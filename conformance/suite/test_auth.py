"""Free: without a key, or with a wrong one, a provider answers 401 in its error envelope."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.probe import Probe
from nanobanana_mock.conformance.target import WRONG_KEY

pytestmark = [pytest.mark.free, pytest.mark.cases("model", needs="submit")]
UNAUTHORIZED = 401


@pytest.mark.parametrize("key", [None, WRONG_KEY], ids=["missing-key", "wrong-key"])
def test_a_request_without_a_valid_key_is_401(probe: Probe, case: Case, key: str | None) -> None:
    submit = probe.send("submit", body=dict(case.body), key=key)
    probe.check("submit", submit, expected={UNAUTHORIZED})
    status = probe.send(probe.main_route, request_id=probe.unknown_id, key=key)
    probe.check(probe.main_route, status, expected={UNAUTHORIZED})
    probe.verdict()
