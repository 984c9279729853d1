"""Limits and exposure: header size, the control plane's loopback rule."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from unittest import mock as um

from aiohttp.test_utils import make_mocked_request

from nanobanana_mock import MockConfig
from nanobanana_mock.app import create_app
from nanobanana_mock.control.api import control_routes
from nanobanana_mock.control.pytest_plugin import MockServer


def test_oversized_headers_are_refused_before_the_app() -> None:
    with MockServer(MockConfig(port=0, time_scale=0, max_header_bytes=1024)) as server:
        request = urllib.request.Request(
            f"{server.base_url}/v2/nano-banana",
            data=b'{"prompt": "x"}',
            method="POST",
            headers={"x-api-key": "k", "Content-Type": "application/json", "X-Big": "a" * 2000},
        )
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code in (400, 431)
        else:
            raise AssertionError("a 2000-byte header must be refused with max_header_bytes=1024")
        request.headers.pop("X-big")
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200


async def _clock_answer(remote: str, **settings: object) -> tuple[int, dict]:
    app = create_app(MockConfig(time_scale=0, **settings))
    route = next(r for r in control_routes() if r.path == "/_mock/clock" and r.method == "GET")
    transport = um.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (remote, 50000) if name == "peername" else default
    )
    request = make_mocked_request("GET", "/_mock/clock", app=app, transport=transport)
    response = await route.handler(request)
    return response.status, json.loads(response.text)


async def test_the_control_plane_answers_loopback_only_unless_opened() -> None:
    assert (await _clock_answer("127.0.0.1"))[0] == 200
    assert (await _clock_answer("::1"))[0] == 200
    status, body = await _clock_answer("10.1.2.3")
    assert status == 403 and "loopback" in body["error"]
    assert (await _clock_answer("10.1.2.3", control_open=True))[0] == 200
    assert (await _clock_answer("10.1.2.3", control_open=True, control_token="t"))[0] == 401
