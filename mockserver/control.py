"""The control plane: a JSON API under ``/_mock/`` that no provider uses.

Reset; read, advance or speed up the virtual clock; list, read and force jobs; add, list and
remove fault rules; set credits and rate limits; read the request journal and the validating
proxy's drift report. With a control token configured, every call needs ``X-Mock-Token``. API
keys are accepted in request bodies (never in paths, which end up in access logs) and are only
ever shown redacted.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

import schemas

from .config import ConfigError, MockConfig
from .contracts import contract
from .faults import RuleError
from .http import (
    BodyError,
    check_body_length,
    fingerprint,
    json_response,
    parse_json,
    problems_of,
    read_body,
)
from .intercept import DRIFT, SOURCES
from .jobs import TERMINAL, Failure, Job
from .state import STATE, MockState

__all__ = ["BASE_CONFIG", "BASE_SCENARIO", "apply_scenario", "control_routes"]

BASE_CONFIG: web.AppKey[MockConfig] = web.AppKey("base_config", MockConfig)
BASE_SCENARIO: web.AppKey[dict[str, Any]] = web.AppKey("base_scenario", dict)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlError(Exception):
    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


def guarded(handler: Handler) -> Handler:
    """Check the token, and answer every failure as ``{"error", "problems"}``."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        config = request.app[STATE].config
        if not config.control_open and not _loopback(request.remote):
            return json_response(
                403, {"error": "the control plane answers loopback clients only (--control-open)"}
            )
        token = config.control_token
        given = request.headers.get("X-Mock-Token", "")
        if token is not None and not hmac.compare_digest(given.encode(), token.encode()):
            return json_response(
                401, {"error": "control plane token missing or wrong (X-Mock-Token)"}
            )
        try:
            return await handler(request)
        except ControlError as err:
            body: dict[str, Any] = {"error": err.message}
            if err.problems:
                body["problems"] = err.problems
            return json_response(err.status, body)

    return wrapper


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


async def _body(request: web.Request, required: bool = True) -> dict[str, Any]:
    max_bytes = _state(request).config.max_body_bytes
    try:  # refused by its length unread; read bounded; an encoding or payload error is a 4xx
        check_body_length(request, max_bytes)
        raw = await read_body(request, max_bytes) if request.can_read_body else b""
    except BodyError as err:
        raise ControlError(413 if err.kind == "too_large" else 400, err.message) from None
    if not raw.strip():
        if required:
            raise ControlError(400, "a JSON object body is required")
        return {}
    try:
        body = parse_json(raw)  # strict, as for provider bodies: no NaN, no Infinity
    except BodyError as err:
        raise ControlError(400, f"body is not valid JSON: {err.message}") from None
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


def _number(body: dict[str, Any], name: str, minimum: float = 0.0) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
        raise ControlError(400, f"{name} must be a number >= {minimum:g}")
    return float(value)


def _state(request: web.Request) -> MockState:
    return request.app[STATE]


# -- reset and settings ------------------------------------------------------------------------


async def reset(request: web.Request) -> web.Response:
    body = await _body(request, required=False)
    base = request.app[BASE_CONFIG]
    settings = body.get("settings", {})
    scenario = body.get("scenario")
    if not isinstance(settings, dict):
        raise ControlError(400, "settings must be an object")
    if scenario is not None:
        problems = problems_of(schemas.validator("mock", "scenario"), scenario)
        if problems:
            raise ControlError(400, "invalid scenario", [str(p) for p in problems])
        settings = {**scenario.get("settings", {}), **settings}
    try:
        config = dataclasses.replace(base, **_settings(settings))
    except (ConfigError, TypeError, ValueError) as err:
        raise ControlError(400, f"invalid settings: {err}") from None
    state = _state(request)
    state.reset(config)
    for source in request.app.get(SOURCES, []):
        source.reset()
    apply_scenario(state, request.app[BASE_SCENARIO])
    if scenario is not None:
        apply_scenario(state, scenario)
    return json_response(200, {"ok": True, "settings": config.public()})


SETTABLE = frozenset(f.name for f in dataclasses.fields(MockConfig)) - {
    "host",
    "port",
    "control_token",
    "scenario",
    "self_check",
    "proxy",
    "proxy_timeout",
    "proxy_max_response_bytes",
    "record_dir",
    "replay_dir",
}


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    unknown = set(settings) - SETTABLE
    if unknown:
        raise ConfigError(f"cannot change {', '.join(sorted(unknown))} on reset")
    return dict(settings)


async def get_settings(request: web.Request) -> web.Response:
    return json_response(200, _state(request).config.public())


def apply_scenario(state: MockState, scenario: dict[str, Any]) -> None:
    """Add a (validated) scenario's fault rules, credits and rate limits to a mock."""
    now = state.clock.now()
    for spec in scenario.get("faults", []):
        state.faults.add(spec, now)
    credits = scenario.get("credits", {})
    if "default" in credits:
        state.ledger.set_default(credits["default"])
    for key, balance in credits.get("keys", {}).items():
        state.ledger.set(key, balance)
    for limit in scenario.get("rate_limits", []):
        state.limiter.set(limit["rpm"], key=limit.get("key"), scope=limit.get("scope", "generate"))


# -- clock -------------------------------------------------------------------------------------


async def get_clock(request: web.Request) -> web.Response:
    clock = _state(request).clock
    return json_response(200, {"now": clock.now(), "speed": clock.speed})


async def set_clock(request: web.Request) -> web.Response:
    body = await _body(request)
    clock = _state(request).clock
    if "advance" in body:
        clock.advance(_number(body, "advance"))
    elif "to" in body:
        target = _number(body, "to")
        if target < clock.now():
            raise ControlError(400, f"the clock only moves forward (now {clock.now():g})")
        clock.advance(target - clock.now())
    elif "speed" in body:
        clock.set_speed(_number(body, "speed"))
    else:
        raise ControlError(400, "give one of advance, to or speed")
    return await get_clock(request)


# -- jobs --------------------------------------------------------------------------------------


def job_view(state: MockState, job: Job) -> dict[str, Any]:
    now = state.clock.now()
    current = job.state(now)
    failure = job.failure
    return {
        "id": job.id,
        "provider": job.provider,
        "model": job.model,
        "state": str(current),
        "wire_status": contract(job.provider).wire(current),
        "submitted_at": job.submitted_at,
        "start_at": job.start_at,
        "end_at": job.end_at,
        "expires_at": job.expires_at,
        "polls": job.polls,
        "queue_position": state.store.queue_position(job, now),
        "cost": job.cost,
        "output": {
            "width": job.output.width,
            "height": job.output.height,
            "format": job.output.fmt,
            "count": job.output.count,
        },
        "failure": None
        if failure is None
        else {
            "error": failure.error,
            "error_type": failure.error_type,
            "surface": str(failure.surface),
            "after_polls": failure.after_polls,
        },
    }


def _job(request: web.Request) -> Job:
    state = _state(request)
    job = state.store.get(request.match_info["job_id"], state.clock.now())
    if job is None:
        raise ControlError(404, f"no job {request.match_info['job_id'][:100]}")
    return job


async def list_jobs(request: web.Request) -> web.Response:
    state = _state(request)
    provider = request.query.get("provider")
    now = state.clock.now()
    jobs = [
        job_view(state, job)
        for job in state.store.jobs()
        if (provider is None or job.provider == provider) and now < job.expires_at
    ]
    return json_response(200, {"jobs": jobs})


async def get_job(request: web.Request) -> web.Response:
    return json_response(200, job_view(_state(request), _job(request)))


async def force_job(request: web.Request) -> web.Response:
    """Force a job to a terminal state now (or expire it)."""
    state, job = _state(request), _job(request)
    body = await _body(request)
    wanted = body.get("state")
    now = state.clock.now()
    if wanted == "EXPIRED":
        view = job_view(state, job)
        job.expires_at = now
        return json_response(200, {**view, "state": "EXPIRED", "expires_at": now})
    if job.state(now) in TERMINAL:
        raise ControlError(409, f"job is already {job.state(now)}")
    if wanted == "FAILED":
        failure = Failure(
            error=str(body.get("error", "Task execution failed")),
            error_type=str(body.get("error_type", "INFERENCE_FAILURE")),
            at=now,
        )
        state.store.fail(job, failure, now)
    elif wanted == "CANCELLED":
        state.store.cancel(job, now)
    elif wanted == "SUCCEEDED":
        state.store.finish(job, now)
    else:
        raise ControlError(400, "state must be one of SUCCEEDED, FAILED, CANCELLED, EXPIRED")
    return json_response(200, job_view(state, job))


# -- faults ------------------------------------------------------------------------------------


async def list_faults(request: web.Request) -> web.Response:
    return json_response(200, {"faults": [r.public() for r in _state(request).faults.rules]})


async def add_faults(request: web.Request) -> web.Response:
    body = await _body(request)
    state = _state(request)
    many = "faults" in body and "effect" not in body
    specs = body["faults"] if many else [body]
    if not isinstance(specs, list):
        raise ControlError(400, "faults must be a list of rules")
    added = []
    for index, spec in enumerate(specs):
        try:
            added.append(state.faults.add(spec, state.clock.now()).id)
        except RuleError as err:
            for rule_id in added:  # all or nothing
                state.faults.remove(rule_id)
            where = f"faults[{index}]: " if many else ""
            raise ControlError(
                400, "invalid fault rule", [where + p for p in err.problems]
            ) from None
    return json_response(201, {"ids": added} if many else {"id": added[0]})


async def clear_faults(request: web.Request) -> web.Response:
    _state(request).faults.clear()
    return json_response(200, {"faults": []})


async def remove_fault(request: web.Request) -> web.StreamResponse:
    if not _state(request).faults.remove(request.match_info["rule_id"]):
        raise ControlError(404, f"no fault rule {request.match_info['rule_id'][:64]}")
    return web.Response(status=204)


# -- quotas ------------------------------------------------------------------------------------


async def get_credits(request: web.Request) -> web.Response:
    return json_response(200, _state(request).ledger.public(request.query.get("key")))


async def set_credits(request: web.Request) -> web.Response:
    body = await _body(request)
    ledger = _state(request).ledger
    if "default" not in body and "key" not in body:
        raise ControlError(400, "give a key and a balance, or a default")
    if "key" in body and (not isinstance(body["key"], str) or not body["key"]):
        raise ControlError(400, "key must be a non-empty string")
    # every value is checked before anything changes: a 400 leaves the ledger as it was
    default = _number(body, "default") if "default" in body else None
    balance = _number(body, "balance") if "key" in body else None
    if default is not None:
        ledger.set_default(default)
    if balance is not None:
        ledger.set(body["key"], balance)
    return json_response(200, ledger.public(body.get("key")))


async def clear_credits(request: web.Request) -> web.Response:
    ledger = _state(request).ledger
    ledger.disable()
    return json_response(200, ledger.public())


async def get_limits(request: web.Request) -> web.Response:
    return json_response(200, _state(request).limiter.public())


async def set_limits(request: web.Request) -> web.Response:
    body = await _body(request)
    key = body.get("key")
    scope = body.get("scope", "generate")
    if key is not None and (not isinstance(key, str) or not key):
        raise ControlError(400, "key must be a non-empty string")
    if scope not in ("generate", "all"):
        raise ControlError(400, "scope must be generate or all")
    limiter = _state(request).limiter
    limiter.set(_number(body, "rpm", minimum=0.001), key=key, scope=scope)
    return json_response(200, limiter.public())


async def clear_limits(request: web.Request) -> web.Response:
    limiter = _state(request).limiter
    limiter.clear()
    return json_response(200, limiter.public())


# -- journal -----------------------------------------------------------------------------------


async def get_journal(request: web.Request) -> web.Response:
    query = dict(request.query)
    try:
        since = int(query.pop("since", 0))
        limit = int(query["limit"]) if "limit" in query else None
        query.pop("limit", None)
        if "key" in query:
            query["key_id"] = fingerprint(query.pop("key"))
        return json_response(200, _state(request).journal.query(query, since, limit))
    except ValueError as err:
        raise ControlError(400, str(err)) from None


async def clear_journal(request: web.Request) -> web.Response:
    _state(request).journal.clear()
    return json_response(200, {"entries": [], "count": 0})


# -- drift report ------------------------------------------------------------------------------

DRIFT_FORMATS = {"json", "markdown", "html"}


async def get_drift(request: web.Request) -> web.Response:
    """The validating proxy's findings so far: JSON, ``?format=markdown`` or ``?format=html``."""
    report = request.app.get(DRIFT)
    if report is None:
        raise ControlError(404, "no drift report: the validating proxy is off (see --proxy)")
    kind = request.query.get("format", "json")
    if kind not in DRIFT_FORMATS:
        raise ControlError(400, f"format must be one of {', '.join(sorted(DRIFT_FORMATS))}")
    if kind == "markdown":
        return web.Response(text=report.to_markdown(), content_type="text/markdown")
    if kind == "html":
        return web.Response(text=report.to_html(), content_type="text/html")
    return json_response(200, report.to_json())


def control_routes() -> list[web.RouteDef]:
    p = "/_mock"
    table: list[tuple[str, str, Handler]] = [
        ("POST", "/reset", reset),
        ("GET", "/settings", get_settings),
        ("GET", "/clock", get_clock),
        ("POST", "/clock", set_clock),
        ("GET", "/jobs", list_jobs),
        ("GET", "/jobs/{job_id}", get_job),
        ("POST", "/jobs/{job_id}/state", force_job),
        ("GET", "/faults", list_faults),
        ("POST", "/faults", add_faults),
        ("DELETE", "/faults", clear_faults),
        ("DELETE", "/faults/{rule_id}", remove_fault),
        ("GET", "/credits", get_credits),
        ("POST", "/credits", set_credits),
        ("DELETE", "/credits", clear_credits),
        ("GET", "/rate-limits", get_limits),
        ("POST", "/rate-limits", set_limits),
        ("DELETE", "/rate-limits", clear_limits),
        ("GET", "/journal", get_journal),
        ("DELETE", "/journal", clear_journal),
        ("GET", "/drift", get_drift),
    ]
    return [
        web.route(method, p + path, guarded(handler), name=f"control.{handler.__name__}")
        for method, path, handler in table
    ]
