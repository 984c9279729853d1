"""The control plane: a JSON API under ``/_mock/`` that no provider uses.

Reset; read, advance or speed up the virtual clock; list, read and force jobs; add, list and
remove fault rules; set credits and rate limits; read the request journal and the validating
proxy's drift report. With a control token configured, every call needs ``X-Mock-Token``. API
keys are accepted in request bodies (never in paths, which end up in access logs) and are only
ever shown as fingerprints.

Only the test author may use it (:func:`guarded`): loopback clients unless ``--control-open``;
a ``Host`` that is a loopback name, an IP literal, ``--host`` or in ``--control-hosts`` (DNS
rebinding); no ``Origin`` but a loopback one or those hosts (a web page the developer has
open); ``application/json`` on every POST and on any write with a body (a cross-site form
cannot send it without a CORS preflight, which the mock never grants). Provider routes take
any ``Host``: they reach only the simulation, and LAN clients of a mock bound to 0.0.0.0 may
use the machine's name. Every failure is ``{"error", "problems"?}`` with a 4xx, or a logged
JSON 500 for a bug of the mock.

Every body is checked against its schema in ``schemas/mock/control/`` (``api.json`` names
the schema of each route's request and answer): a member the schema does not name is refused
first, then each handler's own checks word the usual refusals, and the schema has the last
word before anything changes (:func:`_conform`). With ``self_check``, every answer is checked
against its schema too, as the provider routes' are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import itertools
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from nanobanana_mock import schemas
from nanobanana_mock.schemas.lifecycle import EXPIRED as GONE
from nanobanana_mock.schemas.lifecycle import STATES, TERMINAL, State
from nanobanana_mock.schemas.located import Document, parse_document
from nanobanana_mock.schemas.violations import MAX_PROBLEMS, dotted

from ..config import ConfigError, MockConfig
from ..contracts import contract
from ..engine import scorecard, scorecard_report
from ..engine.clock import MAX_SPEED, MAX_TIME, finite_or_inf
from ..engine.jobs import DELETED, EVICTED, EXPIRED, FATES, Failure, Job
from ..engine.journal import redact
from ..engine.keys import sealed
from ..engine.quotas import Ledger, LimitError, RateLimiter
from ..engine.simulation import NotCancellable
from ..faults.rules import FaultEngine, RuleError, rule_problems, sealed_spec
from ..http import (
    BodyError,
    check_body_length,
    fingerprint,
    hide_secrets,
    json_response,
    parse_json,
    read_body,
)
from ..names import PROVIDERS, all_operations, unknown
from ..pipeline.envelope import STORE_HEADER
from ..pipeline.routing import CONTROL_STRAY, not_routed, route_name
from ..pipeline.serve import DRIFT, MAX_ATTEMPTS, SOURCES
from ..scenario import ScenarioError, check_scenario
from ..state import STATE, MockState
from ..store.ops import JobGone
from ..store.tenant import Stale, StoreUnavailable, Tenant, current, use
from ..store.tenants import TENANTS, TenantError
from . import metrics, ui
from . import spec as plane

__all__ = ["BASE_CONFIG", "BASE_SCENARIO", "apply_scenario", "control_routes"]

log = logging.getLogger("nanobanana_mock")

BASE_CONFIG: web.AppKey[MockConfig] = web.AppKey("base_config", MockConfig)
BASE_SCENARIO: web.AppKey[dict[str, Any]] = web.AppKey("base_scenario", dict)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlError(Exception):
    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


# Bounds of the numbers the control plane takes, read from the scenario schema so that a
# scenario file and a control-plane call accept the same values.
_SCENARIO = schemas.load("mock", "scenario")
MAX_CREDITS = float(_SCENARIO["$defs"]["credits"]["maximum"])
MAX_RPM = float(_SCENARIO["$defs"]["rate_limit"]["properties"]["rpm"]["maximum"])
SCOPES = tuple(_SCENARIO["$defs"]["rate_limit"]["properties"]["scope"]["enum"])
MIN_RPM = 0.001  # one request per 1000 minutes: anything slower is a switched-off limit
MAX_TEXT = schemas.load("mock", "control/job_state.request")["properties"]["error"]["maxLength"]
JSON_TYPE = "application/json"
LOOPBACK_NAMES = ("localhost",)  # and every *.localhost name (RFC 6761)


def guarded(handler: Handler, *, routed: bool = True, token: bool = True) -> Handler:
    """Who may call, then the handler; every failure is answered as ``{"error", "problems"}``.

    The control plane belongs to the test author: loopback clients (unless --control-open),
    a ``Host`` of the allow-list (against DNS rebinding), no foreign ``Origin`` (a web page
    the developer has open), the token if one is set, and JSON on every write, which a
    cross-site form cannot send without a CORS preflight that the mock never grants.
    ``token=False``: the dashboard's static files, which a browser opens without headers."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        config = request.app[STATE].config  # who may call: the start-up settings
        try:
            refusal = _refusal(request, config, token) if routed else None
            if refusal is not None:
                return json_response(refusal[0], {"error": refusal[1]})
            try:
                tenant = await request.app[TENANTS].of(request)
            except TenantError as refused:
                raise ControlError(400, str(refused)) from None
            use(tenant)
            response = await _handle(tenant, handler, request)
        except StoreUnavailable as err:
            response = json_response(
                503, {"error": f"store unavailable: {err.reason}"}, {STORE_HEADER: "unavailable"}
            )
        except ControlError as err:
            body: dict[str, Any] = {"error": err.message}
            if err.problems:
                body["problems"] = err.problems
            response = json_response(err.status, body)
        except web.HTTPException as exc:  # e.g. a body over --max-body-bytes (413), a 405
            if exc.status < 400:
                raise
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            response = json_response(exc.status, {"error": exc.reason}, headers)
        except Exception:
            log.exception("control plane: unexpected error on %s %s", request.method, request.path)
            return json_response(500, {"error": "internal error of the mock (logged)"})
        if config.self_check:
            _self_check(request, response)
        return response

    return wrapper


async def _handle(tenant: Tenant, handler: Handler, request: web.Request) -> web.StreamResponse:
    """The handler, on an up-to-date copy of the tenant's state (a shared store syncs it:
    control calls are rare); served again, a few times at most, when another process's
    control change came between its checks and its operation (``Stale``)."""
    for _ in range(MAX_ATTEMPTS):
        await tenant.begin()
        await tenant.sync()
        try:
            return await handler(request)
        except Stale:
            continue
    raise StoreUnavailable("the tenant's settings kept changing; retry")


def _self_check(request: web.Request, response: web.StreamResponse) -> None:
    """With ``self_check``: a JSON answer against the schema its route names for its status
    (a refusal: ``control/error``); a violation is recorded (``MockState.violations``) and
    logged. The drift report's Markdown and HTML are not JSON, and a 204 has no body."""
    if not isinstance(response, web.Response) or response.content_type != JSON_TYPE:
        return
    route, status = _route(request), response.status
    if route is not None:
        schema = plane.answer_schema(route, status)
    else:  # the catch-all: only refusals
        schema = plane.ERROR if status >= 400 else None
    if schema is None:
        problems: list[Any] = [f"{status} is not an answer schemas/mock/control/api.json lists"]
    else:
        problems = plane.check(schema, json.loads(response.text or "null"))
    if problems:
        request.app[STATE].violations.append(f"control.{route} {status}")  # every tenant's
        where = f"{request.method} {request.path[:200]}"
        log.error("control plane: %s breaks its contract: %s", where, "; ".join(map(str, problems)))


def _route(request: web.Request) -> str | None:
    """The contract's name of the route a request took (None: the catch-all)."""
    route = route_name(request).removeprefix("control.")
    return route if route in plane.routes() else None


def _refusal(
    request: web.Request, config: MockConfig, needs_token: bool = True
) -> tuple[int, str] | None:
    """Why a request may not use the control plane (status, message), or None."""
    if not config.control_open and not _loopback(request.remote):
        return 403, "the control plane answers loopback clients only (--control-open)"
    host = request.headers.get("Host")
    if host is not None and not allowed_host(_host_name(host), config):
        return 403, (
            "the control plane answers loopback names, IP addresses and --host only "
            "(a guard against DNS rebinding; see --control-hosts)"
        )
    origin_header = request.headers.get("Origin")
    if origin_header is not None and not _allowed_origin(origin_header, config):
        return 403, "the control plane refuses requests from web pages of other origins"
    token = config.control_token if needs_token else None
    if token is not None and not _token_matches(request.headers.get("X-Mock-Token", ""), token):
        return 401, "control plane token missing or wrong (X-Mock-Token)"
    if _needs_json(request) and request.content_type != JSON_TYPE:
        return 415, f"the control plane takes {JSON_TYPE} (Content-Type) on every write"
    return None


def _needs_json(request: web.Request) -> bool:
    """Every POST, and any other write that carries a body."""
    return request.method == "POST" or (request.method != "GET" and request.body_exists)


def _token_matches(given: str, token: str) -> bool:
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: encode them back the same way
    try:
        return hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape")
        )
    except UnicodeEncodeError:
        return False


def _host_name(authority: str) -> str:
    """The host of a ``Host`` header or URL authority, lower case, without port or brackets."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    if authority.count(":") == 1:
        authority = authority.partition(":")[0]
    return authority.rstrip(".")


def _is_ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return None


def _loopback_name(name: str) -> bool:
    ip = _is_ip(name)
    if ip is not None:
        return ip.is_loopback
    return name in LOOPBACK_NAMES or name.endswith(".localhost")


def _listed(name: str, config: MockConfig) -> bool:
    """The configured --host, or a --control-hosts entry (``name``, ``*.domain``, ``*``)."""
    if name and name == config.host.lower().strip("[]"):
        return True
    for entry in config.control_hosts:
        entry = entry.lower()
        if entry == "*" or name == entry or (entry.startswith("*.") and name.endswith(entry[1:])):
            return True
    return False


def allowed_host(name: str, config: MockConfig) -> bool:
    """May a request whose ``Host`` names ``name`` use the control plane? Loopback names, any
    IP address (DNS rebinding needs a name the attacker controls), --host and
    --control-hosts. Provider routes take any ``Host``: they reach only the simulation, and
    a client on the LAN may use the machine's name when the mock binds 0.0.0.0."""
    return _is_ip(name) is not None or _loopback_name(name) or _listed(name, config)


def _allowed_origin(value: str, config: MockConfig) -> bool:
    """A page of a loopback origin, --host or --control-hosts (never ``null``)."""
    scheme, sep, rest = value.strip().partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return False
    name = _host_name(rest.partition("/")[0])
    return _loopback_name(name) or _listed(name, config)


def _loopback(remote: str | None) -> bool:
    address = _is_ip(remote) if remote is not None else None
    return address is not None and address.is_loopback


async def _fields(request: web.Request, required: bool = True) -> dict[str, Any]:
    """The JSON object body, whose every member is one its route's schema names (a misspelt
    member would otherwise be ignored: ``{"setings": ...}`` reset to the defaults)."""
    body = await _body(request, required)
    allowed = plane.properties(_route(request) or "")
    strange = [name for name in body if name not in allowed]
    if strange:
        raise ControlError(400, unknown("field", strange, allowed))
    return body


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
        if err.kind == "too_deep":  # past MAX_JSON_DEPTH, as for provider bodies
            raise ControlError(413, err.message) from None
        raise ControlError(400, f"body is not valid JSON: {err.message}") from None
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


def _conform(request: web.Request, body: Any) -> None:
    """The schema's last word on a body the handler's own checks let through, before
    anything changes: a 400 naming each violation (API keys never shown)."""
    schema = plane.request_schema(_route(request) or "")
    problems = plane.check(schema, body) if schema is not None else []
    if problems:
        raise ControlError(400, "invalid request body", [str(hide_secrets(p)) for p in problems])


def _number(
    body: dict[str, Any], name: str, minimum: float = 0.0, maximum: float = math.inf
) -> float:
    """A finite number in ``minimum..maximum`` (an integer too large for a float is not)."""
    value = body.get(name)
    if not isinstance(value, bool) and isinstance(value, int | float):
        number = finite_or_inf(value)
        if math.isfinite(number) and minimum <= number <= maximum:
            return number
    bound = f"in {minimum:g}..{maximum:g}" if math.isfinite(maximum) else f">= {minimum:g}"
    raise ControlError(400, f"{name} must be a finite number {bound}")


def _state(request: web.Request) -> MockState:
    """The state of the request's tenant (brought up to date by ``guarded``)."""
    return current().state


# -- reset and settings ------------------------------------------------------------------------


async def reset(request: web.Request) -> web.Response:
    """Start afresh, atomically: every setting and the whole scenario are checked (and the
    scenario tried on a scratch copy) before anything changes, so a refused reset leaves
    jobs, rules, quotas, clock and settings as they were."""
    body = await _fields(request, required=False)
    base = request.app[BASE_CONFIG]
    settings = body.get("settings", {})
    scenario = body.get("scenario")
    if not isinstance(settings, dict):
        raise ControlError(400, "settings must be an object")
    if isinstance(body.get("scenario_file"), dict) and "scenario" not in body:
        scenario = await _scenario_file(body["scenario_file"])
    if scenario is not None:
        try:  # problems worded as a scenario file's, by path: the body has no lines to name;
            # in a thread, with a file's budget, so a long scenario's problems are named
            await asyncio.to_thread(check_scenario, Document.of(scenario), limit=MAX_PROBLEMS)
        except ScenarioError as err:
            raise ControlError(400, "invalid scenario", err.problems) from None
        _check_rules(request.app[BASE_SCENARIO], scenario)
        settings = {**scenario.get("settings", {}), **settings}
    try:
        config = dataclasses.replace(base, **_settings(settings))
    except (ConfigError, TypeError, ValueError) as err:
        raise ControlError(400, f"invalid settings: {err}") from None
    _conform(request, body)
    scenarios = [request.app[BASE_SCENARIO], *([scenario] if scenario is not None else [])]
    _try_scenarios(config, scenarios)
    await current().do("reset", config, [sealed_scenario(s) for s in scenarios])
    await metrics.forget(current())  # a new series start (a shared store's sums too)
    for source in request.app.get(SOURCES, []):
        source.reset()
    return json_response(200, {"ok": True, "settings": config.public()})


async def _scenario_file(file: dict[str, Any]) -> dict[str, Any]:
    """A scenario file's text, read and checked as ``--scenario`` reads the file, so a
    problem is the same ``name:line:column: path: message`` line. PyYAML reads in pure
    Python (a large file takes a while): in a thread, so that other requests are served."""
    name, text = file.get("name"), file.get("text")
    if not isinstance(name, str) or not isinstance(text, str) or not name:
        raise ControlError(400, "scenario_file needs a name and a text (strings)")
    try:
        return await asyncio.to_thread(_read_scenario, text, name)
    except ScenarioError as err:
        raise ControlError(400, "invalid scenario", err.problems) from None


def _read_scenario(text: str, name: str) -> dict[str, Any]:
    return check_scenario(parse_document(text, name), limit=MAX_PROBLEMS)  # a file's budget


def _try_scenarios(config: MockConfig, scenarios: list[dict[str, Any]]) -> None:
    """Apply the scenarios' credits and rate limits to scratch quotas: a 400 if any part is
    refused (their fault rules were checked by :func:`_check_rules`, in a dry run)."""
    faults, ledger, limiter = FaultEngine(seed=config.seed), Ledger(), RateLimiter()
    try:
        for scenario in scenarios:
            _apply(faults, ledger, limiter, 0.0, {**scenario, "faults": []})
    except (ValueError, TypeError, KeyError) as err:
        raise ControlError(400, f"invalid scenario: {err}") from None


def _check_rules(base: dict[str, Any], scenario: dict[str, Any]) -> None:
    """Refuse, before anything changes, a scenario whose fault rules the engine would refuse
    once added after the start-up scenario's: a duplicate id, a regex RE2 refuses, too many."""
    before = len(base.get("faults", []))
    found = rule_problems([*base.get("faults", []), *scenario.get("faults", [])])
    if found:
        problems = []
        for index, where, message in found:
            problems.append(f"{dotted(('faults', index - before, *where))}: {message}")
        raise ControlError(400, "invalid scenario", problems)


SETTABLE = frozenset(f.name for f in dataclasses.fields(MockConfig)) - {
    "host",
    "port",
    "tls_port",
    "control_open",  # who may use the control plane is decided at start-up only
    "control_hosts",
    "control_token",
    "scenario",
    "self_check",
    "proxy",
    "proxy_timeout",
    "proxy_max_response_bytes",
    "record_dir",
    "replay_dir",
    "store",  # where the state lives, and the processes sharing it: fixed when they start
    "processes",
    # what the listener was built with at start-up: a reset could not change it
    "max_header_bytes",
    "header_timeout",
    "body_timeout",
    "keepalive_timeout",
    "max_connections",
    # how many tenants the mock keeps, and for how long: one setting for all of them
    "max_tenants",
    "tenant_idle_seconds",
}


SETTINGS = tuple(f.name for f in dataclasses.fields(MockConfig))


def _settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings a reset may change; an unknown name is refused as unknown (naming the
    settable ones), a start-up setting as one a reset cannot change."""
    strange = [name for name in settings if name not in SETTINGS]
    if strange:
        raise ConfigError(unknown("setting", strange, sorted(SETTABLE), SETTINGS))
    fixed = sorted(set(settings) - SETTABLE)
    if fixed:
        raise ConfigError(f"cannot change {', '.join(fixed)} on reset (start-up settings)")
    return dict(settings)


async def get_settings(request: web.Request) -> web.Response:
    return json_response(200, _state(request).config.public())


def sealed_scenario(scenario: dict[str, Any]) -> dict[str, Any]:
    """A (validated) scenario with every API key sealed (a fingerprint,
    :func:`~..engine.keys.sealed`): what an operation may carry to a shared store. Applied,
    it does what the scenario does."""
    out = dict(scenario)
    if "faults" in scenario:
        out["faults"] = [sealed_spec(spec) for spec in scenario["faults"]]
    credits = scenario.get("credits")
    if isinstance(credits, dict) and "keys" in credits:
        out["credits"] = {**credits, "keys": {sealed(k): v for k, v in credits["keys"].items()}}
    if "rate_limits" in scenario:
        out["rate_limits"] = [
            {**limit, "key": sealed(limit["key"])} if limit.get("key") else limit
            for limit in scenario["rate_limits"]
        ]
    return out


def apply_scenario(state: MockState, scenario: dict[str, Any]) -> None:
    """Add a (validated) scenario's fault rules, credits and rate limits to a mock."""
    _apply(state.faults, state.ledger, state.limiter, state.clock.now(), scenario)


def _apply(
    faults: FaultEngine,
    ledger: Ledger,
    limiter: RateLimiter,
    now: float,
    scenario: dict[str, Any],
) -> None:
    for spec in scenario.get("faults", []):
        faults.add(spec, now)
    credits = scenario.get("credits", {})
    if "default" in credits:
        ledger.set_default(credits["default"])
    for key, balance in credits.get("keys", {}).items():
        ledger.set(key, balance)
    for limit in scenario.get("rate_limits", []):
        limiter.set(limit["rpm"], key=limit.get("key"), scope=limit.get("scope", "generate"))


# -- clock -------------------------------------------------------------------------------------


async def get_clock(request: web.Request) -> web.Response:
    clock = _state(request).clock
    return json_response(200, {"now": clock.now(), "speed": clock.speed})


async def set_clock(request: web.Request) -> web.Response:
    body = await _fields(request)
    given = [name for name in ("advance", "to", "speed") if name in body]
    if len(given) > 1:  # one move per request: nothing given is silently left undone
        raise ControlError(400, f"give one of advance, to or speed, not {' and '.join(given)}")
    if not given:
        raise ControlError(400, "give one of advance, to or speed")
    (name,) = given
    value = _number(body, name, maximum=MAX_SPEED if name == "speed" else MAX_TIME)
    _conform(request, body)
    try:
        now, speed = await current().do("clock", name, value)
    except ValueError as err:  # past the clock's maximum time
        raise ControlError(400, str(err)) from None
    return json_response(200, {"now": now, "speed": speed})


# -- jobs --------------------------------------------------------------------------------------


def job_view(state: MockState, job: Job, position: int | None = None) -> dict[str, Any]:
    """What the control plane shows of a job; ``position`` when already known (a listing)."""
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
        "queue_position": state.store.queue_position(job, now) if position is None else position,
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


GONE_REASONS = {
    EXPIRED: ": it expired",
    EVICTED: ": it was evicted to keep the store's bounds",
    DELETED: ": its owner deleted it",
}


def _job(request: web.Request) -> Job:
    state = _state(request)
    job_id, now = request.match_info["job_id"], state.clock.now()
    job = state.store.get(job_id, now)
    if job is None:
        reason = GONE_REASONS.get(state.store.fate(job_id, now), "")
        raise ControlError(404, f"no job {job_id[:100]}{reason}")
    return job


def _text(body: dict[str, Any], name: str, default: str) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
        raise ControlError(400, f"{name} must be a string of 1..{MAX_TEXT} characters")
    return value


# A listing shows at most this many jobs (``limit``, default ``JOBS_PAGE``): 20,000 job views
# would be megabytes of JSON built on the event loop. ``total`` counts them all.
JOBS_PAGE = 1000
JOBS_PAGE_MAX = 10_000
JOBS_QUERY = ("provider", "limit")


MAX_QUERY_DIGITS = 12  # a number in a query: short ASCII digits only ("٣" is a digit to Python)
MAX_QUERY_INT = 10**MAX_QUERY_DIGITS - 1


def _query_int(request: web.Request, name: str, default: Any, minimum: int, maximum: int) -> Any:
    """A whole number from the query string, ``default`` when absent; a 400 unless it is a
    run of at most :data:`MAX_QUERY_DIGITS` ASCII digits from ``minimum`` to ``maximum``."""
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_QUERY_DIGITS) or not (
        minimum <= int(text) <= maximum
    ):
        raise ControlError(400, f"{name} must be a whole number from {minimum} to {maximum}")
    return int(text)


async def list_jobs(request: web.Request) -> web.Response:
    """The live jobs, oldest first: at most ``limit`` of them, and how many there are.
    Queue positions come from one pass per provider (not a walk per job)."""
    state = _state(request)
    _check_query(request, "job listing filter", JOBS_QUERY)
    provider = request.query.get("provider")
    _check_name(request, "provider", PROVIDERS)
    limit = _query_int(request, "limit", JOBS_PAGE, 1, JOBS_PAGE_MAX)
    now = state.clock.now()
    store = state.store
    live = [
        job
        for job in store.jobs()
        if (provider is None or job.provider == provider) and now < job.expires_at
    ]
    positions: dict[str, dict[int, int]] = {}
    views = []
    for job in live[:limit]:
        lane = positions.get(job.provider)
        if lane is None:
            lane = positions[job.provider] = store.queue_positions(job.provider, now)
        views.append(job_view(state, job, lane.get(job.seq, 0)))
    return json_response(200, {"jobs": views, "total": len(live), "limit": limit})


async def get_job(request: web.Request) -> web.Response:
    return json_response(200, job_view(_state(request), _job(request)))


async def force_job(request: web.Request) -> web.Response:
    """Force a job to a terminal state now (or expire it)."""
    state, job = _state(request), _job(request)
    body = await _fields(request)
    if "state" not in body:
        raise ControlError(400, f"state: field required; allowed: {', '.join(FORCED)}")
    wanted = _word(body["state"], "state", FORCED)
    failure = (
        Failure(_text(body, "error", "Task execution failed"), _error_type(body))
        if wanted == State.FAILED
        else None
    )
    _conform(request, body)
    view = job_view(state, job) if wanted == GONE else None
    try:
        job = await current().do("force", job.id, wanted, failure)
    except JobGone:  # gone meanwhile (expired by the clock, or forced by another request)
        raise ControlError(404, f"no job {job.id}") from None
    except NotCancellable as err:
        raise ControlError(409, f"job is already {err.state}") from None
    if view is not None:
        return json_response(200, {**view, "state": GONE, "expires_at": job.expires_at})
    return json_response(200, job_view(state, job))


# the states a job can be forced to: the lifecycle's terminal ones, or gone
FORCED = (*(s for s in STATES if State(s) in TERMINAL), GONE)
# A forced failure's error_type: one a job_failure rule may give (SeaArt's status contract
# lists them; any other word would make the mock break its own contract).
ERROR_TYPES = tuple(
    schemas.load("mock", "fault_rule")["$defs"]["job_failure"]["properties"]["error_type"]["enum"]
)


def _error_type(body: dict[str, Any]) -> str:
    return _word(body.get("error_type", "INFERENCE_FAILURE"), "error_type", ERROR_TYPES)


def _word(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    """``value``, one of ``allowed``, or a 400 naming ``name``: a value that is no string is
    told so (``unknown`` would take a list for several words, ``["all"]`` for 'all')."""
    if not isinstance(value, str):
        kinds = {list: "a list", dict: "an object", bool: "a boolean"}
        got = "null" if value is None else kinds.get(type(value), "a number")
        raise ControlError(
            400, f"{name} must be a string, got {got}; allowed: {', '.join(allowed)}"
        )
    if value not in allowed:
        raise ControlError(400, unknown(name, value, allowed))
    return value


# -- faults ------------------------------------------------------------------------------------


async def list_faults(request: web.Request) -> web.Response:
    return json_response(200, {"faults": [r.public() for r in _state(request).faults.rules]})


async def add_faults(request: web.Request) -> web.Response:
    body = await _body(request)
    many = "faults" in body and "effect" not in body
    specs = body["faults"] if many else [body]
    if not isinstance(specs, list):
        raise ControlError(400, "faults must be a list of rules")
    tenant = current()
    try:  # each rule is checked against fault_rule.json as it is added, all or nothing
        added: list[str] = await tenant.do("add_faults", [sealed_spec(s) for s in specs])
    except RuleError as err:
        problems = _rule_problems(err, err.index, many)
        raise ControlError(400, "invalid fault rule", problems) from None
    try:
        _conform(request, body)  # then the whole body (the members beside "faults")
    except ControlError:
        for rule_id in added:
            await tenant.do("remove_fault", rule_id)
        raise
    return json_response(201, {"ids": added} if many else {"id": added[0]})


def _rule_problems(err: RuleError, index: int, many: bool) -> list[str]:
    """A refused rule's problems, placed in the body (``faults[2].match.model: ...``)."""
    if not many:
        return err.problems
    return [f"{dotted(('faults', index, *path))}: {reason}" for path, reason in err.reasons()]


async def clear_faults(request: web.Request) -> web.Response:
    await current().do("clear_faults")
    return json_response(200, {"faults": []})


async def remove_fault(request: web.Request) -> web.StreamResponse:
    if not await current().do("remove_fault", request.match_info["rule_id"]):
        raise ControlError(404, f"no fault rule {request.match_info['rule_id'][:64]}")
    return web.Response(status=204)


# -- quotas ------------------------------------------------------------------------------------


async def get_credits(request: web.Request) -> web.Response:
    return json_response(200, _state(request).ledger.public(request.query.get("key")))


async def set_credits(request: web.Request) -> web.Response:
    body = await _fields(request)
    if "default" not in body and "key" not in body:
        raise ControlError(400, "give a key and a balance, or a default")
    if "key" in body and (not isinstance(body["key"], str) or not body["key"]):
        raise ControlError(400, "key must be a non-empty string")
    # every value is checked before anything changes: a 400 leaves the ledger as it was
    default = _number(body, "default", maximum=MAX_CREDITS) if "default" in body else None
    balance = _number(body, "balance", maximum=MAX_CREDITS) if "key" in body else None
    _conform(request, body)
    key = body.get("key")
    await current().do(
        "set_credits", default, fingerprint(key) if key else None, redact(key), balance or 0.0
    )
    return json_response(200, _state(request).ledger.public(key))


async def clear_credits(request: web.Request) -> web.Response:
    await current().do("clear_credits")
    return json_response(200, _state(request).ledger.public())


async def get_limits(request: web.Request) -> web.Response:
    return json_response(200, _state(request).limiter.public())


async def set_limits(request: web.Request) -> web.Response:
    body = await _fields(request)
    key = body.get("key")
    scope = body.get("scope", "generate")
    if key is not None and (not isinstance(key, str) or not key):
        raise ControlError(400, "key must be a non-empty string")
    scope = _word(scope, "scope", SCOPES)
    rpm = _number(body, "rpm", minimum=MIN_RPM, maximum=MAX_RPM)
    _conform(request, body)
    try:
        await current().do("set_limits", rpm, fingerprint(key) if key else None, redact(key), scope)
    except LimitError as err:
        raise ControlError(400, str(err)) from None
    return json_response(200, _state(request).limiter.public())


async def clear_limits(request: web.Request) -> web.Response:
    await current().do("clear_limits")
    return json_response(200, _state(request).limiter.public())


# -- journal -----------------------------------------------------------------------------------


JOURNAL_QUERY: tuple[str, ...] = ("provider", "operation", "method", "status", "request_id")
JOURNAL_QUERY += ("key", "fault", "model", "job", "since", "limit")


# The methods a journal filter may name: those a fault rule may (upper case, as sent)
METHODS = tuple(schemas.load("mock", "fault_rule")["$defs"]["method"]["enum"])


async def get_journal(request: web.Request) -> web.Response:
    _check_query(request, "journal filter", JOURNAL_QUERY)
    since = _query_int(request, "since", 0, 0, MAX_QUERY_INT)
    limit = _query_int(request, "limit", None, 1, MAX_QUERY_INT)
    _query_int(request, "status", None, 100, 599)
    query = {name: value for name, value in request.query.items() if name not in ("since", "limit")}
    _check_names(request)
    try:
        if "key" in query:
            query["key_id"] = fingerprint(query.pop("key"))
        return json_response(200, await current().journal(query, since, limit))
    except ValueError as err:
        raise ControlError(400, str(err)) from None


def _check_query(request: web.Request, what: str, allowed: tuple[str, ...]) -> None:
    """A 400 for a query parameter that is not one of ``allowed``, or one given twice (only
    one of its values would count)."""
    strange = [name for name in dict.fromkeys(request.query) if name not in allowed]
    if strange and not allowed:
        raise ControlError(400, f"{what} {strange[0][:60]!r}: this route takes no parameters")
    if strange:
        raise ControlError(400, unknown(what, strange, allowed))
    twice = [name for name in dict.fromkeys(request.query) if len(request.query.getall(name)) > 1]
    if twice:
        raise ControlError(400, f"{what} {twice[0][:60]!r} given more than once; give it once")


def _check_names(request: web.Request) -> None:
    """A 400 for a provider, operation, method or job outcome the mock does not have (a
    filter that could match nothing). Models are not checked: the journal also records requests for
    unknown models, by the name the client used."""
    _check_name(request, "provider", PROVIDERS)
    _check_name(request, "operation", all_operations())
    _check_name(request, "method", METHODS)
    _check_name(request, "job", FATES)


def _check_name(request: web.Request, name: str, allowed: tuple[str, ...]) -> None:
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise ControlError(400, unknown(name, value, allowed))


async def clear_journal(request: web.Request) -> web.Response:
    await current().clear_journal()
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


# -- client resilience scorecard ---------------------------------------------------------------

SCORECARD_QUERY = ("format", "key", "provider", "poll_floor")
MAX_POLL_FLOOR = 3600.0


async def get_scorecard(request: web.Request) -> web.Response:
    """What the clients did wrong, from the journal (``engine/scorecard.py``): JSON,
    ``?format=markdown`` or ``?format=html``; ``key`` (in clear or ``fp:``), ``provider``
    and ``poll_floor`` (seconds) narrow it or set its threshold."""
    _check_query(request, "scorecard filter", SCORECARD_QUERY)
    kind = request.query.get("format", "json")
    if kind not in DRIFT_FORMATS:
        raise ControlError(400, f"format must be one of {', '.join(sorted(DRIFT_FORMATS))}")
    _check_name(request, "provider", PROVIDERS)
    key = request.query.get("key")
    if key is not None and not key.startswith("fp:"):
        key = redact(key)
    floor = scorecard.POLL_FLOOR
    if "poll_floor" in request.query:
        try:
            floor = float(request.query["poll_floor"][:40])
        except ValueError:
            floor = math.nan
        floor = _number({"poll_floor": floor}, "poll_floor", 0.0, MAX_POLL_FLOOR)
    tenant = current()
    entries, total = await tenant.entries()
    state = tenant.state
    steps = scorecard.judge(
        entries,
        total,
        state.clock.now(),
        _job_over(state),
        tenant=tenant.name or None,
        policy=scorecard.Policy(poll_floor=floor),
        key=key,
        provider=request.query.get("provider"),
    )
    while True:  # in steps, the loop serving between them: a long journal takes seconds
        try:
            next(steps)
        except StopIteration as done:
            card = done.value
            break
        await asyncio.sleep(0)
    if kind == "markdown":
        return web.Response(text=scorecard_report.to_markdown(card), content_type="text/markdown")
    if kind == "html":
        return web.Response(text=scorecard_report.to_html(card), content_type="text/html")
    return json_response(200, card)


def _job_over(state: MockState) -> scorecard.Over:
    """Whether a job is over now (terminal, or gone from the store), for the scorecard."""
    now = state.clock.now()

    def over(provider: str, job_id: str, owner: str | None) -> bool:
        job = state.store.find(provider, job_id, owner or "", now)
        return job is None or job.state(now) in TERMINAL

    return over


# -- tenants ------------------------------------------------------------------------------------

TENANTS_PAGE = 1000
TENANTS_PAGE_MAX = 100_000


async def list_tenants(request: web.Request) -> web.Response:
    """The tenants, most recently used first, at most ``limit``: each one's name (``""``:
    the default tenant), wall seconds since its last request (None for the default one),
    virtual time and jobs. Under
    ``/t/{tenant}/`` only that tenant: a tenant's control plane sees no other."""
    _check_query(request, "tenant listing filter", ("limit",))
    limit = _query_int(request, "limit", TENANTS_PAGE, 1, TENANTS_PAGE_MAX)
    tenants, here = request.app[TENANTS], current()
    listed = [here] if here.name else itertools.chain([tenants.default], tenants.named())
    views = [
        {
            "name": tenant.name,
            # the default tenant is never evicted, and its use is not timed (no cost per request)
            "idle_seconds": round(tenants.idle_for(tenant), 3) if tenant.name else None,
            "clock": tenant.state.clock.now(),
            "jobs": len(tenant.state.store),
        }
        for tenant in itertools.islice(listed, limit)
    ]
    total = 1 if here.name else 1 + len(tenants)
    store = tenants.health()["store"]
    return json_response(200, {"tenants": views, "total": total, "limit": limit, "store": store})


# -- metrics ------------------------------------------------------------------------------------


async def get_metrics(request: web.Request) -> web.Response:
    """The Prometheus text format (control/metrics.py); it takes no query parameter."""
    _check_query(request, "metrics parameter", ())
    return await metrics.get_metrics(request)


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
        ("GET", "/tenants", list_tenants),
        ("GET", "/metrics", get_metrics),
        ("GET", "/scorecard", get_scorecard),
    ]
    routes = [
        web.route(method, p + path, guarded(handler), name=f"control.{handler.__name__}")
        for method, path, handler in table
    ]
    # the dashboard's static files: guarded, but a browser opens a page without the token
    for path, page in (("/ui", ui.ui_bare), ("/ui/", ui.ui_page), ("/ui/{file}", ui.ui_file)):
        handler = guarded(page, token=False)
        routes.append(web.get(p + path, handler, name=f"control.{page.__name__}"))
    # anything else under /_mock/ (an unknown path, a wrong method) answers in JSON too; it
    # changes and shows nothing, so it is not guarded (an image path from the LAN gets a 404)
    routes.append(
        web.route(
            "*", p + "/{tail:.*}", guarded(not_routed(_no_route), routed=False), name=CONTROL_STRAY
        )
    )
    return routes


def _no_route(request: web.Request) -> ControlError:
    """The 404 of a path under /_mock/ no route takes (a wrong method is a 405 naming the
    methods the path allows), as ``{"error"}``."""
    return ControlError(404, f"no control-plane route {request.path[:200]}")
