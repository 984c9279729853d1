"""Free: an id no job has is 404 on every route that reports a job (the code the lifecycle
gives an expired job), in the error envelope; SeaArt's cancel answers {"status": "NOT_FOUND"}."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.facts import documented_body
from nanobanana_mock.conformance.probe import Probe

pytestmark = [pytest.mark.free]


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
