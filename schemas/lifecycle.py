"""The provider-neutral job lifecycle, as ``lifecycle.schema.json`` declares it.

The states are the schema's ``stateName`` enum, the terminal ones its ``terminalStateName``
enum, and ``EXPIRED`` the pseudo-state a lifecycle route may answer for an id that is gone.
Each provider's ``lifecycle.json`` maps them to its wire strings. Code that branches on a
state names it as a :class:`State` member; every member's value is read from the schema, and
importing this module fails if the two ever differ.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from . import load

__all__ = ["EXPIRED", "STATES", "TERMINAL", "State"]

_DEFS: dict[str, Any] = load("", "lifecycle.schema")["$defs"]
STATES: tuple[str, ...] = tuple(_DEFS["stateName"]["enum"])
"""Every provider-neutral state, in the schema's order."""


def _declared(name: str) -> str:
    if name not in STATES:
        raise ImportError(f"lifecycle.schema.json has no state {name!r}")
    return name


class State(StrEnum):
    """A provider-neutral job state (``str(state)`` is its name)."""

    QUEUED = _declared("QUEUED")
    RUNNING = _declared("RUNNING")
    SUCCEEDED = _declared("SUCCEEDED")
    FAILED = _declared("FAILED")
    CANCELLED = _declared("CANCELLED")

    @property
    def terminal(self) -> bool:
        """A state the job never leaves."""
        return self in TERMINAL


if tuple(State) != STATES:
    raise ImportError(f"State lists {list(State)}, lifecycle.schema.json {list(STATES)}")

TERMINAL: frozenset[State] = frozenset(State(s) for s in _DEFS["terminalStateName"]["enum"])
"""The states a job never leaves."""

(EXPIRED,) = (s for s in _DEFS["route"]["propertyNames"]["enum"] if s not in STATES)
"""The pseudo-state of an id that is gone: a lifecycle route's answer, never a job's state."""
