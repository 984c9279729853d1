"""The tenants of one mock, by name: where each request's :class:`~.tenant.Tenant` is found.

A request names its tenant by a path prefix ``/t/{tenant}/`` before any path of the mock (a
provider's, the images', the control plane's), or by an ``X-Mock-Tenant`` header; with
neither it is the default tenant, the mock's own state (today's behaviour, at today's
cost). Both may be given if they agree. A name is 1 to 64 characters of ``A-Z a-z 0-9 . _
-``, other than ``.`` and ``..`` (which URL libraries resolve away).

A named tenant is made on first use, as the default one is at start-up: a fresh state under
the start-up settings with the start-up scenario applied. Their number is bounded
(``max_tenants``, the default tenant not counted): one more evicts the one used least
recently. A tenant unused for ``tenant_idle_seconds`` (wall clock) is evicted when next
named, or when a newer lookup finds it oldest; either way an evicted tenant named again
starts afresh. Tenants are kept in order of last use, so eviction looks at the oldest one
only: nothing per request walks them all.

``--store memory`` (the default) keeps every tenant's state in this process
(:class:`Tenants`); ``redis://`` shares them between processes (``redis.py``), through the
same interface: :meth:`Tenants.get`, :meth:`Tenants.of`, :meth:`Tenants.health`,
:meth:`Tenants.close`, and :meth:`Tenants._make`, the one place a tenant is made."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import istr

from ..state import MockState
from .tenant import DEFAULT, PARAM, Tenant

if TYPE_CHECKING:
    from ..config import MockConfig

__all__ = [
    "HEADER",
    "PARAM",
    "TENANTS",
    "TenantError",
    "Tenants",
    "check_name",
    "make_tenants",
]

HEADER = "X-Mock-Tenant"  # names the tenant of a request without a /t/{tenant}/ prefix
TENANT_HEADER = istr(HEADER)  # looked up on every request: case-folded once, here
MAX_NAME = 64
NAME_RULE = f"1 to {MAX_NAME} characters of A-Z a-z 0-9 . _ - (not '.' or '..')"
_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_NAME}}}")


class TenantError(ValueError):
    """A request named no usable tenant: a bad name, or a prefix and a header that differ."""


def check_name(name: str, where: str) -> str:
    """``name`` if it may name a tenant, else a :class:`TenantError` saying why."""
    if _NAME.fullmatch(name) and name not in (".", ".."):
        return name
    shown = name[:MAX_NAME].encode("unicode_escape").decode("ascii")
    cut = "..." if len(name) > MAX_NAME else ""
    raise TenantError(f"invalid tenant name {shown!r}{cut} in {where}: a name is {NAME_RULE}")


class Tenants:
    """Every tenant of one app: the default one, and named ones made on first use.

    ``wall`` is the clock of idleness (``time.monotonic``; a test passes its own)."""

    remote = False  # do its tenants' states live elsewhere (a shared store)?

    def __init__(
        self,
        config: MockConfig,
        default: MockState,
        scenario: dict[str, Any] | None = None,
        *,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.scenario = scenario or {}
        self.default = Tenant(DEFAULT, default)
        self.max_tenants = config.max_tenants
        self.idle_seconds = config.tenant_idle_seconds
        self.wall = wall
        self.evicted = 0  # tenants evicted so far (idle or over the bound)
        self._named: OrderedDict[str, Tenant] = OrderedDict()  # least recently used first
        self.default.last_used = wall()

    # -- the interface --------------------------------------------------------------------

    async def get(self, name: str = DEFAULT) -> Tenant:
        """The tenant ``name`` (the default one for ``""``), made if it is new (or was
        evicted). ``name`` must be valid (:func:`check_name`)."""
        if not name:
            return self.default
        now = self.wall()
        tenant = self._named.get(name)
        if tenant is not None and now - tenant.last_used > self.idle_seconds:
            self._evict(name)  # idle too long: it starts afresh
            tenant = None
        if tenant is None:
            self._evict_idle(now)
            made = await self._make(name)
            tenant = self._named.get(name)  # made meanwhile by a concurrent first request?
            if tenant is None:
                tenant = self._named[name] = made
                while len(self._named) > self.max_tenants:
                    self._evict(next(iter(self._named)))  # the least recently used
        else:
            self._named.move_to_end(name)
            if len(self._named) > 1:
                self._evict_idle(now)
        tenant.last_used = now
        return tenant

    async def of(self, request: web.Request) -> Tenant:
        """The tenant a request names: its ``/t/{tenant}/`` prefix or ``X-Mock-Tenant``
        header (both, if they agree), else the default one. Raises :class:`TenantError`."""
        prefixed = request.match_info.get(PARAM)
        header = request.headers.get(TENANT_HEADER)
        if prefixed is None and header is None:
            return self.default  # the fast path: today's requests
        if prefixed is not None:
            if prefixed not in self._named:
                check_name(prefixed, "the path prefix /t/{tenant}/")
            if header is not None and header != prefixed:
                raise TenantError(
                    f"the path prefix names tenant {prefixed!r} but the {HEADER} header "
                    f"names another; give one, or the same in both"
                )
            return await self.get(prefixed)
        assert header is not None
        if header not in self._named:
            check_name(header, f"the {HEADER} header")
        return await self.get(header)

    async def check(self) -> None:
        """Find out whether the store answers now (``/_mock/health`` asks before it says);
        in memory it always does."""

    def health(self) -> dict[str, Any]:
        """What ``/_mock/health`` says of the store: its kind and how many tenants it holds
        (the default one counted)."""
        self._evict_idle(self.wall())
        return {"store": "memory", "tenants": 1 + len(self._named)}

    async def close(self) -> None:
        """Let go of the store's connections (the app's cleanup). In memory: forget the
        named tenants."""
        self._named.clear()

    # -- for subclasses, the control plane and the tests -----------------------------------

    async def _make(self, name: str) -> Tenant:
        """A new tenant ``name`` (the one place a tenant is made: a shared store makes its
        own kind). Here: a fresh state, as the default tenant's was made at start-up."""
        return Tenant(name, self.fresh_state())

    def fresh_state(self) -> MockState:
        """A state as the default tenant had at start-up: the start-up settings, a clock at
        0, the start-up scenario applied. It shares the default state's image cache (images
        are deterministic; one pool of render processes) and its list of violations."""
        from ..control.api import apply_scenario  # the scenario's rules, credits and limits

        base = self.default.state
        state = MockState.create(self.config, images=base.images)
        state.violations = base.violations
        apply_scenario(state, self.scenario)
        return state

    def named(self) -> Iterator[Tenant]:
        """The named tenants, most recently used first (after evicting the idle ones)."""
        self._evict_idle(self.wall())
        return reversed(list(self._named.values()))

    def __len__(self) -> int:
        """The named tenants held (the default one not counted)."""
        return len(self._named)

    def idle_for(self, tenant: Tenant) -> float:
        """Wall seconds since ``tenant`` last served a request."""
        return max(0.0, self.wall() - tenant.last_used)

    @staticmethod
    def config_of(tenant: Tenant) -> MockConfig:
        return tenant.state.config

    def _evict_idle(self, now: float) -> None:
        """Evict the tenants idle longer than ``tenant_idle_seconds``: the oldest first, and
        only while the oldest is idle (so a lookup usually looks at one tenant)."""
        named = self._named
        while named:
            oldest = next(iter(named.values()))
            if now - oldest.last_used <= self.idle_seconds:
                return
            self._evict(oldest.name)

    def _evict(self, name: str) -> None:
        """Forget tenant ``name``; the next request naming it makes it anew. A request still
        being served on it ends on the old state, and one waiting on its clock (a Segmind
        ``/v1`` call, a latency) is answered at once, as after a reset (a 503: send it again):
        nothing could move that clock any more."""
        self._named.pop(name).state.clock.stop()
        self.evicted += 1


def make_tenants(
    config: MockConfig, default_state: MockState, base_scenario: dict[str, Any]
) -> Tenants:
    """The tenants of an app, where ``config.store`` says their state lives: in this process
    (``memory``, the default) or in Redis (``redis://host:port/db``)."""
    if config.store.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisTenants  # type: ignore[import-not-found,unused-ignore]

        tenants: Tenants = RedisTenants(config, default_state, base_scenario)
        return tenants
    return Tenants(config, default_state, base_scenario)


TENANTS = web.AppKey("mock_tenants", Tenants)
