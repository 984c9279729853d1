"""A live run reaches fal in fal's real layout (``queue.fal.run/fal-ai/...``, no ``/fal/queue``):
the plan says where it sends, and a whole live run against a stand-in of the real queue host
(a loopback port serving the real layout in front of a mock) is conformant and sends nothing
in the mock's layout. Only loopback addresses are ever sent to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from nanobanana_mock.conformance.exchange import Http
from nanobanana_mock.conformance.target import LiveTarget, mock_config
from nanobanana_mock.control.pytest_plugin import MockServer
from tests.fal_standin import FalStandIn, closed_port

from .conftest import Runner, assert_plain

KEY = "fal-id:fal-secret"
LIVE = ("--target", "live", "--provider", "fal")
ROUTES = ("--", "-k", "lifecycle or cancel or not_found")  # the checks that use every route


@pytest.fixture
def fal_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAL_API_KEY", raising=False)
    monkeypatch.setenv("FAL_KEY", KEY)


@pytest.mark.usefixtures("fal_key")
def test_a_dry_run_plan_shows_fals_real_hosts(
    run_suite: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAL_BASE_URL", raising=False)
    monkeypatch.setattr(Http, "call", _refuse)
    run = run_suite(*LIVE, "--dry-run")
    assert run.code == 0, run.output
    assert_plain(run.output)
    lines = run.output.splitlines()
    assert "  fal      submit: POST https://queue.fal.run/fal-ai/{model}" in lines, run.output
    assert "dry run: no request was sent" in lines


@pytest.mark.usefixtures("fal_key")
def test_a_dry_run_refuses_a_bad_host_map(run_suite: Runner) -> None:
    run = run_suite(*LIVE, "--dry-run", "--base-url", "queue.fal.rum=http://127.0.0.1:1")
    assert run.code == 0, run.output
    assert "a live run would be refused: fal: host map" in run.output
    assert "fal      submit:" not in run.output


@pytest.fixture
def fal_mock() -> Iterator[MockServer]:
    with MockServer(mock_config(KEY, self_check=True)) as server:
        yield server


@pytest.mark.usefixtures("fal_key")
def test_a_live_run_sends_fals_real_layout(
    run_suite: Runner, monkeypatch: pytest.MonkeyPatch, fal_mock: MockServer
) -> None:
    """The checks that use every route (lifecycle, cancel, unknown ids; the others only
    submit) through the stand-in: the suite's polls advance the mock's virtual clock (nothing
    sleeps), and the URLs the answers hand out are followed as given."""
    assert fal_mock.control is not None
    clock = fal_mock.control.clock
    monkeypatch.setattr(LiveTarget, "wait", lambda self, seconds: clock.advance(seconds))
    sent: list[str] = []
    monkeypatch.setattr(Http, "call", _recording(Http.call, sent))
    with FalStandIn(fal_mock.base_url) as standin:
        hosts = f"queue.fal.run={standin.origin},fal.run=http://127.0.0.1:{closed_port()}"
        monkeypatch.setenv("FAL_BASE_URL", hosts)
        run = run_suite(*LIVE, "--accept-charges", "--max-spend", "50", *ROUTES)
    assert run.code == 0, run.output
    assert run.report["target"] == "live" and run.report["findings"] == []
    assert f"  fal      submit: POST {standin.origin}/fal-ai/{{model}}" in run.output
    queue = [url for url in sent if url.startswith(standin.origin)]
    assert queue and all(url.startswith(standin.origin + "/fal-ai/") for url in queue)
    assert {method for method, _ in standin.requests} == {"POST", "GET", "PUT"}
    assert all(path.startswith("/fal-ai/") for _, path in standin.requests)
    others = [url for url in sent if not url.startswith(standin.origin)]
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in others), others
    assert not [url for url in others if "/fal/" in url], "a request in the mock's layout"


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a dry run sent a request")


def _recording(call: Any, sent: list[str]) -> Any:
    """``Http.call`` that notes each URL, and refuses any but a loopback one."""

    def record(self: Http, method: str, url: str, **kwargs: Any) -> Any:
        assert urlsplit(url).hostname == "127.0.0.1", f"{method} {url} is not a loopback target"
        sent.append(url)
        return call(self, method, url, **kwargs)

    return record
