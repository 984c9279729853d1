"""Server-Sent Events (WHATWG HTML, "Server-sent events"): an answer's head, its events, and a
bounded wait for the virtual clock between them.

A stream is a ``text/event-stream`` answer of ``data: <JSON>`` events, each ended by a blank
line, and comment lines (``: keep-alive``) that keep proxies from cutting a quiet connection.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from ..engine.clock import VirtualClock
from ..http import dumps

__all__ = ["CONTENT_TYPE", "KEEPALIVE", "event", "open_stream", "wait"]

CONTENT_TYPE = "text/event-stream"
KEEPALIVE = b": keep-alive\n\n"


async def open_stream(request: web.Request) -> web.StreamResponse:
    """The stream's head (200, ``text/event-stream``, not cached, not buffered), sent."""
    response = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": CONTENT_TYPE,
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass each event on at once
        },
    )
    await response.prepare(request)
    return response


def event(data: object) -> bytes:
    """One event carrying ``data`` as JSON on one line."""
    return b"data: " + dumps(data) + b"\n\n"


async def wait(clock: VirtualClock, moves: int, deadline: float, wall: float) -> bool:
    """Wait until the clock has moved since its ``moves``-th move (:meth:`~..engine.clock.
    VirtualClock.wait_change`), virtual time reaches ``deadline``, or ``wall`` seconds of
    wall time pass, whichever comes first; True unless the wall time ran out. Raises
    :class:`~..engine.clock.ClockStopped` if the clock is stopped (a reset, an eviction)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(clock.wait_change(moves, deadline), wall)
        return True
    return False
