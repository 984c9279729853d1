"""Paid, once per provider that can cancel (SeaArt), with its cheapest request: cancelling
a queued job is accepted (202), the job ends cancelled (COMPLETED with error_type CANCELED),
and a second cancel is refused (400 ALREADY_COMPLETED). The codes come from the lifecycle,
the bodies from the documented examples. Gemini's batches likewise, once running: 200 {},
BATCH_STATE_CANCELLED, then 400."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nanobanana_mock.client.models import JobStatus
from nanobanana_mock.conformance.blocking import create_batch
from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.exchange import Answer
from nanobanana_mock.conformance.facts import documented_body
from nanobanana_mock.conformance.probe import Probe
from nanobanana_mock.conformance.target import Target
from nanobanana_mock.schemas.lifecycle import State

pytestmark = [pytest.mark.paid, pytest.mark.cases("provider", needs="cancel")]
ACCEPTED = 200
POLLS = 10
INTERVAL = 2.0


def test_cancelling_a_queued_job(probe: Probe, case: Case, target: Target) -> None:
    probe.spend(case.plan)
    submit = probe.send("submit", body=dict(case.body))
    probe.check("submit", submit, expected={ACCEPTED})
    handle = probe.handle(submit)
    if handle is None:
        probe.stop("the submit answer names no request_id; the job cannot be cancelled")
    assert handle is not None
    first = probe.send("cancel", request_id=handle.request_id, url=submit.json.get("cancel_url"))
    _check_cancel(probe, first, terminal=False)
    _check_cancelled(probe, target, handle.request_id)
    second = probe.send("cancel", request_id=handle.request_id)
    _check_cancel(probe, second, terminal=True)
    probe.verdict()


def _check_cancel(probe: Probe, answer: Answer, *, terminal: bool) -> None:
    expected = probe.state_codes("cancel", terminal=terminal)
    probe.check("cancel", answer, expected=expected)
    documented = documented_body(probe.provider, "cancel", answer.status)
    if answer.status in expected and documented is not None:
        probe.expect("cancel", "/status", documented.get("status"), answer.json.get("status"))


def _check_cancelled(probe: Probe, target: Target, request_id: str) -> None:
    """The job's status turns terminal, and cancelled, without running to its end."""
    for poll in range(1, POLLS + 1):
        answer = probe.send(probe.main_route, request_id=request_id)
        probe.check(probe.main_route, answer)
        probe.check_state_code(probe.main_route, answer, answer.json.get("status"))
        outcome = probe.adapter.report(answer.status, answer.body)
        if outcome is not None and outcome.status.terminal:
            observed = str(outcome.status)
            if outcome.status is not JobStatus.CANCELLED:
                observed += f" ({outcome.raw_status}, error_type {outcome.error_type})"
            probe.expect(probe.main_route, "/error_type", str(JobStatus.CANCELLED), observed)
            return
        if poll == POLLS:
            probe.never_ended(probe.main_route, poll, (poll - 1) * INTERVAL, answer)
        target.wait(INTERVAL)


@pytest.mark.cases("provider", needs="batch_cancel")
def test_cancelling_a_running_batch(
    probe: Probe, case: Case, operation: str, target: Target
) -> None:
    """Gemini's batches, under each path: a running batch's cancel is accepted (the code of a
    live state on the cancel route), the batch ends cancelled, and a second cancel is refused
    (the code of a terminal state)."""
    suffix = operation.removeprefix("batch_cancel")
    create, read = "batch_create" + suffix, "batch_get" + suffix
    rid, _ = create_batch(probe, create, case.plan, case.body, "cancelled")
    wire = _until(probe, target, read, rid, lambda w: State.QUEUED not in probe.states(w))
    if probe.terminal(wire):
        probe.stop(f"the batch ended {wire} before it could be cancelled")
    first = probe.send(operation, request_id=rid)
    probe.check(operation, first, expected=probe.state_codes(operation, terminal=False))
    wire = _until(probe, target, read, rid, probe.terminal)
    if not probe.terminal(wire):
        probe.stop(f"the cancelled batch never ended; last state {wire!r}")
    if State.CANCELLED not in probe.states(wire):
        cancelled = probe.lifecycle["states"][State.CANCELLED]["wire"]
        probe.expect(read, probe.status_pointer, cancelled, wire)
    second = probe.send(operation, request_id=rid)
    probe.check(operation, second, expected=probe.state_codes(operation, terminal=True))
    probe.verdict()


def _until(probe: Probe, target: Target, read: str, rid: str, done: Callable[[Any], bool]) -> Any:
    """Read the batch (each read checked) until its state is ``done`` or terminal, at most
    ``POLLS`` times; its last state."""
    wire: Any = None
    for poll in range(1, POLLS + 1):
        answer = probe.send(read, request_id=rid)
        probe.check(read, answer)
        wire = probe.wire_status(answer)
        probe.check_state_code(read, answer, wire)
        if done(wire) or probe.terminal(wire) or poll == POLLS:
            return wire
        target.wait(INTERVAL)
    return wire
