"""The seam between requests and where state lives: a :class:`Tenant`, one per tenant name.

A request finds its tenant (the ``/t/{tenant}/`` prefix, the ``X-Mock-Tenant`` header, or the
default one) and makes it current (:func:`current`) for everything it calls. It then:

- ``await tenant.begin(True)`` before it reads anything of the tenant's state;
- changes the state only through ``await tenant.do(name, *args)`` (``ops.py``);
- ``await tenant.end(entry)`` when its answer is decided, with its journal entry.

In memory (this module) ``do`` is a call, and ``begin`` and ``end`` do nothing. A shared
store's tenant (``redis.py``) keeps a copy of the state in each process and keeps it up to
date: ``begin`` and ``do`` bring it up to date, ``do`` appends the operation to the store's
log, and ``end`` writes the journal entry to the shared journal.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .ops import OPS

if TYPE_CHECKING:
    from ..engine.journal import Entry
    from ..state import MockState

__all__ = ["DEFAULT", "PARAM", "Stale", "StoreUnavailable", "Tenant", "current", "prefix", "use"]

DEFAULT = ""  # the tenant of a request with no prefix and no header: the mock's own state
PARAM = "tenant"  # the route parameter of the /t/{tenant}/ prefix


class StoreUnavailable(Exception):
    """The shared store cannot be reached (or answered in a way the mock cannot use): the
    request gets its provider's 503 naming the cause in ``X-Mock-Store`` (never a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stale(Exception):
    """A request was planned on a copy of the state that a control-plane change (logged by
    another process meanwhile) made out of date; nothing was changed, and the pipeline
    serves the request again from the top, now up to date."""


class Tenant:
    """A tenant whose state lives in this process only (``--store memory``)."""

    remote = False  # does its state live elsewhere (a shared store)?

    def __init__(self, name: str, state: MockState) -> None:
        self.name = name
        self.state = state
        self.last_used = 0.0  # wall-clock seconds (time.monotonic) of its last request
        # the path prefix of the URLs its answers hold: /t/<name>, nothing for the default
        self.prefix = f"/t/{name}" if name else ""

    def draws(self, stream: str) -> random.Random:
        """A random stream for a draw outside every operation (a header's id): in memory the
        state's own stream; a shared store derives it from the tenant's log position, so it
        does not depend on which process serves."""
        return self.state.rng(stream)

    async def begin(self, journaled: bool = False) -> None:
        """Before a request reads the state (a shared store brings its copy up to date);
        ``journaled``: the request will :meth:`end` with its journal entry (a provider's
        request; the control plane's are not journaled)."""

    async def do(self, name: str, *args: Any) -> Any:
        """Apply operation ``name`` (``ops.OPS``) to the state; its result, or it raises."""
        return OPS[name](self.state, *args)  # ops.apply, one call fewer

    async def sync(self) -> None:
        """Bring this process's copy of the state up to date (in memory, it is)."""

    async def end(self, entry: Entry | None) -> None:
        """A request's answer is decided; ``entry`` is its journal entry, complete."""

    async def journal(
        self, filters: dict[str, Any], since: int, limit: int | None
    ) -> dict[str, Any]:
        """The journal query of the control plane (``Journal.query``)."""
        return self.state.journal.query(filters, since, limit)

    async def entries(self) -> tuple[list[Entry], int]:
        """The journal's entries kept, oldest first, and how many were ever recorded (the
        scorecard's input)."""
        journal = self.state.journal
        return journal.entries(), journal.total

    async def clear_journal(self) -> None:
        self.state.journal.clear()


_CURRENT: ContextVar[Tenant] = ContextVar("nanobanana_mock_tenant")


def prefix() -> str:
    """The URL path prefix of the tenant being served (``""``: the default one, or none)."""
    tenant = _CURRENT.get(None)
    return tenant.prefix if tenant is not None else ""


# The tenant of the request being served (set by use(tenant), for the rest of that request:
# its task's context). The ContextVar's own method, bound: no Python frame on the hot path,
# where providers look the tenant up a few times per request.
current: Callable[[], Tenant] = _CURRENT.get


def use(tenant: Tenant) -> None:
    """Make ``tenant`` current for the rest of this request (its task's context).

    Setting a ContextVar makes a new mapping and a token (about 0.4 µs); a request's task
    starts from a copy of its connection's context, and the app's start-up leaves that
    holding the default tenant (:func:`adopt`), so a default tenant's request sets nothing."""
    if _CURRENT.get(None) is not tenant:
        _CURRENT.set(tenant)


def adopt(tenant: Tenant) -> None:
    """Make ``tenant`` current in the calling context (an app's start-up: the server's
    connections, and so their requests, inherit it)."""
    _CURRENT.set(tenant)
