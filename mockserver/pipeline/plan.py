"""Which fault effects apply to a request, worked out once, before its handler runs.

Only when it can matter: there are fault rules, rate limits or sources, or the body of a
generation call may hold a prompt marker (:func:`may_fault` is asked without an await on the
fast path, see serve.py). Then :func:`plan` gathers the facts rules match on (the model and
prompt of the job asked about), fires the rules and the prompt's markers, notes them in the
journal, decides the job a submit creates, and returns the :class:`Exchange` whose effects
the pipeline runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ..engine.journal import capped
from ..faults.effects import Effect, Exchange, shape_job
from ..faults.markers import may_hold_marker, prompt_rules
from ..faults.rules import RequestFacts, RuleError
from ..http import BodyError
from ..names import GENERATE, IMAGE
from ..providers.base import Provider
from ..state import MockState
from ..store.tenant import Tenant
from .call import Call
from .routing import Target

__all__ = ["plan", "raw"]


async def plan(
    tenant: Tenant, request: web.Request, target: Target, model: str | None, call: Call
) -> Exchange:
    """The fired effects of a request (rules, then prompt markers, up to the first that
    ends it), with what their hooks need. A refused marker raises the provider's 400."""
    provider = target.provider
    assert provider is not None
    state = tenant.state
    facts = await _facts(state, request, target, model, call)
    entry = call.entry
    if target.operation in GENERATE and entry is not None:  # even if no handler reads it
        entry.digest = call.digest()  # the scorecard tells a body sent again by it
    effects = await _fire(provider, facts, tenant, call)
    if effects:
        assert entry is not None
        entry.fault = ",".join(dict.fromkeys(e.rule_id for e in effects))
        entry.effect = ",".join(dict.fromkeys(e.kind for e in effects))
        if any(e.cuts for e in effects):
            entry.cut = True  # the scorecard does not count its answer as read whole
        call.effects = shape_job(effects)
    return Exchange(request, provider, facts, effects, state.clock)


async def raw(request: web.Request, call: Call, max_bytes: int) -> bytes:
    """The body's bytes, to look for a prompt marker: read through the call, once and only
    after its headers passed; empty when it cannot be read (the handler says why)."""
    if not request.body_exists:
        return b""
    try:
        return await call.raw(request, max_bytes)
    except BodyError:
        return b""


async def _facts(
    state: MockState, request: web.Request, target: Target, model: str | None, call: Call
) -> RequestFacts:
    """What rules and prompt markers match on, read once (the body is cached)."""
    provider = target.provider
    assert provider is not None
    prompt: str | None = None
    if target.operation == IMAGE:
        job = state.store.get(request.match_info.get("job_id", ""), state.clock.now())
        prompt = job.prompt if job is not None else None
    body = await _peek_json(request, state, call, bool(state.faults.rules))
    if isinstance(body, dict) and (asked := provider.prompt_of(body)) is not None:
        prompt = asked
    if state.faults.rules:  # read again: the control plane may have changed them meanwhile
        request_id = request.match_info.get("request_id")
        if (
            request_id is None
            and isinstance(body, dict)
            and isinstance(body.get("request_id"), str)
        ):
            request_id = body["request_id"]
            if call.entry is not None:  # the journal ties the answer, faulted or not, to it
                call.entry.request_id = request_id[:200]
        job = state.store.get(request_id, state.clock.now()) if request_id else None
        if job is not None and job.provider == provider.name:
            model = job.model
            prompt = job.prompt
    found = None
    regexes = state.faults.regexes() if state.faults.rules and prompt else None
    if regexes and prompt:  # off the loop: RE2 is linear, but many complex rules still add up
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


async def _fire(
    provider: Provider, facts: RequestFacts, tenant: Tenant, call: Call
) -> list[Effect]:
    """The rules that fire, then the prompt's markers, up to the first effect that ends the
    request. The markers are read first: a request they refuse leaves no rule counted."""
    markers = _markers(provider, facts, call) if facts.operation in GENERATE else []
    fired: list[Effect] = await tenant.do("evaluate", facts) if tenant.state.faults.rules else []
    fired += markers
    end = next((i for i, effect in enumerate(fired) if effect.ends), None)
    return fired if end is None else fired[: end + 1]


def _markers(provider: Provider, facts: RequestFacts, call: Call) -> list[Effect]:
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


async def _peek_json(request: web.Request, state: MockState, call: Call, rules: bool) -> Any:
    """The body as JSON, when rules may match on it or it may carry a prompt marker, and it
    is small, JSON and readable; None otherwise (the handler reports what is wrong)."""
    if request.method not in ("POST", "PUT"):
        return None
    data = await raw(request, call, state.config.max_body_bytes)
    if not data or not (rules or may_hold_marker(data)):
        return None
    try:
        return await call.body(request, state.config.max_body_bytes)  # the handler reuses it
    except BodyError:
        return None
