"""What one mock server holds: settings, clock, jobs, images, and the simulator that reads
them. Lives on the app, never global."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .config import MockConfig
from .engine.clock import VirtualClock
from .engine.images import ImageCache
from .engine.jobs import JobStore
from .engine.journal import Journal
from .engine.metrics import Counters
from .engine.quotas import Ledger, RateLimiter
from .engine.simulation import Simulator
from .faults.rules import FaultEngine

__all__ = ["STATE", "MockState"]


@dataclass(slots=True)
class MockState:
    """Everything a request may read or change; one per app, so two apps share nothing."""

    config: MockConfig
    clock: VirtualClock
    store: JobStore
    images: ImageCache
    journal: Journal
    faults: FaultEngine
    ledger: Ledger
    limiter: RateLimiter
    metrics: Counters  # what /_mock/metrics counts per request (a reset starts anew)
    violations: list[str] = field(default_factory=list)  # self-check failures, for tests
    _rngs: dict[str, random.Random] = field(default_factory=dict)
    sim: Simulator = field(init=False, repr=False)  # reads this state: a reset is seen at once

    def __post_init__(self) -> None:
        self.sim = Simulator(self)

    @classmethod
    def create(
        cls,
        config: MockConfig,
        clock: VirtualClock | None = None,
        images: ImageCache | None = None,
    ) -> MockState:
        """A fresh state; ``images`` shares another state's image cache (a tenant's)."""
        return cls(
            config=config,
            clock=clock or VirtualClock(speed=config.time_scale),
            images=images if images is not None else ImageCache(max_bytes=config.image_cache_bytes),
            **_fresh(config),
        )

    def reset(self, config: MockConfig) -> None:
        """Back to a fresh start under ``config``: no jobs, rules, quotas or journal; time 0."""
        self.config = config
        replaced = self.clock
        self.clock = VirtualClock(speed=config.time_scale, wall=replaced.wall)
        replaced.stop()  # its sleepers (a Segmind /v1 call, a latency fault) answer now
        self.images.clear()
        for name, value in _fresh(config).items():
            setattr(self, name, value)
        self._rngs.clear()

    def rng(self, stream: str) -> random.Random:
        """The random stream of one provider, derived from the one seed."""
        if stream not in self._rngs:
            self._rngs[stream] = random.Random(f"{self.config.seed}/{stream}")
        return self._rngs[stream]


def _fresh(config: MockConfig) -> dict[str, Any]:
    """What a start, and every reset, makes anew (the clock and image cache aside)."""
    return {
        "store": JobStore(
            workers=config.workers, max_jobs=config.max_jobs, max_bytes=config.max_job_bytes
        ),
        "journal": Journal(config.journal_size),
        "faults": FaultEngine(seed=config.seed),
        "ledger": Ledger(),
        "limiter": RateLimiter(),
        "metrics": Counters(),
    }


STATE = web.AppKey("mock_state", MockState)
