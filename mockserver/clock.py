"""The virtual clock: the only source of time for jobs.

Virtual time runs at ``speed`` virtual seconds per wall second (0 freezes it, which is what
tests use) and jumps forward on :meth:`VirtualClock.advance`. Nothing in the mock reads the
wall clock directly, so a test controls every delay, queue wait and expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["ClockStopped", "VirtualClock"]


class ClockStopped(Exception):
    """The clock a coroutine slept on was stopped (the mock was reset): its deadline, in the
    time of a world that no longer exists, will never come."""


class VirtualClock:
    """Monotonic virtual time, advanced by hand or running at a fixed speed."""

    def __init__(self, speed: float = 0.0, wall: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise ValueError("clock speed must be >= 0")
        self._wall = wall
        self._speed = speed
        self._base = 0.0
        self._wall_base = wall()
        self._changed: asyncio.Event | None = None
        self._sleepers = 0
        self._sleepers_changed: asyncio.Event | None = None
        self._stopped = False
        self.epoch = time.time()  # the wall-clock UTC instant that virtual time 0 stands for

    def utc(self, t: float) -> str:
        """Virtual time ``t`` as an ISO 8601 UTC timestamp (for headers such as reset-at)."""
        return datetime.fromtimestamp(self.epoch + t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def speed(self) -> float:
        """Virtual seconds that pass per wall second (0: frozen, only :meth:`advance` moves it)."""
        return self._speed

    @property
    def sleepers(self) -> int:
        """How many coroutines are waiting in :meth:`sleep_until` right now."""
        return self._sleepers

    def now(self) -> float:
        """Virtual seconds since the clock was made."""
        if self._speed == 0.0:
            return self._base
        return self._base + (self._wall() - self._wall_base) * self._speed

    def advance(self, seconds: float) -> float:
        """Jump forward by ``seconds`` (>= 0) and wake every sleeper; returns the new time."""
        if not seconds >= 0:
            raise ValueError("the clock only moves forward: seconds must be >= 0")
        self._base += seconds
        self._wake()
        return self.now()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on, without a jump in virtual time."""
        if not speed >= 0:
            raise ValueError("clock speed must be >= 0")
        self._base = self.now()
        self._wall_base = self._wall()
        self._speed = speed
        self._wake()

    @property
    def stopped(self) -> bool:
        """The clock was replaced (a reset): its sleepers were woken with ClockStopped."""
        return self._stopped

    def stop(self) -> None:
        """Retire this clock: every sleeper wakes at once and raises :class:`ClockStopped`,
        and so does every later :meth:`sleep_until` (the mock's reset does this to the clock
        it replaces, so no call waits for a time that will never come)."""
        self._stopped = True
        self._wake()

    async def sleep_until(self, deadline: float) -> None:
        """Return once virtual time reaches ``deadline``; raises :class:`ClockStopped` if the
        clock is stopped first."""
        self._count_sleeper(+1)
        try:
            while (remaining := deadline - self.now()) > 0:
                if self._stopped:
                    raise ClockStopped("the mock was reset while this request waited")
                if self._changed is None:
                    self._changed = asyncio.Event()
                changed = self._changed
                timeout = remaining / self._speed if self._speed > 0 else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout)
        finally:
            self._count_sleeper(-1)

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Return once at least ``count`` coroutines sleep on this clock (a test helper)."""
        while self._sleepers < count:
            if self._sleepers_changed is None:
                self._sleepers_changed = asyncio.Event()
            await self._sleepers_changed.wait()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _count_sleeper(self, delta: int) -> None:
        self._sleepers += delta
        if self._sleepers_changed is not None:
            self._sleepers_changed.set()
            self._sleepers_changed = None
