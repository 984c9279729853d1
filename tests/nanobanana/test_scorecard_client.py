"""The project's own client scores clean on the client resilience scorecard under every kind
of fault the mock injects (schemas/mock/fault_rule.json's effects), for every provider: it
completes the job, or raises the right error without wasting a request or a dollar."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from typing import Any

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.client import (
    ApiError,
    JobFailed,
    NotFound,
    RetryPolicy,
    ServerError,
    TransportError,
)
from nanobanana_mock.control.scorecard import Scorecard
from tests.harness import Mock, releasing, validate
from tests.nanobanana.conftest import MODEL, PARAMS
from tests.nanobanana.test_faults_end_to_end import POLL_OP, add

POLL = "__POLL__"  # the provider's poll operation
EFFECTS = tuple(schemas.load("mock", "fault_rule")["$defs"]["effect"]["properties"])

# (name, rule, the error generate() raises or None); every effect kind is met at least once
FAULTS: list[tuple[str, dict[str, Any], type[ApiError] | None]] = [
    (
        "502 twice on polls",
        {"match": {"operation": POLL}, "effect": {"http_error": {"status": 502}}}
        | {"scope": {"first": 2}},
        None,
    ),
    (
        "429 with its wait on polls",
        {"match": {"operation": POLL}}
        | {"effect": {"http_error": {"status": 429, "retry_after": 3}}, "scope": {"every": 2}},
        None,
    ),
    (
        "429 with its wait on the submit",
        {"match": {"operation": "submit"}}
        | {"effect": {"http_error": {"status": 429, "retry_after": 5}}, "scope": {"first": 2}},
        None,
    ),
    (
        "503 on the submit",
        {"match": {"operation": "submit"}}
        | {"effect": {"http_error": {"status": 503, "retry_after": 7}}, "scope": {"first": 1}},
        ServerError,
    ),
    (
        "404 on polls",
        {"match": {"operation": POLL}, "effect": {"http_error": {"status": 404}}},
        NotFound,
    ),
    (
        "400 on the submit",
        {"match": {"operation": "submit"}} | {"effect": {"http_error": {"status": 400}}},
        ApiError,
    ),
    ("job failure", {"effect": {"job_failure": {"surface": "start"}}}, JobFailed),
    ("job failure after polls", {"effect": {"job_failure": {"after_polls": 2}}}, JobFailed),
    (
        "latency on the answer",
        {"match": {"operation": POLL}} | {"effect": {"latency": {"fixed": 3}}},
        None,
    ),
    ("queue latency", {"effect": {"latency": {"target": "queue", "uniform": [5, 10]}}}, None),
    (
        "reset on a poll",
        {"match": {"operation": POLL}}
        | {"effect": {"transport": {"kind": "reset"}}, "scope": {"first": 1}},
        None,
    ),
    (
        "reset after the submit",
        {"match": {"operation": "submit"}}
        | {"effect": {"transport": {"kind": "reset"}}, "scope": {"first": 1}},
        TransportError,
    ),
    (
        "malformed JSON on a poll",
        {"match": {"operation": POLL}}
        | {"effect": {"transport": {"kind": "malformed_json"}}, "scope": {"first": 1}},
        None,
    ),
    (
        "drift: an extra field on polls",
        {"match": {"operation": POLL}}
        | {"effect": {"drift": {"add": {"path": "/x_extra", "value": 1}}}},
        None,
    ),
    ("drift: images skewed", {"effect": {"drift": {"image_scale": 0.5}}}, None),
]


def test_every_effect_kind_is_met() -> None:
    met = {kind for _, rule, _ in FAULTS for kind in rule["effect"]}
    assert met == set(EFFECTS)


async def scorecard(mock: Mock) -> Scorecard:
    resp = await mock.client.get("/_mock/scorecard")
    assert resp.status == 200
    answer = await resp.json()
    validate("mock", "control/scorecard", answer)
    return Scorecard(answer)


@pytest.mark.parametrize("provider", ["segmind", "seaart", "pixazo"])
@pytest.mark.parametrize(("name", "rule", "error"), FAULTS, ids=[n for n, _, _ in FAULTS])
async def test_the_client_scores_clean_under_every_fault_kind(
    make_client: Any,
    mock: Mock,
    provider: str,
    name: str,
    rule: dict[str, Any],
    error: type[ApiError] | None,
) -> None:
    if rule.get("match", {}).get("operation") == POLL:
        rule = {**rule, "match": {"operation": POLL_OP[provider]}}
    await add(mock, rule)
    client = make_client(provider, request_timeout=15.0, retry=RetryPolicy(attempts=4, seed=2))
    held = name == "latency on the answer"  # the frozen clock moves only while the client sleeps
    async with releasing(mock, 3) if held else contextlib.nullcontext():
        if error is None:
            result = await client.generate(MODEL[provider], **PARAMS[provider])
            assert result.images
        else:
            with pytest.raises(error):
                await client.generate(MODEL[provider], **PARAMS[provider])
    mock.advance(3600 * 24)  # long after: every job it left is over, and judged
    card = await scorecard(mock)
    card.assert_clean()
    assert card.data["entries"] >= 1


@pytest.mark.parametrize("provider", ["segmind", "pixazo"])  # SeaArt's 429 tells no wait
async def test_a_rate_limited_client_keeps_to_the_wait(
    make_client: Any, mock: Mock, provider: str
) -> None:
    """The limiter's own 429s (not a rule's): every submit after one waits its turn."""
    resp = await mock.client.post("/_mock/rate-limits", json={"rpm": 1, "scope": "all"})
    assert resp.status < 300, await resp.text()
    client = make_client(provider, retry=RetryPolicy(attempts=6, seed=3))
    for _ in range(2):
        await client.generate(MODEL[provider], **PARAMS[provider])
    journal = await (await mock.client.get("/_mock/journal", params={"status": "429"})).json()
    assert journal["count"] >= 2  # it was told to wait, more than once
    (await scorecard(mock)).assert_clean()


def test_the_plugin_fixture_asserts_it_clean_naming_each_finding(nanobanana_mock: Any) -> None:
    """``nanobanana_mock.scorecard().assert_clean()``: its failure lists each finding on a
    line, with its rule, key, job, journal entries and wasted dollars."""
    nanobanana_mock.scorecard().assert_clean()
    url = f"{nanobanana_mock.base_url}/model/v1/queue/nano_banana_pro/requests/mmsu_lost/status"
    for _ in range(3):
        request = urllib.request.Request(url, headers={"Authorization": "Key sk-plugin"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 404
    card = nanobanana_mock.scorecard(provider="seaart")
    assert not card.clean and [f["rule"] for f in card.findings] == ["hopeless_retry"]
    with pytest.raises(AssertionError) as failed:
        card.assert_clean()
    message = str(failed.value)
    assert message.startswith("the client resilience scorecard has 1 finding(s):")
    assert "hopeless_retry" in message and "job mmsu_lost" in message
    assert "journal entries 1, 2, 3" in message and "$0.0000" in message
    assert "sk-plugin" not in message and "fp:" in message
    assert "| hopeless_retry |" in card.markdown()
