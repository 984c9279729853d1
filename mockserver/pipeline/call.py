"""What the pipeline and a handler share about one request.

One :class:`Call` per request, under one request key: its journal entry, the job effects the
fault rules decided, the parsed body (read once), and whether the answer was forwarded from a
source or drifted on purpose. One object rather than a key each, because a key that is absent
costs aiohttp a raised ``KeyError`` on every lookup.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from ..engine.journal import MAX_ENTRY_FINDINGS, Entry, capped
from ..faults.effects import JobEffects
from ..http import BodyError, check_body_headers, check_body_length, parse_body, read_body

__all__ = ["CALL", "NO_EFFECTS", "UNKNOWN", "Call", "call_for", "call_of", "note"]

NO_EFFECTS = JobEffects()  # read only
UNKNOWN: Any = object()  # a key the pipeline did not read
_UNREAD = object()


class Call:
    __slots__ = ("_body", "_raw", "close", "drifted", "effects", "entry", "forwarded", "key")

    def __init__(self, entry: Entry | None, key: str | None = UNKNOWN) -> None:
        self.entry = entry  # None when a handler runs outside the pipeline
        self.key = key  # the API key in the provider's header and scheme, if read
        self.effects = NO_EFFECTS  # decided by the fault engine
        self.forwarded = False  # a source answered: not the mock's own body
        self.drifted = False  # a drift rule changed the answer on purpose
        self.close = False  # the body was left unread or broken: close after the answer
        self._raw: bytes | BodyError | Any = _UNREAD
        self._body: Any = _UNREAD

    def again(self, entry: Entry | None) -> Call:
        """A fresh call for the same request served again (a shared store's ``Stale``):
        the body as read already, nothing else."""
        call = Call(entry, self.key)
        call._raw, call._body, call.close = self._raw, self._body, self.close
        return call

    async def raw(self, request: web.Request, max_bytes: int, *, any_type: bool = False) -> bytes:
        """The request body's bytes, read once and only after its headers passed (JSON,
        ``Content-Length`` within ``max_bytes``); raises :class:`BodyError` (an equal one
        each time). Everyone who needs the body (the marker check, rules, the handler, a
        source) gets it from here, so no reader ever sees a part of it. ``any_type``: of
        any ``Content-Type`` (what the proxy forwards)."""
        outcome = self._raw
        if outcome is _UNREAD or (
            any_type and isinstance(outcome, BodyError) and outcome.kind == "content_type"
        ):  # a body refused by its type alone is still unread
            try:
                if any_type:
                    check_body_length(request, max_bytes)
                else:
                    check_body_headers(request, max_bytes)
                outcome = await read_body(request, max_bytes)
            except BodyError as err:
                outcome = err.bare()  # kept: without the frames that hold the body
                # the rest of the body is unread (or unreadable): no next request can be
                # found on this connection, so it closes after the answer
                self.close = err.kind in ("too_large", "payload")
            self._raw = outcome
        if isinstance(outcome, BodyError):
            raise outcome.bare()  # a copy: the one kept never holds a frame
        return outcome

    def digest(self) -> str | None:
        """A short fingerprint of the body's bytes once read (None before, or unreadable):
        what tells the scorecard that a body was sent again."""
        raw = self._raw
        if not isinstance(raw, bytes):
            return None
        return hashlib.blake2b(raw, digest_size=8).hexdigest()

    async def body(self, request: web.Request, max_bytes: int) -> Any:
        """The request body as parsed JSON, read and parsed once; raises :class:`BodyError`
        (an equal one each time) with a clear reason."""
        outcome = self._body
        if outcome is _UNREAD:
            try:
                outcome = parse_body(await self.raw(request, max_bytes), max_bytes)
            except BodyError as err:
                outcome = err.bare()
            self._body = outcome
        if isinstance(outcome, BodyError):
            raise outcome.bare()
        return outcome


CALL = web.RequestKey("mock_call", Call)


def call_of(request: web.Request) -> Call:
    """The request's call (a fresh one for a handler running outside the pipeline)."""
    try:
        return request[CALL]
    except KeyError:
        call = request[CALL] = Call(None)
        return call


def call_for(request: web.Request, entry: Entry | None, key: str | None) -> Call:
    """The call of a request served again (a shared store's ``Stale``): a fresh one with
    the body as read already; a new one the first time."""
    try:
        before = request[CALL]
    except KeyError:
        return Call(entry, key)
    return before.again(entry)


def note(request: web.Request, **fields: Any) -> None:
    """Tell the journal what the handler learnt (request id, model, validation, findings)."""
    entry = call_of(request).entry
    if entry is None:
        return
    for name, value in fields.items():
        if name == "findings":
            value = value[:MAX_ENTRY_FINDINGS]
        elif name == "problems":
            value = capped(value)
        setattr(entry, name, value)
