"""The control-plane client against a real mock (the pytest plugin's session server)."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from nanobanana_mock.config import MockConfig
from nanobanana_mock.control import client as control_client
from nanobanana_mock.control import spec
from nanobanana_mock.control.client import ControlError, JobInfo, JournalEntry, MockControl
from nanobanana_mock.control.pytest_plugin import MockServer

KEY = "SG_0123456789abcdef"
OTHER = "SG_fedcba9876543210"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(url: str, body: Any = None, key: str = KEY, method: str | None = None) -> tuple[int, Any]:
    """One provider request; (status, JSON body). Raises on a broken connection."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("x-api-key", key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def submit(mock, prompt: str = "a banana", key: str = KEY, slug: str = "nano-banana") -> str:
    status, body = call(f"{mock.base_url}/v2/{slug}", {"prompt": prompt}, key)
    assert status == 200, body
    return body["request_id"]


def segmind_status(mock, request_id: str, key: str = KEY) -> tuple[int, Any]:
    return call(f"{mock.base_url}/v2/requests/{request_id}/status", key=key)


# -- every body sent and every answer read is checked against schemas/mock/control/ -------------


class Recorder:
    """An opener that records each exchange of a MockControl: method, path, the body sent,
    the status and the answer's bytes."""

    def __init__(self, opener: Any) -> None:
        self.opener = opener
        self.exchanges: list[tuple[str, str, Any, int, bytes]] = []

    def open(self, request: urllib.request.Request, timeout: float | None = None) -> Any:
        sent = json.loads(request.data) if request.data else None  # type: ignore[arg-type]
        path = urllib.parse.urlsplit(request.full_url).path
        try:
            with self.opener.open(request, timeout=timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            self.exchanges.append((request.get_method(), path, sent, exc.code, raw))
            fp = io.BytesIO(raw)
            raise urllib.error.HTTPError(exc.url, exc.code, exc.msg, exc.hdrs, fp) from exc
        self.exchanges.append((request.get_method(), path, sent, status, raw))
        return io.BytesIO(raw)


def contract_problems(exchanges: list[tuple[str, str, Any, int, bytes]]) -> list[str]:
    """Every way the recorded bodies and answers break the control plane's contract: a body
    its schema refuses that the mock took, an answer that breaks its schema."""
    found = []
    for method, path, sent, status, raw in exchanges:
        route = spec.route_of(method, path)
        if route is None:
            found.append(f"{method} {path}: no such route in schemas/mock/control/api.json")
            continue
        request = spec.request_schema(route)
        if sent is not None and status < 400:  # a body the contract refuses must be refused
            problems = spec.check(request, sent) if request else ["the route takes no body"]
            found += [f"{method} {path} sent, and the mock took: {p}" for p in problems]
        answer = spec.answer_schema(route, status)
        if answer is None and raw.strip():
            found.append(f"{method} {path} {status}: an answer the contract does not list")
        elif answer is not None:
            found += [f"{method} {path} {status}: {p}" for p in spec.check(answer, json.loads(raw))]
    return found


@pytest.fixture(autouse=True)
def checked_control(request: pytest.FixtureRequest) -> Iterator[Recorder | None]:
    """In every test of this module that uses the plugin's mock: its MockControl's bodies
    and answers, checked against the contract when the test ends."""
    if "nanobanana_mock" not in request.fixturenames:
        yield None
        return
    control = request.getfixturevalue("nanobanana_mock").control
    recorder = Recorder(control._opener)
    control._opener = recorder
    try:
        yield recorder
    finally:
        control._opener = recorder.opener
    assert contract_problems(recorder.exchanges) == []


def test_every_body_and_answer_of_every_call_fits_the_contract(
    nanobanana_mock, checked_control: Recorder
) -> None:
    control = nanobanana_mock.control
    control.reset(workers=1, queue_seconds=0, scenario={"credits": {"default": 10}})
    control._urls = None  # the plugin's tenant knows its URLs already: ask, as a client does
    assert control.urls and control.settings() and control.health()["ok"]
    job_id = submit(nanobanana_mock)
    control.clock.speed()
    control.clock.advance(1)
    control.clock.to(2)
    control.clock.set_speed(0)
    control.jobs.list(provider="segmind", limit=5)
    control.jobs.get(job_id)
    control.jobs.force(job_id, "FAILED", error="boom", error_type="CONTENT_BLOCKED")
    control.jobs.force(submit(nanobanana_mock), "EXPIRED")
    rule = control.faults.http_error(503, provider="pixazo", retry_after=2, first=1, id="a")
    control.faults.job_failure(surface="start", operation="submit", probability=0.5)
    control.faults.latency(uniform=(1, 2), target="queue", window=(0, 10))
    control.faults.transport("reset", when="before", provider="seaart", times=1)
    control.faults.add_many([{"effect": {"latency": {"fixed": 1}}, "description": "d"}])
    assert control.faults.list() and rule == "a"
    control.faults.remove(rule)
    control.faults.clear()
    control.credits.set(KEY, 5)
    control.credits.set_default(7)
    assert control.credits.get(KEY) == 5 and control.credits.info()["enabled"]
    control.credits.disable()
    control.rate_limits.set(30, key=KEY, scope="all")
    assert control.rate_limits.list()
    control.rate_limits.clear()
    assert control.journal.entries(provider="segmind", limit=2)
    assert control.journal.count() and control.journal.counts()
    assert control.scorecard(poll_floor=2).data["entries"]
    assert control.scorecard(key=KEY, provider="segmind").data["rules"]
    control.journal.clear()
    with pytest.raises(ControlError):
        control.jobs.get("nope")  # an error answer is in the contract too
    ci = control.tenant("ci-1")  # a tenant's control plane: the same contract
    ci.clock.advance(3)
    assert [t["name"] for t in ci.tenants()] == ["ci-1"] and ci.health()["clock"] == 3
    assert [t["name"] for t in control.tenants()] == [control.tenant_name]  # the test's own
    origin = nanobanana_mock.server.control  # the default tenant's control plane sees all
    assert {t["name"] for t in origin.tenants()} >= {"", "ci-1", control.tenant_name}
    used = {spec.route_of(method, path) for method, path, *_ in checked_control.exchanges}
    not_json = {"get_drift", "openapi", "get_metrics", "ui_bare", "ui_page", "ui_file"}
    assert used >= set(spec.routes()) - not_json  # text answers, the dashboard's files


# -- the client itself -------------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert control_client.__all__ == [
        "ClockControl",
        "ControlError",
        "CreditControl",
        "FaultControl",
        "JobControl",
        "JobFailure",
        "JobInfo",
        "JobOutput",
        "JournalControl",
        "JournalEntry",
        "MockControl",
        "RateLimitControl",
    ]


def test_urls_name_each_provider_base(nanobanana_mock) -> None:
    control = nanobanana_mock.control
    base = nanobanana_mock.base_url  # the test's tenant: the origin and /t/<tenant>
    assert base == f"{control.base_url}/t/{control.tenant_name}"
    assert control.urls == {
        "segmind": f"{base}/v1",
        "seaart": f"{base}/model",
        "pixazo": base,
        "gemini": base,
        "fal": f"{base}/fal/queue",
    }
    assert MockControl(control.base_url + "/").base_url == control.base_url


def test_no_answer_is_a_control_error_with_status_0() -> None:
    with pytest.raises(ControlError) as caught:
        MockControl("http://127.0.0.1:9", timeout=2).settings()
    assert caught.value.status == 0 and caught.value.body is None


def test_a_mock_server_by_hand_needs_no_settings() -> None:
    """The README's "MockServer starts the same server by hand": MockServer() was a
    TypeError (config was required); with no settings it takes a free port, as the
    fixture's mock does, never the 8080 a `make serve` may hold."""
    with MockServer() as server:
        assert server.control is not None and server.config.port == 0
        assert server.base_url.startswith("http://127.0.0.1:")
        assert not server.base_url.endswith(":0")
        assert server.control.settings()["seed"] == 0


def test_token_is_required_when_the_server_has_one() -> None:
    config = MockConfig(port=0, time_scale=0.0, control_token="s3cret")
    with MockServer(config) as server:
        for token in (None, "wrong"):
            with pytest.raises(ControlError) as caught:
                MockControl(server.base_url, token=token).clock.now()
            assert caught.value.status == 401
        assert server.control is not None and server.control.token == "s3cret"
        assert server.control.clock.now() == 0.0
        assert server.control.reset()["workers"] == config.workers


# -- reset and settings ------------------------------------------------------------------------


def test_reset_applies_settings_and_returns_them(nanobanana_mock) -> None:
    control = nanobanana_mock.control
    effective = control.reset(workers=1, queue_seconds=0, processing_seconds={"segmind/*": 5})
    assert effective["workers"] == 1 and effective["processing_seconds"] == {"segmind/*": 5}
    assert control.settings() == effective
    first, second = submit(nanobanana_mock), submit(nanobanana_mock)
    one, two = control.jobs.get(first), control.jobs.get(second)
    assert (one.start_at, one.end_at) == (0.0, 5.0)
    assert (one.state, two.state, two.start_at) == ("RUNNING", "QUEUED", 5.0)


def test_reset_forgets_everything_and_starts_from_the_startup_settings(nanobanana_mock) -> None:
    control = nanobanana_mock.control
    control.reset(workers=1)
    submit(nanobanana_mock)
    control.faults.http_error(500, provider="pixazo")
    control.credits.set_default(100)
    control.rate_limits.set(60)
    control.clock.advance(30)
    settings = control.reset()
    assert settings["workers"] == nanobanana_mock.server.config.workers
    assert control.jobs.list() == [] and control.journal.count() == 0
    assert control.faults.list() == [] and control.rate_limits.list() == []
    assert control.credits.get(KEY) is None and control.clock.now() == 0.0


def test_reset_with_a_scenario(nanobanana_mock) -> None:
    control = nanobanana_mock.control
    scenario = {
        "faults": [{"id": "boom", "effect": {"http_error": {"status": 503}}}],
        "credits": {"default": 5, "keys": {KEY: 2}},
        "rate_limits": [{"rpm": 10}],
    }
    control.reset(scenario=scenario, api_keys={KEY, OTHER})
    assert [rule["id"] for rule in control.faults.list()] == ["boom"]
    assert (control.credits.get(KEY), control.credits.get(OTHER)) == (2.0, 5.0)
    assert control.rate_limits.list()[0]["rpm"] == 10
    assert control.settings()["api_keys"] == 2  # counted, never shown
    control.faults.clear()
    status, _ = call(f"{nanobanana_mock.base_url}/v2/nano-banana", {"prompt": "x"}, "SG_nope")
    assert status == 401


def test_an_invalid_setting_is_a_400(nanobanana_mock) -> None:
    with pytest.raises(ControlError) as caught:
        nanobanana_mock.control.reset(workers=0)
    assert caught.value.status == 400 and "workers" in str(caught.value)


# -- clock -------------------------------------------------------------------------------------


def test_clock_moves_only_when_told(nanobanana_mock) -> None:
    clock = nanobanana_mock.clock
    assert (clock.now(), clock.speed()) == (0.0, 0.0)
    assert clock.advance(10) == 10.0
    assert clock.to(25.5) == 25.5
    assert clock.now() == 25.5
    clock.set_speed(1000)
    assert clock.speed() == 1000.0 and clock.now() > 25.5
    clock.set_speed(0)
    frozen = clock.now()
    assert frozen > 25.5  # the time it ran at speed 1000 is kept: no jump back
    time.sleep(0.01)  # 10 virtual seconds at the old speed; none at speed 0
    assert clock.speed() == 0.0 and clock.now() == frozen


def test_clock_advance_completes_a_job(nanobanana_mock) -> None:
    request_id = submit(nanobanana_mock)
    assert segmind_status(nanobanana_mock, request_id)[1]["status"] == "QUEUED"
    nanobanana_mock.clock.advance(60)
    assert segmind_status(nanobanana_mock, request_id)[1]["status"] == "COMPLETED"
    assert nanobanana_mock.jobs.get(request_id).state == "SUCCEEDED"


# -- jobs --------------------------------------------------------------------------------------


def test_jobs_list_get_and_their_fields(nanobanana_mock) -> None:
    jobs = nanobanana_mock.jobs
    request_id = submit(nanobanana_mock, slug="nano-banana-pro")
    job = jobs.get(request_id)
    assert isinstance(job, JobInfo)
    assert (job.id, job.provider, job.model) == (request_id, "segmind", "nano-banana-pro")
    assert (job.state, job.wire_status, job.failure) == ("QUEUED", "QUEUED", None)
    assert job.submitted_at == 0.0 and job.expires_at == 3600.0
    assert job.output is not None and job.output.count == 1 and job.output.width > 0
    assert jobs.list() == [job]
    assert jobs.list(provider="segmind") == [job] and jobs.list(provider="seaart") == []


def test_force_a_job_to_fail_succeed_or_expire(nanobanana_mock) -> None:
    jobs = nanobanana_mock.jobs
    failing, succeeding, expiring = (submit(nanobanana_mock) for _ in range(3))
    failed = jobs.force(failing, "FAILED", error="GPU on fire", error_type="INFERENCE_FAILURE")
    assert failed.state == "FAILED" and failed.failure is not None
    assert failed.failure.error == "GPU on fire"
    status, body = segmind_status(nanobanana_mock, failing)
    assert (status, body["status"]) == (422, "FAILED")
    assert jobs.force(succeeding, "SUCCEEDED").state == "SUCCEEDED"
    jobs.force(expiring, "EXPIRED")
    with pytest.raises(ControlError) as caught:
        jobs.get(expiring)
    assert caught.value.status == 404


def test_an_unknown_job_is_a_404_with_the_server_message(nanobanana_mock) -> None:
    with pytest.raises(ControlError) as caught:
        nanobanana_mock.jobs.get("no-such-job")
    error = caught.value
    assert error.status == 404 and isinstance(error.body, dict)
    assert error.body["error"] in str(error) and "404" in str(error)


def test_forcing_an_unknown_state_is_a_400(nanobanana_mock) -> None:
    request_id = submit(nanobanana_mock)
    with pytest.raises(ControlError) as caught:
        nanobanana_mock.jobs.force(request_id, "DANCING")
    assert caught.value.status == 400


# -- faults ------------------------------------------------------------------------------------


def test_add_list_remove_and_clear_rules(nanobanana_mock) -> None:
    faults = nanobanana_mock.faults
    first = faults.add({"effect": {"http_error": {"status": 500}}, "match": {"provider": "pixazo"}})
    named = faults.add(effect={"http_error": {"status": 503}}, id="outage", description="down")
    assert named == "outage" and first != named
    assert faults.add_many([{"effect": {"http_error": {"status": 502}}}] * 2)[0] not in (
        first,
        named,
    )
    listed = faults.list()
    assert [rule["id"] for rule in listed][:2] == [first, named] and len(listed) == 4
    assert listed[1]["description"] == "down" and listed[0]["matched"] == 0
    faults.remove(first)
    assert first not in [rule["id"] for rule in faults.list()]
    with pytest.raises(ControlError) as caught:
        faults.remove(first)
    assert caught.value.status == 404
    faults.clear()
    assert faults.list() == []


def test_an_invalid_rule_is_a_400_naming_the_problems(nanobanana_mock) -> None:
    with pytest.raises(ControlError) as caught:
        nanobanana_mock.faults.add({"effect": {"http_error": {"status": 299}}})
    error = caught.value
    assert error.status == 400 and error.body["problems"]
    assert "problems" in str(error) and "299" in str(error)


def test_http_error_fires_first_then_lets_requests_through(nanobanana_mock) -> None:
    faults = nanobanana_mock.faults
    rule = faults.http_error(429, provider="segmind", operation="submit", first=1)
    status, body = call(f"{nanobanana_mock.base_url}/v2/nano-banana", {"prompt": "x"})
    assert status == 429 and "error" in body
    submit(nanobanana_mock)
    listed = faults.list()[0]
    assert listed["id"] == rule and (listed["matched"], listed["fired"]) == (2, 1)
    assert listed["match"] == {"provider": "segmind", "operation": "submit"}
    assert listed["scope"] == {"first": 1}
    assert listed["effect"] == {"http_error": {"status": 429}}


def test_job_failure_convenience(nanobanana_mock) -> None:
    nanobanana_mock.faults.job_failure("out of bananas", provider="segmind", surface="start")
    request_id = submit(nanobanana_mock)
    nanobanana_mock.clock.advance(60)
    job = nanobanana_mock.jobs.get(request_id)
    assert job.state == "FAILED" and job.failure is not None
    assert (job.failure.error, job.failure.surface) == ("out of bananas", "start")


def test_latency_convenience_lengthens_processing(nanobanana_mock) -> None:
    nanobanana_mock.reset(queue_seconds=0, processing_seconds={"*": 10})
    nanobanana_mock.faults.latency(fixed=5, target="processing", provider="segmind")
    job = nanobanana_mock.jobs.get(submit(nanobanana_mock))
    assert job.end_at is not None and job.start_at is not None
    assert job.end_at - job.start_at == 15.0


def test_latency_distributions_are_built_from_tuples(nanobanana_mock) -> None:
    faults = nanobanana_mock.faults
    faults.latency(uniform=(1, 2), model="nano-banana")
    faults.latency(lognormal=(3, 0.5), provider="seaart", window=(10, 20), ttl=60)
    uniform, lognormal = faults.list()
    assert uniform["effect"] == {"latency": {"target": "response", "uniform": [1, 2]}}
    assert lognormal["effect"]["latency"]["lognormal"] == {"median": 3, "sigma": 0.5}
    assert lognormal["scope"] == {"window": {"from": 10, "until": 20}, "ttl": 60}


def test_transport_fault_breaks_the_connection_and_is_journaled(nanobanana_mock) -> None:
    rule = nanobanana_mock.faults.transport("empty", when="before", provider="segmind")
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        call(f"{nanobanana_mock.base_url}/v2/nano-banana", {"prompt": "x"})
    (entry,) = nanobanana_mock.journal.entries(fault=rule)
    assert (entry.effect, entry.status) == ("transport", None)
    assert nanobanana_mock.jobs.list() == []


def test_conveniences_reject_unknown_keywords_before_asking_the_server(nanobanana_mock) -> None:
    with pytest.raises(TypeError, match="providr"):
        nanobanana_mock.faults.http_error(500, providr="segmind")  # type: ignore[call-arg]
    assert nanobanana_mock.faults.list() == []


# -- journal -----------------------------------------------------------------------------------


def test_journal_entries_counts_and_filters(nanobanana_mock) -> None:
    journal = nanobanana_mock.journal
    first = submit(nanobanana_mock)
    nanobanana_mock.clock.advance(5)
    submit(nanobanana_mock, key=OTHER)
    segmind_status(nanobanana_mock, first)
    call(f"{nanobanana_mock.base_url}/v2/nano-banana", {"prompt": 3})
    entries = journal.entries()
    assert all(isinstance(e, JournalEntry) for e in entries) and len(entries) == 4
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    head = entries[0]
    assert (head.provider, head.operation, head.method) == ("segmind", "submit", "POST")
    assert (head.path, head.request_id, head.model) == ("/v2/nano-banana", first, "nano-banana")
    assert (head.status, head.validation, head.fault, head.t) == (200, "ok", None, 0.0)
    assert head.key is not None and KEY not in head.key
    bad = entries[-1]
    assert (bad.status, bad.validation) == (400, "invalid") and bad.problems
    assert journal.count(operation="submit") == 3
    assert journal.count(key=OTHER) == 1 and journal.count(status=400) == 1
    assert journal.count(request_id=first) == 2 and journal.count(method="GET") == 1
    assert [e.seq for e in journal.entries(since=head.seq)] == [e.seq for e in entries[1:]]
    assert journal.count(model="nano-banana") == 4
    assert journal.entries(limit=2) == entries[-2:] and journal.count(limit=2) == 4
    assert journal.counts() == {"segmind.submit": 3, "segmind.status": 1}
    assert journal.counts(provider="seaart") == {}
    journal.clear()
    assert journal.count() == 0


def test_journal_rejects_unknown_filters(nanobanana_mock) -> None:
    with pytest.raises(TypeError, match="colour"):
        nanobanana_mock.journal.count(colour="red")  # type: ignore[call-arg]


def test_journal_records_faults(nanobanana_mock) -> None:
    rule = nanobanana_mock.faults.http_error(503, provider="segmind")
    call(f"{nanobanana_mock.base_url}/v2/nano-banana", {"prompt": "x"})
    (entry,) = nanobanana_mock.journal.entries(fault=rule)
    assert (entry.fault, entry.effect, entry.status) == (rule, "http_error", 503)


# -- credits and rate limits -------------------------------------------------------------------


def test_credits_set_get_charge_and_disable(nanobanana_mock) -> None:
    credits = nanobanana_mock.credits
    assert credits.get(KEY) is None and credits.info()["enabled"] is False
    credits.set_default(10)
    credits.set(KEY, 3)
    assert (credits.get(KEY), credits.get(OTHER)) == (3.0, 10.0)
    job = nanobanana_mock.jobs.get(submit(nanobanana_mock))
    assert job.cost is not None and credits.get(KEY) == pytest.approx(3 - job.cost)
    ledger = credits.info()
    assert ledger["enabled"] is True and ledger["default"] == 10
    assert all(KEY not in account["key"] for account in ledger["accounts"])
    credits.set(KEY, 0)
    status, _ = call(f"{nanobanana_mock.base_url}/v2/nano-banana", {"prompt": "x"})
    assert status == 406  # Segmind's "insufficient credits"
    credits.disable()
    assert credits.get(KEY) is None
    submit(nanobanana_mock)


def test_rate_limits_set_list_and_clear(nanobanana_mock) -> None:
    limits = nanobanana_mock.rate_limits
    limits.set(1, key=KEY)
    (limit,) = limits.list()
    assert (limit["rpm"], limit["scope"]) == (1, "generate") and KEY not in limit["key"]
    submit(nanobanana_mock)
    assert call(f"{nanobanana_mock.base_url}/v2/nano-banana", {"prompt": "x"})[0] == 429
    submit(nanobanana_mock, key=OTHER)  # another key is not limited
    nanobanana_mock.clock.advance(60)
    submit(nanobanana_mock)  # the bucket refilled
    limits.clear()
    assert limits.list() == []
    limits.set(120, scope="all")
    assert limits.list() == [{"key": None, "rpm": 120, "scope": "all"}]
