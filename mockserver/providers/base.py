"""Providers as thin HTTP adapters: keys, bodies, journal notes and envelopes.

A provider parses a request, asks the simulator (``engine/simulation.py``, which has no
HTTP) and renders its answer: moto's seam, ``responses.py`` in front of a backend. A provider
module subclasses :class:`Provider` and supplies only what differs: its routes, its id
format, its bodies and the :class:`Envelopes` it words errors in. The simulator's neutral
refusals are worded here: ``UnknownJob`` as the provider's 404 (:meth:`Provider.gone`),
``InsufficientCredits`` as its credits error.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from aiohttp import web

from nanobanana_mock import schemas
from nanobanana_mock.schemas import Violation, explain, is_valid
from nanobanana_mock.schemas.violations import warm

from ..contracts import Contract, Model, contract
from ..engine import images
from ..engine.jobs import Job, State
from ..engine.journal import redact
from ..engine.keys import sealed
from ..engine.simulation import ID_MAKERS, InsufficientCredits, Simulator, UnknownJob, uuid4
from ..http import ApiError, BodyError, fingerprint, origin
from ..names import CREDIT_STATUSES, declared_errors
from ..pipeline.call import UNKNOWN, Call, call_of, note
from ..state import MockState
from ..store import ops
from ..store.tenant import current

__all__ = ["JOB_STATE_HEADER", "REGISTERED", "Envelopes", "Provider"]

WARNING_HEADER = "X-Mock-Warning"
JOB_STATE_HEADER = "X-Mock-Job-State"  # on a job's 404: expired, evicted, deleted, unknown
WAIT_HEADERS = frozenset({"Retry-After", "x-rate-limit-reset-at-utc"})  # a 429's, if any
MAX_WARNED = 200  # unknown names a warning header can show: it is cut at 512 bytes anyway


class Envelopes(ABC):
    """How a provider words its errors: each provider implements the abstract four; the
    others answer in :meth:`error`'s envelope unless a provider words them its own way."""

    @abstractmethod
    def error(self, status: int, message: str) -> ApiError:
        """The provider's plain error envelope."""

    @abstractmethod
    def auth_error(self, missing: bool) -> ApiError:
        """No key in the request (``missing``), or a key the mock does not accept."""

    @abstractmethod
    def invalid(self, problems: list[Violation]) -> ApiError:
        """A body that broke its request schema."""

    @abstractmethod
    def unknown_job(self, request_id: str) -> ApiError:
        """A job id the provider cannot show (the mock's header says why: :meth:`gone`)."""

    def unknown_model(self, name: str) -> ApiError:
        """A generation route naming a model the provider does not serve."""
        return self.error(404, f"Model not found: {name}")

    def body_error(self, err: BodyError) -> ApiError:
        """A body that could not be read as JSON (type, size, depth, syntax)."""
        status = {"content_type": 415, "too_large": 413, "too_deep": 413}.get(err.kind, 400)
        return self.error(status, err.message)

    def unknown_route(self, request: web.Request) -> ApiError:
        return self.error(404, "Not Found")

    def bad_method(self, request: web.Request) -> ApiError:
        return self.error(405, f"Method {request.method} not allowed on {request.path}")


REGISTERED: dict[str, type[Provider]] = {}
"""The provider classes by contract name, filled as their modules are imported (never later);
``providers.PROVIDER_CLASSES`` checks it against the contract folders."""


class Provider(Envelopes):
    """One simulated provider's HTTP side. A subclass registers for its contract folder with
    ``class Name(Provider, contract="name")``, which also sets ``name``, ``fault_messages``
    and (unless the class sets them) ``prefixes`` from ``schemas/<name>/api.json``; it supplies
    its routes and its envelopes. The simulation itself is the app's :attr:`sim`."""

    name: ClassVar[str]
    # the path prefixes whose stray requests this provider answers: by default, the first
    # segment of each of its operations' paths (/v1/ and /v2/, /model/)
    prefixes: ClassVar[tuple[str, ...]]
    credits_status: ClassVar[int] = 402  # the code this provider uses for insufficient credits
    fault_messages: ClassVar[dict[int, str]] = {}  # api.json fault_messages: text per error code
    new_id = staticmethod(uuid4)  # its job ids, drawn from its seeded stream

    def __init_subclass__(cls, contract: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if contract is None:  # a shared base (a queue-style provider), not a provider
            return
        if contract not in schemas.PROVIDERS:
            raise TypeError(
                f"{cls.__qualname__}: no contract folder schemas/{contract}/ with an api.json; "
                f"the contracts are: {', '.join(schemas.PROVIDERS)}"
            )
        if contract in REGISTERED:
            raise TypeError(
                f"{cls.__qualname__}: contract {contract!r} is already registered by "
                f"{REGISTERED[contract].__module__}.{REGISTERED[contract].__qualname__}"
            )
        api = schemas.load(contract, "api")
        cls.name = contract
        ID_MAKERS[contract] = cls.new_id
        cls.fault_messages = {int(code): text for code, text in api["fault_messages"].items()}
        if "prefixes" not in cls.__dict__:
            paths = (op["path"] for op in api["operations"].values())
            cls.prefixes = tuple(dict.fromkeys(f"/{path.split('/')[1]}/" for path in paths))
        REGISTERED[contract] = cls

    def route(
        self,
        operation: str,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        model: str = "model",
    ) -> web.RouteDef:
        """``operation``'s route as this provider's api.json gives it (its method and path,
        ``{model}`` named as the handler reads it), named ``<provider>.<operation>``."""
        spec = self.contract.api["operations"][operation]
        path = spec["path"].replace("{model}", "{" + model + "}")
        return web.route(spec["method"], path, handler, name=f"{self.name}.{operation}")

    def url(self, request: web.Request, operation: str, **params: str) -> str:
        """The absolute URL of ``operation`` (api.json's path with ``params`` filled in)."""
        path: str = self.contract.api["operations"][operation]["path"]
        return origin(request) + path.format(**params)

    @property
    def state(self) -> MockState:
        """The state of the tenant whose request is being served."""
        return current().state

    @property
    def sim(self) -> Simulator:
        return current().state.sim

    def __init__(self) -> None:
        self.contract: Contract = contract(self.name)
        self._auth_header: str = self.contract.auth["header"]
        self._auth_schemes = frozenset(s.lower() for s in self.contract.auth.get("schemes") or [])
        self._known: dict[str, frozenset[str]] = {}  # each request schema's properties
        self._declared = {
            operation: declared_errors(self.name, operation)
            for operation in self.contract.api["operations"]
        }
        self._suffixes: dict[str, str] = {  # an operation's variant of its model's schema
            name: op.get("request_suffix", "")
            for name, op in self.contract.api["operations"].items()
        }
        for model in self.contract.models.values():  # a first bad body must not build them
            for suffix in set(self._suffixes.values()):  # "" and a variant's (fal's ".edit")
                warm(self.name, model.request_schema + suffix)
        for op in self.contract.api["operations"].values():
            if op.get("request") not in (None, "model"):
                warm(self.name, op["request"])

    @abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The provider's routes, each named ``<provider>.<operation>`` of its api.json."""

    def fault_error(
        self, status: int, message: str | None = None, retry_after: float = 60.0
    ) -> ApiError:
        """An injected HTTP error in this provider's documented body and headers: its own
        answer where it has one (:meth:`special_fault`), else its plain envelope; a 503 says
        when to come back. ``retry_after`` is in virtual seconds; every header that tells
        the wait says it in wall time (:meth:`VirtualClock.wall_wait`)."""
        status = self.credits_status if status in CREDIT_STATUSES else status
        error = self.special_fault(status, message, retry_after) or self.error(
            status, message or self.fault_messages.get(status, "Error")
        )
        if status == 503:
            error.headers["Retry-After"] = str(self.state.clock.retry_after(retry_after))
        elif status == 429 and WAIT_HEADERS & error.headers.keys():  # told when to retry
            error.retry_at = self.state.clock.now() + retry_after  # kept by the journal
        return error

    def special_fault(self, status: int, message: str | None, retry: float) -> ApiError | None:
        """This provider's own answer for some codes (a gateway's, a rate limiter's);
        ``retry`` is the virtual wait, as in :meth:`fault_error`. By default, a 429 in the
        plain envelope with the headers that tell the wait (:meth:`wait_headers`)."""
        if status != 429:
            return None
        error = self.error(429, message or self.fault_messages.get(429, "Error"))
        error.headers.update(self.wait_headers(retry))
        return error

    def wait_headers(self, retry: float) -> dict[str, str]:
        """The headers of this provider's 429 that say when to come back (in wall time)."""
        return {}

    def insufficient_credits(self, balance: float, cost: float) -> ApiError:
        return self.fault_error(self.credits_status)

    def declared_errors(self, operation: str | None) -> frozenset[int]:
        """The error codes an operation's contract allows (those answered with an error
        envelope); an injected error outside them would break the contract, so it is not
        applied there."""
        return self._declared.get(operation, frozenset())

    def screen(self, request: web.Request) -> None:
        """Provider rules on a generation request's query and headers, answered after its
        key and before its model and body (raise an ApiError)."""

    def precheck(self, body: Any) -> None:
        """Provider rules answered before schema validation (raise an ApiError)."""

    def as_job(self, body: Any) -> Any:
        """The body a model's request schema checks and the simulator reads: the wire body
        itself, unless the provider nests it (Gemini's contents and generationConfig)."""
        return body

    def prompt_of(self, body: Any) -> str | None:
        """The prompt a generation body carries (fault rules and markers match on it)."""
        prompt = body.get("prompt") if isinstance(body, dict) else None
        return prompt if isinstance(prompt, str) else None

    # -- the request ------------------------------------------------------------------------
    def api_key(self, request: web.Request) -> str | None:
        """The key the request carries in this provider's header and scheme, if any."""
        value = request.headers.get(self._auth_header, "").strip()
        if not self._auth_schemes:
            return value or None
        scheme, _, key = value.partition(" ")
        if scheme.lower() in self._auth_schemes and key.strip():
            return key.strip()
        return None

    def request_key(self, request: web.Request, call: Call | None = None) -> str | None:
        """The request's key: as the pipeline read it, else from its header."""
        key = (call_of(request) if call is None else call).key
        return self.api_key(request) if key is UNKNOWN else key

    def authenticate(self, request: web.Request, call: Call | None = None) -> str:
        """The owner fingerprint of a request's key, or the provider's 401."""
        key = self.request_key(request, call)
        if key is None:
            raise self.auth_error(missing=True)
        accepted = self.state.config.api_keys  # sealed when from a shared store
        if accepted and key not in accepted and sealed(key) not in accepted:
            raise self.auth_error(missing=False)
        return fingerprint(key)

    def model(self, name: str) -> Model | None:
        return self.contract.models.get(name)

    def model_schema(self, operation: str, model: Model) -> str:
        """The schema ``operation``'s body for ``model`` is checked by: the model's request
        schema, with the operation's ``request_suffix`` in api.json (fal's ``.edit``)."""
        return model.request_schema + self._suffixes.get(operation, "")

    async def body(
        self, request: web.Request, schema_name: str, call: Call | None = None
    ) -> dict[str, Any]:
        """The JSON body, checked against ``schema_name``; provider errors otherwise."""
        call = call_of(request) if call is None else call
        try:
            body: dict[str, Any] = await call.body(request, self.state.config.max_body_bytes)
        except BodyError as err:
            note(request, validation="invalid", problems=[err.message])
            raise self.body_error(err) from None
        self.precheck(body)
        body = self.as_job(body)
        if is_valid(self.name, schema_name, body):
            entry = call.entry
            if entry is not None:
                entry.validation = "ok"
            return body  # the schema's type is object
        problems = explain(self.name, schema_name, body)
        note(request, validation="invalid", problems=list(map(str, problems)))
        raise self.invalid(problems)

    def unknown_fields(self, schema_name: str, body: dict[str, Any]) -> list[str]:
        """The first :data:`MAX_WARNED` unknown field names, sorted (a body may hold tens of
        thousands: sorting and escaping them all took 20 ms, for a header cut at 512 bytes)."""
        try:
            known = self._known[schema_name]
        except KeyError:
            properties = schemas.load(self.name, schema_name).get("properties", {})
            known = self._known[schema_name] = frozenset(properties)
        if known.issuperset(body):
            return []
        unknown = body.keys() - known
        if len(unknown) <= MAX_WARNED:
            return sorted(unknown)
        return heapq.nsmallest(MAX_WARNED, unknown)

    def warn_unknown(self, schema_name: str, body: dict[str, Any]) -> dict[str, str]:
        """A warning header naming fields the real API would silently ignore."""
        unknown = self.unknown_fields(schema_name, body)
        if not unknown:
            return {}
        # names come from the client: escape everything but printable ASCII (header-safe)
        names = ", ".join(name.encode("unicode_escape").decode("ascii") for name in unknown)
        return {WARNING_HEADER: f"unknown fields ignored: {names}"[:512]}

    # -- the simulator's answers ------------------------------------------------------------
    async def accept(
        self, request: web.Request, model_name: str, schema: str | None = None, kind: str = ""
    ) -> tuple[Job, dict[str, str]]:
        """A generation request taken in: its key, the provider's rules, its model and body
        (checked by ``schema``, else the model's request schema), then its job (of ``kind``:
        ``Job.kind``) charged and submitted. Returns the job and the warning headers its
        answer carries. (The request's ``Call`` is looked up once, here.)"""
        call = call_of(request)
        owner = self.authenticate(request, call)
        self.screen(request)
        model = self.contract.models.get(model_name)
        if model is None:
            raise self.unknown_model(model_name)
        schema = schema or model.request_schema
        try:
            body = await self.body(request, schema, call)
        finally:  # the scorecard tells a body sent again (valid or not) by this fingerprint
            entry = call.entry
            if entry is not None:
                entry.digest = call.digest()
        # the key read here, already redacted by the journal (no second hash)
        shown = entry.key if entry is not None else redact(self.request_key(request, call))
        tenant = current()
        try:
            if tenant.remote:
                job = await tenant.do(
                    "submit", self.name, model.name, body, owner, shown, kind, call.effects
                )
            else:  # in memory the operation is a call: no coroutine on the hot path
                job = ops.submit(
                    tenant.state, self.name, model.name, body, owner, shown, kind, call.effects
                )
        except InsufficientCredits as refused:
            raise self.insufficient_credits(refused.balance, refused.cost) from None
        if entry is not None:
            entry.request_id = job.id
            entry.model = model.name
            entry.cost = job.cost
        return job, self.warn_unknown(schema, body)

    async def settled(
        self, request: web.Request, model_name: str, schema: str | None = None
    ) -> tuple[Job, dict[str, str], State]:
        """A blocking generation (Segmind's /v1, Gemini's generateContent, fal.run): the job
        accepted (its body checked by ``schema``, as :meth:`accept`), then waited for on the
        virtual clock; its end state noted for the journal."""
        job, headers = await self.accept(request, model_name, schema)
        sim = self.sim
        await sim.settle(job)
        state = job.state(sim.now())
        note(request, state=state)  # followed to its end in this one call
        return job, headers, state

    async def read(
        self,
        request: web.Request,
        request_id: str,
        model: str | None = None,
        *,
        poll: bool = True,
        owner: str | None = None,
        kind: str | None = None,
    ) -> tuple[Job, State]:
        """The job (of ``model``, when the route names one; of ``kind``, when given: another
        kind's is unknown) and its state, for the request's key (or ``owner``, when already
        authenticated); a status read (``poll``) is counted.
        Noted for the journal; the provider's 404 (:meth:`gone`) when it cannot be shown."""
        call = call_of(request)
        if owner is None:
            owner = self.authenticate(request, call)
        entry = call.entry
        if entry is not None:
            entry.request_id = request_id[:200]
        tenant = current()
        try:
            if tenant.remote:
                job, state = await tenant.do(
                    "read", self.name, request_id, owner, model, poll, kind
                )
            else:  # in memory: ops.read inlined, no coroutine on the hottest path
                job, state = tenant.state.sim.read(
                    self.name, request_id, owner, model, poll=poll, kind=kind
                )
        except UnknownJob as missing:
            raise self.gone(request, missing) from None
        if entry is not None:
            entry.model = job.model
            entry.state = state
        return job, state

    def gone(self, request: web.Request, missing: UnknownJob) -> ApiError:
        """The provider's 404 for a job it cannot show, its body as documented; the mock's
        own ``X-Mock-Job-State`` header (and the journal) says why."""
        error = self.unknown_job(missing.request_id)
        error.headers[JOB_STATE_HEADER] = missing.reason
        note(request, job=missing.reason)
        return error

    def image_urls(self, request: web.Request, job: Job) -> list[str]:
        base = origin(request)
        ext = images.extension(job.output.fmt)
        return [f"{base}/_mock/files/{job.id}/{i}.{ext}" for i in range(job.output.count)]
