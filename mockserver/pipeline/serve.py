"""The pipeline around every provider request: journal, fault rules, rate limits, envelopes.

Each provider route's handler is wrapped in it when the app is built (:meth:`Pipeline.wrap`),
and so is a catch-all route that answers stray paths and methods in the provider's envelope.
There is no aiohttp middleware: a middleware costs every request two extra coroutine layers.

In order:
1. open a journal entry;
2. gather what rules match on, only when there are rules, rate limits or sources to use it,
   or the body of a generation call carries a prompt marker;
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
import functools
import json
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import HttpVersion11, web

from nanobanana_mock import schemas

from ..engine.clock import ClockStopped, VirtualClock
from ..engine.journal import Entry, capped
from ..faults.drift import apply_drift
from ..faults.markers import may_hold_marker, prompt_rules
from ..faults.rules import (
    TERMINAL_EFFECTS,
    Fired,
    RequestFacts,
    RuleError,
    job_effects,
    latency_seconds,
)
from ..http import (
    MAX_PROBLEMS,
    ApiError,
    BodyError,
    Problem,
    fingerprint,
    json_response,
    problems_of,
)
from ..names import GENERATE, IMAGE, IMAGE_ERRORS
from ..providers.base import Provider
from ..state import MockState
from ..validation import is_valid
from .call import CALL, Call

if TYPE_CHECKING:
    from nanobanana_mock.schemas.report import Report

__all__ = [
    "DRIFT",
    "PROVIDERS",
    "SOURCES",
    "ContractViolation",
    "Pipeline",
    "Source",
]

log = logging.getLogger("nanobanana_mock")

PROVIDERS: web.AppKey[dict[str, Provider]] = web.AppKey("providers", dict)
STRAY = "mock.stray"  # the catch-all route's name
CONTROL_STRAY = "control.stray"  # the control plane's catch-all route
CATCH_ALLS = frozenset({STRAY, CONTROL_STRAY})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ContractViolation(AssertionError):
    """The mock answered something its own contract does not allow."""


class Source(Protocol):
    """Answers a provider's requests in place of its simulation (the proxy, a replay)."""

    def serves(self, provider: str) -> bool: ...

    def describe(self, provider: str) -> str:
        """How it answers ``provider``, as the start-up banner says it."""

    def owner(self, path: str) -> str | None:
        """The provider behind a URL this source handed out (e.g. an output image)."""

    async def answer(
        self, request: web.Request, provider: Provider, facts: RequestFacts
    ) -> web.StreamResponse: ...

    def reset(self) -> None: ...


SOURCES: web.AppKey[list[Source]] = web.AppKey("mock_sources", list)
DRIFT: web.AppKey[Report] = web.AppKey("mock_drift")  # the proxy's findings, when it is on


class Target:
    """What a request is for: its provider, operation and the error codes its contract
    declares. Fixed per route; for images and stray paths, one of a few made at start-up."""

    __slots__ = ("declared", "operation", "provider")

    def __init__(
        self, provider: Provider | None, operation: str | None, declared: frozenset[int]
    ) -> None:
        self.provider = provider
        self.operation = operation
        self.declared = declared


NOWHERE = Target(None, None, frozenset())


Locate = Callable[[web.Request], tuple[Target, str | None, str | None]]  # target, model, id


class Pipeline:
    """The steps above, for one app: its state, providers and sources."""

    def __init__(
        self, state: MockState, providers: dict[str, Provider], sources: list[Source]
    ) -> None:
        self.state = state
        self.providers = providers
        self.sources = sources
        self._images = {name: Target(p, IMAGE, IMAGE_ERRORS) for name, p in providers.items()}
        self._strays = [(p.prefixes, Target(p, None, frozenset())) for p in providers.values()]
        self._locates: dict[Handler, Locate] = {}  # each guarded handler's, for expect()

    # -- the routes --------------------------------------------------------------------------
    def wrap(self, provider: Provider, route: web.RouteDef) -> web.RouteDef:
        """A provider route with its handler behind the pipeline."""
        operation = str(route.kwargs["name"]).partition(".")[2]
        target = Target(provider, operation, provider.declared_errors(operation))
        spec = provider.contract.api["operations"].get(operation, {})
        model_param = next((p for p in ("slug", "endpoint") if f"{{{p}}}" in route.path), None)
        default_model = spec.get("model")
        id_param = "request_id" if "{request_id}" in route.path else None

        def fixed(request: web.Request) -> tuple[Target, str | None, str | None]:
            match = request.match_info
            model = (match[model_param] if model_param else None) or default_model
            return target, model, match[id_param][:200] if id_param else None

        handler = self.guard(route.handler, fixed)  # type: ignore[arg-type]
        kwargs = {**route.kwargs, "expect_handler": self.expect}
        return web.RouteDef(route.method, route.path, handler, kwargs)

    def file_handler(self, handler: Handler) -> Handler:
        """The output-image route: its provider is the job's (none for an unknown job)."""

        def image(request: web.Request) -> tuple[Target, str | None, str | None]:
            job_id = request.match_info["job_id"]
            job = self.state.store.get(job_id, self.state.clock.now())
            if job is None:
                return self._followed(request) or NOWHERE, None, job_id[:200]
            return self._images[job.provider], job.model, job_id[:200]

        return self.guard(handler, image)

    def plain_handler(self, handler: Handler) -> Handler:
        """A route of no provider outside the control plane (the index): journaled only."""
        return self.guard(handler, lambda request: (NOWHERE, None, None))

    def stray_handler(self) -> Handler:
        """The catch-all route: a path or method no route takes, answered in the envelope of
        the provider whose prefix it is under (or whose source handed the URL out)."""

        def stray(request: web.Request) -> tuple[Target, str | None, str | None]:
            for prefixes, target in self._strays:
                if request.path.startswith(prefixes):
                    return target, None, None
            return self._followed(request) or NOWHERE, None, None

        return self.guard(_not_routed, stray)  # /_mock/ has a catch-all of its own

    def _followed(self, request: web.Request) -> Target | None:
        """An output image behind a URL a source handed out (the proxy rewrites them)."""
        for source in self.sources:
            owner = source.owner(request.path)
            if owner is not None:
                return self._images[owner]
        return None

    def guard(self, handler: Handler, locate: Locate) -> Handler:
        """``handler`` behind the pipeline; ``locate`` says what a request is for. (A partial
        of a coroutine method is itself a coroutine function, with one frame fewer than a
        closure that awaits.)"""
        guarded = functools.partial(self._serve, handler, locate)
        self._locates[guarded] = locate
        return guarded

    async def expect(self, request: web.Request) -> web.StreamResponse | None:
        """aiohttp's hook for a request with an ``Expect`` header, on every route.

        ``100-continue`` asks to be told to send the body: it is, unless the body announced
        is larger than ``--max-body-bytes`` (the handler then answers 413 by the headers,
        and the client never uploads it). Any other expectation cannot be met: the
        operation's 400 in the provider's envelope where its contract declares one (every
        POST and PUT); an operation without a body to expect anything of is served as if the
        header were absent; a route of no provider answers a JSON 417 (RFC 9110)."""
        if request.version != HttpVersion11:
            return None
        value = request.headers.get("Expect", "")
        if value.lower() == "100-continue":
            length = request.content_length
            if length is None or length <= self.state.config.max_body_bytes:
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0  # the answer proper has not started
            return None
        message = f"Expect: {value[:100]} cannot be met; only 100-continue is supported"
        locate = self._locates.get(request.match_info.handler)
        if locate is None:  # the control plane and the mock's own pages
            return json_response(417, {"error": message})
        target = locate(request)[0]
        provider = target.provider
        if provider is not None and 400 not in target.declared:
            return None

        async def unmet(request: web.Request) -> web.StreamResponse:
            if provider is None:
                raise ApiError(417, {"error": message})
            raise provider.error(400, message)

        return await self._serve(unmet, locate, request)

    # -- the steps ---------------------------------------------------------------------------
    async def _serve(
        self, handler: Handler, locate: Locate, request: web.Request
    ) -> web.StreamResponse:
        state = self.state
        target, model, request_id = locate(request)
        provider = target.provider
        key = (
            provider.api_key(request)
            if provider is not None and target.operation != "image"
            else None
        )
        entry = state.journal.open(
            state.clock.now(),
            provider.name if provider is not None else None,
            target.operation,
            request.method,
            request.path[:500],
            key,
            request_id,
            model,
        )
        call = request[CALL] = Call(entry, key)
        response: web.StreamResponse | None = None
        try:
            try:
                if provider is not None and (
                    state.faults.rules
                    or state.limiter
                    or self.sources
                    or (
                        target.operation in GENERATE
                        and may_hold_marker(await _raw(request, call, state.config.max_body_bytes))
                    )
                ):
                    response = await self._with_rules(request, handler, target, model, call)
                else:
                    response = await handler(request)
            except Exception as exc:  # every failure gets an envelope
                response = _envelope(provider, request, exc)
            if call.close:  # the body was not read to its end: no next request can follow
                response.force_close()
            if state.config.self_check and entry.status != BROKEN:
                _self_check(target, call, response)
            return response
        finally:
            broken = response is None or entry.status == BROKEN
            entry.status = None if broken else response.status

    async def _with_rules(
        self,
        request: web.Request,
        handler: Handler,
        target: Target,
        model: str | None,
        call: Call,
    ) -> web.StreamResponse:
        """Steps 2 to 7 when rules, rate limits, sources or a prompt marker may apply."""
        state = self.state
        provider = target.provider
        assert provider is not None and call.entry is not None
        entry = call.entry
        fired: list[Fired] = []
        last: Fired | None = None
        try:
            facts = await self._facts(request, target, model, call)
            fired = _fire(provider, facts, state, call)
            if fired:
                entry.fault = ",".join(dict.fromkeys(f.rule_id for f in fired))
                entry.effect = ",".join(dict.fromkeys(f.kind for f in fired))
                call.effects = job_effects(fired)
            for item in fired:
                if item.kind == "latency" and item.params.get("target") in (None, "response"):
                    await state.clock.sleep_until(state.clock.now() + latency_seconds(item))
            last = fired[-1] if fired and fired[-1].kind in TERMINAL_EFFECTS else None
            if last is not None and last.kind == "http_error":
                p = last.params
                raise provider.fault_error(
                    p["status"], p.get("message"), p.get("retry_after", 60.0)
                )
            if last is not None and last.params.get("when", "after") == "before":
                return await _break(request, None, last.params, entry, state.clock)
            _take_token(provider, facts, state)
            response = await self._answer(request, handler, provider, facts, call)
        except Exception as exc:  # every failure gets an envelope
            response = _envelope(provider, request, exc)
        drifts = [
            f.params
            for f in fired
            if f.kind == "drift" and _drifts_here(provider, target.operation, response, f.params)
        ]
        if drifts:
            call.drifted = True
            response = apply_drift(response, drifts)
        if last is not None and last.kind == "transport":
            return await _break(request, response, last.params, entry, state.clock)
        return response

    async def _answer(
        self,
        request: web.Request,
        handler: Handler,
        provider: Provider,
        facts: RequestFacts,
        call: Call,
    ) -> web.StreamResponse:
        """The simulated handler, unless a source answers for this provider."""
        for source in self.sources:
            if source.serves(provider.name):
                call.forwarded = True
                return await source.answer(request, provider, facts)
        return await handler(request)

    async def _facts(
        self,
        request: web.Request,
        target: Target,
        model: str | None,
        call: Call,
    ) -> RequestFacts:
        """What rules and prompt markers match on, read once (the body is cached)."""
        state = self.state
        provider = target.provider
        assert provider is not None
        prompt: str | None = None
        if target.operation == "image":
            job = state.store.get(request.match_info.get("job_id", ""), state.clock.now())
            prompt = job.prompt if job is not None else None
        body = await _peek_json(request, state, call, bool(state.faults.rules))
        if isinstance(body, dict) and isinstance(body.get("prompt"), str):
            prompt = body["prompt"]
        if state.faults.rules:
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
                prompt = job.prompt
        found = None
        regexes = state.faults.regexes() if state.faults.rules and prompt else None
        if regexes:  # off the loop: RE2 is linear, but many complex rules still add up
            loop = asyncio.get_running_loop()
            found = await loop.run_in_executor(None, state.faults.search_all, regexes, prompt)
        return RequestFacts(
            provider=provider.name,
            operation=target.operation,
            method=request.method,
            key=call.key,
            model=model,
            prompt=prompt,
            headers=request.headers,
            declared=target.declared,
            found=found,
        )


async def allowed_methods(request: web.Request) -> set[str]:
    """The methods the routes other than the catch-alls take on the request's path."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name not in CATCH_ALLS:
            _, methods = await resource.resolve(request)
            allowed |= methods
    return allowed


async def _not_routed(request: web.Request) -> web.StreamResponse:
    """What aiohttp's router answers for a request no route takes: 405 with the methods the
    path allows, else 404 (the pipeline turns either into the provider's envelope)."""
    allowed = await allowed_methods(request)
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


async def _raw(request: web.Request, call: Call, max_bytes: int) -> bytes:
    """The body's bytes, to look for a prompt marker: read through the call, once and only
    after its headers passed; empty when it cannot be read (the handler says why)."""
    if not request.body_exists:
        return b""
    try:
        return await call.raw(request, max_bytes)
    except BodyError:
        return b""


def _fire(provider: Provider, facts: RequestFacts, state: MockState, call: Call) -> list[Fired]:
    """The rules that fire, then the prompt's markers, up to the first terminal effect. The
    markers are read first: a request they refuse leaves no rule counted."""
    markers = _markers(provider, facts, call) if facts.operation in GENERATE else []
    fired = state.faults.evaluate(facts, state.clock.now()) if state.faults.rules else []
    fired += markers
    terminal = [i for i, f in enumerate(fired) if f.kind in TERMINAL_EFFECTS]
    return fired[: terminal[0] + 1] if terminal else fired


def _markers(provider: Provider, facts: RequestFacts, call: Call) -> list[Fired]:
    """The prompt's markers, or the provider's 400 naming the one refused (journaled as an
    invalid request): nothing is created or charged."""
    try:
        return prompt_rules(facts.prompt, facts.declared, f"{provider.name} {facts.operation}")
    except RuleError as err:
        entry = call.entry
        if entry is not None:
            entry.validation = "invalid"
            entry.problems = capped(list(err.problems))
        raise provider.error(400, f"Invalid prompt marker: {err}") from None


def _drifts_here(
    provider: Provider,
    operation: str | None,
    response: web.StreamResponse,
    params: dict[str, Any],
) -> bool:
    """A drift edits the contract's normal answers (or those ``when_status`` names), never an
    error envelope."""
    if "when_status" in params:
        return response.status in params["when_status"]
    operations = provider.contract.api["operations"]
    if operation not in operations:
        return response.status < 400
    spec = operations[operation]["responses"].get(str(response.status), {})
    return ("schema" in spec and spec["schema"] != "error") or "content_type" in spec


def _take_token(provider: Provider, facts: RequestFacts, state: MockState) -> None:
    if not facts.key or not state.limiter or 429 not in facts.declared:
        return
    wait = state.limiter.take(
        fingerprint(facts.key), facts.operation in GENERATE, state.clock.now()
    )
    if wait is not None:
        raise provider.fault_error(429, retry_after=wait)


async def _peek_json(request: web.Request, state: MockState, call: Call, rules: bool) -> Any:
    """The body as JSON, when rules may match on it or it may carry a prompt marker, and it
    is small, JSON and readable; None otherwise (the handler reports what is wrong)."""
    if request.method not in ("POST", "PUT"):
        return None
    raw = await _raw(request, call, state.config.max_body_bytes)
    if not raw or not (rules or may_hold_marker(raw)):
        return None
    try:
        return await call.body(request, state.config.max_body_bytes)  # the handler reuses it
    except BodyError:
        return None


# -- transport faults ------------------------------------------------------------------------

BROKEN = -1  # an entry's status while a transport fault breaks the connection: none is sent


async def _break(
    request: web.Request,
    response: web.StreamResponse | None,
    params: dict[str, Any],
    entry: Entry,
    clock: VirtualClock,
) -> web.StreamResponse:
    """Apply a transport fault. Its wall-clock waits end early when the client goes or the
    mock is reset (``clock`` stopped)."""
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
                request, stream, body, float(params.get("bytes_per_second", 64)), seconds, clock
            )
        _drop(request, reset=False)
        return stream
    if kind == "hang":
        await _wait_for_client(request, seconds, clock)
    _drop(request, reset=kind == "reset")
    entry.status = BROKEN
    return web.Response(status=499)  # never sent: the connection is gone


async def _dribble(
    request: web.Request,
    stream: web.StreamResponse,
    body: bytes,
    rate: float,
    seconds: float,
    clock: VirtualClock,
) -> None:
    """Send ``body`` at about ``rate`` bytes per wall second, for at most ``seconds``."""
    tick = 0.05
    chunk = max(1, int(rate * tick))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    for start in range(0, len(body), chunk):
        if loop.time() >= deadline or _gone(request) or clock.stopped:
            return
        await stream.write(body[start : start + chunk])
        await asyncio.sleep(tick)
    await stream.write_eof()


async def _wait_for_client(request: web.Request, seconds: float, clock: VirtualClock) -> None:
    """Send nothing for up to ``seconds`` of wall time, or until the client gives up or the
    mock is reset."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and not _gone(request) and not clock.stopped:
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


def _envelope(
    provider: Provider | None, request: web.Request, exc: Exception
) -> web.StreamResponse:
    """A failure as the answer a client gets: the provider's envelope, or a logged 500."""
    if isinstance(exc, ApiError):
        return exc.response()
    if isinstance(exc, web.HTTPException):
        return _from_http_exception(provider, request, exc)
    if isinstance(exc, ClockStopped):  # a wait on the clock that a reset replaced
        message = "the mock was reset while this request waited; send it again"
        if provider is None:
            return json_response(503, {"error": message}, {"Retry-After": "1"})
        return provider.fault_error(503, message, retry_after=1.0).response()
    log.error("unexpected error on %s %s", request.method, request.path, exc_info=exc)
    message = "internal mock error; see the server log"
    error = provider.error(500, message) if provider else ApiError(500, {"error": message})
    return error.response()


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
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_response(exc.status, {"error": exc.reason}, allow)
    raise exc


def _self_check(target: Target, call: Call, response: web.StreamResponse) -> None:
    """Validate a JSON response against the schema its operation names for its status."""
    provider = target.provider
    if provider is None or call.drifted or call.forwarded:
        return  # a drifted or forwarded answer is not the mock's own mistake
    if not isinstance(response, web.Response):
        return
    if response.content_type != "application/json" or response.text is None:
        return
    operation = target.operation
    if operation in provider.contract.api["operations"]:
        schema = provider.contract.response_schema(operation, response.status)
    else:  # images, stray paths and methods answer with the provider's error envelope
        schema = "error"
    state = provider.state
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
    problems = _answer_problems(provider.name, schema, body)
    if problems:
        state.violations.append(f"{provider.name}.{operation} {response.status}")
        raise ContractViolation(
            f"{provider.name}.{operation} {response.status} breaks {schema}.json: "
            + "; ".join(map(str, problems))
            + f"\nbody: {response.text[:500]}"
        )


def _answer_problems(provider: str, schema: str, body: Any) -> list[Problem]:
    """How the mock's own answer breaks its schema. jsonschema-rs, like JSON Schema, counts
    ``12.0`` as an integer: an answer holding such a float is judged by the pure-Python
    validator, where an integer must be written as one."""
    if not _integral_floats(body):
        if is_valid(provider, schema, body):
            return []
        return problems_of(schemas.validator(provider, schema), body)
    check = schemas.validator(provider, schema, exact_integers=True)
    return [
        Problem(tuple(error.absolute_path), str(error.validator), error.message)
        for error in islice(check.iter_errors(body), MAX_PROBLEMS)
    ]


def _integral_floats(body: Any) -> bool:
    """Does an answer hold a float with no fraction (``12.0``)? JSON Schema counts it as an
    integer, but a client parsing it gets a float: where the contract says integer, the mock
    writes one."""
    if isinstance(body, float):
        return body.is_integer()
    if isinstance(body, dict):
        return any(_integral_floats(value) for value in body.values())
    if isinstance(body, list):
        return any(_integral_floats(value) for value in body)
    return False
