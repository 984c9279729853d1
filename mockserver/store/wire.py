"""One connection to Redis per process, shared by every request: the store's hot path.

redis-py takes a connection from its pool for each command (a lock, a checkout, a release)
and wraps every read in a timeout: most of the CPU a request spent on the store. Here the
commands of all the requests being served go down one socket, pipelined, those of one turn
of the event loop in one write; Redis answers them in the order it got them, so each reply is
matched to the first command still waiting (FIFO), parsed by hiredis's ``Reader`` as bytes
arrive.

- **Timeouts**: one timer, not one per command: while commands wait, it checks every quarter
  of ``timeout`` whether the oldest has waited longer; then the connection is dropped and every
  command on it fails (``redis.exceptions.TimeoutError``).
- **Failure**: a lost connection fails every command on it (``ConnectionError``; a command
  may or may not have run: the caller decides, ``redis.py``); the next command connects
  again. Redis restarted closes the socket, so a dead connection is noticed before it is used.
- **Errors**: a Redis error reply raises redis-py's exception for it (``NoScriptError``,
  ``ResponseError``), so callers handle the one family of exceptions.

Plain TCP and Unix sockets (``redis://``, ``unix://``), with a password and a database;
``rediss://`` (TLS) stays on redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any, cast

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["Wire", "bulk", "head", "supports"]

MAX_WAITING = 100_000  # commands in flight on the connection: more is a store too slow


def supports(url: str) -> bool:
    """Can :class:`Wire` speak to the Redis at ``url``?"""
    return url.startswith(("redis://", "unix://"))


def _pack(args: tuple[Any, ...]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    return b"*%d\r\n" % len(args) + bulk(args)


_HEADERS = [b"$%d\r\n" % size for size in range(1024)]  # a bulk string's header, by size


def bulk(args: tuple[Any, ...] | list[Any]) -> bytes:
    """``args`` as RESP bulk strings (a command's array header not included: a caller
    that sends many commands with the same first arguments packs those once, with the
    header for the whole length, and these after them: :meth:`Wire.execute_packed`).
    Pieces joined once, small sizes' headers made once: the packing is per request."""
    out: list[bytes] = []
    add = out.append
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode()
        elif kind is bytes or isinstance(arg, bytes):
            data = arg
        else:
            data = arg.encode() if isinstance(arg, str) else str(arg).encode()
        size = len(data)
        add(_HEADERS[size] if size < 1024 else b"$%d\r\n" % size)
        add(data)
        add(b"\r\n")
    return b"".join(out)


def head(length: int, args: tuple[Any, ...] | list[Any]) -> bytes:
    """The start of a command of ``length`` arguments: its header and its first ``args``."""
    return b"*%d\r\n" % length + bulk(args)


def _error(reply: hiredis.ReplyError) -> Exception:
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        # made in the loop it serves; kept (asyncio.get_running_loop() is a getpid() system
        # call on Python 3.11: twice per request, as much as the rest of the wire's work)
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed: Exception | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []  # commands sent in this turn of the loop, not yet written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is no subclass)

    def send_one(self, data: bytes) -> asyncio.Future[Any]:
        """Write one command (``data``); its reply's future (:meth:`send`, for one)."""
        if self.closed is not None or self.transport is None:
            raise RedisConnectionError(f"connection to the store lost: {self.closed}")
        waiting = self.waiting
        if len(waiting) >= MAX_WAITING:
            raise RedisConnectionError(f"more than {MAX_WAITING} commands wait for the store")
        future = self.loop.create_future()
        waiting.append((future, time.monotonic()))
        self._queue(data)
        return future

    def send(self, data: bytes, count: int) -> list[asyncio.Future[Any]]:
        """Write ``count`` commands (``data``); their replies' futures, in order."""
        if self.closed is not None or self.transport is None:
            raise RedisConnectionError(f"connection to the store lost: {self.closed}")
        if len(self.waiting) + count > MAX_WAITING:
            raise RedisConnectionError(f"more than {MAX_WAITING} commands wait for the store")
        now = time.monotonic()
        futures = [self.loop.create_future() for _ in range(count)]
        self.waiting.extend((future, now) for future in futures)
        self._queue(data)
        return futures

    def _queue(self, data: bytes) -> None:
        """Queue ``data`` for this turn of the loop's one write, and watch for a reply."""
        out, loop = self._out, self.loop
        out.append(data)
        if len(out) == 1:  # the commands of this turn of the loop: one write, after it
            loop.call_soon(self._flush)
        if self._timer is None:
            self._timer = loop.call_later(self.timeout / 4, self._check)

    def _flush(self) -> None:
        out = self._out
        if out and self.transport is not None and self.closed is None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        out.clear()

    def data_received(self, data: bytes) -> None:
        reader, waiting = self.reader, self.waiting
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(RedisConnectionError(f"the store's reply could not be read: {exc}"))
                return
            if reply is False:
                return
            if not waiting:  # a reply to nothing: the stream is out of step
                self._fail(RedisConnectionError("the store sent a reply no command asked for"))
                return
            future, _ = waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_error(reply))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"Connection closed by server ({exc or 'EOF'})"))

    def _check(self) -> None:
        self._timer = None
        if self.closed is not None or not self.waiting:
            return
        if time.monotonic() - self.waiting[0][1] > self.timeout:
            self._fail(RedisTimeoutError("Timeout reading from the store"))
            return
        self._timer = self.loop.call_later(self.timeout / 4, self._check)

    def _fail(self, exc: Exception) -> None:
        if self.closed is None:
            self.closed = exc
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.abort()
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(type(exc)(str(exc)))


class Wire:
    """Commands to one Redis on one shared connection (made, and made again, on demand)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.options: dict[str, Any] = dict(parse_url(url))
        self.timeout = timeout
        self.round_trips = 0  # batches of commands sent (each answered in one exchange)
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def execute(self, *args: Any) -> Any:
        """One command's reply (or its error, raised)."""
        return await self.execute_packed(_pack(args))

    async def execute_packed(self, data: bytes) -> Any:
        """One command's reply, the command already in RESP (:func:`head`, :func:`bulk`)."""
        protocol = self._protocol
        if protocol is None or protocol.closed is not None:
            protocol = await self._connect()
        self.round_trips += 1
        return await protocol.send_one(data)

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one write; every reply, or the first error raised (after
        all have answered)."""
        protocol = self._protocol
        if protocol is None or protocol.closed is not None:
            protocol = await self._connect()
        self.round_trips += 1
        futures = protocol.send(b"".join(_pack(c) for c in commands), len(commands))
        # replies come in order (a lost connection fails every command on it, in order):
        # once the last is answered, all are (no gather: a callback per command)
        with contextlib.suppress(Exception):
            await futures[-1]
        errors = [future.exception() for future in futures]  # (each retrieved)
        for error in errors:
            if error is not None:
                raise error
        return [future.result() for future in futures]

    def close(self) -> None:
        if self._protocol is not None:
            self._protocol._fail(RedisConnectionError("closed"))
            self._protocol = None

    async def _connect(self) -> _Protocol:
        if self._connecting is not None:  # one connection attempt at a time, shared
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            protocol = await asyncio.wait_for(self._open(), self.timeout)
        except Exception as exc:
            error: Exception = exc
            if isinstance(exc, asyncio.TimeoutError | OSError):
                error = RedisConnectionError(f"Error connecting to the store: {exc!r}")
            self._connecting.set_exception(error)
            self._connecting.exception()  # (retrieved: no warning when none waits)
            self._connecting = None
            raise error from None
        self._protocol = protocol
        self._connecting.set_result(protocol)
        self._connecting = None
        return protocol

    async def _open(self) -> _Protocol:
        options = self.options
        loop = asyncio.get_running_loop()
        protocol = _Protocol(self.timeout)
        if "path" in options:
            await loop.create_unix_connection(lambda: protocol, options["path"])
        else:
            await loop.create_connection(
                lambda: protocol, options.get("host", "localhost"), options.get("port", 6379)
            )
        hello: list[tuple[Any, ...]] = []
        if options.get("password"):
            user = options.get("username")
            hello.append(
                ("AUTH", user, options["password"]) if user else ("AUTH", options["password"])
            )
        if options.get("db"):
            hello.append(("SELECT", options["db"]))
        if hello:
            futures = protocol.send(b"".join(_pack(c) for c in hello), len(hello))
            for future in futures:
                await future
        return protocol
