"""The fault engine over real HTTP: every documented error of every provider, job failures,
latency, transport faults, scopes, matches and prompt markers."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from nanobanana_mock import schemas
from tests.harness import KEYS, Mock

SUBMIT = {
    "segmind": ("POST", "/v2/nano-banana", {"prompt": "x"}),
    "seaart": ("POST", "/model/v1/queue/nano_banana_pro", {"prompt": "x"}),
    "pixazo": (
        "POST",
        "/nano-banana-pro-770/v1/nano-banana-pro-request",
        {"prompt": "x", "image_urls": ["https://a.io/b.png"]},
    ),
    "fal": ("POST", "/fal/queue/fal-ai/nano-banana-pro", {"prompt": "x"}),
}


async def add_rule(mock: Mock, rule: dict) -> str:
    resp = await mock.client.post("/_mock/faults", json=rule)
    body = await resp.json()
    assert resp.status == 201, body
    return body["id"]


async def submit(mock: Mock, provider: str, expect: int | None = 200, **extra: object):
    method, path, body = SUBMIT[provider]
    return await mock.call(provider, "submit", method, path, json={**body, **extra}, expect=expect)


def declared(provider: str, operation: str) -> list[int]:
    responses = schemas.load(provider, "api")["operations"][operation]["responses"]
    return sorted(
        int(c) for c, spec in responses.items() if int(c) >= 400 and spec.get("schema") == "error"
    )


@pytest.mark.parametrize(
    ("provider", "status"),
    [(p, s) for p in SUBMIT for s in declared(p, "submit")],
)
async def test_every_documented_submit_error_in_the_provider_shape(
    mock: Mock, provider: str, status: int
) -> None:
    await add_rule(
        mock,
        {
            "match": {"provider": provider, "operation": "submit"},
            "effect": {"http_error": {"status": status, "retry_after": 30}},
        },
    )
    resp, body = await submit(mock, provider, expect=status)  # the harness validates the body
    if status == 429 and provider == "segmind":
        assert "Retry-After" not in resp.headers
        assert resp.headers["x-rate-limit-reset-at-utc"].endswith("Z")
    if status == 429 and provider == "pixazo":  # the model page's body, the mock's Retry-After
        assert resp.headers["Retry-After"] == "30"
        assert body == {"error": "Rate limit exceeded, please retry later"}
    if status == 429 and provider == "seaart":
        assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    if status == 503:
        assert resp.headers["Retry-After"] == "30"
    assert mock.state.store.jobs() == []  # an error before the handler creates no job


@pytest.mark.parametrize(
    ("provider", "credits_status"), [("segmind", 406), ("seaart", 402), ("pixazo", 402)]
)
@pytest.mark.parametrize("asked", [402, 406])
async def test_insufficient_credits_uses_each_providers_own_code(
    mock: Mock, provider: str, credits_status: int, asked: int
) -> None:
    await add_rule(mock, {"effect": {"http_error": {"status": asked}}})
    await submit(mock, provider, expect=credits_status)


@pytest.mark.parametrize(
    ("provider", "operation", "method", "path"),
    [
        ("segmind", "status", "GET", "/v2/requests/{id}/status"),
        ("segmind", "result", "GET", "/v2/requests/{id}"),
        ("seaart", "status", "GET", "/model/v1/queue/nano_banana_pro/requests/{id}/status"),
        ("seaart", "result", "GET", "/model/v1/queue/nano_banana_pro/requests/{id}/response"),
        ("seaart", "cancel", "PUT", "/model/v1/queue/nano_banana_pro/requests/{id}/cancel"),
        ("pixazo", "result", "POST", "/nano-banana-pro-770/v1/nano-banana-pro-request-result"),
    ],
)
@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 502, 503, 504])
async def test_errors_on_polling_routes(
    mock: Mock, provider: str, operation: str, method: str, path: str, status: int
) -> None:
    if status not in declared(provider, operation):
        pytest.skip(f"{provider}.{operation} answers {status} with its own body, not an error")
    _, sub = await submit(mock, provider)
    await add_rule(
        mock, {"match": {"operation": operation}, "effect": {"http_error": {"status": status}}}
    )
    kwargs = {"json": {"request_id": sub["request_id"]}} if provider == "pixazo" else {}
    await mock.call(
        provider, operation, method, path.format(id=sub["request_id"]), expect=status, **kwargs
    )


async def test_an_error_outside_the_contract_is_not_injected(mock: Mock) -> None:
    # 410 is declared by Segmind's submit only: a rule on any provider's operations adds,
    # but it fires only where the contract allows it
    await add_rule(mock, {"effect": {"http_error": {"status": 410}}})
    _, sub = await submit(mock, "seaart")
    await mock.call(
        "seaart",
        "status",
        "GET",
        f"/model/v1/queue/nano_banana_pro/requests/{sub['request_id']}/status",
        expect=200,
    )


@pytest.mark.parametrize(
    ("surface", "advance", "before"),
    [("submit", 0, None), ("start", 1.0, "QUEUED"), ("end", 15.5, "PROCESSING")],
)
async def test_segmind_failure_surfaces_where_asked(
    mock: Mock, surface: str, advance: float, before: str | None
) -> None:
    await add_rule(mock, {"effect": {"job_failure": {"error": "RAI block", "surface": surface}}})
    _, sub = await submit(mock, "segmind")
    path = f"/v2/requests/{sub['request_id']}/status"
    if before:
        mock.advance(advance - 0.5)
        _, body = await mock.call("segmind", "status", "GET", path, expect=200)
        assert body["status"] == before
        mock.advance(0.5)
    _, body = await mock.call("segmind", "status", "GET", path, expect=422)
    assert (body["status"], body["error"]) == ("FAILED", "RAI block")


async def test_failure_after_n_polls(mock: Mock) -> None:
    await add_rule(
        mock,
        {
            "effect": {
                "job_failure": {
                    "error": "timed out",
                    "error_type": "INFERENCE_TIMEOUT",
                    "after_polls": 3,
                }
            }
        },
    )
    _, sub = await submit(mock, "seaart")
    path = f"/model/v1/queue/nano_banana_pro/requests/{sub['request_id']}/status"
    seen = [(await mock.call("seaart", "status", "GET", path, expect=200))[1] for _ in range(4)]
    assert [b["status"] for b in seen] == ["IN_QUEUE", "IN_QUEUE", "COMPLETED", "COMPLETED"]
    assert (seen[2]["error"], seen[2]["error_type"]) == ("timed out", "INFERENCE_TIMEOUT")


async def test_pixazo_failure(mock: Mock) -> None:
    await add_rule(
        mock,
        {
            "match": {"provider": "pixazo"},
            "effect": {"job_failure": {"error": "Invalid image URL"}},
        },
    )
    _, sub = await submit(mock, "pixazo")
    mock.advance(100)
    _, body = await mock.call(
        "pixazo",
        "result",
        "POST",
        "/nano-banana-pro-770/v1/nano-banana-pro-request-result",
        json={"request_id": sub["request_id"]},
        expect=200,
    )
    assert (body["status"], body["error"]) == ("FAILED", "Invalid image URL")


async def test_response_latency_is_on_the_virtual_clock(mock: Mock) -> None:
    await add_rule(mock, {"match": {"operation": "submit"}, "effect": {"latency": {"fixed": 5}}})
    call = asyncio.ensure_future(submit(mock, "segmind"))
    await mock.state.clock.wait_for_sleepers(1)
    mock.advance(4.9)
    for _ in range(10):  # room for a wrongly woken answer to be written and read back
        await asyncio.sleep(0)
    assert mock.state.clock.sleepers == 1 and not call.done()  # still waiting at 4.9 of 5
    mock.advance(0.1)
    await asyncio.wait_for(call, 10)


async def test_queue_and_processing_latency_shift_the_job(mock: Mock) -> None:
    await add_rule(mock, {"effect": {"latency": {"target": "queue", "fixed": 10}}})
    await add_rule(mock, {"effect": {"latency": {"target": "processing", "uniform": [20, 20]}}})
    _, sub = await submit(mock, "segmind")
    job = mock.state.store.get(sub["request_id"], 0.0)
    assert (job.start_at, job.end_at) == (11.0, pytest.approx(11.0 + 14.28 + 20))


async def test_lognormal_latency_is_seeded(mock_factory) -> None:
    draws = []
    for seed in (3, 3, 4):
        mock = await mock_factory(seed=seed)
        await add_rule(
            mock,
            {
                "id": "slow",
                "effect": {
                    "latency": {"target": "processing", "lognormal": {"median": 10, "sigma": 0.5}}
                },
            },
        )
        _, sub = await submit(mock, "segmind")
        draws.append(mock.state.store.get(sub["request_id"], 0.0).duration)
    assert draws[0] == draws[1] != draws[2]


async def raw_submit(mock: Mock, timeout: float = 10.0):
    method, path, body = SUBMIT["segmind"]
    return await mock.client.request(
        method,
        path,
        json=body,
        headers=KEYS["segmind"],
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


@pytest.mark.parametrize("kind", ["reset", "empty"])
async def test_broken_connections_after_the_handler_still_create_the_job(
    mock: Mock, kind: str
) -> None:
    await add_rule(mock, {"id": "cut", "effect": {"transport": {"kind": kind}}})
    with pytest.raises(aiohttp.ClientError):
        await raw_submit(mock)
    assert len(mock.state.store.jobs()) == 1  # the client lost the answer, not the (paid) job
    resp = await mock.client.get("/_mock/journal", params={"fault": "cut"})
    (entry,) = (await resp.json())["entries"]
    assert entry["status"] is None and entry["effect"] == "transport"


async def test_reset_before_the_handler_creates_nothing(mock: Mock) -> None:
    await add_rule(mock, {"effect": {"transport": {"kind": "reset", "when": "before"}}})
    with pytest.raises(aiohttp.ClientError):
        await raw_submit(mock)
    assert mock.state.store.jobs() == []


async def test_truncated_body(mock: Mock) -> None:
    await add_rule(mock, {"effect": {"transport": {"kind": "truncate"}}})
    resp = await raw_submit(mock)
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_malformed_json(mock: Mock) -> None:
    await add_rule(mock, {"effect": {"transport": {"kind": "malformed_json"}}})
    resp = await raw_submit(mock)
    assert resp.status == 200 and resp.content_type == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(await resp.text())


async def test_slow_body_arrives_whole(mock: Mock) -> None:
    await add_rule(
        mock, {"effect": {"transport": {"kind": "slow_body", "bytes_per_second": 20000}}}
    )
    resp = await raw_submit(mock)
    assert json.loads(await resp.read())["status"] == "QUEUED"


async def test_hang_until_the_client_gives_up(mock: Mock) -> None:
    await add_rule(mock, {"effect": {"transport": {"kind": "hang", "seconds": 5}}})
    with pytest.raises(asyncio.TimeoutError):
        await raw_submit(mock, timeout=0.2)


async def test_scopes_first_after_every_times(mock: Mock) -> None:
    await add_rule(
        mock,
        {
            "id": "a",
            "match": {"operation": "submit"},
            "effect": {"http_error": {"status": 500}},
            "scope": {"after": 1, "every": 2, "times": 2},
        },
    )
    codes = [(await submit(mock, "segmind", expect=None))[0].status for _ in range(8)]
    assert codes == [200, 500, 200, 500, 200, 200, 200, 200]
    listed = (await (await mock.client.get("/_mock/faults")).json())["faults"]
    assert (listed[0]["matched"], listed[0]["fired"]) == (8, 2)


async def test_probability_replays_with_the_seed(mock_factory) -> None:
    patterns = []
    for seed in (5, 5, 6):
        mock = await mock_factory(seed=seed)
        await add_rule(
            mock,
            {
                "id": "flaky",
                "effect": {"http_error": {"status": 502}},
                "scope": {"probability": 0.5},
            },
        )
        patterns.append([(await submit(mock, "pixazo", expect=None))[0].status for _ in range(16)])
    assert patterns[0] == patterns[1] != patterns[2]
    assert {200, 502} == set(patterns[0])


async def test_window_is_an_outage_on_the_virtual_clock(mock: Mock) -> None:
    await add_rule(
        mock,
        {
            "effect": {"http_error": {"status": 503}},
            "scope": {"window": {"from": 60, "until": 120}},
        },
    )
    await submit(mock, "seaart", expect=200)
    mock.advance(60)
    await submit(mock, "seaart", expect=503)
    mock.advance(60)
    await submit(mock, "seaart", expect=200)


async def test_ttl_expires_a_rule(mock: Mock) -> None:
    await add_rule(mock, {"effect": {"http_error": {"status": 500}}, "scope": {"ttl": 30}})
    await submit(mock, "segmind", expect=500)
    mock.advance(30)
    await submit(mock, "segmind", expect=200)


@pytest.mark.parametrize(
    ("match", "hit", "miss"),
    [
        ({"api_key": "SG_0123456789abcdef"}, {}, {"headers": {"x-api-key": "SG_other"}}),
        ({"model": "nano-banana-2"}, {"path": "/v2/nano-banana-2"}, {}),
        ({"prompt_contains": "forbidden"}, {"prompt": "a forbidden fruit"}, {}),
        ({"prompt_regex": "^cat"}, {"prompt": "cat on a mat"}, {"prompt": "a cat"}),
        ({"headers": {"X-Test-Case": "boom"}}, {"headers": {"x-test-case": "boom"}}, {}),
        (
            {"method": ["PUT", "POST"], "provider": ["pixazo", "segmind"]},
            {},
            {"path": "/v2/requests/x/status", "method": "GET"},
        ),
    ],
)
async def test_matches(mock: Mock, match: dict, hit: dict, miss: dict) -> None:
    await add_rule(mock, {"match": match, "effect": {"http_error": {"status": 500}}})

    async def send(how: dict) -> int:
        headers = {**KEYS["segmind"], **how.get("headers", {})}
        resp = await mock.client.request(
            how.get("method", "POST"),
            how.get("path", "/v2/nano-banana"),
            json={"prompt": how.get("prompt", "x")},
            headers=headers,
        )
        return resp.status

    assert await send(hit) == 500
    assert await send(miss) != 500


async def test_status_rules_match_the_model_and_prompt_of_the_job(mock: Mock) -> None:
    await add_rule(
        mock,
        {
            "match": {"operation": "status", "prompt_contains": "slow"},
            "effect": {"http_error": {"status": 504}},
        },
    )
    _, slow = await submit(mock, "segmind", prompt="a slow one")
    _, fast = await submit(mock, "segmind", prompt="a fast one")
    await mock.call(
        "segmind", "status", "GET", f"/v2/requests/{slow['request_id']}/status", expect=504
    )
    await mock.call(
        "segmind", "status", "GET", f"/v2/requests/{fast['request_id']}/status", expect=200
    )


@pytest.mark.parametrize(
    ("prompt", "expect", "error_type"),
    [
        ("a cat [mock:fail]", "failed", "INFERENCE_FAILURE"),
        ("a cat [mock:fail=CONTENT_BLOCKED]", "failed", "CONTENT_BLOCKED"),
        ("a cat [mock:status=429]", 429, None),
        ("a cat [mock:fail=NOPE]", 400, None),
    ],
)
async def test_prompt_markers(
    mock: Mock, prompt: str, expect: object, error_type: str | None
) -> None:
    status = 200 if expect == "failed" else expect
    _, sub = await submit(mock, "seaart", expect=status, prompt=prompt)
    if expect == "failed":
        mock.advance(100)
        _, body = await mock.call(
            "seaart",
            "status",
            "GET",
            f"/model/v1/queue/nano_banana_pro/requests/{sub['request_id']}/status",
            expect=200,
        )
        assert body["error_type"] == error_type


async def test_prompt_marker_delay_and_fail_at(mock: Mock) -> None:
    _, sub = await submit(
        mock, "segmind", prompt="x [mock:delay=100] [mock:fail] [mock:fail-at=start]"
    )
    job = mock.state.store.get(sub["request_id"], 0.0)
    assert job.duration == pytest.approx(114.28) and job.failure.surface == "start"


async def test_image_downloads_can_fail(mock: Mock) -> None:
    _, sub = await submit(mock, "segmind")
    mock.advance(60)
    _, result = await mock.call(
        "segmind", "result", "GET", f"/v2/requests/{sub['request_id']}", expect=200
    )
    await add_rule(
        mock,
        {
            "match": {"operation": "image"},
            "effect": {"http_error": {"status": 503}},
            "scope": {"first": 1},
        },
    )
    path = result["output"][len(mock.base) :]
    first = await mock.client.get(path)
    assert first.status == 503 and await first.json() == {
        "error": "Service temporarily unavailable"
    }
    assert (await mock.client.get(path)).status == 200


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"effect": {"http_error": {"status": 418}}}, "effect.http_error.status"),
        ({"effect": {}}, "effect"),
        ({"match": {"colour": "red"}, "effect": {"http_error": {"status": 500}}}, "match"),
        (
            {"match": {"prompt_regex": "("}, "effect": {"http_error": {"status": 500}}},
            "prompt_regex",
        ),
        ({"effect": {"latency": {"fixed": 1, "uniform": [1, 2]}}}, "effect.latency"),
    ],
)
async def test_invalid_rules_are_400_with_problems(mock: Mock, rule: dict, fragment: str) -> None:
    resp = await mock.client.post("/_mock/faults", json=rule)
    body = await resp.json()
    assert resp.status == 400 and body["error"] == "invalid fault rule"
    assert any(fragment in problem for problem in body["problems"]), body


async def test_the_rule_list_is_bounded(mock: Mock) -> None:
    rules = [{"effect": {"latency": {"fixed": 0}}}] * 1000
    resp = await mock.client.post("/_mock/faults", json={"faults": rules})
    assert resp.status == 201
    resp = await mock.client.post("/_mock/faults", json=rules[0])
    assert resp.status == 400 and "at most 1000 rules" in (await resp.json())["problems"][0]


async def test_drift_edits_normal_answers_only(mock: Mock) -> None:
    await add_rule(
        mock,
        {
            "match": {"operation": "status"},
            "effect": {
                "drift": {
                    "add": {"path": "/eta", "value": 5},
                    "replace": {"path": "/queue_position", "value": "soon"},
                }
            },
        },
    )
    _, sub = await submit(mock, "segmind")
    resp = await mock.client.get(
        f"/v2/requests/{sub['request_id']}/status", headers=KEYS["segmind"]
    )
    body = await resp.json()
    assert body["eta"] == 5 and "queue_position" not in body  # replace never creates a field
    resp = await mock.client.get("/v2/requests/nope/status", headers=KEYS["segmind"])
    assert resp.status == 404 and await resp.json() == {"error": "Request nope not found"}


async def test_drift_when_status_targets_error_answers_on_purpose(mock: Mock) -> None:
    await add_rule(
        mock,
        {
            "match": {"operation": "status"},
            "effect": {"drift": {"status": 200, "when_status": [404]}},
        },
    )
    resp = await mock.client.get("/v2/requests/nope/status", headers=KEYS["segmind"])
    assert resp.status == 200
