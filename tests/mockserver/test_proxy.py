"""The validating proxy, offline: the "live" upstream is a second mock on a loopback port.

The upstream owns the jobs, so the tests move the upstream's clock. The proxy forwards,
validates both ways, rewrites URLs to itself, records, and a third mock replays.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from nanobanana_mock import schemas
from nanobanana_mock.app import create_app
from nanobanana_mock.cli import parse_config
from nanobanana_mock.config import ConfigError, MockConfig, config_from_env
from nanobanana_mock.sources.replay import rebase, redact_key
from nanobanana_mock.state import STATE, MockState

UPSTREAM_CONFIG = {
    "seed": 3,
    "time_scale": 0.0,
    "self_check": True,
    "processing_jitter": 0.0,
    "queue_seconds": 1.0,
}
KEY = "sk-proxy-SECRET-0123456789"
AUTH = {
    "segmind": {"x-api-key": KEY},
    "seaart": {"Authorization": f"Key {KEY}"},
    "pixazo": {"Ocp-Apim-Subscription-Key": KEY},
}
SEAART = "/model/v1/queue/nano_banana_pro"
PIXAZO = "/nano-banana-pro-770/v1/nano-banana-pro-request"
PIXAZO_BODY = {"prompt": "A car", "image_urls": ["https://example.com/in.png"]}


class Running:
    """One mock on a loopback port: its base URL and state."""

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.base = str(server.make_url("")).rstrip("/")
        self.state: MockState = server.app[STATE]

    def advance(self, seconds: float) -> None:
        self.state.clock.advance(seconds)

    def add_fault(self, spec: dict[str, Any]) -> None:
        self.state.faults.add(spec, self.state.clock.now())

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        return self.state.journal.query(filters)["entries"]


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start(aiohttp_server: Any) -> Start:
    async def run(**settings: Any) -> Running:
        app = create_app(MockConfig(**{**UPSTREAM_CONFIG, **settings}))
        return Running(await aiohttp_server(app))

    return run


@pytest.fixture
async def upstream(start: Start) -> Running:
    return await start()


@pytest.fixture
async def proxy(start: Start, upstream: Running) -> Running:
    return await start(proxy={p: upstream.base for p in schemas.PROVIDERS})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, url: str, provider: str, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.request(method, url, headers=AUTH[provider], **kwargs) as resp:
        raw = await resp.read()
        body = json.loads(raw) if resp.content_type == "application/json" else raw
        return resp.status, body, resp


def findings(mock: Running, **filters: Any) -> list[dict[str, Any]]:
    return [f for entry in mock.journal(**filters) for f in entry["findings"]]


async def image(http: aiohttp.ClientSession, url: str) -> Image.Image:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        picture = Image.open(io.BytesIO(await resp.read()))
        assert Image.MIME[picture.format] == resp.content_type
        return picture


# -- real jobs through the proxy ---------------------------------------------------------------


async def test_seaart_job_through_the_proxy(
    proxy: Running, upstream: Running, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(
        http, "POST", proxy.base + SEAART, "seaart", json={"prompt": "A red apple"}
    )
    assert status == 200, body
    for name in ("status_url", "response_url", "cancel_url"):
        assert body[name].startswith(proxy.base + SEAART + "/requests/"), body[name]
    status, polled, _ = await call(http, "GET", body["status_url"], "seaart")
    assert (status, polled["status"]) == (200, "IN_QUEUE")
    status, _, _ = await call(http, "GET", body["response_url"], "seaart")
    assert status == 202
    upstream.advance(200)
    status, polled, _ = await call(http, "GET", body["status_url"], "seaart")
    assert (status, polled["status"]) == (200, "COMPLETED")
    status, result, _ = await call(http, "GET", body["response_url"], "seaart")
    assert status == 200, result
    url = _first_url(result)
    assert url.startswith(proxy.base + "/_mock/files/")
    assert (await image(http, url)).size[0] > 0
    entries = proxy.journal()
    assert [e["operation"] for e in entries] == [
        "submit",
        "status",
        "result",
        "status",
        "result",
        "image",
    ]
    assert all(e["findings"] == [] for e in entries), entries
    assert entries[0]["request_id"] == body["request_id"]
    assert entries[0]["validation"] == "ok"
    assert [e["operation"] for e in upstream.journal()] == [e["operation"] for e in entries]
    assert upstream.journal()[0]["key"] == entries[0]["key"]  # the client's own key went on


async def test_segmind_job_through_the_proxy(
    proxy: Running, upstream: Running, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(
        http, "POST", proxy.base + "/v2/nano-banana", "segmind", json={"prompt": "Banana"}
    )
    assert status == 200, body
    for name in ("status_url", "response_url", "poll_url"):
        assert body[name].startswith(proxy.base + "/v"), body[name]
    upstream.advance(100)
    status, polled, _ = await call(http, "GET", body["status_url"], "segmind")
    assert polled["status"] == "COMPLETED"
    status, polled, _ = await call(http, "GET", body["poll_url"], "segmind")
    assert polled["status"] == "COMPLETED"
    status, result, _ = await call(http, "GET", body["response_url"], "segmind")
    assert status == 200 and result["output"].startswith(proxy.base + "/_mock/files/")
    await image(http, result["output"])
    assert findings(proxy) == []
    report = await (await http.get(proxy.base + "/_mock/drift")).json()
    assert report["target"] == "proxy" and report["findings"] == []
    assert report["summary"]["segmind"]["checks"] == 4  # the image has no contract to check


async def test_pixazo_job_through_the_proxy(
    proxy: Running, upstream: Running, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(http, "POST", proxy.base + PIXAZO, "pixazo", json=PIXAZO_BODY)
    assert status == 200, body
    ask = {"request_id": body["request_id"]}
    for wanted in ("IN_QUEUE", "COMPLETED"):
        status, result, _ = await call(
            http, "POST", proxy.base + PIXAZO + "-result", "pixazo", json=ask
        )
        assert result["status"] == wanted
        upstream.advance(200)
    url = _first_url(result)
    assert url.startswith(proxy.base + "/_mock/files/")
    await image(http, url)
    assert findings(proxy) == []
    assert [e["request_id"] for e in proxy.journal()][:3] == [body["request_id"]] * 3


def _first_url(value: Any) -> str:
    """The first string in a body that looks like a URL."""
    if isinstance(value, str) and value.startswith("http"):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for item in items:
        found = _first_url(item)
        if found:
            return found
    return ""


# -- findings ------------------------------------------------------------------------------


async def test_drift_in_the_upstream_is_found(
    proxy: Running, upstream: Running, http: aiohttp.ClientSession
) -> None:
    rename = {"rename": {"from": "/request_id", "to": "/requestId"}}
    upstream.add_fault({"match": {"operation": "submit"}, "effect": {"drift": rename}})
    eta = {"add": {"path": "/eta", "value": 5}}
    upstream.add_fault({"match": {"operation": "status"}, "effect": {"drift": eta}})
    _, body, _ = await call(http, "POST", proxy.base + SEAART, "seaart", json={"prompt": "x"})
    assert "requestId" in body and "request_id" not in body
    await call(http, "GET", body["status_url"], "seaart")
    submit = {(f["pointer"], f["severity"]) for f in findings(proxy, operation="submit")}
    assert submit == {("/request_id", "breaking"), ("/requestId", "additive")}
    status = findings(proxy, operation="status")
    assert [(f["pointer"], f["severity"], f["check"]) for f in status] == [
        ("/eta", "additive", "schema")
    ]
    report = await (await http.get(proxy.base + "/_mock/drift")).json()
    assert {(f["operation"], f["pointer"], f["severity"]) for f in report["findings"]} == {
        ("submit", "/request_id", "breaking"),
        ("submit", "/requestId", "additive"),
        ("status", "/eta", "additive"),
    }
    assert report["breaking"] == 1 and report["summary"]["seaart"]["checks"] == 2
    async with http.get(proxy.base + "/_mock/drift", params={"format": "markdown"}) as resp:
        assert "`/eta`" in await resp.text() and resp.content_type == "text/markdown"
    async with http.get(proxy.base + "/_mock/drift", params={"format": "html"}) as resp:
        assert "<code>/requestId</code>" in await resp.text()
    async with http.get(proxy.base + "/_mock/drift", params={"format": "pdf"}) as resp:
        assert resp.status == 400


async def test_a_status_that_goes_back_is_a_transition_finding(
    proxy: Running, upstream: Running, http: aiohttp.ClientSession
) -> None:
    _, body, _ = await call(http, "POST", proxy.base + SEAART, "seaart", json={"prompt": "x"})
    upstream.advance(200)
    await call(http, "GET", body["status_url"], "seaart")
    back = {"replace": {"path": "/status", "value": "IN_QUEUE"}}
    upstream.add_fault({"match": {"operation": "status"}, "effect": {"drift": back}})
    await call(http, "GET", body["status_url"], "seaart")
    found = [f for f in findings(proxy) if f["check"] == "transition"]
    assert [(f["pointer"], f["severity"], f["observed"]) for f in found] == [
        ("/1", "breaking", "IN_QUEUE")  # the submit answer carries no status
    ]
    assert "to stay terminal" in found[0]["expected"]


async def test_a_status_outside_the_lifecycle_is_breaking(
    proxy: Running, upstream: Running, http: aiohttp.ClientSession
) -> None:
    """A provider that starts answering RUNNING breaks every client that switches on the
    documented statuses: breaking, in the schema check and in the lifecycle check."""
    _, body, _ = await call(http, "POST", proxy.base + SEAART, "seaart", json={"prompt": "x"})
    running = {"replace": {"path": "/status", "value": "RUNNING"}}
    upstream.add_fault({"match": {"operation": "status"}, "effect": {"drift": running}})
    await call(http, "GET", body["status_url"], "seaart")
    found = {(f["check"], f["pointer"], f["severity"]) for f in findings(proxy, operation="status")}
    assert found == {("schema", "/status", "breaking"), ("transition", "/0", "breaking")}
    async with http.get(proxy.base + "/_mock/drift") as resp:
        assert (await resp.json())["breaking"] == 2


async def test_an_invalid_request_is_a_finding_and_still_forwarded(
    proxy: Running, upstream: Running, http: aiohttp.ClientSession
) -> None:
    body = {"aspect_ratio": "1:1"}
    status, answer, _ = await call(http, "POST", proxy.base + SEAART, "seaart", json=body)
    assert status == 422 and "detail" in answer  # the upstream's own answer
    assert [e["operation"] for e in upstream.journal()] == ["submit"]
    (entry,) = proxy.journal()
    assert entry["validation"] == "invalid" and entry["problems"]
    assert [(f["check"], f["pointer"], f["severity"]) for f in entry["findings"]] == [
        ("request", "/prompt", "breaking")
    ]


async def test_a_body_that_is_not_json_is_a_request_finding(
    proxy: Running, http: aiohttp.ClientSession
) -> None:
    headers = {**AUTH["segmind"], "Content-Type": "application/json"}
    async with http.post(proxy.base + "/v2/nano-banana", data=b"{oops", headers=headers) as resp:
        assert resp.status == 400
    (entry,) = proxy.journal()
    assert [(f["check"], f["expected"]) for f in entry["findings"]] == [("request", "a JSON body")]


async def test_fault_rules_apply_before_forwarding(
    proxy: Running, upstream: Running, http: aiohttp.ClientSession
) -> None:
    proxy.add_fault(
        {
            "match": {"provider": "seaart", "operation": "submit"},
            "effect": {"http_error": {"status": 503}},
        }
    )
    status, _, resp = await call(http, "POST", proxy.base + SEAART, "seaart", json={"prompt": "x"})
    assert status == 503 and resp.headers["Retry-After"]
    assert upstream.journal() == []
    status, _, _ = await call(
        http, "POST", proxy.base + "/v2/nano-banana", "segmind", json={"prompt": "x"}
    )
    assert status == 200 and len(upstream.journal()) == 1


async def test_only_the_named_providers_are_proxied(
    start: Start, upstream: Running, http: aiohttp.ClientSession
) -> None:
    proxy = await start(proxy={"segmind": upstream.base})
    status, _, _ = await call(http, "POST", proxy.base + SEAART, "seaart", json={"prompt": "x"})
    assert status == 200 and upstream.journal() == [] and len(proxy.state.store) == 1


# -- failures of the upstream ------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("provider", "method", "path"),
    [
        ("segmind", "POST", "/v2/nano-banana"),
        ("seaart", "POST", SEAART),
        ("pixazo", "POST", PIXAZO),
        ("seaart", "GET", SEAART + "/requests/mmsu_x/status"),
    ],
)
async def test_an_unreachable_upstream_is_a_502_in_the_provider_envelope(
    start: Start, http: aiohttp.ClientSession, provider: str, method: str, path: str
) -> None:
    proxy = await start(proxy={provider: f"http://127.0.0.1:{_closed_port()}"})
    status, body, _ = await call(http, method, proxy.base + path, provider, json={"prompt": "x"})
    assert status == 502
    schemas.validator(provider, "error").validate(body)
    assert "upstream" in json.dumps(body)
    (entry,) = proxy.journal()
    assert entry["status"] == 502 and entry["provider"] == provider


async def test_an_answer_over_the_limit_is_a_502(
    start: Start, upstream: Running, http: aiohttp.ClientSession
) -> None:
    proxy = await start(proxy={"seaart": upstream.base}, proxy_max_response_bytes=64)
    status, body, _ = await call(http, "POST", proxy.base + SEAART, "seaart", json={"prompt": "x"})
    assert status == 502 and "exceeds 64 bytes" in body["detail"]


# -- recording and replay ----------------------------------------------------------------------


async def _seaart_job(
    mock: Running, http: aiohttp.ClientSession, advance: Callable[[], None]
) -> list[tuple[int, Any]]:
    """Submit, poll twice around a clock move, fetch the result and the image."""
    seen = []
    prompt = {"prompt": f"a sign that reads {KEY}"}
    status, body, _ = await call(http, "POST", mock.base + SEAART, "seaart", json=prompt)
    seen.append((status, body))
    for _ in range(2):
        status, polled, _ = await call(http, "GET", body["status_url"], "seaart")
        seen.append((status, polled))
        advance()
    status, polled, _ = await call(http, "GET", body["status_url"], "seaart")
    seen.append((status, polled))
    status, result, _ = await call(http, "GET", body["response_url"], "seaart")
    seen.append((status, result))
    async with http.get(_first_url(result)) as resp:
        seen.append((resp.status, await resp.read()))
    return seen


async def test_recording_never_holds_the_key_and_replays_the_same_sequence(
    start: Start, upstream: Running, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    proxy = await start(proxy={"seaart": upstream.base}, record_dir=str(tmp_path))
    recorded = await _seaart_job(proxy, http, lambda: upstream.advance(100))
    text = (tmp_path / "seaart.jsonl").read_text(encoding="utf-8")
    assert KEY not in text and "[redacted]" in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["operation"] for line in lines] == [
        "submit",
        "status",
        "status",
        "status",
        "result",
        "image",
    ]
    assert all("request_headers" not in line for line in lines)
    assert lines[0]["request_body"] == {"prompt": "a sign that reads [redacted]"}
    assert lines[-1]["encoding"] == "base64" and lines[0]["encoding"] == "json"
    assert lines[0]["upstream"] == upstream.base
    assert set(lines[0]["response_headers"]) == {"content-type"}
    await upstream.server.close()

    replay = await start(replay_dir=str(tmp_path))
    replayed = await _seaart_job(replay, http, lambda: None)
    assert [status for status, _ in replayed] == [status for status, _ in recorded]
    assert replayed[-1][1] == recorded[-1][1]  # the same image bytes
    statuses = [body["status"] for _, body in replayed[1:4]]
    assert statuses == [body["status"] for _, body in recorded[1:4]]
    assert statuses[-1] == "COMPLETED"  # the last recording repeats once exhausted
    assert replayed[0][1]["status_url"].startswith(replay.base + "/")
    assert [e["operation"] for e in replay.journal()][-1] == "image"
    assert len(replay.state.store) == 0  # nothing simulated


async def test_replay_without_a_match_is_the_provider_404(
    start: Start, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    (tmp_path / "segmind.jsonl").write_text("", encoding="utf-8")
    replay = await start(replay_dir=str(tmp_path))
    status, body, _ = await call(
        http, "POST", replay.base + "/v2/nano-banana", "segmind", json={"prompt": "x"}
    )
    assert status == 404 and "no recorded exchange matches" in body["error"]
    status, _, _ = await call(http, "POST", replay.base + SEAART, "seaart", json={"prompt": "x"})
    assert status == 200  # no seaart.jsonl: simulated as usual


async def test_replay_applies_fault_rules_and_restarts_on_reset(
    start: Start, upstream: Running, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    proxy = await start(proxy={"pixazo": upstream.base}, record_dir=str(tmp_path))
    _, submitted, _ = await call(http, "POST", proxy.base + PIXAZO, "pixazo", json=PIXAZO_BODY)
    body = {"request_id": submitted["request_id"]}
    for _ in range(2):
        await call(http, "POST", proxy.base + PIXAZO + "-result", "pixazo", json=body)
        upstream.advance(200)
    replay = await start(replay_dir=str(tmp_path))

    async def results() -> list[str]:
        await call(http, "POST", replay.base + PIXAZO, "pixazo", json=PIXAZO_BODY)
        out = []
        for _ in range(3):
            _, got, _ = await call(
                http, "POST", replay.base + PIXAZO + "-result", "pixazo", json=body
            )
            out.append(got["status"])
        return out

    assert await results() == ["IN_QUEUE", "COMPLETED", "COMPLETED"]
    async with http.post(replay.base + "/_mock/reset", json={}) as resp:
        assert resp.status == 200
    assert await results() == ["IN_QUEUE", "COMPLETED", "COMPLETED"]
    replay.add_fault({"match": {"operation": "submit"}, "effect": {"http_error": {"status": 429}}})
    status, _, _ = await call(http, "POST", replay.base + PIXAZO, "pixazo", json=PIXAZO_BODY)
    assert status == 429


async def test_a_bad_recording_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "seaart.jsonl").write_text('{"provider": "seaart"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"seaart.jsonl:1"):
        create_app(MockConfig(replay_dir=str(tmp_path)))


async def test_the_drift_report_is_written_on_shutdown(
    start: Start, upstream: Running, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    eta = {"add": {"path": "/eta", "value": 5}}
    upstream.add_fault({"match": {"operation": "submit"}, "effect": {"drift": eta}})
    proxy = await start(proxy={"segmind": upstream.base}, record_dir=str(tmp_path))
    await call(http, "POST", proxy.base + "/v2/nano-banana", "segmind", json={"prompt": "x"})
    assert not (tmp_path / "drift.json").exists()
    await proxy.server.close()
    report = json.loads((tmp_path / "drift.json").read_text(encoding="utf-8"))
    assert [(f["pointer"], f["severity"]) for f in report["findings"]] == [("/eta", "additive")]
    assert "/eta" in (tmp_path / "drift.md").read_text(encoding="utf-8")
    assert "/eta" in (tmp_path / "drift.html").read_text(encoding="utf-8")


# -- settings and helpers ----------------------------------------------------------------------


def test_proxy_settings_from_the_environment() -> None:
    config = config_from_env(
        {
            "MOCK_PROXY": "segmind=https://api.segmind.com, seaart=https://cloud.seaart.ai",
            "MOCK_RECORD_DIR": "rec",
            "MOCK_PROXY_TIMEOUT": "5",
        }
    )
    assert dict(config.proxy) == {
        "segmind": "https://api.segmind.com",
        "seaart": "https://cloud.seaart.ai",
    }
    assert (config.record_dir, config.replay_dir, config.proxy_timeout) == ("rec", None, 5.0)


@pytest.mark.parametrize(
    ("proxy", "message"),
    [
        ({"segmind": "ftp://x"}, "origin only"),
        ({"segmind": "https://api.segmind.com/v2"}, "origin only"),
        ({"segmind": "http://host:99999"}, "origin only"),
        ({"midjourney": "https://x.example"}, "unknown key 'midjourney'; allowed: segmind"),
    ],
)
def test_bad_proxy_settings_are_refused(proxy: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_app(MockConfig(proxy=proxy))


def test_a_malformed_proxy_flag_is_refused() -> None:
    with pytest.raises(ConfigError, match="PROVIDER=URL"):
        config_from_env({"MOCK_PROXY": "segmind"})


async def test_no_drift_report_without_the_proxy(
    upstream: Running, http: aiohttp.ClientSession
) -> None:
    async with http.get(upstream.base + "/_mock/drift") as resp:
        assert resp.status == 404


def test_rebase_only_touches_urls_under_the_origin() -> None:
    body = {
        "a": "http://up:1/x?y=1",
        "b": ["http://up:1", "http://up:10/x", "http://up:1.evil/x"],
        "c": 5,
    }
    assert rebase(body, "http://up:1", "http://me:2") == {
        "a": "http://me:2/x?y=1",
        "b": ["http://me:2", "http://up:10/x", "http://up:1.evil/x"],
        "c": 5,
    }


def test_redact_key_finds_the_key_anywhere() -> None:
    body = {"k-x/y": ["a k-x/y b", "k-x%2Fy", 1]}
    assert redact_key(body, "k-x/y") == {"[redacted]": ["a [redacted] b", "[redacted]", 1]}


def test_proxy_flags_on_the_command_line(tmp_path: Path) -> None:
    config, _ = parse_config(
        ["--proxy", "pixazo=http://127.0.0.1:9", "--replay-dir", str(tmp_path)]
    )
    assert dict(config.proxy) == {"pixazo": "http://127.0.0.1:9"}
    assert config.replay_dir == str(tmp_path)


async def test_a_pixazo_transition_finding_names_the_result_route(
    proxy: Running, upstream: Running, http: aiohttp.ClientSession
) -> None:
    """Pixazo's statuses are read from its result route: the finding says so."""
    _, body, _ = await call(http, "POST", proxy.base + PIXAZO, "pixazo", json=PIXAZO_BODY)
    running = {"replace": {"path": "/status", "value": "RUNNING"}}
    upstream.add_fault({"match": {"operation": "result"}, "effect": {"drift": running}})
    ask = {"request_id": body["request_id"]}
    await call(http, "POST", proxy.base + PIXAZO + "-result", "pixazo", json=ask)
    (transition,) = [f for f in findings(proxy) if f["check"] == "transition"]
    assert (transition["operation"], transition["severity"]) == ("result", "breaking")
