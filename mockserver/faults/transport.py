"""How a connection is broken on purpose (the ``transport`` fault effect's mechanics).

An exchange ends in one of two ways: an answer aiohttp sends (a :data:`Sent`, which is the
response itself, or a stream a fault already started and cut short), or a connection closed
with no answer (:class:`Broken`). Waits here are in wall time, bounded by the effect's
``seconds``, and end early when the client goes or the mock is reset (its clock stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Mapping
from typing import Any, TypeAlias

from aiohttp import web

from ..engine.clock import VirtualClock

__all__ = ["Broken", "Outcome", "Sent", "break_connection", "close", "drop", "unsent"]

# An answer handed to aiohttp. Not wrapped: every request ends in one, and on the fast path a
# wrapper object would be an allocation per request (about 140 ns) that buys nothing.
Sent: TypeAlias = web.StreamResponse


class Broken:
    """The connection was closed with no answer (a transport fault): nothing was sent, and
    the journal entry keeps no status."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason  # the transport kind that broke it: reset, empty, hang, ...

    def __repr__(self) -> str:
        return f"Broken({self.reason!r})"


Outcome: TypeAlias = Sent | Broken


def unsent() -> web.StreamResponse:
    """What a handler hands aiohttp for a :class:`Broken` exchange: the connection is gone, so
    this is never written (499, nginx's "closed without a response", shows in no log)."""
    return web.Response(status=499)


async def break_connection(
    request: web.Request,
    response: web.StreamResponse | None,
    params: Mapping[str, Any],
    clock: VirtualClock,
) -> Outcome:
    """Apply a transport fault to ``response`` (None: before there is one). Its wall-clock
    waits end early when the client goes or the mock is reset (``clock`` stopped)."""
    kind = params["kind"]
    if kind == "malformed_json" and isinstance(response, web.Response):
        return _halved(response)
    if kind in ("truncate", "slow_body") and isinstance(response, web.Response):
        body = response.body if isinstance(response.body, bytes) else b""
        stream = web.StreamResponse(status=response.status, headers=response.headers)
        stream.content_length = len(body)
        with contextlib.suppress(ConnectionResetError):  # the client left first: cut anyway
            await stream.prepare(request)
            if kind == "truncate":
                await stream.write(body[: len(body) // 2])
            else:
                rate = float(params.get("bytes_per_second", 64))
                seconds = float(params.get("seconds", 30.0))
                await dribble(request, stream, body, rate, seconds, clock)
        drop(request, reset=False)
        return stream  # its head was sent: the answer's status stands
    return await close(request, params, clock)


async def close(request: web.Request, params: Mapping[str, Any], clock: VirtualClock) -> Broken:
    """Close the connection with no answer: at once, or after a hang; with a reset (RST)
    for ``kind: reset``, else a plain close."""
    kind = params["kind"]
    if kind == "hang":
        await wait_for_client(request, float(params.get("seconds", 30.0)), clock)
    drop(request, reset=kind == "reset")
    return Broken(kind)


def _halved(response: web.Response) -> web.Response:
    """The answer with its JSON body cut in the middle."""
    body = response.body if isinstance(response.body, bytes) else b"{}"
    return web.Response(
        status=response.status,
        body=body[: max(1, len(body) // 2)],
        content_type="application/json",
    )


async def dribble(
    request: web.Request,
    stream: web.StreamResponse,
    body: bytes,
    rate: float,
    seconds: float,
    clock: VirtualClock,
) -> None:
    """Send ``body`` at about ``rate`` bytes per wall second, for at most ``seconds``."""
    tick = 0.05
    chunk = max(1, int(rate * tick))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    for start in range(0, len(body), chunk):
        if loop.time() >= deadline or gone(request) or clock.stopped:
            return
        await stream.write(body[start : start + chunk])
        await asyncio.sleep(tick)
    await stream.write_eof()


async def wait_for_client(request: web.Request, seconds: float, clock: VirtualClock) -> None:
    """Send nothing for up to ``seconds`` of wall time, or until the client gives up or the
    mock is reset."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and not gone(request) and not clock.stopped:
        await asyncio.sleep(min(0.05, deadline - loop.time()))


def gone(request: web.Request) -> bool:
    """Has the client closed the connection?"""
    return request.transport is None or request.transport.is_closing()


def drop(request: web.Request, reset: bool) -> None:
    """Close the connection: with a TCP reset (RST), or a plain close (FIN)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if reset:
        transport.abort()
    else:
        transport.close()
