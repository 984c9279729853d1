"""The virtual clock: the only source of time for jobs.

Virtual time runs at ``speed`` virtual seconds per wall second (0 freezes it, which is what
tests use) and jumps forward on :meth:`VirtualClock.advance`. Nothing in the mock reads the
wall clock directly, so a test controls every delay, queue wait and expiry.

The one way back to wall time is for headers a client sleeps on (``Retry-After``, Segmind's
``x-rate-limit-reset-at-utc``): :meth:`VirtualClock.wall_wait` turns a virtual wait into the
wall seconds it lasts at the current speed, or, on a frozen clock, which wall time never
moves, into the virtual seconds a test must advance.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["MAX_SPEED", "MAX_TIME", "ClockStopped", "VirtualClock", "finite_or_inf", "utc_stamp"]

# Virtual time never passes 1e10 s (about 317 years): far beyond any test, while every time
# derived from it (expiry) stays a finite float and a valid date. A wait told to a client
# (Retry-After, reset-at) is bounded by it too, however slow the clock runs.
MAX_TIME = 1e10
# The fastest the clock may run (virtual seconds per wall second): 28 hours of wall time to
# reach MAX_TIME. settings.json bounds time_scale by the same number.
MAX_SPEED = 1e5

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_SECOND = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH).total_seconds()


class ClockStopped(Exception):
    """The clock a coroutine slept on was stopped (the mock was reset): its deadline, in the
    time of a world that no longer exists, will never come."""


class VirtualClock:
    """Monotonic virtual time, advanced by hand or running at a fixed speed."""

    def __init__(self, speed: float = 0.0, wall: Callable[[], float] = time.monotonic) -> None:
        _check_speed(speed)
        self._wall = wall
        self._speed = speed
        self._base = 0.0
        self._wall_base = wall()
        self._changed: asyncio.Event | None = None
        self._moves = 0  # moves so far (advances, speed changes, the stop): see wait_change
        self._sleepers = 0
        self._sleepers_changed: asyncio.Event | None = None
        self._stopped = False

    def __getstate__(self) -> dict[str, object]:
        """Picklable (a shared store's snapshot): without its sleepers, which belong to the
        process that holds the clock; the wall function is kept (a module-level one)."""
        state = dict(self.__dict__)
        state.update(_changed=None, _sleepers=0, _sleepers_changed=None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)

    @property
    def wall(self) -> Callable[[], float]:
        """The wall-clock function the clock runs on (a reset's new clock keeps it)."""
        return self._wall

    def wall_wait(self, virtual: float) -> float:
        """How long a client must wait for ``virtual`` more seconds of virtual time to pass:
        wall seconds at the current speed (``virtual / speed``); on a frozen clock, which
        wall time never moves, the virtual seconds themselves (what a test must advance).

        Total: a negative or NaN wait is 0, and no wait exceeds :data:`MAX_TIME`."""
        if not virtual > 0:  # negative, or NaN
            return 0.0
        wall = virtual / self._speed if self._speed > 0 else virtual
        return min(wall, MAX_TIME)

    def retry_after(self, virtual: float) -> int:
        """``Retry-After`` delta-seconds (RFC 9110: an integer) for a wait of ``virtual``
        seconds: :meth:`wall_wait` rounded up, so sleeping that long always finds it over."""
        return math.ceil(self.wall_wait(virtual))

    def reset_at(self, virtual: float) -> str:
        """The wall-clock instant a wait of ``virtual`` seconds ends, as an ISO 8601 UTC
        timestamp rounded up to the second (never before the true end): now plus
        :meth:`wall_wait`, whatever date the virtual clock has been moved to.

        Total, as :func:`utc_stamp` is."""
        return utc_stamp(math.ceil(time.time() + self.wall_wait(virtual)))

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
        seconds = finite_or_inf(seconds)
        if not seconds >= 0:
            raise ValueError("the clock only moves forward: seconds must be >= 0")
        if not self.now() + seconds <= MAX_TIME:  # NaN and infinity fail this too
            raise ValueError(
                f"virtual time may not pass {MAX_TIME:g} s (now {self.now():g}, "
                f"asked to advance {seconds:g})"
            )
        self._base += seconds
        self._wake()
        return self.now()

    def advance_to(self, when: float) -> float:
        """Jump forward to ``when``, reading the time once: on a running clock, "now" taken
        twice would have moved between the two reads, and a move to the maximum time would be
        refused by the few microseconds that passed."""
        now = self.now()
        if not when >= now:  # NaN fails this too
            raise ValueError(f"the clock only moves forward (now {now:g})")
        if not when <= MAX_TIME:
            raise ValueError(f"virtual time may not pass {MAX_TIME:g} s (asked to go to {when:g})")
        self._base += when - now
        self._wake()
        return self.now()

    def run_on(self, wall: Callable[[], float]) -> None:
        """Run on another wall-clock function from now on, without a jump in virtual time."""
        self._base = self.now()
        self._wall = wall
        self._wall_base = wall()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on, without a jump in virtual time."""
        _check_speed(speed)
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
                await self._next_move(remaining)
        finally:
            self._count_sleeper(-1)

    @property
    def moves(self) -> int:
        """How many times the clock was moved by hand (advanced, its speed set) or stopped."""
        return self._moves

    async def wait_change(self, moves: int, deadline: float) -> None:
        """Return once the clock has moved since it had made ``moves`` moves (at once if it
        has already) or virtual time reaches ``deadline``, whichever is first; raises
        :class:`ClockStopped` if the clock is stopped. A sleeper meanwhile, as in
        :meth:`sleep_until` (a shared store brings a copy with sleepers up to date when
        another process moves its clock)."""
        if self._stopped:
            raise ClockStopped("the mock was reset while this request waited")
        remaining = deadline - self.now()
        if moves != self._moves or not remaining > 0:
            return
        self._count_sleeper(+1)
        try:
            await self._next_move(remaining)
            if self._stopped:
                raise ClockStopped("the mock was reset while this request waited")
        finally:
            self._count_sleeper(-1)

    async def _next_move(self, remaining: float) -> None:
        """Wait for the clock's next move, or ``remaining`` virtual seconds at its speed."""
        if self._changed is None:
            self._changed = asyncio.Event()
        timeout = remaining / self._speed if self._speed > 0 else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Return once at least ``count`` coroutines sleep on this clock (a test helper)."""
        while self._sleepers < count:
            if self._sleepers_changed is None:
                self._sleepers_changed = asyncio.Event()
            await self._sleepers_changed.wait()

    def _wake(self) -> None:
        self._moves += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _count_sleeper(self, delta: int) -> None:
        self._sleepers += delta
        if self._sleepers_changed is not None:
            self._sleepers_changed.set()
            self._sleepers_changed = None


def utc_stamp(seconds: float) -> str:
    """Unix ``seconds`` as an ISO 8601 UTC timestamp to the second (``...T12:00:05Z``).

    Total: an instant past what a timestamp can say is the last second of year 9999, one
    before 1970 (or not a number) is the epoch."""
    if not seconds > 0:  # negative, or NaN
        seconds = 0.0
    return (_EPOCH + timedelta(seconds=min(seconds, _LAST_SECOND))).strftime("%Y-%m-%dT%H:%M:%SZ")


def finite_or_inf(value: float) -> float:
    """``value`` as a float; an integer too large for one is infinity (refused by bounds)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _check_speed(speed: float) -> None:
    speed = finite_or_inf(speed)
    if not 0 <= speed <= MAX_SPEED:  # NaN fails this too
        raise ValueError(f"clock speed must be a number in 0..{MAX_SPEED:g}")
