"""The simulation behind every provider, with no HTTP: submit, read, cancel, images.

Providers are thin HTTP adapters (``providers/``, as moto's ``responses.py`` in front of a
backend): they parse a request, call the :class:`Simulator` in neutral terms (a model, a
validated body, the owner's key fingerprint, a job id) and render what it returns in their
own envelope. The simulator's refusals are neutral too, and each adapter words them::

    SimulationError
     ├── UnknownJob            no such job for this provider and owner (and model): why
     ├── NotCancellable        the job is already terminal
     └── InsufficientCredits   the ledger does not cover the job's cost

It reads the app's world (settings, clock, job store and its worker lanes, image cache,
credit ledger, seeded random streams) through :class:`World`, which ``MockState`` is, so a
reset that replaces the store or the clock is seen at once.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..contracts import Model, contract
from . import images
from .jobs import UNKNOWN, Failure, Job, JobStore, State

if TYPE_CHECKING:
    from ..config import MockConfig
    from .clock import VirtualClock
    from .quotas import Ledger

__all__ = [
    "ID_MAKERS",
    "PLAIN",
    "InsufficientCredits",
    "JobShape",
    "NotCancellable",
    "SimulationError",
    "Simulator",
    "UnknownJob",
    "World",
    "uuid4",
]

UUID_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class SimulationError(Exception):
    """A request the simulation refuses; the provider's adapter words it."""


class UnknownJob(SimulationError):
    """No job ``request_id`` is shown to this provider and owner (and model); ``reason`` says
    why: ``expired``, ``evicted``, ``deleted`` or ``unknown`` (:meth:`JobStore.fate`)."""

    def __init__(self, request_id: str, reason: str) -> None:
        super().__init__(f"{request_id}: {reason}")
        self.request_id = request_id
        self.reason = reason


class NotCancellable(SimulationError):
    """The job is already terminal (``state``)."""

    def __init__(self, state: State) -> None:
        super().__init__(f"the job is {state}")
        self.state = state


class InsufficientCredits(SimulationError):
    """The owner's balance does not cover the job's cost; nothing was taken."""

    def __init__(self, balance: float, cost: float) -> None:
        super().__init__(f"balance {balance:.4f} is below the cost {cost:.4f}")
        self.balance = balance
        self.cost = cost


class World(Protocol):
    """What the simulation reads of one mock (``MockState``); read at each call."""

    config: MockConfig
    clock: VirtualClock
    store: JobStore
    images: images.ImageCache
    ledger: Ledger

    def rng(self, stream: str) -> random.Random: ...


class JobShape(Protocol):
    """What fault rules decided about a job before it is made (``faults.rules.JobEffects``)."""

    @property
    def failure(self) -> Failure | None: ...

    @property
    def extra_queue(self) -> float: ...

    @property
    def extra_processing(self) -> float: ...

    @property
    def image_scale(self) -> float: ...


@dataclasses.dataclass(frozen=True, slots=True)
class _Plain:
    failure: Failure | None = None
    extra_queue: float = 0.0
    extra_processing: float = 0.0
    image_scale: float = 1.0


PLAIN: JobShape = _Plain()  # a job as its model makes it
IdMaker = Callable[[random.Random], str]
ID_MAKERS: dict[str, IdMaker] = {}  # each provider's job ids (its ``new_id``), by name


def uuid4(rng: random.Random) -> str:
    """A UUID 4 from a seeded stream (as ``uuid.UUID(version=4)`` makes it)."""
    h = f"{rng.getrandbits(128):032x}"
    # version 4 in the 13th digit, variant 10xx in the 17th
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


class Simulator:
    """Jobs of every provider on one virtual clock: submitted, read, cancelled, drawn."""

    __slots__ = ("_timings", "_world")

    def __init__(self, world: World) -> None:
        self._world = world
        # per provider and model: (the settings it was worked out under, mean, retention)
        self._timings: dict[str, dict[str, tuple[MockConfig, float, float]]] = {}

    def now(self) -> float:
        return self._world.clock.now()

    def submit(
        self,
        model: Model,
        body: Mapping[str, Any],
        owner: str,
        *,
        shown: str | None = None,
        shape: JobShape = PLAIN,
        new_id: IdMaker = uuid4,
        kind: str = "",
    ) -> Job:
        """Charge ``owner`` (whose API key the ledger shows as ``shown``, redacted), then
        create, plan and store the job a validated ``body`` asks ``model`` for, shaped as
        fault rules decided, of ``kind`` (``Job.kind``). ``new_id``
        draws the provider's id from its seeded stream (after the charge: a refused job
        draws nothing). Raises :class:`InsufficientCredits`."""
        world = self._world
        config = world.config
        plan = model.plan(body)
        output = plan.output
        cost = plan.price * output.count
        ledger = world.ledger
        if ledger.enabled and not ledger.charge(owner, shown, cost):
            raise InsufficientCredits(ledger.balance(owner) or 0.0, cost)
        rng = world.rng(model.provider)
        job_id = new_id(rng)
        mean, retention = self.timing(model)
        jitter = (
            rng.lognormvariate(0.0, config.processing_jitter) if config.processing_jitter else 1.0
        )
        now = world.clock.now()
        if shape.image_scale != 1.0:  # a drift rule skews the size on purpose
            output = dataclasses.replace(
                output,
                width=max(1, round(output.width * shape.image_scale)),
                height=max(1, round(output.height * shape.image_scale)),
            )
        # the job keeps what its answers need, never the body: its prompt (schema-bounded),
        # the seed and input-image count answers echo, and the image seed (a digest of the
        # whole body, so the same body draws the same pictures)
        prompt = body.get("prompt", "")
        seed = body.get("seed")
        inputs = body.get("image_urls")
        job = Job(
            job_id,
            model.provider,
            model.name,
            owner,
            (prompt if isinstance(prompt, str) else str(prompt)).encode("utf-8", "surrogatepass"),
            output,
            model.image_seed(config.seed, body),
            cost,
            now,
            now + config.queue_seconds + shape.extra_queue,  # ready
            mean * jitter + shape.extra_processing,  # duration
            now + retention,  # expires
            shape.failure,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            inputs=len(inputs) if isinstance(inputs, list) else 0,
            kind=kind,
        )
        store = world.store
        store.add(job, now)
        store.charge(owner, cost, model.provider)
        return job

    def read(
        self,
        provider: str,
        request_id: str,
        owner: str,
        model: str | None = None,
        *,
        poll: bool = True,
        kind: str | None = None,
    ) -> tuple[Job, State]:
        """The owner's job (of ``model``, when the route names one; of ``kind``, when given)
        and its state now; a status read (``poll``) is counted, as a failure may be due
        after some polls. Raises :class:`UnknownJob`."""
        now = self._world.clock.now()
        job = self._find(provider, request_id, owner, model, now, kind)
        if poll:
            job.polls += 1
        return job, job.state(now)

    def cancel(self, provider: str, request_id: str, owner: str, model: str | None = None) -> Job:
        """Cancel the owner's live job, freeing its worker and re-planning the jobs waiting.
        Raises :class:`UnknownJob` or :class:`NotCancellable`."""
        now = self._world.clock.now()
        job = self._find(provider, request_id, owner, model, now)
        if not self._world.store.cancel(job, now):
            raise NotCancellable(job.state(now))
        return job

    def delete(self, provider: str, request_id: str, owner: str, kind: str) -> Job:
        """Forget the owner's job of ``kind`` (``JobStore.remove``: not cancelled). Raises
        :class:`UnknownJob`, as for a job of another kind."""
        now = self._world.clock.now()
        job = self._find(provider, request_id, owner, None, now, kind)
        self._world.store.remove(job)
        return job

    def newest(
        self, provider: str, owner: str, kind: str, before: int | None, limit: int
    ) -> list[Job]:
        """Up to ``limit`` of the owner's live jobs of ``kind``, newest first; with
        ``before``, those submitted before the job of that ``seq`` (``JobStore.newest``)."""
        jobs = self._world.store.newest(provider, owner, self.now(), before)
        return list(itertools.islice((job for job in jobs if job.kind == kind), limit))

    def _find(
        self,
        provider: str,
        request_id: str,
        owner: str,
        model: str | None,
        now: float,
        kind: str | None = None,
    ) -> Job:
        """The owner's job (of ``model`` and ``kind``, each when given); a job of another
        kind is unknown, as another model's is."""
        store = self._world.store
        job = store.find(provider, request_id, owner, now)
        if job is None or (model is not None and job.model != model):
            raise UnknownJob(request_id, store.fate(request_id, now, provider, owner, model))
        if kind is not None and job.kind != kind:
            raise UnknownJob(request_id, UNKNOWN)
        return job

    def queue_position(self, job: Job, now: float) -> int:
        """How many jobs a worker takes before this one (0 once it runs)."""
        return self._world.store.queue_position(job, now)

    def settle(self, job: Job) -> Awaitable[None]:
        """Wait on the virtual clock until the job stops holding its worker (a blocking
        call's answer); the clock's own wait, no coroutine layer of its own."""
        return self._world.clock.sleep_until(job.busy_until)

    def timing(self, model: Model) -> tuple[float, float]:
        """A model's mean generation time and its jobs' retention under the current settings
        (worked out once per settings)."""
        config = self._world.config
        models = self._timings.get(model.provider)
        if models is None:
            models = self._timings[model.provider] = {}
        cached = models.get(model.name)
        if cached is None or cached[0] is not config:
            provider = model.provider
            mean = config.processing_for(provider, model.name, model.typical_seconds)
            retention = config.retention_for(provider, contract(provider).retention_seconds)
            cached = models[model.name] = (config, mean, retention)
        return cached[1], cached[2]

    def remaining_credits(self, owner: str) -> float:
        """What Segmind-style accounting reports: the ledger balance when it covers the key,
        else the notional balance minus what the key spent."""
        world = self._world
        balance = world.ledger.balance(owner)
        if balance is not None:
            return balance
        return world.config.notional_credits - world.store.spent(owner)

    def image_spec(self, job: Job, index: int) -> images.ImageSpec:
        """What the job's image ``index`` shows: its size, format, seed and caption."""
        label = f"{job.provider} {job.model} #{index + 1}: {job.prompt[:60]}"
        label = label.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be drawn
        return images.ImageSpec(
            width=job.output.width,
            height=job.output.height,
            fmt=job.output.fmt,
            seed=job.image_seed + index,
            label=label,
        )

    def image_bytes(self, job: Job, index: int = 0) -> Awaitable[bytes]:
        """The job's image ``index``, rendered once and cached (await it)."""
        return self._world.images.get(self.image_spec(job, index))
