"""A typed, synchronous client of the mock's control plane (``/_mock/...``).

It uses only the standard library (``urllib``), so it works from sync tests, from async tests
whose mock runs in another thread (the pytest plugin's server), and from scripts::

    control = MockControl("http://127.0.0.1:8080")
    control.reset(workers=1, processing_seconds={"segmind/*": 5})
    rule = control.faults.http_error(429, provider="segmind", operation="submit", first=1)
    control.clock.advance(60)
    assert control.journal.count(provider="segmind", operation="submit") == 2

Errors (one class, raised at one boundary, :meth:`MockControl._request`)::

    ControlError   a non-2xx answer (status, body); status 0 when no answer came at all

A scenario file given to :meth:`MockControl.reset` is read here (it may be on this machine
only) and checked by the mock; a file that cannot be read is the contracts' ``DocumentError``.
The bodies it sends and the answers it reads are those of ``schemas/mock/control/``.

Misuse that needs no server to detect (an unknown keyword) raises ``TypeError``.
"""

from __future__ import annotations

import difflib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

from nanobanana_mock.schemas.located import DocumentError, read_text

from ..scenario_files import UnknownScenario, locate
from .scorecard import Scorecard

__all__ = [
    "ClockControl",
    "ControlError",
    "CreditControl",
    "FaultControl",
    "JobControl",
    "JobFailure",
    "JobInfo",
    "JobOutput",
    "JournalControl",
    "JournalEntry",
    "MockControl",
    "RateLimitControl",
]

PREFIX = "/_mock"
Json = dict[str, Any]
JsonList = list[Json]
IdList = list[str]
T = TypeVar("T", bound="DataclassInstance")
MATCH_KEYS = frozenset(
    {"provider", "operation", "method", "api_key", "model"}
    | {"prompt_contains", "prompt_regex", "headers"}
)
SCOPE_KEYS = frozenset(("probability", "first", "after", "every", "times", "window", "ttl"))
RULE_KEYS = frozenset(("id", "description"))
JOURNAL_FILTERS = frozenset(
    {"provider", "operation", "method", "status", "request_id", "key", "fault", "model", "job"}
    | {"since", "limit"}
)


class ControlError(Exception):
    """The control plane answered with a non-2xx status (``status`` 0: no answer at all)."""

    def __init__(self, message: str, status: int, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class MatchAndScope(TypedDict, total=False):
    """Keywords of the fault conveniences: match keys, scope keys, and the rule's id."""

    provider: str | list[str]
    operation: str | list[str]
    method: str | list[str]
    api_key: str | list[str]
    model: str | list[str]
    prompt_contains: str
    prompt_regex: str
    headers: Mapping[str, str]
    probability: float
    first: int
    after: int
    every: int
    times: int
    window: Mapping[str, float] | tuple[float, float]
    ttl: float
    id: str
    description: str


class JournalFilter(TypedDict, total=False):
    """Filters of the journal; ``key`` is the API key in clear, ``since`` a ``seq``."""

    provider: str
    operation: str
    method: str
    status: int
    request_id: str
    key: str
    fault: str
    model: str
    job: str
    since: int
    limit: int


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request the mock received, as its journal recorded it."""

    seq: int
    t: float
    provider: str | None
    operation: str | None
    method: str
    path: str
    key: str | None
    request_id: str | None
    model: str | None
    validation: str | None
    problems: tuple[str, ...]
    fault: str | None
    effect: str | None
    status: int | None
    findings: tuple[Mapping[str, Any], ...] = ()  # contract findings (validating proxy)
    job: str | None = None  # why a job id was not shown: expired, evicted, deleted, unknown

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JournalEntry:
        """Build from the server's JSON; unknown fields are ignored, missing ones are None."""
        values: Json = {f.name: data.get(f.name) for f in fields(cls)}
        values["problems"] = tuple(data.get("problems") or ())
        values["findings"] = tuple(data.get("findings") or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class JobOutput:
    """What a job produces: ``count`` images of ``width`` x ``height`` in ``format``."""

    width: int
    height: int
    format: str
    count: int


@dataclass(frozen=True, slots=True)
class JobFailure:
    """A failure decided for a job, and where it becomes visible."""

    error: str
    error_type: str | None
    surface: str | None
    after_polls: int | None


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job as the control plane sees it (provider-neutral ``state``, wire ``wire_status``)."""

    id: str
    provider: str
    model: str
    state: str
    wire_status: str
    submitted_at: float
    start_at: float | None
    end_at: float | None
    expires_at: float | None
    polls: int
    queue_position: int | None
    cost: float | None
    output: JobOutput | None
    failure: JobFailure | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobInfo:
        """Build from the server's JSON; unknown fields are ignored, missing ones are None."""
        values: Json = {f.name: data.get(f.name) for f in fields(cls)}
        values["output"] = _build(JobOutput, data.get("output"))
        values["failure"] = _build(JobFailure, data.get("failure"))
        return cls(**values)


def _build(cls: type[T], data: Mapping[str, Any] | None) -> T | None:
    if data is None:
        return None
    values: Json = {f.name: data.get(f.name) for f in fields(cls)}
    return cls(**values)


JobList = list[JobInfo]


def _check_keys(kind: str, given: Iterable[str], allowed: frozenset[str]) -> None:
    """A TypeError naming each unknown keyword, the closest allowed one, and all of them."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        named = ", ".join(name + _closest(name, allowed) for name in unknown)
        raise TypeError(
            f"unknown {kind} keyword(s): {named}; allowed: {', '.join(sorted(allowed))}"
        )


def _closest(name: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class MockControl:
    """The control plane of one running mock, at ``base_url`` (its origin)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 10.0,
        *,
        tenant: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.tenant_name = tenant or None  # None: the default tenant
        # where every call goes: the origin, then /t/<tenant> for a tenant's control plane
        self._base = self.base_url + (f"/t/{urllib.parse.quote(tenant, safe='')}" if tenant else "")
        self._urls: dict[str, str] | None = None
        # The mock is a local test server: never route control calls through an HTTP proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.clock = ClockControl(self)
        self.faults = FaultControl(self)
        self.journal = JournalControl(self)
        self.credits = CreditControl(self)
        self.rate_limits = RateLimitControl(self)
        self.jobs = JobControl(self)

    def __repr__(self) -> str:
        if self.tenant_name is None:
            return f"MockControl({self.base_url!r})"
        return f"MockControl({self.base_url!r}, tenant={self.tenant_name!r})"

    def tenant(self, name: str) -> MockControl:
        """A client of tenant ``name``'s control plane (``/t/<name>/_mock/...``) on the same
        mock, with the same token and timeout; its :attr:`urls` lead into the tenant. The
        mock makes the tenant on first use."""
        return MockControl(self.base_url, self.token, self.timeout, tenant=name)

    def tenants(self, limit: int | None = None) -> JsonList:
        """The tenants (``GET /_mock/tenants``), most recently used first: name (``""`` for
        the default one), idle_seconds, clock, jobs. A tenant's client sees only itself."""
        query = {"limit": limit} if limit is not None else None
        listed: JsonList = self._request("GET", f"{PREFIX}/tenants", query=query)["tenants"]
        return listed

    def health(self) -> Json:
        """``GET /_mock/health``: the tenant's clock and jobs, the store and its tenants."""
        answer: Json = self._request("GET", f"{PREFIX}/health")
        return answer

    @property
    def urls(self) -> dict[str, str]:
        """The base URL each provider's client should use (``GET /``, asked once); a
        tenant's lead into the tenant (``http://…/t/<name>/v1``)."""
        if self._urls is None:
            self._urls = dict(self._request("GET", "/")["base_urls"])
        return dict(self._urls)

    def reset(
        self,
        *,
        scenario: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> Json:
        """Forget everything (jobs, journal, faults, credits, limits; clock to 0).

        ``settings`` override the start-up settings (``MockConfig`` names); ``scenario`` is a
        scenario object applied after the reset, or a scenario file (a path, or the name of
        a packaged scenario) that the mock reads as ``--scenario`` does: a problem is the
        same ``file:line:column: path: message``. Returns the effective settings.
        """
        body: Json = {}
        if settings:
            body["settings"] = settings
        if isinstance(scenario, str | os.PathLike):
            try:
                path = locate(scenario)
            except UnknownScenario as exc:
                raise DocumentError(str(exc)) from exc
            body["scenario_file"] = {"name": os.fspath(path), "text": read_text(path)}
        elif scenario is not None:
            body["scenario"] = scenario
        effective: Json = self._request("POST", f"{PREFIX}/reset", body)["settings"]
        return effective

    def settings(self) -> Json:
        """The effective settings."""
        effective: Json = self._request("GET", f"{PREFIX}/settings")
        return effective

    def metrics(self) -> str:
        """``GET /_mock/metrics``: the Prometheus text format, this tenant's (the default
        tenant's client: every tenant's). ``prometheus_client.parser``'s
        ``text_string_to_metric_families`` reads it."""
        text: bytes = self._request("GET", f"{PREFIX}/metrics", raw=True)
        return text.decode("utf-8")

    def scorecard(
        self,
        *,
        key: str | None = None,
        provider: str | None = None,
        poll_floor: float | None = None,
    ) -> Scorecard:
        """The client resilience scorecard (``GET /_mock/scorecard``), of one ``key`` (in
        clear or ``fp:``) or ``provider`` if given; ``.assert_clean()`` in a test."""
        query = {"key": key, "provider": provider, "poll_floor": poll_floor}
        return Scorecard(self._request("GET", f"{PREFIX}/scorecard", query=query))

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        *,
        raw: bool = False,
    ) -> Any:
        """Send one request; the decoded JSON answer (None if empty; ``raw``: its bytes), or
        ControlError."""
        url = self._base + urllib.parse.quote(path, safe="/:@-._~")
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, method=method, headers={"Accept": "application/json"})
        if body is not None:
            request.data = json.dumps(body, default=_json_default).encode()
        if body is not None or method == "POST":  # the control plane takes JSON on every POST
            request.add_header("Content-Type", "application/json")
        if self.token is not None:
            request.add_header("X-Mock-Token", self.token)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.read() if raw else _decode(response.read())
        except urllib.error.HTTPError as exc:
            raise _control_error(method, path, exc.code, exc.read()) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            # the path without its query: a query may hold an API key (credits, journal)
            raise ControlError(f"{method} {self._base}{path}: no answer ({reason})", 0) from exc


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(raw: bytes) -> Any:
    return json.loads(raw) if raw.strip() else None


def _control_error(method: str, path: str, status: int, raw: bytes) -> ControlError:
    try:
        body = _decode(raw)
    except ValueError:
        body = raw.decode("utf-8", "replace")
    message = f"{method} {path} answered {status}"
    if isinstance(body, dict):
        message += f": {body.get('error', body)}"
        problems = body.get("problems")
        if problems:
            message += "; problems: " + "; ".join(map(str, problems))
    elif body:
        message += f": {str(body)[:500]}"
    return ControlError(message, status, body)


class _Part:
    """One area of the control plane; shares the parent's connection settings."""

    def __init__(self, control: MockControl) -> None:
        self._control = control

    def _request(
        self, method: str, path: str, body: Any = None, query: Mapping[str, Any] | None = None
    ) -> Any:
        return self._control._request(method, PREFIX + path, body, query)


class ClockControl(_Part):
    """The virtual clock (seconds since the last reset)."""

    def now(self) -> float:
        """The current virtual time."""
        return float(self._request("GET", "/clock")["now"])

    def speed(self) -> float:
        """Virtual seconds per wall second (0: frozen)."""
        return float(self._request("GET", "/clock")["speed"])

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds``; returns the new time."""
        return float(self._request("POST", "/clock", {"advance": seconds})["now"])

    def to(self, t: float) -> float:
        """Move time forward to ``t``; returns the new time."""
        return float(self._request("POST", "/clock", {"to": t})["now"])

    def set_speed(self, speed: float) -> None:
        """Run the clock at ``speed`` virtual seconds per wall second (0 freezes it)."""
        self._request("POST", "/clock", {"speed": speed})


class FaultControl(_Part):
    """Fault rules (schemas/mock/fault_rule.json): add, list, remove."""

    def add(
        self,
        rule: Mapping[str, Any] | None = None,
        *,
        match: Mapping[str, Any] | None = None,
        effect: Mapping[str, Any] | None = None,
        scope: Mapping[str, Any] | None = None,
        id: str | None = None,
        description: str | None = None,
    ) -> str:
        """Add one rule (a dict, and/or its parts as keywords, which win); returns its id."""
        body = dict(rule or {})
        parts: dict[str, Mapping[str, Any] | str | None]
        parts = {"match": match, "effect": effect, "scope": scope}
        parts |= {"id": id, "description": description}
        body.update({k: v for k, v in parts.items() if v is not None})
        return str(self._request("POST", "/faults", body)["id"])

    def add_many(self, rules: Iterable[Mapping[str, Any]]) -> IdList:
        """Add several rules at once (all or none); returns their ids in order."""
        return list(self._request("POST", "/faults", {"faults": list(rules)})["ids"])

    def remove(self, rule_id: str) -> None:
        """Remove one rule; ControlError 404 if there is none with this id."""
        self._request("DELETE", f"/faults/{rule_id}")

    def clear(self) -> None:
        """Remove every rule."""
        self._request("DELETE", "/faults")

    def http_error(
        self,
        status: int,
        *,
        message: str | None = None,
        retry_after: float | None = None,
        **match_and_scope: Unpack[MatchAndScope],
    ) -> str:
        """Answer matching requests with ``status`` in the provider's own envelope;
        ``retry_after`` is virtual seconds, told in wall time at the clock's speed (on a
        frozen clock: the virtual seconds to advance)."""
        effect = _drop_none(status=status, message=message, retry_after=retry_after)
        return self._add_effect("http_error", effect, match_and_scope)

    def job_failure(
        self,
        error: str = "Task execution failed",
        *,
        error_type: str = "INFERENCE_FAILURE",
        surface: str = "end",
        after_polls: int | None = None,
        **match_and_scope: Unpack[MatchAndScope],
    ) -> str:
        """Make jobs created by matching submits fail, visibly at ``surface``."""
        effect = _drop_none(
            error=error, error_type=error_type, surface=surface, after_polls=after_polls
        )
        return self._add_effect("job_failure", effect, match_and_scope)

    def latency(
        self,
        *,
        fixed: float | None = None,
        uniform: tuple[float, float] | None = None,
        lognormal: Mapping[str, float] | tuple[float, float] | None = None,
        target: str = "response",
        **match_and_scope: Unpack[MatchAndScope],
    ) -> str:
        """Add virtual time to the response, or to the job's queue or processing time.

        Give exactly one of ``fixed``, ``uniform=(low, high)`` or ``lognormal=(median, sigma)``
        (or ``{"median": .., "sigma": ..}``).
        """
        if isinstance(lognormal, tuple):
            lognormal = {"median": lognormal[0], "sigma": lognormal[1]}
        effect = _drop_none(
            target=target,
            fixed=fixed,
            uniform=list(uniform) if uniform is not None else None,
            lognormal=lognormal,
        )
        return self._add_effect("latency", effect, match_and_scope)

    def transport(
        self,
        kind: str,
        *,
        when: str = "after",
        bytes_per_second: float | None = None,
        seconds: float | None = None,
        **match_and_scope: Unpack[MatchAndScope],
    ) -> str:
        """Break the connection: reset, empty, truncate, malformed_json, slow_body or hang."""
        effect = _drop_none(
            kind=kind, when=when, bytes_per_second=bytes_per_second, seconds=seconds
        )
        return self._add_effect("transport", effect, match_and_scope)

    def list(self) -> JsonList:
        """Every rule, with its ``matched`` and ``fired`` counters."""
        return list(self._request("GET", "/faults")["faults"])

    def _add_effect(self, kind: str, effect: Json, extra: Mapping[str, Any]) -> str:
        _check_keys("fault", extra, MATCH_KEYS | SCOPE_KEYS | RULE_KEYS)
        rule: Json = {k: v for k, v in extra.items() if k in RULE_KEYS}
        rule["effect"] = {kind: effect}
        match = {k: v for k, v in extra.items() if k in MATCH_KEYS}
        scope = {k: v for k, v in extra.items() if k in SCOPE_KEYS}
        if isinstance(scope.get("window"), tuple):
            start, until = scope["window"]
            scope["window"] = {"from": start, "until": until}
        if match:
            rule["match"] = match
        if scope:
            rule["scope"] = scope
        return self.add(rule)


def _drop_none(**values: Any) -> Json:
    return {k: v for k, v in values.items() if v is not None}


class JournalControl(_Part):
    """The journal of requests the mock received, newest last."""

    def entries(self, **filters: Unpack[JournalFilter]) -> list[JournalEntry]:
        """The matching entries, oldest first; ``since=seq``: only later ones; ``limit=n``: the
        newest n."""
        return [JournalEntry.from_json(e) for e in self._query(filters)["entries"]]

    def count(self, **filters: Unpack[JournalFilter]) -> int:
        """How many recorded requests match (``limit`` does not cap it)."""
        return int(self._query(filters)["count"])

    def counts(self, **filters: Unpack[JournalFilter]) -> dict[str, int]:
        """Matching requests per ``"<provider>.<operation>"``."""
        return dict(self._query(filters)["counts"])

    def clear(self) -> None:
        """Forget every entry."""
        self._request("DELETE", "/journal")

    def _query(self, filters: Mapping[str, Any]) -> Json:
        _check_keys("journal filter", filters, JOURNAL_FILTERS)
        answer: Json = self._request("GET", "/journal", query=filters)
        return answer


class CreditControl(_Part):
    """The credit ledger: balances per API key; a submit beyond the balance is refused."""

    def set(self, key: str, balance: float) -> None:
        """Give ``key`` this balance (turns the ledger on)."""
        self._request("POST", "/credits", {"key": key, "balance": balance})

    def set_default(self, balance: float) -> None:
        """The balance of every key not set on its own (turns the ledger on)."""
        self._request("POST", "/credits", {"default": balance})

    def get(self, key: str) -> float | None:
        """The balance of ``key``: its own, else the default; None while the ledger is off."""
        ledger = self._request("GET", "/credits", query={"key": key})
        if not ledger.get("enabled"):
            return None
        accounts = ledger.get("accounts") or []
        if accounts:
            return float(accounts[0]["balance"])
        default = ledger.get("default")
        return None if default is None else float(default)

    def info(self) -> Json:
        """The whole ledger: ``enabled``, ``default`` and the ``accounts`` (keys redacted)."""
        ledger: Json = self._request("GET", "/credits")
        return ledger

    def disable(self) -> None:
        """Turn the ledger off: no balances, nothing refused."""
        self._request("DELETE", "/credits")


class RateLimitControl(_Part):
    """Token-bucket rate limits per API key, on the virtual clock."""

    def set(self, rpm: float, *, key: str | None = None, scope: str = "generate") -> None:
        """Limit ``key`` (or every key, each its own bucket) to ``rpm`` requests a minute."""
        self._request("POST", "/rate-limits", _drop_none(rpm=rpm, key=key, scope=scope))

    def clear(self) -> None:
        """Remove every limit."""
        self._request("DELETE", "/rate-limits")

    def list(self) -> JsonList:
        """The limits in force (keys redacted)."""
        return list(self._request("GET", "/rate-limits")["limits"])


class JobControl(_Part):
    """The jobs the mock holds, and forced state changes."""

    def get(self, job_id: str) -> JobInfo:
        """One job; ControlError 404 if unknown or expired."""
        return JobInfo.from_json(self._request("GET", f"/jobs/{job_id}"))

    def force(
        self,
        job_id: str,
        state: str,
        *,
        error: str | None = None,
        error_type: str | None = None,
    ) -> JobInfo:
        """Move a job to FAILED, SUCCEEDED, CANCELLED or EXPIRED now; returns the job."""
        body = _drop_none(state=state, error=error, error_type=error_type)
        return JobInfo.from_json(self._request("POST", f"/jobs/{job_id}/state", body))

    def list(self, provider: str | None = None, limit: int | None = None) -> JobList:
        """The jobs held, oldest first, optionally of one provider: at most ``limit``
        (the server's default page is 1,000, its maximum 10,000)."""
        answer = self._request("GET", "/jobs", query={"provider": provider, "limit": limit})
        return [JobInfo.from_json(job) for job in answer["jobs"]]
