"""The mock's check of its own answers: a valid answer is never reported as a violation
because an explanation ran out of time."""

from __future__ import annotations

import pytest

from nanobanana_mock.pipeline.self_check import answer_problems
from nanobanana_mock.schemas import violations

# a Segmind status body as the mock writes a job failed at submission: its timings are 0.0,
# integral floats, which only the pure-Python (budgeted) validator judges exactly
FAILED_AT_SUBMIT = {
    "status": "FAILED",
    "request_id": "a7fd7f00-7e7f-41eb-89d7-ddb5eb207e4e",
    "error": "RAI block",
    "metrics": {"inference_time": 0.0, "queue_time": 0.0, "total_time": 0.0},
}


def test_a_valid_answer_with_integral_floats_is_valid_however_slow_the_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(violations, "EXPLAIN_SECONDS", 0.0)  # every budgeted walk times out
    assert answer_problems("segmind", "status", FAILED_AT_SUBMIT) == []


def test_an_integer_written_as_a_float_is_still_a_violation() -> None:
    body = {"status": "IN_QUEUE", "request_id": "mmsu_1", "response_url": "https://x/r"}
    assert answer_problems("seaart", "status", {**body, "queue_position": 1}) == []
    assert answer_problems("seaart", "status", {**body, "queue_position": 1.0}) != []
