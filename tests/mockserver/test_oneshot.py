"""The one-go JSON answer (mockserver/oneshot.py) puts the same bytes on the wire as
aiohttp's own ``web.Response``: each case is served both ways by one loopback server and
read raw off the socket (the Date header aside, which may tick between the two)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from nanobanana_mock import oneshot
from nanobanana_mock.oneshot import OneShot

JSON = b'{"status":"COMPLETED","request_id":"abc"}'
PNG = bytes(range(256)) * 40  # above aiohttp's 2,048-byte threshold for writelines

# name: (status, body, headers, content type, force close)
CASES: dict[str, tuple[int, bytes, dict[str, str] | None, str, bool]] = {
    "ok": (200, JSON, None, "application/json", False),
    "created": (201, JSON, None, "application/json", False),
    "headers": (429, JSON, {"Retry-After": "3", "X-Mock-Fault": "rate"}, "application/json", False),
    "not-found": (404, b'{"error":"gone"}', None, "application/json", False),
    "server-error": (
        503,
        b'{"error":"down"}',
        {"X-Mock-Store": "unreachable"},
        "application/json",
        False,
    ),
    "empty": (200, b"", None, "application/json", False),
    "image": (200, PNG, {"x-request-id": "abc"}, "image/png", False),
    "closing": (200, JSON, None, "application/json", True),
    "own-connection": (200, JSON, {"Connection": "close"}, "application/json", False),
    "own-type": (200, JSON, {"Content-Type": "text/plain; charset=utf-8"}, "", False),
    "no-content": (204, b"", None, "application/json", False),  # aiohttp's own path
    "not-modified": (304, b"", None, "application/json", False),  # aiohttp's own path
}
FAST_CASES = set(CASES) - {"no-content", "not-modified"}

REQUESTS = {
    "1.1": "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n",
    "1.1-close": "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "1.0": "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n",
    "1.0-keep-alive": "GET {path} HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    "head": "HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n",  # aiohttp's own path
}


def standard(case: str) -> web.Response:
    status, body, headers, content_type, close = CASES[case]
    response = web.Response(
        status=status, body=body, headers=headers, content_type=content_type or None
    )
    if close:
        response.force_close()
    return response


def one_go(case: str) -> web.Response:
    status, body, headers, content_type, close = CASES[case]
    response = (
        OneShot(status, body, headers, content_type)
        if content_type
        else OneShot(status, body, headers)
    )
    if close:
        response.force_close()
    return response


def app_of(signalled: bool = False) -> web.Application:
    async def std(request: web.Request) -> web.StreamResponse:
        return standard(request.match_info["case"])

    async def one(request: web.Request) -> web.StreamResponse:
        return one_go(request.match_info["case"])

    app = web.Application()
    app.router.add_route("*", "/std/{case}", std)
    app.router.add_route("*", "/one/{case}", one)
    if signalled:  # an on_response_prepare listener: served by aiohttp's path, which calls it

        async def stamp(request: web.Request, response: web.StreamResponse) -> None:
            response.headers["X-Prepared"] = "yes"

        app.on_response_prepare.append(stamp)
    return app


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async with TestServer(app_of(), host="127.0.0.1") as test_server:
        yield test_server


async def exchange(port: int, raw: str, closing: bool = False) -> bytes:
    """Send one request on a new connection and read its answer (by its Content-Length);
    ``closing``: the server is to close the connection after it, so read on to the end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        match = re.search(rb"(?im)^content-length: *(\d+)\r$", head)
        length = int(match.group(1)) if match and not raw.startswith("HEAD") else 0
        body = await asyncio.wait_for(reader.readexactly(length), 10)
        rest = await asyncio.wait_for(reader.read(), 10) if closing else b""  # b"", then EOF
        return _undated(head + body + rest)
    finally:
        writer.close()


async def both_ways(port: int, case: str, request_kind: str) -> tuple[bytes, bytes]:
    """The raw answer to ``case`` served as ``web.Response``, then as ``OneShot``."""
    raw = REQUESTS[request_kind]
    closing = request_kind in ("1.1-close", "1.0") or CASES[case][4]
    std = await exchange(port, raw.format(path=f"/std/{case}"), closing)
    one = await exchange(port, raw.format(path=f"/one/{case}"), closing)
    return std, one


def _undated(raw: bytes) -> bytes:
    return re.sub(rb"(?m)^Date: [^\r]*\r$", b"Date: -\r", raw)


@pytest.mark.parametrize("request_kind", list(REQUESTS))
@pytest.mark.parametrize("case", list(CASES))
async def test_the_same_bytes_as_aiohttps_response(
    server: TestServer, case: str, request_kind: str
) -> None:
    std, one = await both_ways(server.port, case, request_kind)
    assert one == std
    assert re.match(rb"HTTP/1\.[01] %d " % CASES[case][0], std)


async def test_keep_alive_serves_answers_one_after_another(server: TestServer) -> None:
    """Several one-go answers on one connection, each whole, in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for case in ("ok", "image", "empty", "headers", "ok"):
            writer.write(f"GET /one/{case} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = int(re.search(rb"(?im)^content-length: *(\d+)\r$", head).group(1))  # type: ignore[union-attr]
            assert await asyncio.wait_for(reader.readexactly(length), 10) == CASES[case][1]
    finally:
        writer.close()


async def test_an_on_response_prepare_listener_still_runs() -> None:
    async with TestServer(app_of(signalled=True), host="127.0.0.1") as test_server:
        raw = REQUESTS["1.1"]
        std = await exchange(test_server.port, raw.format(path="/std/ok"))
        one = await exchange(test_server.port, raw.format(path="/one/ok"))
    assert b"X-Prepared: yes" in std
    assert one == std


def test_the_installed_aiohttp_takes_the_one_go_path() -> None:
    """Otherwise every test above compares aiohttp's path with itself."""
    assert oneshot.FAST


@pytest.mark.parametrize("case", list(CASES))
async def test_which_path_each_answer_takes(
    server: TestServer, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp's own ``prepare`` runs only for what the one-go path leaves to it."""
    calls: list[int] = []
    prepare: Callable[..., Any] = web.StreamResponse.prepare

    async def counted(self: web.StreamResponse, request: web.BaseRequest) -> Any:
        calls.append(self.status)
        return await prepare(self, request)

    monkeypatch.setattr(web.StreamResponse, "prepare", counted)
    await exchange(server.port, REQUESTS["1.1"].format(path=f"/one/{case}"))
    assert (calls == []) == (case in FAST_CASES)
    calls.clear()
    await exchange(server.port, REQUESTS["head"].format(path=f"/one/{case}"))
    assert len(calls) == 1  # a HEAD's answer has no body: aiohttp's path


def test_the_same_bytes_under_uvloop() -> None:
    """The command line serves on uvloop (its transports are not asyncio's classes): the
    comparison again, for each kind of request, on a uvloop event loop."""
    uvloop = pytest.importorskip("uvloop")

    async def compare() -> list[str]:
        differ = []
        async with TestServer(app_of(), host="127.0.0.1") as test_server:
            for case in ("ok", "headers", "empty", "image", "closing"):
                for kind in REQUESTS:
                    std, one = await both_ways(test_server.port, case, kind)
                    if one != std:
                        differ.append(f"{case} {kind}")
        return differ

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(compare()) == []
