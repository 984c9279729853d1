"""Paid: one job per model, at its cheapest resolution, from submit to its output.

Every answer on the way matches its schema and the HTTP code the lifecycle declares for the
job's state on that route; the statuses follow the lifecycle (and a terminal one stays
terminal); the URLs the submit hands out work; the output images download with the advertised
type at exactly the pixel size the request implies. On the mock the virtual clock moves
between polls; live, the suite waits for real.
"""

from __future__ import annotations

from typing import Any

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.client.models import JobStatus
from nanobanana_mock.conformance.checks import transition_findings
from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.exchange import Answer
from nanobanana_mock.conformance.probe import URL_FIELDS, Probe
from nanobanana_mock.conformance.target import Target

pytestmark = [pytest.mark.paid, pytest.mark.cases("model")]
ACCEPTED = 200
POLLS_PER_JOB = 6  # polls over a job's typical time
EXTRA_POLLS = 2  # after the terminal status, to see that it stays terminal
DEADLINE_FACTOR = 10  # give up after this many typical times (plus a queue allowance)
QUEUE_ALLOWANCE = 300.0


def test_a_job_runs_its_lifecycle(probe: Probe, case: Case, target: Target) -> None:
    probe.spend(case.plan)
    submit = probe.send("submit", body=dict(case.body))
    probe.check("submit", submit, expected={ACCEPTED})
    handle = probe.handle(submit)
    if handle is None:
        probe.stop("the submit answer names no request_id; the job cannot be followed")
    assert handle is not None
    typical = float(schemas.load(case.provider, "api")["models"][case.model]["typical_seconds"])
    interval = max(1.0, typical / POLLS_PER_JOB)
    observed, last = _poll_until_terminal(probe, target, handle.request_id, typical, interval)
    for _ in range(EXTRA_POLLS):
        target.wait(interval)
        wire, _ = _poll(probe, handle.request_id)
        observed += [wire] if probe.states(wire) else []
    probe.record(
        transition_findings(probe.provider, observed, request=probe.label(probe.main_route))
    )
    _check_urls(probe, submit, handle.request_id, observed[-1])
    outcome = probe.adapter.report(last.status, last.body)
    if outcome is None or outcome.status is not JobStatus.SUCCEEDED:
        probe.verdict()
        error = outcome.error if outcome else None
        pytest.skip(f"the job ended {observed[-1]} ({error}); no output to check")
    result = probe.send("result", request_id=handle.request_id)
    probe.check("result", result)
    probe.check_state_code("result", result, observed[-1])
    probe.check_images(result, submit, case.plan)
    probe.verdict()


def _poll(probe: Probe, request_id: str) -> tuple[Any, Answer]:
    """One poll of every state route (the main one last, so a body without a status, e.g. a
    SeaArt result, is judged by a state no older than its own); the main route's status."""
    answers = {op: probe.send(op, request_id=request_id) for op in probe.poll_routes}
    main = answers[probe.main_route]
    wire = main.json.get("status")
    for operation, answer in answers.items():
        probe.check(operation, answer)
        probe.check_state_code(operation, answer, wire)
    return wire, main


def _poll_until_terminal(
    probe: Probe, target: Target, request_id: str, typical: float, interval: float
) -> tuple[list[Any], Answer]:
    observed: list[Any] = []
    waited, deadline = 0.0, typical * DEADLINE_FACTOR + QUEUE_ALLOWANCE
    while True:
        wire, main = _poll(probe, request_id)
        if not probe.transient(main):
            if not probe.states(wire):
                probe.stop(f"the {probe.main_route} route reports no known status: {wire!r}")
            observed.append(wire)
            if probe.terminal(wire):
                return observed, main
        if waited >= deadline:
            probe.expect(probe.main_route, "/status", "a terminal status", observed[-1:])
            probe.stop(f"no terminal status after {waited:.0f} s")
        target.wait(interval)
        waited += interval


def _check_urls(probe: Probe, submit: Answer, request_id: str, wire: Any) -> None:
    """Each URL the submit handed out answers as its operation does, for the job's state."""
    for field, operation in URL_FIELDS.items():
        url = submit.json.get(field)
        if not isinstance(url, str) or operation not in probe.operations:
            continue
        answer = probe.send(operation, request_id=request_id, url=url)
        probe.check(operation, answer)
        probe.check_state_code(operation, answer, wire)
