"""Recorded exchanges: the proxy writes them, a replay serves them.

One JSON line per exchange in ``<dir>/<provider>.jsonl``::

    {"provider", "operation", "method", "path", "query", "request_body", "status",
     "response_headers", "response_body", "encoding", "upstream", "t"}

``encoding`` says what ``response_body`` holds: ``json`` (the parsed body), ``base64`` (the
bytes, up to :data:`MAX_RECORDED_BYTES`) or ``omitted`` (larger bytes; ``null``). No request
header is recorded, and every occurrence of the request's API key in a string value is
replaced by ``[redacted]`` (in the parsed JSON, so every line stays valid JSON).
``upstream`` is the origin the answer came from, so a replay can point the URLs it hands
out at itself.

A :class:`Replay` answers a provider that has a file: same method, path and body; a sequence
of matching recordings is served in order, the last one repeated once exhausted (so a
recorded polling sequence replays).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from yarl import URL

from nanobanana_mock import schemas
from nanobanana_mock.schemas import Violation, is_valid

from ..config import ConfigError
from ..engine.clock import MAX_TIME, utc_stamp
from ..faults.rules import RequestFacts
from ..http import MAX_JSON_DEPTH, BodyError, load_json, local_path, origin
from ..pipeline.call import call_of
from ..providers.base import Provider

log = logging.getLogger("nanobanana_mock")

__all__ = [
    "MAX_RECORDED_BYTES",
    "Exchange",
    "Recorder",
    "Replay",
    "map_strings",
    "rebase",
    "redact_key",
    "under",
]

MAX_RECORDED_BYTES = 8 * 1024 * 1024
RECORD_DEPTH = MAX_JSON_DEPTH + 1  # a record holds bodies one level down; no deeper is read
REDACTED = "[redacted]"
RECORDED_HEADERS = frozenset({"content-type", "retry-after", "x-cost", "x-remaining-credits"})
RECORDED_PREFIXES = ("x-rate", "ratelimit")  # x-rate-limit-*, x-ratelimit-*, ratelimit-*
RESET_AT = "x-rate-limit-reset-at-utc"  # Segmind's: an instant, so rebased when replayed
# Never replayed as recorded: the replaying server frames its own answer (length, chunking,
# connection), and the recorded body is already decoded (so no Content-Encoding either).
FRAMING_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "content-encoding",
    }
)


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {change(k): map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    return value


def redact_key(value: Any, key: str | None) -> Any:
    """``value`` (parsed JSON, or a string) with every occurrence of ``key`` (plain or
    URL-encoded) inside its strings, member names included, replaced by ``[redacted]``.
    Structural: the JSON stays valid whatever the key is (short, a field name, a number's
    digits), and two names that redact alike are both kept (``[redacted]#2``)."""
    if not key:
        return value
    forms = sorted({key, quote(key, safe="")}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for form in forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return scrub(item)
        if isinstance(item, dict):
            out: dict[str, Any] = {}
            for name, member in item.items():
                new = base = scrub(name)
                number = 1
                while new != name and (new in out or new in item):  # keep both members
                    number += 1
                    new = f"{base}#{number}"
                out[new] = walk(member)
            return out
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def under(text: str, base: str) -> bool:
    """Is ``text`` a URL on origin ``base`` (not merely a string that starts like it)?"""
    return text == base or text.startswith((base + "/", base + "?"))


def rebase(value: Any, old: str, new: str) -> Any:
    """Point every URL under origin ``old`` at origin ``new``."""

    def change(text: str) -> str:
        return new + text[len(old) :] if under(text, old) else text

    return map_strings(value, change)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One proxied request and the upstream's answer, before redaction."""

    provider: str
    operation: str | None
    method: str
    path: str
    query: str
    request_body: Any  # parsed JSON, or None
    status: int
    headers: Mapping[str, str]
    body: bytes
    answer: Any  # parsed JSON answer, or None when the body is not JSON
    is_json: bool
    upstream: str


class Recorder:
    """Appends exchanges to ``<directory>/<provider>.jsonl``, keys redacted."""

    def __init__(self, directory: str | Path, max_body_bytes: int = MAX_RECORDED_BYTES) -> None:
        self.directory = Path(directory)
        self.max_body_bytes = max_body_bytes
        self.directory.mkdir(parents=True, exist_ok=True)

    def record(self, exchange: Exchange, key: str | None) -> None:
        # every string value is redacted structurally (redact_key), so the line is valid JSON
        record = self.line(exchange, key)
        if not is_valid("mock", "recording", record):
            # what --replay-dir would refuse at start-up (an upstream status of 999 or 304, a
            # path with a control character): one such line made the whole file unusable
            problems = "; ".join(str(p) for p in _record_problems(record)[:3])
            log.warning("not recorded (a replay could not serve it): %s", problems[:500])
            return
        line = json.dumps(record, separators=(",", ":"))
        with (self.directory / f"{exchange.provider}.jsonl").open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def line(self, exchange: Exchange, key: str | None) -> dict[str, Any]:
        body, encoding = self._body(exchange, key)
        headers = {
            name.lower(): value
            for name, value in exchange.headers.items()
            if name.lower() in RECORDED_HEADERS or name.lower().startswith(RECORDED_PREFIXES)
        }
        return {
            "provider": exchange.provider,
            "operation": exchange.operation,
            "method": exchange.method,
            "path": redact_key(exchange.path, key),
            "query": redact_key(exchange.query, key),
            "request_body": redact_key(exchange.request_body, key),
            "status": exchange.status,
            "response_headers": redact_key(headers, key),
            "response_body": body,
            "encoding": encoding,
            "upstream": exchange.upstream,
            "t": round(time.time(), 3),
        }

    def _body(self, exchange: Exchange, key: str | None) -> tuple[Any, str]:
        if exchange.is_json:
            return redact_key(exchange.answer, key), "json"
        if len(exchange.body) > self.max_body_bytes:
            return None, "omitted"
        data = exchange.body
        if key:
            data = data.replace(key.encode("utf-8", "surrogatepass"), REDACTED.encode())
        return base64.b64encode(data).decode("ascii"), "base64"


class Replay:
    """Answers the providers that have a recording in ``directory``."""

    def __init__(self, directory: str | Path, providers: Iterable[str]) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigError(f"{self.directory}: not a directory (--replay-dir)")
        self._recordings: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
        self._paths: dict[str, str] = {}  # recorded path -> provider
        self._cursor: Counter[tuple[str, str, str, str]] = Counter()
        self.providers = frozenset(p for p in providers if self._file(p).is_file())
        for provider in sorted(self.providers):
            self._load(provider)

    def _file(self, provider: str) -> Path:
        return self.directory / f"{provider}.jsonl"

    def _load(self, provider: str) -> None:
        path = self._file(provider)
        try:
            lines = path.read_bytes().split(b"\n")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                record = checked_record(raw, provider)
                body = canonical(record.get("request_body"))
                key = (provider, record["method"], record["path"], body)
            except ValueError as exc:
                raise ConfigError(f"{path}:{number}: {_one_line(str(exc))}") from None
            except RecursionError:
                raise ConfigError(f"{path}:{number}: nested too deeply") from None
            self._recordings.setdefault(key, []).append(record)
            self._paths.setdefault(record["path"], provider)

    def serves(self, provider: str) -> bool:
        return provider in self.providers

    def describe(self, provider: str) -> str:
        return f"replayed from {self._file(provider)}"

    def owner(self, path: str) -> str | None:
        return self._paths.get(path)

    def reset(self) -> None:
        """Start every recorded sequence again from its first answer."""
        self._cursor.clear()

    async def answer(
        self, request: web.Request, provider: Provider, facts: RequestFacts
    ) -> web.StreamResponse:
        body = await _json_body(request, provider)
        path = local_path(request)  # recordings hold paths without a /t/{tenant} prefix
        key = (provider.name, request.method, path, canonical(redact_key(body, facts.key)))
        records = self._recordings.get(key)
        if not records:
            raise provider.error(404, f"no recorded exchange matches {request.method} {path[:200]}")
        index = min(self._cursor[key], len(records) - 1)
        self._cursor[key] += 1
        return replayed(records[index], origin(request))


def checked_record(raw: bytes, provider: str) -> dict[str, Any]:
    """One line of ``<provider>.jsonl`` as a record the replay can serve exactly, or a
    ValueError saying why not: not UTF-8 or JSON, against ``schemas/mock/recording.json``
    (status 200..599, legal header names and values...), another provider's, a body that
    is not base64. Framing headers are dropped: the replaying server computes its own."""
    try:
        record = load_json(raw.decode("utf-8"), RECORD_DEPTH)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    problems = [] if is_valid("mock", "recording", record) else _record_problems(record)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise ValueError(f"not a recorded exchange: {problems[0]}{more}")
    if record["provider"] != provider:
        raise ValueError(f"a {record['provider']} exchange in the {provider} recording")
    if record["encoding"] == "base64":
        try:
            binascii.a2b_base64(record["response_body"], strict_mode=True)
        except binascii.Error as exc:
            raise ValueError(f"response_body: not base64: {exc}") from None
    headers = record.get("response_headers") or {}
    record["response_headers"] = {
        name: value for name, value in headers.items() if name.lower() not in FRAMING_HEADERS
    }
    try:  # served once now as it will be later: what cannot be served is refused at load
        replayed(record, "http://127.0.0.1")
    except RecursionError:
        raise ValueError("response_body: nested too deeply to replay") from None
    return dict(record)


def _record_problems(record: Any) -> list[Violation]:
    """Why a record breaks its schema (the slow validator explains; the fast one decides)."""
    return schemas.explain("mock", "recording", record) or [
        Violation("", "schema", "does not match schemas/mock/recording.json")
    ]


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def replayed(record: Mapping[str, Any], own_origin: str) -> web.Response:
    """A recorded answer, its upstream URLs pointed at this server and its reset-at at the
    same distance from now as it was from the recorded answer."""
    headers = dict(record.get("response_headers") or {})
    _reset_from_now(headers, record.get("t"))
    encoding = record["encoding"]
    if encoding == "json":
        answer = record["response_body"]
        upstream = record.get("upstream")
        if upstream:
            answer = rebase(answer, upstream, own_origin)
        data = json.dumps(answer, separators=(",", ":")).encode()
    elif encoding == "base64":
        data = base64.b64decode(record["response_body"])
    else:
        data = b""
    return web.Response(status=int(record["status"]), body=data, headers=headers)


def _reset_from_now(headers: dict[str, str], recorded_at: Any) -> None:
    """A replayed reset-at tells the wait the recorded one told, counted from now (as
    recorded, it lies in the past). One that does not parse is served as recorded."""
    name = next((n for n in headers if n.lower() == RESET_AT), None)
    if name is None or not isinstance(recorded_at, int | float):
        return
    try:
        reset = datetime.fromisoformat(headers[name].replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return
    wait = reset - recorded_at
    wait = min(wait, MAX_TIME) if wait >= 0 else 0.0  # NaN too
    headers[name] = utc_stamp(math.ceil(time.time() + wait))


async def _json_body(request: web.Request, provider: Provider) -> Any:
    """The body as JSON (None when it is none), read once through the request's call."""
    if not request.body_exists:
        return None
    try:
        raw = await call_of(request).raw(request, provider.state.config.max_body_bytes)
    except BodyError as err:
        raise provider.body_error(err) from None
    try:
        return load_json(raw)
    except ValueError:
        return None


def url_path(url: str) -> str:
    """The (decoded) path of a URL, as ``request.path`` gives it."""
    return URL(url).path
