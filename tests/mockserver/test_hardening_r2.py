"""Red-team round 2 (control plane, settings, scenario and replay files, proxy, CLI, secrets).

Each test is named after a finding that used to answer a 500, leak or stall, and proves the
class is gone. All on loopback, on the virtual clock, bounded in time.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tracemalloc
from typing import Any

import pytest

from mockserver.scenario import ScenarioError, parse_scenario
from tests.harness import KEYS, Mock

TIMEOUT = 20  # seconds: a bound for every request of this file

SUBMIT = {
    "segmind": "/v2/nano-banana",
    "seaart": "/model/v1/queue/nano_banana_pro",
    "pixazo": "/nano-banana-pro-770/v1/nano-banana-pro-request",
}


async def send(
    mock: Mock, provider: str | None, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    headers = {**(KEYS[provider] if provider else {}), **kwargs.pop("headers", {})}
    resp = await asyncio.wait_for(
        mock.client.request(method, path, headers=headers, **kwargs), TIMEOUT
    )
    raw = await resp.read()
    body = json.loads(raw) if resp.content_type == "application/json" else raw
    return resp.status, body


JSON = {"Content-Type": "application/json"}


async def test_lone_surrogate_in_a_key_or_list_item_is_not_a_500(mock: Mock) -> None:
    # jsonschema-rs raised UnicodeEncodeError on a lone surrogate (valid JSON, which the mock
    # accepts) in an object key or a list item: every provider's submit and a fault rule
    # answered 500. They now get the verdict of the same contract.
    odd_key = b'{"prompt": "x", "image_urls": ["https://a.io/b.png"], "\\ud800": {"\\udc00": 1}}'
    odd_item = b'{"prompt": "x", "image_urls": ["\\udc00"]}'
    for provider, path in SUBMIT.items():
        status, body = await send(mock, provider, "POST", path, data=odd_key, headers=JSON)
        assert status < 500, (provider, body)
        status, body = await send(mock, provider, "POST", path, data=odd_item, headers=JSON)
        assert status in (400, 422), (provider, body)
    rule = b'{"\\ud800": 1, "effect": {"latency": {"fixed": 0}}}'
    status, body = await send(mock, None, "POST", "/_mock/faults", data=rule, headers=JSON)
    assert status == 400 and "problems" in body, body
    rule = b'{"match": {"api_key": "\\ud800"}, "effect": {"latency": {"fixed": 0}}}'
    status, body = await send(mock, None, "POST", "/_mock/faults", data=rule, headers=JSON)
    assert status in (201, 400), body


CANARY = "CANARYKEY7731"


async def test_schema_problems_never_echo_an_api_key(mock: Mock) -> None:
    # A problem's message quoted the value: a fault rule's too-long or odd match.api_key, a
    # scenario's api_keys given as a string, a credits key that breaks a rule, all came back
    # in clear in the answer (and a scenario file's problems on stderr at start-up).
    rules = [
        {"match": {"api_key": CANARY * 400}, "effect": {"latency": {"fixed": 0}}},
        {"match": {"api_key": {"k": CANARY}}, "effect": {"latency": {"fixed": 0}}},
    ]
    for rule in rules:
        status, body = await send(mock, None, "POST", "/_mock/faults", json=rule)
        assert status == 400 and "problems" in body, body
        assert CANARY not in json.dumps(body), body
    scenarios: list[dict[str, Any]] = [
        {"settings": {"api_keys": CANARY}},
        {"settings": {"api_keys": [CANARY * 400]}},
        {"credits": {"keys": {CANARY: "lots"}}},
        {"faults": [{"match": {"api_key": [CANARY, 1]}, "effect": {"latency": {"fixed": 0}}}]},
    ]
    for scenario in scenarios:
        status, body = await send(mock, None, "POST", "/_mock/reset", json={"scenario": scenario})
        assert status == 400, body
        assert CANARY not in json.dumps(body), body
        with pytest.raises(ScenarioError) as caught:
            parse_scenario(json.dumps(scenario), "s.json")
        assert CANARY not in str(caught.value), caught.value
    # the fingerprint stands in for a key that names a problem's place
    status, body = await send(mock, None, "POST", "/_mock/reset", json={"scenario": scenarios[2]})
    assert "credits.keys.fp:" in json.dumps(body), body


async def test_long_control_plane_keys_are_not_kept_by_the_fingerprint_cache(mock: Mock) -> None:
    # The fingerprint cache (4,096 entries) kept each key it had seen, in clear: a credits or
    # rate-limit key may be as long as a body (256 KiB), so 4,096 calls held a gigabyte.
    # Only short keys are cached now; the ledger keeps fingerprints only.
    size, calls = 200_000, 40
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(calls):
            key = f"{i:04d}" + "k" * size
            status, body = await send(
                mock, None, "POST", "/_mock/credits", json={"key": key, "balance": 1}
            )
            assert status == 200, body
            status, body = await send(
                mock, None, "POST", "/_mock/rate-limits", json={"key": key, "rpm": 1}
            )
            assert status == 200, body
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < size * calls / 4, f"{grown} bytes kept for {calls} keys of {size} characters"


def test_unknown_log_level_exits_2_with_one_line() -> None:
    # --log-level NOPE (or 5) reached logging.basicConfig after start-up: a ValueError
    # traceback and exit 1. It is refused with the other settings now.
    for level in ("NOPE", "5", "x" * 300):
        proc = subprocess.run(
            [sys.executable, "-m", "mockserver", "--port", "0", "--log-level", level],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nanobanana-mock: log level:"), lines
        assert len(lines[0]) < 200
