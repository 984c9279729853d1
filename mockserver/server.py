"""Serving an app: the one place where a runner and its listening site are built.

The command line, the pytest plugin and the soak all start the mock through :func:`serve_app`,
so every server gets the same defences against slow and broken clients (aiohttp 3.14 has a
keep-alive timeout but no deadline for headers or bodies, and no connection cap):

- **headers**: from connecting, or from the first byte of a request, a client has
  ``header_timeout`` seconds to send all of its headers; a connection that sent part of a
  request then gets a minimal ``408`` and is closed, one that sent nothing is just closed;
- **bodies**: from the end of the headers, ``body_timeout`` seconds to send the whole body;
  past it the body's stream fails, so the handler reading it answers the provider's 400,
  and the connection is closed after that answer;
- **idle keep-alive**: aiohttp's own ``keepalive_timeout``;
- **connections**: at most ``max_connections`` at once (lowered to fit the open-file limit,
  whose soft value is first raised to the hard one); one more is answered a minimal ``503``
  with ``Retry-After`` and ``Connection: close``, and closed;
- **abandoned calls**: a handler whose client went away is cancelled (aiohttp's
  ``handler_cancellation``), so nothing waits on the virtual clock for nobody.

A sweeper checks the deadlines a few times per shortest deadline (no timer per connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest

from .accesslog import ACCESS_LOG_FORMAT, AccessLog
from .config import MockConfig
from .tls import TestCA, test_ca

__all__ = ["BodyTimeout", "ConnectionGuard", "Served", "raise_file_limit", "serve_app"]

log = logging.getLogger("nanobanana_mock")

# File descriptors kept for everything that is not a client connection: the listening
# socket, the image renderer processes' pipes, log files, the proxy's upstream connections
# and the short-lived socket of a refused connection.
FD_RESERVE = 64
# How long a refused (over the cap) connection is kept to let the client read the 503
# before it is closed, and how many such refusals may wait at once (beyond it, closed at
# once): a flood of connections cannot hold file descriptors through the refusals.
REFUSAL_LINGER_SECONDS = 1.0
MAX_LINGERING_REFUSALS = 64
# After an answer that did not read the whole body (a 413, a refusal by the headers), how
# long aiohttp reads and drops the rest so the client can read the answer before the close
# (aiohttp's default is 10 s; a hostile client could keep the loop busy discarding for it).
LINGER_SECONDS = 2.0
# The sweeper runs this many times per shortest deadline, and at least once a second.
SWEEPS_PER_DEADLINE = 4


def protocol_reason(exc: BaseException) -> str:
    """Why the parser refused a request, in one line and without the excerpt of the request
    aiohttp appends (``b'x-api-key: sk-...\\x7f'``): a refused header line or request line
    may hold an API key, which must reach neither the log nor the answer."""
    reason = str(getattr(exc, "message", "") or exc).strip().partition("\n")[0]
    for excerpt in ("bytearray(", "b'", 'b"'):  # "Got more than 8190 bytes when reading: b'..."
        reason = reason.partition(excerpt)[0]
    reason = reason.strip().rstrip(":").strip()
    return reason[:200] or type(exc).__name__


class OneLineProtocolErrors(logging.Filter):
    """aiohttp logs a traceback for every request that is not valid HTTP; one line is enough
    (the client got a 400 already), and it names the reason only (:func:`protocol_reason`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if isinstance(exc, BadHttpMessage):  # every parser refusal derives from it
                record.msg = f"refused a request that is not valid HTTP: {protocol_reason(exc)}"
                record.args = ()
                record.exc_info = None
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_protocol_errors() -> None:
    """Install :class:`OneLineProtocolErrors` on aiohttp's server log, once."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, OneLineProtocolErrors) for f in logger.filters):
        logger.addFilter(OneLineProtocolErrors())


class BodyTimeout(Exception):
    """Set on a request body's stream when the client took too long to send it."""


def raise_file_limit() -> int | None:
    """Raise the soft open-file limit to the hard one (a common soft limit of 1,024 would
    otherwise be reached by a few hundred slow clients before ``max_connections``); returns
    the soft limit in force, or None where there is no such limit (Windows)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _minimal_response(status: str, message: str, headers: str = "") -> bytes:
    """A whole HTTP/1.1 answer sent by hand (no request was routed): JSON, then close."""
    body = json.dumps({"error": message}).encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{headers}Connection: close\r\n\r\n"
    ).encode() + body


class _Connection(RequestHandler):
    """aiohttp's request handler, telling its guard when a request's headers started and
    ended and which body is in flight (all it needs for the deadlines)."""

    __slots__ = ("_body", "_body_since", "_guard", "_partial", "_since")

    def __init__(self, guard: ConnectionGuard, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard
        self._since: float | None = None  # headers of the next request awaited since
        self._partial = False  # part of those headers has arrived
        self._body: Any = None  # the stream of the last request's body
        self._body_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._since = self._loop.time()  # a client that connects and sends nothing
        self._guard.opened(self)
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.closed(self)
        super().connection_lost(exc)
        # the body's stream points back at this handler: a cycle, holding whatever of the
        # body was buffered, that only a full collection would free (as aiohttp drops its
        # own references here)
        self._body = None

    def data_received(self, data: bytes) -> None:
        if (
            self._since is None
            and not self._messages
            and not self._request_in_progress
            and (self._body is None or self._body.is_eof())
        ):
            self._since = self._loop.time()  # the first byte of a new request
        if self._since is not None:
            self._partial = True
        super().data_received(data)
        if self._messages:  # headers complete (or refused by the parser)
            self._since = None
            self._partial = False
            self._body = self._messages[-1][1]
            self._body_since = self._loop.time()

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """A body that failed (its deadline, a bad encoding, a broken chunk) makes aiohttp's
        read of its rest, after the answer, raise; aiohttp then closes the connection, as it
        should, and logs a traceback, which is noise: one line instead."""
        exc_info = kwargs.get("exc_info")
        if isinstance(exc_info, RequestPayloadError | BodyTimeout):
            self.logger.debug("closed after a request body that failed: %s", exc_info)
            return
        super().log_exception(*args, **kwargs)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request the parser refused (not valid HTTP, an encoding aiohttp cannot decode)
        is answered as aiohttp does, a text/plain 400 before any route was found (so in no
        provider's envelope), but naming the reason only: aiohttp's text quotes the refused
        line, which may hold a key. The connection is closed after it."""
        response = super().handle_error(request, status, exc, message)
        if status == 500 or exc is None:
            return response
        answer = web.Response(status=status, text=protocol_reason(exc))
        answer.force_close()
        return answer

    def expired(self, now: float, guard: ConnectionGuard) -> None:
        """Enforce the header and body deadlines (called by the sweeper)."""
        since = self._since
        if (
            since is not None
            and now - since > guard.header_timeout
            and not self._messages
            and not self._request_in_progress
            and self.transport is not None
        ):
            guard.header_timeouts += 1
            if self._partial:
                self.transport.write(guard.header_answer)
            self.force_close()
            return
        body = self._body
        if (
            body is not None
            and not body.is_eof()
            and body.exception() is None
            and now - self._body_since > guard.body_timeout
            and self._request_in_progress  # else aiohttp is already dropping it (lingering)
        ):
            guard.body_timeouts += 1
            body.set_exception(
                BodyTimeout(f"request body not received within {guard.body_timeout:g} s")
            )


class _Refusal(asyncio.Protocol):
    """A connection over the cap: a 503 at once, then closed."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport: no isinstance check
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        guard = self._guard
        guard.refused += 1
        transport.write(guard.refusal_answer)
        if len(guard.lingering) >= MAX_LINGERING_REFUSALS or not transport.can_write_eof():
            transport.close()
            return
        # half-close and drop what the client still sends for a moment, so that the close
        # does not reset the connection before it has read the answer
        transport.write_eof()
        guard.lingering.add(self)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(REFUSAL_LINGER_SECONDS, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.lingering.discard(self)
        if self._timer is not None:
            self._timer.cancel()


class ConnectionGuard:
    """The protocol factory of the listening socket: counts connections, refuses those over
    the cap, and sweeps the header and body deadlines."""

    def __init__(self, server: web.Server, config: MockConfig, max_connections: int) -> None:
        self._server = server
        self._kwargs: dict[str, Any] = dict(getattr(server, "_kwargs", {}))
        self.header_timeout = config.header_timeout
        self.body_timeout = config.body_timeout
        self.max_connections = max_connections
        self.connections: set[_Connection] = set()
        self.lingering: set[_Refusal] = set()
        self.refused = 0
        self.header_timeouts = 0
        self.body_timeouts = 0
        self.header_answer = _minimal_response(
            "408 Request Timeout",
            f"request headers not received within {config.header_timeout:g} s",
        )
        self.refusal_answer = _minimal_response(
            "503 Service Unavailable",
            f"too many connections (at most {max_connections}); retry shortly",
            "Retry-After: 1\r\n",
        )
        self._sweeper: asyncio.Task[None] | None = None

    def __call__(self) -> asyncio.Protocol:
        if len(self.connections) >= self.max_connections:
            return _Refusal(self)
        loop = asyncio.get_running_loop()
        return _Connection(self, self._server, loop=loop, **self._kwargs)

    def opened(self, connection: _Connection) -> None:
        self.connections.add(connection)

    def closed(self, connection: _Connection) -> None:
        self.connections.discard(connection)

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        period = min(1.0, min(self.header_timeout, self.body_timeout) / SWEEPS_PER_DEADLINE)
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for connection in list(self.connections):
                connection.expired(now, self)


class Served:
    """A running server: its runner, guard and address; :meth:`close` stops it."""

    def __init__(
        self,
        runner: web.AppRunner,
        listener: asyncio.AbstractServer,
        guard: ConnectionGuard,
        host: str,
        port: int,
        tls: tuple[asyncio.Server, TestCA] | None = None,
    ) -> None:
        self.runner = runner
        self.listener = listener
        self.guard = guard
        self.host = host
        self.port = port
        self.tls = tls  # the HTTPS listener (--tls-port) and its test CA
        self.tls_port: int | None = None
        if tls is not None:
            self.tls_port = tls[0].sockets[0].getsockname()[1]

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The test CA's certificate to trust (SSL_CERT_FILE) when serving HTTPS."""
        return None if self.tls is None else self.tls[1].ca_file

    async def close(self) -> None:
        self.listener.close()  # no new connections; the runner then ends the open ones
        if self.tls is not None:
            self.tls[0].close()
            self.tls[1].remove()
        await self.guard.stop()
        await self.runner.cleanup()


def connection_cap(config: MockConfig, file_limit: int | None) -> int:
    """``max_connections``, lowered to fit the open-file limit (minus a reserve)."""
    cap = config.max_connections
    if file_limit is not None and cap > file_limit - FD_RESERVE:
        fitted = max(1, file_limit - FD_RESERVE)
        log.warning(
            "max_connections %d lowered to %d to fit the open-file limit of %d",
            cap,
            fitted,
            file_limit,
        )
        cap = fitted
    return cap


async def serve_app(
    app: web.Application,
    config: MockConfig,
    *,
    handle_signals: bool = False,
    file_limit: Callable[[], int | None] = raise_file_limit,
    reuse_port: bool = False,
) -> Served:
    """Start serving ``app`` on ``config.host``/``config.port`` with every limit above;
    ``reuse_port``: share the port with other processes (``SO_REUSEPORT``)."""
    quiet_protocol_errors()
    kwargs: dict[str, Any] = {
        **config.server_limits(),
        "keepalive_timeout": config.keepalive_timeout,
        "lingering_time": LINGER_SECONDS,
        "handler_cancellation": True,
        "auto_decompress": False,  # bodies are inflated by read_body, in bounded steps
        "access_log_class": AccessLog,  # no query value (a key) and no key header in the log
        "access_log_format": ACCESS_LOG_FORMAT,
    }
    runner = web.AppRunner(app, handle_signals=handle_signals, **kwargs)
    await runner.setup()
    server = runner.server
    assert server is not None
    guard = ConnectionGuard(server, config, connection_cap(config, file_limit()))
    loop = asyncio.get_running_loop()
    try:
        # several processes (--processes) each listen on the one port; the kernel spreads
        # the connections over them
        listener = await loop.create_server(
            guard, config.host, config.port, backlog=128, reuse_port=reuse_port or None
        )
    except BaseException:
        await runner.cleanup()
        raise
    tls = None
    if config.tls_port is not None:  # the same app and guard, over HTTPS (fal-client)
        ca = test_ca()
        try:
            secure = await loop.create_server(
                guard, config.host, config.tls_port, backlog=128, ssl=ca.context
            )
        except BaseException:
            ca.remove()
            listener.close()
            await runner.cleanup()
            raise
        tls = (secure, ca)
    guard.start()
    host, port = listener.sockets[0].getsockname()[:2]
    return Served(runner, listener, guard, host, port, tls)
