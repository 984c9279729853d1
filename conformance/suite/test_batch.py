"""Paid, once per provider with a batch surface (Gemini) at its cheapest request, under each
path (/v1beta/ and /v1/): a batch of one request is created (200 with the batch schema),
then read until it ends. Every read matches its schema and the HTTP code the lifecycle
declares for the state it reports (``metadata.state``, lifecycle.json's status pointer); the
states follow the lifecycle, a terminal one stays terminal, and the finished batch's inlined
answer carries the image the request implies. The reads back off (each wait half again the
last, up to a minute); on the mock the virtual clock moves between them. A batch that
reaches no terminal state within ten typical times (plus a queue allowance) is breaking."""

from __future__ import annotations

from typing import Any

import pytest

from nanobanana_mock.conformance.blocking import (
    batch_images,
    check_images,
    create_batch,
    deadline,
)
from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.exchange import Answer
from nanobanana_mock.conformance.probe import Probe
from nanobanana_mock.conformance.target import Target
from nanobanana_mock.schemas.checks import transition_findings
from nanobanana_mock.schemas.lifecycle import State

pytestmark = [pytest.mark.paid, pytest.mark.cases("provider", needs="batch_create")]
POLLS_PER_JOB = 6  # reads over a job's typical time
EXTRA_POLLS = 2  # after the terminal state, to see that it stays terminal
BACKOFF = 1.5  # each wait between reads this much longer than the last (a batch may take long)
MAX_INTERVAL = 60.0


def test_a_batch_runs_its_lifecycle(
    probe: Probe, case: Case, operation: str, target: Target
) -> None:
    read = "batch_get" + operation.removeprefix("batch_create")
    rid, created = create_batch(probe, operation, case.plan, case.body)
    typical = float(probe.api["models"][case.model]["typical_seconds"])
    interval = first = max(1.0, typical / POLLS_PER_JOB)
    observed: list[Any] = []
    last, polls, waited = created, 0, 0.0
    while True:
        last, polls = _read(probe, read, rid, observed), polls + 1
        if (observed and probe.terminal(observed[-1])) or waited >= deadline(probe):
            break
        target.wait(interval)
        waited, interval = waited + interval, min(interval * BACKOFF, MAX_INTERVAL)
    ended = bool(observed) and probe.terminal(observed[-1])
    final = observed[-1] if ended else None
    for _ in range(EXTRA_POLLS if ended else 0):
        target.wait(first)
        _read(probe, read, rid, observed)
    probe.record(
        transition_findings(probe.provider, observed, request=probe.label(read), operation=read)
    )
    if not ended:
        probe.never_ended(read, polls, waited, last)
    if State.SUCCEEDED not in probe.states(final):
        probe.verdict()
        pytest.skip(f"the batch ended {final}; no output to check")
    answer = probe.send(read, request_id=rid)
    check_images(probe, read, batch_images(probe, answer), case.plan)
    probe.verdict()


def _read(probe: Probe, operation: str, rid: str, observed: list[Any]) -> Answer:
    """One read of the batch, checked; its state joins ``observed`` (none for a rate limit
    or a server error)."""
    answer = probe.send(operation, request_id=rid)
    probe.check(operation, answer)
    wire = probe.wire_status(answer)
    probe.check_state_code(operation, answer, wire)
    if isinstance(wire, str) and not probe.transient(answer):
        observed.append(wire)
    return answer
