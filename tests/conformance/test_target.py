"""MockTarget.blocking: a call answered at once is handed back; a call whose job would end
within the bound moves the virtual clock to that end and is answered; one that would not, or
that neither answers nor makes a job within the wall-time bound, gives None."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from nanobanana_mock.client.providers import adapter
from nanobanana_mock.conformance import target
from nanobanana_mock.conformance.exchange import Answer, Http
from nanobanana_mock.conformance.target import MOCK_KEY, MockTarget

P = "gemini"
MODEL = "gemini-3.1-flash-lite-image"
BODY = {"contents": [{"parts": [{"text": "a cat"}]}]}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockTarget]:
    found = MockTarget()
    yield found
    found.close()


@pytest.fixture(autouse=True)
def _reset(mock: MockTarget) -> None:
    mock.prepare()


def generate(mock: MockTarget, key: str = MOCK_KEY) -> Answer:
    http = Http()
    try:
        url = f"{mock.origin(P)}/v1beta/models/{MODEL}:generateContent"
        return http.call("POST", url, headers=adapter(P).headers(key), json_body=BODY)
    finally:
        http.close()


def test_an_answer_at_once_is_handed_back_and_the_clock_stays(mock: MockTarget) -> None:
    answer = mock.blocking(P, lambda: generate(mock, "wrong"), 600)
    assert answer is not None and answer.status == 400
    assert mock.control.clock.now() == 0


def test_the_clock_moves_to_the_jobs_end_and_the_answer_comes(mock: MockTarget) -> None:
    answer = mock.blocking(P, lambda: generate(mock), 600)
    assert answer is not None and answer.status == 200, answer
    (job,) = mock.control.jobs.list(P)
    assert job.end_at is not None and mock.control.clock.now() == job.end_at


def test_a_job_that_would_not_end_in_time_gives_none_at_the_bound(mock: MockTarget) -> None:
    assert mock.blocking(P, lambda: generate(mock), 0.5) is None
    assert mock.control.clock.now() == 0.5
    assert mock.waiting and not mock.waiting[-1].done()  # the call still waits


def test_a_call_that_neither_answers_nor_makes_a_job_is_given_up(
    mock: MockTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(target, "ARRIVAL_LIMIT", 0.05)
    held = threading.Event()

    def stuck() -> Answer:
        held.wait(30)
        return Answer(200, "application/json", {}, b"{}")

    try:
        assert mock.blocking(P, stuck, 600) is None
        assert mock.control.clock.now() == 0
    finally:
        held.set()
