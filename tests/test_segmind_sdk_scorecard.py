"""The official Segmind SDK (segmind 1.3.0) under faults, and its client resilience scorecard.

Two keys use the SDK's documented ``client.run(...)``: one as it ships (an error ends the
call), one inside the retry loop many applications wrap around it (three tries, at once, on
any exception). The SDK sleeps between polls with ``time.sleep``: here each of its sleeps
advances the mock's virtual clock instead, so its cadence is kept and the test is instant.
The scorecard's Markdown is the README's example ("The client resilience scorecard"), which
must be this test's output, unedited (``SCORECARD_EXAMPLE_TO=file`` writes it out).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import segmind.v2
from segmind import SegmindClient

from nanobanana_mock import schemas
from nanobanana_mock.engine.journal import redact
from tests.harness import Mock, validate

AS_SHIPPED = "SG_sdk_as_shipped"
RETRY_LOOP = "SG_sdk_in_a_retry_loop"
README = Path(__file__).resolve().parent.parent / "README.md"
MARK = "<!-- not run: scorecard-example -->"
DUMP = "SCORECARD_EXAMPLE_TO"  # a path: the test writes the Markdown it got there
PHASES: list[tuple[str, dict[str, Any]]] = [
    (
        "the submit's answer is lost (the job is made and charged)",
        {"match": {"operation": "submit"}, "effect": {"transport": {"kind": "reset"}}},
    ),
    (
        "a 503 on a status poll",
        {"match": {"operation": "status"}} | {"effect": {"http_error": {"status": 503}}},
    ),
    (
        "a 429 on the submit",
        {"match": {"operation": "submit"}}
        | {"effect": {"http_error": {"status": 429, "retry_after": 10}}},
    ),
]


def price() -> float:
    return float(schemas.load("segmind", "api")["models"]["nano-banana"]["price_usd"]["1K"])


def run(client: SegmindClient, tries: int, prompt: str) -> None:
    """``client.run`` as an application calls it: once, or in a loop of ``tries``."""
    for attempt in range(tries):
        try:
            client.run("nano-banana", prompt=prompt)
            return
        except Exception:  # what the loop's authors wrote
            if attempt == tries - 1:
                return  # logged and given up


async def sdk_under_faults(mock: Mock, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    loop = asyncio.get_running_loop()

    def sleep(seconds: float) -> None:  # the SDK's poll interval, on the virtual clock
        async def move() -> None:
            mock.advance(seconds)

        asyncio.run_coroutine_threadsafe(move(), loop).result(10)

    monkeypatch.setattr(segmind.v2, "time", SimpleNamespace(sleep=sleep, monotonic=time.monotonic))
    for phase, (_, rule) in enumerate(PHASES):
        for key, tries in ((AS_SHIPPED, 1), (RETRY_LOOP, 3)):
            resp = await mock.client.post(
                "/_mock/faults",
                json={**rule, "match": {**rule["match"], "api_key": key}, "scope": {"first": 1}},
            )
            assert resp.status == 201, await resp.text()
            client = SegmindClient(api_key=key, base_url=f"{mock.base}/v1", timeout=30)
            await asyncio.to_thread(run, client, tries, f"a lemon on a plate, take {phase}")
    mock.advance(600)  # every job left behind is over: judged
    resp = await mock.client.get("/_mock/scorecard")
    answer: dict[str, Any] = await resp.json()
    validate("mock", "control/scorecard", answer)
    return answer


async def test_the_sdk_under_faults_and_its_scorecard(
    mock_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock = await mock_factory(queue_seconds=0, processing_seconds={"*": 3})
    answer = await sdk_under_faults(mock, monkeypatch)
    found = sorted((f["rule"], f["key"]) for f in answer["findings"])
    shipped, looped = redact(AS_SHIPPED), redact(RETRY_LOOP)
    assert found == sorted(
        [
            ("abandoned_job", shipped),  # the 503 ended its polling: a paid job left
            ("abandoned_job", looped),  # the same, then a second job paid for
            ("paid_duplicate", looped),  # the lost answer: submitted again
            ("ignored_rate_limit", looped),  # the 429: sent again at once
        ]
    ), answer["findings"]
    keys = {k["key"]: k["wasted_usd"] for k in answer["keys"]}
    assert keys == {shipped: pytest.approx(price()), looped: pytest.approx(2 * price())}
    resp = await mock.client.get("/_mock/scorecard", params={"format": "markdown"})
    text = await resp.text()
    if os.environ.get(DUMP):  # to regenerate the README's example
        Path(os.environ[DUMP]).write_text(text, encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    block = readme.partition(MARK)[2].partition("```markdown\n")[2]
    shown = block.partition("```\n")[0]
    assert shown == text, f"the README's example is not this run's scorecard; it is:\n{text}"
