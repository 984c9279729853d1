"""``GET /_mock/metrics``: the Prometheus text format, read back with prometheus_client's own
parser and checked against the journal, the jobs and the ledger. Per tenant, with the tenant
label capped, never a key, behind the control plane's guards; over real HTTP on loopback, on
the virtual clock."""

from __future__ import annotations

import json
import unittest.mock as um
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from nanobanana_mock.app import create_app
from nanobanana_mock.config import MockConfig
from nanobanana_mock.control import metrics as exposition
from nanobanana_mock.control.api import control_routes
from nanobanana_mock.engine.journal import redact
from nanobanana_mock.engine.keys import fingerprint
from nanobanana_mock.engine.metrics import BOUNDS, MAX_FAULT_SERIES, MAX_SERIES, OTHER, Counters
from nanobanana_mock.store.tenants import TENANTS
from tests.conftest import MockFactory
from tests.harness import KEYS, Mock
from tests.mockserver.test_control_client import call as client_call
from tests.mockserver.test_faults import SUBMIT, add_rule, submit
from tests.mockserver.test_store_redis import Start, seaart_status, seaart_submit, start

__all__ = ["start"]  # the fixture: two processes on one real Redis

Samples = dict[str, list[tuple[dict[str, str], float]]]
TYPE = "text/plain; version=0.0.4; charset=utf-8"
SEAART_STATUS = "/model/v1/queue/nano_banana_pro/requests/{}/status"


async def scrape(mock: Mock, path: str = "/_mock/metrics", **headers: str) -> Samples:
    """The metrics, parsed by prometheus_client: each sample name's (labels, value)."""
    resp = await mock.client.get(path, headers=headers)
    text = await resp.text()
    assert resp.status == 200, text
    assert resp.headers["Content-Type"] == TYPE
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def values(samples: Samples, name: str, **wanted: str) -> dict[tuple[str, ...], float]:
    """The samples of ``name`` matching ``wanted``, by their other labels' values."""
    out: dict[tuple[str, ...], float] = {}
    for labels, value in samples.get(name, []):
        if all(labels.get(k) == v for k, v in wanted.items()):
            rest = tuple(v for k, v in sorted(labels.items()) if k not in wanted)
            out[rest] = value
    return out


async def control(mock: Mock, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    resp = await mock.client.request(method, path, json=body)
    answer = await resp.json()
    assert resp.status == expect, answer
    return answer


async def journal(mock: Mock, prefix: str = "") -> list[dict[str, Any]]:
    answer = await control(mock, "GET", f"{prefix}/_mock/journal?limit=10000")
    entries: list[dict[str, Any]] = answer["entries"]
    return entries


def by_request(entries: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """The journal's requests by (operation, provider, status) as the metric labels them."""
    return Counter(
        (
            e["operation"] or "none",
            e["provider"] or "none",
            "none" if e["status"] is None else str(e["status"]),
        )
        for e in entries
    )


def requests_of(samples: Samples, tenant: str = "") -> Counter[tuple[str, str, str]]:
    found = values(samples, "nanobanana_mock_requests_total", tenant=tenant)
    return Counter({k: int(v) for k, v in found.items() if v})


async def mixed_run(mock: Mock) -> dict[str, str]:
    """Every provider; a fault rule firing 3 times; a transport fault; credits running out;
    a rate limit; a job in each state. Returns the job ids by the state they end in."""
    await control(mock, "POST", "/_mock/credits", {"default": 0.1})  # pixazo: 2 at 0.045
    for _ in range(3):
        await submit(mock, "pixazo", expect=None)
    await control(mock, "POST", "/_mock/credits", {"default": 100})
    await control(
        mock, "POST", "/_mock/rate-limits", {"rpm": 2, "key": KEYS["segmind"]["x-api-key"]}
    )
    codes = [(await submit(mock, "segmind", expect=None))[0].status for _ in range(3)]
    assert codes == [200, 200, 429]
    ids = [(await submit(mock, "seaart"))[1]["request_id"] for _ in range(7)]
    await add_rule(
        mock,
        {
            "id": "flaky-status",
            "match": {"provider": "seaart", "operation": "status"},
            "effect": {"http_error": {"status": 503}},
            "scope": {"first": 3},
        },
    )
    await add_rule(
        mock,
        {
            "id": "cut",
            "match": {"provider": "pixazo", "operation": "result"},
            "effect": {"transport": {"kind": "reset", "when": "before"}},
            "scope": {"first": 1},
        },
    )
    for _ in range(4):
        await mock.call("seaart", "status", "GET", SEAART_STATUS.format(ids[0]), expect=None)
    with pytest.raises(aiohttp.ClientError):
        await mock.client.post(
            "/nano-banana-pro-770/v1/nano-banana-pro-request-result",
            json={"request_id": "nope"},
            headers=KEYS["pixazo"],
        )
    mock.advance(1.5)  # two workers: ids 0 and 1 run, the others wait
    ended = dict(zip(("SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"), ids[2:6], strict=True))
    for state, job in ended.items():
        await control(mock, "POST", f"/_mock/jobs/{job}/state", {"state": state})
    return {"RUNNING": ids[0], "QUEUED": ids[6], **ended}


async def test_a_mixed_run_is_counted_as_the_journal_jobs_and_ledger_say(mock: Mock) -> None:
    await mixed_run(mock)
    entries = await journal(mock)
    samples = await scrape(mock)
    assert requests_of(samples) == by_request(entries)
    assert any(e["status"] is None for e in entries)  # the transport fault: status "none"
    # the histogram counts every request once, by provider and operation
    counts = values(samples, "nanobanana_mock_request_duration_seconds_count", tenant="")
    expected = Counter((e["operation"], e["provider"]) for e in entries)
    assert {k: int(v) for k, v in counts.items()} == expected
    inf = values(samples, "nanobanana_mock_request_duration_seconds_bucket", tenant="", le="+Inf")
    assert inf == counts
    # faults by rule and effect, as the journal names them
    fired = values(samples, "nanobanana_mock_faults_fired_total", tenant="")
    journaled = Counter((e["effect"], e["fault"]) for e in entries if e["fault"])
    assert fired == {("http_error", "flaky-status"): 3, ("transport", "cut"): 1} == journaled
    limited = values(samples, "nanobanana_mock_rate_limited_total", tenant="")
    assert limited == {("segmind",): 1}
    credits = await control(mock, "GET", "/_mock/credits")
    spent = sum(a["spent"] for a in credits["accounts"])
    charged = values(samples, "nanobanana_mock_credits_charged_total", tenant="")
    assert sum(charged.values()) == pytest.approx(spent)
    assert charged[("pixazo",)] == pytest.approx(2 * 0.045)  # the third was refused (402)
    assert charged[("seaart",)] == pytest.approx(7 * 0.134)
    jobs = values(samples, "nanobanana_mock_jobs", tenant="", provider="seaart")
    assert {k[0]: int(v) for k, v in jobs.items() if v} == {
        "RUNNING": 2,
        "QUEUED": 1,
        "SUCCEEDED": 1,
        "FAILED": 1,
        "CANCELLED": 1,
        "EXPIRED": 1,
    }
    listed = await control(mock, "GET", "/_mock/jobs?provider=seaart")
    live = Counter(j["state"] for j in listed["jobs"])
    assert live == {k[0]: int(v) for k, v in jobs.items() if v and k[0] != "EXPIRED"}
    queue = values(samples, "nanobanana_mock_queue_depth", tenant="")
    busy = values(samples, "nanobanana_mock_workers_busy", tenant="")
    assert queue[("seaart",)] == 1 and busy[("seaart",)] == 2
    assert values(samples, "nanobanana_mock_workers", tenant="")[("seaart",)] == 2
    assert values(samples, "nanobanana_mock_journal_dropped_total") == {("",): 0}


async def test_a_job_moves_through_its_states_on_the_virtual_clock(mock: Mock) -> None:
    _, job = await submit(mock, "segmind")

    async def states() -> dict[str, float]:
        found = values(await scrape(mock), "nanobanana_mock_jobs", tenant="", provider="segmind")
        return {k[0]: v for k, v in found.items() if v}

    assert await states() == {"QUEUED": 1}
    mock.advance(1.5)
    assert await states() == {"RUNNING": 1}
    mock.advance(600)
    assert await states() == {"SUCCEEDED": 1}
    mock.advance(10**7)
    assert await states() in ({"EXPIRED": 1}, {})  # held until its turn to go, or gone
    assert job["request_id"]


async def test_dropped_journal_entries_are_counted(mock_factory: MockFactory) -> None:
    mock = await mock_factory(journal_size=3)
    for _ in range(5):
        await submit(mock, "segmind")
    samples = await scrape(mock)
    assert values(samples, "nanobanana_mock_journal_dropped_total") == {("",): 2}
    assert requests_of(samples) == {("submit", "segmind", "200"): 5}


async def test_a_tenant_sees_its_own_and_the_origin_every_tenant(mock: Mock) -> None:
    method, path, body = SUBMIT["seaart"]
    for tenant, n in (("a", 2), ("b", 3)):
        for _ in range(n):
            await mock.call("seaart", "submit", method, f"/t/{tenant}{path}", json=body, expect=200)
    await submit(mock, "pixazo")
    a = await scrape(mock, "/t/a/_mock/metrics")
    assert {labels["tenant"] for labels, _ in a["nanobanana_mock_requests_total"]} == {"a"}
    assert requests_of(a, "a") == by_request(await journal(mock, "/t/a"))
    assert requests_of(a, "a") == {("submit", "seaart", "200"): 2}
    assert values(a, "nanobanana_mock_jobs", tenant="a", state="QUEUED")[("seaart",)] == 2
    every = await scrape(mock)
    assert requests_of(every, "b") == {("submit", "seaart", "200"): 3}
    assert requests_of(every, "") == {("submit", "pixazo", "200"): 1}
    assert requests_of(every, "a") == requests_of(a, "a")
    by_header = await scrape(mock, "/_mock/metrics", **{"X-Mock-Tenant": "b"})
    assert {labels["tenant"] for labels, _ in by_header["nanobanana_mock_requests_total"]} == {"b"}


async def test_the_tenant_label_is_capped_the_rest_summed_as_other(
    mock: Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exposition, "MAX_TENANT_LABELS", 2)
    method, path, body = SUBMIT["segmind"]
    for i, tenant in enumerate(("t1", "t2", "t3", OTHER)):  # each used later than the one before
        for _ in range(i + 1):
            await mock.call("segmind", "submit", method, f"/t/{tenant}{path}", json=body)
    samples = await scrape(mock)
    shown = [labels["tenant"] for labels, _ in samples["nanobanana_mock_requests_total"]]
    assert sorted(shown) == ["_other", "t2", "t3"]  # the default tenant served nothing
    # a tenant named _other is summed with the rest, however recently used: one series each
    assert requests_of(samples, OTHER) == {("submit", "segmind", "200"): 1 + 4}
    assert requests_of(samples, "t3") == {("submit", "segmind", "200"): 3}
    jobs = values(samples, "nanobanana_mock_jobs", provider="segmind", state="QUEUED")
    assert jobs == {("",): 0, ("t3",): 3, ("t2",): 2, (OTHER,): 5}
    alone = await scrape(mock, f"/t/{OTHER}/_mock/metrics")  # by itself, under its own name
    assert requests_of(alone, OTHER) == {("submit", "segmind", "200"): 4}


async def test_no_key_in_the_output_not_even_its_fingerprint_as_a_label(mock: Mock) -> None:
    key = "SG_canary-metrics-4f1e9a7b2c"
    await control(mock, "POST", "/_mock/credits", {"key": key, "balance": 10})
    await control(mock, "POST", "/_mock/rate-limits", {"rpm": 1, "key": key})
    await add_rule(mock, {"match": {"api_key": key}, "effect": {"latency": {"fixed": 0}}})
    headers = {"x-api-key": key}
    method, path, body = SUBMIT["segmind"]
    for _ in range(2):
        await mock.call("segmind", "submit", method, path, json=body, headers=headers, expect=None)
    resp = await mock.client.get("/_mock/metrics")
    text = await resp.text()
    assert "nanobanana_mock_requests_total" in text
    shown = redact(key)
    assert shown is not None
    for secret in (key, shown, shown[3:], fingerprint(key)):
        assert secret not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert set(sample.labels) <= {"tenant", "provider", "operation", "status", "le"} | {
                "rule",
                "effect",
                "state",
            }


async def test_a_reset_starts_every_counter_anew(mock: Mock) -> None:
    await submit(mock, "seaart")
    assert requests_of(await scrape(mock)) == {("submit", "seaart", "200"): 1}
    await control(mock, "POST", "/_mock/reset", {})
    samples = await scrape(mock)
    assert requests_of(samples) == Counter()
    assert sum(values(samples, "nanobanana_mock_credits_charged_total").values()) == 0


async def test_the_control_planes_guards_apply(mock_factory: MockFactory) -> None:
    mock = await mock_factory(control_token="s3cret")
    token = {"X-Mock-Token": "s3cret"}
    for headers, status in (
        ({}, 401),
        ({**token, "Host": "evil.example"}, 403),
        ({**token, "Origin": "https://evil.example"}, 403),
    ):
        for path in ("/_mock/metrics", "/t/ci/_mock/metrics"):
            resp = await mock.client.get(path, headers=headers)
            answer = await resp.json()
            assert resp.status == status and set(answer) == {"error"}, answer
    resp = await mock.client.get("/_mock/metrics?format=json", headers=token)
    answer = await resp.json()
    assert resp.status == 400 and "format" in answer["error"], answer
    resp = await mock.client.post("/_mock/metrics", headers=token, json={})
    assert resp.status == 405 and set(await resp.json()) == {"error"}
    await scrape(mock, **token)


async def test_a_client_off_loopback_is_refused_unless_the_control_plane_is_opened() -> None:
    """As every control route (test_limits.py): the peer's address decides, so a mocked
    request stands in for a client on the LAN."""

    async def answer(remote: str, **settings: Any) -> tuple[int, str]:
        app = create_app(MockConfig(time_scale=0, **settings))
        route = next(r for r in control_routes() if r.path == "/_mock/metrics")
        transport = um.Mock()
        transport.get_extra_info.side_effect = lambda name, default=None: (
            (remote, 50000) if name == "peername" else default
        )
        request = make_mocked_request("GET", "/_mock/metrics", app=app, transport=transport)
        response = await route.handler(request)
        assert isinstance(response, web.Response) and response.text is not None
        return response.status, response.text

    status, text = await answer("10.1.2.3")
    assert status == 403 and "loopback" in json.loads(text)["error"]
    status, text = await answer("10.1.2.3", control_open=True)
    assert status == 200 and "# TYPE nanobanana_mock_requests_total counter" in text
    assert (await answer("10.1.2.3", control_open=True, control_token="t"))[0] == 401


def test_the_plugins_control_reads_its_tenants_metrics(nanobanana_mock: Any) -> None:
    control = nanobanana_mock.control  # the test's own tenant
    for _ in range(2):
        status, _ = client_call(f"{nanobanana_mock.base_url}/v2/nano-banana", {"prompt": "x"})
        assert status == 200
    found = {
        (sample.labels["tenant"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(control.metrics())
        for sample in family.samples
        if sample.name == "nanobanana_mock_requests_total"
    }
    assert found == {(control.tenant_name, "200"): 2}


def test_counters_survive_the_flat_fields_a_shared_store_sums() -> None:
    counters = Counters()
    counters.count("seaart", "status", 200, 0.0004)
    counters.count("seaart", "status", 200, 3.0)
    counters.count("pixazo", "submit", None, 100.0)
    counters.rate_limited("segmind")
    counters.store_error(None)

    class Fired:
        def __init__(self, rule_id: str, kind: str) -> None:
            self.rule_id, self.kind = rule_id, kind

    counters.fired([Fired("r1", "latency"), Fired("r1", "latency"), Fired("r2", "drift")])
    back = Counters.of_fields(counters.fields())
    assert back.served == counters.served
    assert back.faults == {("r1", "latency"): 1, ("r2", "drift"): 1}
    assert (back.limited, back.store_errors) == ({"segmind": 1}, {"": 1})
    slot = back.served[("seaart", "status", 200)]
    assert (
        slot[0] == 3.0004
        and slot[1] == 1
        and slot[1 + BOUNDS.index(5.0)] == 1
        and sum(slot[1:]) == 2
    )
    assert back.served[("pixazo", "submit", None)][-1] == 1  # +Inf
    for i in range(MAX_FAULT_SERIES):
        counters.fired([Fired(f"x{i}", "latency")])
    assert len(counters.faults) == MAX_FAULT_SERIES + 1  # then one: _other
    assert counters.faults[(OTHER, "latency")] == 2
    for status in range(MAX_SERIES):  # request slots are bounded too: then status None
        counters.count("seaart", "status", 1000 + status, 0.001)
    assert len(counters.served) == MAX_SERIES + 1  # and one for the rest, status None
    assert counters.served[("seaart", "status", None)][1 + BOUNDS.index(0.001)] == 2


# -- a shared store: two processes ---------------------------------------------------------


async def test_with_redis_either_process_counts_the_whole_tenant(start: Start) -> None:
    a, b = await start(), await start()
    rid = await seaart_submit(a)
    await seaart_status(b, rid)
    await seaart_status(b, rid)
    method, path, body = SUBMIT["pixazo"]
    await b.call("pixazo", "submit", method, f"/t/ci{path}", json=body, expect=200)
    await a.control("POST", "rate-limits", json={"rpm": 1, "scope": "all"})
    await seaart_status(a, rid)
    await seaart_status(b, rid, expect=429)
    entries = (await a.journal(limit=1000))["entries"]
    # unprefixed, every process's named tenants: b holds a copy of ci, a only reads its counts
    for mock in (a, b):
        samples = await scrape(mock)
        assert requests_of(samples, "ci") == {("submit", "pixazo", "200"): 1}
        charged = values(samples, "nanobanana_mock_credits_charged_total", tenant="ci")
        assert charged.get(("pixazo",)) == (0.045 if mock is b else None)
    assert "ci" not in [t.name for t in a.client.app[TENANTS].named()]  # not made by a scrape
    for mock in (a, b):
        samples = await scrape(mock)
        assert requests_of(samples) == by_request(entries)
        assert requests_of(samples) == {
            ("submit", "seaart", "200"): 1,
            ("status", "seaart", "200"): 3,
            ("status", "seaart", "429"): 1,
        }
        assert values(samples, "nanobanana_mock_rate_limited_total", tenant="") == {("seaart",): 1}
        assert requests_of(await scrape(mock, "/t/ci/_mock/metrics"), "ci") == {
            ("submit", "pixazo", "200"): 1
        }
        jobs = values(samples, "nanobanana_mock_jobs", tenant="", provider="seaart")
        assert jobs[("QUEUED",)] == 1
    await b.control("POST", "reset", json={})
    await seaart_submit(a)
    for mock in (a, b):
        assert requests_of(await scrape(mock)) == {("submit", "seaart", "200"): 1}


async def test_with_redis_dropped_entries_are_the_shared_journals(start: Start) -> None:
    a, b = await start(journal_size=3), await start(journal_size=3)
    for mock in (a, b, a, b, a):
        await seaart_submit(mock)
    for mock in (a, b):
        samples = await scrape(mock)
        assert values(samples, "nanobanana_mock_journal_dropped_total") == {("",): 2}
        assert requests_of(samples) == {("submit", "seaart", "200"): 5}


async def test_with_redis_store_errors_are_counted_by_the_process_that_answered(
    start: Start, redis_server: Any
) -> None:
    a = await start()
    rid = await seaart_submit(a)
    redis_server.stop()
    resp = await a.client.get(SEAART_STATUS.format(rid), headers=KEYS["seaart"])
    assert resp.status == 503
    redis_server.start()  # empty, or as last saved: the tenant's earlier counts may be gone
    await seaart_submit(a)  # the counts go with the next journal write
    samples = await scrape(a)
    assert values(samples, "nanobanana_mock_store_errors_total", tenant="") == {("seaart",): 1}
    assert requests_of(samples)[("submit", "seaart", "200")] >= 1


async def test_with_redis_each_count_is_shipped_once(start: Start) -> None:
    """Counts go with each journal write: what one write shipped, the next does not again."""
    a = await start()
    rid = await seaart_submit(a)
    await a.control("POST", "rate-limits", json={"rpm": 1, "scope": "all"})
    await seaart_status(a, rid)
    for _ in range(3):
        await seaart_status(a, rid, expect=429)
    samples = await scrape(a)
    assert values(samples, "nanobanana_mock_rate_limited_total", tenant="") == {("seaart",): 3}
    assert requests_of(samples)[("status", "seaart", "429")] == 3
