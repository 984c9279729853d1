"""Test helpers: talk to a mock over HTTP and check every answer against the contracts."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from PIL import Image

from nanobanana_mock import schemas
from nanobanana_mock.app import create_app
from nanobanana_mock.config import MockConfig
from nanobanana_mock.server import Served, serve_app
from nanobanana_mock.state import STATE, MockState

KEYS = {
    "segmind": {"x-api-key": "SG_0123456789abcdef"},
    "seaart": {"Authorization": "Key sk-test"},
    "pixazo": {"Ocp-Apim-Subscription-Key": "pz-test"},
    "gemini": {"x-goog-api-key": "AIza-test-0123456789"},
    "fal": {"Authorization": "Key fal-id:fal-secret"},
}


def schema_for(provider: str, operation: str, status: int) -> str:
    """The schema api.json names for this operation's answer, failing if none is listed."""
    responses = schemas.load(provider, "api")["operations"][operation]["responses"]
    assert str(status) in responses, f"{provider}.{operation} may not answer {status}"
    spec = responses[str(status)]
    assert "schema" in spec, f"{provider}.{operation} {status} is not a JSON answer"
    return str(spec["schema"])


def validate(provider: str, schema: str, body: Any) -> None:
    """``body`` (parsed from the wire) keeps its contract, an integer written as one (12, not
    12.0: a client parsing it would get a float)."""
    check = schemas.validator(provider, schema, exact_integers=True)
    errors = sorted(check.iter_errors(body), key=str)
    assert not errors, f"{provider}/{schema}.json: " + "; ".join(e.message for e in errors)


class Mock:
    """One running mock: its client, its state (for the clock) and contract checks."""

    def __init__(self, client: TestClient, state: MockState) -> None:
        self.client = client
        self.state = state

    @property
    def base(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def advance(self, seconds: float) -> float:
        return self.state.clock.advance(seconds)

    async def call(
        self,
        provider: str,
        operation: str,
        method: str,
        path: str,
        *,
        expect: int | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        **kwargs: Any,
    ) -> tuple[ClientResponse, Any]:
        """Send a request and check the answer against the contract; returns (resp, body)."""
        sent = {**(KEYS[provider] if auth else {}), **(headers or {})}
        resp = await self.client.request(method, path, headers=sent, **kwargs)
        raw = await resp.read()
        if expect is not None:
            assert resp.status == expect, f"{method} {path}: {resp.status} {raw[:300]!r}"
        body: Any = raw
        if resp.content_type == "application/json":
            body = json.loads(raw)
            validate(provider, schema_for(provider, operation, resp.status), body)
        return resp, body

    async def image(self, url: str) -> Image.Image:
        """Download an output image from the URL the mock gave and decode it."""
        assert url.startswith(self.base), f"{url} does not point back at the mock"
        resp = await self.client.get(url[len(self.base) :])
        assert resp.status == 200, await resp.text()
        data = await resp.read()
        assert int(resp.headers["Content-Length"]) == len(data)
        return decoded_image(data, resp.content_type)


def decoded_image(data: bytes, content_type: str) -> Image.Image:
    """``data`` decoded, checked to be the image type ``content_type`` advertises."""
    picture = Image.open(io.BytesIO(data))
    picture.load()
    assert Image.MIME[picture.format] == content_type
    return picture


@asynccontextmanager
async def serving(**settings: Any) -> AsyncIterator[tuple[Served, MockState]]:
    """A mock started by the one start path (the CLI's), on a free loopback port, checking
    its own answers."""
    config = MockConfig(
        **{"port": 0, "time_scale": 0.0, "self_check": True, "processing_jitter": 0.0, **settings}
    )
    app = create_app(config)
    served = await serve_app(app, config)
    try:
        yield served, app[STATE]
    finally:
        await served.close()
    assert app[STATE].violations == [], "the mock broke its own contract"


async def largest_stall(
    target: Mock | Callable[[str], Awaitable[Any]], work: Awaitable[Any], timeout: float = 60.0
) -> float:
    """Run ``work`` while /_mock/health is polled; the longest gap between two health answers
    is how long the event loop was blocked (the mock runs in this process, on this loop).
    ``target`` is a mock, or a function that GETs a path of one (e.g. from a session)."""
    get = target.client.get if isinstance(target, Mock) else target
    done = asyncio.Event()
    worst = 0.0

    async def poll() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done.is_set():
            resp = await get("/_mock/health")
            await resp.read()
            now = time.perf_counter()
            worst, last = max(worst, now - last), now
            await asyncio.sleep(0.002)

    poller = asyncio.create_task(poll())
    await asyncio.sleep(0.02)  # the poller is running before the work starts
    try:
        await asyncio.wait_for(work, timeout)
    finally:
        done.set()
        await poller
    return worst


@asynccontextmanager
async def releasing(mock: Mock, step: float) -> AsyncIterator[None]:
    """Inside, whenever an answer sleeps on the (frozen) mock clock, the clock moves on by
    ``step`` virtual seconds: a call that waits for its job ends with no wall-clock wait."""

    async def release() -> None:
        clock = mock.state.clock
        while True:
            await clock.wait_for_sleepers(1)
            mock.advance(step)
            await asyncio.sleep(0)  # the woken answer leaves sleep_until before we look again

    pump = asyncio.ensure_future(release())
    try:
        yield
    finally:
        pump.cancel()
        with suppress(asyncio.CancelledError):
            await pump


BANNER_URL = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")


@contextmanager
def mock_process(command: Sequence[str], **popen: Any) -> Iterator[tuple[str, str]]:
    """Run a command line that starts the mock (give it ``--port 0``) and yield the base URL
    its banner's first line names, and that line; the process is terminated on the way out."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, **popen)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = BANNER_URL.search(first)
        if found is None:
            process.kill()
            rest = process.communicate(timeout=30)[0] or ""
            raise AssertionError(f"the mock did not start: {first}{rest[:2000]}")
        yield found.group(1), first
    finally:
        process.terminate()
        process.wait(timeout=30)


def mock_refuses(*args: str) -> str:
    """Run ``python -m nanobanana_mock --port 0 ARGS``, which must refuse to start (exit 2,
    within a minute); returns its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "nanobanana_mock", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    return proc.stderr
