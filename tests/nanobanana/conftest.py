"""Fixtures for the client tests: a client per provider whose sleeps advance the mock's clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from nanobanana_mock.client import Client, RetryPolicy
from tests.harness import KEYS, Mock

KEY = {
    "segmind": KEYS["segmind"]["x-api-key"],
    "seaart": "sk-test",
    "pixazo": "pz-test",
    "fal": "fal-id:fal-secret",
}
KEY["gemini"] = KEYS["gemini"]["x-goog-api-key"]
MODEL = {
    "segmind": "nano-banana",
    "seaart": "nano_banana_pro",
    "pixazo": "nano-banana-pro",
    "fal": "nano-banana-pro",
}
PARAMS = {
    "segmind": {"prompt": "Dancing Banana"},
    "seaart": {"prompt": "A red apple"},
    "pixazo": {"prompt": "a car", "image_urls": ["https://a.io/in.png"]},
    "fal": {"prompt": "a banana"},
}


class MockTimer:
    """The client's clock is the mock's virtual clock: a sleep advances it, instantly."""

    def __init__(self, mock: Mock) -> None:
        self.mock = mock
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.mock.state.clock.now()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mock.advance(seconds)
        await asyncio.sleep(0)


ClientFactory = Callable[..., Client]


@pytest.fixture
async def make_client(mock: Mock) -> AsyncIterator[ClientFactory]:
    made: list[Client] = []

    def make(provider: str, **options: Any) -> Client:
        options.setdefault("timer", MockTimer(mock))
        options.setdefault("retry", RetryPolicy(seed=1))
        client = Client(provider, api_key=KEY[provider], base_url=mock.base, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
