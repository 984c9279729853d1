"""Paid: a blocking generation (Segmind's /v1, Gemini's generateContent under /v1beta/ and
/v1/), once per model at its cheapest request and per path: 200 with its schema, the image in
the answer (raw bytes, or base64 inlineData) decodes as its advertised type at exactly the
pixel size the request implies, and a JSON answer that carries its image says so with the
finish reason STOP. On the mock the virtual clock moves to the job's end while the call
waits; a call that would wait longer than ten typical times (plus a queue allowance) is
breaking."""

from __future__ import annotations

import pytest

from nanobanana_mock.conformance.blocking import (
    FINISH_POINTER,
    FINISHED,
    check_images,
    deadline,
    finding,
    finish_reason,
    images_of,
    send_blocking,
    wire_body,
)
from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.probe import Probe

pytestmark = [pytest.mark.paid, pytest.mark.cases("model", needs="sync_generate")]
OK = 200


def test_a_blocking_call_answers_its_image(probe: Probe, case: Case, operation: str) -> None:
    probe.spend(case.plan)
    answer = send_blocking(probe, operation, wire_body(probe, operation, case.body))
    if answer is None:
        seconds = deadline(probe)
        observed = f"no answer after {seconds:.0f} s: the call was still waiting"
        expected = f"an answer within {seconds:.0f} s"
        probe.record([finding(probe, operation, "", expected, observed, "lifecycle")])
        probe.stop(observed)
    assert answer is not None
    probe.check(operation, answer, expected={OK})
    if answer.status != OK:
        probe.stop(f"HTTP {answer.status}; no image to check")
    images, reason = images_of(probe, answer)
    if not images and reason not in (None, FINISHED):
        probe.verdict()
        pytest.skip(f"no image (finish reason {reason}); nothing to measure")
    check_images(probe, operation, images, case.plan)
    reason = finish_reason(answer)
    if images and reason is not None and reason != FINISHED:
        expected, observed = repr(FINISHED), repr(reason)
        probe.record(
            [finding(probe, operation, FINISH_POINTER, expected, observed, "finish_reason")]
        )
    probe.verdict()
