"""Worker targets for the supervisor's tests (tests/test_processes.py): spawned processes
import this module only, so they start fast. Each takes the pipe to its parent last."""

from __future__ import annotations

import os
from multiprocessing.connection import Connection


def refuse(pipe: Connection) -> None:
    """A worker that cannot listen: says why, and exits."""
    pipe.send(("failed", f"worker {os.getpid()}: cannot serve (a test)"))
    raise SystemExit(1)


def crash_after_listening(pipe: Connection) -> None:
    """A worker that listens, then dies at once (a crash loop)."""
    pipe.send(("ready", os.getpid()))
    os._exit(3)
