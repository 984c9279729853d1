"""Hostile input to the control plane, settings, scenario and replay files, the proxy, the CLI.

Each test is named after a finding that used to answer a 500, leak or stall, and proves the
class is gone. All on loopback, on the virtual clock, bounded in time.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import socket
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from nanobanana_mock.app import create_app
from nanobanana_mock.config import ConfigError, MockConfig, config_from_env
from nanobanana_mock.control.client import ControlError, MockControl
from nanobanana_mock.scenario import ScenarioError, parse_scenario
from nanobanana_mock.server import serve_app
from nanobanana_mock.state import STATE
from tests.harness import KEYS, Mock, largest_stall, mock_refuses

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
    assert 'credits.keys["fp:' in body["problems"][0], body


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
        stderr = mock_refuses("--log-level", level)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nanobanana-mock: log level:"), lines
        assert len(lines[0]) < 200


PROMPT = {"prompt": "x"}
BOMB = gzip.compress(b"\0" * (80 * 1024 * 1024), 9)  # ~80 KiB that inflate to 80 MiB


async def test_upstream_gzip_bomb_does_not_stall_the_proxy(
    mock_factory: Any, aiohttp_server: Any
) -> None:
    # aiohttp inflated each 64 KiB network chunk of a compressed upstream answer in one call:
    # 64 MiB of a gzip bomb held the event loop ~220 ms, on every proxied request. The proxy
    # now inflates itself, 256 KiB at a time, and a corrupt or cut answer is the provider's 502.
    answers = {
        "bomb": (BOMB, "gzip"),
        "good": (gzip.compress(b'{"request_id": "a", "status": "QUEUED"}'), "gzip"),
        "cut": (gzip.compress(b'{"request_id": "a", "status": "QUEUED"}')[:-6], "gzip"),
        "brotli": (b"not brotli", "br"),
    }

    async def handler(request: web.Request) -> web.Response:
        body, encoding = answers[request.headers["X-Case"]]
        headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
        return web.Response(body=body, headers=headers)

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", handler)
    upstream = await aiohttp_server(upstream_app)
    mock = await mock_factory(proxy={"segmind": str(upstream.make_url("")).rstrip("/")})

    async def case(name: str) -> tuple[int, Any]:
        return await send(
            mock,
            "segmind",
            "POST",
            SUBMIT["segmind"],
            json={"prompt": "x"},
            headers={"X-Case": name},
        )

    async def bombs() -> None:
        for _ in range(3):
            status, body = await case("bomb")
            assert status == 502 and "exceeds" in body["error"], body

    assert await largest_stall(mock, bombs()) < 0.12
    status, body = await case("good")
    assert status == 200 and body["request_id"] == "a", body
    for name in ("cut", "brotli"):
        status, body = await case(name)
        assert status == 502 and "error" in body, (name, body)


REQUEST_BOMB = gzip.compress(b'{"prompt": "' + b"a" * (200 * 1024 * 1024) + b'"}', 9)


async def test_request_gzip_bomb_does_not_stall_the_server() -> None:
    # aiohttp's parser inflated all of a compressed body it had received in one synchronous
    # loop, before any size check: 200 KiB of gzip stalled the whole server ~0.6 s, on any
    # route (provider or control plane). The server now reads bodies undecoded and read_body
    # inflates them in bounded steps, counted against --max-body-bytes.
    config = MockConfig(port=0, time_scale=0.0, self_check=True, processing_jitter=0.0)
    app = create_app(config)
    served = await serve_app(app, config)
    base = f"http://127.0.0.1:{served.port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
            gz = {"Content-Encoding": "gzip", "Content-Type": "application/json"}

            async def bombs() -> None:
                for path in (SUBMIT["segmind"], "/_mock/faults"):
                    headers = {**KEYS["segmind"], **gz}
                    async with http.post(base + path, data=REQUEST_BOMB, headers=headers) as resp:
                        assert resp.status == 413, await resp.text()

            assert await largest_stall(lambda path: http.get(base + path), bombs()) < 0.15
            # a gzip, a zlib and a raw deflate body are still read; a cut or bad one is a 400
            body = b'{"prompt": "x"}'
            cases = [
                ("gzip", gzip.compress(body), 200),
                ("deflate", zlib.compress(body), 200),
                ("deflate", zlib.compress(body)[2:-4], 200),
                ("gzip", gzip.compress(body)[:-6], 400),
                ("gzip", b"not gzip at all", 400),
            ]
            for encoding, data, expected in cases:
                headers = {**KEYS["segmind"], **gz, "Content-Encoding": encoding}
                async with http.post(base + SUBMIT["segmind"], data=data, headers=headers) as resp:
                    assert resp.status == expected, (encoding, await resp.text())
                    assert resp.content_type == "application/json"
    finally:
        await served.close()
    assert app[STATE].violations == []


def test_scenario_problem_lines_are_bounded() -> None:
    # A 100,000-character key or number in a scenario file was repeated whole in its
    # problem line (100 KB of stderr at start-up, or in a reset's answer).
    texts = [
        "? " + "k" * 100_000 + "\n: 1\n",
        "settings: {seed: " + "9" * 100_000 + "}\n",
        '{"settings": {"' + "s" * 100_000 + '": 1}}',
    ]
    for text in texts:
        with pytest.raises(ScenarioError) as caught:
            parse_scenario(text, "s.yaml")
        lines = str(caught.value).splitlines()
        assert lines and all(len(line) <= 600 for line in lines), [len(x) for x in lines]


async def test_drift_to_an_informational_status_is_refused(mock: Mock) -> None:
    # A drift rule with status 100 was accepted: the answer went out as "HTTP/1.1 100" with
    # a body, and every client waited for a final answer until its own timeout.
    for status in (100, 101, 103, 199):
        rule = {"effect": {"drift": {"status": status}}}
        code, body = await send(mock, None, "POST", "/_mock/faults", json=rule)
        assert code == 400 and "effect.drift.status" in json.dumps(body), body
    code, body = await send(
        mock, None, "POST", "/_mock/faults", json={"effect": {"drift": {"status": 299}}}
    )
    assert code == 201, body
    code, body = await send(mock, "segmind", "POST", SUBMIT["segmind"], json=PROMPT)
    assert code == 299, body


async def test_recorder_writes_only_lines_a_replay_can_load(
    mock_factory: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    # An upstream answering 999 or 304 (relayed as they are) was recorded as given; the
    # replay loader refuses such a line, so one odd answer made the whole recording unusable
    # (start-up exit 2). The recorder now keeps only lines the loader accepts.
    statuses = iter([999, 200, 304, 200])

    async def submit(request: web.Request) -> web.Response:
        return web.json_response({"request_id": "a", "status": "QUEUED"}, status=next(statuses))

    upstream_app = web.Application()
    upstream_app.router.add_post("/v2/nano-banana", submit)
    upstream = await aiohttp_server(upstream_app)
    base = str(upstream.make_url("")).rstrip("/")
    mock = await mock_factory(proxy={"segmind": base}, record_dir=str(tmp_path))
    for expected in (999, 200, 304, 200):
        resp = await asyncio.wait_for(
            mock.client.post(SUBMIT["segmind"], json=PROMPT, headers=KEYS["segmind"]), TIMEOUT
        )
        await resp.read()
        assert resp.status == expected
    lines = (tmp_path / "segmind.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["status"] for line in lines] == [200, 304, 200]
    replay = create_app(MockConfig(replay_dir=str(tmp_path)))  # loads, no ConfigError
    assert replay is not None


def test_control_client_errors_never_show_a_key_from_the_query() -> None:
    # MockControl's "no answer" error showed the whole URL, query and all: credits.get(key)
    # and journal.entries(key=...) put the API key in clear in a test run's output.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    control = MockControl(f"http://127.0.0.1:{port}", timeout=5)
    for call in (lambda: control.credits.get(CANARY), lambda: control.journal.entries(key=CANARY)):
        with pytest.raises(ControlError) as caught:
            call()
        assert CANARY not in str(caught.value) and "no answer" in str(caught.value)


def test_numeric_settings_take_ascii_digits_only() -> None:
    # int("\u0661") is 1: --workers \u0661 or MOCK_SEED=\u0663 started a mock with
    # settings nobody wrote in ASCII (the control plane's query numbers were already ASCII).
    for name, value in (
        ("MOCK_WORKERS", "\u0661"),
        ("MOCK_SEED", "\u0663"),
        ("MOCK_TIME_SCALE", "\u0661.5"),
        ("MOCK_PROCESSING_SECONDS", "*=\u0665"),
    ):
        with pytest.raises(ConfigError):
            config_from_env({name: value})
    assert config_from_env({"MOCK_WORKERS": "3", "MOCK_HOST": "localhost"}).workers == 3
