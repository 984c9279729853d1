"""What a tenant counts for its Prometheus metrics, as plain numbers (``/_mock/metrics``).

One :class:`Counters` per tenant state, made anew by a reset (a new series start: Prometheus
reads a counter that went down as a reset). Counting a request (``pipeline/serve.py``, where
its journal entry closes) is a dict lookup and two list stores, inline: no call, no lock, no
label object. The exposition (``control/metrics.py``) reads these at scrape time.

Every key is bounded: providers, operations and statuses are the mock's own (a fault rule's
status is one of at most 500), fault series by :data:`MAX_FAULT_SERIES`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

__all__ = [
    "BOUNDS",
    "MAX_FAULT_SERIES",
    "MAX_SERIES",
    "OTHER",
    "Counters",
    "Fired",
    "Key",
    "add_counts",
    "add_slot",
    "served_field",
]

# the latency histogram's upper bounds, in wall-clock seconds the mock spent serving
BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_SERIES = 5000  # (provider, operation, status) slots; then with status None (one more each)
MAX_FAULT_SERIES = 1000  # (rule, effect) pairs (rules are capped at 1000); more: OTHER
OTHER = "_other"

Key = tuple[str | None, str | None, int | None]  # provider, operation, status (None: unsent)
K = TypeVar("K")
N = TypeVar("N", int, float)


def add_counts(mine: dict[K, N], theirs: dict[K, N]) -> None:
    """Add ``theirs`` to ``mine``, key by key."""
    for key, n in theirs.items():
        mine[key] = mine.get(key, 0) + n


def add_slot(mine: list[float], theirs: list[float]) -> None:
    """Add a request slot to another, place by place (seconds, then each bucket)."""
    for i, value in enumerate(theirs):
        mine[i] += value


def served_field(key: Key) -> str:
    """The flat field of a request slot (``:`` and its index follow): see :meth:`fields`."""
    provider, operation, status = key
    return f"s\x1f{provider or ''}\x1f{operation or ''}\x1f{'' if status is None else status}"


class Fired(Protocol):
    """A fired effect, as the metrics read it (``faults.effects.Effect``)."""

    @property
    def rule_id(self) -> str: ...

    @property
    def kind(self) -> str: ...


class Counters:
    """A tenant's counts: requests and their latency per (provider, operation, status),
    faults fired per (rule, effect), rate-limited answers and store errors per provider.

    A request's slot is a list: ``[seconds, n(le BOUNDS[0]), ..., n(+Inf)]`` (bucket
    counts, not cumulative; their sum is the count of requests)."""

    __slots__ = ("faults", "limited", "served", "shipped", "store_errors")

    def __init__(self) -> None:
        self.served: dict[Key, list[float]] = {}
        self.faults: dict[tuple[str, str], int] = {}
        self.limited: dict[str, int] = {}  # 429s the rate limiter gave, by provider
        self.store_errors: dict[str, int] = {}  # the store's 503s, by provider ("" none)
        self.shipped: Any = None  # what a shared store has of these (store/metrics.py)

    def count(
        self, provider: str | None, operation: str | None, status: int | None, seconds: float
    ) -> None:
        """One request served (its journal entry closed) in ``seconds`` of wall time (what
        the pipeline does inline)."""
        slot = self.served.get((provider, operation, status))
        if slot is None:
            slot = self.slot(provider, operation, status)
        slot[0] += seconds
        slot[1 + bisect_left(BOUNDS, seconds)] += 1

    def slot(self, provider: str | None, operation: str | None, status: int | None) -> list[float]:
        """A new slot (bounded: past :data:`MAX_SERIES`, a shared one with status None)."""
        served = self.served
        if len(served) >= MAX_SERIES:
            status = None  # bounded: a flood of odd statuses is counted as unsent
            slot = served.get((provider, operation, status))
            if slot is not None:
                return slot
        slot = served[(provider, operation, status)] = [0.0] * (len(BOUNDS) + 2)
        return slot

    def fired(self, effects: Iterable[Fired]) -> None:
        """A request's fired effects (each rule and effect once per request)."""
        faults = self.faults
        for pair in dict.fromkeys((e.rule_id, e.kind) for e in effects):
            if pair not in faults and len(faults) >= MAX_FAULT_SERIES:
                pair = (OTHER, pair[1])
            faults[pair] = faults.get(pair, 0) + 1

    def rate_limited(self, provider: str) -> None:
        self.limited[provider] = self.limited.get(provider, 0) + 1

    def store_error(self, provider: str | None) -> None:
        name = provider or ""
        self.store_errors[name] = self.store_errors.get(name, 0) + 1

    # -- as flat fields, for a shared store and for adding tenants up ------------------------

    def fields(self) -> dict[str, float]:
        """Every count as one flat field (``kind``, then the labels, ``\\x1f``-separated):
        what a shared store sums across processes (:meth:`of_fields` reads it back)."""
        out: dict[str, float] = {}
        for key, slot in self.served.items():
            head = served_field(key)
            for i, value in enumerate(slot):
                if value:
                    out[f"{head}\x1f{i}"] = value
        for (rule, effect), n in self.faults.items():
            out[f"f\x1f{rule}\x1f{effect}"] = n
        for provider, n in self.limited.items():
            out[f"l\x1f{provider}"] = n
        for provider, n in self.store_errors.items():
            out[f"e\x1f{provider}"] = n
        return out

    @classmethod
    def of_fields(cls, fields: dict[str, float]) -> Counters:
        """Counters back from :meth:`fields` (a field it cannot read is left out)."""
        counters = cls()
        width = len(BOUNDS) + 2
        for name, value in fields.items():
            kind, *parts = name.split("\x1f")
            try:
                if kind == "s" and len(parts) == 4:
                    provider, operation, status, index = parts
                    key = (provider or None, operation or None, int(status) if status else None)
                    slot = counters.served.setdefault(key, [0.0] * width)
                    slot[int(index)] += value
                elif kind == "f" and len(parts) == 2:
                    pair = (parts[0], parts[1])
                    counters.faults[pair] = counters.faults.get(pair, 0) + int(value)
                elif kind == "l" and len(parts) == 1:
                    counters.limited[parts[0]] = counters.limited.get(parts[0], 0) + int(value)
                elif kind == "e" and len(parts) == 1:
                    errors = counters.store_errors
                    errors[parts[0]] = errors.get(parts[0], 0) + int(value)
            except (ValueError, IndexError):
                continue
        return counters

    def add(self, other: Counters) -> None:
        """Add ``other``'s counts to these (tenants summed as one)."""
        for key, slot in other.served.items():
            add_slot(self.served.setdefault(key, [0.0] * len(slot)), slot)
        add_counts(self.faults, other.faults)
        add_counts(self.limited, other.limited)
        add_counts(self.store_errors, other.store_errors)
