"""The request journal: every provider request the mock received, and what it did about it.

Bounded (the oldest entries go first), keys redacted, times virtual, so a replayed scenario
yields the identical journal. Filterable, with counts, so a test can assert "the client polled
four times and never resubmitted".
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from nanobanana_mock.schemas.violations import MAX_PROBLEMS

from .keys import CACHED_KEY_CHARS, fingerprint

__all__ = [
    "MAX_ENTRY_FINDINGS",
    "MAX_ENTRY_PROBLEMS",
    "Entry",
    "Journal",
    "capped",
    "query",
    "redact",
]

MAX_ENTRY_FINDINGS = 20  # contract findings kept per entry (the drift report keeps them all)
MAX_ENTRY_PROBLEMS = MAX_PROBLEMS  # problems kept per entry, then one line counting the rest
FILTERS = (
    "provider",
    "operation",
    "method",
    "status",
    "request_id",
    "key_id",
    "fault",
    "model",
    "job",
)


def redact(key: str | None) -> str | None:
    """A key as shown anywhere (journal, credits, rate limits, fault rules): a short
    fingerprint, ``fp:`` and 8 hex digits, enough to tell keys apart and none of the key."""
    if not key:
        return None
    return "fp:" + fingerprint(key)[:8]


def capped(problems: list[str]) -> list[str]:
    """At most :data:`MAX_ENTRY_PROBLEMS` problems, then one line counting the rest (a list
    already capped, ending with its own count line, is kept as it is)."""
    if len(problems) <= MAX_ENTRY_PROBLEMS or (
        len(problems) == MAX_ENTRY_PROBLEMS + 1 and problems[-1].startswith("... and ")
    ):
        return problems
    rest = len(problems) - MAX_ENTRY_PROBLEMS
    return [*problems[:MAX_ENTRY_PROBLEMS], f"... and {rest} more problems"]


def _key_columns(key: str) -> tuple[str | None, str]:
    """What the journal keeps of a key: its redacted form and its fingerprint (cached for
    short keys only: a cache entry holds its key, which may be as long as a header)."""
    if len(key) <= CACHED_KEY_CHARS:
        return _cached_key_columns(key)
    return redact(key), fingerprint(key)


@lru_cache(maxsize=1024)
def _cached_key_columns(key: str) -> tuple[str | None, str]:
    return redact(key), fingerprint(key)


class Entry:
    """One request: filled in at its start, completed by the handler and the pipeline.

    A plain slotted class rather than a dataclass: one is made for every request, so its
    construction is kept to a few attribute stores."""

    # what the scorecard judges by (engine/scorecard.py): a submit's body fingerprint, the
    # job's state as a read (or a blocking generation) answered it, a 429's retry time
    # (virtual), a submit's price (USD), whether a fault may have cut its answer (an effect
    # that ``cuts``). Set only where the request already holds them and
    # left unset otherwise (no store per request): read with ``getattr(entry, name, None)``
    SCORED = ("digest", "state", "retry_at", "cost", "cut")
    __slots__ = (
        "effect",
        "fault",
        "findings",
        "job",
        "key",
        "key_id",
        "method",
        "model",
        "operation",
        "path",
        "problems",
        "provider",
        "request_id",
        "seq",
        "status",
        "t",
        "validation",
        *SCORED,
    )
    digest: str | None
    state: str | None
    retry_at: float | None
    cost: float | None
    cut: bool | None

    def __init__(
        self,
        seq: int,
        t: float,
        provider: str | None,
        operation: str | None,
        method: str,
        path: str,
        key: str | None,
        key_id: str | None,
        request_id: str | None = None,
        model: str | None = None,
    ) -> None:
        self.seq = seq
        self.t = t
        self.provider = provider
        self.operation = operation
        self.method = method
        self.path = path
        self.key = key  # redacted
        self.key_id = key_id  # fingerprint, for filtering; not shown
        self.request_id = request_id
        self.model = model
        self.validation: str | None = None  # "ok" | "invalid" | None (no body checked)
        self.problems: list[str] = NOTHING
        self.fault: str | None = None
        self.effect: str | None = None
        self.status: int | None = None  # None: a transport fault sent no response
        self.findings: list[dict[str, Any]] = NOTHING  # proxied answers only
        self.job: str | None = None  # a job id not shown: expired, evicted, deleted, unknown

    def record(self) -> dict[str, Any]:
        """What a shared store keeps of it: :meth:`public`, the key's fingerprint and what
        the scorecard judges by."""
        record = {**self.public(), "key_id": self.key_id}
        for name in self.SCORED:
            record[name] = getattr(self, name, None)
        return record

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> Entry:
        """An entry back from :meth:`record` (a field it lacks is None)."""
        entry = cls.__new__(cls)
        for name in cls.__slots__:
            setattr(entry, name, record.get(name))
        entry.problems = record.get("problems") or NOTHING
        entry.findings = record.get("findings") or NOTHING
        return entry

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "t": self.t,
            "provider": self.provider,
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "key": self.key,
            "request_id": self.request_id,
            "model": self.model,
            "validation": self.validation,
            "problems": list(self.problems),
            "fault": self.fault,
            "effect": self.effect,
            "status": self.status,
            "findings": list(self.findings),
            "job": self.job,
        }


NOTHING: list[Any] = []  # shared by entries with no problems or findings; never mutated


class Journal:
    def __init__(self, size: int) -> None:
        self._entries: deque[Entry] = deque(maxlen=size)
        self.total = 0

    @property
    def dropped(self) -> int:
        return self.total - len(self._entries)

    def open(
        self,
        t: float,
        provider: str | None,
        operation: str | None,
        method: str,
        path: str,
        key: str | None,
        request_id: str | None = None,
        model: str | None = None,
    ) -> Entry:
        """Start an entry for a request; the pipeline fills in the outcome. ``key`` is in
        clear here and is kept only redacted and as a fingerprint."""
        self.total += 1
        redacted, key_id = _key_columns(key) if key else (None, None)
        if key and key in path:  # a key pasted into a URL is not kept either
            path = path.replace(key, "[redacted]")
        entry = Entry(
            self.total, t, provider, operation, method, path, redacted, key_id, request_id, model
        )
        self._entries.append(entry)
        return entry

    def entries(self) -> list[Entry]:
        """The entries kept, oldest first (the scorecard reads them)."""
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.total = 0

    def query(
        self, filters: Mapping[str, Any], since: int = 0, limit: int | None = None
    ) -> dict[str, Any]:
        """Entries matching every filter, with their count and per-operation counts."""
        return query(self._entries, filters, since, limit, self.total, self.dropped)


def query(
    entries: Iterable[Entry],
    filters: Mapping[str, Any],
    since: int,
    limit: int | None,
    total: int,
    dropped: int,
) -> dict[str, Any]:
    """The entries of ``entries`` (oldest first) matching every filter, with their count and
    per-operation counts: :meth:`Journal.query`, for any store of entries."""
    wanted = {name: value for name, value in filters.items() if value is not None}
    unknown = set(wanted) - set(FILTERS)
    if unknown:
        names = ", ".join(sorted(name[:100] for name in unknown)[:10])
        raise ValueError(f"unknown journal filter(s): {names}")
    matching = [e for e in entries if e.seq > since and _matches(e, wanted)]
    counts = Counter(f"{e.provider}.{e.operation}" for e in matching)
    shown: Iterable[Entry] = matching if limit is None else matching[-limit:]
    return {
        "entries": [e.public() for e in shown],
        "count": len(matching),
        "total": total,
        "dropped": dropped,
        "counts": dict(sorted(counts.items())),
    }


def _matches(entry: Entry, wanted: Mapping[str, Any]) -> bool:
    for name, value in wanted.items():
        actual = getattr(entry, name)
        if name == "status":
            if actual is None or str(actual) != str(value):
                return False
        elif actual != value:
            return False
    return True
