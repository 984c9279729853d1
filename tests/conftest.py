"""Shared fixtures: a real mock on a loopback port, with a frozen virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from nanobanana_mock.app import create_app
from nanobanana_mock.config import MockConfig
from nanobanana_mock.state import STATE
from tests.harness import Mock
from tests.redis_server import redis_server, redis_session  # noqa: F401 (a real Redis)

# Frozen clock, exact timings, self-check on: every response is validated by the mock itself,
# and again by the tests through tests.harness.
BASE_CONFIG = {
    "seed": 7,
    "time_scale": 0.0,
    "self_check": True,
    "processing_jitter": 0.0,
    "queue_seconds": 1.0,
    "workers": 2,
}

MockFactory = Callable[..., Awaitable[Mock]]


@pytest.fixture
async def mock_factory(aiohttp_client: Any) -> AsyncIterator[MockFactory]:
    """Start mocks with settings of the test's choosing; each is checked for violations."""
    started: list[Mock] = []

    async def start(**overrides: Any) -> Mock:
        app = create_app(MockConfig(**{**BASE_CONFIG, **overrides}))
        client = await aiohttp_client(app)
        mock = Mock(client, app[STATE])
        started.append(mock)
        return mock

    yield start
    for mock in started:
        assert mock.state.violations == [], "the mock broke its own contract"


@pytest.fixture
async def mock(mock_factory: MockFactory) -> Mock:
    return await mock_factory()
