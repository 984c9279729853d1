"""Memory bounded by settings, and control-plane work that stays linear.

Each test is named after the finding it guards. Work is proved by counting it, or by sizes
at which the old code took seconds, with generous bounds; time is the virtual clock's.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import json
import random
import time
import tracemalloc
from collections import deque
from typing import Any

import pytest

from nanobanana_mock.config import ConfigError, MockConfig
from nanobanana_mock.engine.jobs import (
    JOB_BYTES,
    Failure,
    Job,
    JobStore,
    Output,
    Surface,
    WorkerPool,
)
from nanobanana_mock.engine.quotas import MAX_KEYS, RateLimiter
from nanobanana_mock.http import ApiError, fingerprint
from nanobanana_mock.schemas.checks import BREAKING, Finding
from nanobanana_mock.schemas.report import Report
from nanobanana_mock.state import MockState
from nanobanana_mock.store.tenant import DEFAULT, Tenant, use
from tests.harness import KEYS, Mock

TIMEOUT = 60.0  # every HTTP exchange here is bounded
OUTPUT = Output(1024, 1024, "png", 1)


def serving(state: MockState) -> tuple[()]:
    """Make ``state`` the current tenant's, as a request would (no arguments for a provider)."""
    use(Tenant(DEFAULT, state))
    return ()


def padded_body(prompt: str = "a lean job", items: int = 15_000) -> dict[str, Any]:
    """A valid Segmind body made heavy by small objects in a field the real API ignores (the
    body of 3.5 MB per job in the issue)."""
    return {"prompt": prompt, "aspect_ratio": "1:1", "extra": [{"k": i} for i in range(items)]}


async def submit(mock: Mock, body: dict[str, Any], model: str = "nano-banana") -> dict[str, Any]:
    _, data = await asyncio.wait_for(
        mock.call("segmind", "submit", "POST", f"/v2/{model}", json=body, expect=200), TIMEOUT
    )
    return data


async def settle(mock: Mock) -> None:
    """The connection keeps its last request (and its body) until the next one."""
    resp = await mock.client.get("/_mock/health")
    await resp.read()
    gc.collect()


# -- 2. a job keeps what it needs, not its body -------------------------------------------------


async def test_job_keeps_no_request_body(mock_factory) -> None:
    mock = await mock_factory(journal_size=1)
    body = padded_body()
    assert len(json.dumps(body)) > 190_000
    await submit(mock, body)  # warm
    await settle(mock)
    jobs = 10
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(jobs):
            await submit(mock, body)
        await settle(mock)
        kept = (tracemalloc.get_traced_memory()[0] - before) / jobs
    finally:
        tracemalloc.stop()
    assert kept < 64 * 1024, f"{kept:,.0f} bytes kept per job of a {len(json.dumps(body)):,} body"
    assert not hasattr(mock.state.store.jobs()[0], "request")


async def test_same_body_same_pixels_other_body_other_seed(mock: Mock) -> None:
    """The image seed is a digest of the whole body: an ignored field still changes it."""
    first = padded_body(items=3)
    again = json.loads(json.dumps(first))
    other = padded_body(items=4)
    seeds = []
    images = []
    for body in (first, again, other):
        rid = (await submit(mock, body))["request_id"]
        mock.advance(600)
        _, result = await mock.call("segmind", "result", "GET", f"/v2/requests/{rid}", expect=200)
        seeds.append(result["seed"])
        resp = await mock.client.get(result["output"][len(mock.base) :])
        images.append(await resp.read())
    assert seeds[0] == seeds[1] != seeds[2]
    assert images[0] == images[1] != images[2]


async def test_answers_echo_prompt_seed_and_input_count_without_the_body(mock: Mock) -> None:
    body = {"prompt": "echo me", "seed": 12345, "image_urls": ["https://example.com/a.png"]}
    rid = (await submit(mock, body, model="nano-banana-pro"))["request_id"]
    mock.advance(600)
    _, result = await mock.call("segmind", "result", "GET", f"/v2/requests/{rid}", expect=200)
    assert (result["prompt"], result["seed"]) == ("echo me", 12345)
    job = mock.state.store.get(rid, mock.state.clock.now())
    assert job is not None and (job.prompt, job.seed, job.inputs) == ("echo me", 12345, 1)


# -- 2. the store is bounded in bytes --------------------------------------------------------


async def test_store_is_bounded_in_bytes(mock_factory) -> None:
    bound = 200_000
    mock = await mock_factory(max_job_bytes=bound)
    body = padded_body(prompt="p" * 20_000, items=2_000)  # a job of ~21 KB, a body of ~40 KB
    ids = [(await submit(mock, body))["request_id"] for _ in range(30)]
    store = mock.state.store
    assert store.bytes <= bound
    assert 5 <= len(store) < 30 and store.evicted == 30 - len(store)
    assert store.bytes == sum(job.size for job in store.jobs())
    await mock.call("segmind", "status", "GET", f"/v2/requests/{ids[0]}/status", expect=404)
    await mock.call("segmind", "status", "GET", f"/v2/requests/{ids[-1]}/status", expect=200)


def test_job_footprint_counts_what_a_prompt_costs() -> None:
    ascii_job = _job(0, prompt="a" * 1000)
    wide_job = _job(1, prompt="\U0001f34c" * 1000)  # kept as UTF-8: 4 bytes a character
    assert ascii_job.footprint() == JOB_BYTES + 1000
    assert wide_job.footprint() == JOB_BYTES + 4000
    assert wide_job.prompt == "\U0001f34c" * 1000


def test_max_job_bytes_is_a_setting() -> None:
    assert MockConfig().max_job_bytes == 256 * 1024 * 1024
    assert MockConfig(max_job_bytes=1).public()["max_job_bytes"] == 1
    with pytest.raises(ConfigError, match="max_job_bytes"):
        MockConfig(max_job_bytes=0)


# -- 1.3 quadratic control-plane work ----------------------------------------------------------


def _job(seq: int, prompt: str = "p", ready: float = 1.0, duration: float = 10.0) -> Job:
    return Job(
        f"{seq:08x}-0000-4000-8000-000000000000",
        "seaart",
        "nano_banana_pro",
        "owner",
        prompt.encode(),
        OUTPUT,
        seq,
        0.04,
        0.0,
        ready,
        duration,
        1e9,
    )


async def test_jobs_listing_is_linear_and_bounded(mock_factory) -> None:
    """20,000 queued jobs: the listing took 21.6 s (a walk per job for its position)."""
    mock = await mock_factory(workers=2)
    store = mock.state.store
    for i in range(20_000):
        store.add(_job(i), 0.0)
    started = time.perf_counter()
    resp = await asyncio.wait_for(mock.client.get("/_mock/jobs?limit=10000"), TIMEOUT)
    listing = await resp.json()
    elapsed = time.perf_counter() - started
    assert resp.status == 200
    assert listing["total"] == 20_000 and len(listing["jobs"]) == listing["limit"] == 10_000
    positions = [job["queue_position"] for job in listing["jobs"]]
    assert positions == list(range(10_000))  # none started yet (the dispatch delay)
    assert elapsed < 8.0, f"listing 10,000 of 20,000 jobs took {elapsed:.1f} s"
    resp = await mock.client.get("/_mock/jobs")
    assert len((await resp.json())["jobs"]) == 1000  # the default page
    for bad in ("0", "10001", "x", "-1", "1e3", "١٢"):
        resp = await mock.client.get(f"/_mock/jobs?limit={bad}")
        assert resp.status == 400, bad
        assert "limit" in (await resp.json())["error"]


def test_polling_every_job_of_a_long_queue_is_linear() -> None:
    """Each status poll walked the queue up to its job: polling all n jobs was n² (11 s for
    20,000); the second poll at the same time and plan works out every position at once."""
    store = JobStore(workers=2, max_jobs=100_000)
    jobs = [store.add(_job(i), 0.0) for i in range(20_000)]
    started = time.perf_counter()
    positions = [store.queue_position(job, 0.0) for job in jobs]
    assert time.perf_counter() - started < 3.0
    assert positions == list(range(20_000))
    store.cancel(jobs[0], 0.5)  # a new plan: positions worked out afresh
    assert [store.queue_position(job, 0.5) for job in jobs[:4]] == [0, 0, 1, 2]
    assert store.queue_position(jobs[-1], 0.5) == 19_998


def _reference_replan(pool: WorkerPool, now: float) -> None:
    """The plan as the old code made it: every waiting job re-planned from scratch."""
    live = [j for j in pool._inflight if j.busy_until > now]
    running = [j for j in live if j.start_at <= now]
    waiting = [j for j in live if j.start_at > now]
    free = [j.busy_until for j in running] + [now] * (pool.workers - len(running))
    heapq.heapify(free)
    for job in waiting:
        WorkerPool._assign(job, free)
    pool._free = free
    pool._inflight = deque(live)


@pytest.mark.parametrize("seed", range(12))
def test_cancel_replans_the_same_as_a_full_replan(seed: int) -> None:
    """The cheap re-plan leaves every job where re-planning everything would."""
    rng = random.Random(seed)
    workers = rng.randint(1, 4)
    store = JobStore(workers=workers, max_jobs=10_000)
    now = 0.0
    for step in range(300):
        now += rng.choice([0.0, 0.0, 0.5, 2.0, 7.0])
        action = rng.random()
        live = [j for j in store.jobs() if j.busy_until > now and j.cancelled_at is None]
        if action < 0.55 or not live:
            job = _job(step, ready=now + rng.choice([0.0, 1.0, 3.0]), duration=rng.uniform(1, 20))
            if rng.random() < 0.1:
                job.failure = Failure("x", surface=rng.choice(list(Surface)))
            job.submitted_at = now
            store.add(job, now)
        else:
            target = rng.choice(live)
            kind = rng.random()
            if kind < 0.6:
                store.cancel(target, now)
            elif kind < 0.8:
                store.fail(target, Failure("y", surface=rng.choice(list(Surface))), now)
            else:
                store.finish(target, now)
        got = [(j.start_at, j.end_at, store.queue_position(j, now)) for j in store.jobs()]
        listed = store.queue_positions("seaart", now)
        assert [listed.get(j.seq, 0) for j in store.jobs()] == [g[2] for g in got]
        pool = store.pool("seaart")
        saved = (list(pool._free), deque(pool._inflight))
        _reference_replan(pool, now)
        pool._version += 1  # positions worked out afresh on the reference's plan
        want = [(j.start_at, j.end_at, store.queue_position(j, now)) for j in store.jobs()]
        assert got == want, f"seed {seed}, step {step}"
        pool._free, pool._inflight = saved


def test_cancel_replans_only_the_jobs_it_moves() -> None:
    """A SeaArt cancel re-planned all 20,000 waiting jobs (33 ms); now only those it moves."""
    pool = WorkerPool(2)
    jobs = [_job(i) for i in range(20_000)]
    for seq, job in enumerate(jobs, 1):
        job.seq = seq
        pool.plan(job, 0.0)
    last = jobs[-1]
    before, waited = last.busy_until, True
    last.cancelled_at = 0.0
    assert pool.replan(0.0, last, before, waited) == 0  # no one waits behind the last
    # workers idle between jobs: a cancel moves nothing after the next job's turn
    idle = WorkerPool(1)
    spaced = [_job(i, ready=100.0 * i, duration=10.0) for i in range(1, 20_001)]
    for seq, job in enumerate(spaced, 1):
        job.seq = seq
        idle.plan(job, 0.0)
    first = spaced[0]
    before = first.busy_until
    first.cancelled_at = 0.0
    assert idle.replan(0.0, first, before, True) <= 1
    # the first waiting job of a full queue: every job behind it moves one place up
    head = jobs[2]
    old_starts = [j.start_at for j in jobs[2:-2]]
    before = head.busy_until
    head.cancelled_at = 0.0
    assert pool.replan(0.0, head, before, True) == len(jobs) - 4
    assert [j.start_at for j in jobs[3:-1]] == old_starts


async def test_seaart_cancel_in_a_queue_of_20000_answers(mock_factory) -> None:
    mock = await mock_factory(workers=2)
    store = mock.state.store
    for i in range(20_000):
        store.add(_job(i), 0.0)
    body = {"prompt": "cancel me"}
    path = "/model/v1/queue/nano_banana_pro"
    _, sub = await mock.call("seaart", "submit", "POST", path, json=body, expect=200)
    job = store.get(sub["request_id"], 0.0)
    assert job is not None and job.owner != "owner"
    started = time.perf_counter()
    resp = await asyncio.wait_for(
        mock.client.put(f"{path}/requests/{sub['request_id']}/cancel", headers=KEYS["seaart"]),
        TIMEOUT,
    )
    assert resp.status == 202
    assert time.perf_counter() - started < 5.0


def test_rate_limits_add_and_lookup_in_constant_time() -> None:
    """20,000 per-key limits took 109 s to add (a list rebuilt each time), and every request
    walked them; a dict by key makes both constant."""
    limiter = RateLimiter()
    started = time.perf_counter()
    for i in range(MAX_KEYS):
        limiter.set(60, key=f"key-{i}")
    limiter.set(600, key=None, scope="all")
    assert time.perf_counter() - started < 5.0  # the old code: about 27 s

    hot = fingerprint("key-42")
    for _ in range(60):
        assert limiter.take(hot, True, 0.0) is None
    assert limiter.take(hot, True, 0.0) is not None  # its own bucket (60 rpm) is empty
    assert limiter.take(fingerprint("key-43"), True, 0.0) is None  # another key's is full
    assert len(limiter.limits) == MAX_KEYS + 1


async def test_per_key_rate_limits_are_bounded(mock: Mock) -> None:
    limiter = mock.state.limiter
    for i in range(MAX_KEYS):
        limiter.set(60, key=f"key-{i}")

    async def post(body: dict[str, Any]) -> tuple[int, Any]:
        resp = await asyncio.wait_for(mock.client.post("/_mock/rate-limits", json=body), TIMEOUT)
        return resp.status, await resp.json()

    status, answer = await post({"rpm": 5, "key": "one-too-many"})
    assert status == 400 and str(MAX_KEYS) in answer["error"]
    status, _ = await post({"rpm": 5, "key": "key-7"})  # replacing one is fine
    assert status == 200
    status, _ = await post({"rpm": 5})  # so is the limit of every key
    assert status == 200
    assert len(limiter.limits) == MAX_KEYS + 1


# -- 2. every collection has a bound -----------------------------------------------------------


def _finding(i: int, pointer: str | None = None) -> Finding:
    return Finding(
        "segmind", "status", "GET /x", pointer or f"/field{i}", "absent", f"seen {i}", BREAKING
    )


def test_drift_report_is_bounded() -> None:
    """The proxy's report lives as long as the server: distinct findings are capped, the
    same one again is counted, and what was left out is counted too."""
    report = Report(target="proxy", max_findings=50)
    for i in range(5_000):
        report.add([_finding(i)])
        report.add([_finding(i, pointer="/same")])
    assert len(report.findings) == 50
    assert len(report._seen) <= 50
    out = report.to_json()
    assert out["dropped"] == 5_000 - 49
    assert {f["pointer"]: f["times"] for f in out["findings"]}["/same"] == 5_000


async def test_proxy_holds_bounded_bytes_of_answers_under_concurrency(
    aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each upstream answer was bounded, but not how many were held at once."""
    from aiohttp import web

    from nanobanana_mock.app import create_app
    from nanobanana_mock.pipeline.serve import SOURCES
    from nanobanana_mock.sources import proxy as proxy_module

    release = asyncio.Event()
    first_chunk = b'{"status":"QUEUED","pad":"' + b"x" * (64 * 1024)

    async def slow_status(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(first_chunk)
        await release.wait()
        await resp.write(b"y" * 16 * 1024 + b'"}')
        await resp.write_eof()
        return resp

    upstream = web.Application()
    upstream.router.add_get("/v2/requests/{request_id}/status", slow_status)
    up = await aiohttp_server(upstream)
    monkeypatch.setattr(proxy_module, "MAX_HELD_BYTES", 150_000)
    app = create_app(
        MockConfig(
            time_scale=0.0,
            proxy={"segmind": str(up.make_url("")).rstrip("/")},
            proxy_max_response_bytes=100_000,
        )
    )
    server = await aiohttp_server(app)
    (proxy,) = app[SOURCES]
    assert proxy.max_held == 150_000

    async def status(session: Any, rid: str) -> tuple[int, bytes]:
        url = server.make_url(f"/v2/requests/{rid}/status")
        async with session.get(url, headers=KEYS["segmind"]) as resp:
            return resp.status, await resp.read()

    import aiohttp

    async with aiohttp.ClientSession() as session:
        held = [asyncio.create_task(status(session, f"r{i}")) for i in range(2)]
        for _ in range(500):  # until both hold their first chunk (on the loop, no sleep)
            if proxy.held >= 2 * len(first_chunk):
                break
            await asyncio.sleep(0)
            await asyncio.sleep(0.001)
        assert proxy.held >= 2 * len(first_chunk)
        code, body = await asyncio.wait_for(status(session, "r3"), TIMEOUT)
        assert code == 502 and b"upstream answers" in body
        assert json.loads(body).keys() == {"error"}  # Segmind's envelope
        release.set()
        done = await asyncio.wait_for(asyncio.gather(*held), TIMEOUT)
    assert [code for code, _ in done] == [200, 200]
    assert proxy.held == 0


async def test_fault_rules_are_capped(mock: Mock) -> None:
    from nanobanana_mock.faults.rules import MAX_RULES

    rule = {"match": {"provider": "segmind"}, "effect": {"latency": {"fixed": 0.1}}}
    for _ in range(MAX_RULES):
        mock.state.faults.add(rule, 0.0)
    resp = await asyncio.wait_for(mock.client.post("/_mock/faults", json=rule), TIMEOUT)
    assert resp.status == 400
    assert len(mock.state.faults.rules) == MAX_RULES


def test_rate_limit_buckets_are_bounded() -> None:
    limiter = RateLimiter()
    limiter.set(60)  # every key its own bucket
    for i in range(MAX_KEYS + 500):
        limiter.take(f"key-{i}", True, 0.0)
    assert len(limiter._buckets) == MAX_KEYS


def test_proxy_remembers_bounded_urls_and_lifecycles() -> None:
    from nanobanana_mock.sources.proxy import MAX_FOLLOWED, MAX_STATUSES, MAX_TRACKED, Proxy

    proxy = Proxy(MockConfig(proxy={"segmind": "https://api.example.com"}), Report(), None)
    up, own = "https://api.example.com", "http://127.0.0.1:1"
    for i in range(MAX_FOLLOWED + 100):
        proxy._rebase("segmind", up, own, f"{up}/v2/requests/{i}/status")
    assert len(proxy._followed) == MAX_FOLLOWED
    assert proxy.owner(f"/v2/requests/{MAX_FOLLOWED + 99}/status") == "segmind"
    assert proxy.owner("/v2/requests/0/status") is None  # the oldest went first
    from nanobanana_mock.providers.segmind import Segmind
    from nanobanana_mock.state import MockState

    provider = Segmind(*serving(MockState.create(MockConfig())))
    for i in range(MAX_TRACKED + 100):
        proxy._lifecycle(provider, "status", 200, {"status": "QUEUED"}, f"id-{i}", "GET x")
    assert len(proxy._lifecycles) == MAX_TRACKED
    for i in range(MAX_STATUSES + 10):
        status = "QUEUED" if i % 2 else "PROCESSING"
        proxy._lifecycle(provider, "status", 200, {"status": status}, "busy", "GET x")
    assert len(proxy._lifecycles[("segmind", "busy")]) == MAX_STATUSES


async def test_replay_sequences_are_bounded_by_the_recording(tmp_path: Any) -> None:
    """Unknown requests add nothing; a known one's cursor stays on its last answer."""
    from aiohttp.test_utils import make_mocked_request

    from nanobanana_mock.faults.rules import RequestFacts
    from nanobanana_mock.providers.segmind import Segmind
    from nanobanana_mock.sources.replay import Replay
    from nanobanana_mock.state import MockState

    record = {
        "provider": "segmind",
        "method": "GET",
        "path": "/v2/requests/r1/status",
        "status": 200,
        "response_body": {"status": "QUEUED", "request_id": "r1"},
        "encoding": "json",
    }
    (tmp_path / "segmind.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    replay = Replay(tmp_path, ["segmind"])
    provider = Segmind(*serving(MockState.create(MockConfig())))
    facts = RequestFacts("segmind", "status", "GET", "k", None, None, {}, frozenset())
    for i in range(200):
        request = make_mocked_request("GET", f"/v2/requests/other-{i}/status")
        with pytest.raises(ApiError):
            await replay.answer(request, provider, facts)
    for _ in range(5):
        request = make_mocked_request("GET", "/v2/requests/r1/status")
        assert (await replay.answer(request, provider, facts)).status == 200
    assert len(replay._cursor) == 1


def test_spending_and_credit_accounts_are_bounded() -> None:
    from nanobanana_mock.engine.quotas import Ledger

    store = JobStore(workers=1, max_jobs=10, max_owners=100)
    for i in range(1_000):
        store.charge(f"owner-{i}", 0.04)
    assert len(store._owners) == 100
    ledger = Ledger()
    for i in range(MAX_KEYS + 100):
        ledger.set(f"key-{i}", 1.0)
    assert len(ledger._accounts) == MAX_KEYS


async def test_a_refused_body_is_freed_at_once_not_kept_in_a_reference_cycle(mock: Mock) -> None:
    """A refused body's error was kept on the request's ``Call`` with its traceback, whose
    frames held the body: a reference cycle only a full collection frees, and the server's
    collector settings make those rare, so a soak of oversized and deeply nested bodies grew
    by hundreds of megabytes. With the collector off, 20 refused bodies of 300 KiB must leave
    next to nothing behind."""
    pad = "x" * (300 * 1024)
    oversized = json.dumps({"prompt": pad}).encode()
    nested = "[" * 70 + "0" + "]" * 70  # past the depth cap
    too_deep = f'{{"prompt": "{pad[: 200 * 1024]}", "extra": {nested}}}'.encode()

    async def chunked(data: bytes) -> Any:
        yield data  # no Content-Length: the body is read up to the limit, then refused

    headers = {**KEYS["segmind"], "Content-Type": "application/json"}
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            resp = await mock.client.post(
                "/v2/nano-banana", data=chunked(oversized), headers=headers
            )
            assert resp.status == 413, await resp.text()
            resp = await mock.client.post("/v2/nano-banana", data=too_deep, headers=headers)
            assert resp.status == 413, await resp.text()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held < 1024 * 1024, f"{held:,} bytes held after 20 refused bodies"
