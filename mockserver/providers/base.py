"""What the three providers share: authentication, body reading, jobs, replies.

A provider module subclasses :class:`Provider` and supplies only what differs: its routes,
how it finds the API key, and its error envelopes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from aiohttp import web

import schemas

from .. import images
from ..contracts import Contract, Model, contract
from ..faults import JobEffects
from ..http import ApiError, BodyError, Problem, fingerprint, origin, problems_of, read_body
from ..jobs import Job
from ..journal import redact
from ..state import MockState
from ..validation import is_valid

__all__ = ["Provider"]

WARNING_HEADER = "X-Mock-Warning"
JOB_EFFECTS = web.RequestKey("mock_job_effects", JobEffects)  # decided by the fault engine
NOTE = web.RequestKey("mock_note", dict)  # what the handler learnt, for the journal
NO_EFFECTS = JobEffects()  # read only


def note(request: web.Request, **fields: Any) -> None:
    """Tell the journal what the handler learnt (request id, model, validation)."""
    try:
        request[NOTE].update(fields)
    except KeyError:
        request[NOTE] = fields


class Provider:
    """One simulated provider. Subclasses set ``name`` and ``prefixes`` and the hooks below."""

    name: ClassVar[str]
    prefixes: ClassVar[tuple[str, ...]]  # path prefixes whose stray requests this provider answers
    credits_status: ClassVar[int] = 402  # the code this provider uses for insufficient credits

    def __init__(self, state: MockState) -> None:
        self.state = state
        self.contract: Contract = contract(self.name)
        self._auth_header: str = self.contract.auth["header"]
        self._auth_schemes = frozenset(s.lower() for s in self.contract.auth.get("schemes") or [])
        self._declared = {
            operation: frozenset(
                int(code)
                for code, spec in op["responses"].items()
                if int(code) >= 400 and spec.get("schema") == "error"
            )
            for operation, op in self.contract.api["operations"].items()
        }

    # -- what each provider supplies -------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    def error(self, status: int, message: str) -> ApiError:
        """The provider's plain error envelope."""
        raise NotImplementedError

    def auth_error(self, missing: bool) -> ApiError:
        raise NotImplementedError

    def invalid(self, problems: list[Problem]) -> ApiError:
        """A body that broke its request schema."""
        raise NotImplementedError

    def unknown_job(self, request_id: str) -> ApiError:
        raise NotImplementedError

    def fault_error(
        self, status: int, message: str | None = None, retry_after: float = 60.0
    ) -> ApiError:
        """An injected HTTP error in this provider's documented body and headers."""
        raise NotImplementedError

    def insufficient_credits(self, balance: float, cost: float) -> ApiError:
        return self.fault_error(self.credits_status)

    def declared_errors(self, operation: str | None) -> frozenset[int]:
        """The error codes an operation's contract allows (those answered with an error
        envelope); an injected error outside them would break the contract, so it is not
        applied there."""
        return self._declared.get(operation, frozenset())

    def new_id(self) -> str:
        """A UUID 4 from the provider's seeded stream (as ``uuid.UUID(version=4)`` makes it)."""
        n = self.state.rng(self.name).getrandbits(128)
        n = (n & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def precheck(self, body: Any) -> None:
        """Provider rules answered before schema validation (raise an ApiError)."""

    def body_error(self, err: BodyError) -> ApiError:
        status = {"content_type": 415, "too_large": 413}.get(err.kind, 400)
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

    def authenticate(self, request: web.Request) -> str:
        """The owner fingerprint of a request's key, or the provider's 401."""
        key = self.api_key(request)
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
            body = await read_body(request, self.state.config.max_body_bytes)
        except BodyError as err:
            note(request, validation="invalid", problems=[err.message])
            raise self.body_error(err) from None
        self.precheck(body)
        problems = (
            []
            if is_valid(self.name, schema_name, body)
            else problems_of(schemas.validator(self.name, schema_name), body)
        )
        note(request, validation="invalid" if problems else "ok", problems=list(map(str, problems)))
        if problems:
            raise self.invalid(problems)
        return body

    def unknown_fields(self, schema_name: str, body: dict[str, Any]) -> list[str]:
        known = schemas.load(self.name, schema_name).get("properties", {})
        return sorted(name for name in body if name not in known)

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
        config = self.state.config
        plan = model.plan(body)
        cost = plan.price * plan.output.count
        ledger = self.state.ledger
        shown = redact(self.api_key(request)) if ledger.enabled else None
        if not ledger.charge(owner, shown, cost):
            raise self.insufficient_credits(ledger.balance(owner) or 0.0, cost)
        try:
            effects = request[JOB_EFFECTS]
        except KeyError:
            effects = NO_EFFECTS
        rng = self.state.rng(self.name)
        job_id = self.new_id()
        mean = config.processing_for(self.name, model.name, model.typical_seconds)
        jitter = (
            rng.lognormvariate(0.0, config.processing_jitter) if config.processing_jitter else 1.0
        )
        now = self.now()
        output = plan.output
        if effects.image_scale != 1.0:  # a drift rule skews the size on purpose
            output = dataclasses.replace(
                output,
                width=max(1, round(output.width * effects.image_scale)),
                height=max(1, round(output.height * effects.image_scale)),
            )
        job = Job(
            id=job_id,
            provider=self.name,
            model=model.name,
            owner=owner,
            request=body,
            output=output,
            image_seed=model.image_seed(config.seed, body),
            cost=cost,
            submitted_at=now,
            ready_at=now + config.queue_seconds + effects.extra_queue,
            duration=mean * jitter + effects.extra_processing,
            expires_at=now + config.retention_for(self.name, self.contract.retention_seconds),
            failure=effects.failure,
        )
        self.state.store.add(job, now)
        self.state.store.charge(owner, job.cost)
        note(request, request_id=job.id, model=model.name)
        return job

    def remaining_credits(self, owner: str) -> float:
        """What Segmind-style accounting reports: the ledger balance when it covers the key,
        else the notional balance minus what the key spent."""
        balance = self.state.ledger.balance(owner)
        if balance is not None:
            return balance
        return self.state.config.notional_credits - self.state.store.spent(owner)

    def find(self, request_id: str, owner: str, request: web.Request | None = None) -> Job:
        """The owner's job with this id, or the provider's 404; noted for the journal."""
        if request is not None:
            note(request, request_id=request_id[:200])
        job = self.state.store.find(self.name, request_id, owner, self.now())
        if job is None:
            raise self.unknown_job(request_id)
        if request is not None:
            note(request, model=job.model)
        return job

    def image_urls(self, request: web.Request, job: Job) -> list[str]:
        base = origin(request)
        ext = images.extension(job.output.fmt)
        return [f"{base}/_mock/files/{job.id}/{i}.{ext}" for i in range(job.output.count)]

    def image_spec(self, job: Job, index: int) -> images.ImageSpec:
        prompt = str(job.request.get("prompt", ""))
        label = f"{self.name} {job.model} #{index + 1}: {prompt[:60]}"
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
