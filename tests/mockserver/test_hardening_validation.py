"""Validation cost and JSON nesting.

Explaining an invalid body is bounded (problem count, time, the costly keywords), every array
of a request body has a ``maxItems``, no provider request stalls the server, journal entries
keep a bounded number of problems, and JSON nesting is capped wherever the mock reads JSON.
All on loopback with the frozen virtual clock; every request is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from nanobanana_mock import schemas
from nanobanana_mock.app import create_app
from nanobanana_mock.config import ConfigError, MockConfig
from nanobanana_mock.conformance.options import UsageError
from nanobanana_mock.conformance.options import load_scenario as load_drift_scenario
from nanobanana_mock.faults.markers import MAX_MARKERS
from nanobanana_mock.http import MAX_JSON_DEPTH
from nanobanana_mock.scenario import ScenarioError, load_scenario
from nanobanana_mock.schemas import violations
from nanobanana_mock.schemas.violations import MAX_PROBLEMS
from nanobanana_mock.sources.replay import Replay
from nanobanana_mock.state import STATE
from tests.harness import KEYS, Mock, largest_stall, schema_for, validate

TIMEOUT = 20  # seconds for any one request: far above what a bounded mock needs
MAX_BODY = 262_144  # the default --max-body-bytes
# seconds: far above the ~50 ms these take, far below the old code (1.7 s to minutes); a
# shared CI machine under load has stretched a 40 ms answer to 0.5 s
STALL_BOUND = 1.0
MORE = re.compile(r"^\.\.\. and (at least )?\d+ more problems$|^\.\.\. and possibly more problems")
JSON = {"Content-Type": "application/json"}

SUBMIT = {
    "segmind": "/v2/nano-banana-2",
    "seaart": "/model/v1/queue/nano_banana_pro",
    "pixazo": "/nano-banana-pro-770/v1/nano-banana-pro-request",
}
SYNC = "/v1/nano-banana-pro"
PIXAZO_RESULT = "/nano-banana-pro-770/v1/nano-banana-pro-request-result"
URL = "https://a.io/b.png"

# Every schema of a request body: each model's, each operation's named one, the control plane's.
REQUEST_SCHEMAS = sorted(
    {
        (provider, name)
        for provider in schemas.PROVIDERS
        for name in [
            *(m["request"] for m in schemas.load(provider, "api")["models"].values()),
            *(
                op["request"]
                for op in schemas.load(provider, "api")["operations"].values()
                if op.get("request") not in (None, "model")
            ),
        ]
    }
)
CONTROL_SCHEMAS = [("mock", "fault_rule"), ("mock", "scenario")]


async def post(
    mock: Mock, provider: str, path: str, data: bytes, **headers: str
) -> tuple[int, Any]:
    resp = await asyncio.wait_for(
        mock.client.post(path, data=data, headers={**KEYS[provider], **JSON, **headers}), TIMEOUT
    )
    raw = await resp.read()
    body = json.loads(raw) if resp.content_type == "application/json" else raw
    return resp.status, body


def encoded(body: Any) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    assert len(data) <= MAX_BODY, len(data)
    return data


def nested(depth: int) -> Any:
    """A value that is ``depth`` arrays deep (``nested(1) == [1]``)."""
    return json.loads("[" * depth + "1" + "]" * depth)


def messages(provider: str, answer: Any) -> list[str]:
    """The problems an answer names, one string each."""
    if provider == "seaart":
        return [item["msg"] for item in answer["detail"]]
    return answer["error"].split(": ", 1)[1].split("; ")


# -- every array has a maxItems ---------------------------------------------------------------


def _unbounded(provider: str, name: str, strict: bool) -> list[str]:
    """Where a request schema leaves a size open: arrays without maxItems and (``strict``)
    strings without maxLength or enum, objects whose extra values have a schema and no
    maxProperties. $refs are followed into other files."""
    found: list[str] = []
    seen: set[tuple[str, str, str]] = set()

    def follow(ref: str, base: tuple[str, str], where: str) -> None:
        path, _, fragment = ref.partition("#")
        if path.startswith("../"):
            target = ("", path[3:].removesuffix(".json"))
        elif path:
            target = (base[0], path.removesuffix(".json"))
        else:
            target = base
        if (*target, fragment) in seen:
            return
        seen.add((*target, fragment))
        node: Any = schemas.load(*target)
        for part in filter(None, fragment.split("/")):
            node = node[part]
        walk(node, target, f"{where}->{ref}")

    def walk(node: Any, base: tuple[str, str], where: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, base, f"{where}/{i}")
            return
        if not isinstance(node, dict):
            return
        if "$ref" in node:
            follow(node["$ref"], base, where)
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if ("array" in kinds or "items" in node) and "maxItems" not in node:
            found.append(f"{where}: an array without maxItems")
        if strict and "string" in kinds and "maxLength" not in node and "enum" not in node:
            found.append(f"{where}: a string without maxLength")
        extra = node.get("additionalProperties")
        if strict and isinstance(extra, dict) and "maxProperties" not in node:
            found.append(f"{where}: an object of any size")
        for key, value in node.items():  # an "if" is a condition: it bounds nothing
            if key not in ("enum", "const", "default", "examples", "description", "if"):
                walk(value, base, f"{where}/{key}")

    walk(schemas.load(provider, name), (provider, name), f"{provider}/{name}")
    return found


@pytest.mark.parametrize(("provider", "name"), REQUEST_SCHEMAS + CONTROL_SCHEMAS)
def test_every_request_schema_array_has_max_items(provider: str, name: str) -> None:
    # every array, string and open object of a request or control-plane body is bounded;
    # unknown fields of provider bodies stay accepted as before
    assert _unbounded(provider, name, True) == []
    if provider != "mock":
        assert schemas.load(provider, name).get("additionalProperties") is True


# -- validation cost ---------------------------------------------------------------------------


async def test_validation_cost_seaart_unique_items_over_distinct_objects(mock: Mock) -> None:
    """1,200 distinct objects in ``response_modalities`` stalled the server 1.8 s, 4,000 29 s."""
    for count in (1_200, 4_000):
        body = encoded({"prompt": "x", "response_modalities": [{"a": i} for i in range(count)]})
        started = time.perf_counter()
        status, answer = await post(mock, "seaart", SUBMIT["seaart"], body)
        elapsed = time.perf_counter() - started
        assert status == 422, answer
        validate("seaart", schema_for("seaart", "submit", 422), answer)
        found = messages("seaart", answer)
        assert f"at most 2 items allowed, got {count}" in found
        assert len(found) <= MAX_PROBLEMS + 1
        assert elapsed < STALL_BOUND, elapsed


async def test_validation_cost_segmind_40000_non_string_image_urls(mock: Mock) -> None:
    """It stalled 2.3 s, answered 2 MB and kept 40,001 problems in its journal entry."""
    body = encoded({"prompt": "x", "image_urls": list(range(40_000))})
    status, answer = await post(mock, "segmind", "/v2/nano-banana-pro", body)
    assert status == 400, answer
    assert "image_urls: at most 14 items allowed, got 40000" in answer["error"]
    assert len(json.dumps(answer)) < 4_000
    assert len(messages("segmind", answer)) <= MAX_PROBLEMS + 1
    entry = mock.state.journal.query({"operation": "submit"})["entries"][-1]
    assert entry["validation"] == "invalid"
    assert len(entry["problems"]) <= MAX_PROBLEMS + 1


# One field of each kind wrong, and 14 wrong-typed image URLs: 23 problems, more than are named.
MANY_WRONG = {
    "segmind": {
        "prompt": 1,
        "image_urls": [1] * 14,
        "aspect_ratio": 1,
        "output_format": 2,
        "output_resolution": 3,
        "response_modalities": 4,
        "safety_tolerance": "x",
        "seed": -1,
        "thinking_level": 0,
        "web_search": 3,
    },
    "seaart": {
        "prompt": 1,
        "image_urls": [1] * 14,
        "aspect_ratio": 1,
        "image_size": 2,
        "resolution": 3,
        "response_modalities": [4, 4],  # two enum errors and a uniqueItems one
    },
    "pixazo": {  # 6 fields: with 15 URLs, 1 + 14 (only the first maxItems are explained) + 5
        "prompt": 1,
        "image_urls": [1] * 15,
        "aspect_ratio": 1,
        "resolution": 2,
        "output_format": 3,
        "num_images": "x",
    },
}


@pytest.mark.parametrize("provider", list(SUBMIT))
async def test_explanation_names_at_most_20_problems_and_counts_the_rest(
    mock: Mock, provider: str
) -> None:
    status, answer = await post(mock, provider, SUBMIT[provider], encoded(MANY_WRONG[provider]))
    assert status == {"segmind": 400, "seaart": 422, "pixazo": 400}[provider], answer
    validate(provider, schema_for(provider, "submit", status), answer)
    found = messages(provider, answer)
    if provider == "pixazo":  # cannot have more than 20 since only maxItems items are explained
        assert len(found) == MAX_PROBLEMS and "at most 14 items allowed, got 15" in found[1]
        return
    assert len(found) == MAX_PROBLEMS + 1, found
    assert re.fullmatch(r"\.\.\. and \d+ more problems", found[-1]), found[-1]
    if provider == "seaart":
        assert answer["detail"][-1]["type"] == "more_problems"
        assert answer["detail"][-1]["loc"] == ["body"]


async def test_explanation_ordinary_bodies_unchanged(mock: Mock) -> None:
    """A body with a few problems is explained as before: every one, sorted, no count line."""
    body = {"prompt": "x", "safety_tolerance": 9, "thinking_level": "deep"}
    status, answer = await post(mock, "segmind", SUBMIT["segmind"], encoded(body))
    assert status == 400
    assert answer["error"] == (
        "Invalid parameters: safety_tolerance: must be <= 6, got 9; "
        "thinking_level: 'deep' is not one of minimal, high"
    )


async def test_explanation_time_budget_on_the_control_plane(mock: Mock) -> None:
    """A scenario with 15,000 wrong values: named 20, counted "at least", answered at once."""
    values = {f"k{i}": "x" for i in range(15_000)}
    scenario = {"settings": {"processing_seconds": values}}
    started = time.perf_counter()
    resp = await asyncio.wait_for(
        mock.client.post("/_mock/reset", json={"scenario": scenario}), TIMEOUT
    )
    elapsed = time.perf_counter() - started
    answer = await resp.json()
    assert resp.status == 400, answer
    assert len(answer["problems"]) == MAX_PROBLEMS + 1
    assert re.fullmatch(r"\.\.\. and at least \d+ more problems", answer["problems"][-1])
    assert elapsed < STALL_BOUND, elapsed
    resp = await mock.client.post("/_mock/faults", json={"effect": {"drift": {"when_status": []}}})
    assert resp.status == 400  # an ordinary bad rule is explained as before


async def test_explanation_bounded_for_fault_rules(mock: Mock) -> None:
    codes = list(range(100, 600)) * 2  # over maxItems, and not unique
    resp = await mock.client.post(
        "/_mock/faults", json={"effect": {"drift": {"when_status": codes}}}
    )
    answer = await resp.json()
    assert resp.status == 400, answer
    assert any("at most 100 items allowed, got 1000" in p for p in answer["problems"])
    assert len(answer["problems"]) <= MAX_PROBLEMS + 1


# -- no request stalls the server --------------------------------------------------------------


def _filled(make: Any, start: int = 0) -> list[Any]:
    """As many items ``make(i)`` as fit in a body of MAX_BODY bytes (with room to spare)."""
    items: list[Any] = []
    size = 0
    i = start
    while size < MAX_BODY - 2_000:
        item = make(i)
        size += len(json.dumps(item, separators=(",", ":"))) + 1
        items.append(item)
        i += 1
    return items[:-1]


def worst_bodies() -> list[tuple[str, str, str, bytes]]:
    """(name, provider, path, body): the costliest bodies within --max-body-bytes."""
    objects = _filled(lambda i: {"a": i})
    ints = _filled(lambda i: i)
    deep_items = _filled(lambda i: nested(MAX_JSON_DEPTH - 3))
    wide = {f"k{i}": i for i in range(len(ints) // 3)}
    cases: list[tuple[str, str, str, Any]] = [
        # first: the old code stalled on it "only" for seconds, so it fails fast
        (
            "segmind ints in image_urls",
            "segmind",
            SUBMIT["segmind"],
            {"prompt": "x", "image_urls": ints},
        ),
        (
            "segmind objects in image_urls",
            "segmind",
            SUBMIT["segmind"],
            {"prompt": "x", "image_urls": objects},
        ),
        ("segmind sync ints", "segmind", SYNC, {"prompt": "x", "image_urls": ints}),
        ("segmind sync objects", "segmind", SYNC, {"prompt": "x", "image_urls": objects}),
        ("segmind wide and wrong", "segmind", SUBMIT["segmind"], {"prompt": 1, **wide}),
        ("segmind long prompt", "segmind", SUBMIT["segmind"], {"prompt": "x" * (MAX_BODY - 100)}),
        (
            "segmind long url",
            "segmind",
            SUBMIT["segmind"],
            {"prompt": "x", "image_urls": ["https://a.io/" + "b" * (MAX_BODY - 100)]},
        ),
        (
            "segmind deep items",
            "segmind",
            SUBMIT["segmind"],
            {"prompt": "x", "image_urls": deep_items},
        ),
        (
            "seaart distinct objects",
            "seaart",
            SUBMIT["seaart"],
            {"prompt": "x", "response_modalities": objects},
        ),
        (
            "seaart duplicate strings",
            "seaart",
            SUBMIT["seaart"],
            {"prompt": "x", "response_modalities": _filled(lambda i: "Text")},
        ),
        (
            "seaart deep items",
            "seaart",
            SUBMIT["seaart"],
            {"prompt": "x", "response_modalities": deep_items},
        ),
        ("seaart wide and wrong", "seaart", SUBMIT["seaart"], {"prompt": None, **wide}),
        (
            "pixazo objects in image_urls",
            "pixazo",
            SUBMIT["pixazo"],
            {"prompt": "x", "image_urls": objects},
        ),
        ("pixazo wide, no image_urls", "pixazo", SUBMIT["pixazo"], {"prompt": "x", **wide}),
        ("pixazo result objects", "pixazo", PIXAZO_RESULT, {"request_id": objects}),
        ("pixazo result wide", "pixazo", PIXAZO_RESULT, {"request_id": 1, **wide}),
        ("pixazo result long id", "pixazo", PIXAZO_RESULT, {"request_id": "x" * (MAX_BODY - 100)}),
        ("segmind accepted wide", "segmind", SUBMIT["segmind"], {"prompt": "x", **wide}),
        ("seaart accepted deep", "seaart", SUBMIT["seaart"], {"prompt": "x", "extra": deep_items}),
    ]
    return [(name, provider, path, encoded(body)) for name, provider, path, body in cases]


async def test_no_provider_request_stalls_health(mock_factory: Any) -> None:
    """Each worst body is sent while a task polls /_mock/health; the slowest health answer
    during it stays under STALL_BOUND (the old code stalled for seconds to minutes)."""
    mock = await mock_factory(self_check=False)  # as users run it
    bodies = worst_bodies()
    idle = await largest_stall(mock, asyncio.sleep(0.2))
    worst: dict[str, float] = {}
    for name, provider, path, body in bodies:
        call = asyncio.ensure_future(post(mock, provider, path, body))
        worst[name] = await largest_stall(mock, call)
        status, answer = call.result()
        assert status < 500, (name, status, answer)
        assert worst[name] < STALL_BOUND, (name, worst)
    print(f"\nidle health: worst {idle * 1000:.1f} ms")
    for name, seconds in sorted(worst.items(), key=lambda item: -item[1]):
        print(f"{seconds * 1000:7.1f} ms  {name}")


# -- the journal -------------------------------------------------------------------------------


async def test_journal_keeps_at_most_20_problems_and_a_count(mock: Mock) -> None:
    await post(mock, "segmind", SUBMIT["segmind"], encoded(MANY_WRONG["segmind"]))
    body = encoded({"prompt": "x", "image_urls": list(range(40_000))})
    await post(mock, "segmind", "/v2/nano-banana-pro", body)
    resp = await mock.client.get("/_mock/journal", params={"operation": "submit"})
    entries = (await resp.json())["entries"]
    many, ints = entries[-2]["problems"], entries[-1]["problems"]
    assert len(many) == MAX_PROBLEMS + 1
    assert MORE.match(many[-1]), many[-1]
    assert "image_urls: at most 14 items allowed, got 40000" in ints
    assert len(ints) <= MAX_PROBLEMS + 1


# -- nesting -----------------------------------------------------------------------------------


def with_unknown_field(depth: int) -> bytes:
    """A valid Segmind/SeaArt/Pixazo body whose unknown field makes it ``depth`` levels deep
    (written as text: the standard library cannot build or write 1,020 levels)."""
    inner = "[" * (depth - 1) + "1" + "]" * (depth - 1)
    return f'{{"prompt":"x","image_urls":["{URL}"],"extra":{inner}}}'.encode()


@pytest.mark.parametrize("provider", list(SUBMIT))
async def test_unknown_field_nested_1020_deep_is_refused(mock: Mock, provider: str) -> None:
    status, answer = await post(mock, provider, SUBMIT[provider], with_unknown_field(1_020))
    assert status == 413, answer
    validate(provider, schema_for(provider, "submit", 413), answer)
    assert "deeper than 64 levels" in json.dumps(answer)
    assert len(mock.state.store) == 0  # no job that would be 500 forever
    resp = await mock.client.get("/_mock/jobs")
    assert resp.status == 200
    entry = mock.state.journal.query({})["entries"][-1]
    assert (entry["status"], entry["validation"]) == (413, "invalid")


@pytest.mark.parametrize("provider", list(SUBMIT))
async def test_nesting_at_the_cap_is_served_and_one_more_is_413(mock: Mock, provider: str) -> None:
    status, answer = await post(
        mock, provider, SUBMIT[provider], with_unknown_field(MAX_JSON_DEPTH + 1)
    )
    assert status == 413, answer
    status, answer = await post(
        mock, provider, SUBMIT[provider], with_unknown_field(MAX_JSON_DEPTH)
    )
    assert status == 200, answer
    mock.advance(600)  # the job is done: its result and its image answer
    request_id = answer["request_id"]
    if provider == "segmind":
        resp, result = await mock.call(provider, "result", "GET", f"/v2/requests/{request_id}")
        url = result["output"][0] if isinstance(result["output"], list) else result["output"]
    elif provider == "seaart":
        path = f"{SUBMIT['seaart']}/requests/{request_id}/response"
        resp, result = await mock.call(provider, "result", "GET", path)
        url = result["outputs"][0]["url"]
    else:
        resp, result = await mock.call(
            provider, "result", "POST", PIXAZO_RESULT, json={"request_id": request_id}
        )
        url = result["images"][0]["url"]
    assert resp.status == 200, result
    assert (await mock.image(url)).size[0] > 0


async def test_segmind_sync_and_pixazo_result_refuse_deep_bodies(mock: Mock) -> None:
    status, answer = await post(mock, "segmind", SYNC, with_unknown_field(1_020))
    assert status == 413, answer
    body = b'{"request_id":"x","extra":' + b"[" * 200 + b"]" * 200 + b"}"
    status, answer = await post(mock, "pixazo", PIXAZO_RESULT, body)
    assert status == 413, answer
    validate("pixazo", schema_for("pixazo", "result", 413), answer)


async def test_nesting_control_plane_bodies(mock: Mock) -> None:
    deep = {"match": {"operation": "submit"}, "effect": {"http_error": {"status": 400}}}
    deep["x"] = nested(200)
    resp = await mock.client.post("/_mock/faults", json=deep)
    assert resp.status == 413, await resp.text()
    assert "deeper than 64 levels" in (await resp.json())["error"]
    resp = await mock.client.post("/_mock/reset", json={"scenario": {"description": nested(100)}})
    assert resp.status == 413
    resp = await mock.client.get("/_mock/health")
    assert resp.status == 200


def test_nesting_scenario_files(tmp_path: Path) -> None:
    deep_json = tmp_path / "deep.json"
    deep_json.write_text('{"description": ' + "[" * 100 + "]" * 100 + "}")
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("description: " + "[" * 100 + "]" * 100 + "\n")
    for path in (deep_json, deep_yaml):
        with pytest.raises(ScenarioError, match="nested more than 64 levels deep"):
            load_scenario(path)
        with pytest.raises(UsageError, match="nested more than 64 levels deep"):
            load_drift_scenario(str(path))
    very_deep = tmp_path / "very.yaml"
    very_deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UsageError, match="nested too deeply"):
        load_drift_scenario(str(very_deep))


def test_nesting_recordings_are_refused_at_load(tmp_path: Path) -> None:
    record = {
        "provider": "segmind",
        "method": "GET",
        "path": "/v2/requests/x/status",
        "status": 200,
        "response_body": nested(200),
        "encoding": "json",
    }
    (tmp_path / "segmind.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ConfigError, match=r"segmind\.jsonl:1: .*deeper than 65 levels"):
        Replay(tmp_path, schemas.PROVIDERS)
    record["response_body"] = nested(MAX_JSON_DEPTH)  # as deep as a body may be: loads
    (tmp_path / "segmind.jsonl").write_text(json.dumps(record) + "\n")
    assert Replay(tmp_path, schemas.PROVIDERS).serves("segmind")


async def test_nesting_upstream_answer_600_deep_through_the_proxy(aiohttp_server: Any) -> None:
    """The proxy reads an upstream answer nested 600 deep as "not JSON": a clean finding,
    the bytes forwarded, no 500."""
    deep = b'{"request_id":"x","status":"QUEUED","extra":' + b"[" * 600 + b"]" * 600 + b"}"

    async def submit(request: web.Request) -> web.Response:
        return web.Response(body=deep, content_type="application/json")

    upstream_app = web.Application()
    upstream_app.router.add_post("/v2/{slug}", submit)
    upstream = await aiohttp_server(upstream_app)
    upstream_base = str(upstream.make_url("")).rstrip("/")
    config = MockConfig(seed=3, time_scale=0.0, self_check=True, proxy={"segmind": upstream_base})
    proxy = await aiohttp_server(create_app(config))
    async with aiohttp.ClientSession() as http:
        url = str(proxy.make_url("/v2/nano-banana"))
        async with http.post(url, json={"prompt": "x"}, headers=KEYS["segmind"]) as resp:
            assert resp.status == 200, await resp.text()
            assert await resp.read() == deep
        async with http.get(str(proxy.make_url("/_mock/drift"))) as resp:
            assert resp.status == 200
            report = await resp.json()
        async with http.get(str(proxy.make_url("/_mock/journal"))) as resp:
            assert resp.status == 200
    assert "a body that is not JSON" in json.dumps(report), report
    assert proxy.app[STATE].violations == []


async def test_validation_cost_through_the_proxy(aiohttp_server: Any) -> None:
    """The proxy explains a client's body too: bounded like the mock's own answers."""
    config = {"seed": 3, "time_scale": 0.0, "self_check": True}
    upstream = await aiohttp_server(create_app(MockConfig(**config)))
    upstream_base = str(upstream.make_url("")).rstrip("/")
    proxy = await aiohttp_server(create_app(MockConfig(**config, proxy={"segmind": upstream_base})))
    body = encoded({"prompt": "x", "image_urls": [{"a": i} for i in range(20_000)]})
    async with aiohttp.ClientSession() as http:
        url = str(proxy.make_url("/v2/nano-banana-pro"))
        started = time.perf_counter()
        headers = {**KEYS["segmind"], **JSON}
        async with http.post(url, data=body, headers=headers) as resp:
            assert resp.status == 400, await resp.text()
            await resp.read()
        elapsed = time.perf_counter() - started
    entry = proxy.app[STATE].journal.query({})["entries"][-1]
    assert len(entry["problems"]) <= MAX_PROBLEMS + 1
    assert len(entry["findings"]) <= MAX_PROBLEMS
    assert elapsed < STALL_BOUND, elapsed


async def test_explanation_budget_never_refuses_a_valid_body(
    mock: Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of time (a busy machine) before any error: a valid rule or scenario is still
    accepted, an invalid one still refused."""
    monkeypatch.setattr(violations, "EXPLAIN_SECONDS", 0.0)
    rule = {"match": {"operation": "submit"}, "effect": {"http_error": {"status": 503}}}
    resp = await mock.client.post("/_mock/faults", json=rule)
    assert resp.status in (200, 201), await resp.text()
    resp = await mock.client.post("/_mock/reset", json={"scenario": {"faults": [rule]}})
    assert resp.status == 200, await resp.text()
    resp = await mock.client.post("/_mock/faults", json={"effect": {"bogus": 1}})
    answer = await resp.json()
    assert resp.status == 400, answer
    assert answer["problems"] == [
        "... and possibly more problems (the explanation stopped at its time budget)"
    ]


async def test_explanation_bounded_for_prompt_markers(mock: Mock) -> None:
    """A prompt of 20,000 characters holds about 1,300 markers: it is refused at once, with a
    short answer, and a prompt with as many valid markers as are allowed is served."""
    bad = "".join(f"[mock:status={code}]" for code in range(1_000, 2_300))[:20_000]
    body = encoded({"prompt": bad})
    started = time.perf_counter()
    status, answer = await post(mock, "segmind", SUBMIT["segmind"], body)
    elapsed = time.perf_counter() - started
    assert status == 400, answer
    assert answer["error"].startswith("Invalid prompt marker")
    assert len(answer["error"]) < 2_000
    assert elapsed < STALL_BOUND, elapsed
    good = "".join(f"[mock:delay={i}]" for i in range(MAX_MARKERS))
    started = time.perf_counter()
    status, answer = await post(mock, "segmind", SUBMIT["segmind"], encoded({"prompt": good}))
    assert status == 200, answer
    assert time.perf_counter() - started < STALL_BOUND


async def test_validation_cost_control_plane_1000_rules(mock: Mock) -> None:
    """A scenario of 1,000 valid rules was checked in pure Python twice (the scenario, then
    each rule): about half a second on the loop. jsonschema-rs says "valid" in microseconds."""
    match = {"provider": "segmind", "operation": "submit", "model": "nano-banana"}
    effect = {"drift": {"replace": {"path": "/status", "value": "x"}, "when_status": [200]}}
    scope = {"every": 2, "times": 3}
    rules = [
        {"id": f"r-{i}", "match": match, "effect": effect, "scope": scope} for i in range(1_000)
    ]
    reset = asyncio.ensure_future(
        mock.client.post("/_mock/reset", json={"scenario": {"faults": rules}})
    )
    worst = await largest_stall(mock, reset, TIMEOUT)
    resp = reset.result()
    assert resp.status == 200, await resp.text()
    assert len(mock.state.faults.rules) == 1_000
    print(f"\nworst health during a reset with 1,000 rules: {worst * 1000:.0f} ms")
    assert worst < STALL_BOUND, worst
