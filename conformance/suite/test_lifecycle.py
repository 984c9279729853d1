"""Paid: one job per model, at its cheapest resolution, from submit to its output.

Every answer on the way matches its schema and the HTTP code the lifecycle declares for the
job's state on that route; the statuses follow the lifecycle (and a terminal one stays
terminal); the URLs the submit hands out work; the output images download with the advertised
type at exactly the pixel size the request implies. On the mock the virtual clock moves
between polls; live, the suite waits for real. A status outside the lifecycle is breaking (the
job is still followed: it may yet end), and so is a job that reaches no terminal state within
a bounded number of polls.
"""

from __future__ import annotations

from typing import Any

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.client.models import JobStatus
from nanobanana_mock.conformance.blocking import DEADLINE_FACTOR, QUEUE_ALLOWANCE
from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.exchange import Answer
from nanobanana_mock.conformance.probe import URL_FIELDS, Probe
from nanobanana_mock.conformance.target import Target
from nanobanana_mock.schemas.checks import transition_findings

pytestmark = [pytest.mark.paid, pytest.mark.cases("model", needs="submit")]
ACCEPTED = 200
POLLS_PER_JOB = 6  # polls over a job's typical time
EXTRA_POLLS = 2  # after the terminal status, to see that it stays terminal


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
    observed, last, polls = _poll_until_terminal(
        probe, target, handle.request_id, typical, interval
    )
    final = observed[-1] if observed else None
    ended = probe.terminal(final)
    for _ in range(EXTRA_POLLS if ended else 0):
        target.wait(interval)
        observed += _status(probe, *_poll(probe, handle.request_id))
    route = probe.main_route
    probe.record(
        transition_findings(probe.provider, observed, request=probe.label(route), operation=route)
    )
    if not ended:
        probe.never_ended(route, polls, (polls - 1) * interval, last)
    _check_urls(probe, submit, handle.request_id, final)
    outcome = probe.adapter.report(last.status, last.body)
    if outcome is None or outcome.status is not JobStatus.SUCCEEDED:
        probe.verdict()
        error = outcome.error if outcome else None
        pytest.skip(f"the job ended {final} ({error}); no output to check")
    result = probe.send("result", request_id=handle.request_id)
    probe.check("result", result)
    probe.check_state_code("result", result, final)
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


def _status(probe: Probe, wire: Any, main: Answer) -> list[str]:
    """The status a poll observed (none for a rate limit, a server error, or a body without a
    status string); a status outside the lifecycle is kept, for the transition check."""
    return [wire] if isinstance(wire, str) and not probe.transient(main) else []


def _poll_until_terminal(
    probe: Probe, target: Target, request_id: str, typical: float, interval: float
) -> tuple[list[str], Answer, int]:
    """Poll until a terminal status, or for at most ``DEADLINE_FACTOR`` typical times plus
    the queue allowance (on the mock, of virtual time: the clock moves, nothing sleeps).
    The statuses seen, the last answer and the number of polls."""
    observed: list[str] = []
    most = 1 + int((typical * DEADLINE_FACTOR + QUEUE_ALLOWANCE) // interval)
    polls = 0
    while True:
        wire, main = _poll(probe, request_id)
        polls += 1
        observed += _status(probe, wire, main)
        if (observed and probe.terminal(observed[-1])) or polls >= most:
            return observed, main, polls
        target.wait(interval)


def _check_urls(probe: Probe, submit: Answer, request_id: str, wire: Any) -> None:
    """Each URL the submit handed out answers as its operation does, for the job's state."""
    for field, operation in URL_FIELDS.items():
        url = submit.json.get(field)
        if not isinstance(url, str) or operation not in probe.operations:
            continue
        answer = probe.send(operation, request_id=request_id, url=url)
        probe.check(operation, answer)
        probe.check_state_code(operation, answer, wire)
