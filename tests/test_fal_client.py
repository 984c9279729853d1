"""The official fal.ai Python client (fal-client 1.0.3) works unchanged against the mock.

fal-client has no base-URL option and always speaks HTTPS: it reads ``FAL_QUEUE_RUN_HOST`` and
``FAL_RUN_HOST`` (host:port and a path prefix) when it is imported, and httpx trusts
``SSL_CERT_FILE``. So each test starts the mock with ``tls_port=0`` (a test CA, made with
trustme), sets the variables the banner prints, and imports the client afresh. The client is
synchronous and polls every 0.1 s, so it runs in a worker thread while the mock serves on the
test's event loop, and the test moves the frozen virtual clock through the control plane.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import pytest

from nanobanana_mock.control.client import MockControl
from nanobanana_mock.tls import fal_environment
from tests.harness import serving, validate

pytest.importorskip("fal_client")

KEY = "fal-id:fal-secret"


class Fal:
    """A TLS mock and a fal_client module imported against it."""

    def __init__(self, client: ModuleType, control: MockControl, base: str) -> None:
        self.client = client
        self.control = control
        self.base = base

    async def run(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call`` in a thread, the clock moved on by the control plane until it returns."""
        done = asyncio.ensure_future(asyncio.to_thread(call, *args, **kwargs))
        for _ in range(400):  # bounded: 400 steps of 1 virtual second, 8 s of wall time
            if done.done():
                break
            await asyncio.to_thread(self.control.clock.advance, 1.0)
            await asyncio.sleep(0.02)
        return await asyncio.wait_for(done, 30)


@pytest.fixture
async def fal(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fal]:
    async with serving(tls_port=0, workers=1) as (served, _state):
        assert served.tls_port and served.ca_file and served.ca_file.is_file()
        line = fal_environment(
            "127.0.0.1", served.tls_port, "/fal/queue", "/fal/run", served.ca_file
        )
        for pair in line.split():  # exactly the banner's line
            name, _, value = pair.partition("=")
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("FAL_KEY", KEY)
        for name in [m for m in sys.modules if m == "fal_client" or m.startswith("fal_client.")]:
            monkeypatch.delitem(sys.modules, name)
        client = importlib.import_module("fal_client")
        base = f"https://127.0.0.1:{served.tls_port}"
        yield Fal(client, MockControl(served.base_url), base)


async def _size(fal: Fal, url: str) -> tuple[int, int]:
    import io

    import httpx
    from PIL import Image

    assert url.startswith(fal.base + "/_mock/files/"), url
    data = await asyncio.to_thread(lambda: httpx.get(url).content)  # SSL_CERT_FILE trusted
    return Image.open(io.BytesIO(data)).size


async def test_subscribe_returns_the_images(fal: Fal) -> None:
    seen: list[str] = []
    result = await fal.run(
        fal.client.subscribe,
        "fal-ai/nano-banana-pro",
        arguments={"prompt": "a banana", "aspect_ratio": "16:9", "resolution": "2K"},
        with_logs=True,
        on_queue_update=lambda status: seen.append(type(status).__name__),
    )
    validate("fal", "output", result)
    (image,) = result["images"]
    assert (image["width"], image["height"]) == (2752, 1536)
    assert await _size(fal, image["url"]) == (2752, 1536)
    assert "InProgress" in seen


async def test_submit_status_result(fal: Fal) -> None:
    handle = await asyncio.to_thread(
        fal.client.submit,
        "fal-ai/nano-banana-2/edit",
        arguments={"prompt": "make it blue", "image_urls": ["https://a.example/in.png"]},
    )
    assert handle.status_url.startswith(fal.base + "/fal/queue/fal-ai/nano-banana-2/requests/")
    status = await asyncio.to_thread(fal.client.status, "fal-ai/nano-banana-2", handle.request_id)
    assert isinstance(status, fal.client.Queued)
    await asyncio.to_thread(fal.control.clock.advance, 2)
    status = await asyncio.to_thread(
        fal.client.status, "fal-ai/nano-banana-2", handle.request_id, with_logs=True
    )
    assert isinstance(status, fal.client.InProgress) and status.logs
    await asyncio.to_thread(fal.control.clock.advance, 60)
    status = await asyncio.to_thread(handle.status)
    assert isinstance(status, fal.client.Completed) and status.error is None
    result = await asyncio.to_thread(
        fal.client.result, "fal-ai/nano-banana-2/edit", handle.request_id
    )
    assert result["images"][0]["content_type"] == "image/png"


async def test_cancel(fal: Fal) -> None:
    handle = await asyncio.to_thread(
        fal.client.submit, "fal-ai/nano-banana", arguments={"prompt": "x"}
    )
    await asyncio.to_thread(fal.client.cancel, "fal-ai/nano-banana", handle.request_id)
    status = await asyncio.to_thread(handle.status)
    assert isinstance(status, fal.client.Completed) and status.error_type == "CANCELED"
    with pytest.raises(fal.client.FalClientHTTPError) as caught:
        await asyncio.to_thread(handle.cancel)  # already completed: 400
    assert caught.value.status_code == 400


async def test_run_is_the_synchronous_form(fal: Fal) -> None:
    result = await fal.run(
        fal.client.run, "fal-ai/nano-banana", arguments={"prompt": "x", "num_images": 2}
    )
    validate("fal", "output", result)
    assert len(result["images"]) == 2


async def test_an_invalid_body_raises_with_fals_detail(fal: Fal) -> None:
    with pytest.raises(fal.client.FalClientHTTPError) as caught:
        await asyncio.to_thread(
            fal.client.submit,
            "fal-ai/nano-banana",
            arguments={"prompt": "x", "safety_tolerance": 4},
        )
    assert caught.value.status_code == 422
