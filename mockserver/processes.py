"""``--processes N``: N worker processes serving one port, and the parent that supervises them.

Each worker is a whole mock (``create_app``) in a process of its own, started with
``multiprocessing``'s *spawn* (a fresh interpreter: no event loop, thread or lock is
inherited), listening on the same host and port with ``SO_REUSEPORT``, so the kernel spreads
new connections over the workers. They share no memory: everything a request can observe is
in the shared store (``--store redis://…``), which is why more than one process needs one.

The parent holds the port (a socket bound with ``SO_REUSEPORT`` but not listening: it gets no
connections, and nobody else can take the port while a worker restarts; ``--port 0`` picks
it here, so every worker binds the same one), prints one banner when every worker listens,
and then supervises:

- a worker that dies is started again (after 0.5 s, doubling up to 30 s while it keeps dying
  within ``STABLE_SECONDS`` of its start); one that failed ``MAX_QUICK_FAILURES`` times in a
  row that way is given up, and when none is left the parent exits 1;
- SIGINT and SIGTERM are passed on to the workers as SIGTERM; the parent exits when they have
  all exited (those still running after ``STOP_SECONDS`` are killed);
- a worker whose parent is gone (killed with SIGKILL) stops by itself: it watches its pipe to
  the parent, which closes when the parent dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = ["hold_port", "supervise"]

log = logging.getLogger("nanobanana_mock.processes")

START_SECONDS = 120.0  # a worker that does not listen within this (two cores, N imports)...
STOP_SECONDS = 30.0  # ...or does not stop within this after SIGTERM, is killed
STABLE_SECONDS = 10.0  # a worker that lived this long had started well: its failures reset
FIRST_DELAY = 0.5  # restart delays: 0.5 s, doubling up to MAX_DELAY
MAX_DELAY = 30.0
MAX_QUICK_FAILURES = 5  # quick deaths in a row before a worker is given up


def _say(message: str) -> None:
    print(f"nanobanana-mock[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def hold_port(host: str, port: int) -> tuple[socket.socket, int]:
    """A socket bound to ``host``:``port`` with ``SO_REUSEPORT`` (not listening), and its port:
    port 0 picks a free one. The port is first bound without ``SO_REUSEPORT``, so a port that
    anything else holds (another server, even one that shares its port) is refused here."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.bind(address)  # OSError: in use
        address = (address[0], probe.getsockname()[1], *address[2:])
    held = socket.socket(family, kind, proto)
    try:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind(address)
    except BaseException:
        held.close()
        raise
    return held, int(held.getsockname()[1])


@dataclasses.dataclass
class _Slot:
    """One of the N workers: its process, pipe, and its history of failures."""

    index: int
    process: BaseProcess | None = None
    pipe: Connection | None = None  # the parent's end; the worker says "ready" on it once
    listening: bool = False
    started: float = 0.0
    failures: int = 0  # quick failures in a row
    restart_at: float | None = None
    given_up: bool = False


class Supervisor:
    """Starts, watches and stops the worker processes (see the module's text)."""

    def __init__(self, target: Callable[..., None], args: Sequence[Any], processes: int) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.target = target
        self.args = tuple(args)
        self.slots = [_Slot(i) for i in range(processes)]
        self.stopping = False

    def _start(self, slot: _Slot) -> None:
        ours, theirs = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=self.target,
            args=(*self.args, theirs),
            name=f"nanobanana-mock worker {slot.index + 1}",
        )
        process.start()
        theirs.close()  # the worker's end lives in the worker only: its EOF is our death
        slot.process, slot.pipe, slot.listening = process, ours, False
        slot.started, slot.restart_at = time.monotonic(), None

    def pids(self) -> list[int]:
        return [s.process.pid for s in self.slots if s.process is not None and s.process.pid]

    def start_all(self) -> str | None:
        """Start every worker and wait until each listens; the first failure's message."""
        for slot in self.slots:
            self._start(slot)
        deadline = time.monotonic() + START_SECONDS
        for slot in self.slots:
            assert slot.pipe is not None
            while not slot.pipe.poll(0.2):
                if self.stopping:
                    return "stopped while starting"
                if time.monotonic() > deadline:
                    return f"worker {slot.index + 1} did not start within {START_SECONDS:g} s"
            problem = self._hear(slot)
            if problem:
                return problem
        return None

    def _hear(self, slot: _Slot) -> str | None:
        """Read a starting worker's word: None when it listens, else why it did not."""
        assert slot.pipe is not None
        try:
            word, detail = slot.pipe.recv()
        except (EOFError, OSError):
            code = slot.process.exitcode if slot.process else None
            word, detail = "failed", f"worker {slot.index + 1} exited while starting (code {code})"
        slot.listening = word == "ready"  # the pipe stays open: the worker sees our death
        return None if slot.listening else str(detail)

    def install_signals(self) -> Callable[[], None]:
        """SIGINT and SIGTERM stop the supervisor (they wake :meth:`run`); the undo."""
        wakeup_r, wakeup_w = os.pipe()
        os.set_blocking(wakeup_w, False)
        self.wakeup = wakeup_r
        old_fd = signal.set_wakeup_fd(wakeup_w)
        old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

        def undo() -> None:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            os.close(wakeup_r)
            os.close(wakeup_w)

        return undo

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        """Watch the workers until SIGINT or SIGTERM (then the caller stops them)."""
        while not self.stopping:
            now = time.monotonic()
            waits: list[Any] = [self.wakeup]
            timeout = 5.0
            for slot in self.slots:
                if slot.process is not None:
                    waits.append(slot.process.sentinel)
                if slot.pipe is not None and not slot.listening:
                    waits.append(slot.pipe)
                if slot.restart_at is not None:
                    timeout = min(timeout, max(0.0, slot.restart_at - now))
            if self.wakeup in wait(waits, timeout):
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wakeup, 512)
            for slot in self.slots:
                if not self.stopping and not slot.given_up:
                    self._check(slot)
            if all(slot.given_up for slot in self.slots):
                _say("every worker kept failing: stopping")
                return 1
        return 0

    def _check(self, slot: _Slot) -> None:
        """Restart a dead worker when its delay is over; note a restarted one listening."""
        process = slot.process
        if process is None:
            if slot.restart_at is not None and time.monotonic() >= slot.restart_at:
                self._start(slot)
            return
        if process.is_alive():
            if slot.pipe is not None and not slot.listening and slot.pipe.poll():
                problem = self._hear(slot)
                if problem is None:
                    _say(f"worker {slot.index + 1} (pid {process.pid}) restarted: listening")
                    return
                _say(problem)
                process.terminate()
                process.join(STOP_SECONDS)
            else:
                return
        lived = time.monotonic() - slot.started
        slot.failures = 1 if lived >= STABLE_SECONDS else slot.failures + 1
        if slot.pipe is not None:
            slot.pipe.close()
        slot.process, slot.pipe, slot.listening = None, None, False
        said = f"worker {slot.index + 1} (pid {process.pid}) exited with code {process.exitcode}"
        if slot.failures >= MAX_QUICK_FAILURES:
            slot.given_up = True
            _say(f"{said}, {slot.failures} times in a row soon after starting: not restarted")
            return
        delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (slot.failures - 1))
        slot.restart_at = time.monotonic() + delay
        _say(f"{said}: restarting it in {delay:g} s")

    def stop(self) -> None:
        """SIGTERM to every worker; wait for them (killing those that stay too long)."""
        self.stopping = True
        running = [s.process for s in self.slots if s.process is not None]
        for process in running:
            if process.is_alive() and process.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                _say(f"worker pid {process.pid} did not stop within {STOP_SECONDS:g} s: killed")
                process.kill()
                process.join(STOP_SECONDS)
        for slot in self.slots:
            if slot.pipe is not None:
                slot.pipe.close()
            slot.process, slot.pipe = None, None


def supervise(
    target: Callable[..., None],
    args: Sequence[Any],
    processes: int,
    announce: Callable[[list[int]], None],
) -> int:
    """Run ``processes`` workers (``target(*args, pipe)``), ``announce`` their pids once all
    listen, then supervise them until SIGINT or SIGTERM, and stop them. The exit code."""
    supervisor = Supervisor(target, args, processes)
    undo = supervisor.install_signals()
    try:
        problem = supervisor.start_all()
        if problem is not None:
            if supervisor.stopping:
                return 0
            print(f"nanobanana-mock: {problem}", file=sys.stderr)
            return 1
        announce(supervisor.pids())
        return supervisor.run()
    finally:
        supervisor.stop()
        undo()


async def watch_parent(pipe: Connection, stop: asyncio.Event) -> None:
    """In a worker: set ``stop`` when the parent's end of ``pipe`` closes (the parent died)."""
    loop = asyncio.get_running_loop()
    loop.add_reader(pipe.fileno(), stop.set)
