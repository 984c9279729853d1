"""The provider routes and the HTTP layer.

Each test is named after a finding (a class of input that still broke the mock after the
hardening): what got a 500, a traceback or an answer outside the provider's envelope now
gets a documented answer. All over real HTTP on loopback, on the virtual clock, every wait
bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from nanobanana_mock.server import Served
from tests.harness import KEYS, Mock, releasing, serving, validate

BOUND = 10.0  # no single step of a test waits longer than this

# every operation that reads a JSON body, with a valid body of it
GENERATION = [
    ("segmind", "submit", "/v2/nano-banana", {"prompt": "x"}),
    ("segmind", "submit", "/v2/nano-banana-pro", {"prompt": "x"}),
    ("segmind", "sync_generate", "/v1/nano-banana", {"prompt": "x"}),
    ("seaart", "submit", "/model/v1/queue/nano_banana_pro", {"prompt": "x"}),
    ("seaart", "submit", "/model/v1/queue/nano_banana_2", {"prompt": "x"}),
    (
        "pixazo",
        "submit",
        "/nano-banana-pro-770/v1/nano-banana-pro-request",
        {"prompt": "x", "image_urls": ["https://a.io/b.png"]},
    ),
    (
        "pixazo",
        "result",
        "/nano-banana-pro-770/v1/nano-banana-pro-request-result",
        {"request_id": "x"},
    ),
]
LONE = "\ud800"


async def exchange(served: Served, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one answer (``Connection: close`` is expected in the request)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", served.port), BOUND
    )
    try:
        writer.write(request)
        data = b""
        while chunk := await asyncio.wait_for(reader.read(65536), BOUND):
            data += chunk
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines)
    }
    return int(status_line.split()[1]), headers, body


def surrogate_bodies(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``body`` with a lone surrogate in a field name, in each string and in a list item."""
    out = [{**body, LONE: 1}, {**body, f"x{LONE}y": "v"}]
    for name, value in body.items():
        if isinstance(value, str):
            out.append({**body, name: value + LONE})
    out.append({**body, "image_urls": [LONE]})
    out.append({**body, "image_urls": [f"https://a.io/{LONE}.png"]})
    return out


@pytest.mark.parametrize(("provider", "operation", "path", "body"), GENERATION)
async def test_lone_surrogates_in_a_body_get_a_documented_answer_not_a_500(
    mock: Mock, provider: str, operation: str, path: str, body: dict[str, Any]
) -> None:
    """jsonschema-rs cannot encode a lone surrogate (valid JSON: ``"\\ud800"``): in a field
    name or some strings it raised UnicodeEncodeError, a 500 on every Segmind submit."""
    for sent in surrogate_bodies(body):
        data = json.dumps(sent)  # ASCII escapes: the body is valid UTF-8 JSON
        call = mock.call(
            provider,
            operation,
            "POST",
            path,
            data=data,
            headers={"Content-Type": "application/json"},
        )
        async with releasing(mock, 60.0):  # the /v1 call waits for its job on the clock
            resp, answer = await asyncio.wait_for(call, BOUND)
        assert resp.status < 500, (sent, resp.status, answer)


async def test_a_fault_rule_with_a_lone_surrogate_is_explained_not_a_500(mock: Mock) -> None:
    """The control plane checks rules with the same fast validator."""
    rule = {"id": "r", "effect": {"kind": "http_error", "status": 503}, LONE: 1}
    resp = await asyncio.wait_for(
        mock.client.post(
            "/_mock/faults", data=json.dumps(rule), headers={"Content-Type": "application/json"}
        ),
        BOUND,
    )
    assert resp.status == 400, await resp.text()


async def test_a_key_header_that_is_not_utf8_is_logged_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key sent as Latin-1 bytes reached the access log's redaction as surrogate escapes,
    and ``quote`` raised: "Error in logging" with a traceback, and no access line."""
    caplog.set_level(logging.DEBUG)
    queued = [g for g in GENERATION if g[1] != "sync_generate"]  # no wait on the clock
    async with serving() as (served, _):
        for provider, _, path, body in queued:
            (name, _value), *_ = KEYS[provider].items()
            value = b"Key k\xe9\xff" if provider == "seaart" else b"k\xe9\xff"
            data = json.dumps(body).encode()
            request = (
                (
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                ).encode()
                + name.encode()
                + b": "
                + value
                + b"\r\n\r\n"
                + data
            )
            status, _, _ = await exchange(served, request)
            assert status < 500
    assert "Error in logging" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == len(queued), lines
    assert all("k\udce9" not in line and "%E9" not in line for line in lines)


CANARY = "sk-CANARY-r1-7f3a"
REFUSED_BY_THE_PARSER = [
    # a control character in the key header: aiohttp quoted the whole line
    f"POST /v2/nano-banana HTTP/1.1\r\nHost: a\r\nx-api-key: {CANARY}\x7f\r\n"
    "Content-Length: 0\r\n\r\n",
    f"GET /v2/requests/x/status HTTP/1.1\r\nHost: a\r\nx-api-key: {CANARY}\x00\r\n\r\n",
    f"GET /model/v1/queue/nano_banana_pro/requests/x/status HTTP/1.1\r\nHost: a\r\n"
    f"Authorization: Key {CANARY}\x01\r\n\r\n",
    # a key in the query with a control character: the request line was quoted
    f"GET /_mock/journal?key={CANARY}\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
    # a key header longer than the limit: its first 100 bytes were quoted
    f"POST /nano-banana-pro-770/v1/nano-banana-pro-request HTTP/1.1\r\nHost: a\r\n"
    f"Ocp-Apim-Subscription-Key: {CANARY}{'k' * 9000}\r\n\r\n",
]
# an encoding the mock does not decode: the mock reads bodies undecoded, so this reaches the
# provider, which answers its own 400 (it was aiohttp's parser, quoting the line)
UNDECODABLE = (
    f"POST /v2/nano-banana HTTP/1.1\r\nHost: a\r\nx-api-key: {CANARY}\r\n"
    "Content-Type: application/json\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}"
)


async def test_a_request_the_parser_refuses_never_shows_its_key_in_the_answer_or_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiohttp answers a request that is not valid HTTP with a 400 quoting the refused line,
    and the one-line log did the same at WARNING: a key in that line (a stray control
    character, an overlong header) was written to the log in clear. Now both name the
    reason only."""
    caplog.set_level(logging.DEBUG)
    async with serving() as (served, _):
        for request in REFUSED_BY_THE_PARSER:
            status, headers, body = await exchange(served, request.encode("latin-1"))
            assert status == 400, body
            assert headers["content-type"].startswith("text/plain"), headers  # no route yet
            reason = body.decode()
            assert reason and CANARY not in reason and "\\x" not in reason, reason
            assert CANARY.encode() not in body
        status, headers, body = await exchange(served, UNDECODABLE.encode("latin-1"))
        assert status == 400 and headers["content-type"] == "application/json", body
        assert CANARY.encode() not in body
        # the server still answers on a new connection
        ok = b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        assert (await exchange(served, ok))[0] == 200
    assert CANARY not in caplog.text
    refused = [r for r in caplog.records if "not valid HTTP" in r.getMessage()]
    assert len(refused) == len(REFUSED_BY_THE_PARSER), caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text


QUEUED = [g for g in GENERATION if g[1] == "submit"]


@pytest.mark.parametrize(("provider", "operation", "path", "body"), QUEUED)
async def test_an_image_that_is_not_there_is_a_404_in_its_jobs_provider_envelope(
    mock: Mock, provider: str, operation: str, path: str, body: dict[str, Any]
) -> None:
    """The image route answered every missing image of a known job with ``{"error"}``: for a
    SeaArt job (whose envelope is ``{"detail"}``) the self-check turned it into a 500, and
    without it the answer broke SeaArt's contract. Not ready yet, a wrong index, a wrong
    extension, before and after the job ended: each a 404 in the job's provider envelope."""
    _, answer = await mock.call(provider, operation, "POST", path, json=body, expect=200)
    job = answer["request_id"]
    names = ["0.png", "0.jpeg", "0.webp", "1.png", "9.png", "x.png", "0", "0.", ".png"]

    async def check_all() -> None:
        for name in names:
            got = await asyncio.wait_for(mock.client.get(f"/_mock/files/{job}/{name}"), BOUND)
            data = await got.read()
            if got.status == 200:
                continue  # the job's real image
            assert got.status == 404, (name, got.status, data[:200])
            validate(provider, "error", json.loads(data))

    await check_all()  # queued: no image yet
    mock.advance(3600.0 * 0.5)  # ended, still kept
    await check_all()
    assert mock.state.violations == []


# Pixazo's submit answer holds no URL to check
@pytest.mark.parametrize(
    ("provider", "operation", "path", "body"), [q for q in QUEUED if q[0] != "pixazo"]
)
async def test_a_long_or_odd_host_header_never_makes_an_answer_break_its_contract(
    mock: Mock, provider: str, operation: str, path: str, body: dict[str, Any]
) -> None:
    """Every URL an answer holds starts with the Host the client sent: a 5,000-character
    Host (within --max-header-bytes) made them longer than the contracts' 2,048, a 500
    under self-check and a broken answer without. A Host that is not a short, printable
    authority is now replaced by the address the client reached."""
    for host in ("h" * 5000, "a" * 250 + ".example:8080", "a\u00a0b", "a\tb"):
        _, answer = await mock.call(
            provider, operation, "POST", path, json=body, headers={"Host": host}, expect=200
        )
        urls = [v for v in answer.values() if isinstance(v, str) and v.startswith("http")]
        assert urls, answer
        for url in urls:
            assert len(url) <= 2048 and host not in url, url
    _, answer = await mock.call(
        provider, operation, "POST", path, json=body, headers={"Host": "mock.test:81"}
    )
    urls = [v for v in answer.values() if isinstance(v, str) and v.startswith("http")]
    assert all(url.startswith("http://mock.test:81/") for url in urls), urls  # kept


async def test_a_short_key_is_redacted_in_the_access_log_without_showing_where_it_occurs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The access log replaced every occurrence of the request's key in the path: with the
    key "a", ``/v2/n[redacted]no-b[redacted]n[redacted]n[redacted]`` spelt the key out. A
    path segment holding the key is now redacted whole."""
    caplog.set_level(logging.INFO, "aiohttp.access")
    async with serving() as (served, _):
        for key, path in (("a", "/v2/nano-banana"), ("an", "/v2/requests/banana/status")):
            data = b'{"prompt": "x"}'
            request = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"x-api-key: {key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode() + data
            await exchange(served, request)
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 2, lines
    assert '"POST /v2/[redacted] HTTP/1.1"' in lines[0], lines[0]
    assert '"POST /v2/requests/[redacted]/status HTTP/1.1"' in lines[1], lines[1]
