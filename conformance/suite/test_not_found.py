"""Free: an id no job has is 404 on every route that reports a job (the code the lifecycle
gives an expired job), in the error envelope; SeaArt's cancel answers {"status": "NOT_FOUND"}.
Gemini: an unknown model and an unknown batch are 404 NOT_FOUND."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.blocking import (
    batch_body,
    send_blocking,
    unknown_batch_id,
    wire_body,
)
from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.facts import documented_body
from nanobanana_mock.conformance.probe import Probe

pytestmark = [pytest.mark.free]
NOT_FOUND = 404
UNKNOWN_MODEL = "conformance-no-such-model"


@pytest.mark.cases("model", needs="submit")
def test_an_unknown_request_id_is_not_found(probe: Probe, case: Case) -> None:
    for operation in probe.poll_routes:
        answer = probe.send(operation, request_id=probe.unknown_id)
        probe.check(operation, answer, expected={probe.expired_code(operation)})
    probe.verdict()


@pytest.mark.cases("model", needs="cancel")
def test_cancelling_an_unknown_request_is_not_found(probe: Probe, case: Case) -> None:
    answer = probe.send("cancel", request_id=probe.unknown_id)
    code = probe.expired_code("cancel")
    probe.check("cancel", answer, expected={code})
    documented = documented_body(case.provider, "cancel", code)
    if answer.status == code and documented is not None:
        probe.expect("cancel", "/status", documented.get("status"), answer.json.get("status"))
    probe.verdict()


@pytest.mark.cases("provider", needs="sync_generate")
def test_an_unknown_model_is_not_found(probe: Probe, case: Case, operation: str) -> None:
    """A generation naming a model the provider does not serve is 404 in the error envelope
    (Gemini: NOT_FOUND), on the blocking call and on a batch of the same path."""
    body = wire_body(probe, operation, case.body)
    answer = send_blocking(probe, operation, body, model=UNKNOWN_MODEL)
    if answer is None:
        probe.stop(f"a call for model {UNKNOWN_MODEL} waited for a job")
    assert answer is not None
    probe.check(operation, answer, expected={NOT_FOUND})
    create = "batch_create" + operation.removeprefix("sync_generate")
    if create in probe.operations:
        batch = batch_body(probe, create, wire_body(probe, create, case.body))
        origin = probe.target.origin(probe.provider)
        url = probe.adapter.url(origin, create, model=UNKNOWN_MODEL)
        probe.check(create, probe.send(create, body=batch, url=url), expected={NOT_FOUND})
    probe.verdict()


@pytest.mark.cases("provider", needs="batch_get")
def test_an_unknown_batch_is_not_found(probe: Probe, case: Case, operation: str) -> None:
    """A batch id no batch has is 404 (the code the lifecycle gives an expired batch) when
    read and when cancelled."""
    rid = unknown_batch_id(probe, operation)
    cancel = "batch_cancel" + operation.removeprefix("batch_get")
    for route in (operation, cancel) if cancel in probe.operations else (operation,):
        answer = probe.send(route, request_id=rid)
        probe.check(route, answer, expected={probe.expired_code(route)})
    probe.verdict()
