"""The tenants of one mock, by name: where each request's :class:`~.tenant.Tenant` is found.

``--store memory`` (the default) keeps every tenant's state in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..state import MockState
from .tenant import DEFAULT, Tenant

if TYPE_CHECKING:
    from ..config import MockConfig

__all__ = ["TENANTS", "Tenants"]


class Tenants:
    """Every tenant of one app. Today only the default tenant (the mock's own state)."""

    def __init__(self, default: MockState) -> None:
        self.default = Tenant(DEFAULT, default)

    async def get(self, name: str = DEFAULT) -> Tenant:
        """The tenant ``name`` (the default one for ``""``)."""
        return self.default

    async def of(self, request: web.Request) -> Tenant:
        """The tenant a request names (its ``/t/{tenant}/`` prefix or ``X-Mock-Tenant``)."""
        return self.default

    def health(self) -> dict[str, Any]:
        """What ``/_mock/health`` says of the store."""
        return {"store": "memory"}

    async def close(self) -> None:
        """Let go of the store's connections (the app's cleanup)."""

    @staticmethod
    def config_of(tenant: Tenant) -> MockConfig:
        return tenant.state.config


TENANTS = web.AppKey("mock_tenants", Tenants)
