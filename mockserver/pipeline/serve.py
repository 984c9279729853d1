"""The pipeline around every provider request: one :meth:`Pipeline.serve`.

Each route's handler is registered behind it (routing.py); there is no aiohttp middleware.
For each request, in order:

1. open a journal entry, and the :class:`Call` the handler shares;
2. only when fault rules, rate limits or sources exist, or a generation body may hold a
   prompt marker: ``plan`` the request (the facts rules match on, the fired effects, the job
   they shape), run the effects' ``before`` hooks (a wait, the provider's error instead of
   the handler, a connection dropped unseen), and take a rate-limit token. Otherwise (the
   fast path) none of this runs and nothing is allocated for it;
3. answer: the handler, or a source (the validating proxy, a replay) in its place;
4. turn any failure into the provider's envelope (envelope.py): the one error boundary;
5. run the effects' ``after`` hooks (a drift edits the answer, a transport fault cuts it);
6. close: the outcome is :data:`~..faults.transport.Sent` (the journal keeps its status) or
   :class:`~..faults.transport.Broken` (no status: nothing was sent); with ``self_check``,
   validate a sent answer against its schema (self_check.py).
"""

from __future__ import annotations

from bisect import bisect_left
from time import perf_counter
from typing import TYPE_CHECKING

from aiohttp import HttpVersion11, web

from ..engine.metrics import BOUNDS
from ..faults.effects import Exchange
from ..faults.markers import may_hold_marker
from ..faults.rules import RequestFacts
from ..faults.transport import Broken, Outcome, unsent
from ..http import ApiError, fingerprint, json_response, local_path
from ..names import GENERATE, IMAGE
from ..providers.base import Provider
from ..store.tenant import PARAM, Stale, StoreUnavailable, Tenant, current, use
from ..store.tenants import TENANT_HEADER, TenantError, Tenants
from .call import CALL, Call, call_for
from .envelope import envelope
from .plan import plan, raw
from .routing import Handler, Locate, Routes, Source, Target
from .self_check import self_check

if TYPE_CHECKING:
    from nanobanana_mock.schemas.report import Report

__all__ = ["DRIFT", "SOURCES", "Pipeline", "Source"]


MAX_ATTEMPTS = 5  # a request served again after a control change met it (a shared store)
SOURCES: web.AppKey[list[Source]] = web.AppKey("mock_sources", list)
DRIFT: web.AppKey[Report] = web.AppKey("mock_drift")  # the proxy's findings, when it is on


class Pipeline:
    """The steps above, for one app: its state, providers and sources."""

    def __init__(
        self, tenants: Tenants, providers: dict[str, Provider], sources: list[Source]
    ) -> None:
        self.tenants = tenants
        self.providers = providers
        self.sources = sources
        # what each route calls: a shared store's requests may be served again
        self.routed = self.serve_shared if tenants.remote else self.serve
        self.routes = Routes(self.routed, self.expect, providers, sources)

    async def serve(
        self, handler: Handler, locate: Locate, request: web.Request
    ) -> web.StreamResponse:
        """Serve one request with ``handler``; ``locate`` says what it is for. (In memory,
        every route's handler; a shared store's routes go through :meth:`serve_shared`.)"""
        started = perf_counter()  # the latency the metrics count (metrics.Counters)
        if PARAM not in request.match_info and request.headers.get(TENANT_HEADER) is None:
            tenant = self.tenants.default  # no prefix, no header: not even awaited
        else:
            try:
                tenant = await self.tenants.of(request)
            except TenantError as refused:
                return self._refuse(locate, request, refused)
        use(tenant)
        remote = tenant.remote  # in memory, begin and end do nothing: not even awaited
        if remote:
            await tenant.begin(True)
        state = tenant.state
        target, model, request_id = locate(request)
        provider = target.provider
        key = (
            provider.api_key(request)
            if provider is not None and target.operation != IMAGE
            else None
        )
        entry = state.journal.open(
            state.clock.now(),
            provider.name if provider is not None else None,
            target.operation,
            request.method,
            (local_path(request) if tenant.prefix else request.path)[:500],
            key,
            request_id,
            model,
        )
        # a request served again (serve_shared) keeps its body, read once, on its Call
        call = request[CALL] = Call(entry, key) if not remote else call_for(request, entry, key)
        exchange: Exchange | None = None
        outcome: Outcome | None
        try:
            if provider is not None and (
                state.faults.rules
                or state.limiter
                or self.sources
                or (
                    target.operation in GENERATE
                    and may_hold_marker(await raw(request, call, state.config.max_body_bytes))
                )
            ):
                exchange = await plan(tenant, request, target, model, call)
                outcome = await exchange.before()
                if outcome is None:
                    outcome = await self._answer(tenant, request, handler, provider, exchange, call)
            else:
                outcome = await handler(request)
        except (Stale, StoreUnavailable):
            raise  # served again up to date, or the store's 503 (serve_shared)
        except Exception as exc:  # the one error boundary: every failure gets an envelope
            outcome = envelope(provider, request, exc)
            if isinstance(exc, ApiError) and exc.retry_at is not None:
                entry.retry_at = exc.retry_at  # a 429's wait, for the scorecard
        if exchange is not None and exchange.effects and not isinstance(outcome, Broken):
            outcome = await exchange.after(outcome)
            call.drifted = exchange.drifted
        response = self._close(tenant, target, call, outcome)
        if remote:
            await tenant.end(call.entry)
        # the entry is complete: count it (metrics.Counters.count, inline; status None: unsent)
        seconds = perf_counter() - started
        slot = state.metrics.served.get((entry.provider, entry.operation, entry.status))
        if slot is None:
            slot = state.metrics.slot(entry.provider, entry.operation, entry.status)
        slot[0] += seconds
        slot[1 + bisect_left(BOUNDS, seconds)] += 1
        if exchange is not None and exchange.effects:
            state.metrics.fired(exchange.effects)
        return response

    async def serve_shared(
        self, handler: Handler, locate: Locate, request: web.Request
    ) -> web.StreamResponse:
        """:meth:`serve` with a shared store: a request planned on a copy a control change
        made stale (``Stale``) is served again from the top, up to date, its body read once;
        the store out of reach is the provider's 503."""
        for _ in range(MAX_ATTEMPTS):
            try:
                return await self.serve(handler, locate, request)
            except Stale:
                continue
            except StoreUnavailable as exc:
                return self._unavailable(locate, request, exc)
        return self._unavailable(
            locate, request, StoreUnavailable("the tenant's settings kept changing; retry")
        )

    def _unavailable(
        self, locate: Locate, request: web.Request, exc: StoreUnavailable
    ) -> web.StreamResponse:
        provider = locate(request)[0].provider
        try:
            tenant = current()  # the request's, once serve found it
        except LookupError:
            tenant = self.tenants.default
        tenant.state.metrics.store_error(provider.name if provider is not None else None)
        return envelope(provider, request, exc)

    async def _answer(
        self,
        tenant: Tenant,
        request: web.Request,
        handler: Handler,
        provider: Provider,
        exchange: Exchange,
        call: Call,
    ) -> web.StreamResponse:
        """Take a rate-limit token, then the simulated handler's answer, unless a source
        answers for this provider."""
        facts = exchange.facts
        await self._take_token(tenant, provider, facts)
        for source in self.sources:
            if source.serves(provider.name):
                call.forwarded = True
                return await source.answer(request, provider, facts)
        return await handler(request)

    async def _take_token(self, tenant: Tenant, provider: Provider, facts: RequestFacts) -> None:
        if not facts.key or not tenant.state.limiter or 429 not in facts.declared:
            return
        wait = await tenant.do("take", fingerprint(facts.key), facts.operation in GENERATE)
        if wait is not None:
            tenant.state.metrics.rate_limited(provider.name)
            raise provider.fault_error(429, retry_after=wait)

    def _refuse(self, locate: Locate, request: web.Request, refused: TenantError) -> web.Response:
        """A request that names no usable tenant: a 400 in the envelope of the provider whose
        path follows the prefix (a 404 where its contract declares no 400: a GET of a job),
        or ``{"error"}``. No tenant, so no journal."""
        message = str(refused)
        provider = None
        if locate is not self.routes.image_locate:  # images are public: no provider's envelope
            target = locate(request)[0]
            provider = target.provider
        if provider is None:
            response = json_response(400, {"error": message})
        else:
            status = 400 if target.operation is None or 400 in target.declared else 404
            response = provider.error(status, message).response()
        if request.can_read_body:  # left unread: no next request can follow on the connection
            response.force_close()
        return response

    def _close(
        self, tenant: Tenant, target: Target, call: Call, outcome: Outcome
    ) -> web.StreamResponse:
        """Note the outcome in the journal; self-check a sent answer of the mock's own."""
        if isinstance(outcome, Broken):
            return unsent()  # the entry keeps no status
        if call.close:  # the body was not read to its end: no next request can follow
            outcome.force_close()
        entry = call.entry
        assert entry is not None
        entry.status = outcome.status
        if tenant.state.config.self_check and not (call.drifted or call.forwarded):
            self_check(target, outcome)  # a violation is raised past the error boundary
        return outcome

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
            try:
                tenant = await self.tenants.of(request)
            except TenantError:  # refused by the handler, with the body unread
                tenant = self.tenants.default
            if length is None or length <= tenant.state.config.max_body_bytes:
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0  # the answer proper has not started
            return None
        message = f"Expect: {value[:100]} cannot be met; only 100-continue is supported"
        locate = self.routes.locate_of(request.match_info.handler)
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

        return await self.routed(unmet, locate, request)
