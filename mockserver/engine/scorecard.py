"""The client resilience scorecard: what a client did that cost requests or money, judged
from the journal alone, per tenant and per API key (shown as its ``fp:`` fingerprint).

Computed on demand (``GET /_mock/scorecard``), never per request. Each finding names the
journal entries (``seq``) that prove it. The rules, in the order they are reported:

``paid_duplicate``
    A submit sent again with the same body (same key, provider and model) after an attempt
    that may have arrived: no answer (a connection broken after the handler, a timeout) or a
    5xx. Priced with what the ledger charged for each earlier attempt that made a job.
``tight_polling``
    Reads of a job (status, poll, result) sent less than the poll floor after an answer that
    said it was still queued or running; the floor defaults to :data:`POLL_FLOOR`. Retries
    after an error, or after an answer a transport fault may have cut, are not polls (the
    other rules judge them).
``ignored_rate_limit``
    A request (same key, provider, operation) sent before the time a 429's ``Retry-After`` or
    ``x-rate-limit-reset-at-utc`` allowed, less :data:`GRACE` (headers speak whole seconds).
    A 429 with neither header (SeaArt documents none) told no time, and is not judged.
``hopeless_retry``
    A request repeated after a 400, 401, 403, 404 or 422 that was not a job's state (same key,
    operation, and body or job or path): it could not succeed. An expired job's 404 is left to
    ``after_expiry``; a repeat that succeeded is not counted.
``after_expiry``
    A job read after it expired: priced at its cost when its result was never collected (the
    client came too late), else every read after the first answer that it had expired.
``abandoned_job``
    A paid job whose id the client was given, never followed to a terminal state, nor
    cancelled, nor answered 404, and over (terminal or gone) when the scorecard is asked,
    on the virtual clock. Priced at its cost.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, TypeVar

from nanobanana_mock.schemas.lifecycle import TERMINAL

from ..names import GENERATE
from .journal import Entry

__all__ = [
    "GRACE",
    "MAX_FINDINGS",
    "MAX_FINDING_ENTRIES",
    "MAX_KEYS",
    "POLL_FLOOR",
    "REFUSALS",
    "RULES",
    "Finding",
    "Policy",
    "finished",
    "judge",
]

POLL_FLOOR = 1.0  # seconds; no provider documents an interval, Segmind's own SDK polls each 1 s
GRACE = 0.05  # seconds a request may come before a 429's wait ends (wait headers are whole s)
MAX_FINDINGS = 500  # findings listed (counted all the same)
MAX_FINDING_ENTRIES = 50  # journal seqs listed per finding
MAX_KEYS = 500  # keys listed, the most wasteful first
REFUSALS = frozenset({400, 401, 403, 404, 422})  # answers a repeat cannot turn around
READS = frozenset({"status", "poll", "result"})
CANCEL = "cancel"
EXPIRED = "expired"

RULES: dict[str, str] = {
    "paid_duplicate": "Paid duplicates",
    "tight_polling": "Tight polling",
    "ignored_rate_limit": "Ignored rate limits",
    "hopeless_retry": "Hopeless retries",
    "after_expiry": "Reads after expiry",
    "abandoned_job": "Abandoned paid jobs",
}

T = TypeVar("T")
Steps = Generator[None, None, T]  # a computation in steps: next() until StopIteration.value
STEP = 2000  # entries (or jobs) a rule looks at between two yields
Over = Callable[[str, str, str | None], bool]  # (provider, job id, key fingerprint): done by now?


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds (``GET /_mock/scorecard?poll_floor=2``)."""

    poll_floor: float = POLL_FLOOR

    def thresholds(self) -> dict[str, str]:
        return {
            "paid_duplicate": "the same body submitted again after an attempt with no answer "
            "or a 5xx",
            "tight_polling": f"polls closer than {self.poll_floor:g} s after a still-running "
            "answer",
            "ignored_rate_limit": f"requests before a 429's wait ended (less {GRACE:g} s)",
            "hopeless_retry": "a repeat of a 400, 401, 403, 404 or 422 (same key, operation "
            "and body or job)",
            "after_expiry": "a read after the job expired (its result never collected, or again)",
            "abandoned_job": "a paid job never followed to its end nor cancelled, over by now",
        }


@dataclass(slots=True)
class Finding:
    rule: str
    key: str | None  # fp:xxxxxxxx
    provider: str
    job: str | None
    message: str
    wasted_requests: int
    wasted_usd: float
    entries: list[int] = field(default_factory=list)
    key_id: str | None = None  # the fingerprint, for the per-key summary; not shown

    def public(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "key": self.key,
            "provider": self.provider,
            "job": self.job,
            "message": self.message,
            "wasted_requests": self.wasted_requests,
            "wasted_usd": round(self.wasted_usd, 6),
            "entries": self.entries[:MAX_FINDING_ENTRIES],
        }


def finished(steps: Steps[T]) -> T:
    """What ``steps`` (:func:`judge`) come to, run to their end at once: for a caller with
    no event loop to share (the mock's route runs them with the loop served between)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


def judge(
    entries: Sequence[Entry],
    total: int,
    now: float,
    over: Over,
    *,
    tenant: str | None = None,
    policy: Policy = Policy(),
    key: str | None = None,
    provider: str | None = None,
) -> Steps[dict[str, Any]]:
    """The scorecard of ``entries`` (the journal's, oldest first; ``total`` ever recorded)
    at virtual time ``now``; ``key`` (``fp:…``) and ``provider`` narrow it. In steps of at
    most :data:`STEP` entries or jobs: a caller on an event loop lets it run between two (the
    mock's route), so a long journal never stalls it; :func:`finished` runs them at once."""
    dropped = max(0, total - len(entries))
    judged: list[Entry] = []
    for chunk in _chunks(entries):
        yield
        judged += [
            e
            for e in chunk
            if e.provider is not None
            and (key is None or e.key == key)
            and (provider is None or e.provider == provider)
        ]
    submits = _submits(judged)
    findings = [
        *(yield from _paid_duplicates(judged)),
        *(yield from _tight_polling(judged, policy.poll_floor)),
        *(yield from _ignored_rate_limits(judged)),
        *(yield from _hopeless_retries(judged)),
        *(yield from _after_expiry(judged, submits)),
        *(yield from _abandoned(judged, submits, over)),
    ]
    thresholds = policy.thresholds()
    counted = Counter(f.rule for f in findings)
    keys = yield from _keys(judged, findings)
    return {
        "tenant": tenant,
        "clean": not findings,
        "entries": len(judged),
        "dropped": dropped,
        "rules": [
            {"rule": rule, "title": title, "threshold": thresholds[rule], "findings": counted[rule]}
            for rule, title in RULES.items()
        ],
        "keys": keys[:MAX_KEYS],
        "findings": [f.public() for f in findings[:MAX_FINDINGS]],
        "truncated": len(findings) > MAX_FINDINGS or len(keys) > MAX_KEYS,
    }


# -- helpers --------------------------------------------------------------------------------


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """``items`` in slices of :data:`STEP`: a rule yields before each (:func:`judge`)."""
    for start in range(0, len(items), STEP):
        yield items[start : start + STEP]


def _ok(entry: Entry) -> bool:
    return entry.status is not None and 200 <= entry.status < 300


def _answered(entry: Entry) -> bool:
    """A job's state answered whole: not one a transport fault may have cut."""
    return _ok(entry) and _state(entry) is not None and not getattr(entry, "cut", None)


def _uncertain(entry: Entry) -> bool:
    """May have arrived, and the client cannot tell: no answer, or a 5xx."""
    return entry.status is None or entry.status >= 500


def _state(entry: Entry) -> str | None:
    return getattr(entry, "state", None)


def _terminal(entry: Entry) -> bool:
    state = _state(entry)
    return state is not None and state in TERMINAL


def _cost(entry: Entry | None) -> float:
    cost = getattr(entry, "cost", None) if entry is not None else None
    return float(cost) if cost is not None else 0.0


def _job_of(entry: Entry) -> tuple[str | None, str | None, str | None]:
    return (entry.key_id, entry.provider, entry.request_id)


def _finding(
    rule: str, first: Entry, message: str, proof: Iterable[Entry], requests: int, usd: float
) -> Finding:
    assert first.provider is not None
    return Finding(
        rule,
        first.key,
        first.provider,
        first.request_id,
        message,
        requests,
        usd,
        [e.seq for e in proof],
        first.key_id,
    )


def _repeats(rule: str, first: Entry, repeats: list[Entry], message: str) -> list[Finding]:
    """The finding of ``repeats`` sent after ``first`` in vain, each a wasted request (none
    without a repeat)."""
    return [_finding(rule, first, message, [first, *repeats], len(repeats), 0.0)] if repeats else []


def _usd(value: float) -> str:
    return f"${value:.4f}".rstrip("0").rstrip(".") if value else "$0"


Submits = dict[tuple[str | None, str | None, str | None], Entry]  # by (key, provider, job id)


def _submits(entries: Sequence[Entry]) -> Submits:
    """The submit that made each job, by (key, provider, job id)."""
    return {
        _job_of(e): e
        for e in entries
        if e.operation in GENERATE and e.request_id is not None and _ok(e)
    }


# -- the rules -------------------------------------------------------------------------------


def _paid_duplicates(entries: Sequence[Entry]) -> Steps[list[Finding]]:
    found: list[Finding] = []
    pending: dict[tuple[Any, ...], list[Entry]] = {}  # attempts that may have arrived
    for i, e in enumerate(entries):
        if not i % STEP:
            yield
        digest = getattr(e, "digest", None)
        if e.operation not in GENERATE or digest is None:
            continue
        ident = (e.key_id, e.provider, e.model, digest)
        before = pending.pop(ident, [])
        charged = getattr(e, "cost", None) is not None  # this attempt made a paid job
        if before and charged:
            lost = sum(_cost(b) for b in before)
            made = sum(1 for b in before if getattr(b, "cost", None) is not None)
            found.append(
                _finding(
                    "paid_duplicate",
                    e,
                    f"the same body was submitted again after {len(before)} attempt(s) that "
                    f"may have arrived (no answer or a 5xx); {made} of them made a paid job "
                    f"({_usd(lost)}) whose id the client never saw",
                    [*before, e],
                    len(before),
                    lost,
                )
            )
            before = []
        if _uncertain(e):  # another attempt that may have arrived: a repeat would be judged
            pending[ident] = [*before, e]
    return found


def _tight_polling(entries: Sequence[Entry], floor: float) -> Steps[list[Finding]]:
    reads: dict[tuple[str | None, str | None, str | None], list[Entry]] = defaultdict(list)
    for i, e in enumerate(entries):
        if not i % STEP:
            yield
        if e.operation in READS and e.request_id is not None:
            reads[_job_of(e)].append(e)
    found = []
    looked = 0
    for polls in reads.values():
        looked += len(polls)
        if looked >= STEP:  # a step of polls, whatever the jobs
            looked = 0
            yield
        tight = [
            e
            for prev, e in pairwise(polls)
            if _answered(prev) and not _terminal(prev) and e.t - prev.t < floor - 1e-9
        ]
        if tight:
            found.append(
                _finding(
                    "tight_polling",
                    polls[0],
                    f"job {polls[0].request_id} was read {len(polls)} times; {len(tight)} "
                    f"read(s) came sooner than {floor:g} s after an answer that it was still "
                    "running",
                    tight,
                    len(tight),
                    0.0,
                )
            )
    return found


def _ignored_rate_limits(entries: Sequence[Entry]) -> Steps[list[Finding]]:
    found: list[Finding] = []
    open_: dict[tuple[Any, ...], tuple[Entry, float, list[Entry]]] = {}

    def close(ident: tuple[Any, ...]) -> None:
        first, _, early = open_.pop(ident)
        found.extend(
            _repeats(
                "ignored_rate_limit",
                first,
                early,
                f"{len(early)} {first.operation} request(s) came before the wait a 429 asked "
                "for had passed",
            )
        )

    for i, e in enumerate(entries):
        if not i % STEP:
            yield
        ident = (e.key_id, e.provider, e.operation)
        limited = open_.get(ident)
        early = limited is not None and e.t < limited[1] - GRACE
        if limited is not None and early:
            limited[2].append(e)
        retry_at = getattr(e, "retry_at", None)
        if e.status == 429 and retry_at is not None:
            if limited is not None and early:  # still the same disregarded wait
                open_[ident] = (limited[0], retry_at, limited[2])
                continue
            if limited is not None:
                close(ident)
            open_[ident] = (e, retry_at, [])
        elif limited is not None and not early:
            close(ident)
    for ident in list(open_):
        close(ident)
    return found


def _refusal_of(e: Entry) -> bool:
    return (
        e.status in REFUSALS
        and _state(e) is None  # a state answered with a 4xx (Segmind's FAILED is a 422)
        and not (e.status == 404 and e.job == EXPIRED)
    )


def _hopeless_retries(entries: Sequence[Entry]) -> Steps[list[Finding]]:
    found: list[Finding] = []
    refused: dict[tuple[Any, ...], tuple[Entry, list[Entry]]] = {}

    def close(ident: tuple[Any, ...]) -> None:
        first, repeats = refused.pop(ident)
        found.extend(
            _repeats(
                "hopeless_retry",
                first,
                repeats,
                f"a {first.operation} refused with {first.status} was sent again "
                f"{len(repeats)} time(s) unchanged; it could not succeed",
            )
        )

    for i, e in enumerate(entries):
        if not i % STEP:
            yield
        what = getattr(e, "digest", None) or e.request_id or e.path
        ident = (e.key_id, e.provider, e.operation, what)
        if ident in refused:
            if _ok(e) or _state(e) is not None:  # it could, after all: not hopeless
                close(ident)
                continue
            refused[ident][1].append(e)
        elif _refusal_of(e):
            refused[ident] = (e, [])
    for ident in list(refused):
        close(ident)
    return found


def _after_expiry(entries: Sequence[Entry], submits: Submits) -> Steps[list[Finding]]:
    seen_end: set[tuple[str | None, str | None, str | None]] = set()
    expired: dict[tuple[str | None, str | None, str | None], list[Entry]] = defaultdict(list)
    collected: set[tuple[str | None, str | None, str | None]] = set()
    for i, e in enumerate(entries):
        if not i % STEP:
            yield
        job = _job_of(e)
        if _terminal(e):
            seen_end.add(job)
        elif e.status == 404 and e.job == EXPIRED and e.request_id is not None:
            if not expired[job] and job in seen_end:  # collected before it expired
                collected.add(job)
            expired[job].append(e)
    found = []
    looked = 0
    for job, reads in expired.items():
        looked += len(reads)
        if looked >= STEP:
            looked = 0
            yield
        late = job not in collected
        proof = reads if late else reads[1:]
        if not proof:
            continue
        usd = _cost(submits.get(job)) if late else 0.0
        why = (
            f"its result was never collected ({_usd(usd)} paid for nothing)"
            if late
            else "after being told so"
        )
        found.append(
            _finding(
                "after_expiry",
                reads[0],
                f"job {reads[0].request_id} was read {len(reads)} time(s) after it expired, " + why,
                proof,
                len(reads) - 1 if late else len(proof),
                usd,
            )
        )
    return found


def _abandoned(entries: Sequence[Entry], submits: Submits, over: Over) -> Steps[list[Finding]]:
    followed = {job for job, s in submits.items() if _terminal(s)}
    for i, e in enumerate(entries):
        if not i % STEP:
            yield
        job = _job_of(e)
        if job not in submits or e is submits[job]:
            continue
        if _terminal(e) or e.status == 404 or (e.operation == CANCEL and e.status in (202, 400)):
            followed.add(job)
    found = []
    for i, (job, submit) in enumerate(submits.items()):
        if not i % STEP:
            yield
        key_id, provider, job_id = job
        if job in followed or provider is None or job_id is None:
            continue
        if not over(provider, job_id, key_id):
            continue  # still running: the client may yet come for it
        usd = _cost(submit)
        found.append(
            _finding(
                "abandoned_job",
                submit,
                f"job {job_id} was paid for ({_usd(usd)}) and is over, but the client never "
                "followed it to its end nor cancelled it",
                [submit],
                1,
                usd,
            )
        )
    return found


def _keys(entries: Sequence[Entry], findings: Sequence[Finding]) -> Steps[list[dict[str, Any]]]:
    """Per key: requests, findings, wasted requests and dollars; the most wasteful first."""
    rows: dict[str | None, dict[str, Any]] = {}
    for i, e in enumerate(entries):
        if not i % STEP:
            yield
        row = rows.get(e.key_id)
        if row is None:
            row = rows[e.key_id] = {
                "key": e.key,
                "requests": 0,
                "findings": 0,
                "wasted_requests": 0,
                "wasted_usd": 0.0,
            }
        row["requests"] += 1
    for f in findings:
        row = rows[f.key_id]
        row["findings"] += 1
        row["wasted_requests"] += f.wasted_requests
        row["wasted_usd"] += f.wasted_usd
    for row in rows.values():
        row["wasted_usd"] = round(row["wasted_usd"], 6)
    return sorted(rows.values(), key=lambda r: (-r["wasted_usd"], -r["findings"], -r["requests"]))
