"""The client resilience scorecard: its rules on journal entries (units), and GET
/_mock/scorecard over HTTP, where a deliberately careless client is flagged on every rule
with the right entries and the right wasted dollars (priced here from the schemas)."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson
import pytest

from nanobanana_mock import schemas
from nanobanana_mock.engine.journal import Entry, Journal, redact
from nanobanana_mock.engine.keys import fingerprint
from nanobanana_mock.engine.scorecard import MAX_FINDING_ENTRIES, RULES, Policy, finished, judge
from nanobanana_mock.engine.scorecard_report import to_html, to_markdown
from nanobanana_mock.schemas.lifecycle import State
from tests.harness import Mock, largest_stall, validate

KEY = "sk-careless"
AUTH = {"Authorization": f"Key {KEY}"}
PIXAZO = {"Ocp-Apim-Subscription-Key": "pz-careless"}
PIXAZO_SUBMIT = "/nano-banana-pro-770/v1/nano-banana-pro-request"
MODEL = "nano_banana_pro"
SUBMIT = f"/model/v1/queue/{MODEL}"


def price(resolution: str = "1K") -> float:
    """The model's price for one image at ``resolution``, as its contract gives it."""
    return float(schemas.load("seaart", "api")["models"][MODEL]["price_usd"][resolution])


def retention() -> float:
    return float(schemas.load("seaart", "lifecycle")["retention"]["seconds"])


# -- units: the rules on entries --------------------------------------------------------------


def entry(seq: int, t: float, operation: str, status: int | None, **fields: Any) -> Entry:
    made = Entry(seq, t, "seaart", operation, "GET", "/p", redact(KEY), fingerprint(KEY))
    made.status = status
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def card(*entries: Entry, over: bool = True, **options: Any) -> dict[str, Any]:
    answer = finished(judge(list(entries), len(entries), 1000.0, lambda *_: over, **options))
    validate("mock", "control/scorecard", answer)
    return answer


def rules(answer: dict[str, Any]) -> list[str]:
    return [f["rule"] for f in answer["findings"]]


def test_an_empty_journal_is_clean_and_lists_every_rule() -> None:
    answer = card()
    assert answer["clean"] and answer["findings"] == [] and answer["entries"] == 0
    assert [r["rule"] for r in answer["rules"]] == list(RULES)
    assert "1 s" in answer["rules"][1]["threshold"]


def test_a_poll_after_an_error_is_a_retry_not_a_tight_poll() -> None:
    answer = card(
        entry(1, 0.0, "status", 200, request_id="j", state="QUEUED"),
        entry(2, 2.0, "status", 502, request_id="j"),
        entry(3, 2.1, "status", 200, request_id="j", state="QUEUED"),  # a retry, at once
        entry(4, 5.0, "status", 200, request_id="j", state="SUCCEEDED"),
        entry(5, 5.0, "result", 200, request_id="j", state="SUCCEEDED"),  # at once: fine
    )
    assert answer["clean"], answer["findings"]


def test_the_poll_floor_is_a_setting() -> None:
    polls = [entry(i, i * 1.5, "status", 200, request_id="j", state="RUNNING") for i in (1, 2)]
    assert card(*polls)["clean"]
    answer = card(*polls, policy=Policy(poll_floor=2.0))
    assert rules(answer) == ["tight_polling"] and answer["findings"][0]["entries"] == [2]
    assert "2 s" in answer["rules"][1]["threshold"]


def test_a_4xx_state_is_no_refusal_and_a_repeat_that_succeeds_is_not_hopeless() -> None:
    answer = card(
        entry(1, 0.0, "status", 422, request_id="j", state="FAILED"),  # Segmind's FAILED
        entry(2, 9.0, "status", 422, request_id="j", state="FAILED"),
        entry(3, 0.0, "status", 404, request_id="k"),  # an injected 404, then the job after all
        entry(4, 2.0, "status", 200, request_id="k", state="QUEUED"),
    )
    assert "hopeless_retry" not in rules(answer)


def test_a_running_job_is_not_abandoned_yet_and_a_finished_one_is() -> None:
    submit = entry(1, 0.0, "submit", 200, request_id="j", cost=0.134, digest="d")
    assert card(submit, over=False)["clean"]
    answer = card(submit)
    assert rules(answer) == ["abandoned_job"]
    assert answer["findings"][0]["wasted_usd"] == 0.134
    assert answer["keys"] == [
        {
            "key": redact(KEY),
            "requests": 1,
            "findings": 1,
            "wasted_requests": 1,
            "wasted_usd": 0.134,
        }
    ]


def test_a_resubmit_after_a_4xx_or_a_2xx_is_no_paid_duplicate() -> None:
    answer = card(
        entry(1, 0.0, "submit", 429, digest="d"),
        entry(2, 0.0, "submit", 200, digest="d", request_id="a", cost=0.1, state="SUCCEEDED"),
        entry(3, 0.0, "submit", 200, digest="d", request_id="b", cost=0.1, state="SUCCEEDED"),
    )
    assert answer["clean"], answer["findings"]


def test_a_resubmit_after_a_5xx_is_flagged_at_no_cost_when_nothing_was_charged() -> None:
    answer = card(
        entry(1, 0.0, "submit", 503, digest="d"),  # refused before any job was made
        entry(2, 1.0, "submit", 200, digest="d", request_id="a", cost=0.1, state="SUCCEEDED"),
    )
    (finding,) = answer["findings"]
    assert finding["rule"] == "paid_duplicate" and finding["entries"] == [1, 2]
    assert (finding["wasted_requests"], finding["wasted_usd"]) == (1, 0)


def test_findings_and_their_entries_are_bounded() -> None:
    polls = [entry(i, 0.0, "status", 200, request_id="j", state="QUEUED") for i in range(1, 80)]
    finding = card(*polls)["findings"][0]
    assert finding["wasted_requests"] == 78 and len(finding["entries"]) == MAX_FINDING_ENTRIES


def test_filters_narrow_it_to_a_key_or_a_provider() -> None:
    other = Entry(2, 0.0, "segmind", "submit", "POST", "/v2/x", "fp:00000000", "zz")
    other.status, other.request_id, other.cost = 200, "x", 0.04
    mine = entry(1, 0.0, "submit", 200, request_id="j", cost=0.134, digest="d")
    assert card(mine, other, key=redact(KEY))["entries"] == 1
    assert card(mine, other, provider="segmind")["findings"][0]["provider"] == "segmind"


def test_markdown_and_html_show_every_finding() -> None:
    answer = card(entry(1, 0.0, "submit", 200, request_id="j|x", cost=0.134, digest="d"))
    text = to_markdown(answer)
    assert "abandoned_job" in text and "j\\|x" in text and "$0.1340" in text
    page = to_html(card(entry(1, 0.0, "submit", 200, request_id="<j>", cost=1.0, digest="d")))
    assert "&lt;j&gt;" in page and "<j>" not in page


# -- over HTTP: a careless client ------------------------------------------------------------


async def submit(mock: Mock, body: dict[str, Any]) -> tuple[int, Any]:
    resp, answer = await mock.call(
        "seaart", "submit", "POST", SUBMIT, json=body, headers=AUTH, auth=False
    )
    return resp.status, answer


async def status(mock: Mock, job: str) -> tuple[int, Any]:
    path = f"{SUBMIT}/requests/{job}/status"
    resp, answer = await mock.call("seaart", "status", "GET", path, headers=AUTH, auth=False)
    return resp.status, answer


async def result(mock: Mock, job: str) -> int:
    path = f"{SUBMIT}/requests/{job}/response"
    resp, _ = await mock.call("seaart", "result", "GET", path, headers=AUTH, auth=False)
    return resp.status


async def control(mock: Mock, method: str, path: str, **kwargs: Any) -> Any:
    resp = await mock.client.request(method, path, **kwargs)
    assert resp.status < 300, await resp.text()
    return await resp.json()


async def scorecard(mock: Mock, **query: str) -> dict[str, Any]:
    answer = await control(mock, "GET", "/_mock/scorecard", params=query)
    validate("mock", "control/scorecard", answer)
    return answer


async def seqs(mock: Mock, **filters: str) -> list[int]:
    journal = await control(mock, "GET", "/_mock/journal", params=filters)
    return [e["seq"] for e in journal["entries"]]


async def careless_client(mock: Mock) -> dict[str, list[int]]:
    """A client that does everything wrong; returns the journal entries each rule must name."""
    proof: dict[str, list[int]] = {}
    first = {"prompt": "a careless apple"}
    # resubmits when the answer never came (the job was made and paid for all the same)
    await control(
        mock,
        "POST",
        "/_mock/faults",
        json={"match": {"operation": "submit"}, "effect": {"transport": {"kind": "reset"}}}
        | {"scope": {"first": 1}},
    )
    with pytest.raises(aiohttp.ClientError):
        await mock.client.post(SUBMIT, json=first, headers=AUTH)
    code, answer = await submit(mock, first)
    assert code == 200
    followed = answer["request_id"]
    proof["paid_duplicate"] = await seqs(mock, operation="submit")
    # polls in a tight loop, then follows the job to its end
    for _ in range(5):
        assert (await status(mock, followed))[1]["status"] == "IN_QUEUE"
    proof["tight_polling"] = (await seqs(mock, operation="status"))[1:]
    mock.advance(120)
    assert (await status(mock, followed))[1]["status"] == "COMPLETED"
    assert await result(mock, followed) == 200
    # ignores Pixazo's Retry-After: sends again at once, twice
    await control(
        mock,
        "POST",
        "/_mock/faults",
        json={"match": {"operation": "submit"}, "effect": {"http_error": {"status": 429}}}
        | {"scope": {"first": 3}},
    )
    pear = {"prompt": "a rate-limited pear", "image_urls": ["https://a.io/pear.png"]}
    for _ in range(3):
        resp = await mock.client.post(
            "/nano-banana-pro-770/v1/nano-banana-pro-request", json=pear, headers=PIXAZO
        )
        assert resp.status == 429 and resp.headers["Retry-After"] == "60"
    proof["ignored_rate_limit"] = await seqs(mock, provider="pixazo")
    # abandons a fig (never read again)
    code, answer = await submit(mock, {"prompt": "an abandoned fig"})
    assert code == 200
    # retries a 404 that cannot turn around
    assert [(await status(mock, "mmsu_nosuchjob"))[0] for _ in range(3)] == [404] * 3
    proof["hopeless_retry"] = await seqs(mock, request_id="mmsu_nosuchjob")
    proof["abandoned_job"] = (await seqs(mock, operation="submit"))[-1:]
    # forgets a plum until it has expired
    mock.advance(61)  # the 429's wait is over: the plum's submit is in time
    code, answer = await submit(mock, {"prompt": "a forgotten plum", "resolution": "4K"})
    late = answer["request_id"]
    mock.advance(retention() + 1)
    assert [await result(mock, late) for _ in range(2)] == [404, 404]
    proof["after_expiry"] = await seqs(mock, request_id=late, status="404")
    return proof


async def test_a_careless_client_is_flagged_on_every_rule_with_its_entries_and_dollars(
    mock: Mock,
) -> None:
    proof = await careless_client(mock)
    answer = await scorecard(mock)
    assert not answer["clean"] and answer["tenant"] is None
    found = {f["rule"]: f for f in answer["findings"]}
    assert sorted(rules(answer)) == sorted(RULES), answer["findings"]  # each rule once
    for rule, entries in proof.items():
        assert found[rule]["entries"] == entries, rule
        assert found[rule]["key"] == redact("pz-careless" if rule == "ignored_rate_limit" else KEY)
    wasted = {rule: (f["wasted_requests"], f["wasted_usd"]) for rule, f in found.items()}
    assert wasted == {
        "paid_duplicate": (1, pytest.approx(price("1K"))),  # the job the reset answer hid
        "tight_polling": (4, 0),
        "ignored_rate_limit": (2, 0),
        "hopeless_retry": (2, 0),
        "after_expiry": (1, pytest.approx(price("4K"))),  # the plum, never collected
        "abandoned_job": (1, pytest.approx(price("1K"))),  # the fig
    }
    keys = {k["key"]: k for k in answer["keys"]}
    assert keys[redact(KEY)]["wasted_usd"] == pytest.approx(2 * price("1K") + price("4K"))
    assert keys[redact(KEY)]["findings"] == 5 and keys[redact("pz-careless")]["findings"] == 1
    assert sum(k["requests"] for k in keys.values()) == answer["entries"]
    assert answer["entries"] == len(await seqs(mock))


async def test_the_scorecard_in_markdown_and_html_and_narrowed(mock: Mock) -> None:
    await careless_client(mock)
    resp = await mock.client.get("/_mock/scorecard", params={"format": "markdown"})
    assert resp.status == 200 and resp.content_type == "text/markdown"
    text = await resp.text()
    assert "# Client resilience scorecard" in text and "paid_duplicate" in text
    assert KEY not in text
    resp = await mock.client.get("/_mock/scorecard", params={"format": "html"})
    assert resp.content_type == "text/html" and "<table>" in await resp.text()
    assert (await scorecard(mock, key=KEY))["findings"]
    assert (await scorecard(mock, key=redact(KEY) or ""))["findings"]
    assert (await scorecard(mock, key="sk-someone-else"))["clean"]
    assert (await scorecard(mock, provider="pixazo"))["entries"] == 3
    assert (await scorecard(mock, provider="segmind"))["entries"] == 0


@pytest.mark.parametrize(
    "query",
    [
        {"format": "pdf"},
        {"provider": "acme"},
        {"poll_floor": "nan"},
        {"poll_floor": "-1"},
        {"poll_floor": "1e9"},
        {"poll_floor": "inf"},
        {"poll_floor": "9" * 5000},  # read no further than 40 characters: out of range
        [("poll_floor", "1"), ("poll_floor", "2")],
        {"colour": "red"},
    ],
)
async def test_a_bad_query_is_a_clear_400(
    mock: Mock, query: dict[str, str] | list[tuple[str, str]]
) -> None:
    resp = await mock.client.get("/_mock/scorecard", params=query)
    assert resp.status == 400
    body = await resp.json()
    validate("mock", "control/error", body)
    assert body["error"]


async def test_each_tenant_has_its_own_scorecard(mock: Mock) -> None:
    path = f"/t/team-a{SUBMIT}"
    for _ in range(2):
        resp = await mock.client.get(f"{path}/requests/mmsu_gone/status", headers=AUTH)
        assert resp.status == 404
    assert (await mock.client.post(path, json={"prompt": "x"}, headers=AUTH)).status == 200
    team = await control(mock, "GET", "/t/team-a/_mock/scorecard")
    validate("mock", "control/scorecard", team)
    assert team["tenant"] == "team-a" and rules(team) == ["hopeless_retry"]
    assert (await scorecard(mock))["entries"] == 0


def test_what_it_judges_by_survives_a_shared_stores_record_and_stays_out_of_the_view() -> None:
    judged = entry(1, 0.0, "submit", 200, digest="d", state=State.SUCCEEDED, retry_at=3.0)
    judged.cost, judged.cut = 0.1, True
    back = Entry.of_record(orjson.loads(orjson.dumps(judged.record())))
    assert [getattr(back, name) for name in Entry.SCORED] == ["d", "SUCCEEDED", 3.0, 0.1, True]
    bare = Entry.of_record(orjson.loads(orjson.dumps(entry(2, 0.0, "status", 200).record())))
    assert [getattr(bare, name) for name in Entry.SCORED] == [None] * 5
    assert not set(Entry.SCORED) & set(judged.public())


async def test_a_cancelled_job_is_not_abandoned(mock: Mock) -> None:
    code, answer = await submit(mock, {"prompt": "a cancelled quince"})
    assert code == 200
    job = answer["request_id"]
    path = f"{SUBMIT}/requests/{job}/cancel"
    resp, _ = await mock.call("seaart", "cancel", "PUT", path, headers=AUTH, auth=False)
    assert resp.status == 202
    mock.advance(3600 * 24)
    assert (await scorecard(mock))["clean"]


async def test_a_full_journal_is_judged_without_stalling_the_mock(mock_factory: Any) -> None:
    """A hundred thousand entries take a second or more to judge: off the event loop, so the
    mock keeps answering between its steps."""
    mock = await mock_factory(journal_size=100_000)
    journal = mock.state.journal
    for i in range(100_000):  # a tight poller's journal, filled without the HTTP round trips
        polled = journal.open(i * 0.001, "seaart", "status", "GET", "/p", KEY, f"j{i % 500}")
        polled.status, polled.state = 200, State.RUNNING
    started = time.perf_counter()
    finished(judge(journal.entries(), journal.total, 0.0, lambda *_: True))  # for scale
    on_the_loop = time.perf_counter() - started
    answer = await scorecard(mock)
    assert answer["entries"] == 100_000 and len(answer["findings"]) == 500
    # the work measured is the route alone: the answer's schema check (above) runs in this
    # process too, on the loop the mock shares, and is no stall of the mock's
    stall = await largest_stall(mock, control(mock, "GET", "/_mock/scorecard"))
    assert stall < on_the_loop, f"the loop stalled {stall:.2f} s of {on_the_loop:.2f} s"


def test_no_step_of_the_judging_is_long() -> None:
    """Each step looks at a bounded number of entries, however many jobs they are spread on."""
    journal = Journal(100_000)
    for i in range(100_000):
        polled = journal.open(i * 0.001, "seaart", "status", "GET", "/p", KEY, f"j{i % 500}")
        polled.status, polled.state = 200, State.RUNNING
    steps = judge(journal.entries(), journal.total, 0.0, lambda *_: True)
    longest, started = 0.0, time.process_time()
    while True:
        step = time.process_time()
        try:
            next(steps)
        except StopIteration as done:
            assert len(done.value["findings"]) == 500
            break
        longest = max(longest, time.process_time() - step)
    # a step is a small part of the whole (a quarter second at most), in this process's CPU
    # time: a neighbour taking the core pauses a step's wall time, not its CPU time
    whole = time.process_time() - started
    assert longest < max(whole / 10, 0.25), f"a step took {longest:.3f} s of {whole:.3f} s"
