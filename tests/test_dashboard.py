"""The dashboard (``/_mock/ui/``) in a real browser: Debian's chromium, driven headless by
Playwright, against a real mock on a loopback port (served from a thread: the browser is
driven from the test's), as a person would use it.

Each test has its own tenant (``/t/{name}/_mock/ui/``) of one mock per module, a fresh
browser context, and checks every control-plane answer the page received against the schema
``schemas/mock/control/api.json`` names for it; a page error or a failed load fails it. A
browser that does not start fails the test: it never skips. Screenshots of each view go to
the test's ``tmp_path``; with ``DASHBOARD_SCREENSHOTS=1`` the timeline's is also written to
``docs/img/dashboard-timeline.png`` (the README's).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    expect,
    sync_playwright,
)

from nanobanana_mock.control import spec
from tests import harness
from tests.harness import KEYS, schema_for, validate
from tests.redis_server import RedisServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MOCK_SETTINGS = {"seed": 7, "queue_seconds": 2.0, "workers": 2}  # frozen clock, self-checked
TOKEN = "s3cret-dashboard-token"
WAIT_MS = 8000  # for a DOM condition; the page refreshes at once after its own actions
DOCS_IMAGE = Path(__file__).resolve().parents[1] / "docs" / "img" / "dashboard-timeline.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless chromium per module (per xdist worker); failing to start it fails."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Served:
    base: str

    def url(self, path: str, tenant: str = "") -> str:
        return f"{self.base}{f'/t/{tenant}' if tenant else ''}{path}"

    def control(
        self, method: str, path: str, tenant: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """A control-plane call from the test (not the page), its answer checked."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Mock-Token"] = token
        data = json.dumps(body).encode() if body is not None else None
        status, answer = _send(method, self.url(f"/_mock/{path}", tenant), data, headers)
        _check_control(method, urlsplit(self.url(f"/_mock/{path}", tenant)).path, status, answer)
        return status, answer

    def submit(self, tenant: str, provider: str = "segmind") -> str:
        """A job submitted as a client would, its answer checked against the contract."""
        path, body = {
            "segmind": ("/v2/nano-banana", {"prompt": "Dancing Banana"}),
            "seaart": ("/model/v1/queue/nano_banana_pro", {"prompt": "A red apple"}),
        }[provider]
        headers = {"Content-Type": "application/json", **KEYS[provider]}
        status, answer = _send("POST", self.url(path, tenant), json.dumps(body).encode(), headers)
        validate(provider, schema_for(provider, "submit", status), answer)
        return str(answer["request_id"])

    def status(self, tenant: str, job: str) -> tuple[int, Any]:
        path = f"/v2/requests/{job}/status"
        status, answer = _send("GET", self.url(path, tenant), None, KEYS["segmind"])
        validate("segmind", schema_for("segmind", "status", status), answer)
        return status, answer


def _send(method: str, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"null")


def _check_control(method: str, path: str, status: int, body: Any) -> None:
    """An answer against the schema its route names (a path of no route: the catch-all's
    refusal, e.g. the 404 of a route this mock does not have)."""
    route = spec.route_of(method, path)
    assert route is not None or status >= 400, f"{method} {path}: no route of the contract"
    schema = spec.ERROR if route is None else spec.answer_schema(route, status)
    if schema is not None:
        assert spec.check(schema, body) == [], (route, status, body)


@contextmanager
def _serve(**settings: Any) -> Iterator[Served]:
    """A mock on a free loopback port, served from a thread with its own event loop (the
    browser is driven from this one), checking its own answers (``tests.harness.serving``
    fails on any it broke)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dashboard-mock", daemon=True)
    thread.start()
    serving = harness.serving(**{**MOCK_SETTINGS, **settings})
    try:
        served, _ = asyncio.run_coroutine_threadsafe(serving.__aenter__(), loop).result(30)
        try:
            yield Served(served.base_url)
        finally:
            asyncio.run_coroutine_threadsafe(serving.__aexit__(None, None, None), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def mock() -> Iterator[Served]:
    with _serve() as served:
        yield served


@pytest.fixture(scope="module")
def locked() -> Iterator[Served]:
    """A mock whose control plane needs a token."""
    with _serve(control_token=TOKEN) as served:
        yield served


@dataclass
class Watched:
    """A page, and what it received: every control-plane answer is checked against its
    schema, and any page error or failed load is kept (the test fails on it)."""

    page: Page
    answers: list[tuple[str, str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    faked: tuple[str, ...] = ()  # routes the test answers for the page (page.route)

    def on_response(self, response: Response) -> None:
        method, path = response.request.method, urlsplit(response.url).path
        self.answers.append((method, path, response.status))
        if response.status >= 500:
            self.errors.append(f"{method} {path}: {response.status}")
        if path.endswith(self.faked):
            return
        if "/_mock/ui" in path:
            if response.status != 200:
                self.errors.append(f"{method} {path}: {response.status}")
            return
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                _check_control(method, path, response.status, response.json())
            except AssertionError as broken:
                self.errors.append(f"answer off its contract: {broken}")

    def on_console(self, message: ConsoleMessage) -> None:
        # a refusal the page shows is logged as a failed load too: answers are checked above
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def view(self, name: str) -> None:
        self.page.locator(f"#tabs button[data-view={name}]").click()
        expect(self.page.locator(f"#view-{name}")).to_be_visible()

    def advance(self, seconds: float) -> None:
        self.page.fill("#advance-seconds", str(seconds))
        self.page.click("#advance")

    def shot(self, path: Path) -> None:
        self.page.screenshot(path=str(path), full_page=True)


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    found = Watched(page)
    page.on("response", found.on_response)
    page.on("pageerror", lambda error: found.errors.append(f"page error: {error}"))
    page.on("console", found.on_console)
    yield found
    context.close()
    assert found.errors == []


def bar(page: Page, job: str) -> Any:
    return page.locator(f'#timeline g.job[data-job="{job}"]')


# -- the timeline and the clock ----------------------------------------------------------------


def test_a_jobs_bar_goes_queued_processing_completed_as_the_page_advances_the_clock(
    mock: Served, watched: Watched, tmp_path: Path
) -> None:
    tenant, page = "ui-timeline", watched.page
    page.goto(mock.url("/_mock/ui/", tenant))
    expect(page.locator("#timeline")).to_contain_text("No jobs yet")
    job = mock.submit(tenant)
    expect(bar(page, job)).to_have_attribute("data-state", "QUEUED")  # live, no reload
    expect(bar(page, job)).to_have_attribute("data-wire", "QUEUED")
    watched.advance(3)  # past the 2 s queue
    expect(page.locator("#clock-now")).to_have_text("3.00")
    expect(bar(page, job)).to_have_attribute("data-state", "RUNNING")
    expect(bar(page, job)).to_have_attribute("data-wire", "PROCESSING")
    assert mock.status(tenant, job)[1]["status"] == "PROCESSING"  # a client's poll...
    expect(bar(page, job).locator("line.tick-poll")).to_have_count(1)  # ...marked on its bar
    page.click(".advance-by[data-seconds='60']")
    expect(page.locator("#clock-now")).to_have_text("63.00")
    expect(bar(page, job)).to_have_attribute("data-state", "SUCCEEDED")
    expect(bar(page, job)).to_have_attribute("data-wire", "COMPLETED")
    expect(bar(page, job).locator("rect.seg.queued")).to_have_count(1)
    expect(bar(page, job).locator("rect.seg.running")).to_have_count(1)
    expect(bar(page, job).locator("rect.seg.succeeded")).to_have_count(1)
    expect(bar(page, job).locator("rect.seg.expiry")).to_have_count(1)
    assert mock.status(tenant, job)[1]["status"] == "COMPLETED"
    bar(page, job).click()  # the job's requests and answers
    entries = page.locator("#job-entries tbody tr")
    expect(entries).to_have_count(3)
    expect(entries.nth(0)).to_contain_text("POST")
    expect(entries.nth(0)).to_contain_text("/v2/nano-banana")
    expect(entries.nth(2)).to_contain_text(f"/v2/requests/{job}/status")
    expect(page.locator("#job-facts")).to_contain_text("SUCCEEDED (COMPLETED)")
    watched.shot(tmp_path / "timeline.png")


def test_the_clock_controls_set_the_speed_and_freeze(mock: Served, watched: Watched) -> None:
    tenant, page = "ui-clock", watched.page
    page.goto(mock.url("/_mock/ui/", tenant))
    page.fill("#speed-value", "1000")
    page.click("#set-speed")
    expect(page.locator("#clock-speed")).to_have_text("1000")
    page.click("#freeze")
    expect(page.locator("#clock-speed")).to_have_text("0 (frozen)")
    status, clock = mock.control("GET", "clock", tenant)
    assert status == 200 and clock["speed"] == 0 and clock["now"] > 0
    frozen = page.locator("#clock-now").inner_text()
    assert float(frozen) == pytest.approx(clock["now"], abs=0.01)
    page.fill("#advance-seconds", "1e11")  # past the clock's end: refused, said so
    page.click("#advance")
    expect(page.locator("#status")).to_contain_text("advance must be")
    assert mock.control("GET", "clock", tenant)[1] == clock


# -- fault rules -------------------------------------------------------------------------------

FAIL_NEXT_JOB = """{"id": "fail-next", "match": {"provider": "segmind", "operation": "submit"},
 "effect": {"job_failure": {"error": "Blocked by the dashboard"}}, "scope": {"times": 1}}"""


FLAKY_STATUS = {
    "id": "flaky-status",
    "match": {"provider": "segmind", "operation": "status"},
    "effect": {"http_error": {"status": 503}},
    "scope": {"times": 1},
}


def test_a_rule_added_in_the_page_fails_the_next_job(
    mock: Served, watched: Watched, tmp_path: Path
) -> None:
    tenant, page = "ui-faults", watched.page
    page.goto(mock.url("/_mock/ui/", tenant))
    watched.view("faults")
    page.fill("#fault-json", "{not json")
    page.click("#fault-add")
    expect(page.locator("#fault-note")).to_contain_text("not JSON")
    page.fill("#fault-json", '{"match": {"provider": "segmnd"}, "effect": {"latency": {}}}')
    page.click("#fault-add")  # the mock's refusal, shown with its problems
    expect(page.locator("#fault-note")).to_contain_text("did you mean 'segmind'")
    page.fill("#fault-json", FAIL_NEXT_JOB)
    page.click("#fault-add")
    expect(page.locator("#fault-note")).to_have_text("added fail-next")
    row = page.locator("#fault-rules tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".fired")).to_have_text("0")
    failing, fine = mock.submit(tenant), mock.submit(tenant)
    expect(row.locator(".matched")).to_have_text("2")  # live: both submits matched...
    expect(row.locator(".fired")).to_have_text("1")  # ...and it fired once
    watched.shot(tmp_path / "faults.png")
    page.fill("#fault-json", json.dumps({"faults": [FLAKY_STATUS]}))  # the list form
    page.click("#fault-add")
    expect(page.locator("#fault-note")).to_have_text("added flaky-status")
    expect(row).to_have_count(2)
    watched.view("timeline")
    watched.advance(5)
    expect(page.locator("#clock-now")).to_have_text("5.00")
    assert mock.status(tenant, failing)[0] == 503  # a fault...
    watched.advance(1)
    expect(page.locator("#clock-now")).to_have_text("6.00")
    assert mock.status(tenant, failing)[0] == 200  # ...and the client's retry
    watched.advance(54)
    expect(bar(page, failing)).to_have_attribute("data-state", "FAILED")
    expect(bar(page, fine)).to_have_attribute("data-state", "SUCCEEDED")
    expect(bar(page, failing).locator("rect.seg.failed")).to_have_count(1)
    status, answer = mock.status(tenant, failing)
    assert (status, answer["status"]) == (422, "FAILED")
    ticks = bar(page, failing).locator("line.tick")
    expect(ticks).to_have_count(4)  # its submit (a rule fired), the 503, the retry, the 422
    expect(bar(page, failing).locator("line.tick-fault")).to_have_count(2)
    expect(bar(page, failing).locator("line.tick-retry")).to_have_count(1)
    expect(bar(page, failing).locator("line.tick-poll")).to_have_count(1)
    expect(bar(page, fine).locator("line.tick")).to_have_count(1)
    bar(page, failing).click()
    expect(page.locator("#job-facts")).to_contain_text("Blocked by the dashboard")
    expect(page.locator("#job-entries tbody tr").last).to_contain_text("422")
    watched.shot(tmp_path / "timeline.png")
    if os.environ.get("DASHBOARD_SCREENSHOTS") == "1":  # the README's picture
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        page.locator("main").screenshot(path=str(DOCS_IMAGE))
    watched.view("faults")
    page.locator("#fault-rules button.remove[data-rule='fail-next']").click()
    expect(row).to_have_count(1)
    expect(row).to_contain_text("flaky-status")
    page.click("#fault-clear")
    expect(row).to_have_count(0)
    assert mock.control("GET", "faults", tenant)[1] == {"faults": []}


# -- the journal -------------------------------------------------------------------------------


def test_the_journal_shows_the_requests_and_filters_them(
    mock: Served, watched: Watched, tmp_path: Path
) -> None:
    tenant, page, sent = "ui-journal", watched.page, []
    page.on("request", lambda request: sent.append(request.url))
    page.goto(mock.url("/_mock/ui/", tenant))
    watched.view("journal")
    job = mock.submit(tenant)
    mock.submit(tenant, "seaart")
    assert mock.status(tenant, "no-such-job")[0] == 404
    rows = page.locator("#journal-entries tbody tr")
    expect(rows).to_have_count(3)  # live, newest first
    expect(rows.nth(0)).to_contain_text("/v2/requests/no-such-job/status")
    expect(rows.nth(0)).to_contain_text("fp:")  # a key only as its fingerprint
    page.select_option("#journal-filters select[name=provider]", "seaart")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("/model/v1/queue/nano_banana_pro")
    page.select_option("#journal-filters select[name=provider]", "")
    page.fill("#journal-filters input[name=status]", "404")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("job unknown")
    page.fill("#journal-filters input[name=status]", "")
    page.fill("#journal-filters input[name=request_id]", job)
    expect(rows).to_have_count(1)
    expect(page.locator("#journal-summary")).to_contain_text("1 matching of 3 recorded")
    page.fill("#journal-filters input[name=request_id]", "")
    raw = KEYS["segmind"]["x-api-key"]
    fingerprint = mock.control("GET", f"journal?request_id={job}", tenant)[1]["entries"][0]["key"]
    page.fill("#journal-filters input[name=key]", raw)  # a key itself: never sent
    expect(page.locator("#journal-summary")).to_contain_text("type a fingerprint")
    expect(rows).to_have_count(3)
    page.fill("#journal-filters input[name=key]", fingerprint)  # as the journal shows it
    expect(rows).to_have_count(2)
    expect(page.locator("#journal-summary")).to_contain_text(f"2 of key {fingerprint}")
    assert not [url for url in sent if raw in url], "a key in a URL"
    page.fill("#journal-filters input[name=status]", "abc")  # the mock's 400, shown
    expect(page.locator("#status")).to_contain_text("status must be a whole number")
    page.click("#journal-filters button[type=reset]")
    expect(rows).to_have_count(3)
    expect(page.locator("#status")).to_have_text("")
    watched.shot(tmp_path / "journal.png")


# -- the other views ---------------------------------------------------------------------------


def test_credits_rate_limits_drift_and_scorecard_views(
    mock: Served, watched: Watched, tmp_path: Path
) -> None:
    tenant, page = "ui-views", watched.page
    assert mock.control("POST", "credits", tenant, {"key": "SG_dash", "balance": 2.5})[0] == 200
    assert mock.control("POST", "rate-limits", tenant, {"rpm": 30, "scope": "all"})[0] == 200
    page.goto(mock.url("/_mock/ui/", tenant))
    watched.view("quotas")
    expect(page.locator("#credits-summary")).to_have_text(
        "credits on; default balance none; 1 account"
    )
    accounts = page.locator("#credit-accounts tbody tr")
    expect(accounts).to_have_count(1)
    expect(accounts).to_contain_text("fp:")
    expect(accounts).not_to_contain_text("SG_dash")
    expect(page.locator("#rate-limits tbody tr")).to_contain_text("every key")
    watched.shot(tmp_path / "quotas.png")
    watched.view("drift")
    expect(page.locator("#drift-summary")).to_contain_text("validating proxy is off")
    watched.shot(tmp_path / "drift.png")
    job = mock.submit(tenant)
    for _ in range(5):  # a client polling in a tight loop
        mock.status(tenant, job)
    watched.view("scorecard")
    summary = page.locator("#scorecard-summary")
    if spec.route_of("GET", "/_mock/scorecard") is None:
        expect(summary).to_have_text("scorecard not available")
    else:
        expect(summary).to_contain_text("6 journal entries judged")
        finding = page.locator("#scorecard-findings tbody tr", has_text="tight_polling")
        expect(finding).to_have_count(1)
        expect(finding).to_contain_text(job)
    watched.shot(tmp_path / "scorecard.png")


DRIFT = {
    "target": "http://127.0.0.1:9/ (proxy)",
    "started": "2026-12-02T14:00:00+00:00",
    "verdict": "breaking drift found",
    "summary": {"segmind": {"checks": 4, "breaking": 1, "additive": 0}},
    "breaking": 1,
    "dropped": 0,
    "findings": [
        {
            "provider": "segmind",
            "operation": "status",
            "request": "GET /v2/requests/{id}/status",
            "pointer": "/status",
            "expected": "one of QUEUED, PROCESSING, COMPLETED, FAILED",
            "observed": '"DONE"',
            "severity": "breaking",
            "check": "schema",
            "times": 3,
        }
    ],
}
# The scorecard's JSON as agreed with its route's author (GET /_mock/scorecard), with text
# that must be shown as text
SCORECARD = {
    "tenant": "ui-reports",
    "clean": False,
    "entries": 12,
    "dropped": 0,
    "rules": [
        {
            "rule": "tight_polling",
            "title": "polls closer together than the provider advises",
            "threshold": "polls closer than 1.0 s",
            "findings": 1,
        },
        {
            "rule": "hopeless_retry",
            "title": "repeats of a request that could not succeed",
            "threshold": "a repeat of a 400, 401, 403, 404 or 422",
            "findings": 0,
        },
    ],
    "keys": [
        {"key": "fp:1a2b3c4d", "requests": 12, "findings": 1, "wasted_requests": 7, "wasted_usd": 0}
    ],
    "findings": [
        {
            "rule": "tight_polling",
            "key": "fp:1a2b3c4d",
            "provider": "segmind",
            "job": "job-1",
            "message": "<img src=x onerror=alert(1)> polled job-1 8 times in 0.4 s",
            "wasted_requests": 7,
            "wasted_usd": 0,
            "entries": [2, 3, 4],
        }
    ],
    "truncated": False,
}


def test_the_drift_and_scorecard_views_show_their_reports(
    mock: Served, watched: Watched, tmp_path: Path
) -> None:
    """The two reports as their routes answer when they have findings (here answered by the
    test for the page: the proxy is off, and the scorecard is built elsewhere)."""
    assert spec.check("control/drift", DRIFT) == []
    scorecard = spec.route_of("GET", "/_mock/scorecard")
    if scorecard is not None:  # the route's own schema, where this mock has the route
        assert spec.check(str(spec.answer_schema(scorecard, 200)), SCORECARD) == []
    page = watched.page
    watched.faked = ("/_mock/drift", "/_mock/scorecard")
    page.route("**/_mock/drift", lambda route: route.fulfill(json=DRIFT))
    page.route("**/_mock/scorecard", lambda route: route.fulfill(json=SCORECARD))
    page.goto(mock.url("/_mock/ui/", "ui-reports"))
    watched.view("drift")
    expect(page.locator("#drift-summary")).to_contain_text("breaking drift found")
    finding = page.locator("#drift-findings tbody tr")
    expect(finding).to_have_count(1)
    expect(finding).to_contain_text('"DONE"')
    watched.shot(tmp_path / "drift.png")
    watched.view("scorecard")
    expect(page.locator("#scorecard-summary")).to_have_text("1 finding — 12 journal entries judged")
    expect(page.locator("#scorecard-rules tbody tr")).to_have_count(2)
    expect(page.locator("#scorecard-rules tbody tr").first).to_contain_text(
        "polls closer than 1.0 s"
    )
    expect(page.locator("#scorecard-keys tbody tr")).to_contain_text("fp:1a2b3c4d")
    row = page.locator("#scorecard-findings tbody tr")
    expect(row).to_contain_text("<img src=x onerror=alert(1)> polled job-1")  # text, not markup
    expect(row).to_contain_text("#2 #3 #4")
    assert page.locator("#scorecard-findings img").count() == 0
    watched.shot(tmp_path / "scorecard.png")


# -- who may use it ----------------------------------------------------------------------------


def test_a_token_protected_mock_asks_for_its_token_and_sends_it(
    locked: Served, watched: Watched
) -> None:
    tenant, page = "ui-token", watched.page
    opened = page.goto(locked.url("/_mock/ui/", tenant))  # the page itself needs no token
    assert opened is not None and opened.status == 200
    assert "default-src 'self'" in opened.headers["content-security-policy"]
    assert opened.headers["x-content-type-options"] == "nosniff"
    expect(page.locator("#token-form")).to_be_visible()  # its data does
    expect(page.locator("#token-note")).to_contain_text("X-Mock-Token")
    page.fill("#token", "wrong")
    page.click("#token-save")
    expect(page.locator("#token-form")).to_be_visible()
    job = locked.submit(tenant)
    page.fill("#token", TOKEN)
    with page.expect_request(lambda r: r.url.endswith("/_mock/clock")) as sent:
        page.click("#token-save")
    assert sent.value.headers.get("x-mock-token") == TOKEN
    expect(page.locator("#token-form")).to_be_hidden()
    expect(bar(page, job)).to_have_attribute("data-state", "QUEUED")
    watched.advance(3)
    expect(bar(page, job)).to_have_attribute("data-state", "RUNNING")
    assert locked.control("GET", "clock", tenant, token=TOKEN)[1]["now"] == 3
    refused = page.evaluate("fetch('../clock').then((r) => r.status)")  # no token: refused
    assert refused == 401


def test_a_tenants_page_sees_and_moves_only_its_tenant(mock: Served, watched: Watched) -> None:
    page = watched.page
    mine = mock.submit("ui-mine")
    theirs = [mock.submit("ui-theirs") for _ in range(3)]  # (the same seed: the same ids)
    assert mock.control("GET", "jobs", "ui-theirs")[1]["total"] == len(theirs)
    page.goto(mock.url("/_mock/ui/", "ui-mine"))
    expect(page.locator("#tenant")).to_have_text("tenant ui-mine")
    expect(bar(page, mine)).to_have_count(1)
    expect(page.locator("#jobs-summary")).to_contain_text("1 live job;")
    expect(page.locator("#timeline g.job")).to_have_count(1)
    watched.advance(5)
    expect(bar(page, mine)).to_have_attribute("data-state", "RUNNING")
    assert mock.control("GET", "clock", "ui-theirs")[1]["now"] == 0
    watched.view("journal")
    expect(page.locator("#journal-entries tbody tr")).to_have_count(1)
    expect(page.locator("#journal-entries tbody tr")).to_contain_text(mine)
    assert all(path.startswith("/t/ui-mine/") for _, path, _ in watched.answers), (
        "every call of the page stays in its tenant"
    )


# -- a shared store ----------------------------------------------------------------------------


def test_the_page_of_one_mock_shows_and_moves_a_shared_stores_tenant(
    redis_server: RedisServer, watched: Watched
) -> None:
    """Two mocks on one Redis: a job submitted to one shows on the other's page, and the
    clock that page moves is the tenant's, for both."""
    tenant, page = "ui-shared", watched.page
    with _serve(store=redis_server.url) as one, _serve(store=redis_server.url) as other:
        job = other.submit(tenant)
        page.goto(one.url("/_mock/ui/", tenant))
        expect(bar(page, job)).to_have_attribute("data-state", "QUEUED")
        watched.advance(3)
        expect(bar(page, job)).to_have_attribute("data-state", "RUNNING")
        assert other.status(tenant, job)[1]["status"] == "PROCESSING"
        expect(bar(page, job).locator("line.tick-poll")).to_have_count(1)


# -- live updates ------------------------------------------------------------------------------

HIDE = """() => {
  Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
  Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_the_page_polls_about_once_a_second_and_not_while_hidden(
    mock: Served, watched: Watched
) -> None:
    """On the page's own timers (Playwright's clock), not the wall clock's. (The page's
    policy forbids evaluating strings, so no ``wait_for_function``: its counter of refreshes,
    ``data-refreshed``, is watched instead.)"""
    page, sent = watched.page, []
    page.clock.install()
    page.on("request", lambda request: sent.append(urlsplit(request.url).path))
    page.goto(mock.url("/_mock/ui/", "ui-live"))
    body = page.locator("body")
    expect(body).to_have_attribute("data-refreshed", re.compile(r"\d"))
    first = body.get_attribute("data-refreshed")
    page.clock.run_for(1100)  # the next refresh is due
    expect(body).not_to_have_attribute("data-refreshed", str(first))
    page.evaluate(HIDE)
    before = len(sent)  # (the events of every request sent before it came first)
    page.clock.run_for(10_000)  # ten seconds hidden: nothing asked
    assert page.evaluate("document.visibilityState") == "hidden"
    assert sent[before:] == []
    hidden = body.get_attribute("data-refreshed")
    page.evaluate(SHOW)  # back: at once, then every second again
    expect(body).not_to_have_attribute("data-refreshed", str(hidden))
    assert "/t/ui-live/_mock/clock" in sent[before:]


def test_after_a_reset_the_timeline_reads_the_journal_afresh(
    mock: Served, watched: Watched
) -> None:
    tenant, page = "ui-reset", watched.page
    page.goto(mock.url("/_mock/ui/", tenant))
    job = mock.submit(tenant)
    for _ in range(3):
        mock.status(tenant, job)
    expect(bar(page, job).locator("line.tick")).to_have_count(4)
    assert mock.control("POST", "reset", tenant, {})[0] == 200
    expect(page.locator("#timeline")).to_contain_text("No jobs yet")
    again = mock.submit(tenant)  # (the same seed: the same id)
    expect(bar(page, again).locator("line.tick")).to_have_count(1)  # its submit only
    mock.status(tenant, again)
    expect(bar(page, again).locator("line.tick")).to_have_count(2)
    for _ in range(3):
        mock.status(tenant, again)
    expect(bar(page, again).locator("line.tick")).to_have_count(5)  # seen up to entry 5
    watched.advance(10)
    expect(page.locator("#clock-now")).to_have_text("10.00")
    page.uncheck("#live")  # (no refresh between the reset and the requests after it)
    assert mock.control("POST", "reset", tenant, {})[0] == 200
    for _ in range(4):  # a journal as long as before the reset, on a clock gone back
        assert mock.status(tenant, "no-such-job")[0] == 404
    last = mock.submit(tenant)  # entry 5 again, and the same id again
    mock.status(tenant, last)
    page.check("#live")
    expect(page.locator("#clock-now")).to_have_text("0.00")
    expect(bar(page, last).locator("line.tick")).to_have_count(2)
