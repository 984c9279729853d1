"""Every change to a tenant's state, by name: the only writes a request or the control plane
makes to a :class:`~..state.MockState`.

A change is an operation ``(name, args)`` applied to a state by :func:`apply`. In memory it
is a function call. In a shared store every process keeps a copy of the tenant's state and
applies the same operations in the same order (the store's log), each at the virtual time
the log stamped on it, so every copy is the same and an operation's answer (a job, its
state, the effects that fired) is the same whichever process asks. So an operation's
arguments are plain data (no API key in clear: fingerprints and redacted names only), and
its function reads nothing but the state, the arguments and the clock.

An operation that raises raises the same on every copy; only the process that asked sees
it. Reads need no operation: a process reads its copy once it is up to date
(``Tenant.sync``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nanobanana_mock.schemas.lifecycle import EXPIRED as GONE  # a job forced to expire

from ..contracts import contract
from ..engine.jobs import TERMINAL, Failure, Job, State
from ..engine.simulation import ID_MAKERS, PLAIN, JobShape, NotCancellable, uuid4

if TYPE_CHECKING:
    from ..config import MockConfig
    from ..faults.effects import Effect
    from ..faults.rules import RequestFacts
    from ..state import MockState

__all__ = ["CONTROL", "GONE", "OPS", "JobGone", "apply"]

Op = Callable[..., Any]
OPS: dict[str, Op] = {}
CONTROL: set[str] = set()  # operations of the control plane (a change of how requests are planned)


def op(control: bool = False) -> Callable[[Op], Op]:
    def register(function: Op) -> Op:
        OPS[function.__name__] = function
        if control:
            CONTROL.add(function.__name__)
        return function

    return register


def apply(state: MockState, name: str, args: tuple[Any, ...]) -> Any:
    """Apply operation ``name`` to ``state`` (its result, or what it raises)."""
    return OPS[name](state, *args)


class JobGone(LookupError):
    """The control plane named a job the tenant no longer shows."""


# -- requests ----------------------------------------------------------------------------------


@op()
def submit(
    state: MockState,
    provider: str,
    model: str,
    body: dict[str, Any],
    owner: str,
    shown: str | None,
    kind: str = "",
    shape: JobShape = PLAIN,
) -> Job:
    """Charge and create a job of ``kind`` (``Simulator.submit``); ``shown`` is the key as
    the ledger shows it (redacted)."""
    spec = contract(provider).models[model]
    new_id = ID_MAKERS.get(provider, uuid4)
    return state.sim.submit(spec, body, owner, shown=shown, shape=shape, new_id=new_id, kind=kind)


@op()
def read(
    state: MockState,
    provider: str,
    request_id: str,
    owner: str,
    model: str | None,
    poll: bool,
    kind: str | None = None,
) -> tuple[Job, State]:
    return state.sim.read(provider, request_id, owner, model, poll=poll, kind=kind)


@op()
def cancel(state: MockState, provider: str, request_id: str, owner: str, model: str | None) -> Job:
    return state.sim.cancel(provider, request_id, owner, model)


@op()
def delete(state: MockState, provider: str, request_id: str, owner: str, kind: str) -> Job:
    """Forget the owner's job of ``kind`` (``Simulator.delete``); raises ``UnknownJob``."""
    return state.sim.delete(provider, request_id, owner, kind)


@op()
def evaluate(state: MockState, facts: RequestFacts) -> list[Effect]:
    """The fault rules that fire for a request (each rule's counters and draws move)."""
    return state.faults.evaluate(facts, state.clock.now()) if state.faults.rules else []


@op()
def take(state: MockState, key_id: str, generate: bool) -> float | None:
    """A rate-limit token for a key fingerprint: None, or how long to wait."""
    return state.limiter.take(key_id, generate, state.clock.now())


# -- the control plane -------------------------------------------------------------------------


@op(control=True)
def reset(state: MockState, config: MockConfig, scenarios: list[dict[str, Any]]) -> None:
    from ..control.api import apply_scenario  # the scenario's rules, credits and limits

    state.reset(config)
    for scenario in scenarios:
        apply_scenario(state, scenario)


@op(control=True)
def clock(state: MockState, move: str, value: float) -> tuple[float, float]:
    """``advance`` by, move ``to``, or set the ``speed``; raises ValueError past the maximum
    time. Returns (now, speed)."""
    if move == "advance":
        state.clock.advance(value)
    elif move == "to":
        state.clock.advance_to(value)
    else:
        state.clock.set_speed(value)
    return state.clock.now(), state.clock.speed


@op(control=True)
def force(state: MockState, job_id: str, wanted: str, failure: Failure | None) -> Job:
    """Force a job to a terminal state now, or expire it (``GONE``). Raises :class:`JobGone`,
    or :class:`NotCancellable` when it is already terminal."""
    now = state.clock.now()
    job = state.store.get(job_id, now)
    if job is None:
        raise JobGone(job_id)
    if wanted == GONE:
        job.expires_at = now
        return job
    if job.state(now) in TERMINAL:
        raise NotCancellable(job.state(now))
    if failure is not None:
        state.store.fail(job, dataclasses.replace(failure, at=now), now)
    elif wanted == State.CANCELLED:
        state.store.cancel(job, now)
    else:
        state.store.finish(job, now)
    return job


@op(control=True)
def add_faults(state: MockState, specs: list[Any]) -> list[str]:
    """Add rules, all or none: the first refused (``RuleError``, with its index as
    ``err.index``) removes those added before it."""
    from ..faults.rules import RuleError

    added: list[str] = []
    for index, spec in enumerate(specs):
        try:
            added.append(state.faults.add(spec, state.clock.now()).id)
        except RuleError as err:
            for rule_id in added:
                state.faults.remove(rule_id)
            err.index = index
            raise
    return added


@op(control=True)
def remove_fault(state: MockState, rule_id: str) -> bool:
    return state.faults.remove(rule_id)


@op(control=True)
def clear_faults(state: MockState) -> None:
    state.faults.clear()


@op(control=True)
def set_credits(
    state: MockState, default: float | None, key_id: str | None, shown: str | None, balance: float
) -> None:
    if default is not None:
        state.ledger.set_default(default)
    if key_id is not None:
        state.ledger.set_id(key_id, shown, balance)


@op(control=True)
def clear_credits(state: MockState) -> None:
    state.ledger.disable()


@op(control=True)
def set_limits(
    state: MockState, rpm: float, key_id: str | None, shown: str | None, scope: str
) -> None:
    """Raises ``LimitError`` past the number of keys a limiter keeps."""
    state.limiter.set_id(rpm, key_id, shown, scope)


@op(control=True)
def clear_limits(state: MockState) -> None:
    state.limiter.clear()
