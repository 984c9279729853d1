"""HTTP plumbing shared by the provider modules: errors, JSON replies, origins, body reading.

Two error families never mix (see ARCHITECTURE.md): :class:`ApiError` is an emulated provider
error that a client should see, already in that provider's envelope; ContractViolation
(schemas) is the mock breaking its own contract, which must fail loudly in tests.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import zlib
from functools import lru_cache
from typing import Any

import orjson
from aiohttp import web

from nanobanana_mock.schemas.located import MAX_JSON_DEPTH, too_deep
from nanobanana_mock.schemas.violations import MAX_PROBLEMS, Violation, pointer

from .engine.keys import fingerprint
from .oneshot import OneShot
from .store.tenant import PARAM, prefix

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_PROBLEMS",
    "ApiError",
    "BodyError",
    "check_body_headers",
    "check_body_length",
    "fingerprint",
    "hide_secrets",
    "json_response",
    "load_json",
    "local_path",
    "local_raw_path",
    "origin",
    "parse_body",
    "parse_json",
    "read_body",
    "too_deep",
]

JSON_TYPES = ("application/json",)


class ApiError(Exception):
    """A provider-shaped error response, raised anywhere in a handler."""

    retry_at: float | None = None  # a 429: the virtual time its wait headers allow again

    def __init__(
        self,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.content_type = content_type

    def response(self) -> web.Response:
        if self.content_type == "application/json":
            return json_response(self.status, self.body, self.headers)
        return web.Response(
            status=self.status,
            text=str(self.body),
            content_type=self.content_type,
            headers=self.headers,
        )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return OneShot(status, dumps(body), headers)


def dumps(body: Any) -> bytes:
    """Compact JSON bytes: orjson, or (for a lone surrogate a client sent, which orjson
    refuses) the standard library with ASCII escapes, which keeps it valid on the wire."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def origin(request: web.Request) -> str:
    """The scheme and authority the client used, so returned URLs lead back to this mock,
    and the ``/t/{tenant}`` prefix of the tenant being served, so they stay inside it."""
    return (_origin(request.scheme, request.host) or _fallback_origin(request)) + prefix()


def local_path(request: web.Request) -> str:
    """The request's path without its ``/t/{tenant}`` prefix: the path as a provider (and the
    tenant's journal, strays, recordings) sees it."""
    path = request.path
    tenant = request.match_info.get(PARAM)
    return path if tenant is None else path[len(tenant) + 3 :]


def local_raw_path(request: web.Request) -> str:
    """:func:`local_path` as sent (percent-encoded, with the query): what a proxy forwards."""
    raw = request.raw_path
    if request.match_info.get(PARAM) is None:
        return raw
    return "/" + raw.split("/", 3)[3] if raw.count("/") >= 3 else "/"


MAX_HOST_LENGTH = 255
"""Longest Host header used in the URLs an answer holds (a DNS name, 253, with a port fits):
the contracts bound every URL to 2,048 characters, and a Host may be as long as
``--max-header-bytes``."""


@lru_cache(maxsize=256)
def _origin(scheme: str, host: str) -> str:
    """``scheme://host`` when the Host header is a short, printable, plain authority, else ""
    (the socket's own address is used then)."""
    if (
        not host
        or len(host) > MAX_HOST_LENGTH
        or not host.isascii()
        or not host.isprintable()  # no control character, no DEL
        or any(c in host for c in "/\\?#@ ")
    ):
        return ""
    return f"{scheme}://{host}"


def _fallback_origin(request: web.Request) -> str:
    """The address the client reached, when its Host header cannot be trusted in a URL."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    host, port = (sockname[0], sockname[1]) if sockname else ("127.0.0.1", 80)
    return f"http://{host}:{port}"


class BodyError(Exception):
    """Why a body could not be read as a JSON object; ``kind`` picks the provider's answer."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "content_type" | "too_large" | "too_deep" | "json" | "payload"
        self.message = message

    @property
    def status(self) -> int:
        """The HTTP code of the answer, when a provider has no code of its own for it."""
        return {"content_type": 415, "too_large": 413, "too_deep": 413}.get(self.kind, 400)

    def bare(self) -> BodyError:
        """The same error without a traceback or context. A raised error keeps the frames it
        went through, and one of them holds the body it refused: an error kept for later (a
        request's :class:`~nanobanana_mock.pipeline.call.Call`) would keep that body alive in a
        reference cycle until a full collection, which the server makes rare (a soak of oversized
        bodies grew by 290 MB)."""
        return BodyError(self.kind, self.message)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


# a run of 19 digits: an integer orjson would turn into a float (every digit made a 0 first)
LONG_RUN = b"0" * 19
ZEROED = bytes.maketrans(b"123456789", b"000000000")

# MAX_JSON_DEPTH, the one nesting bound of every JSON the mock reads (a deeper body is refused
# with 413), and too_deep() are the contracts' (schemas.located), which read documents too.


MANY_CONTAINERS = 1_000
"""Above this many arrays and objects a body is parsed with the cyclic garbage collector
paused: it would otherwise run every 700 new containers and walk them all again, which made
a 256 KiB body of nested arrays take 50-250 ms to parse instead of 10 ms (JSON has no
cycles; what the collector has to do it does once, after)."""


def deep_error(limit: int = MAX_JSON_DEPTH) -> BodyError:
    return BodyError("too_deep", f"JSON nesting is deeper than {limit} levels")


def load_json(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for JSON read from outside that is not a request body (recordings,
    upstream answers): a ValueError when it nests deeper than ``limit`` levels."""
    if too_deep(raw, limit):
        raise ValueError(f"JSON nesting is deeper than {limit} levels")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nesting is too deep") from None


def check_body_headers(request: web.Request, max_bytes: int) -> None:
    """Refuse a body by its headers: not JSON, or announced larger than ``max_bytes``."""
    given = request.headers.get("Content-Type")
    if given != "application/json" and not _is_json(request.content_type):
        shown = given or "none"
        raise BodyError("content_type", f"Content-Type must be application/json, got {shown}")
    check_body_length(request, max_bytes)


def check_body_length(request: web.Request, max_bytes: int) -> None:
    """Refuse a body announced (``Content-Length``) larger than ``max_bytes``, unread."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise too_large(max_bytes)


def too_large(max_bytes: int) -> BodyError:
    return BodyError("too_large", f"request body exceeds {max_bytes} bytes")


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The body's bytes (decoded from any Content-Encoding), read once and stopped as soon
    as they pass ``max_bytes`` (a chunked body or a decompression bomb is never held
    whole). Every way the body can fail (a bad encoding, a broken chunk, the client gone,
    the body deadline) is a :class:`BodyError`.

    The standalone server reads bodies undecoded (``auto_decompress=False``): aiohttp's
    parser inflated everything received in one synchronous loop (a 300 KiB gzip bomb held
    the event loop 0.85 s before any size check). A gzip or deflate body is inflated here,
    :data:`INFLATE_STEP` bytes at a time, counted against ``max_bytes`` as it goes."""
    content = request.content
    inflater = _body_inflater(request)
    chunks: list[bytes] = []
    size = 0
    try:
        received = content.read_nowait() if content.is_eof() else await content.readany()
        while received:
            pending = received
            while pending:
                if inflater is None:
                    chunk, pending = pending, b""
                else:
                    chunk = inflater.decompress(pending, INFLATE_STEP)
                    pending = inflater.unconsumed_tail
                    if pending:
                        await asyncio.sleep(0)  # a long inflation lets other requests run
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(max_bytes)
                chunks.append(chunk)
            received = await content.readany()
        if inflater is not None and not inflater.eof and chunks:
            raise BodyError("payload", "request body could not be read: its encoding is cut")
    except BodyError:
        raise
    except zlib.error:
        raise BodyError("payload", "request body could not be read: bad Content-Encoding") from None
    except Exception as exc:  # aiohttp's payload and encoding errors, a lost connection
        raise BodyError("payload", f"request body could not be read: {_reason(exc)}") from None
    return b"".join(chunks)


INFLATE_STEP = 256 * 1024  # bytes of a compressed body inflated at once
UNREADABLE_ENCODINGS = frozenset({"br", "zstd"})


def _body_inflater(request: web.Request) -> Any:
    """A decompressor for a gzip or deflate body that aiohttp left encoded, else None
    (identity, an encoding aiohttp ignores, or a body aiohttp decoded: a test server)."""
    if getattr(request.content, "total_compressed_bytes", None) is not None:
        return None  # aiohttp's parser decoded it (a server started without serve_app)
    name = request.headers.get("Content-Encoding", "").strip().lower()
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=31)
    if name == "deflate":
        return _Deflate()
    if name in UNREADABLE_ENCODINGS:
        raise BodyError("payload", f"request body could not be read: {name} is not supported")
    return None


class _Deflate:
    """``deflate`` as aiohttp reads it: zlib-wrapped, or raw when the first byte says so."""

    def __init__(self) -> None:
        self._inner: Any = None

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._inner is None:
            self._inner = zlib.decompressobj(wbits=15 if data[0] & 0xF == 8 else -15)
        return bytes(self._inner.decompress(data, max_length))

    @property
    def unconsumed_tail(self) -> bytes:
        return bytes(self._inner.unconsumed_tail) if self._inner is not None else b""

    @property
    def eof(self) -> bool:
        return self._inner is not None and bool(self._inner.eof)


def _reason(exc: Exception) -> str:
    """One line about a payload error (aiohttp's messages span lines: "400, message: ...")."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.removeprefix("400, message: ")
    return text if len(text) <= 200 else text[:197] + "..."


def parse_body(raw: bytes, max_bytes: int) -> Any:
    """A body read whole, as parsed JSON (see :func:`parse_json`)."""
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    return parse_json(raw)


def _is_json(media_type: str) -> bool:
    return media_type in JSON_TYPES or media_type.endswith("+json")


def _may_hold_a_long_number(raw: bytes) -> bool:
    """A run of 19 digits or more: every digit made a 0, then a plain substring search
    (``re`` took 17 µs on the documentation's 1.8 KB body, whose image URLs hold many
    digits; this takes 2)."""
    return LONG_RUN in raw.translate(ZEROED)


def parse_json(raw: bytes) -> Any:
    """Strict JSON (UTF-8, no NaN or Infinity, finite numbers): orjson when it reads the body
    exactly as the standard library would, else the standard library, whose errors say
    where the body went wrong. Nesting deeper than :data:`MAX_JSON_DEPTH` is refused first."""
    containers = raw.count(b"[") + raw.count(b"{")  # at most: strings may hold some
    if containers > MAX_JSON_DEPTH and too_deep(raw):
        raise deep_error()
    if containers > MANY_CONTAINERS:
        collecting = gc.isenabled()
        gc.disable()
        try:
            return _parse_json(raw)
        finally:
            if collecting:
                gc.enable()
    return _parse_json(raw)


def _parse_json(raw: bytes) -> Any:
    if not _may_hold_a_long_number(raw):  # orjson reads big integers as floats
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard library accepts lone surrogates, and explains errors
    if not raw.strip():
        raise BodyError("json", "request body is empty; a JSON object is required")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError("json", f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise BodyError(
            "json", f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise BodyError("json", f"malformed JSON: {exc}") from None
    except RecursionError:  # only a malformed body gets here: a deep whole one is refused above
        raise BodyError("json", "JSON nesting is too deep") from None


# Where a control-plane or scenario body holds API keys: fields whose values are keys, and
# objects whose property names are keys (credits.keys). A problem there never shows a value.
SECRET_FIELDS = frozenset({"api_key", "api_keys", "key", "control_token"})
SECRET_MAPS = frozenset({"keys"})


def hide_secrets(violation: Violation) -> Violation:
    """A violation with no API key in it: a name under a :data:`SECRET_MAPS` object becomes
    its fingerprint, and a message about a value at or under a secret field says which rule
    it broke without the value."""
    secret = False
    shown: list[str | int] = []
    path = violation.path
    for index, part in enumerate(path):
        if index and path[index - 1] in SECRET_MAPS and isinstance(part, str):
            part = "fp:" + fingerprint(part)[:8]
        shown.append(part)
        secret = secret or part in SECRET_FIELDS or part in SECRET_MAPS
    if not secret:
        return violation
    rule = violation.rule[:40]
    message = f"breaks the schema's {rule} rule (the value, a secret, is not shown)"
    return Violation(pointer(shown), violation.rule, message, tuple(shown))  # no facts kept
