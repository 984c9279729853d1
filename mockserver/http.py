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
import re
import zlib
from array import array
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any

import orjson
from aiohttp import web

from nanobanana_mock import schemas

from .engine.keys import fingerprint
from .names import did_you_mean
from .validation import MAX_PROBLEMS, explain

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_PROBLEMS",
    "MORE_PROBLEMS",
    "ApiError",
    "BodyError",
    "Problem",
    "check_body_headers",
    "check_body_length",
    "fingerprint",
    "hide_secrets",
    "json_response",
    "load_json",
    "origin",
    "parse_body",
    "parse_json",
    "problems_of",
    "read_body",
    "too_deep",
]

JSON_TYPES = ("application/json",)
MORE_PROBLEMS = "more_problems"  # the rule of the Problem that counts those not shown


class ApiError(Exception):
    """A provider-shaped error response, raised anywhere in a handler."""

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


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a request body broke its schema: where, which rule, and what was wrong."""

    loc: tuple[str | int, ...]
    rule: str
    message: str

    @property
    def where(self) -> str:
        return ".".join(str(part) for part in self.loc) or "body"

    def __str__(self) -> str:
        if self.rule == MORE_PROBLEMS:  # "... and 480 more problems" stands alone
            return self.message
        return f"{self.where}: {self.message}"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=dumps(body), content_type="application/json", headers=headers
    )


def dumps(body: Any) -> bytes:
    """Compact JSON bytes: orjson, or (for a lone surrogate a client sent, which orjson
    refuses) the standard library with ASCII escapes, which keeps it valid on the wire."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def origin(request: web.Request) -> str:
    """The scheme and authority the client used, so returned URLs lead back to this mock."""
    return _origin(request.scheme, request.host) or _fallback_origin(request)


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

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects in any JSON the mock reads from outside: provider and
control-plane bodies, scenario files, recordings, upstream answers. Real bodies nest 3 deep;
past a few hundred levels the standard library, orjson (which writes at most 254) and the
validators fail in ways a client could otherwise provoke. A deeper body is refused (413)."""
# a JSON string; a missing closing quote is a match too, so the search stays linear
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def too_deep(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects more than ``limit`` levels deep.

    Cheap on the hot path (fewer brackets than ``limit`` cannot nest deeper); otherwise
    strings are dropped and the deepest running count of open brackets is taken, in C
    (about 10 ms for 256 KiB of brackets). Linear on any input; text whose brackets do not
    balance is not JSON, and is left to the parser to refuse."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    # strings dropped, then +1 for an opener and -1 (0xff as a signed byte) for a closer
    steps = _JSON_STRING.sub(b"", data).translate(_STEPS, _NOT_BRACKETS)
    if steps.count(b"\x01") * 2 != len(steps):
        return False  # unbalanced: not JSON, which the parser says better
    leaves = steps.replace(b"\x01\xff", b"")  # empty innermost pairs: each path loses one level
    if len(leaves) < len(steps):
        steps, limit = leaves, limit - 1
    return bool(steps) and max(accumulate(array("b", steps))) > limit


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


def problems_of(validator: Any, instance: Any, limit: int = MAX_PROBLEMS) -> list[Problem]:
    """The schema violations of ``instance``, as :class:`Problem` s sorted by location: at
    most ``limit``, then one ``more_problems`` Problem counting the rest. Bounded in time
    and size whatever the instance (:func:`mockserver.validation.explain`)."""
    found = explain(validator, instance, limit)
    hint = _MOCK_SCHEMA in validator.schema.get("$id", "")  # the mock's own contracts
    problems: list[Problem] = []
    for error in found.errors:
        loc = tuple(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            for name in error.validator_value:
                if name not in error.instance:
                    problems.append(Problem((*loc, name), "required", "field required"))
            continue
        if error.validator == "additionalProperties" and hint and isinstance(error.instance, dict):
            for message in _unknown_keys(error):
                problems.append(Problem(*hide_secrets(loc, "additionalProperties", message)))
            continue
        problems.append(Problem(*hide_secrets(loc, str(error.validator), _message(error, hint))))
    shown = sorted(problems, key=lambda p: (tuple(map(str, p.loc)), p.rule))[:limit]
    tail = found.tail(len(problems) - len(shown))
    if tail is not None:
        shown.append(Problem((), MORE_PROBLEMS, tail))
    return shown


# Where a control-plane or scenario body holds API keys: fields whose values are keys, and
# objects whose property names are keys (credits.keys). A problem there never shows a value.
SECRET_FIELDS = frozenset({"api_key", "api_keys", "key", "control_token"})
SECRET_MAPS = frozenset({"keys"})


def hide_secrets(
    loc: tuple[str | int, ...], rule: str, message: str
) -> tuple[tuple[str | int, ...], str, str]:
    """A problem's location, rule and message with no API key in them: a name under a
    :data:`SECRET_MAPS` object becomes its fingerprint, and a message about a value at or
    under a secret field says which rule it broke without the value."""
    secret = False
    shown: list[str | int] = []
    for index, part in enumerate(loc):
        if index and loc[index - 1] in SECRET_MAPS and isinstance(part, str):
            part = "fp:" + fingerprint(part)[:8]
        shown.append(part)
        secret = secret or part in SECRET_FIELDS or part in SECRET_MAPS
    if secret:
        message = f"breaks the schema's {rule[:40]} rule (the value, a secret, is not shown)"
    return tuple(shown), rule, message


_MOCK_SCHEMA = "/schemas/mock/"  # in the $id of the mock's own contracts (rules, scenarios)


def _unknown_keys(error: Any) -> list[str]:
    """``unknown key 'methd' (did you mean 'method'?); allowed: ...`` for each key of an
    object that its schema does not name (nor match with a ``patternProperties`` pattern)."""
    known = list(error.schema.get("properties", {}))
    patterns = list(error.schema.get("patternProperties", {}))
    allowed = f"; allowed: {', '.join(known)}" if known else ""
    return [
        f"unknown key {_short(key)}{did_you_mean(key, known)}{allowed}"
        for key in list(error.instance)[:MAX_PROBLEMS]
        if key not in known and not any(schemas.search(p, key) for p in patterns)
    ]


def _message(error: Any, hint: bool = False) -> str:
    """One problem in words; ``hint``: an unknown name suggests the closest allowed one (on the
    mock's own contracts only: a provider's answers keep the provider's plain wording)."""
    rule = error.validator
    value = error.validator_value
    if rule == "enum":
        close = did_you_mean(error.instance, map(str, value)) if hint else ""
        return f"{_short(error.instance)} is not one of {', '.join(map(str, value))}{close}"
    if rule == "maxItems":
        return f"at most {value} items allowed, got {len(error.instance)}"
    if rule == "minItems":
        return f"at least {value} items required, got {len(error.instance)}"
    if rule == "maxLength":
        return f"at most {value} characters allowed, got {len(error.instance)}"
    if rule == "minLength":
        return f"at least {value} characters required, got {len(error.instance)}"
    if rule == "type":
        return f"must be of type {value}, got {type(error.instance).__name__}"
    if rule in ("minimum", "maximum"):
        return (
            f"must be {'>=' if rule == 'minimum' else '<='} {value}, got {_short(error.instance)}"
        )
    if rule == "pattern":
        return f"{_short(error.instance)} is not a valid value (must match {value})"
    return error.message if len(error.message) < 300 else error.message[:297] + "..."


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
