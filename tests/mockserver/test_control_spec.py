"""The control plane's contract, schemas/mock/control/: the routes it lists are the mock's,
the mock refuses a body its schema refuses, and (self_check) checks its own answers."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from nanobanana_mock import schemas
from nanobanana_mock.app import create_app
from nanobanana_mock.config import MockConfig
from nanobanana_mock.control import api, spec
from nanobanana_mock.engine.clock import MAX_SPEED, MAX_TIME
from nanobanana_mock.scenario import ScenarioError, parse_scenario
from nanobanana_mock.schemas.lifecycle import EXPIRED, TERMINAL
from tests.harness import Mock


async def send(mock: Mock, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    resp = await mock.client.request(method, path, **kwargs)
    return resp.status, await resp.json()


def test_the_contract_lists_every_route_of_the_mock_and_no_other() -> None:
    app = create_app(MockConfig())
    served = {
        (route.method, route.resource.canonical): (route.name or "").partition(".")[2]
        for route in app.router.routes()
        if route.resource is not None
        and route.method != "HEAD"  # aiohttp's own, beside each GET
        and route.name not in (api.CONTROL_STRAY, "mock.file")  # the catch-all, the images
        and (route.resource.canonical.startswith("/_mock/") or route.resource.canonical == "/")
    }
    listed = {(r["method"], r["path"]): name for name, r in spec.routes().items()}
    assert served == listed


def test_every_request_schema_names_the_members_its_route_takes() -> None:
    for name in spec.routes():
        schema = spec.request_schema(name)
        if schema is not None and name != "add_faults":  # a rule, or {"faults": [rules]}
            assert spec.properties(name), name


def test_the_bounds_are_the_engines() -> None:
    clock = schemas.load("mock", "control/clock.request")["properties"]
    assert clock["advance"]["maximum"] == clock["to"]["maximum"] == MAX_TIME
    speed = schemas.load("mock", "settings")["properties"]["time_scale"]["maximum"]
    assert speed == MAX_SPEED
    assert set(api.FORCED) == {*TERMINAL, EXPIRED}  # the lifecycle's terminal states, or gone


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # each passes the handler's own checks: only the schema refuses it
        ("reset", {"scenario": {}, "scenario_file": {"name": "s.yaml", "text": "{}"}}),
        ("faults", {"faults": [], "extra": 1}),
        ("credits", {"default": 1, "balance": "lots"}),
    ],
)
async def test_a_body_only_the_schema_refuses_is_a_400_naming_the_problem(
    mock: Mock, path: str, body: dict[str, Any]
) -> None:
    status, answer = await send(mock, "POST", f"/_mock/{path}", json=body)
    assert status == 400, answer
    assert answer["error"] == "invalid request body" and answer["problems"], answer
    assert (await send(mock, "GET", "/_mock/faults"))[1]["faults"] == []


async def test_both_scenario_and_scenario_file_is_a_400_naming_both_and_showing_no_key(
    mock: Mock,
) -> None:
    """The schema's `not` refused the body by quoting all of it: the API keys of its
    settings included, and no field named."""
    body = {
        "settings": {"api_keys": ["CANARY-red12-key"]},
        "scenario": {},
        "scenario_file": {"name": "s.yaml", "text": "{}"},
    }
    status, answer = await send(mock, "POST", "/_mock/reset", json=body)
    assert status == 400, answer
    assert "CANARY" not in str(answer), answer
    assert any("'scenario'" in p and "'scenario_file'" in p for p in answer["problems"]), answer


async def test_a_scenario_file_too_long_to_explain_in_20_ms_is_still_named(
    mock: Mock,
) -> None:
    """A file of 3,500 rules (at most 1,000) was answered `big.yaml: ... and possibly more
    problems (the explanation stopped at its time budget)`, naming nothing, by a reset's
    scenario_file, while --scenario named it: the reset reads the file in a thread, off the
    event loop, so it gets a file's budget (scenario.EXPLAIN_SECONDS), not a request's."""
    rule = "  - match: {{provider: segmind}}\n    effect: {{latency: {{fixed: {}}}}}\n"
    text = "faults:\n" + "".join(rule.format(i) for i in range(3500))
    expected = "big.yaml:2:3: faults: has 3500 entries, at most 1000 allowed"
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "big.yaml")
    assert caught.value.problems == [expected]
    body = {"scenario_file": {"name": "big.yaml", "text": text}}
    status, answer = await send(mock, "POST", "/_mock/reset", json=body)
    assert status == 400, answer
    assert answer["problems"] == [expected], answer


async def test_an_inline_scenario_too_long_to_explain_in_20_ms_is_still_named(
    mock: Mock,
) -> None:
    """The same 3,000 rules as a reset's inline scenario were answered with nothing named."""
    rule = {"match": {"provider": "segmind"}, "effect": {"latency": {"fixed": 1}}}
    body = {"scenario": {"faults": [rule] * 3000}}
    status, answer = await send(mock, "POST", "/_mock/reset", json=body)
    assert status == 400, answer
    assert answer["problems"] == ["faults: has 3000 entries, at most 1000 allowed"], answer


async def test_an_answer_that_breaks_its_schema_is_a_recorded_violation(
    mock: Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = api.get_clock

    async def drifted(request: Any) -> Any:
        answer = await original(request)
        answer.text = answer.text.replace('"speed"', '"sped"')
        return answer

    drifted.__name__ = "get_clock"  # the route's name, as the contract lists it
    monkeypatch.setattr(api, "get_clock", drifted)
    app = create_app(MockConfig(self_check=True))
    monkeypatch.undo()
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/_mock/clock")).status == 200
        assert (await client.get("/_mock/settings")).status == 200
    assert app[api.STATE].violations == ["control.get_clock 200"]
    assert mock.state.violations == []


@pytest.mark.parametrize(
    ("path", "route"),
    [("/", "index"), ("/_mock/health", "health"), ("/_mock/openapi/seaart.json", "openapi")],
)
async def test_the_plain_routes_answer_as_the_contract_says(
    mock: Mock, path: str, route: str
) -> None:
    status, answer = await send(mock, "GET", path)
    schema = spec.answer_schema(route, status)
    assert status == 200 and schema is not None
    assert spec.check(schema, answer) == []
