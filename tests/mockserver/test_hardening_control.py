"""The control plane belongs to the test author only.

Cross-site requests and DNS rebinding, keys never in clear, and one schema for every
setting. All on loopback, on the virtual clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from nanobanana_mock import cli, schemas
from nanobanana_mock.accesslog import ACCESS_LOG_FORMAT, AccessLog, request_line
from nanobanana_mock.app import create_app
from nanobanana_mock.config import ConfigError, MockConfig
from nanobanana_mock.control.api import MAX_CREDITS, SETTABLE
from nanobanana_mock.engine.clock import MAX_SPEED, MAX_TIME
from nanobanana_mock.engine.journal import redact
from nanobanana_mock.pipeline.serve import DRIFT
from nanobanana_mock.scenario import ScenarioError, parse_scenario
from nanobanana_mock.sources.replay import Exchange, Recorder
from tests.conftest import BASE_CONFIG, MockFactory
from tests.harness import KEYS, Mock
from tests.mockserver.test_faults import SUBMIT, submit

SETTINGS_SCHEMA = schemas.load("mock", "settings")
RULE_429 = {"match": {"operation": "submit"}, "effect": {"http_error": {"status": 429}}}


async def control(
    mock: Mock,
    method: str,
    path: str,
    body: Any = None,
    *,
    expect: int = 200,
    headers: dict[str, str] | None = None,
    data: bytes | str | None = None,
) -> Any:
    """A control-plane call; its JSON answer, after checking the status."""
    resp = await mock.client.request(
        method, f"/_mock/{path}", json=body, data=data, headers=headers
    )
    text = await resp.text()
    assert resp.status == expect, text
    assert resp.content_type == "application/json", text
    return json.loads(text)


async def snapshot(mock: Mock) -> dict[str, Any]:
    """What a reset would change: jobs, rules, quotas, clock, settings."""
    return {
        "jobs": await control(mock, "GET", "jobs"),
        "faults": await control(mock, "GET", "faults"),
        "credits": await control(mock, "GET", "credits"),
        "limits": await control(mock, "GET", "rate-limits"),
        "clock": await control(mock, "GET", "clock"),
        "settings": await control(mock, "GET", "settings"),
    }


# -- 1. cross-site requests and DNS rebinding --------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_cross_site_form_post_cannot_add_rules_or_reset(
    mock: Mock, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    before = await snapshot(mock)
    await control(mock, "POST", "faults", data=json.dumps(RULE_429), headers=headers, expect=415)
    reset = json.dumps({"settings": {"control_open": True, "workers": 9}})
    await control(mock, "POST", "reset", data=reset, headers=headers, expect=415)
    await control(mock, "POST", "reset", headers=headers, expect=415)  # no body at all
    await control(mock, "POST", "clock", data='{"advance": 5}', headers=headers, expect=415)
    assert await snapshot(mock) == before


async def test_a_write_with_a_body_must_be_json_but_a_bodyless_delete_need_not(
    mock: Mock,
) -> None:
    await control(mock, "POST", "faults", RULE_429, expect=201)
    text = {"Content-Type": "text/plain"}
    await control(mock, "DELETE", "faults", data="{}", headers=text, expect=415)
    assert (await control(mock, "GET", "faults"))["faults"]
    await control(mock, "DELETE", "faults")
    json_type = {"Content-Type": "application/json; charset=utf-8"}
    assert (await control(mock, "POST", "reset", headers=json_type))["ok"] is True


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "https://localhost.evil.example", "file://"]
)
async def test_a_foreign_origin_is_refused(mock: Mock, origin: str) -> None:
    refused = await control(mock, "GET", "journal", headers={"Origin": origin}, expect=403)
    assert "origin" in refused["error"]
    await control(mock, "POST", "faults", RULE_429, headers={"Origin": origin}, expect=403)
    assert (await control(mock, "GET", "faults"))["faults"] == []


@pytest.mark.parametrize(
    "origin",
    ["http://localhost:3000", "http://127.0.0.1:8080", "http://[::1]", "http://a.localhost"],
)
async def test_a_loopback_origin_is_accepted(mock: Mock, origin: str) -> None:
    await control(mock, "POST", "faults", RULE_429, headers={"Origin": origin}, expect=201)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io"]
)
async def test_dns_rebinding_host_is_refused(mock: Mock, host: str) -> None:
    await submit(mock, "segmind")
    refused = await control(mock, "GET", "journal", headers={"Host": host}, expect=403)
    assert "DNS rebinding" in refused["error"]
    await control(mock, "GET", "jobs", headers={"Host": host}, expect=403)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST:80",
        "app.localhost:9",
        "127.0.0.1",
        "127.9.9.9:1",
        "[::1]:8080",
        "10.1.2.3:8080",  # any IP literal: there is no rebinding without a name
        "[fe80::1]",
    ],
)
async def test_loopback_names_and_ip_literals_are_allowed_hosts(mock: Mock, host: str) -> None:
    await control(mock, "GET", "journal", headers={"Host": host})


async def test_configured_and_extra_hosts_are_allowed(mock_factory: MockFactory) -> None:
    mock = await mock_factory(host="mock.internal", control_hosts=["ci.example", "*.lan"])
    for host in ("mock.internal:8080", "ci.example", "box.lan", "a.b.lan:1"):
        await control(mock, "GET", "clock", headers={"Host": host})
        await control(mock, "GET", "clock", headers={"Origin": f"http://{host}"})
    for host in ("lan", "evil.example", "ci.example.evil"):
        await control(mock, "GET", "clock", headers={"Host": host}, expect=403)
    anything = await mock_factory(control_hosts=["*"])
    await control(anything, "GET", "clock", headers={"Host": "whatever.example"})


async def test_provider_routes_answer_any_host(mock: Mock) -> None:
    """A client on the LAN may use the machine's name; provider routes reach only the
    simulation, so they take any Host."""
    for provider in SUBMIT:
        headers = {**KEYS[provider], "Host": "builder.lan:8080"}
        method, path, body = SUBMIT[provider]
        resp = await mock.client.request(method, path, json=body, headers=headers)
        assert resp.status == 200, await resp.text()


async def test_control_open_cannot_be_set_by_a_reset(mock: Mock) -> None:
    before = await snapshot(mock)
    for body in (
        {"settings": {"control_open": True}},
        {"scenario": {"settings": {"control_open": True}}},
        {"settings": {"control_hosts": ["*"]}},
    ):
        refused = await control(mock, "POST", "reset", body, expect=400)
        assert "on reset" in refused["error"]
    assert await snapshot(mock) == before
    assert before["settings"]["control_open"] is False


# -- 2. keys never in clear --------------------------------------------------------------------


def test_redact_shows_no_key_material() -> None:
    for key in ("0123456789", "SG_0123456789abcdef", "k1", "x" * 5000):
        shown = redact(key)
        assert shown is not None and re.fullmatch(r"fp:[0-9a-f]{8}", shown)
        assert all(key[i : i + 3] not in shown for i in range(len(key) - 2))
    assert redact("k1") != redact("k2")


async def test_faults_list_shows_key_fingerprints(mock: Mock) -> None:
    key = "sk-" + secrets.token_hex(16)
    rules = [
        {**RULE_429, "id": "one", "match": {"api_key": key}},
        {**RULE_429, "id": "many", "match": {"api_key": [key, "k1"]}},
    ]
    await control(mock, "POST", "faults", {"faults": rules}, expect=201)
    listed = await control(mock, "GET", "faults")
    text = json.dumps(listed)
    assert key not in text and '"k1"' not in text
    shown = {rule["id"]: rule["match"]["api_key"] for rule in listed["faults"]}
    assert shown == {"one": redact(key), "many": [redact(key), redact("k1")]}


def _exchange(answer: Any, request_body: Any, path: str = "/v2/x") -> Exchange:
    data = json.dumps(answer).encode()
    return Exchange(
        provider="segmind",
        operation="submit",
        method="POST",
        path=path,
        query="",
        request_body=request_body,
        status=200,
        headers={"Content-Type": "application/json"},
        body=data,
        answer=answer,
        is_json=True,
        upstream="http://127.0.0.1:9",
    )


@pytest.mark.parametrize("key", ["status", "k1", "1", '"', "\\", "é", "a b", "provider"])
def test_recording_redacts_the_key_structurally(tmp_path: Path, key: str) -> None:
    """A short key, a field name or JSON syntax as the key never corrupts a line."""
    answer = {"id": f"x{key}y", "xs": [key, 10], "n": 1.5, "[redacted]": "taken", key: "v"}
    Recorder(tmp_path).record(_exchange(answer, {"prompt": key}), key)
    (line,) = (tmp_path / "segmind.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)  # valid JSON, whatever the key
    body = record["response_body"]
    assert body == {
        "id": "x[redacted]y",
        "xs": ["[redacted]", 10],
        "n": 1.5,
        "[redacted]": "taken",  # a redacted name overwrites no other member
        "[redacted]#2": "v",
    }
    assert record["request_body"] == {"prompt": "[redacted]"}

    def values(item: Any) -> list[str]:
        if isinstance(item, dict):
            return [v for value in item.values() for v in values(value)]
        if isinstance(item, list):
            return [v for value in item for v in values(value)]
        return [item] if isinstance(item, str) else []

    del record["upstream"]  # the configured origin, not the caller's
    assert all(key not in value for value in values(record))

    def names(item: Any) -> list[str]:
        if isinstance(item, dict):
            return [*item, *(n for value in item.values() for n in names(value))]
        return [n for value in item for n in names(value)] if isinstance(item, list) else []

    assert all(key not in name for name in names(record["response_body"]))


async def test_non_utf8_mock_token_is_a_clean_401(mock_factory: MockFactory) -> None:
    mock = await mock_factory(control_token="right-token")
    server = mock.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"GET /_mock/settings HTTP/1.1\r\nHost: localhost\r\n"
        b"X-Mock-Token: \xff\xfe\xc3(\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), raw[:200]
    assert b"application/json" in head
    assert "X-Mock-Token" in json.loads(body)["error"]


async def test_control_plane_failures_are_json(mock_factory: MockFactory) -> None:
    mock = await mock_factory(max_body_bytes=1024)
    missing = await control(mock, "GET", "no-such-thing", expect=404)
    assert "no control-plane route" in missing["error"]
    resp = await mock.client.get("/_mock/reset")
    assert resp.status == 405 and resp.content_type == "application/json"
    assert "POST" in resp.headers["Allow"] and "error" in await resp.json()
    big = {"effect": {"http_error": {"status": 429}}, "description": "x" * 4000}
    assert "error" in await control(mock, "POST", "faults", big, expect=413)


async def test_a_bug_in_a_control_handler_is_a_logged_json_500(
    mock: Mock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(mock.state.journal, "query", broken)
    with caplog.at_level(logging.ERROR, logger="nanobanana_mock"):
        failed = await control(mock, "GET", "journal", expect=500)
    assert failed == {"error": "internal error of the mock (logged)"}
    assert "a bug" in caplog.text


def test_access_log_request_line_has_no_query_values() -> None:
    class Request:
        method = "GET"
        raw_path = "/_mock/journal?key=SECRET&provider=segmind&flag"
        version = aiohttp.HttpVersion11
        headers: ClassVar[dict[str, str]] = {}

    line = request_line(Request())  # type: ignore[arg-type]
    assert line == "GET /_mock/journal?key=…&provider=…&flag=… HTTP/1.1"
    Request.raw_path = "/v2/requests/sk%2F1/sk/1?k=sk/1"
    Request.headers = {"Authorization": "Bearer sk/1"}
    line = request_line(Request())  # type: ignore[arg-type]
    assert line == "GET /v2/requests/[redacted]/[redacted]?k=… HTTP/1.1"


# -- the canary: one key through every surface -------------------------------------------------


class Served:
    """An app on a loopback port behind a real AppRunner, with the mock's access log."""

    def __init__(self, runner: web.AppRunner, app: web.Application) -> None:
        self.runner = runner
        self.app = app
        host, port = runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[web.Application], Awaitable[Served]]]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> Served:
        runner = web.AppRunner(app, access_log_class=AccessLog, access_log_format=ACCESS_LOG_FORMAT)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return Served(runner, app)

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


def echoing_upstream(key_header: str) -> web.Application:
    """A "live" Segmind that echoes the caller's key everywhere it can: in values, in a
    field name, in an id, in an error text; every answer breaks the contract."""

    async def answer(request: web.Request) -> web.Response:
        key = request.headers.get(key_header, "")
        body = {
            "status": f"weird-{key}",
            "request_id": f"id-{key}",
            key: {"nested": [key, f"Bearer {key}"]},
            "error": f"the key {key} is not allowed " + "padding " * 20 + key,
        }
        return web.json_response(body, status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


@pytest.mark.parametrize(
    "key", ["sk-" + secrets.token_urlsafe(32).replace("-", "x"), "k1"], ids=["long", "short"]
)
async def test_canary_key_is_nowhere(
    key: str,
    tmp_path_factory: pytest.TempPathFactory,
    serve: Callable[[web.Application], Awaitable[Served]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    tmp_path = tmp_path_factory.mktemp("canary")  # a name without the key in it
    upstream = await serve(echoing_upstream("x-api-key"))
    record_dir = tmp_path / "records"
    config = MockConfig(
        **{**BASE_CONFIG, "proxy": {"segmind": upstream.base}, "record_dir": str(record_dir)}
    )
    mock = await serve(create_app(config))
    seen: list[str] = []  # every answer's status line, headers and body

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def call(method: str, path: str, relayed: bool = False, **kwargs: Any) -> Any:
            async with http.request(method, mock.base + path, **kwargs) as resp:
                raw = await resp.read()
                if relayed:  # the upstream's own answer, relayed as it came: not a surface
                    return None
                seen.append(f"{resp.status} {dict(resp.headers)} ")
                seen.append(raw.decode("utf-8", "replace"))
                return json.loads(raw) if resp.content_type == "application/json" else None

        auth = {
            "segmind": {"x-api-key": key},
            "seaart": {"Authorization": f"Key {key}"},
            "pixazo": {"Ocp-Apim-Subscription-Key": key},
        }
        # the provider surfaces: simulated jobs, errors with the key in the body, the proxy
        for provider in ("seaart", "pixazo"):
            method, path, body = SUBMIT[provider]
            await call(method, path, json=body, headers=auth[provider])
            await call(method, path, json={**body, "prompt": 5}, headers=auth[provider])
            await call(method, path, data=key, headers=auth[provider])
        await call(
            "GET", "/model/v1/queue/nano_banana_pro/requests/x/status", headers=auth["seaart"]
        )
        segmind = {"headers": auth["segmind"], "relayed": True}
        await call("POST", "/v2/nano-banana", json={"prompt": "x"}, **segmind)
        await call("GET", f"/v2/requests/{key}/status", **segmind)
        # the control plane: every place a key may be given, and every listing
        await call("POST", "/_mock/faults", json={**RULE_429, "match": {"api_key": key}})
        await call("POST", "/_mock/faults", json={"match": {"api_key": key}, "effect": 1})
        await call("POST", "/_mock/credits", json={"key": key, "balance": 5})
        await call("POST", "/_mock/credits", json={"key": key, "balance": -5})
        await call("POST", "/_mock/rate-limits", json={"key": key, "rpm": 100})
        await call("POST", "/_mock/rate-limits", json={"key": key, "rpm": "x"})
        for provider in ("seaart", "pixazo"):
            method, path, body = SUBMIT[provider]
            await call(method, path, json=body, headers=auth[provider])
        for path in (
            "jobs",
            "faults",
            "credits",
            f"credits?key={key}",
            "rate-limits",
            "journal",
            f"journal?key={key}",
            f"journal?model={key}",
            "settings",
            "drift",
            "drift?format=markdown",
            "drift?format=html",
        ):
            await call("GET", "/_mock/" + path)
        await call("POST", "/_mock/reset", json={"settings": {"api_keys": [key]}})
        await call("POST", "/_mock/reset", json={"settings": {"api_keys": key}})
        await call("POST", "/_mock/reset", json={"settings": {"api_keys": [key], "workers": 0}})
        await call("GET", "/_mock/settings")
        await call("GET", "/_mock/journal")

    assert '"findings":[{' in "".join(seen), "the journal showed the proxy's findings"
    drift_files = mock.app[DRIFT].write(tmp_path / "drift")
    assert mock.app[DRIFT].to_json()["findings"], "the echoing upstream broke the contract"
    surfaces = {
        "answers": "\n".join(seen),
        "logs": caplog.text,
        "access log": "\n".join(
            r.getMessage() for r in caplog.records if r.name == "aiohttp.access"
        ),
        "recordings": "\n".join(p.read_text("utf-8") for p in sorted(record_dir.glob("*"))),
        "drift files": "\n".join(p.read_text("utf-8") for p in drift_files.values()),
    }
    assert surfaces["access log"], "the access log is one of the surfaces"
    assert surfaces["recordings"], "the proxy recorded"
    for name, text in surfaces.items():
        assert key not in text, f"the key is in the {name}"


# -- 3. one schema for every setting -----------------------------------------------------------


def test_every_config_field_has_an_entry_in_the_settings_schema() -> None:
    fields = {f.name for f in dataclasses.fields(MockConfig)}
    assert fields == set(SETTINGS_SCHEMA["properties"])
    assert SETTINGS_SCHEMA["additionalProperties"] is False


def test_the_schema_bounds_agree_with_the_clock_and_the_control_plane() -> None:
    assert SETTINGS_SCHEMA["properties"]["time_scale"]["maximum"] == MAX_SPEED
    duration = SETTINGS_SCHEMA["$defs"]["duration"]["maximum"]
    assert duration < MAX_TIME
    assert schemas.load("mock", "scenario")["$defs"]["credits"]["maximum"] == MAX_CREDITS


async def test_fractional_workers_are_refused_and_submits_still_work(mock: Mock) -> None:
    refused = await control(mock, "POST", "reset", {"settings": {"workers": 1.5}}, expect=400)
    assert "workers" in refused["error"]
    await submit(mock, "segmind")
    settings = await control(mock, "POST", "reset", {"settings": {"workers": 3.0}})
    assert settings["settings"]["workers"] == 3 and isinstance(mock.state.config.workers, int)
    await submit(mock, "segmind")


async def test_huge_workers_are_refused(mock: Mock) -> None:
    for workers in (5e6, 10**400, 1001):
        await control(mock, "POST", "reset", {"settings": {"workers": workers}}, expect=400)
    assert mock.state.config.workers == BASE_CONFIG["workers"]


async def test_huge_processing_jitter_is_refused(mock: Mock) -> None:
    await control(mock, "POST", "reset", {"settings": {"processing_jitter": 1000}}, expect=400)
    await control(mock, "POST", "reset", {"settings": {"processing_jitter": 3}})
    for _ in range(20):
        await submit(mock, "seaart")


async def test_api_keys_as_a_string_is_refused(mock: Mock) -> None:
    refused = await control(mock, "POST", "reset", {"settings": {"api_keys": "secret"}}, expect=400)
    assert "api_keys" in refused["error"]
    assert mock.state.config.api_keys == frozenset()
    with pytest.raises(ConfigError, match="api_keys"):
        MockConfig(api_keys="secret")  # type: ignore[arg-type]
    await control(mock, "POST", "reset", {"settings": {"api_keys": ["secret"]}})
    assert mock.state.config.api_keys == frozenset({"secret"})


@pytest.mark.parametrize(
    "argv",
    [
        ["--time-scale", "nan"],
        ["--time-scale", "inf"],
        ["--time-scale=-inf"],
        ["--queue-seconds", "nan"],
        ["--processing-seconds", "*=nan"],
        ["--retention-seconds", "seaart=inf"],
        ["--notional-credits", "1e400"],
    ],
)
def test_non_finite_flags_do_not_start_a_server(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_exit(argv, monkeypatch, capsys) == 2


def cli_exit(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> int:
    """``main(argv)``'s exit code, checking a refusal is one line; never serves."""

    async def no_serve(app: web.Application, config: MockConfig) -> None:
        return None

    for name in list(__import__("os").environ):
        if name.startswith("MOCK_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(cli, "serve", no_serve)
    monkeypatch.setattr(cli.gc, "set_threshold", lambda *args: None)
    code = cli.main(argv)
    err = capsys.readouterr().err.strip()
    if code == 2:
        assert len(err.splitlines()) == 1 and err.startswith("nanobanana-mock: "), err
        assert len(err) < 2000
    return code


@pytest.mark.parametrize("path", ["journal?since=", "journal?limit=", "jobs?limit="])
@pytest.mark.parametrize("value", ["\u0663", "\u00b2", "\uff11", "-1", "1e3", "1.0", "9" * 13, ""])
async def test_query_numbers_are_short_ascii_whole_numbers(
    mock: Mock, path: str, value: str
) -> None:
    """Python reads Arabic-Indic and fullwidth digits as digits: a query number is a short
    run of ASCII digits, or a 400 that names it and quotes no Python error."""
    answer = await control(mock, "GET", path + quote(value), expect=400)
    name = path.partition("?")[2].rstrip("=")
    assert answer["error"].startswith(f"{name} must be a whole number"), answer
    await control(mock, "GET", path + "3")


async def test_journal_limit_zero_is_refused_not_everything(mock: Mock) -> None:
    await control(mock, "GET", "journal?limit=0", expect=400)
    unknown = await control(mock, "GET", "journal?" + "x" * 5000 + "=1", expect=400)
    assert len(unknown["error"]) < 300


async def test_clock_advance_is_bounded(mock: Mock) -> None:
    refused = await control(mock, "POST", "clock", {"advance": 1e308}, expect=400)
    assert f"{MAX_TIME:g}" in refused["error"]
    await control(mock, "POST", "clock", {"advance": 1e308}, expect=400)
    for body in ({"advance": 10**400}, {"to": 10**400}, {"to": 2e10}, {"speed": 10**400}):
        await control(mock, "POST", "clock", body, expect=400)
    await control(mock, "POST", "clock", {"speed": MAX_SPEED * 2}, expect=400)
    assert await control(mock, "GET", "clock") == {"now": 0.0, "speed": 0.0}
    assert (await control(mock, "POST", "clock", {"to": MAX_TIME}))["now"] == MAX_TIME
    await control(mock, "POST", "clock", {"advance": 1}, expect=400)
    for raw in ('{"advance": 1e400}', '{"advance": NaN}', '{"advance": Infinity}'):
        await control(mock, "POST", "clock", data=raw, expect=400, headers=JSON)


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("credits", {"default": 10**400}),
        ("credits", {"key": "k", "balance": 10**400}),
        ("credits", {"key": "k", "balance": 1e300}),
        ("rate-limits", {"rpm": 10**400}),
        ("rate-limits", {"rpm": 1e300}),
        ("reset", {"settings": {"seed": 10**400}}),
        ("reset", {"settings": {"notional_credits": 10**400}}),
        ("reset", {"scenario": {"credits": {"default": 10**400}}}),
        ("reset", {"scenario": {"rate_limits": [{"rpm": 10**400}]}}),
        ("faults", {"effect": {"latency": {"seconds": 10**400}}}),
        ("faults", {"effect": {"http_error": {"status": 500}}, "scope": {"ttl": 10**400}}),
        ("faults", {"effect": {"http_error": {"status": 500}}, "scope": {"times": 10**400}}),
        (
            "faults",
            {"effect": {"http_error": {"status": 500}}, "scope": {"window": {"from": 1e300}}},
        ),
    ],
)
async def test_huge_integers_anywhere_are_a_400(mock: Mock, path: str, body: Any) -> None:
    before = await snapshot(mock)
    assert "error" in await control(mock, "POST", path, body, expect=400)
    assert await snapshot(mock) == before


async def test_a_refused_reset_changes_nothing(mock: Mock) -> None:
    await control(mock, "POST", "reset", {"settings": {"seed": 11, "workers": 3}})
    for provider in SUBMIT:
        await submit(mock, provider)
    await control(
        mock,
        "POST",
        "faults",
        {**RULE_429, "id": "keep", "match": {"model": "nano-banana"}},
        expect=201,
    )
    await control(mock, "POST", "credits", {"default": 50})
    await control(mock, "POST", "rate-limits", {"rpm": 100})
    await control(mock, "POST", "clock", {"advance": 2.5})
    before = await snapshot(mock)
    journal = (await control(mock, "GET", "journal"))["total"]
    rule = {**RULE_429, "id": "dup"}
    for body in (
        {"settings": {"workers": 1.5}},
        {"settings": {"workers": 2}, "scenario": {"faults": [rule, rule]}},  # duplicate ids
        {"scenario": {"settings": {"processing_jitter": 1000}}},
        {"settings": {"seed": 1, "api_keys": "secret"}},
        {"settings": {"seed": 1, "port": 1}},
        {"settings": []},
        {"scenario": {"faults": [{"effect": {}}]}},
    ):
        await control(mock, "POST", "reset", body, expect=400)
        assert await snapshot(mock) == before, body
    assert (await control(mock, "GET", "journal"))["total"] == journal


def test_scenario_settings_share_the_one_schema() -> None:
    for text in (
        "settings: {workers: 1.5}",
        "settings: {workers: 5000000}",
        "settings: {processing_jitter: 1000}",
        "settings: {api_keys: secret}",
        "settings: {queue_seconds: .nan}",
        "settings: {time_scale: .inf}",
        "settings: {max_header_bytes: 10}",
    ):
        try:
            scenario = parse_scenario(text, "s.yaml")
        except ScenarioError:
            continue
        with pytest.raises(ConfigError):  # NaN passes a JSON Schema; MockConfig refuses it
            create_app(MockConfig(), scenario=scenario)


# -- the table: every setting, every kind of bad value -----------------------------------------


def _kind(name: str) -> str:
    return next(f.type for f in dataclasses.fields(MockConfig) if f.name == name)


def _bad_json_values(name: str) -> list[Any]:
    """Values of the wrong type, negative, huge, fractional for integers (None too, unless
    the setting is optional)."""
    kind = str(_kind(name))
    if kind.removesuffix(" | None") in ("int", "float"):
        bad: list[Any] = [-1, 1e300, 10**400, "1", True, [1]]
        bad += [] if kind.endswith("None") else [None]
        return bad + ([1.5] if kind.startswith("int") else [])
    if kind == "bool":
        return ["yes", 1, None]
    if kind.startswith("Mapping"):
        return [{"x": -1}, {"x": 1e300}, {"x": 10**400}, {"x": "y"}, "x=1", [1]]
    if kind.startswith("frozenset"):
        return ["secret", [1], [""], {"a": 1}]
    return [5, [], "", "x" * 5000]  # str and str | None


def _bad_cli_values(name: str) -> list[str]:
    kind = str(_kind(name))
    if kind.removesuffix(" | None") in ("int", "float"):
        return ["nan", "inf", "-inf", "-1", "1e300", "abc", "9" * 5000] + (
            ["1.5"] if kind.startswith("int") else []
        )
    if kind == "bool":
        return []  # a switch (--flag / --no-flag): no value to get wrong
    if kind.startswith("Mapping"):
        return ["x=nan", "x=inf", "x=-1", "x=1e300", "x"]
    if kind.startswith("frozenset"):
        return ["a" * 5000]
    return ["x" * 5000]


TABLE = [
    (name, value) for name in SETTINGS_SCHEMA["properties"] for value in _bad_json_values(name)
]


@pytest.mark.parametrize(("name", "value"), TABLE, ids=[f"{n}={str(v)[:12]}" for n, v in TABLE])
def test_every_setting_refuses_bad_values_as_keyword_arguments(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=re.escape(name)):
        MockConfig(**{name: value})


async def test_every_setting_refuses_bad_values_on_reset(mock: Mock) -> None:
    before = await snapshot(mock)
    for name, value in TABLE:
        refused = await control(mock, "POST", "reset", {"settings": {name: value}}, expect=400)
        assert name in refused["error"], (name, value, refused)
        if name in SETTABLE:
            assert "cannot change" not in refused["error"], (name, value)
    for name in SETTINGS_SCHEMA["properties"]:
        for raw in ("NaN", "Infinity", "-Infinity", "1e400"):
            body = f'{{"settings": {{"{name}": {raw}}}}}'
            await control(mock, "POST", "reset", data=body, headers=JSON, expect=400)
    assert await snapshot(mock) == before


def test_every_setting_refuses_bad_values_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for f in dataclasses.fields(MockConfig):
        flag = "--" + f.name.replace("_", "-")
        for value in _bad_cli_values(f.name):
            assert cli_exit([f"{flag}={value}"], monkeypatch, capsys) == 2, (flag, value[:20])


def test_every_setting_refuses_bad_values_from_the_environment() -> None:
    from nanobanana_mock.config import config_from_env, env_name

    for f in dataclasses.fields(MockConfig):
        for value in _bad_cli_values(f.name) or ["maybe"]:
            with pytest.raises(ConfigError):
                config_from_env({env_name(f.name): value})
