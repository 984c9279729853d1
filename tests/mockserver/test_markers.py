"""Prompt markers over real HTTP: every text starting ``[mock:`` is honoured or refused with the
provider's 400 naming it, and a refused submit creates and charges nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.faults.markers import prompt_rules
from nanobanana_mock.schemas import is_valid
from tests.harness import Mock

SUBMIT = {  # the generation routes: each provider's submit, and Segmind's blocking call
    ("segmind", "submit"): ("/v2/nano-banana", {}),
    ("segmind", "sync_generate"): ("/v1/nano-banana", {}),
    ("seaart", "submit"): ("/model/v1/queue/nano_banana_pro", {}),
    ("pixazo", "submit"): (
        "/nano-banana-pro-770/v1/nano-banana-pro-request",
        {"image_urls": ["https://a.io/b.png"]},
    ),
}
ROUTES = list(SUBMIT)
CREDITS = {"segmind": 406, "seaart": 402, "pixazo": 402}  # each provider's own code
MARKER_STATUSES = schemas.load("mock", "fault_rule")["$defs"]["http_error"]["properties"]["status"][
    "enum"
]
KNOWN = ("[mock:fail]", "[mock:fail-at=", "[mock:fail-after-polls=", "[mock:status=")


def declared(provider: str, operation: str) -> set[int]:
    responses = schemas.load(provider, "api")["operations"][operation]["responses"]
    return {int(c) for c, r in responses.items() if int(c) >= 400 and r.get("schema") == "error"}


async def generate(
    mock: Mock, route: tuple[str, str], prompt: str | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """A generation request with ``prompt`` (or the ``raw`` JSON body); its answer is checked
    against the contract."""
    provider, operation = route
    path, extra = SUBMIT[route]
    data = raw if raw is not None else json.dumps({**extra, "prompt": prompt}).encode()
    resp, body = await mock.call(
        provider, operation, "POST", path, data=data, headers={"Content-Type": "application/json"}
    )
    return resp.status, body


async def control(mock: Mock, method: str, path: str, **kwargs: Any) -> Any:
    resp = await mock.client.request(method, f"/_mock/{path}", **kwargs)
    assert resp.status < 300, await resp.text()
    return await resp.json()


async def last_entry(mock: Mock) -> dict[str, Any]:
    return (await control(mock, "GET", "journal?limit=1"))["entries"][0]


def message(provider: str, body: Any) -> str:
    return body["error"] if provider != "seaart" else body["detail"]


async def assert_refused(mock: Mock, route: tuple[str, str], status: int, body: Any) -> str:
    """A refused marker: the provider's 400 in its envelope, no job, no charge, journaled."""
    provider, operation = route
    assert status == 400, body
    text = message(provider, body)
    assert text.startswith("Invalid prompt marker: "), text
    assert (await control(mock, "GET", "jobs"))["total"] == 0
    credits = await control(mock, "GET", "credits")
    assert all(account["spent"] == 0 for account in credits["accounts"]), credits
    entry = await last_entry(mock)
    assert (entry["operation"], entry["status"], entry["validation"]) == (operation, 400, "invalid")
    assert entry["problems"] and entry["request_id"] is None
    return text


@pytest.mark.parametrize("route", ROUTES, ids=["/".join(r) for r in ROUTES])
@pytest.mark.parametrize("status", MARKER_STATUSES)
async def test_a_status_marker_is_answered_or_refused_never_ignored(
    mock: Mock, route: tuple[str, str], status: int
) -> None:
    """A status the operation declares is answered; 402 and 406 (insufficient credits) are
    the provider's own code; any other is refused, naming the marker and the codes allowed."""
    provider, operation = route
    await control(mock, "POST", "credits", json={"default": 100})
    code, body = await generate(mock, route, f"a cat [mock:status={status}]")
    allowed = declared(provider, operation)
    if status in allowed:
        assert code == status, body
    elif status in (402, 406):
        assert code == CREDITS[provider], body
    else:
        text = await assert_refused(mock, route, code, body)
        assert f"[mock:status={status}]" in text and f"does not answer {status}" in text
        assert ", ".join(map(str, sorted(allowed | {402, 406}))) in text, text
        return
    assert (await control(mock, "GET", "jobs"))["total"] == 0  # an error answer: no job


@pytest.mark.parametrize("route", ROUTES, ids=["/".join(r) for r in ROUTES])
@pytest.mark.parametrize(
    ("marker", "says"),
    [
        ("[mock:bogus]", "unknown prompt marker 'bogus'"),
        ("[mock:statsu=500]", "unknown prompt marker 'statsu' (did you mean 'status'?)"),
        ("[mock:]", "unknown prompt marker ''"),
        ("[mock: fail]", "unknown prompt marker ' fail'"),
        ("[mock:Status=429]", "unknown prompt marker 'Status' (did you mean 'status'?)"),
        ("[MOCK:fail]", "lower case"),
        ("[Mock:delay=5]", "lower case"),
        ("[mock:fail", "not closed"),
        ("[mock:status=429 and more [x]", "not closed"),
        ("[mock:fail=]", "cannot be empty"),
        ("[mock:fail-at]", "must be submit, start or end"),
        ("[mock:delay=soon]", "seconds"),
        ("[mock:" + "x" * 40 + "]", "at most 32 characters"),
    ],
)
async def test_an_unknown_or_malformed_marker_is_refused_naming_it(
    mock: Mock, route: tuple[str, str], marker: str, says: str
) -> None:
    code, body = await generate(mock, route, f"a cat {marker} on a mat")
    text = await assert_refused(mock, route, code, body)
    assert marker[:20] in text and says in text, text
    if "unknown" in says:
        assert all(form in text for form in KNOWN), text  # and the markers there are


@pytest.mark.parametrize("route", ROUTES, ids=["/".join(r) for r in ROUTES])
async def test_a_marker_written_with_json_escapes_is_still_a_marker(
    mock: Mock, route: tuple[str, str]
) -> None:
    """The body's bytes may spell the prefix with \\u escapes: it is read all the same, with
    or without fault rules on the mock (rules used to make the mock parse every body)."""
    _, extra = SUBMIT[route]
    prefix = json.dumps(extra)[1:-1] + ", " if extra else ""
    raw = f'{{{prefix}"prompt": "a cat \\u005bmock:bogus] \\u005BMock:fail]"}}'.encode()
    code, body = await generate(mock, route, raw=raw)
    assert "unknown prompt marker 'bogus'" in await assert_refused(mock, route, code, body)
    raw = f'{{{prefix}"prompt": "a cat [\\u006Dock\\u003astatus=429]"}}'.encode()
    assert (await generate(mock, route, raw=raw))[0] == 429


async def test_a_refused_marker_uses_up_no_fault_rule(mock: Mock) -> None:
    rule = {"match": {"operation": "submit"}, "effect": {"http_error": {"status": 503}}}
    await control(mock, "POST", "faults", json={**rule, "scope": {"first": 1}})
    route = ("seaart", "submit")
    code, body = await generate(mock, route, "a cat [mock:status=406x]")
    await assert_refused(mock, route, code, body)
    assert (await generate(mock, route, "a cat"))[0] == 503  # the rule's first match
    assert (await generate(mock, route, "a cat [mock:status=406]"))[0] == 402


async def test_refused_markers_are_journaled_with_the_reason(mock: Mock) -> None:
    route = ("pixazo", "submit")
    await generate(mock, route, "x [mock:status=406] [mock:bogus]")
    entry = await last_entry(mock)
    assert entry["problems"] == [
        "[mock:bogus]: unknown prompt marker 'bogus'; the markers are [mock:fail] or "
        "[mock:fail=ERROR_TYPE], [mock:fail-at=submit|start|end], [mock:fail-after-polls=N], "
        "[mock:status=CODE], [mock:delay=SECONDS]"
    ]
    found = await control(mock, "GET", "journal?provider=pixazo&status=400")
    assert found["count"] == 1


README = Path(__file__).resolve().parents[2] / "README.md"
README_ROW = {"segmind": "| Segmind (and `/v1`) |", "seaart": "| SeaArt |", "pixazo": "| Pixazo |"}


@pytest.mark.parametrize("provider", list(README_ROW))
def test_the_readme_table_of_status_markers_matches_the_contracts(provider: str) -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("| `[mock:status=N]` on a"))
    (row,) = [line for line in lines[start : start + 5] if line.startswith(README_ROW[provider])]
    answered, credits, refused = (cell.split() for cell in row.split("|")[2:5])
    allowed = declared(provider, "submit")
    assert set(map(int, answered)) == allowed
    assert credits == [str(({402, 406} - allowed).pop()), "→", str(CREDITS[provider])]
    assert set(map(int, refused)) == set(MARKER_STATUSES) - allowed - {402, 406}


@pytest.mark.parametrize(
    "prompt",
    [
        "[mock:fail]",
        "[mock:fail=CONTENT_BLOCKED][mock:fail-at=start][mock:fail-after-polls=3]",
        "[mock:fail-at=submit]",
        "[mock:status=503][mock:delay=86400]",
        "[mock:delay=0.5][mock:delay=0][mock:status=429]",
    ],
)
def test_every_rule_markers_make_is_schema_valid(prompt: str) -> None:
    """Each value is checked as it is read; the rules assembled from them need no second
    check, because no part of the rule schema relates one field of an effect to another."""
    fired = prompt_rules(prompt, {429, 503})
    assert fired
    for item in fired:
        assert is_valid("mock", "fault_rule", {"effect": {item.kind: dict(item.params)}}), item
