"""A linear-time regex engine, and no 500s from client or file input.

Each test is named after a finding: what used to stall the server, answer a 500 or print a
traceback now runs in linear time, gets a documented 4xx in the provider's envelope, or is
refused at start-up (exit 2, one line naming the file and line). All on loopback, on the
virtual clock, bounded in time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from nanobanana_mock import schemas
from nanobanana_mock.app import create_app
from nanobanana_mock.config import ConfigError, MockConfig
from nanobanana_mock.engine.clock import MAX_TIME
from nanobanana_mock.faults import rules as faults
from nanobanana_mock.scenario import ScenarioError, load_scenario, parse_scenario
from nanobanana_mock.state import STATE
from tests.harness import KEYS, Mock, largest_stall, mock_refuses, schema_for, validate

TIMEOUT = 20  # seconds: a bound for every request of this file
STALL = 1.0  # seconds the event loop may be blocked at most (the old code blocked for more)

SUBMIT = {
    "segmind": ("/v2/nano-banana", {"prompt": "x"}),
    "seaart": ("/model/v1/queue/nano_banana_pro", {"prompt": "x"}),
    "pixazo": (
        "/nano-banana-pro-770/v1/nano-banana-pro-request",
        {"prompt": "x", "image_urls": ["https://a.io/b.png"]},
    ),
}


async def send(
    mock: Mock, provider: str | None, method: str, path: str, **kwargs: Any
) -> tuple[int, Any, Any]:
    headers = {**(KEYS[provider] if provider else {}), **kwargs.pop("headers", {})}
    resp = await asyncio.wait_for(
        mock.client.request(method, path, headers=headers, **kwargs), TIMEOUT
    )
    raw = await resp.read()
    body = json.loads(raw) if resp.content_type == "application/json" else raw
    return resp.status, body, resp


async def submit(mock: Mock, provider: str, prompt: str) -> tuple[int, Any]:
    path, body = SUBMIT[provider]
    status, answer, _ = await send(mock, provider, "POST", path, json={**body, "prompt": prompt})
    return status, answer


async def add_rule(mock: Mock, rule: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    status, body, _ = await send(mock, None, "POST", "/_mock/faults", json=rule)
    assert status == expect, body
    return body


# -- 1.2 regular expressions ---------------------------------------------------------------------


async def test_catastrophic_prompt_regex_does_not_stall_submit_or_polls(mock: Mock) -> None:
    # (a+)+$ against 27 characters froze Python's re for 18 s, again on every poll; RE2 is
    # linear. 24 characters keep the old code's stall to seconds, so the test ends either way.
    for pattern in ("(a+)+$", "(a|aa)*$", "(.*a){12}$", "^(a|a?)+$"):
        await add_rule(
            mock,
            {
                "match": {"provider": "segmind", "prompt_regex": pattern},
                "effect": {"latency": {"fixed": 0}},
            },
        )
    prompt = "a" * 24 + "!"

    async def work() -> None:
        status, sub = await submit(mock, "segmind", prompt)
        assert status == 200, sub
        for _ in range(3):
            status, _, _ = await send(
                mock, "segmind", "GET", f"/v2/requests/{sub['request_id']}/status"
            )
            assert status == 200

    assert await largest_stall(mock, work()) < STALL


async def test_many_complex_prompt_regexes_are_searched_off_the_event_loop(mock: Mock) -> None:
    # Each pattern is as complex as a rule may be (RE2 program size ~950): linear, but ~40 ms
    # on a long prompt. Forty of them held the event loop for seconds; the searches now run
    # in a worker thread (RE2 releases the GIL).
    for i in range(40):
        await add_rule(
            mock,
            {
                "match": {"prompt_regex": "(?:(?:a|b)*a(?:a|b){15}){1,50}c" + "x" * i},
                "effect": {"latency": {"fixed": 0}},
            },
        )

    async def work() -> None:
        status, body = await submit(mock, "segmind", "a" * faults.REGEX_MAX_SUBJECT)
        assert status == 200, body

    assert await largest_stall(mock, work()) < STALL


async def test_prompt_regex_still_matches_and_searches_a_bounded_prompt(mock: Mock) -> None:
    await add_rule(
        mock,
        {
            "match": {"provider": "segmind", "prompt_regex": "(?i)forbidden"},
            "effect": {"http_error": {"status": 400, "message": "regex hit"}},
        },
    )
    await add_rule(
        mock,
        {
            "match": {"provider": "segmind", "prompt_regex": "z$"},
            "effect": {"http_error": {"status": 401}},
        },
    )
    status, body = await submit(mock, "segmind", "A FORBIDDEN sign")
    assert (status, body) == (400, {"error": "regex hit"})
    # the regex sees only the first REGEX_MAX_SUBJECT characters of a prompt
    status, _ = await submit(mock, "segmind", "a" * faults.REGEX_MAX_SUBJECT + "z")
    assert status == 200
    status, _ = await submit(mock, "segmind", "a" * (faults.REGEX_MAX_SUBJECT - 1) + "z")
    assert status == 401
    # a lone surrogate (valid JSON) in the prompt cannot break the search
    path, base = SUBMIT["segmind"]
    raw = json.dumps({**base, "prompt": "x\ud800 forbidden"}).encode()
    status, body, _ = await send(
        mock, "segmind", "POST", path, data=raw, headers={"Content-Type": "application/json"}
    )
    assert (status, body) == (400, {"error": "regex hit"})


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("(?=a)b", "RE2"),  # lookaround
        ("(a)\\1", "RE2"),  # a backreference
        ("[", "missing ]"),
        ("a{1001}", "repetition"),
        ("(.{0,100}){10}c", "too complex"),
        ("\ud800", "RE2"),  # a lone surrogate: not Unicode RE2 can read
        ("a" * 1001, "at most 1000"),  # the schema's maxLength
    ],
)
async def test_prompt_regex_that_re2_refuses_is_a_400_naming_it(
    mock: Mock, pattern: str, fragment: str
) -> None:
    rule = {"match": {"prompt_regex": pattern}, "effect": {"http_error": {"status": 500}}}
    body = await add_rule(mock, rule, expect=400)
    assert any("prompt_regex" in p and fragment in p for p in body["problems"]), body
    _, rules, _ = await send(mock, None, "GET", "/_mock/faults")
    assert rules["faults"] == []


async def test_schema_patterns_run_in_linear_time_through_the_proxy(
    aiohttp_server: Any,
) -> None:
    # Segmind's poll_url has the pattern ^https?://[^...]+[^...]*$: Python's re took 2.4 s
    # for a 20,000-character URL failing at its end (quadratic). The proxy checks the
    # upstream's answer with the Python validator, now on RE2.
    config = {"seed": 3, "time_scale": 0.0, "processing_jitter": 0.0}
    upstream = await aiohttp_server(create_app(MockConfig(**config)))
    long_url = "https://" + "a" * 20_000 + "\x01"
    upstream.app[STATE].faults.add(
        {
            "match": {"operation": "submit"},
            "effect": {"drift": {"replace": {"path": "/poll_url", "value": long_url}}},
        },
        0.0,
    )
    base = str(upstream.make_url("")).rstrip("/")
    proxy_app = create_app(MockConfig(**config, proxy={"segmind": base}))
    from aiohttp.test_utils import TestClient

    client = TestClient(TestServer(proxy_app))
    await client.start_server()
    try:
        mock = Mock(client, proxy_app[STATE])

        async def work() -> None:
            status, body = await submit(mock, "segmind", "a cat")
            assert status == 200 and body["poll_url"] == long_url

        assert await largest_stall(mock, work()) < STALL
        findings = proxy_app[STATE].journal.query({})["entries"][-1]["findings"]
        assert any(f["pointer"] == "/poll_url" for f in findings), findings
    finally:
        await client.close()


def test_every_schema_pattern_compiles_on_re2_and_keeps_json_schema_semantics() -> None:
    patterns: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    patterns.append(value)
                elif key == "patternProperties" and isinstance(value, dict):
                    patterns.extend(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for _, doc in schemas.documents():
        walk(doc)
    assert patterns
    for pattern in patterns:
        schemas.search(pattern, "")  # raises if RE2 cannot compile it
    # "$" is the end of the text, as in JSON Schema and jsonschema-rs (Python's re also
    # matched before a trailing newline)
    assert not schemas.search("^[a-z]+$", "abc\n")


# -- 5. scenario rules: duplicate ids, a bad regex --------------------------------------------


def test_scenario_rules_with_duplicate_ids_or_a_bad_regex_are_refused_at_load() -> None:
    text = (
        "faults:\n"
        "  - id: a\n"
        "    match: {prompt_regex: '(?=x)'}\n"
        "    effect: {http_error: {status: 500}}\n"
        "  - id: a\n"
        "    effect: {http_error: {status: 500}}\n"
        "  - effect: {http_error: {status: 500}}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.yaml")
    assert caught.value.problems[0].startswith("s.yaml:3:27: faults[0].match.prompt_regex: ")
    assert caught.value.problems[1].startswith("s.yaml:5:9: faults[1].id: a rule 'a' exists")
    assert len(caught.value.problems) == 2
    # an id given by hand after an automatic one is a duplicate; before it, it is skipped
    parse_scenario(
        '{"faults": [{"id": "r1", "effect": {"latency": {"fixed": 1}}},'
        ' {"effect": {"latency": {"fixed": 1}}}]}'
    )
    with pytest.raises(ScenarioError, match=r"faults\[1\]\.id: a rule 'r1' exists"):
        parse_scenario(
            '{"faults": [{"effect": {"latency": {"fixed": 1}}},'
            ' {"id": "r1", "effect": {"latency": {"fixed": 1}}}]}'
        )


def test_scenario_file_with_a_bad_regex_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        '{"faults": [\n  {"match": {"prompt_regex": "(a)\\\\1"},'
        ' "effect": {"http_error": {"status": 500}}}\n]}\n',
        encoding="utf-8",
    )
    stderr = mock_refuses("--scenario", str(path))
    assert "Traceback" not in stderr
    assert f"{path}:2:30: faults[0].match.prompt_regex: " in stderr


def test_scenario_json_number_of_5000_digits_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text('{"settings":\n {"seed": ' + "9" * 5000 + "}}\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"big.json:2:11: a number of 5000 digits"):
        load_scenario(path)


async def test_reset_with_duplicate_ids_or_a_bad_regex_is_a_400(
    mock_factory: Any, tmp_path: Path
) -> None:
    path = tmp_path / "base.json"
    path.write_text('{"faults": [{"id": "a", "effect": {"latency": {"fixed": 1}}}]}')
    mock = await mock_factory(scenario=str(path))
    await add_rule(mock, {"id": "kept", "effect": {"latency": {"fixed": 2}}})
    for rules, fragment in [
        ([{"id": "a", "effect": {"latency": {"fixed": 1}}}], "faults[0].id: a rule 'a'"),
        (
            [
                {"id": "b", "effect": {"latency": {"fixed": 1}}},
                {"id": "b", "effect": {"latency": {"fixed": 1}}},
            ],
            "faults[1].id: a rule 'b'",
        ),
        (
            [{"match": {"prompt_regex": "(?<=a)"}, "effect": {"latency": {"fixed": 1}}}],
            "faults[0].match.prompt_regex: not a regular expression RE2 accepts",
        ),
    ]:
        status, body, _ = await send(
            mock, None, "POST", "/_mock/reset", json={"scenario": {"faults": rules}}
        )
        assert status == 400, body
        assert any(p.startswith(fragment) for p in body["problems"]), body
    # a refused reset changed nothing
    status, rules, _ = await send(mock, None, "GET", "/_mock/faults")
    assert [r["id"] for r in rules["faults"]] == ["a", "kept"]


async def test_automatic_rule_ids_skip_ids_given_by_hand(mock: Mock) -> None:
    assert (await add_rule(mock, {"id": "r1", "effect": {"latency": {"fixed": 1}}}))["id"] == "r1"
    assert (await add_rule(mock, {"effect": {"latency": {"fixed": 1}}}))["id"] == "r2"


# -- 5. image file names ------------------------------------------------------------------------


async def test_image_index_unicode_digits_or_5000_digits_is_a_404(mock: Mock) -> None:
    status, sub = await submit(mock, "segmind", "a cat")
    mock.advance(100)
    job = sub["request_id"]
    status, _, _ = await send(mock, None, "GET", f"/_mock/files/{job}/0.png")
    assert status == 200
    for name in (
        "\u00b2",
        "\u0660",
        "\uff10",
        "00",
        "01",
        "-0",
        "+0",
        " 0",
        "0" * 5000,
        "9" * 5000,
        "1" * 5,
    ):
        status, body, _ = await send(mock, None, "GET", f"/_mock/files/{job}/{name}.png")
        assert (status, body) == (404, {"error": "File not found"}), name


# -- 5. prompt markers --------------------------------------------------------------------------


@pytest.mark.parametrize("provider", list(SUBMIT))
@pytest.mark.parametrize(
    "marker",
    [
        "[mock:delay=" + "9" * 5000 + "]",
        "[mock:fail-after-polls=" + "1" * 5000 + "]",
        "[mock:status=" + "4" * 5000 + "]",
        "[mock:delay=\u0663]",  # an Arabic-Indic three
        "[mock:status=\u0664\u0662\u0669]",
        "[mock:fail-after-polls=\u00b2]",
        "[mock:delay=nan]",
        "[mock:delay=1e3]",
        "[mock:delay=90000]",
        "[mock:delay=-1]",
        "[mock:fail-at=middle]",
        "[mock:fail-after-polls=0]",
        "[mock:status]",
    ],
)
async def test_prompt_marker_with_a_huge_or_unicode_number_is_a_400_naming_it(
    mock: Mock, provider: str, marker: str
) -> None:
    status, body = await submit(mock, provider, f"a cat {marker}")
    assert status == 400, body
    validate(provider, schema_for(provider, "submit", 400), body)
    assert "[mock:" in json.dumps(body, ensure_ascii=False)


async def test_ten_thousand_prompt_markers_are_a_400_without_a_stall(mock: Mock) -> None:
    prompt = "x " + "[mock:status=429]" * 10_000  # 170 KB: was 1.5 s on the event loop

    async def work() -> None:
        status, body = await submit(mock, "segmind", prompt)
        assert status == 400 and "at most 16 prompt markers" in body["error"], body

    assert await largest_stall(mock, work()) < 0.5


async def test_prompt_marker_on_the_sync_call_is_a_400_too(mock: Mock) -> None:
    status, body, _ = await send(
        mock,
        "segmind",
        "POST",
        "/v1/nano-banana",
        json={"prompt": "x [mock:delay=" + "1" * 5000 + "]"},
    )
    assert status == 400 and "[mock:delay=" in body["error"], body


async def test_valid_prompt_markers_still_work(mock: Mock) -> None:
    status, sub = await submit(mock, "segmind", "x [mock:delay=100.5] [mock:fail-after-polls=2]")
    assert status == 200
    job = mock.state.store.get(sub["request_id"], 0.0)
    assert job.failure.after_polls == 2
    status, body = await submit(mock, "segmind", "x [mock:unknown=\u0663] [mock:other]")
    assert status == 400 and "unknown prompt marker 'unknown'" in body["error"], body


# -- 5. drift pointers --------------------------------------------------------------------------


async def test_drift_pointer_with_a_unicode_digit_changes_nothing(mock: Mock) -> None:
    for pointer in ("/images/²", "/images/\u0660/url", "/images/00", "/images/" + "9" * 400):
        await add_rule(
            mock,
            {
                "match": {"operation": "result"},
                "effect": {"drift": {"replace": {"path": pointer, "value": "x"}}},
            },
        )
    await add_rule(
        mock,
        {
            "match": {"operation": "result"},
            "effect": {"drift": {"replace": {"path": "/images/0/file_name", "value": "y"}}},
        },
    )
    status, sub = await submit(mock, "segmind", "a cat")
    mock.advance(100)
    status, body, _ = await send(mock, "segmind", "GET", f"/v2/requests/{sub['request_id']}")
    assert status == 200, body
    assert body["images"][0]["file_name"] == "y"
    assert isinstance(body["images"][0]["url"], str)


# -- 5. the clock -------------------------------------------------------------------------------


async def test_segmind_rate_limit_after_the_clock_moved_1e12_seconds(mock: Mock) -> None:
    status, _, _ = await send(mock, None, "POST", "/_mock/rate-limits", json={"rpm": 1})
    assert status == 200
    mock.advance(MAX_TIME)  # as far as the control plane lets the clock go
    assert (await submit(mock, "segmind", "a"))[0] == 200
    status, body, resp = await send(
        mock, "segmind", "POST", "/v2/nano-banana", json={"prompt": "b"}
    )
    assert status == 429, body
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", resp.headers["x-rate-limit-reset-at-utc"]
    )
    clock = mock.state.clock  # a wait past any date, or none at all: still a date
    assert clock.wall_wait(1e300) == clock.wall_wait(math.inf) == MAX_TIME
    assert clock.wall_wait(math.nan) == clock.wall_wait(-1e12) == 0
    for wait in (math.inf, math.nan, -1e12):
        assert re.fullmatch(r"2\d{3}-\d\d-\d\dT\d\d:\d\d:\d\dZ", clock.reset_at(wait))
    clock.set_speed(1e-300)  # the slowest clock: its waits are bounded in wall time too
    assert clock.retry_after(60) == MAX_TIME


# -- 5. replay files ----------------------------------------------------------------------------

GOOD = {
    "provider": "segmind",
    "operation": "submit",
    "method": "POST",
    "path": "/v2/nano-banana",
    "query": "",
    "request_body": {"prompt": "x"},
    "status": 200,
    "response_headers": {"content-type": "application/json"},
    "response_body": {"status": "QUEUED"},
    "encoding": "json",
    "upstream": "https://api.segmind.com",
    "t": 1.0,
}


def bad_records() -> list[tuple[bytes, str]]:
    def line(**changes: Any) -> bytes:
        return json.dumps({**GOOD, **changes}).encode()

    deep = line(response_body="DEEP").replace(b'"DEEP"', b"[" * 600 + b"]" * 600)
    return [
        (b"\xff\xfe not utf-8", "not valid UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a recorded exchange"),
        (b"42", "not a recorded exchange"),
        (b"[" * 5000 + b"]" * 5000, "not"),
        (deep, "nest"),  # parsed, but too deep to rebase its URLs when served
        (line(status=99), "status"),
        (line(status=100), "status"),  # a 1xx is never a final answer
        (line(status=600), "status"),
        (line(status=1000), "status"),
        (line(status="200"), "status"),
        (line(status=200.5), "status"),
        (line(provider="seaart"), "seaart exchange in the segmind recording"),
        (line(method="GET /x HTTP/1.1"), "method"),
        (line(path="no-slash"), "path"),
        (line(response_headers={"bad name": "v"}), "response_headers"),
        (line(response_headers={"x-a:": "v"}), "response_headers"),
        (line(response_headers={"x-a": "v\r\nx-injected: 1"}), "response_headers"),
        (line(response_headers={"x-a": 5}), "response_headers"),
        (line(response_headers=[]), "response_headers"),
        (line(encoding="gzip"), "encoding"),
        (line(encoding="base64", response_body="***"), "response_body"),
        (line(encoding="base64", response_body="abc"), "not base64"),
        (line(encoding="omitted", response_body="x"), "response_body"),
        (line(extra=1), "extra"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "status"}).encode(), "status"),
    ]


@pytest.mark.parametrize("index", range(len(bad_records())))
def test_malformed_replay_record_is_refused_at_load_naming_file_and_line(
    tmp_path: Path, index: int
) -> None:
    raw, fragment = bad_records()[index]
    (tmp_path / "segmind.jsonl").write_bytes(json.dumps(GOOD).encode() + b"\n\n" + raw + b"\n")
    with pytest.raises(ConfigError) as caught:
        create_app(MockConfig(replay_dir=str(tmp_path)))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'segmind.jsonl'}:3: "), message
    assert fragment in message and "\n" not in message, message


def test_malformed_replay_file_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "pixazo.jsonl").write_bytes(b'{"provider": "pixazo", "status": 1000}\n')
    stderr = mock_refuses("--replay-dir", str(tmp_path))
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"nanobanana-mock: {tmp_path / 'pixazo.jsonl'}:1: "
    ), stderr


def test_replay_dir_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        create_app(MockConfig(replay_dir=str(tmp_path / "missing")))


async def test_replayed_framing_headers_are_recomputed_not_replayed(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    records = [
        {
            **GOOD,
            "response_headers": {
                "Content-Type": "application/json",
                "Content-Length": "5",  # does not match the body
                "Transfer-Encoding": "chunked",  # beside a Content-Length
                "Connection": "close",
                "Content-Encoding": "gzip",  # the recorded body is decoded already
                "x-remaining-credits": "1.5",
            },
        },
        {
            **GOOD,
            "path": "/v2/requests/abc",
            "method": "GET",
            "request_body": None,
            "response_headers": {"content-type": "image/png", "content-length": "1"},
            "response_body": base64.b64encode(b"\x89PNG" + b"x" * 100).decode(),
            "encoding": "base64",
        },
    ]
    lines = "".join(json.dumps(r) + "\n" for r in records)
    (tmp_path / "segmind.jsonl").write_text(lines, encoding="utf-8")
    client = await aiohttp_client(create_app(MockConfig(replay_dir=str(tmp_path))))
    mock = Mock(client, client.app[STATE])
    status, body, resp = await send(
        mock, "segmind", "POST", "/v2/nano-banana", json=GOOD["request_body"]
    )
    assert (status, body) == (200, {"status": "QUEUED"})
    assert int(resp.headers["Content-Length"]) == len(b'{"status":"QUEUED"}')
    assert "Transfer-Encoding" not in resp.headers and "Content-Encoding" not in resp.headers
    assert resp.headers["x-remaining-credits"] == "1.5"
    status, body, resp = await send(mock, "segmind", "GET", "/v2/requests/abc")
    assert status == 200 and body == b"\x89PNG" + b"x" * 100
    assert int(resp.headers["Content-Length"]) == 104


# -- the client reading an odd server's answer ---------------------------------------------------


@pytest.mark.parametrize("retry_after", ["soon", "Mon, 99 Foo 2020", "nan"])
async def test_client_reads_an_unparseable_retry_after_as_unsaid(
    aiohttp_server: Any, retry_after: str
) -> None:
    from aiohttp import web

    from nanobanana_mock.client import Client, RateLimited
    from nanobanana_mock.client.transport import RetryPolicy

    async def limited(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": "slow down"}, status=429, headers={"Retry-After": retry_after}
        )

    app = web.Application()
    app.router.add_post("/v2/nano-banana", limited)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    async with Client(
        "segmind", api_key="k", base_url=base + "/v1", retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(RateLimited) as caught:
            await asyncio.wait_for(client.submit("nano-banana", prompt="x"), TIMEOUT)
    assert caught.value.retry_after is None


# -- the conformance suite's drift scenarios ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'[{"id": "a", "effect": {"latency": {"target": "queue", "fixed": 1}}}] ', None),
        (
            b'[{"id": "a", "effect": {"latency": {"fixed": 1}}},'
            b' {"id": "a", "effect": {"latency": {"fixed": 1}}}]',
            "faults[1].id: a rule 'a' exists already",
        ),
        (
            b'{"faults": [{"match": {"prompt_regex": "(?!x)"},'
            b' "effect": {"latency": {"fixed": 1}}}]}',
            "faults[0].match.prompt_regex: not a regular expression RE2 accepts",
        ),
        (b"\xff\xfe{}", "--scenario"),
    ],
)
def test_conformance_drift_scenario_rules_are_checked_when_loaded(
    tmp_path: Path, raw: bytes, fragment: str | None
) -> None:
    from nanobanana_mock.conformance.options import UsageError
    from nanobanana_mock.conformance.options import load_scenario as load_drift

    path = tmp_path / "drift.json"
    path.write_bytes(raw)
    if fragment is None:
        assert load_drift(str(path))["faults"][0]["id"] == "a"
        return
    with pytest.raises(UsageError, match=re.escape(fragment)):
        load_drift(str(path))
