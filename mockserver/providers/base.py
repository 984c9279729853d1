"""What the three providers share: authentication, body reading, jobs, replies.

A provider module subclasses :class:`Provider` and supplies only what differs: its routes,
how it finds the API key, and its error envelopes.
"""

from __future__ import annotations

import dataclasses
import heapq
from typing import Any, ClassVar

from aiohttp import web

from nanobanana_mock import schemas
from nanobanana_mock.schemas import Violation, explain, is_valid
from nanobanana_mock.schemas.violations import warm

from ..config import MockConfig
from ..contracts import Contract, Model, contract
from ..engine import images
from ..engine.jobs import Job
from ..engine.journal import redact
from ..http import ApiError, BodyError, fingerprint, origin
from ..names import CREDIT_STATUSES, declared_errors
from ..pipeline.call import UNKNOWN, call_of, note
from ..state import MockState

__all__ = ["JOB_STATE_HEADER", "REGISTERED", "Provider"]

WARNING_HEADER = "X-Mock-Warning"
JOB_STATE_HEADER = "X-Mock-Job-State"  # on a job's 404: expired, evicted or unknown
MAX_WARNED = 200  # unknown names a warning header can show: it is cut at 512 bytes anyway
UUID_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


REGISTERED: dict[str, type[Provider]] = {}
"""The provider classes by contract name, filled as their modules are imported (never later);
``providers.PROVIDER_CLASSES`` checks it against the contract folders."""


class Provider:
    """One simulated provider. A subclass registers for its contract folder with
    ``class Name(Provider, contract="name")``, which also sets ``name``, ``fault_messages``
    and (unless the class sets them) ``prefixes`` from ``schemas/<name>/api.json``; it
    supplies the hooks below."""

    name: ClassVar[str]
    # the path prefixes whose stray requests this provider answers: by default, the first
    # segment of each of its operations' paths (/v1/ and /v2/, /model/)
    prefixes: ClassVar[tuple[str, ...]]
    credits_status: ClassVar[int] = 402  # the code this provider uses for insufficient credits
    fault_messages: ClassVar[dict[int, str]] = {}  # api.json fault_messages: text per error code

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
        cls.fault_messages = {int(code): text for code, text in api["fault_messages"].items()}
        if "prefixes" not in cls.__dict__:
            paths = (op["path"] for op in api["operations"].values())
            cls.prefixes = tuple(dict.fromkeys(f"/{path.split('/')[1]}/" for path in paths))
        REGISTERED[contract] = cls

    def __init__(self, state: MockState) -> None:
        self.state = state
        self.contract: Contract = contract(self.name)
        self._auth_header: str = self.contract.auth["header"]
        self._auth_schemes = frozenset(s.lower() for s in self.contract.auth.get("schemes") or [])
        self._known: dict[str, frozenset[str]] = {}  # each request schema's properties
        self._timings: dict[str, tuple[MockConfig, float, float]] = {}
        self._declared = {
            operation: declared_errors(self.name, operation)
            for operation in self.contract.api["operations"]
        }
        for model in self.contract.models.values():  # a first bad body must not build them
            warm(self.name, model.request_schema)
        for op in self.contract.api["operations"].values():
            if op.get("request") not in (None, "model"):
                warm(self.name, op["request"])

    # -- what each provider supplies -------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def error(self, status: int, message: str) -> ApiError:
        """The provider's plain error envelope."""
        raise NotImplementedError

    def auth_error(self, missing: bool) -> ApiError:
        raise NotImplementedError

    def invalid(self, problems: list[Violation]) -> ApiError:
        """A body that broke its request schema."""
        raise NotImplementedError

    def unknown_job(self, request_id: str) -> ApiError:
        raise NotImplementedError

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
        return error

    def special_fault(self, status: int, message: str | None, retry: float) -> ApiError | None:
        """This provider's own answer for some codes (a gateway's, a rate limiter's);
        ``retry`` is the virtual wait, as in :meth:`fault_error`."""
        return None

    def insufficient_credits(self, balance: float, cost: float) -> ApiError:
        return self.fault_error(self.credits_status)

    def declared_errors(self, operation: str | None) -> frozenset[int]:
        """The error codes an operation's contract allows (those answered with an error
        envelope); an injected error outside them would break the contract, so it is not
        applied there."""
        return self._declared.get(operation, frozenset())

    def new_id(self) -> str:
        """A UUID 4 from the provider's seeded stream (as ``uuid.UUID(version=4)`` makes it)."""
        h = f"{self.state.rng(self.name).getrandbits(128):032x}"
        # version 4 in the 13th digit, variant 10xx in the 17th
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

    def precheck(self, body: Any) -> None:
        """Provider rules answered before schema validation (raise an ApiError)."""

    def body_error(self, err: BodyError) -> ApiError:
        status = {"content_type": 415, "too_large": 413, "too_deep": 413}.get(err.kind, 400)
        return self.error(status, err.message)

    def unknown_route(self, request: web.Request) -> ApiError:
        return self.error(404, "Not Found")

    def bad_method(self, request: web.Request) -> ApiError:
        return self.error(405, f"Method {request.method} not allowed on {request.path}")

    # -- the shared pipeline ---------------------------------------------------------------
    def now(self) -> float:
        return self.state.clock.now()

    def api_key(self, request: web.Request) -> str | None:
        """The key the request carries in this provider's header and scheme, if any."""
        value = request.headers.get(self._auth_header, "").strip()
        if not self._auth_schemes:
            return value or None
        scheme, _, key = value.partition(" ")
        if scheme.lower() in self._auth_schemes and key.strip():
            return key.strip()
        return None

    def request_key(self, request: web.Request) -> str | None:
        """The request's key: as the pipeline read it, else from its header."""
        key = call_of(request).key
        return self.api_key(request) if key is UNKNOWN else key

    def authenticate(self, request: web.Request) -> str:
        """The owner fingerprint of a request's key, or the provider's 401."""
        key = self.request_key(request)
        if key is None:
            raise self.auth_error(missing=True)
        accepted = self.state.config.api_keys
        if accepted and key not in accepted:
            raise self.auth_error(missing=False)
        return fingerprint(key)

    def model(self, name: str) -> Model | None:
        return self.contract.models.get(name)

    async def body(self, request: web.Request, schema_name: str) -> dict[str, Any]:
        """The JSON body, checked against ``schema_name``; provider errors otherwise."""
        try:
            body = await call_of(request).body(request, self.state.config.max_body_bytes)
        except BodyError as err:
            note(request, validation="invalid", problems=[err.message])
            raise self.body_error(err) from None
        self.precheck(body)
        if is_valid(self.name, schema_name, body):
            entry = call_of(request).entry
            if entry is not None:
                entry.validation = "ok"
            return body
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

    def new_job(self, request: web.Request, model: Model, body: dict[str, Any], owner: str) -> Job:
        """Charge, create, plan and store a job for a validated body, applying the job
        effects (failure, extra queue or processing time) that fault rules decided."""
        state = self.state
        config = state.config
        plan = model.plan(body)
        cost = plan.price * plan.output.count
        ledger = state.ledger
        if ledger.enabled and not ledger.charge(owner, redact(self.request_key(request)), cost):
            raise self.insufficient_credits(ledger.balance(owner) or 0.0, cost)
        call = call_of(request)
        effects = call.effects
        job_id = self.new_id()
        mean, retention = self._timing(model)
        jitter = (
            state.rng(self.name).lognormvariate(0.0, config.processing_jitter)
            if config.processing_jitter
            else 1.0
        )
        now = state.clock.now()
        output = plan.output
        if effects.image_scale != 1.0:  # a drift rule skews the size on purpose
            output = dataclasses.replace(
                output,
                width=max(1, round(output.width * effects.image_scale)),
                height=max(1, round(output.height * effects.image_scale)),
            )
        # the job keeps what its answers need, never the body: its prompt (schema-bounded),
        # the seed and input-image count answers echo, and the image seed (a digest of the
        # whole body, so the same body draws the same pictures)
        prompt = body.get("prompt", "")
        seed = body.get("seed")
        inputs = body.get("image_urls")
        job = Job(
            job_id,
            self.name,
            model.name,
            owner,
            (prompt if isinstance(prompt, str) else str(prompt)).encode("utf-8", "surrogatepass"),
            output,
            model.image_seed(config.seed, body),
            cost,
            now,
            now + config.queue_seconds + effects.extra_queue,  # ready
            mean * jitter + effects.extra_processing,  # duration
            now + retention,  # expires
            effects.failure,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            inputs=len(inputs) if isinstance(inputs, list) else 0,
        )
        state.store.add(job, now)
        state.store.charge(owner, cost)
        entry = call.entry
        if entry is not None:
            entry.request_id = job_id
            entry.model = model.name
        return job

    def _timing(self, model: Model) -> tuple[float, float]:
        """A model's mean generation time and its jobs' retention under the current settings
        (worked out once per settings)."""
        config = self.state.config
        cached = self._timings.get(model.name)
        if cached is None or cached[0] is not config:
            mean = config.processing_for(self.name, model.name, model.typical_seconds)
            retention = config.retention_for(self.name, self.contract.retention_seconds)
            cached = self._timings[model.name] = (config, mean, retention)
        return cached[1], cached[2]

    def remaining_credits(self, owner: str) -> float:
        """What Segmind-style accounting reports: the ledger balance when it covers the key,
        else the notional balance minus what the key spent."""
        balance = self.state.ledger.balance(owner)
        if balance is not None:
            return balance
        return self.state.config.notional_credits - self.state.store.spent(owner)

    def find(
        self,
        request_id: str,
        owner: str,
        request: web.Request | None = None,
        model: str | None = None,
    ) -> Job:
        """The owner's job with this id (of ``model``, when the route names one), or the
        provider's 404 (:meth:`gone`); noted for the journal."""
        entry = call_of(request).entry if request is not None else None
        if entry is not None:
            entry.request_id = request_id[:200]
        job = self.state.store.find(self.name, request_id, owner, self.state.clock.now())
        if job is None or (model is not None and job.model != model):
            raise self.gone(request_id, owner, request, model)
        if entry is not None:
            entry.model = job.model
        return job

    def gone(
        self,
        request_id: str,
        owner: str,
        request: web.Request | None = None,
        model: str | None = None,
    ) -> ApiError:
        """The provider's 404 for a job it cannot show, its body as documented; the mock's
        own ``X-Mock-Job-State`` header (and the journal) says why (:meth:`fate`)."""
        error = self.unknown_job(request_id)
        error.headers[JOB_STATE_HEADER] = self.fate(request_id, owner, request, model)
        return error

    def fate(
        self,
        request_id: str,
        owner: str,
        request: web.Request | None = None,
        model: str | None = None,
    ) -> str:
        """Why a job id is not shown: expired, evicted or unknown (noted in the journal)."""
        fate = self.state.store.fate(request_id, self.now(), self.name, owner, model)
        if request is not None:
            note(request, job=fate)
        return fate

    def image_urls(self, request: web.Request, job: Job) -> list[str]:
        base = origin(request)
        ext = images.extension(job.output.fmt)
        return [f"{base}/_mock/files/{job.id}/{i}.{ext}" for i in range(job.output.count)]

    def image_spec(self, job: Job, index: int) -> images.ImageSpec:
        label = f"{self.name} {job.model} #{index + 1}: {job.prompt[:60]}"
        label = label.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be drawn
        return images.ImageSpec(
            width=job.output.width,
            height=job.output.height,
            fmt=job.output.fmt,
            seed=job.image_seed + index,
            label=label,
        )

    async def image_bytes(self, job: Job, index: int = 0) -> bytes:
        return await self.state.images.get(self.image_spec(job, index))
