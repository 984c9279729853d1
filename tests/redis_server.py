"""A real Redis for the tests: Debian's ``redis-server`` on a free loopback port, in a
temporary directory, persisting nothing.

``RedisServer`` starts it (``start()``, waiting until it answers PING), stops it (``stop()``,
for outage tests) and starts it again on the same port, empty; ``url`` is its ``redis://``
URL, ``command(...)`` sends one command (plain RESP, no client library).

Two fixtures: ``redis_server``, a fresh, empty one for each test (in the test's ``tmp_path``:
about 0.1 s to start; a test may stop and start it, and sees no other test's keys), and
``redis_session``, one for the whole pytest process (each ``pytest-xdist`` worker has its
own), for tests that only need a Redis to exist: they ``flush()`` it or use a database of
their own (``url_for(db)``).

``redis-server`` missing is a failure naming how to install it, never a skip: ``make test``
installs it (as ``make bench`` installs wrk).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["RedisServer", "redis_server", "redis_session"]

START_SECONDS = 20.0  # until it answers PING
STOP_SECONDS = 10.0  # after SIGTERM, before SIGKILL
INSTALL = "apt-get install redis-server (Debian's package; `make test` installs it)"


def free_port() -> int:
    """A TCP port free on loopback now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ping(port: int, timeout: float = 1.0) -> bool:
    """Does a Redis on loopback ``port`` answer PING (plain RESP, no client library)?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith((b"+PONG", b"-NOAUTH"))  # up (a password: NOAUTH)
    except OSError:
        return False


def _resp(*args: str) -> bytes:
    """A command in RESP, as redis-cli sends it."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RedisServer:
    """One ``redis-server`` process of the tests' own (see the module's text)."""

    def __init__(
        self, directory: Path | None = None, port: int | None = None, password: str | None = None
    ) -> None:
        found = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(found).exists():
            pytest.fail(f"redis-server is not installed: {INSTALL}", pytrace=False)
        self.binary = found
        self.port = port or free_port()
        self._own_dir = directory is None
        self.dir = directory or Path(tempfile.mkdtemp(prefix="nanobanana-redis-"))
        self.password = password  # requirepass: the URL carries it, command() sends AUTH
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its URL, database 0 (the ``--store`` setting)."""
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers PING."""
        if self.running:
            return
        log = self.dir / "redis.log"
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str(log),
            *(("--requirepass", self.password) if self.password else ()),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + START_SECONDS
        while not ping(self.port):
            if self.process.poll() is not None:
                said = (self.process.stderr.read() if self.process.stderr else b"").decode()
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(
                    f"redis-server exited with code {self.process.returncode} on port "
                    f"{self.port}: {said.strip()} {tail.strip()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING within {START_SECONDS} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``STOP_SECONDS``): the store's outage."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_SECONDS)
        if process.stderr is not None:
            process.stderr.close()

    def command(self, *args: str) -> bytes:
        """One command over a plain socket (RESP), its raw answer (for small checks)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            if self.password:
                conn.sendall(_resp("AUTH", self.password))
                said = conn.recv(64)
                assert said.startswith(b"+OK"), said
            conn.sendall(_resp(*args))
            return conn.recv(1 << 20)

    def flush(self) -> None:
        """Empty every database (FLUSHALL): a clean store for the next test."""
        answer = self.command("FLUSHALL")
        assert answer.startswith(b"+OK"), answer

    def close(self) -> None:
        """Stop it (and remove its directory, if it made it)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty ``redis-server`` on a free loopback port for this test."""
    with RedisServer(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    """A running ``redis-server`` on a free loopback port for this pytest process."""
    with RedisServer() as server:
        yield server
