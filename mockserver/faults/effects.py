"""Fault effects: one class per kind of ``effect`` in ``schemas/mock/fault_rule.json``.

A rule that fires (or a prompt marker) becomes an :class:`Effect` of its kind, a class found
in :data:`EFFECTS` by the kind's name. The pipeline calls every fired effect's hooks, in the
order the rules fired:

- ``before(exchange)``, before the handler: wait (latency), answer instead of it (raise the
  provider's error: http_error) or break the connection (transport ``when: before``);
- ``shape_job(plan)``: what the job a submit creates will do (job_failure, latency on the
  queue or processing, drift's image size);
- ``after(exchange, answer)``: the answer, changed (drift) or cut (transport).

A rule's checks belong to its kind too: ``admits`` (can it apply to this request at all) and
``unreachable`` (can it ever apply, given the rule's match). Adding a kind of effect is one
``$defs`` entry in the schema, named in ``effect.properties``, and one subclass here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from aiohttp import web

from ..engine.clock import VirtualClock
from ..engine.jobs import Failure, Surface
from ..names import GENERATE, answerable, declared_errors, operations
from .drift import apply_drift, drifts_here
from .transport import Broken, Outcome, Sent, break_connection, close

if TYPE_CHECKING:
    from ..contracts import Contract
    from ..http import ApiError
    from .facts import RequestFacts

__all__ = [
    "EFFECTS",
    "Drift",
    "Effect",
    "Exchange",
    "HttpError",
    "JobEffects",
    "JobFailure",
    "Latency",
    "Transport",
    "shape_job",
]

Path = tuple[str | int, ...]  # where in a rule a problem is

EFFECTS: dict[str, type[Effect]] = {}  # kind -> class; each class adds itself when defined


class Provider(Protocol):
    """What an effect asks of the provider it fires on (providers.base.Provider has it)."""

    contract: Contract

    def fault_error(
        self, status: int, message: str | None = None, retry_after: float = 60.0
    ) -> ApiError: ...


@dataclass(slots=True)
class JobEffects:
    """What fired effects decide about the job a submit creates."""

    failure: Failure | None = None
    extra_queue: float = 0.0
    extra_processing: float = 0.0
    image_scale: float = 1.0


class Exchange:
    """One request that fault effects act on, with what their hooks need. Made only when
    rules, rate limits or sources exist, or a body carries a prompt marker: the fast path
    makes none."""

    __slots__ = (
        "answered",
        "clock",
        "drifted",
        "effects",
        "facts",
        "operation",
        "provider",
        "request",
    )

    def __init__(
        self,
        request: web.Request,
        provider: Provider,
        facts: RequestFacts,
        effects: Sequence[Effect],
        clock: VirtualClock,
    ) -> None:
        self.request = request
        self.provider = provider
        self.operation = facts.operation
        self.facts = facts  # what the rules matched on (a source answers from them too)
        self.effects = effects  # in the order they fired
        self.clock = clock
        self.answered: Sent | None = None  # the answer before any after hook changed it
        self.drifted = False  # a drift changed the answer on purpose: not the mock's mistake

    async def before(self) -> Broken | None:
        """Every effect's ``before`` hook, in order, until one breaks the connection."""
        for effect in self.effects:
            broken = await effect.before(self)
            if broken is not None:
                return broken
        return None

    async def after(self, answer: Sent) -> Outcome:
        """Every effect's ``after`` hook, in order, until one breaks the connection."""
        self.answered = answer
        outcome: Outcome = answer
        for effect in self.effects:
            if isinstance(outcome, Broken):
                break
            outcome = await effect.after(self, outcome)
        return outcome


def shape_job(effects: Sequence[Effect]) -> JobEffects:
    """Fold every effect's decision about the job a submit creates into one."""
    plan = JobEffects()
    for effect in effects:
        effect.shape_job(plan)
    return plan


class Effect:
    """A fired effect of one kind: the rule (or ``"prompt"``) it came from, its parameters as
    the schema's ``$defs`` entry of its kind has them, and a uniform draw from the rule's
    seeded stream (for latency distributions)."""

    kind: ClassVar[str]  # the name in fault_rule.json's effect.properties
    ends: ClassVar[bool]  # it ends the request: no rule after it fires
    cuts: ClassVar[bool] = False  # it may cut the answer: the client may not read all of it

    __slots__ = ("draw", "params", "rule_id")

    def __init_subclass__(cls, kind: str, ends: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind in EFFECTS:
            raise TypeError(f"effect {kind!r} is defined twice")
        cls.kind = kind
        cls.ends = ends
        EFFECTS[kind] = cls

    def __init__(self, rule_id: str, params: Mapping[str, Any], draw: float = 0.0) -> None:
        self.rule_id = rule_id
        self.params = params
        self.draw = draw

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rule_id!r}, {dict(self.params)!r}, {self.draw!r})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, Effect)
            and (other.rule_id, other.params, other.draw) == (self.rule_id, self.params, self.draw)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable parameters: compared, never hashed

    @classmethod
    def admits(cls, params: Mapping[str, Any], facts: RequestFacts) -> bool:
        """Can a rule with these parameters apply to this request at all? (Checked before the
        rule counts the request as matched.)"""
        return True

    @classmethod
    def unreachable(
        cls, params: Mapping[str, Any], providers: list[str], ops: list[str]
    ) -> list[tuple[Path, str]]:
        """(path, message) for each reason a rule with these parameters, matching
        ``providers`` and ``ops`` (none: any), would never apply."""
        return []

    @classmethod
    def holds_answer(cls, params: Mapping[str, Any]) -> bool:
        """Does it hold the answer until the virtual clock moves? (On a frozen clock that
        nobody advances, the request would hang.)"""
        return False

    async def before(self, exchange: Exchange) -> Broken | None:
        """Before the handler: wait, raise the provider's error, or break the connection."""
        return None

    def shape_job(self, plan: JobEffects) -> None:
        """Change what the job a submit creates will do."""

    async def after(self, exchange: Exchange, answer: Sent) -> Outcome:
        """The answer as this effect leaves it."""
        return answer


class HttpError(Effect, kind="http_error", ends=True):
    """Answer with an HTTP error in the provider's own envelope and headers."""

    @classmethod
    def admits(cls, params: Mapping[str, Any], facts: RequestFacts) -> bool:
        return answerable(params["status"], facts.declared)  # within the operation's contract

    @classmethod
    def unreachable(
        cls, params: Mapping[str, Any], providers: list[str], ops: list[str]
    ) -> list[tuple[Path, str]]:
        """A code none of the matched operations declares: the rule would never fire."""
        reached = [(p, o) for p in providers for o in (ops or operations(p)) if o in operations(p)]
        codes = set().union(*(declared_errors(p, o) for p, o in reached))
        if answerable(params["status"], codes):
            return []
        where = ", ".join(f"{p}.{o}" for p, o in reached)
        return [
            (
                ("effect", cls.kind, "status"),
                f"{params['status']} is not an error code that {where} may answer (their "
                "contracts), so the rule would never fire; allowed: "
                + ", ".join(map(str, sorted(codes))),
            )
        ]

    async def before(self, exchange: Exchange) -> Broken | None:
        p = self.params
        raise exchange.provider.fault_error(
            p["status"], p.get("message"), p.get("retry_after", 60.0)
        )


class JobFailure(Effect, kind="job_failure"):
    """The job this submit creates fails, visibly at the chosen point."""

    @classmethod
    def unreachable(
        cls, params: Mapping[str, Any], providers: list[str], ops: list[str]
    ) -> list[tuple[Path, str]]:
        return _creates_no_job(cls.kind, ops)

    def shape_job(self, plan: JobEffects) -> None:
        if plan.failure is None:  # the first failure decided wins
            p = self.params
            plan.failure = Failure(
                error=p.get("error", "Task execution failed"),
                error_type=p.get("error_type", "INFERENCE_FAILURE"),
                surface=Surface(p.get("surface", "end")),
                after_polls=p.get("after_polls"),
            )


class Latency(Effect, kind="latency"):
    """Virtual time added before the answer, or to the job's queue wait or processing."""

    @property
    def target(self) -> str:
        """response, queue or processing."""
        return str(self.params.get("target", "response"))

    @classmethod
    def unreachable(
        cls, params: Mapping[str, Any], providers: list[str], ops: list[str]
    ) -> list[tuple[Path, str]]:
        return [] if cls.holds_answer(params) else _creates_no_job(cls.kind, ops)

    @classmethod
    def holds_answer(cls, params: Mapping[str, Any]) -> bool:
        return bool(params.get("target", "response") == "response")

    def seconds(self) -> float:
        """The delay asked for, drawn with the rule's own uniform draw."""
        p = self.params
        if "fixed" in p:
            return float(p["fixed"])
        if "uniform" in p:
            low, high = sorted(p["uniform"])
            return float(low + (high - low) * self.draw)
        median, sigma = p["lognormal"]["median"], p["lognormal"]["sigma"]
        return float(median * _lognormal_quantile(self.draw, sigma))

    async def before(self, exchange: Exchange) -> Broken | None:
        if self.holds_answer(self.params):
            clock = exchange.clock
            await clock.sleep_until(clock.now() + self.seconds())
        return None

    def shape_job(self, plan: JobEffects) -> None:
        target = self.target
        if target == "queue":
            plan.extra_queue += self.seconds()
        elif target == "processing":
            plan.extra_processing += self.seconds()


class Transport(Effect, kind="transport", ends=True):
    """A broken connection: before the handler (the request goes unseen) or after it."""

    cuts = True

    @property
    def when(self) -> str:
        return str(self.params.get("when", "after"))

    async def before(self, exchange: Exchange) -> Broken | None:
        if self.when != "before":
            return None
        return await close(exchange.request, self.params, exchange.clock)

    async def after(self, exchange: Exchange, answer: Sent) -> Outcome:
        if self.when != "after":
            return answer
        return await break_connection(exchange.request, answer, self.params, exchange.clock)


class Drift(Effect, kind="drift"):
    """A deliberate contract break: the answer edited, its code changed, or the job's images
    skewed in size."""

    def shape_job(self, plan: JobEffects) -> None:
        if "image_scale" in self.params:
            plan.image_scale *= float(self.params["image_scale"])

    async def after(self, exchange: Exchange, answer: Sent) -> Outcome:
        judged = exchange.answered if exchange.answered is not None else answer
        operations = exchange.provider.contract.api["operations"]
        if not drifts_here(operations, exchange.operation, judged.status, self.params):
            return answer
        exchange.drifted = True
        return apply_drift(answer, [self.params])


def _creates_no_job(kind: str, ops: list[str]) -> list[tuple[Path, str]]:
    """An effect on the job a submit creates, on a rule that matches no submit."""
    if not ops or GENERATE & set(ops):
        return []
    return [
        (
            ("effect", kind),
            f"changes the job a submit creates (operation {' or '.join(sorted(GENERATE))}), "
            f"but match.operation is {', '.join(ops)}: the rule would never apply",
        )
    ]


def _lognormal_quantile(u: float, sigma: float) -> float:
    u = min(max(u, 1e-12), 1 - 1e-12)
    return math.exp(sigma * NormalDist().inv_cdf(u))
