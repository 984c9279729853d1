"""Tenants: one mock, many isolated mocks in it, chosen by a ``/t/{tenant}/`` path prefix or
an ``X-Mock-Tenant`` header. Every request goes over real HTTP on loopback, and every answer
is checked against its contract (the provider's, or the control plane's)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from nanobanana_mock import schemas
from nanobanana_mock.app import create_app
from nanobanana_mock.config import MockConfig
from nanobanana_mock.control import spec
from nanobanana_mock.engine.journal import redact
from nanobanana_mock.state import STATE
from nanobanana_mock.store.tenants import TENANTS, TenantError, Tenants, check_name
from tests.conftest import MockFactory
from tests.harness import KEYS, Mock, schema_for, validate

BODIES: dict[str, tuple[str, dict[str, Any]]] = {  # a provider's submit: model, body
    "segmind": ("nano-banana", {"prompt": "a banana"}),
    "seaart": ("nano_banana_pro", {"prompt": "a banana"}),
    "pixazo": ("nano-banana-pro", {"prompt": "a banana", "image_urls": ["https://e.x/a.png"]}),
    "fal": ("nano-banana-pro", {"prompt": "a banana"}),
}


def submit_path(provider: str, model: str) -> str:
    path: str = schemas.load(provider, "api")["operations"]["submit"]["path"]
    return path.replace("{model}", model)


def operation_of(provider: str, method: str, path: str) -> str:
    """The operation of ``provider``'s api.json that ``method path`` (no prefix) is."""
    for name, op in schemas.load(provider, "api")["operations"].items():
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(op["path"]))
        if op["method"] == method and re.fullmatch(pattern, path):
            return str(name)
    raise AssertionError(f"{method} {path} is no operation of {provider}")


async def control(
    mock: Mock,
    method: str,
    path: str,
    body: Any = None,
    *,
    expect: int = 200,
    headers: dict[str, str] | None = None,
) -> Any:
    """A control-plane call, its answer checked against schemas/mock/control/."""
    resp = await mock.client.request(method, path, json=body, headers=headers)
    answer = await resp.json() if resp.content_type == "application/json" else None
    assert resp.status == expect, (method, path, resp.status, answer)
    route = spec.route_of(method, path.partition("?")[0])
    schema = spec.answer_schema(route, resp.status) if route is not None else spec.ERROR
    if schema is not None:
        assert spec.check(schema, answer) == [], (path, answer)
    return answer


def urls_in(body: Any) -> Iterator[str]:
    """Every absolute URL an answer holds."""
    if isinstance(body, dict):
        for value in body.values():
            yield from urls_in(value)
    elif isinstance(body, list):
        for value in body:
            yield from urls_in(value)
    elif isinstance(body, str) and body.startswith(("http://", "https://")):
        yield body


def settle(mock: Mock) -> None:
    assert mock.state.violations == [], mock.state.violations


# -- every URL stays inside the tenant ----------------------------------------------------------


# the providers whose answers hold URLs: Gemini's generateContent answers its image inline
QUEUED = [p for p in schemas.PROVIDERS if "submit" in schemas.load(p, "api")["operations"]]


@pytest.mark.parametrize("provider", QUEUED)
@pytest.mark.parametrize("how", ["prefix", "header"])
async def test_every_url_an_answer_holds_stays_inside_the_tenant_and_leads_to_its_job(
    mock: Mock, provider: str, how: str
) -> None:
    """Submit in tenant ci-42 (by prefix, or by header), then follow every URL the answers
    hold, with the same client: each one is under /t/ci-42/ and answers for the tenant's job
    (status, result, poll, cancel, images), while the default tenant knows no such job."""
    prefix = "/t/ci-42" if how == "prefix" else ""
    headers = {} if how == "prefix" else {"X-Mock-Tenant": "ci-42"}
    inside = f"{mock.base}/t/ci-42/"
    model, body = BODIES[provider]
    path = submit_path(provider, model)
    _, answer = await mock.call(
        provider, "submit", "POST", prefix + path, json=body, headers=headers, expect=200
    )
    request_id = answer["request_id"]
    seen: set[str] = set()
    todo = [*urls_in(answer)]
    await control(mock, "POST", "/t/ci-42/_mock/clock", {"advance": 600})
    if provider == "pixazo":  # its result is a POST naming the id: follow it by hand
        _, answer = await mock.call(
            provider,
            "result",
            "POST",
            "/t/ci-42" + path + "-result",
            json={"request_id": request_id},
            expect=200,
        )
        assert answer["status"] == "COMPLETED", answer
        todo += urls_in(answer)
    cancels = []
    while todo:
        url = todo.pop()
        if url in seen or url.startswith("https://e.x/"):
            continue
        seen.add(url)
        assert url.startswith(inside), f"{url} leaves the tenant"
        local = url[len(inside) - 1 :]
        if local.startswith("/_mock/files/"):
            image = await mock.image(url)
            assert image.width > 0
            resp = await mock.client.get(local)  # the default tenant has no such image
            assert resp.status == 404 and resp.headers["X-Mock-Job-State"] == "unknown"
            continue
        if local.endswith("/cancel"):
            cancels.append(local)
            continue
        operation = operation_of(provider, "GET", local)
        _, followed = await mock.call(provider, operation, "GET", url[len(mock.base) :])
        todo += urls_in(followed)
        resp, _ = await mock.call(provider, operation, "GET", local, expect=404)
        assert resp.headers["X-Mock-Job-State"] == "unknown"  # not the default tenant's
    assert any("/_mock/files/" in url for url in seen), seen
    for local in cancels:  # SeaArt: the job is done, so its cancel is the documented 400
        resp, _ = await mock.call(provider, "cancel", "PUT", "/t/ci-42" + local, expect=400)
    index = await control(mock, "GET", "/t/ci-42/")
    assert all((url + "/").startswith(inside) for url in urls_in(index)), index
    settle(mock)


async def test_segmind_sync_generation_and_the_sdk_base_url_work_inside_a_tenant(
    mock: Mock,
) -> None:
    """The base URL of the README's SDK example, ``…/t/ci-42/v1``: the blocking call answers
    the image, and only the tenant's journal shows it."""
    await control(
        mock,
        "POST",
        "/t/ci-42/_mock/reset",
        {"settings": {"queue_seconds": 0, "processing_seconds": {"*": 0}}},
    )
    resp = await mock.client.post(
        "/t/ci-42/v1/nano-banana", json={"prompt": "a banana"}, headers=KEYS["segmind"]
    )
    assert resp.status == 200 and resp.content_type.startswith("image/"), await resp.text()
    journal = await control(mock, "GET", "/t/ci-42/_mock/journal")
    assert [(e["operation"], e["path"], e["status"]) for e in journal["entries"]] == [
        ("sync_generate", "/v1/nano-banana", 200)
    ]
    assert (await control(mock, "GET", "/_mock/journal"))["count"] == 0
    settle(mock)


# -- isolation ----------------------------------------------------------------------------------


async def test_jobs_journal_rules_clock_credits_limits_and_settings_are_the_tenants_own(
    mock: Mock,
) -> None:
    a, b = "/t/team-a", "/t/team-b"
    seg = submit_path("segmind", "nano-banana")
    # settings: team-a accepts one key only and runs one worker
    reset = await control(
        mock, "POST", f"{a}/_mock/reset", {"settings": {"workers": 1, "api_keys": ["SG_a"]}}
    )
    assert reset["settings"]["workers"] == 1 and reset["settings"]["api_keys"] == 1
    assert (await control(mock, "GET", f"{b}/_mock/settings"))["workers"] == 2
    assert (await control(mock, "GET", "/_mock/settings"))["api_keys"] == 0
    await mock.call("segmind", "submit", "POST", a + seg, json={"prompt": "x"}, expect=401)
    await mock.call("segmind", "submit", "POST", b + seg, json={"prompt": "x"}, expect=200)
    # jobs
    key_a = {"x-api-key": "SG_a"}
    _, job = await mock.call(
        "segmind", "submit", "POST", a + seg, json={"prompt": "x"}, headers=key_a, expect=200
    )
    jobs_a = await control(mock, "GET", f"{a}/_mock/jobs")
    jobs_b = await control(mock, "GET", f"{b}/_mock/jobs")
    assert [j["id"] for j in jobs_a["jobs"]] == [job["request_id"]]
    assert jobs_b["total"] == 1 and (await control(mock, "GET", "/_mock/jobs"))["total"] == 0
    await control(mock, "GET", f"/_mock/jobs/{job['request_id']}", expect=404)
    # clock
    assert (await control(mock, "POST", f"{a}/_mock/clock", {"advance": 30}))["now"] == 30
    assert (await control(mock, "GET", f"{b}/_mock/clock"))["now"] == 0
    assert (await control(mock, "GET", "/_mock/clock"))["now"] == 0
    health = await control(mock, "GET", f"{a}/_mock/health")
    assert (health["clock"], health["jobs"], health["tenant"]) == (30, 1, "team-a")
    # fault rules
    rule = {"match": {"provider": "segmind", "operation": "submit"}}
    rule["effect"] = {"http_error": {"status": 503}}
    await control(mock, "POST", f"{b}/_mock/faults", rule, expect=201)
    await mock.call("segmind", "submit", "POST", b + seg, json={"prompt": "x"}, expect=503)
    await mock.call(
        "segmind", "submit", "POST", a + seg, json={"prompt": "x"}, headers=key_a, expect=200
    )
    await mock.call("segmind", "submit", "POST", seg, json={"prompt": "x"}, expect=200)
    assert (await control(mock, "GET", f"{a}/_mock/faults"))["faults"] == []
    assert (await control(mock, "GET", "/_mock/faults"))["faults"] == []
    await control(mock, "DELETE", f"{b}/_mock/faults")
    # credits: none left in team-b
    await control(mock, "POST", f"{b}/_mock/credits", {"default": 0})
    await mock.call("segmind", "submit", "POST", b + seg, json={"prompt": "x"}, expect=406)
    await mock.call("segmind", "submit", "POST", seg, json={"prompt": "x"}, expect=200)
    assert (await control(mock, "GET", "/_mock/credits"))["enabled"] is False
    # rate limits: one request a minute in the default tenant
    await control(mock, "POST", "/_mock/rate-limits", {"rpm": 1, "scope": "all"})
    await mock.call("segmind", "submit", "POST", seg, json={"prompt": "x"}, expect=200)
    await mock.call("segmind", "submit", "POST", seg, json={"prompt": "x"}, expect=429)
    for _ in range(3):
        await mock.call(
            "segmind", "submit", "POST", a + seg, json={"prompt": "x"}, headers=key_a, expect=200
        )
    assert (await control(mock, "GET", f"{a}/_mock/rate-limits"))["limits"] == []
    # journals: each tenant's own requests, by its own paths
    journal = {
        name: (await control(mock, "GET", f"{where}/_mock/journal"))["entries"]
        for name, where in (("a", a), ("b", b), ("default", ""))
    }
    assert [e["status"] for e in journal["a"]] == [401, 200, 200, 200, 200, 200]
    assert [e["status"] for e in journal["b"]] == [200, 503, 406]
    assert [e["status"] for e in journal["default"]] == [200, 200, 200, 429]
    assert all(e["path"] == seg for entries in journal.values() for e in entries)
    assert {e["key"] for e in journal["a"][1:]} == {redact("SG_a")}
    # a reset of one tenant leaves the others as they were
    await control(mock, "POST", f"{a}/_mock/reset", {})
    assert (await control(mock, "GET", f"{a}/_mock/jobs"))["total"] == 0
    assert (await control(mock, "GET", f"{b}/_mock/jobs"))["total"] == 1
    assert (await control(mock, "GET", "/_mock/jobs"))["total"] == 3
    await control(mock, "DELETE", f"{b}/_mock/journal")
    assert len((await control(mock, "GET", "/_mock/journal"))["entries"]) == 4
    settle(mock)


async def test_a_new_tenant_starts_as_the_default_one_did_with_the_start_up_scenario(
    mock_factory: MockFactory,
) -> None:
    """A tenant is made with the start-up settings and scenario (its credits, keys, rules),
    not with the default tenant's state of the moment (a reset, a rule added since)."""
    mock = await mock_factory(scenario="out-of-credits", workers=3)
    await control(mock, "POST", "/_mock/reset", {"settings": {"workers": 1}})
    await control(mock, "DELETE", "/_mock/faults")
    settings = await control(mock, "GET", "/t/fresh/_mock/settings")
    # the scenario's seed 1 yields to the explicit seed 7 (tests/conftest.py), as at start-up
    assert (settings["workers"], settings["seed"], settings["api_keys"]) == (3, 7, 2)
    faults = (await control(mock, "GET", "/t/fresh/_mock/faults"))["faults"]
    assert [f["id"] for f in faults] == ["seaart-forced-402"]
    assert (await control(mock, "GET", "/t/fresh/_mock/credits"))["default"] == 0.1
    settle(mock)


# -- choosing the tenant -------------------------------------------------------------------------


async def test_the_header_and_the_prefix_name_the_same_tenant_and_must_agree(mock: Mock) -> None:
    seg = submit_path("segmind", "nano-banana")
    by_header = {"X-Mock-Tenant": "ci-7"}
    _, job = await mock.call(
        "segmind", "submit", "POST", seg, json={"prompt": "x"}, headers=by_header, expect=200
    )
    assert job["status_url"].startswith(f"{mock.base}/t/ci-7/v2/requests/")
    status = job["status_url"][len(mock.base) :]
    await mock.call("segmind", "status", "GET", status, expect=200)  # by the prefix
    await mock.call("segmind", "status", "GET", status, headers=by_header, expect=200)  # both
    unprefixed = status.removeprefix("/t/ci-7")
    await mock.call("segmind", "status", "GET", unprefixed, headers=by_header, expect=200)
    await mock.call("segmind", "status", "GET", unprefixed, expect=404)  # the default's
    other = {"X-Mock-Tenant": "ci-8"}
    _, body = await mock.call(
        "segmind", "submit", "POST", "/t/ci-7" + seg, json={}, headers=other, expect=400
    )
    assert "'ci-7'" in body["error"] and "X-Mock-Tenant" in body["error"], body
    answer = await control(mock, "GET", "/t/ci-7/_mock/jobs", headers=other, expect=400)
    assert "names another" in answer["error"]
    assert (await control(mock, "GET", "/_mock/jobs", headers=by_header))["total"] == 1
    assert (await control(mock, "GET", "/_mock/jobs"))["total"] == 0
    settle(mock)


@pytest.mark.parametrize(
    "name", ["", "a b", "x" * 65, "ümlaut", "a:b", "%00", "semi;colon"], ids=repr
)
def test_a_tenant_name_is_1_to_64_of_letters_digits_dot_dash_underscore(name: str) -> None:
    with pytest.raises(TenantError, match="1 to 64 characters"):
        check_name(name, "a test")


@pytest.mark.parametrize("name", ["a", "ci-42", "Team_1.x", "x" * 64, "..."])
def test_good_tenant_names(name: str) -> None:
    assert check_name(name, "a test") == name


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_are_refused_as_url_libraries_resolve_them_away(name: str) -> None:
    with pytest.raises(TenantError):
        check_name(name, "a test")


async def test_a_bad_tenant_name_is_a_clear_error_in_the_envelope_of_what_follows(
    mock: Mock,
) -> None:
    """A bad name in the prefix or header: the provider's 400 where its operation declares
    one (a 404 where it does not: a GET of a job), the control plane's {"error"}, never a
    500; nothing is made or journaled."""
    bad = "/t/bad%20name"
    for provider, (model, body) in BODIES.items():
        path = submit_path(provider, model)
        _, answer = await mock.call(provider, "submit", "POST", bad + path, json=body, expect=400)
        assert "invalid tenant name 'bad name'" in str(answer), answer
        _, answer = await mock.call(
            provider,
            "submit",
            "POST",
            path,
            json=body,
            headers={"X-Mock-Tenant": "x" * 65},
            expect=400,
        )
        assert "X-Mock-Tenant" in str(answer), answer
    await mock.call("segmind", "status", "GET", bad + "/v2/requests/abc/status", expect=404)
    seaart_status = "/model/v1/queue/nano_banana_pro/requests/abc/status"
    await mock.call("seaart", "status", "GET", bad + seaart_status, expect=404)
    for path in ("/_mock/clock", "/_mock/health", "/_mock/tenants", "/_mock/nowhere"):
        answer = await control(mock, "GET", bad + path, expect=400)
        assert "invalid tenant name" in answer["error"], answer
    resp = await mock.client.get(bad + "/_mock/files/abc/0.png")
    assert resp.status == 400 and "invalid tenant name" in (await resp.json())["error"]
    resp = await mock.client.get(bad + "/v2/nowhere", headers=KEYS["segmind"])  # a stray
    assert resp.status == 400
    validate("segmind", "error", await resp.json())
    tenants = await control(mock, "GET", "/_mock/tenants")
    assert [t["name"] for t in tenants["tenants"]] == [""], tenants
    assert (await control(mock, "GET", "/_mock/journal"))["count"] == 0
    settle(mock)


async def test_strays_and_wrong_methods_inside_a_tenant_answer_as_outside(mock: Mock) -> None:
    for prefix in ("", "/t/ci-1"):
        resp = await mock.client.get(prefix + "/v2/requests/a/b/c", headers=KEYS["segmind"])
        assert resp.status == 404
        validate("segmind", "error", await resp.json())
        resp = await mock.client.delete(prefix + "/v2/nano-banana", headers=KEYS["segmind"])
        assert resp.status == 405 and "POST" in resp.headers["Allow"]
        resp = await mock.client.get(prefix + "/model/nowhere", headers=KEYS["seaart"])
        assert resp.status == 404
        validate("seaart", schema_for("seaart", "status", 404), await resp.json())
        answer = await control(mock, "PUT", prefix + "/_mock/clock", expect=405)
        assert "error" in answer
    journal = await control(mock, "GET", "/t/ci-1/_mock/journal")
    assert [e["path"] for e in journal["entries"]] == [
        "/v2/requests/a/b/c",
        "/v2/nano-banana",
        "/model/nowhere",
    ]
    settle(mock)


async def test_the_control_planes_guards_hold_inside_a_tenant(
    mock_factory: MockFactory,
) -> None:
    mock = await mock_factory(control_token="s3cret")
    await control(mock, "GET", "/t/ci-1/_mock/clock", expect=401)
    await control(mock, "GET", "/t/ci-1/_mock/clock", headers={"X-Mock-Token": "s3cret"})
    await control(
        mock,
        "GET",
        "/t/ci-1/_mock/clock",
        headers={"X-Mock-Token": "s3cret", "Host": "evil.example"},
        expect=403,
    )
    await control(
        mock,
        "GET",
        "/t/ci-1/_mock/clock",
        headers={"X-Mock-Token": "s3cret", "Origin": "https://evil.example"},
        expect=403,
    )
    settle(mock)


# -- the bound and idle eviction ---------------------------------------------------------------


class Wall:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def walled(mock: Mock) -> Wall:
    wall = Wall()
    tenants: Tenants = mock.client.server.app[TENANTS]
    tenants.wall = wall
    return wall


async def names(mock: Mock) -> list[str]:
    return [t["name"] for t in (await control(mock, "GET", "/_mock/tenants"))["tenants"]]


async def test_past_max_tenants_the_least_recently_used_is_evicted_never_the_default(
    mock_factory: MockFactory,
) -> None:
    mock = await mock_factory(max_tenants=3)
    wall = walled(mock)
    for name in ("t1", "t2", "t3"):
        await control(mock, "POST", f"/t/{name}/_mock/clock", {"advance": 5})
        wall.now += 1
    await control(mock, "GET", "/t/t1/_mock/clock")  # t1 used again: t2 is now the oldest
    wall.now += 1
    await control(mock, "GET", "/t/t4/_mock/clock")
    assert await names(mock) == ["", "t4", "t1", "t3"]
    assert (await control(mock, "GET", "/t/t2/_mock/clock"))["now"] == 0  # made afresh
    assert (await control(mock, "GET", "/t/t1/_mock/clock"))["now"] == 5
    health = await control(mock, "GET", "/_mock/health")
    assert (health["store"], health["tenants"], health["tenant"]) == ("memory", 4, "")
    settle(mock)


async def test_an_idle_tenant_is_evicted_and_starts_afresh_when_named_again(
    mock_factory: MockFactory,
) -> None:
    mock = await mock_factory(tenant_idle_seconds=60)
    wall = walled(mock)
    seg = submit_path("segmind", "nano-banana")
    _, job = await mock.call(
        "segmind", "submit", "POST", "/t/old/" + seg.lstrip("/"), json={"prompt": "x"}
    )
    await control(mock, "POST", "/t/old/_mock/clock", {"advance": 7})
    wall.now += 30
    await control(mock, "GET", "/t/recent/_mock/clock")
    wall.now += 31  # old: idle 61 s; recent: 31 s
    assert await names(mock) == ["", "recent"]
    listed = (await control(mock, "GET", "/_mock/tenants"))["tenants"]
    assert listed[1]["idle_seconds"] == 31
    status = job["status_url"][len(mock.base) :]
    resp, _ = await mock.call("segmind", "status", "GET", status, expect=404)
    assert resp.headers["X-Mock-Job-State"] == "unknown"  # the job went with its tenant
    assert (await control(mock, "GET", "/t/old/_mock/clock"))["now"] == 0
    wall.now += 61  # both idle; the lookup of one evicts the other too
    await control(mock, "GET", "/t/old/_mock/clock")
    assert await names(mock) == ["", "old"]
    assert mock.client.server.app[TENANTS].evicted == 3
    settle(mock)


async def test_a_request_waiting_on_an_evicted_tenants_clock_is_answered_at_once(
    mock_factory: MockFactory,
) -> None:
    """A Segmind /v1 call waits on its tenant's frozen clock; the tenant is evicted (one
    tenant more than the bound): the call gets the 503 a reset gives, not a wait forever."""
    mock = await mock_factory(max_tenants=1)
    waiting = asyncio.ensure_future(
        mock.call("segmind", "sync_generate", "POST", "/t/t1/v1/nano-banana", json={"prompt": "x"})
    )
    tenants: Tenants = mock.client.server.app[TENANTS]
    for _ in range(1000):  # 10 s at most for the call to reach the mock and make its tenant
        if len(tenants):
            break
        await asyncio.sleep(0.01)
    (t1,) = tenants.named()
    await asyncio.wait_for(t1.state.clock.wait_for_sleepers(1), 10)
    await control(mock, "GET", "/t/t2/_mock/clock")
    resp, body = await asyncio.wait_for(waiting, 10)
    assert resp.status == 503 and "send it again" in body["error"], body
    assert await names(mock) == ["", "t2"]
    settle(mock)


async def test_tenant_settings_are_checked_and_start_up_only(mock: Mock) -> None:
    with pytest.raises(ValueError, match="max_tenants"):
        MockConfig(max_tenants=0)
    with pytest.raises(ValueError, match="tenant_idle_seconds"):
        MockConfig(tenant_idle_seconds=0)
    answer = await control(
        mock, "POST", "/t/a/_mock/reset", {"settings": {"max_tenants": 5}}, expect=400
    )
    assert "start-up" in answer["error"], answer
    app = create_app(MockConfig(max_tenants=7, tenant_idle_seconds=9))
    assert (app[TENANTS].max_tenants, app[TENANTS].idle_seconds) == (7, 9)


# -- 100 tenants at once ----------------------------------------------------------------------


async def test_100_tenants_driven_concurrently_never_cross(mock_factory: MockFactory) -> None:
    """Each tenant has its own key, model, fault rule (its first N status polls answer 503)
    and clock advance; all run at once. Afterwards every tenant's jobs, journal and clock are
    its own, and the default tenant saw nothing."""
    mock = await mock_factory()
    models = ("nano-banana", "nano-banana-2", "nano-banana-pro")
    count = 100

    async def drive(i: int) -> tuple[str, str]:
        t = f"/t/tenant-{i}"
        key = {"x-api-key": f"SG_tenant_{i}"}
        model = models[i % 3]
        fails = 1 + i % 4
        rule = {
            "match": {"provider": "segmind", "operation": "status"},
            "effect": {"http_error": {"status": 503}},
            "scope": {"first": fails},
        }
        await control(mock, "POST", f"{t}/_mock/faults", rule, expect=201)
        _, job = await mock.call(
            "segmind",
            "submit",
            "POST",
            f"{t}/v2/{model}",
            json={"prompt": f"tenant {i}"},
            headers=key,
            expect=200,
        )
        assert job["status_url"].startswith(f"{mock.base}{t}/")
        status = job["status_url"][len(mock.base) :]
        await control(mock, "POST", f"{t}/_mock/clock", {"advance": 100 + i})
        for _ in range(fails):
            await mock.call("segmind", "status", "GET", status, headers=key, expect=503)
            await asyncio.sleep(0)
        _, answer = await mock.call("segmind", "status", "GET", status, headers=key, expect=200)
        assert answer["status"] == "COMPLETED", answer
        return job["request_id"], model

    made = await asyncio.gather(*(drive(i) for i in range(count)))
    for i, (job_id, model) in enumerate(made):
        t = f"/t/tenant-{i}"
        jobs = (await control(mock, "GET", f"{t}/_mock/jobs"))["jobs"]
        assert [(j["id"], j["model"]) for j in jobs] == [(job_id, model)]
        assert (await control(mock, "GET", f"{t}/_mock/clock"))["now"] == 100 + i
        journal = (await control(mock, "GET", f"{t}/_mock/journal"))["entries"]
        fails = 1 + i % 4
        assert [e["status"] for e in journal] == [200] + [503] * fails + [200]
        assert {e["key"] for e in journal} == {redact(f"SG_tenant_{i}")}
        assert {e["request_id"] for e in journal} == {job_id}
        assert {e["model"] for e in journal} <= {model, None}  # a fault answers before the job
        assert journal[0]["model"] == journal[-1]["model"] == model
        assert [e["t"] for e in journal] == [0.0] + [100.0 + i] * (fails + 1)
        faults = (await control(mock, "GET", f"{t}/_mock/faults"))["faults"]
        assert len(faults) == 1 and faults[0]["fired"] == fails, faults
    assert (await control(mock, "GET", "/_mock/journal"))["total"] == 0
    assert (await control(mock, "GET", "/_mock/jobs"))["total"] == 0
    listed = await control(mock, "GET", "/_mock/tenants")
    assert listed["total"] == count + 1
    settle(mock)


# -- the validating proxy and the replay inside a tenant ----------------------------------------


async def test_a_tenant_records_through_the_proxy_and_another_replays_it(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """Through the proxy the path goes upstream without the prefix, the answer's URLs come
    back inside the tenant, the recording holds provider paths, and a replay serves it to
    any tenant (the image behind a replayed URL included)."""
    from tests.mockserver.test_proxy import UPSTREAM_CONFIG, _seaart_job

    async def start(**settings: Any) -> Any:
        app = create_app(MockConfig(**{**UPSTREAM_CONFIG, **settings}))
        return await aiohttp_server(app)

    upstream = await start()
    up = upstream.app[STATE]
    base = str(upstream.make_url("")).rstrip("/")
    proxy = await start(proxy={"seaart": base}, record_dir=str(tmp_path))
    inside = SimpleNamespace(base=str(proxy.make_url("")).rstrip("/") + "/t/rec")
    async with aiohttp.ClientSession() as http:
        recorded = await _seaart_job(inside, http, lambda: up.clock.advance(100))
        assert recorded[0][1]["status_url"].startswith(inside.base + "/model/")
        assert [status for status, _ in recorded] == [200, 200, 200, 200, 200, 200]
        upstream_paths = [e["path"] for e in up.journal.query({})["entries"]]
        assert upstream_paths[0] == "/model/v1/queue/nano_banana_pro", upstream_paths
        lines = (tmp_path / "seaart.jsonl").read_text(encoding="utf-8").splitlines()
        assert all(not json.loads(line)["path"].startswith("/t/") for line in lines)
        tenants = proxy.app[TENANTS]
        journal = (await tenants.get("rec")).state.journal.query({})["entries"]
        assert [e["operation"] for e in journal][-1] == "image"
        assert all(not e["path"].startswith("/t/") for e in journal)

        replay = await start(replay_dir=str(tmp_path))
        elsewhere = SimpleNamespace(base=str(replay.make_url("")).rstrip("/") + "/t/rep")
        replayed = await _seaart_job(elsewhere, http, lambda: None)
        assert [status for status, _ in replayed] == [200] * 6
        assert replayed[0][1]["status_url"].startswith(elsewhere.base + "/model/")
        assert replayed[-1][1] == recorded[-1][1]  # the same image bytes
    for server in (upstream, proxy, replay):
        assert server.app[STATE].violations == []


def test_every_route_is_served_again_under_the_tenant_prefix_and_only_there() -> None:
    """The same method, path, handler and name (``t:`` before it) under /t/{tenant}; the
    router indexes them under /t, so a path without the prefix never tries them."""
    app = create_app(MockConfig())
    plain, prefixed = {}, {}
    for route in app.router.routes():
        key = (route.method, route.resource.canonical if route.resource else None)
        name = route.name or ""
        (prefixed if name.startswith("t:") else plain)[key] = (route.handler, name)
    assert {(m, "/t/{tenant}" + p): (h, "t:" + n) for (m, p), (h, n) in plain.items()} == prefixed
    index = app.router._resource_index  # aiohttp's: leading path -> resources
    assert all(
        not r.canonical.startswith("/t/") for k, rs in index.items() if k != "/t" for r in rs
    )
