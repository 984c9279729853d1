"""Slow and broken clients. Each test is named after its finding.

Every server here is started by ``mockserver.server.serve_app`` (the one start path of the
CLI and the pytest plugin) on a loopback port, and spoken to with raw asyncio sockets, so
half-sent headers, slow bodies and odd framing reach it exactly as sent. Deadlines are
small in these settings; every wait is bounded; jobs wait on the frozen virtual clock.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import logging
import time
from typing import Any

import pytest

from nanobanana_mock.config import ConfigError, MockConfig
from nanobanana_mock.server import Served, connection_cap, raise_file_limit
from tests.harness import KEYS, schema_for, serving, validate

BOUND = 10.0  # no single step of a test waits longer than this
SUBMIT = {
    "segmind": "/v2/nano-banana",
    "seaart": "/model/v1/queue/nano_banana_2",
    "pixazo": "/nano-banana-pro-770/v1/nano-banana-pro-request",
}
VALID = {
    "segmind": {"prompt": "x"},
    "seaart": {"prompt": "x"},
    "pixazo": {"prompt": "x", "image_urls": ["https://example.com/a.png"]},
}


def head(provider: str, path: str, extra: str = "", method: str = "POST") -> bytes:
    (name, value), *_ = KEYS[provider].items()
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{name}: {value}\r\n"
        f"Content-Type: application/json\r\n{extra}"
    ).encode()


async def connect(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", served.port), BOUND)


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response off the socket (status, lower-cased headers, body)."""
    status_line = await asyncio.wait_for(reader.readline(), BOUND)
    assert status_line, "the connection closed without an answer"
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await asyncio.wait_for(reader.readline(), BOUND)) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), BOUND)
    return status, headers, body


async def closed(reader: asyncio.StreamReader) -> bytes:
    """Everything left until the server closes the connection (bounded)."""
    data = b""
    while chunk := await asyncio.wait_for(reader.read(65536), BOUND):
        data += chunk
    return data


def documented(provider: str, operation: str, status: int, body: bytes) -> Any:
    """A documented 4xx in the provider's envelope."""
    assert 400 <= status < 500, (status, body[:300])
    data = json.loads(body)
    validate(provider, schema_for(provider, operation, status), data)
    return data


def chunked(data: bytes, size: int = 16384) -> bytes:
    out = b""
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


# -- deadlines and the connection cap -------------------------------------------------------


async def test_half_sent_headers_are_closed_after_the_header_deadline() -> None:
    async with serving(header_timeout=0.5) as (served, _):
        reader, writer = await connect(served)
        started = time.monotonic()
        writer.write(b"POST /v2/nano-banana HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        status, headers, body = await response(reader)
        assert status == 408 and headers["connection"] == "close"
        assert "headers" in json.loads(body)["error"]
        assert await closed(reader) == b""
        assert 0.4 <= time.monotonic() - started < BOUND
        assert served.guard.header_timeouts == 1
        writer.close()


async def test_headers_dribbled_byte_by_byte_still_meet_the_deadline_from_the_first_byte() -> None:
    async with serving(header_timeout=0.6) as (served, _):
        reader, writer = await connect(served)
        started = time.monotonic()
        with pytest.raises((ConnectionError, AssertionError)):
            for byte in b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)
                if reader.at_eof() or time.monotonic() - started > BOUND:
                    raise AssertionError("closed")
        assert time.monotonic() - started < 0.6 + 5.0  # closed soon after its deadline
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed_silently() -> None:
    async with serving(header_timeout=0.5) as (served, _):
        reader, writer = await connect(served)
        started = time.monotonic()
        assert await closed(reader) == b""  # no 408 for a request that never began
        assert 0.4 <= time.monotonic() - started < BOUND
        writer.close()


async def test_idle_keepalive_connection_is_closed() -> None:
    async with serving(keepalive_timeout=0.5, header_timeout=30) as (served, _):
        reader, writer = await connect(served)
        writer.write(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, _ = await response(reader)
        assert status == 200
        started = time.monotonic()
        assert await closed(reader) == b""
        assert 0.4 <= time.monotonic() - started < BOUND
        writer.close()


@pytest.mark.parametrize("provider", list(SUBMIT))
async def test_slow_body_gets_a_clean_answer_and_the_connection_closes(provider: str) -> None:
    async with serving(body_timeout=0.5) as (served, _):
        reader, writer = await connect(served)
        writer.write(head(provider, SUBMIT[provider], "Content-Length: 100\r\n\r\n") + b'{"pro')
        started = time.monotonic()
        status, headers, body = await response(reader)
        assert status == 400 and headers["connection"] == "close"
        assert "within 0.5 s" in json.dumps(documented(provider, "submit", status, body))
        assert await closed(reader) == b""
        assert 0.4 <= time.monotonic() - started < BOUND
        assert served.guard.body_timeouts == 1
        writer.close()


async def test_connection_cap_refuses_cleanly_and_lets_a_client_in_once_others_are_gone() -> None:
    await _cap_scenario()


def test_connection_cap_and_header_deadline_under_uvloop() -> None:
    """The command line serves on uvloop, whose transports are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(_cap_scenario())
    uvloop.run(test_half_sent_headers_are_closed_after_the_header_deadline())


async def _cap_scenario() -> None:
    async with serving(max_connections=3, header_timeout=60) as (served, _):
        idle = [await connect(served) for _ in range(3)]
        for _ in range(500):  # bounded: the server has seen all three
            if len(served.guard.connections) == 3:
                break
            await asyncio.sleep(0.02)
        assert len(served.guard.connections) == 3
        reader, writer = await connect(served)
        writer.write(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, body = await response(reader)
        assert status == 503 and headers["retry-after"] == "1"
        assert (
            headers["connection"] == "close" and "too many connections" in json.loads(body)["error"]
        )
        assert await closed(reader) == b""
        writer.close()
        for _, idle_writer in idle:
            idle_writer.close()
        for _ in range(250):
            if not served.guard.connections:
                break
            await asyncio.sleep(0.02)
        reader, writer = await connect(served)
        writer.write(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await response(reader))[0] == 200
        writer.close()


async def test_many_half_sent_requests_do_not_lock_out_a_legitimate_client() -> None:
    """The finding: 1,050 idle half-requests under a 1,024-file limit locked every client
    out. Scaled down: 80 of them against a cap of 40; a client retrying on the 503 gets
    its answer once the header deadline has closed them."""
    async with serving(max_connections=40, header_timeout=1.0) as (served, _):
        slow = []
        for _ in range(80):
            reader, writer = await connect(served)
            writer.write(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append((reader, writer))
        started = time.monotonic()
        statuses = []
        while time.monotonic() - started < BOUND:
            reader, writer = await connect(served)
            writer.write(b"GET /_mock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                status = (await response(reader))[0]
            except (ConnectionError, AssertionError):
                status = 0
            writer.close()
            statuses.append(status)
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert statuses[-1] == 200 and set(statuses) <= {0, 503, 200}, statuses
        assert served.guard.refused >= 40
        for reader, writer in slow:  # each was refused (503) or timed out (408), and closed
            answer = await closed(reader)
            assert answer.startswith((b"HTTP/1.1 503 ", b"HTTP/1.1 408 ")), answer[:100]
            writer.close()


def test_the_soft_file_limit_is_raised_and_the_cap_fits_under_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resource = pytest.importorskip("resource")
    limit = raise_file_limit()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limit == soft and (soft == hard or hard == resource.RLIM_INFINITY)
    with caplog.at_level(logging.WARNING, "mockserver"):
        assert connection_cap(MockConfig(max_connections=512), 200) == 136
    assert "lowered to 136" in caplog.text
    assert connection_cap(MockConfig(max_connections=512), 100_000) == 512


@pytest.mark.parametrize(
    "settings",
    [
        {"header_timeout": 0},
        {"body_timeout": -1},
        {"keepalive_timeout": float("nan")},
        {"header_timeout": float("inf")},
        {"body_timeout": 1e9},
        {"max_connections": 0},
        {"max_connections": 10**7},
    ],
)
def test_client_deadlines_and_the_cap_are_checked(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        MockConfig(**settings)


# -- the body, read once after the header checks ---------------------------------------------


async def test_chunked_body_over_the_limit_is_413_not_a_job_built_from_its_tail() -> None:
    async with serving() as (served, state):
        tail = b'{"prompt": "the tail [mock:none]"}'
        data = b" " * (270 * 1024 - len(tail)) + tail
        reader, writer = await connect(served)
        writer.write(head("segmind", SUBMIT["segmind"], "Transfer-Encoding: chunked\r\n\r\n"))
        writer.write(chunked(data))
        status, headers, body = await response(reader)
        documented("segmind", "submit", status, body)
        assert status == 413 and headers["connection"] == "close"
        assert len(state.store) == 0
        writer.close()


@pytest.mark.parametrize("provider", list(SUBMIT))
async def test_content_length_of_a_terabyte_gets_its_413_without_the_body(provider: str) -> None:
    async with serving() as (served, _):
        reader, writer = await connect(served)
        writer.write(head(provider, SUBMIT[provider], f"Content-Length: {10**12}\r\n\r\n"))
        writer.write(b'{"prompt":"x"}')
        status, headers, body = await response(reader)
        assert status == 413 and headers["connection"] == "close"
        documented(provider, "submit", status, body)
        writer.close()


@pytest.mark.parametrize("provider", list(SUBMIT))
async def test_expect_100_continue_with_a_huge_length_gets_413_and_no_continue(
    provider: str,
) -> None:
    async with serving() as (served, _):
        reader, writer = await connect(served)
        extra = f"Content-Length: {100 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n"
        writer.write(head(provider, SUBMIT[provider], extra))
        status, headers, body = await response(reader)  # the first answer is final
        assert status == 413 and headers["connection"] == "close"
        documented(provider, "submit", status, body)
        writer.close()


async def test_expect_100_continue_within_the_limit_is_told_to_send_the_body() -> None:
    async with serving() as (served, state):
        data = json.dumps(VALID["segmind"]).encode()
        reader, writer = await connect(served)
        extra = f"Content-Length: {len(data)}\r\nExpect: 100-continue\r\n\r\n"
        writer.write(head("segmind", SUBMIT["segmind"], extra))
        assert await asyncio.wait_for(reader.readline(), BOUND) == b"HTTP/1.1 100 Continue\r\n"
        assert await asyncio.wait_for(reader.readline(), BOUND) == b"\r\n"
        writer.write(data)
        assert (await response(reader))[0] == 200 and len(state.store) == 1
        writer.close()


@pytest.mark.parametrize("provider", list(SUBMIT))
async def test_odd_expect_is_answered_in_the_provider_envelope(provider: str) -> None:
    async with serving() as (served, state):
        data = json.dumps(VALID[provider]).encode()
        reader, writer = await connect(served)
        extra = f"Content-Length: {len(data)}\r\nExpect: teapot\r\n\r\n"
        writer.write(head(provider, SUBMIT[provider], extra) + data)
        status, _, body = await response(reader)
        assert status == 400 and "teapot" in json.dumps(documented(provider, "submit", 400, body))
        assert len(state.store) == 0
        writer.close()


async def test_odd_expect_elsewhere_is_never_a_text_plain_417() -> None:
    async with serving() as (served, _):
        # a GET of a provider has no body to expect anything of: served as usual
        reader, writer = await connect(served)
        path = "/v2/requests/nope/status"
        writer.write(head("segmind", path, "Expect: teapot\r\n\r\n", method="GET"))
        status, _, body = await response(reader)
        documented("segmind", "status", status, body)
        assert status == 404
        # the control plane and the mock's own routes: a JSON 417
        for path in ("/_mock/health", "/_mock/clock", "/", "/nowhere"):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: x\r\n\r\n".encode())
            status, headers, body = await response(reader)
            assert status == 417 and headers["content-type"].startswith("application/json")
            assert "100-continue" in json.loads(body)["error"]
        writer.close()


def _gzip_bomb() -> bytes:
    return gzip.compress(b'{"prompt": "' + b"a" * (8 * 1024 * 1024) + b'"}')


ENCODED_BODIES = {
    "gzip_that_is_not_gzip": ("Content-Encoding: gzip\r\n", b'{"prompt": "x"}', {400, 422}),
    "deflate_that_is_not_deflate": ("Content-Encoding: deflate\r\n", b"\xff" * 20, {400, 422}),
    "gzip_bomb": ("Content-Encoding: gzip\r\n", _gzip_bomb(), {413}),
    "truncated_gzip": ("Content-Encoding: gzip\r\n", gzip.compress(b'{"a": 1}' * 50)[:30], None),
    "identity": ("Content-Encoding: identity\r\n", b'{"prompt": "x"}', {200}),
    "unknown_encoding": ("Content-Encoding: rot13\r\n", b'{"prompt": "x"}', {200}),
    "brotli": ("Content-Encoding: br\r\n", b'{"prompt": "x"}', None),
    "zstd": ("Content-Encoding: zstd\r\n", b'{"prompt": "x"}', None),
}


@pytest.mark.parametrize("provider", list(SUBMIT))
@pytest.mark.parametrize("case", list(ENCODED_BODIES))
async def test_every_body_encoding_gets_a_clean_answer(
    provider: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The finding: a body claiming gzip that is not gzip was a 500. Its class: every
    encoding a body can claim is a provider-shaped answer (or aiohttp's 400 before routing
    for an encoding it cannot decode at all), never a 500 or a traceback."""
    extra, data, expected = ENCODED_BODIES[case]
    if case in ("identity", "unknown_encoding") and provider == "pixazo":
        data = json.dumps(VALID["pixazo"]).encode()
    async with serving() as (served, _):
        reader, writer = await connect(served)
        writer.write(
            head(provider, SUBMIT[provider], f"{extra}Content-Length: {len(data)}\r\n\r\n")
        )
        writer.write(data)
        status, headers, body = await response(reader)
        assert status < 500, (status, body[:300])
        if expected is not None:
            assert status in expected, (status, body[:300])
        if status >= 400 and headers.get("content-type", "").startswith("application/json"):
            documented(provider, "submit", status, body)
        writer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


FRAMINGS = {
    "chunked_with_trailers": (
        "Transfer-Encoding: chunked\r\n\r\n",
        b'f\r\n{"prompt": "x"}\r\n0\r\nX-Trailer: 1\r\n\r\n',
        {200},
    ),
    "chunk_size_overflow": (
        "Transfer-Encoding: chunked\r\n\r\n",
        b"ffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
        {400},
    ),
    "bad_chunk_size": ("Transfer-Encoding: chunked\r\n\r\n", b"zz\r\n{}\r\n0\r\n\r\n", {400}),
    "length_and_chunked": (
        "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"2\r\n{}\r\n0\r\n\r\n",
        {400},
    ),
    "two_lengths": ("Content-Length: 2\r\nContent-Length: 3\r\n\r\n", b"{}", {400}),
    "negative_length": ("Content-Length: -1\r\n\r\n", b"{}", {400}),
}


@pytest.mark.parametrize("case", list(FRAMINGS))
async def test_every_body_framing_gets_a_clean_answer(case: str) -> None:
    extra, data, expected = FRAMINGS[case]
    async with serving() as (served, _):
        reader, writer = await connect(served)
        writer.write(head("segmind", SUBMIT["segmind"], extra) + data)
        status, headers, body = await response(reader)
        assert status in expected, (status, body[:300])
        if headers.get("content-type", "").startswith("application/json") and status >= 400:
            documented("segmind", "submit", status, body)
        writer.close()


async def test_body_is_read_once_when_rules_and_markers_look_at_it() -> None:
    """Rules, a prompt marker and the handler all see the same, whole body."""
    async with serving() as (served, state):
        rule = json.dumps(
            {"match": {"prompt_contains": "zzz"}, "effect": {"http_error": {"status": 503}}}
        )
        reader, writer = await connect(served)
        writer.write(
            f"POST /_mock/faults HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(rule)}\r\n\r\n{rule}".encode()
        )
        assert (await response(reader))[0] == 201
        data = json.dumps({"prompt": "a [mock:delay=0] b", "pad": "p" * 100_000}).encode()
        writer.write(head("segmind", SUBMIT["segmind"], "Transfer-Encoding: chunked\r\n\r\n"))
        writer.write(chunked(data, 1000))
        status, _, body = await response(reader)
        assert status == 200, body[:300]
        assert len(state.store) == 1  # a part of the body would not have parsed
        writer.close()


# -- reset and sleepers -----------------------------------------------------------------------


async def _post(
    served: Served, path: str, data: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await connect(served)
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{lines}Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    try:
        return await response(reader)
    finally:
        writer.close()


async def test_segmind_v1_call_in_flight_during_reset_answers_503() -> None:
    async with serving() as (served, state):
        clock = state.clock
        call = asyncio.ensure_future(
            _post(served, "/v1/nano-banana", b'{"prompt": "x"}', KEYS["segmind"])
        )
        await asyncio.wait_for(clock.wait_for_sleepers(1), BOUND)
        assert (await _post(served, "/_mock/reset", b"{}", {}))[0] == 200
        status, headers, body = await asyncio.wait_for(call, BOUND)
        assert status == 503 and int(headers["retry-after"]) >= 1
        assert "reset" in documented_5xx("segmind", "sync_generate", status, body)["error"]
        assert clock.sleepers == 0


def documented_5xx(provider: str, operation: str, status: int, body: bytes) -> Any:
    data = json.loads(body)
    validate(provider, schema_for(provider, operation, status), data)
    return data


@pytest.mark.parametrize("provider", list(SUBMIT))
async def test_latency_fault_sleeper_in_flight_during_reset_answers_503(provider: str) -> None:
    async with serving() as (served, state):
        rule = {"match": {"operation": "submit"}, "effect": {"latency": {"fixed": 3600}}}
        assert (await _post(served, "/_mock/faults", json.dumps(rule).encode(), {}))[0] == 201
        clock = state.clock
        call = asyncio.ensure_future(
            _post(served, SUBMIT[provider], json.dumps(VALID[provider]).encode(), KEYS[provider])
        )
        await asyncio.wait_for(clock.wait_for_sleepers(1), BOUND)
        assert (await _post(served, "/_mock/reset", b"{}", {}))[0] == 200
        status, _, body = await asyncio.wait_for(call, BOUND)
        assert status == 503
        documented_5xx(provider, "submit", status, body)
        assert clock.sleepers == 0


async def test_abandoned_segmind_v1_call_does_not_linger() -> None:
    async with serving() as (served, state):
        clock = state.clock
        _reader, writer = await connect(served)
        data = b'{"prompt": "x"}'
        writer.write(
            head("segmind", "/v1/nano-banana", f"Content-Length: {len(data)}\r\n\r\n") + data
        )
        await asyncio.wait_for(clock.wait_for_sleepers(1), BOUND)
        writer.close()  # the client gives up
        for _ in range(int(BOUND / 0.02)):
            if clock.sleepers == 0:
                break
            await asyncio.sleep(0.02)
        assert clock.sleepers == 0, "the abandoned call still waits on the clock"


async def test_hanging_transport_fault_ends_on_reset() -> None:
    async with serving() as (served, state):
        rule = {
            "match": {"operation": "submit"},
            "effect": {"transport": {"kind": "hang", "seconds": 600, "when": "before"}},
        }
        assert (await _post(served, "/_mock/faults", json.dumps(rule).encode(), {}))[0] == 201
        reader, writer = await connect(served)
        data = b'{"prompt": "x"}'
        writer.write(
            head("segmind", SUBMIT["segmind"], f"Content-Length: {len(data)}\r\n\r\n") + data
        )
        for _ in range(int(BOUND / 0.01)):  # until the rule fired: the call is hanging
            if state.faults.rules[0].fired:
                break
            await asyncio.sleep(0.01)
        assert state.faults.rules[0].fired == 1
        started = time.monotonic()
        assert (await _post(served, "/_mock/reset", b"{}", {}))[0] == 200
        assert await closed(reader) == b""  # dropped, not held for 600 s
        assert time.monotonic() - started < 3.0
        writer.close()


async def test_a_closed_connection_leaves_no_reference_cycle_holding_its_body() -> None:
    """Each connection kept its last body's stream, which points back at the connection: a
    cycle holding the buffered body (256 KiB for an oversized one) that only a full
    collection freed. The CLI makes those rare, and a soak of oversized bodies grew by
    290 MB. With the collector off, closed connections must leave no garbage behind."""
    data = b'{"prompt": "' + b"x" * (256 * 1024 + 100) + b'"}'
    async with serving() as (served, _):
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                reader, writer = await connect(served)
                writer.write(
                    head("segmind", "/v2/nano-banana", f"Content-Length: {len(data)}\r\n\r\n")
                )
                writer.write(data)
                assert (await response(reader))[0] == 413
                writer.close()
            for _ in range(200):  # until the server has seen every close (bounded)
                if not served.guard.connections:
                    break
                await asyncio.sleep(0.01)
            assert not served.guard.connections
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            kinds = {type(o).__name__ for o in gc.garbage}
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert "_Connection" not in kinds and "StreamReader" not in kinds, kinds
