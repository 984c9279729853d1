"""``GET /_mock/metrics``: the Prometheus text format, written by ``prometheus_client``.

Nothing here runs per request: the pipeline counts in plain numbers (``engine/metrics.py``);
a scrape reads them, with the jobs, lanes and credits of each tenant's state at its virtual
``now``, into metric families of a registry made for the scrape. Under ``/t/{tenant}/`` only
that tenant; unprefixed, every tenant (label ``tenant``, ``""`` the default one), the
:data:`MAX_TENANT_LABELS` most recently used by name and the rest summed as ``_other``.

With a shared store, a tenant's per-request counts are every process's (``store/metrics.py``);
jobs, lanes and credits come from this process's copy, brought up to date first; the named
tenants listed are every process's (a tenant without a copy here shows its counts only: a
scrape makes no copy). Store errors are each process's own: a process counts the ones it
answered, and ships them once the store is back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from nanobanana_mock.schemas.lifecycle import EXPIRED, STATES

from ..engine.metrics import BOUNDS, OTHER, Counters, Key, add_counts, add_slot
from ..names import PROVIDERS
from ..store.tenant import Tenant, current
from ..store.tenants import TENANTS, Tenants

__all__ = ["CONTENT_TYPE", "MAX_TENANT_LABELS", "forget", "get_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_TENANT_LABELS = 50  # tenants shown by name in an unprefixed scrape; the rest: _other
PREFIX = "nanobanana_mock_"


@dataclass
class View:
    """What a scrape shows of one tenant (or of several summed: ``_other``)."""

    name: str
    counters: Counters
    dropped: int = 0
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (provider, state)
    workers: dict[str, int] = field(default_factory=dict)
    charged: dict[str, float] = field(default_factory=dict)
    waiting: int = 0  # requests waiting on the clock in this process (calls, streams)

    def add(self, other: View) -> None:
        self.counters.add(other.counters)
        self.dropped += other.dropped
        self.waiting += other.waiting
        add_counts(self.jobs, other.jobs)
        add_counts(self.workers, other.workers)
        add_counts(self.charged, other.charged)


async def view(tenant: Tenant) -> View:
    """A tenant's counts and its state's jobs, lanes and credits, at its virtual now."""
    state = tenant.state
    if tenant.remote:
        from ..store.metrics import fetch

        counters, dropped = await fetch(tenant)  # type: ignore[arg-type]
    else:
        counters, dropped = state.metrics, state.journal.dropped
    shown = View(tenant.name, counters, dropped, waiting=state.clock.sleepers)
    now = state.clock.now()
    for provider in PROVIDERS:
        for name in STATES:
            shown.jobs[(provider, name)] = 0
        shown.jobs[(provider, EXPIRED)] = 0
        shown.workers[provider] = state.config.workers
        shown.charged[provider] = 0.0
    for job in state.store.jobs():
        name = EXPIRED if now >= job.expires_at else str(job.state(now))
        slot = (job.provider, name)
        shown.jobs[slot] = shown.jobs.get(slot, 0) + 1
    for provider, cost in getattr(state.store, "charged", {}).items():
        shown.charged[provider] = shown.charged.get(provider, 0.0) + cost
    return shown


async def views(here: Tenant, tenants: Tenants) -> list[View]:
    """The views a scrape shows: ``here`` alone under a prefix; else the default tenant,
    the most recently used named ones, and the rest summed as ``_other``. With a shared
    store, the named tenants are every process's: one this process holds no copy of shows
    its counts (from the store), not its jobs, lanes or credits."""
    if here.name:
        return [await view(here)]
    everyone: list[Tenant | str] = list(tenants.named())  # (bounded: max_tenants)
    if here.remote:
        from ..store.metrics import recent

        held = {t.name for t in everyone if isinstance(t, Tenant)}
        names = await recent(tenants, MAX_TENANT_LABELS + 1)  # type: ignore[arg-type]
        everyone = [*(n for n in names if n not in held), *everyone]
        order = {name: i for i, name in enumerate(names)}
        everyone.sort(key=lambda t: order.get(_name(t), len(order)))  # (stable)
    # a tenant named _other itself is summed with the rest: no two series alike
    listed = [t for t in everyone if _name(t) != OTHER][:MAX_TENANT_LABELS]
    shown = [await view(here)]
    shown += [await _view(t, tenants) for t in listed]
    kept = {id(t) for t in listed}
    other: View | None = None
    for tenant in everyone:
        if id(tenant) not in kept:
            if other is None:
                other = View(OTHER, Counters())
            other.add(await _view(tenant, tenants))
    if other is not None:
        shown.append(other)
    return shown


def _name(tenant: Tenant | str) -> str:
    return tenant if isinstance(tenant, str) else tenant.name


async def _view(tenant: Tenant | str, tenants: Tenants) -> View:
    """A held tenant's view, its copy up to date (a shared store: the control plane syncs
    only the tenant it serves); a name's, from the shared store alone."""
    if isinstance(tenant, str):
        from ..store.metrics import fetch_named

        size = tenants.default.state.config.journal_size
        counters, dropped = await fetch_named(tenants, tenant, size)  # type: ignore[arg-type]
        return View(tenant, counters, dropped)
    if tenant.remote:
        await tenant.sync()
    return await view(tenant)


# the families a scrape writes, in this order: name, type, help, labels after "tenant"
FAMILIES: tuple[tuple[str, Callable[..., Any], str, tuple[str, ...]], ...] = (
    (
        "requests",
        CounterMetricFamily,
        "Provider requests answered, by provider, operation and status "
        '(status "none": a transport fault sent nothing).',
        ("provider", "operation", "status"),
    ),
    (
        "request_duration_seconds",
        HistogramMetricFamily,
        "Wall-clock seconds the mock spent serving a provider request.",
        ("provider", "operation"),
    ),
    (
        "faults_fired",
        CounterMetricFamily,
        'Fault rules fired, by rule id ("prompt": a prompt marker) and effect.',
        ("rule", "effect"),
    ),
    (
        "rate_limited",
        CounterMetricFamily,
        "429 answers the rate limiter gave, by provider.",
        ("provider",),
    ),
    (
        "store_errors",
        CounterMetricFamily,
        "Provider requests answered 503 because the shared store could not be reached "
        "(counted by the process that answered).",
        ("provider",),
    ),
    (
        "journal_dropped",
        CounterMetricFamily,
        "Journal entries dropped (the oldest, beyond journal_size).",
        (),
    ),
    (
        "credits_charged",
        CounterMetricFamily,
        "Credits charged for accepted jobs, in the ledger's unit (the model's price).",
        ("provider",),
    ),
    (
        "jobs",
        GaugeMetricFamily,
        "Jobs held, by provider and state at the virtual now (EXPIRED: past retention).",
        ("provider", "state"),
    ),
    (
        "queue_depth",
        GaugeMetricFamily,
        "Jobs waiting for a worker, per provider lane.",
        ("provider",),
    ),
    (
        "workers_busy",
        GaugeMetricFamily,
        "Workers processing a job, per provider lane.",
        ("provider",),
    ),
    (
        "workers",
        GaugeMetricFamily,
        "Workers per provider lane (the workers setting).",
        ("provider",),
    ),
    (
        "waiting_requests",
        GaugeMetricFamily,
        "Provider requests waiting on the virtual clock in this process now: blocking calls "
        "and status streams.",
        (),
    ),
)


def families(shown: list[View]) -> Iterator[Metric]:
    """The metric families of the views (every label bounded; no key, request or job id)."""
    made: dict[str, Any] = {
        name: kind(PREFIX + name, text, labels=["tenant", *labels])
        for name, kind, text, labels in FAMILIES
    }
    for v in shown:
        t = v.name
        _requests(made["requests"], made["request_duration_seconds"], t, v.counters.served)
        for name, table in (
            ("faults_fired", v.counters.faults),
            ("rate_limited", v.counters.limited),
            ("store_errors", v.counters.store_errors),
            ("journal_dropped", {(): v.dropped}),
            ("credits_charged", v.charged),
            ("jobs", v.jobs),
            ("queue_depth", _in_state(v.jobs, "QUEUED")),
            ("workers_busy", _in_state(v.jobs, "RUNNING")),
            ("workers", v.workers),
            ("waiting_requests", {(): v.waiting}),
        ):
            for labels, n in sorted(table.items()):
                made[name].add_metric([t, *_labels(labels)], n)
    yield from made.values()


def _in_state(jobs: dict[tuple[str, str], int], state: str) -> dict[str, int]:
    """Jobs in ``state`` per provider: a lane's queue (QUEUED) or its busy workers (RUNNING)."""
    return {provider: n for (provider, name), n in jobs.items() if name == state}


def _labels(key: str | Sequence[str]) -> Sequence[str]:
    """A table's key as label values (a provider of ``""``: ``"none"``, as in requests)."""
    return (key or "none",) if isinstance(key, str) else key


def _requests(
    requests: CounterMetricFamily,
    latency: HistogramMetricFamily,
    t: str,
    served: dict[Key, list[float]],
) -> None:
    """A view's request counts, and their latency histogram per (provider, operation)."""
    by_operation: dict[tuple[str, str], list[float]] = {}
    for (provider, operation, status), slot in sorted(served.items(), key=_order):
        p, o = provider or "none", operation or "none"
        s = "none" if status is None else str(status)
        requests.add_metric([t, p, o, s], sum(slot[1:]))
        add_slot(by_operation.setdefault((p, o), [0.0] * len(slot)), slot)
    for (p, o), slot in sorted(by_operation.items()):
        cumulative, buckets = 0.0, []
        for bound, n in zip((*BOUNDS, float("inf")), slot[1:], strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        latency.add_metric([t, p, o], buckets, slot[0])


def _order(item: tuple[tuple[str | None, str | None, int | None], list[float]]) -> tuple[str, ...]:
    provider, operation, status = item[0]
    return (provider or "", operation or "", "" if status is None else f"{status:03d}")


class _Scrape(Collector):
    """The families of one scrape, for a registry made for it."""

    def __init__(self, shown: list[View]) -> None:
        self.shown = shown

    def collect(self) -> Iterable[Metric]:
        return families(self.shown)


def exposition(shown: list[View]) -> bytes:
    """The views in the Prometheus text format (0.0.4)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(shown))
    return generate_latest(registry)


async def get_metrics(request: web.Request) -> web.Response:
    """Every metric of this tenant (under ``/t/{tenant}/``) or of every tenant."""
    here = current()
    shown = await views(here, request.app[TENANTS])
    return web.Response(body=exposition(shown), headers={"Content-Type": CONTENT_TYPE})


async def forget(tenant: Tenant) -> None:
    """A reset: a shared store forgets the tenant's summed counts (each copy's counters
    start anew as it applies the reset)."""
    if tenant.remote:
        from ..store.metrics import clear

        await clear(tenant)  # type: ignore[arg-type]
