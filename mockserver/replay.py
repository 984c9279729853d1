"""Recorded exchanges: the proxy writes them, a replay serves them.

One JSON line per exchange in ``<dir>/<provider>.jsonl``::

    {"provider", "operation", "method", "path", "query", "request_body", "status",
     "response_headers", "response_body", "encoding", "upstream", "t"}

``encoding`` says what ``response_body`` holds: ``json`` (the parsed body), ``base64`` (the
bytes, up to :data:`MAX_RECORDED_BYTES`) or ``omitted`` (larger bytes; ``null``). No request
header is recorded, and every occurrence of the request's API key is replaced by
``[redacted]``. ``upstream`` is the origin the answer came from, so a replay can point the
URLs it hands out at itself.

A :class:`Replay` answers a provider that has a file: same method, path and body; a sequence
of matching recordings is served in order, the last one repeated once exhausted (so a
recorded polling sequence replays).
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from yarl import URL

from .call import call_of
from .config import ConfigError
from .faults import RequestFacts
from .http import BodyError, origin
from .providers.base import Provider

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
REDACTED = "[redacted]"
RECORDED_HEADERS = frozenset({"content-type", "retry-after", "x-cost", "x-remaining-credits"})
RECORDED_PREFIXES = ("x-rate", "ratelimit")  # x-rate-limit-*, x-ratelimit-*, ratelimit-*
REQUIRED = ("provider", "method", "path", "status", "response_body", "encoding")


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
    """``value`` with every occurrence of ``key`` (plain or URL-encoded) redacted."""
    if not key:
        return value
    forms = sorted({key, quote(key, safe="")}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for form in forms:
            text = text.replace(form, REDACTED)
        return text

    return map_strings(value, scrub)


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
        line = json.dumps(self.line(exchange, key), separators=(",", ":"))
        if key and key in line:  # belt and braces: a key never reaches the disk
            line = line.replace(key, REDACTED)
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
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    missing = [name for name in REQUIRED if name not in record]
                except ValueError as exc:
                    raise ConfigError(f"{path}:{number}: not JSON: {exc}") from None
                if missing or record["provider"] != provider:
                    raise ConfigError(f"{path}:{number}: not a recorded {provider} exchange")
                match = (provider, record["method"], record["path"])
                key = (*match, canonical(record.get("request_body")))
                self._recordings.setdefault(key, []).append(record)
                self._paths.setdefault(record["path"], provider)

    def serves(self, provider: str) -> bool:
        return provider in self.providers

    def owner(self, path: str) -> str | None:
        return self._paths.get(path)

    def reset(self) -> None:
        """Start every recorded sequence again from its first answer."""
        self._cursor.clear()

    async def answer(
        self, request: web.Request, provider: Provider, facts: RequestFacts
    ) -> web.StreamResponse:
        body = await _json_body(request, provider)
        key = (provider.name, request.method, request.path, canonical(redact_key(body, facts.key)))
        records = self._recordings.get(key)
        if not records:
            raise provider.error(
                404, f"no recorded exchange matches {request.method} {request.path[:200]}"
            )
        index = min(self._cursor[key], len(records) - 1)
        self._cursor[key] += 1
        return replayed(records[index], origin(request))


def replayed(record: Mapping[str, Any], own_origin: str) -> web.Response:
    """A recorded answer, its upstream URLs pointed at this server."""
    headers = dict(record.get("response_headers") or {})
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


async def _json_body(request: web.Request, provider: Provider) -> Any:
    """The body as JSON (None when it is none), read once through the request's call."""
    if not request.body_exists:
        return None
    try:
        raw = await call_of(request).raw(request, provider.state.config.max_body_bytes)
    except BodyError as err:
        raise provider.body_error(err) from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def url_path(url: str) -> str:
    """The (decoded) path of a URL, as ``request.path`` gives it."""
    return URL(url).path
