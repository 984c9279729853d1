"""The pipeline around every provider request: journal, fault rules, rate limits, envelopes.

In order:
1. gather what rules match on;
2. open a journal entry;
3. fire fault rules (response latency, HTTP errors, transport faults before the handler; job
   effects are handed to the handler);
4. take a rate-limit token;
5. run the handler;
6. break the connection if a transport fault asks for it;
7. turn any failure into the provider's envelope;
8. with ``self_check``, validate the answer against its schema;
9. close the journal entry.

A provider served by a :class:`Source` (the validating proxy, a replay) gets the same steps,
with the source's answer in place of the simulated handler in step 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

import schemas

from .drift import apply_drift
from .faults import (
    TERMINAL_EFFECTS,
    Fired,
    RequestFacts,
    RuleError,
    job_effects,
    latency_seconds,
    prompt_rules,
)
from .http import ApiError, BodyError, fingerprint, json_response, problems_of, read_body
from .journal import MAX_ENTRY_FINDINGS, Entry, redact
from .providers.base import JOB_EFFECTS, NOTE, Provider
from .state import STATE, MockState

if TYPE_CHECKING:
    from conformance.report import Report

__all__ = [
    "DRIFT",
    "FORWARDED",
    "PROVIDERS",
    "SOURCES",
    "ContractViolation",
    "Source",
    "pipeline",
]

log = logging.getLogger("mockserver")

PROVIDERS: web.AppKey[dict[str, Provider]] = web.AppKey("providers", dict)
CONTROL_PREFIX = "/_mock/"
FILE_ROUTE = "mock.file"
GENERATE = frozenset({"submit", "sync_generate"})
IMAGE_ERRORS = frozenset({403, 404, 429, 500, 502, 503, 504})  # what a CDN may answer
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ContractViolation(AssertionError):
    """The mock answered something its own contract does not allow."""


class Source(Protocol):
    """Answers a provider's requests in place of its simulation (the proxy, a replay)."""

    def serves(self, provider: str) -> bool: ...

    def owner(self, path: str) -> str | None:
        """The provider behind a URL this source handed out (e.g. an output image)."""

    async def answer(
        self, request: web.Request, provider: Provider, facts: RequestFacts
    ) -> web.StreamResponse: ...

    def reset(self) -> None: ...


SOURCES: web.AppKey[list[Source]] = web.AppKey("mock_sources", list)
FORWARDED = web.RequestKey("mock_forwarded", bool)  # a source answered: not the mock's own body
DRIFT: web.AppKey[Report] = web.AppKey("mock_drift")  # the proxy's findings, when it is on


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_name = getattr(request.match_info.route, "name", None) or ""
    if request.path.startswith(CONTROL_PREFIX) and route_name != FILE_ROUTE:
        return await handler(request)  # the control plane guards itself
    state = request.app[STATE]
    provider, facts = await _facts(request, route_name, state)
    entry = state.journal.open(
        t=state.clock.now(),
        provider=facts.provider,
        operation=facts.operation,
        method=request.method,
        path=request.path[:500],
        key=redact(facts.key),
        key_id=fingerprint(facts.key) if facts.key else None,
        request_id=_request_id(request),
        model=facts.model,
    )
    response: web.StreamResponse | None = None
    try:
        response = await _serve(request, handler, provider, facts, entry, state)
        return response
    finally:
        _close_entry(request, entry, response)


async def _serve(
    request: web.Request,
    handler: Handler,
    provider: Provider | None,
    facts: RequestFacts,
    entry: Entry,
    state: MockState,
) -> web.StreamResponse:
    fired: list[Fired] = []
    last: Fired | None = None
    try:
        fired = _fire(provider, facts, state)
        entry.fault = ",".join(dict.fromkeys(f.rule_id for f in fired)) or None
        entry.effect = ",".join(dict.fromkeys(f.kind for f in fired)) or None
        if fired:
            request[JOB_EFFECTS] = job_effects(fired)
        for item in fired:
            if item.kind == "latency" and item.params.get("target", "response") == "response":
                await state.clock.sleep_until(state.clock.now() + latency_seconds(item))
        last = fired[-1] if fired and fired[-1].kind in TERMINAL_EFFECTS else None
        if last is not None and last.kind == "http_error" and provider is not None:
            p = last.params
            raise provider.fault_error(p["status"], p.get("message"), p.get("retry_after", 60.0))
        if last is not None and last.params.get("when", "after") == "before":
            return await _break(request, None, last.params)
        _take_token(provider, facts, state)
        response = await _answer(request, handler, provider, facts)
    except ApiError as err:
        response = err.response()
    except web.HTTPException as exc:
        response = _from_http_exception(provider, request, exc)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        message = "internal mock error; see the server log"
        error = provider.error(500, message) if provider else ApiError(500, {"error": message})
        response = error.response()
    drifts = [
        f.params
        for f in fired
        if f.kind == "drift" and _drifts_here(provider, facts.operation, response, f.params)
    ]
    if drifts:
        request[DRIFTED] = True
        response = apply_drift(response, drifts)
    if last is not None and last.kind == "transport":
        return await _break(request, response, last.params)
    if state.config.self_check:
        _self_check(request, provider, response)
    return response


async def _answer(
    request: web.Request, handler: Handler, provider: Provider | None, facts: RequestFacts
) -> web.StreamResponse:
    """The simulated handler, unless a source answers for this provider."""
    if provider is not None:
        for source in request.app.get(SOURCES, []):
            if source.serves(provider.name):
                request[FORWARDED] = True
                return await source.answer(request, provider, facts)
    return await handler(request)


def _fire(provider: Provider | None, facts: RequestFacts, state: MockState) -> list[Fired]:
    if provider is None:
        return []
    fired = state.faults.evaluate(facts, state.clock.now())
    if facts.operation in GENERATE:
        try:
            markers = prompt_rules(facts.prompt)
        except RuleError as err:
            raise provider.error(400, f"Invalid prompt marker: {err}") from None
        fired += [
            f for f in markers if f.kind != "http_error" or f.params["status"] in facts.declared
        ]
    terminal = [i for i, f in enumerate(fired) if f.kind in TERMINAL_EFFECTS]
    return fired[: terminal[0] + 1] if terminal else fired


def _drifts_here(
    provider: Provider | None,
    operation: str | None,
    response: web.StreamResponse,
    params: dict[str, Any],
) -> bool:
    """A drift edits the contract's normal answers (or those ``when_status`` names), never an
    error envelope."""
    if "when_status" in params:
        return response.status in params["when_status"]
    operations = provider.contract.api["operations"] if provider is not None else {}
    if operation not in operations:
        return response.status < 400
    spec = operations[operation]["responses"].get(str(response.status), {})
    return ("schema" in spec and spec["schema"] != "error") or "content_type" in spec


def _take_token(provider: Provider | None, facts: RequestFacts, state: MockState) -> None:
    if provider is None or not facts.key or not state.limiter.limits or 429 not in facts.declared:
        return
    wait = state.limiter.take(
        fingerprint(facts.key), facts.operation in GENERATE, state.clock.now()
    )
    if wait is not None:
        raise provider.fault_error(429, retry_after=wait)


async def _facts(
    request: web.Request, route_name: str, state: MockState
) -> tuple[Provider | None, RequestFacts]:
    """Who the request is for and what it asks about, read once (the body is cached)."""
    providers = request.app[PROVIDERS]
    provider: Provider | None = None
    operation: str | None = None
    model: str | None = None
    prompt: str | None = None
    declared: frozenset[int] = frozenset()
    if route_name == FILE_ROUTE:
        job = state.store.get(request.match_info["job_id"], state.clock.now())
        if job is not None:
            provider, operation, model = providers[job.provider], "image", job.model
            prompt = str(job.request.get("prompt", ""))
            declared = IMAGE_ERRORS
    else:
        provider = _owner(request, route_name, providers)
        if provider is not None:
            operation = route_name.partition(".")[2] or None
            declared = provider.declared_errors(operation)
            model = request.match_info.get("slug") or request.match_info.get("endpoint")
            if operation in provider.contract.api["operations"]:
                model = model or provider.contract.api["operations"][operation].get("model")
    if provider is None and (owner := _followed(request)) is not None:
        provider, operation, declared = providers[owner], "image", IMAGE_ERRORS
    # What only rules and prompt markers need is read only when they can use it: the hot
    # path of a mock without rules skips the body peek and the job lookup.
    body = await _peek_json(request, state, bool(state.faults.rules))
    if isinstance(body, dict) and isinstance(body.get("prompt"), str):
        prompt = body["prompt"]
    if state.faults.rules and provider is not None:
        request_id = request.match_info.get("request_id")
        if (
            request_id is None
            and isinstance(body, dict)
            and isinstance(body.get("request_id"), str)
        ):
            request_id = body["request_id"]
        job = state.store.get(request_id, state.clock.now()) if request_id else None
        if job is not None and job.provider == provider.name:
            model = job.model
            prompt = str(job.request.get("prompt", ""))
    key = provider.api_key(request) if provider is not None and operation != "image" else None
    return provider, RequestFacts(
        provider=provider.name if provider else None,
        operation=operation,
        method=request.method,
        key=key,
        model=model,
        prompt=prompt,
        headers=request.headers,
        declared=declared,
    )


async def _peek_json(request: web.Request, state: MockState, rules: bool) -> Any:
    """The body as JSON, when rules may match on it or it may carry a prompt marker, and it
    is small, JSON and readable; None otherwise (the handler reports what is wrong)."""
    if request.method not in ("POST", "PUT") or not request.can_read_body:
        return None
    length = request.content_length
    if length is not None and length > state.config.max_body_bytes:
        return None
    try:
        raw = await request.read()
        if not (rules or b"[mock:" in raw):
            return None
        return await read_body(request, state.config.max_body_bytes)  # the handler reuses it
    except (web.HTTPException, BodyError):
        return None


def _owner(
    request: web.Request, route_name: str, providers: dict[str, Provider]
) -> Provider | None:
    """The provider whose envelope this request gets: by route name, else by path prefix."""
    name = route_name.split(".")[0]
    if name in providers:
        return providers[name]
    for provider in providers.values():
        if request.path.startswith(provider.prefixes):
            return provider
    return None


def _followed(request: web.Request) -> str | None:
    """The provider of a URL a source handed out (an output image behind the proxy)."""
    for source in request.app.get(SOURCES, []):
        owner = source.owner(request.path)
        if owner is not None:
            return owner
    return None


def _request_id(request: web.Request) -> str | None:
    value = request.match_info.get("request_id") or request.match_info.get("job_id")
    return value[:200] if value else None


def _close_entry(request: web.Request, entry: Entry, response: web.StreamResponse | None) -> None:
    try:
        seen = request[NOTE]
    except KeyError:
        seen = {}
    entry.request_id = seen.get("request_id", entry.request_id)
    entry.model = seen.get("model", entry.model)
    entry.validation = seen.get("validation")
    entry.problems = seen.get("problems", [])
    entry.findings = seen.get("findings", [])[:MAX_ENTRY_FINDINGS]
    entry.status = None if response is None or BROKEN in request else response.status


# -- transport faults ------------------------------------------------------------------------

BROKEN = web.RequestKey("mock_broken", bool)  # the connection broke: no status reached the client
DRIFTED = web.RequestKey("mock_drifted", bool)  # a drift rule changed the answer on purpose


async def _break(
    request: web.Request, response: web.StreamResponse | None, params: dict[str, Any]
) -> web.StreamResponse:
    kind = params["kind"]
    seconds = float(params.get("seconds", 30.0))
    if kind == "malformed_json" and isinstance(response, web.Response):
        body = response.body if isinstance(response.body, bytes) else b"{}"
        return web.Response(
            status=response.status,
            body=body[: max(1, len(body) // 2)],
            content_type="application/json",
        )
    if kind in ("truncate", "slow_body") and isinstance(response, web.Response):
        body = response.body if isinstance(response.body, bytes) else b""
        stream = web.StreamResponse(status=response.status, headers=response.headers)
        stream.content_length = len(body)
        await stream.prepare(request)
        if kind == "truncate":
            await stream.write(body[: len(body) // 2])
        else:
            await _dribble(
                request, stream, body, float(params.get("bytes_per_second", 64)), seconds
            )
        _drop(request, reset=False)
        return stream
    if kind == "hang":
        await _wait_for_client(request, seconds)
    _drop(request, reset=kind == "reset")
    request[BROKEN] = True
    return web.Response(status=499)  # never sent: the connection is gone


async def _dribble(
    request: web.Request, stream: web.StreamResponse, body: bytes, rate: float, seconds: float
) -> None:
    """Send ``body`` at about ``rate`` bytes per wall second, for at most ``seconds``."""
    tick = 0.05
    chunk = max(1, int(rate * tick))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    for start in range(0, len(body), chunk):
        if loop.time() >= deadline or _gone(request):
            return
        await stream.write(body[start : start + chunk])
        await asyncio.sleep(tick)
    await stream.write_eof()


async def _wait_for_client(request: web.Request, seconds: float) -> None:
    """Send nothing for up to ``seconds`` of wall time, or until the client gives up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and not _gone(request):
        await asyncio.sleep(min(0.05, deadline - loop.time()))


def _gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _drop(request: web.Request, reset: bool) -> None:
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


# -- envelopes and self-check ----------------------------------------------------------------


def _from_http_exception(
    provider: Provider | None, request: web.Request, exc: web.HTTPException
) -> web.StreamResponse:
    if provider is not None and exc.status == 404:
        return provider.unknown_route(request).response()
    if provider is not None and exc.status == 405:
        error = provider.bad_method(request)
        if error.status == 405 and "Allow" in exc.headers:  # RFC 9110: say what is allowed
            error.headers["Allow"] = exc.headers["Allow"]
        return error.response()
    if provider is not None and exc.status == 413:
        return provider.error(413, "request body too large").response()
    if provider is not None and exc.status >= 400:
        return provider.error(exc.status, exc.reason).response()
    if exc.status >= 400:
        return json_response(exc.status, {"error": exc.reason})
    raise exc


def _self_check(
    request: web.Request, provider: Provider | None, response: web.StreamResponse
) -> None:
    """Validate a JSON response against the schema its operation names for its status."""
    if provider is None or request.get(BROKEN) or request.get(DRIFTED) or request.get(FORWARDED):
        return  # a broken, drifted or forwarded answer is not the mock's own mistake
    if not isinstance(response, web.Response):
        return
    if response.content_type != "application/json" or response.text is None:
        return
    route_name = getattr(request.match_info.route, "name", None) or ""
    operation = route_name.partition(".")[2]
    if route_name == FILE_ROUTE:
        schema: str | None = "error"
    elif operation in provider.contract.api["operations"]:
        schema = provider.contract.response_schema(operation, response.status)
    else:  # stray paths and methods answer with the provider's error envelope
        schema = "error"
    state = request.app[STATE]
    if schema is None:
        state.violations.append(f"{provider.name}.{operation} {response.status}")
        raise ContractViolation(
            f"{provider.name}.{operation} answered {response.status}, "
            "which its api.json does not list"
        )
    try:
        body = json.loads(response.text)
    except ValueError:
        return  # a malformed_json fault, on purpose
    problems = problems_of(schemas.validator(provider.name, schema), body)
    if problems:
        state.violations.append(f"{provider.name}.{operation} {response.status}")
        raise ContractViolation(
            f"{provider.name}.{operation} {response.status} breaks {schema}.json: "
            + "; ".join(map(str, problems))
            + f"\nbody: {response.text[:500]}"
        )
