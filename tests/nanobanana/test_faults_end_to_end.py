"""Every kind of fault the mock can inject, met by the client: the job still completes
(transient faults are retried), or the right typed error is raised."""

from __future__ import annotations

import contextlib

import pytest

from nanobanana_mock.client import JobFailed, NotFound, RetryPolicy, ServerError
from tests.harness import releasing
from tests.nanobanana.conftest import MODEL, PARAMS

POLL_OP = {"segmind": "status", "seaart": "status", "pixazo": "result"}

TRANSIENT = [
    (
        "latency on the answer",
        lambda op: {"match": {"operation": op}, "effect": {"latency": {"fixed": 3}}},
    ),
    ("queue latency", lambda op: {"effect": {"latency": {"target": "queue", "uniform": [5, 10]}}}),
    (
        "processing latency",
        lambda op: {
            "effect": {
                "latency": {"target": "processing", "lognormal": {"median": 20, "sigma": 0.3}}
            }
        },
    ),
    (
        "502 twice",
        lambda op: {
            "match": {"operation": op},
            "effect": {"http_error": {"status": 502}},
            "scope": {"first": 2},
        },
    ),
    (
        "503 with Retry-After",
        lambda op: {
            "match": {"operation": op},
            "effect": {"http_error": {"status": 503, "retry_after": 7}},
            "scope": {"first": 1},
        },
    ),
    (
        "429 on polls",
        lambda op: {
            "match": {"operation": op},
            "effect": {"http_error": {"status": 429, "retry_after": 3}},
            "scope": {"every": 3},
        },
    ),
    (
        "reset",
        lambda op: {
            "match": {"operation": op},
            "effect": {"transport": {"kind": "reset"}},
            "scope": {"first": 1},
        },
    ),
    (
        "empty answer",
        lambda op: {
            "match": {"operation": op},
            "effect": {"transport": {"kind": "empty"}},
            "scope": {"first": 1},
        },
    ),
    (
        "truncated body",
        lambda op: {
            "match": {"operation": op},
            "effect": {"transport": {"kind": "truncate"}},
            "scope": {"first": 1},
        },
    ),
    (
        "malformed JSON",
        lambda op: {
            "match": {"operation": op},
            "effect": {"transport": {"kind": "malformed_json"}},
            "scope": {"first": 1},
        },
    ),
    (
        "slow image",
        lambda op: {
            "match": {"operation": "image"},
            "effect": {"transport": {"kind": "slow_body", "bytes_per_second": 10_000_000}},
        },
    ),
    (
        "hung poll",
        lambda op: {
            "match": {"operation": op},
            "effect": {"transport": {"kind": "hang", "seconds": 30}},
            "scope": {"first": 1},
        },
    ),
    (
        "flaky image",
        lambda op: {
            "match": {"operation": "image"},
            "effect": {"http_error": {"status": 500}},
            "scope": {"first": 1},
        },
    ),
]

FATAL = [
    ("job failure at start", {"effect": {"job_failure": {"surface": "start"}}}, JobFailed),
    ("job failure after polls", {"effect": {"job_failure": {"after_polls": 2}}}, JobFailed),
    (
        "outage longer than the retries",
        {"match": {"operation": "__POLL__"}, "effect": {"http_error": {"status": 500}}},
        ServerError,
    ),
    (
        "expired",
        {"match": {"operation": "__POLL__"}, "effect": {"http_error": {"status": 404}}},
        NotFound,
    ),
]


async def add(mock, spec: dict) -> None:
    resp = await mock.client.post("/_mock/faults", json=spec)
    assert resp.status == 201, await resp.text()


@pytest.mark.parametrize("provider", ["segmind", "seaart", "pixazo"])
@pytest.mark.parametrize(("name", "rule"), TRANSIENT, ids=[n for n, _ in TRANSIENT])
async def test_transient_faults_do_not_stop_a_job(make_client, mock, provider, name, rule) -> None:
    await add(mock, rule(POLL_OP[provider]))
    # only the hung poll needs the client to give up on an answer; the others get a timeout
    # no loaded machine reaches (0.5 s did, rendering an image under load)
    timeout = 1.0 if name == "hung poll" else 15.0
    client = make_client(provider, request_timeout=timeout, retry=RetryPolicy(attempts=4, seed=2))
    # each poll answer of "latency on the answer" waits 3 s on the frozen mock clock, which
    # the client's timer only moves while the client sleeps: release it by hand.
    held = name == "latency on the answer"
    async with releasing(mock, 3) if held else contextlib.nullcontext():
        result = await client.generate(MODEL[provider], **PARAMS[provider])
    assert result.image.data and result.image.width
    submits = await (await mock.client.get("/_mock/journal", params={"operation": "submit"})).json()
    assert submits["count"] == 1  # never a second (paid) job


@pytest.mark.parametrize("provider", ["segmind", "seaart", "pixazo"])
@pytest.mark.parametrize(("name", "spec", "error"), FATAL, ids=[n for n, _, _ in FATAL])
async def test_fatal_faults_raise_the_right_error(
    make_client, mock, provider, name, spec, error
) -> None:
    if "match" in spec:
        spec = {**spec, "match": {"operation": POLL_OP[provider]}}
    await add(mock, spec)
    client = make_client(provider, retry=RetryPolicy(attempts=3, seed=2))
    with pytest.raises(error):
        await client.generate(MODEL[provider], **PARAMS[provider])
