"""The request journal: every provider request the mock received, and what it did about it.

Bounded (the oldest entries go first), keys redacted, times virtual, so a replayed scenario
yields the identical journal. Filterable, with counts, so a test can assert "the client polled
four times and never resubmitted".
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MAX_ENTRY_FINDINGS", "Entry", "Journal", "redact"]

MAX_ENTRY_FINDINGS = 20  # contract findings kept per entry (the drift report keeps them all)
FILTERS = ("provider", "operation", "method", "status", "request_id", "key_id", "fault", "model")


def redact(key: str | None) -> str | None:
    """Enough of a key to tell two apart in a log, never enough to use it."""
    if not key:
        return None
    return f"{key[:3]}…{key[-2:]}" if len(key) >= 10 else "…"


@dataclass(slots=True)
class Entry:
    seq: int
    t: float
    provider: str | None
    operation: str | None
    method: str
    path: str
    key: str | None  # redacted
    key_id: str | None  # fingerprint, for filtering; not shown
    request_id: str | None = None
    model: str | None = None
    validation: str | None = None  # "ok" | "invalid" | None (no body checked)
    problems: list[str] = field(default_factory=list)
    fault: str | None = None
    effect: str | None = None
    status: int | None = None  # None: a transport fault sent no response
    findings: list[dict[str, Any]] = field(default_factory=list)  # proxied answers only

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        del data["key_id"]
        return data


class Journal:
    def __init__(self, size: int) -> None:
        self._entries: deque[Entry] = deque(maxlen=size)
        self.total = 0

    @property
    def dropped(self) -> int:
        return self.total - len(self._entries)

    def open(self, **fields: Any) -> Entry:
        """Start an entry for a request; the middleware fills in the outcome."""
        self.total += 1
        entry = Entry(seq=self.total, **fields)
        self._entries.append(entry)
        return entry

    def clear(self) -> None:
        self._entries.clear()
        self.total = 0

    def query(
        self, filters: Mapping[str, Any], since: int = 0, limit: int | None = None
    ) -> dict[str, Any]:
        """Entries matching every filter, with their count and per-operation counts."""
        wanted = {name: value for name, value in filters.items() if value is not None}
        unknown = set(wanted) - set(FILTERS)
        if unknown:
            raise ValueError(f"unknown journal filter(s): {', '.join(sorted(unknown))}")
        matching = [e for e in self._entries if e.seq > since and _matches(e, wanted)]
        counts = Counter(f"{e.provider}.{e.operation}" for e in matching)
        shown: Iterable[Entry] = matching if limit is None else matching[-limit:]
        return {
            "entries": [e.public() for e in shown],
            "count": len(matching),
            "total": self.total,
            "dropped": self.dropped,
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
