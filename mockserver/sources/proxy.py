"""The validating proxy: real traffic through the mock's pipeline, checked against the contracts.

For a provider named in ``--proxy``, the pipeline runs as for a simulated one (facts, journal,
fault rules, rate limits), then :meth:`Proxy.answer` forwards the request to the live origin
in place of the simulated handler, and checks what went each way:
- the request body against the operation's request schema;
- the answer against ``response_findings`` (HTTP code and body);
- the lifecycle of each request id across the answers seen so far.

Findings go to the journal entry and to the app's drift report (``GET /_mock/drift``). URLs in
JSON answers that point at the upstream are rewritten to point at the mock, so a client that
follows them stays on it; the mock remembers them (bounded) to forward those requests too.
A provider with real ``hosts`` (fal) and a real host as upstream is forwarded in its real
layout (``schemas.hosts``: ``/fal/run/…`` to ``https://fal.run/…``), and URLs on its real
hosts come back under the mock's prefix for them.

Errors: a failure to reach or read the upstream (``aiohttp.ClientError``, a timeout, an answer
larger than ``proxy_max_response_bytes``) becomes the provider's own 502, here and only here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import zlib
from collections import OrderedDict
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from nanobanana_mock import schemas
from nanobanana_mock.schemas import hosts
from nanobanana_mock.schemas.checks import (
    BREAKING,
    Finding,
    response_findings,
    schema_findings,
    transition_findings,
)
from nanobanana_mock.schemas.report import Report

from ..config import ConfigError, MockConfig
from ..faults.rules import RequestFacts
from ..http import BodyError, load_json, local_path, local_raw_path, origin
from ..pipeline.call import call_of, note
from ..providers.base import Provider
from .replay import Exchange, Recorder, map_strings, redact_key, under, url_path

__all__ = ["Proxy", "Report"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect", "accept-encoding"}
NOT_RELAYED = HOP_BY_HOP | {"content-length", "content-encoding"}  # the proxy decodes the body
ACCEPTED_ENCODINGS = "gzip, deflate"  # decoded by the proxy, a bounded step at a time
INFLATE_STEP = 256 * 1024  # bytes inflated at once: a gzip bomb cannot hold the event loop
LIFECYCLE_OPERATIONS = frozenset({"submit", "status", "result", "poll"})
LIFECYCLE_SCHEMAS = frozenset({"submit", "status", "result"})  # bodies whose status is a state
MAX_FOLLOWED = 10_000  # rewritten URL paths remembered
MAX_TRACKED = 10_000  # request ids whose lifecycle is followed
MAX_STATUSES = 32  # distinct statuses kept per request id
# Upstream answers held at once, in bytes, across concurrent proxied requests (each is also
# parsed, checked and recorded while held): a hundred slow 64 MiB answers would otherwise
# hold 6 GiB. A request that would go past it gets the provider's 502. Never below one
# answer of ``proxy_max_response_bytes``.
MAX_HELD_BYTES = 256 * 1024 * 1024


class Proxy:
    """Forwards the providers of ``config.proxy`` to their live origins; one per app."""

    def __init__(self, config: MockConfig, report: Report, recorder: Recorder | None) -> None:
        unknown = set(config.proxy) - set(schemas.PROVIDERS)
        if unknown:
            raise ConfigError(f"proxy: unknown provider(s) {', '.join(sorted(unknown))}")
        self.upstreams = {name: str(URL(url).origin()) for name, url in config.proxy.items()}
        # those forwarded in their real layout (fal's real hosts as upstream), known at start-up
        self.real_layout = {
            name
            for name, up in self.upstreams.items()
            if hosts.layout(schemas.load(name, "api"), up) is not None
        }
        self.timeout = aiohttp.ClientTimeout(total=config.proxy_timeout)
        self.max_response = config.proxy_max_response_bytes
        self.report = report
        self.recorder = recorder
        self.session: aiohttp.ClientSession | None = None
        self._followed: OrderedDict[str, str] = OrderedDict()
        self._lifecycles: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self.max_held = max(MAX_HELD_BYTES, self.max_response)
        self.held = 0  # bytes of upstream answers being read or answered now

    async def start(self, app: web.Application) -> None:
        # aiohttp would inflate a compressed answer a network chunk at a time: 64 KiB of a
        # gzip bomb are 64 MiB, held and inflated on the event loop in one call (220 ms).
        # The proxy inflates it itself, in bounded steps, counting against the size limit.
        self.session = aiohttp.ClientSession(timeout=self.timeout, auto_decompress=False)

    async def close(self, app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    # -- the Source protocol -------------------------------------------------------------------
    def serves(self, provider: str) -> bool:
        return provider in self.upstreams

    def describe(self, provider: str) -> str:
        told = f"proxied to {self.upstreams[provider]}"  # an origin: never a user or password
        if self.recorder is not None:
            told += f", recorded to {self.recorder.directory / f'{provider}.jsonl'}"
        return told

    def owner(self, path: str) -> str | None:
        return self._followed.get(path)

    def reset(self) -> None:
        """Nothing to forget: the upstream's jobs outlive a reset of the mock."""

    async def answer(
        self, request: web.Request, provider: Provider, facts: RequestFacts
    ) -> web.StreamResponse:
        upstream = self.upstreams[provider.name]
        try:  # the body the pipeline may have read already, read once
            sent = await call_of(request).raw(
                request, provider.state.config.max_body_bytes, any_type=True
            )
        except BodyError as err:
            raise provider.body_error(err) from None
        held = [0]  # what this request holds of ``self.held``
        try:
            return await self._answer(request, provider, facts, upstream, sent, held)
        finally:
            self.held -= held[0]

    async def _answer(
        self,
        request: web.Request,
        provider: Provider,
        facts: RequestFacts,
        upstream: str,
        sent: bytes,
        held: list[int],
    ) -> web.StreamResponse:
        status, headers, data = await self._forward(request, provider, upstream, sent, held)
        answer, is_json = _parse(headers.get("Content-Type", ""), data)
        exchange = Exchange(
            provider=provider.name,
            operation=facts.operation,
            method=request.method,
            path=local_path(request),
            query=request.query_string,
            request_body=_json_or_none(sent),
            status=status,
            headers=headers,
            body=data,
            answer=answer,
            is_json=is_json,
            upstream=upstream,
        )
        # what the proxy keeps and reports (findings, journal, drift report and its files)
        # never holds the caller's key, even when the upstream echoes it
        checked = dataclasses.replace(
            exchange,
            request_body=redact_key(exchange.request_body, facts.key),
            answer=redact_key(answer, facts.key),
        )
        self._check(request, provider, facts, checked, sent)
        if self.recorder is not None:
            self.recorder.record(exchange, facts.key)
        own = origin(request)
        api = schemas.load(provider.name, "api")
        real = provider.name in self.real_layout  # fal's real hosts: under their prefixes

        def rebase(text: str) -> str:
            moved = hosts.to_mock(api, text, own) if real else None
            return moved or self._rebase(provider.name, upstream, own, text)

        if is_json and (rebased := map_strings(answer, rebase)) != answer:
            data = json.dumps(rebased, separators=(",", ":")).encode()
        if "Location" in headers:
            headers["Location"] = rebase(headers["Location"])
        return web.Response(status=status, body=data, headers=headers)

    # -- forwarding ----------------------------------------------------------------------------
    async def _forward(
        self,
        request: web.Request,
        provider: Provider,
        upstream: str,
        body: bytes,
        held: list[int],
    ) -> tuple[int, CIMultiDict[str], bytes]:
        """Send the request upstream; the answer's status, relayable headers and body."""
        assert self.session is not None, "the proxy's session starts with the app"
        path = local_raw_path(request)
        if provider.name in self.real_layout:  # fal: /fal/queue/… goes to queue.fal.run/…
            url = URL(hosts.url(schemas.load(provider.name, "api"), upstream, path), encoded=True)
        else:
            url = URL(upstream + path, encoded=True)
        headers = _without(request.headers, NOT_FORWARDED)
        headers["Accept-Encoding"] = ACCEPTED_ENCODINGS
        try:
            async with self.session.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False
            ) as resp:
                data = await self._read_limited(resp, held)
                relayed = _without(resp.headers, NOT_RELAYED)
                status = resp.status
        except _BadEncoding as exc:
            raise provider.fault_error(502, f"upstream {upstream} failed: {exc}") from None
        except _Busy:
            raise provider.fault_error(
                502, f"the proxy holds {self.max_held} bytes of upstream answers already; retry"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = type(exc).__name__
            raise provider.fault_error(502, f"upstream {upstream} failed: {reason}") from exc
        if data is None:
            raise provider.fault_error(502, f"upstream answer exceeds {self.max_response} bytes")
        return status, relayed, data

    async def _read_limited(self, resp: aiohttp.ClientResponse, held: list[int]) -> bytes | None:
        """The whole body; None if it is larger than ``proxy_max_response_bytes``; raises
        :class:`_Busy` if reading it would hold more than ``max_held`` bytes of answers."""
        limit = self.max_response
        if resp.content_length is not None and resp.content_length > limit:
            return None
        inflater = _inflater(resp.headers.get("Content-Encoding", ""))
        chunks: list[bytes] = []
        size = 0
        async for received in resp.content.iter_chunked(64 * 1024):
            pending = received
            while pending:
                if inflater is None:
                    chunk, pending = pending, b""
                else:
                    try:
                        chunk = inflater.decompress(pending, INFLATE_STEP)
                    except zlib.error:
                        raise _BadEncoding("its compressed answer is corrupt") from None
                    pending = inflater.unconsumed_tail
                    if pending:
                        await asyncio.sleep(0)  # a long inflation lets other requests run
                size += len(chunk)
                if size > limit:
                    return None
                if self.held + len(chunk) > self.max_held:
                    raise _Busy
                self.held += len(chunk)
                held[0] += len(chunk)
                chunks.append(chunk)
        if inflater is not None and not inflater.eof:
            raise _BadEncoding("its compressed answer is cut short")
        return b"".join(chunks)

    def _rebase(self, provider: str, upstream: str, own: str, text: str) -> str:
        """``text`` pointed at this mock if it is a URL under ``upstream`` (remembered)."""
        if not under(text, upstream):
            return text
        rebased = own + text[len(upstream) :]
        path = url_path(text)  # as the provider sees it: with no /t/{tenant} prefix
        self._followed.pop(path, None)
        self._followed[path] = provider
        if len(self._followed) > MAX_FOLLOWED:
            self._followed.popitem(last=False)
        return rebased

    # -- validation ----------------------------------------------------------------------------
    def _check(
        self,
        request: web.Request,
        provider: Provider,
        facts: RequestFacts,
        exchange: Exchange,
        sent: bytes,
    ) -> None:
        """Validate both ways; findings to the journal entry and the drift report."""
        operation = facts.operation
        operations = provider.contract.api["operations"]
        if operation is None or operation not in operations:
            return  # an output image or a route the contract does not know
        spec = operations[operation]
        label = f"{spec['method']} {spec['path']}"
        status, answer = exchange.status, exchange.answer
        found = self._request_findings(request, provider, facts, exchange.request_body, sent, label)
        found += self._response_findings(provider, operation, exchange, label)
        request_id = redact_key(_request_id(request, exchange.request_body, answer), facts.key)
        if request_id is not None:
            note(request, request_id=request_id[:200])
            found += self._lifecycle(provider, operation, status, answer, request_id, label)
        found = [_without_key(f, facts.key) for f in found]
        self.report.checked(provider.name)
        self.report.add(found)
        note(request, findings=[f.to_dict() for f in found])

    def _request_findings(
        self,
        request: web.Request,
        provider: Provider,
        facts: RequestFacts,
        body: Any,
        sent: bytes,
        label: str,
    ) -> list[Finding]:
        schema = self._request_schema(provider, facts)
        if schema is None:
            return []
        operation = str(facts.operation)
        if body is None:
            note(request, validation="invalid", problems=["the body is not JSON"])
            observed = "an empty body" if not sent.strip() else "a body that is not JSON"
            finding = Finding(
                provider.name, operation, label, "", "a JSON body", observed, BREAKING, "request"
            )
            return [finding]
        problems = schemas.explain(provider.name, schema, body)  # a client's body: bounded
        note(request, validation="invalid" if problems else "ok", problems=list(map(str, problems)))
        if not problems:
            return []
        return schema_findings(
            provider.name,
            schema,
            body,
            operation=operation,
            request=label,
            check="request",
            violations=problems,
        )

    @staticmethod
    def _request_schema(provider: Provider, facts: RequestFacts) -> str | None:
        """The schema of the operation's request body: the model's, a named one, or none."""
        kind: str | None = provider.contract.api["operations"][facts.operation].get("request")
        if kind != "model":
            return kind
        model = provider.model(facts.model) if facts.model else None
        if model is None:
            return None  # the upstream says 404
        return provider.model_schema(str(facts.operation), model)  # fal's /edit: its .edit

    @staticmethod
    def _response_findings(
        provider: Provider, operation: str, exchange: Exchange, label: str
    ) -> list[Finding]:
        status, answer = exchange.status, exchange.answer
        schema = provider.contract.response_schema(operation, status)
        if schema is not None and not exchange.is_json:
            return [
                Finding(
                    provider.name,
                    operation,
                    label,
                    "",
                    f"a JSON body ({schema}.json)",
                    "a body that is not JSON",
                    BREAKING,
                )
            ]
        return response_findings(provider.name, operation, status, answer, request=label)

    def _lifecycle(
        self,
        provider: Provider,
        operation: str,
        status: int,
        answer: Any,
        request_id: str,
        label: str,
    ) -> list[Finding]:
        """A transition finding if this answer's status may not follow the ones seen before
        for the same request id."""
        if (
            operation not in LIFECYCLE_OPERATIONS
            or provider.contract.response_schema(operation, status) not in LIFECYCLE_SCHEMAS
            or not isinstance(answer, dict)
            or not isinstance(answer.get("status"), str)
        ):
            return []
        key = (provider.name, request_id)
        seen = self._lifecycles.pop(key, [])
        self._lifecycles[key] = seen
        if len(self._lifecycles) > MAX_TRACKED:
            self._lifecycles.popitem(last=False)
        if (seen and seen[-1] == answer["status"]) or len(seen) >= MAX_STATUSES:
            return []
        seen.append(answer["status"])
        last = f"/{len(seen) - 1}"
        found = transition_findings(
            provider.name, seen, request=f"{label} ({request_id})", operation=operation
        )
        return [f for f in found if f.pointer == last]


def _without_key(finding: Finding, key: str | None) -> Finding:
    """``finding`` with the key redacted in every text field (a path id may be anything)."""
    if not key:
        return finding
    texts = {
        f.name: redact_key(getattr(finding, f.name), key)
        for f in dataclasses.fields(finding)
        if isinstance(getattr(finding, f.name), str)
    }
    return dataclasses.replace(finding, **texts)


def _without(headers: CIMultiDictProxy[str], dropped: frozenset[str]) -> CIMultiDict[str]:
    """Headers minus ``dropped`` and minus those the Connection header names."""
    named = {t.strip().lower() for t in headers.get("Connection", "").split(",") if t.strip()}
    return CIMultiDict(
        (name, value)
        for name, value in headers.items()
        if name.lower() not in dropped and name.lower() not in named
    )


class _BadEncoding(Exception):
    """An upstream answer in an encoding the proxy does not take, or corrupt."""


def _inflater(encoding: str) -> Any:
    """A zlib decompressor for a ``gzip`` or ``deflate`` (zlib) answer; None for none;
    :class:`_BadEncoding` for any other (the proxy asks for these two only)."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(wbits=47)  # 32 + 15: a gzip or zlib header, detected
    raise _BadEncoding(f"its answer has an encoding the proxy cannot read ({name[:40]})")


class _Busy(Exception):
    """The proxy holds too many bytes of upstream answers at once."""


def _parse(content_type: str, data: bytes) -> tuple[Any, bool]:
    """(the JSON answer, True), or (None, False) for a body that is not JSON."""
    kind = content_type.split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        return None, False
    try:
        return load_json(data), True  # nested deeper than MAX_JSON_DEPTH: "not JSON"
    except ValueError:
        return None, False


def _json_or_none(data: bytes) -> Any:
    if not data.strip():
        return None
    try:
        return load_json(data)
    except ValueError:
        return None


def _request_id(request: web.Request, request_body: Any, answer: Any) -> str | None:
    """The id the exchange is about: in the path, the body (Pixazo), or the submit answer."""
    for found in (
        request.match_info.get("request_id"),
        request_body.get("request_id") if isinstance(request_body, dict) else None,
        answer.get("request_id") if isinstance(answer, dict) else None,
    ):
        if isinstance(found, str) and found:
            return found
    return None
