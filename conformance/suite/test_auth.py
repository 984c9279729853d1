"""Free: without a key, or with a wrong one, a provider refuses the request as api.json's
``auth.errors`` declares (absent: 401 for both) in its error envelope: Gemini answers 403
PERMISSION_DENIED without a key and 400 INVALID_ARGUMENT (API_KEY_INVALID) with a wrong one,
on its blocking calls and its batch routes alike."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.blocking import (
    batch_body,
    check_refused,
    send_blocking,
    unknown_batch_id,
    wire_body,
)
from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.probe import Probe
from nanobanana_mock.conformance.target import WRONG_KEY

pytestmark = [pytest.mark.free]
KEYS = pytest.mark.parametrize("key", [None, WRONG_KEY], ids=["missing-key", "wrong-key"])


@KEYS
@pytest.mark.cases("model", needs="submit")
def test_a_request_without_a_valid_key_is_refused(
    probe: Probe, case: Case, key: str | None
) -> None:
    submit = probe.send("submit", body=dict(case.body), key=key)
    check_refused(probe, "submit", submit, key)
    status = probe.send(probe.main_route, request_id=probe.unknown_id, key=key)
    check_refused(probe, probe.main_route, status, key)
    probe.verdict()


@KEYS
@pytest.mark.cases("model", needs="sync_generate")
def test_a_blocking_call_without_a_valid_key_is_refused(
    probe: Probe, case: Case, operation: str, key: str | None
) -> None:
    body = wire_body(probe, operation, case.body)
    answer = send_blocking(probe, operation, body, key=key)
    if answer is None:
        probe.stop("the call was not refused: it waited for a job")
    assert answer is not None
    check_refused(probe, operation, answer, key)
    probe.verdict()


@KEYS
@pytest.mark.cases("provider", needs="batch_create")
def test_a_batch_request_without_a_valid_key_is_refused(
    probe: Probe, case: Case, operation: str, key: str | None
) -> None:
    body = batch_body(probe, operation, wire_body(probe, operation, case.body))
    check_refused(probe, operation, probe.send(operation, body=body, key=key), key)
    suffix = operation.removeprefix("batch_create")
    rid = unknown_batch_id(probe, "batch_get" + suffix)
    for route in ("batch_get" + suffix, "batch_cancel" + suffix):
        answer = probe.send(route, request_id=rid, key=key)
        check_refused(probe, route, answer, key)
    probe.verdict()
