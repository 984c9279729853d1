"""The client reaches fal's real hosts in fal's real layout (``queue.fal.run/fal-ai/...``), and
the mock in the mock's (``/fal/queue/fal-ai/...``): the base URL decides (``schemas.hosts``).
Only loopback addresses are ever sent to: the real layout is checked on a stand-in."""

from __future__ import annotations

import re

import pytest

from nanobanana_mock.client import Client, ConfigurationError, RetryPolicy
from nanobanana_mock.client.models import JobHandle
from nanobanana_mock.client.providers import adapter
from tests.fal_standin import FalStandIn, closed_port
from tests.harness import Mock

from .conftest import KEY, MockTimer

BODY = {"prompt": "a banana"}


def test_the_default_base_url_is_fals_real_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAL_BASE_URL", raising=False)
    fal = adapter("fal")
    origin = fal.origin(None)
    call = fal.submit_call(origin, "nano-banana-pro", BODY)
    assert call.url == "https://queue.fal.run/fal-ai/nano-banana-pro"
    handle = JobHandle("fal", "nano-banana-pro", "r1", origin)
    assert fal.status_call(handle).url == (
        "https://queue.fal.run/fal-ai/nano-banana-pro/requests/r1/status"
    )
    cancel = fal.cancel_call(handle)
    assert cancel is not None and cancel.url == (
        "https://queue.fal.run/fal-ai/nano-banana-pro/requests/r1/cancel"
    )


@pytest.mark.parametrize(
    "base",
    ["http://127.0.0.1:8080", "http://127.0.0.1:8080/fal/queue", "http://127.0.0.1:8080/fal/run/"],
)
def test_a_mock_base_url_keeps_the_mocks_layout(base: str) -> None:
    fal = adapter("fal")
    origin = fal.origin(base)
    assert origin == "http://127.0.0.1:8080"
    call = fal.submit_call(origin, "nano-banana", BODY)
    assert call.url == "http://127.0.0.1:8080/fal/queue/fal-ai/nano-banana"


def test_the_urls_an_answer_hands_out_are_followed_as_given() -> None:
    fal = adapter("fal")
    given = "https://queue.fal.run/fal-ai/nano-banana/requests/r1/status?from=answer"
    handle = JobHandle("fal", "nano-banana", "r1", "https://queue.fal.run", status_url=given)
    assert fal.status_call(handle).url == given


def test_a_bad_host_map_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"fal: host map .* no real host"):
        Client("fal", api_key="k", base_url="queue.fal.rn=http://127.0.0.1:1")
    with pytest.raises(
        ConfigurationError, match="segmind: a host map replaces real hosts, and segmind has none"
    ):
        Client("segmind", api_key="k", base_url="queue.fal.run=http://127.0.0.1:1")


async def test_a_job_through_a_stand_in_of_the_real_hosts(mock: Mock) -> None:
    """Submit, polls, result, image and cancel through a stand-in that serves fal's real
    layout: every request it saw is in that layout."""
    with FalStandIn(mock.base) as standin:
        base = f"queue.fal.run={standin.origin},fal.run=http://127.0.0.1:{closed_port()}"
        client = Client(
            "fal",
            api_key=KEY["fal"],
            base_url=base,
            timer=MockTimer(mock),
            retry=RetryPolicy(seed=1),
        )
        async with client:
            result = await client.generate("nano-banana-pro", prompt="a banana")
            queued = await client.submit("nano-banana", prompt="a banana")
            await client.cancel(queued)
    assert (result.image.width, result.image.height) == (1024, 1024)
    assert result.handle.status_url is not None and result.handle.status_url.startswith(
        standin.origin + "/fal-ai/nano-banana-pro/requests/"
    )
    kinds = [_kind(method, path) for method, path in standin.requests]
    assert kinds[0] == "submit", standin.requests
    assert {"submit", "status", "result", "cancel"} <= set(kinds), standin.requests


# fal's real layout: /{owner}/{alias}[/requests/{id}[/status|/cancel]], no /fal/queue prefix
REAL = re.compile(r"/fal-ai/[a-z0-9-]+(?:/requests/[0-9a-f-]{36}(/status|/cancel)?)?(?:\?.*)?")


def _kind(method: str, path: str) -> str:
    """Which queue operation a request in fal's real layout is; fails on any other path."""
    found = REAL.fullmatch(path)
    assert found is not None, f"{method} {path} is not in fal's real layout"
    if "/requests/" not in path:
        return "submit"
    return {"/status": "status", "/cancel": "cancel", None: "result"}[found.group(1)]


def test_a_live_handle_read_on_the_mock_keeps_the_mocks_prefixes() -> None:
    real = "https://queue.fal.run/fal-ai/nano-banana/requests/r1"
    handle = JobHandle(
        "fal",
        "nano-banana",
        "r1",
        "https://queue.fal.run",
        real + "/status",
        real,
        real + "/cancel",
    )
    moved = adapter("fal").rebased(handle, "http://127.0.0.1:8080")
    mock = "http://127.0.0.1:8080/fal/queue/fal-ai/nano-banana/requests/r1"
    assert (moved.status_url, moved.response_url, moved.cancel_url) == (
        mock + "/status",
        mock,
        mock + "/cancel",
    )
    assert moved.base_url == "http://127.0.0.1:8080"
