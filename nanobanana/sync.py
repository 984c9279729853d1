"""A thin synchronous facade over :class:`~nanobanana.client.Client`, for scripts.

It runs the async client on a private event loop in a background thread, so it also works
where an event loop is already running (e.g. in a notebook).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .client import Client, Violation
from .models import Image, JobHandle, Result, StatusReport

__all__ = ["SyncClient"]

T = TypeVar("T")


class SyncClient:
    """The same operations as :class:`Client`, blocking. Use ``with`` or call :meth:`close`."""

    def __init__(self, provider: str, **options: Any) -> None:
        # Built first: Client needs no loop (its session is made lazily), and a bad
        # configuration then raises before any thread or loop exists to leak.
        self._client = Client(provider, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="nanobanana"
        )
        self._thread.start()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> Client:
        return self._client

    @property
    def provider(self) -> str:
        return self._client.provider

    @property
    def base_url(self) -> str:
        return self._client.base_url

    @property
    def models(self) -> tuple[str, ...]:
        return self._client.models

    @property
    def violations(self) -> list[Violation]:
        """Strict mode's findings, as :attr:`Client.violations` (the same list)."""
        return self._client.violations

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def submit(self, model: str, **params: Any) -> JobHandle:
        return self._run(self._client.submit(model, **params))

    def status(self, handle: JobHandle) -> StatusReport:
        return self._run(self._client.status(handle))

    def result(self, handle: JobHandle) -> Result:
        return self._run(self._client.result(handle))

    def cancel(self, handle: JobHandle) -> bool:
        return self._run(self._client.cancel(handle))

    def wait(self, handle: JobHandle, **options: Any) -> Result:
        return self._run(self._client.wait(handle, **options))

    def generate(self, model: str, **params: Any) -> Result:
        return self._run(self._client.generate(model, **params))

    def generate_sync(self, model: str, **params: Any) -> Result:
        return self._run(self._client.generate_sync(model, **params))

    def download(self, image: Image) -> Image:
        return self._run(self._client.download(image))

    def download_all(self, result: Result) -> Result:
        return self._run(self._client.download_all(result))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
