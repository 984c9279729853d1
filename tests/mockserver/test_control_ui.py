"""The dashboard's static files (``/_mock/ui/``): only the known files, by name, with a strict
Content-Security-Policy, behind the control plane's guards (all but the token, which a
browser cannot send when it opens a page). The page itself: tests/test_dashboard.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nanobanana_mock.control import spec, ui
from tests.conftest import MockFactory
from tests.harness import Mock

UI = Path(ui.__file__).resolve().parents[1] / "ui"


async def _refusal(mock: Mock, path: str, status: int, **headers: str) -> str:
    resp = await mock.client.get(path, headers=headers, allow_redirects=False)
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert spec.check(spec.ERROR, body) == [], body
    return str(body["error"])


def test_the_listed_files_are_the_folders_files() -> None:
    assert set(ui.FILES) == {p.name for p in UI.iterdir() if p.is_file()}


def test_the_page_loads_only_listed_files_and_no_inline_script() -> None:
    page = (UI / "index.html").read_text()
    loaded = set(re.findall(r'(?:src|href)="([^"]+)"', page)) - {"data:,"}
    assert loaded <= set(ui.FILES), loaded - set(ui.FILES)
    # what the policy would block: inline script, handler attributes, style attributes
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
    assert re.search(r"\s(on[a-z]+|style)\s*=", page) is None
    imports = set()
    for module in UI.glob("*.js"):
        imports |= set(re.findall(r'from "\./([^"]+)"', module.read_text()))
    assert imports <= set(ui.FILES), imports - set(ui.FILES)


@pytest.mark.parametrize("prefix", ["", "/t/ui-files"])
async def test_every_file_is_served_with_its_type_and_a_strict_policy(
    mock: Mock, prefix: str
) -> None:
    for name, kind in {"": "text/html", **ui.FILES}.items():
        resp = await mock.client.get(f"{prefix}/_mock/ui/{name}")
        assert resp.status == 200, name
        assert resp.content_type == kind, name
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        policy = resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "unsafe" not in policy
        assert "frame-ancestors 'none'" in policy
        expected = (UI / (name or "index.html")).read_bytes()
        assert await resp.read() == expected


async def test_the_bare_path_leads_to_the_page(mock: Mock) -> None:
    resp = await mock.client.get("/t/ui-bare/_mock/ui", allow_redirects=False)
    assert resp.status == 308 and resp.headers["Location"] == "ui/"
    resp = await mock.client.get("/t/ui-bare/_mock/ui")
    assert resp.status == 200 and str(resp.url).endswith("/t/ui-bare/_mock/ui/")


@pytest.mark.parametrize(
    "path",
    [
        "/_mock/ui/ui.py",
        "/_mock/ui/..%2fcontrol%2fui.py",
        "/_mock/ui/%2e%2e%2f%2e%2e%2fsetup.py",
        "/_mock/ui/..%5capi.py",
        "/_mock/ui/index.html%00.js",
        "/_mock/ui/APP.JS",
        "/_mock/ui/" + "a" * 5000,
    ],
)
async def test_no_other_file_is_ever_read(mock: Mock, path: str) -> None:
    error = await _refusal(mock, path, 404)
    assert len(error) < 300


async def test_a_folder_under_it_is_no_file(mock: Mock) -> None:
    await _refusal(mock, "/_mock/ui/a/app.js", 404)
    await _refusal(mock, "/_mock/ui/../../setup.py", 404)


async def test_a_write_to_it_is_refused(mock: Mock) -> None:
    resp = await mock.client.post("/_mock/ui/app.js", json={})
    assert resp.status == 405 and "GET" in resp.headers["Allow"]


async def test_the_guards_apply_but_the_token(mock_factory: MockFactory) -> None:
    mock = await mock_factory(control_token="ui-token")
    assert (await mock.client.get("/_mock/ui/")).status == 200  # a browser opens it bare
    assert (await mock.client.get("/_mock/ui/app.js")).status == 200
    await _refusal(mock, "/_mock/clock", 401)  # the data needs the token
    error = await _refusal(mock, "/_mock/ui/", 403, Origin="http://evil.example")
    assert "other origins" in error
    error = await _refusal(mock, "/_mock/ui/app.js", 403, Host="evil.example")
    assert "DNS rebinding" in error
