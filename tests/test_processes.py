"""Deployment: the ``store`` setting, and ``--processes N`` (N workers on one port with
SO_REUSEPORT under a supervising parent), run as a user runs them: ``python -m
nanobanana_mock`` in a subprocess, over real sockets, against a real ``redis-server``.

Waiting here is on processes (start, restart, stop), bounded, never on a job: jobs move on
the virtual clock.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.config import ConfigError, MockConfig, redacted_store
from tests.harness import KEYS, Mock, mock_refuses, schema_for, validate
from tests.redis_server import RedisServer

START_SECONDS = 120.0  # two spawned workers import the mock on a busy 2-core machine
SECRET = "hunter2-pa55"


def _redis_store_landed() -> bool:
    """Is the Redis store (``mockserver/store/redis.py``, ``make_tenants``) on this branch?
    Until it is, a ``redis://`` store is accepted but each process keeps its own state."""
    import importlib.util

    from nanobanana_mock.store import tenants

    redis = importlib.util.find_spec("nanobanana_mock.store.redis")
    return redis is not None and hasattr(tenants, "make_tenants")


needs_redis_store = pytest.mark.skipif(
    not _redis_store_landed(),
    reason="waits for RedisTenants (mockserver/store/redis.py): make_tenants imports it for "
    "a redis:// store",
)


# --- the settings -----------------------------------------------------------------------


def test_more_than_one_process_needs_a_shared_store() -> None:
    said = mock_refuses("--processes", "2")
    assert said.count("\n") == 1 and "shared store" in said and "--store" in said, said
    said = mock_refuses("--processes", "2", "--store", "memory")
    assert "shared store" in said


@pytest.mark.parametrize("n", ["0", "65", "-1", "two", "1.5"])
def test_processes_is_bounded(n: str) -> None:
    said = mock_refuses("--processes", n, "--store", "redis://127.0.0.1:6379/0")
    assert said.count("\n") == 1 and "processes" in said, said


def test_processes_and_store_come_from_the_environment_too() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nanobanana_mock", "--port", "0"],
        env={**os.environ, "MOCK_PROCESSES": "3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "shared store" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@127.0.0.1:6379/x",  # a database that is no number
        f"redis://user:{SECRET}@127.0.0.1:6379/70000",  # too big
        f"redis://{SECRET}@127.0.0.1:99999/0",  # a port out of range
        f"http://user:{SECRET}@127.0.0.1:6379/0",  # no store scheme
        f"redis://127.0.0.1:6379/0?password={SECRET}",  # options are not taken
        f"redis://127.0.0.1:6379/0#{SECRET}",
        f"unix:///tmp/redis.sock?db=1&password={SECRET}",
        "redis:///0",  # no host
        "unix://",  # no path
        "redis://127.0.0.1:0/0",
        "mem",
        "",
        f"redis://:{SECRET}@h/" + "0" * 3000,  # too long for the schema
    ],
)
def test_a_bad_store_is_one_line_naming_the_setting_without_its_password(url: str) -> None:
    said = mock_refuses("--store", url)
    assert said.count("\n") == 1 and "store" in said and "Traceback" not in said, said
    assert SECRET not in said
    with pytest.raises(ConfigError) as refused:
        MockConfig(store=url)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("memory", "memory"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (f"redis://:{SECRET}@10.0.0.5:6380/2", "redis://:***@10.0.0.5:6380/2"),
        (f"rediss://mock:{SECRET}@redis.internal/1", "rediss://mock:***@redis.internal/1"),
        (f"redis://{SECRET}@h", "redis://***@h"),  # a lone name may be a password
        ("unix:///run/redis/redis.sock?db=3", "unix:///run/redis/redis.sock?db=3"),
        ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
    ],
)
def test_a_good_store_is_taken_and_shown_without_its_password(url: str, shown: str) -> None:
    config = MockConfig(store=url)
    assert redacted_store(url) == shown
    public = config.public()
    assert public["store"] == shown and SECRET not in json.dumps(public)
    errors = list(schemas.validator("mock", "control/settings").iter_errors(public))
    assert not errors, errors


async def test_a_reset_cannot_change_the_store_or_the_processes(mock: Mock) -> None:
    for settings in ({"store": "redis://127.0.0.1:6379/0"}, {"processes": 2}):
        resp = await mock.client.post("/_mock/reset", json={"settings": settings})
        body = await resp.json()
        assert resp.status == 400 and "start-up" in body["error"], body
        assert next(iter(settings)) in body["error"]


async def test_health_says_which_process_answered(mock: Mock) -> None:
    resp = await mock.client.get("/_mock/health")
    body = await resp.json()
    assert body["pid"] == os.getpid()
    assert not list(schemas.validator("mock", "control/health").iter_errors(body))


def test_help_names_both_settings() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nanobanana_mock", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = " ".join(proc.stdout.split())
    assert "--store STORE" in text and "MOCK_STORE" in text and "default memory" in text
    assert "--processes PROCESSES" in text and "MOCK_PROCESSES" in text and "default 1" in text


# --- processes ----------------------------------------------------------------------------


@dataclass
class Deployment:
    """A running ``python -m nanobanana_mock --processes N``: its parent process, base URL,
    the worker pids its banner named, and the file its stderr goes to."""

    parent: subprocess.Popen[str]
    base: str
    port: int
    pids: list[int]
    banner: str
    stderr: Path

    def get(self, path: str) -> tuple[int, Any]:
        """One request on a new connection (the kernel picks the process)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def health(self) -> dict[str, Any]:
        status, body = self.get("/_mock/health")
        assert status == 200, body
        errors = list(schemas.validator("mock", "control/health").iter_errors(body))
        assert not errors, errors
        return dict(body)

    def answering(self, tries: int = 200) -> set[int]:
        """The pids that answer health over ``tries`` new connections."""
        return {self.health()["pid"] for _ in range(tries)}

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


def alive(pid: int) -> bool:
    """Has process ``pid`` not exited yet: is any of its threads still there and not a zombie?

    The whole thread group, not the main thread alone: after a SIGKILL the main thread may be
    a zombie already while another thread is still exiting, and the files (the listening
    socket among them) are closed only when the last thread exits. Until then the kernel
    still gives that socket its share of new connections, and resets them when it closes."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for thread in threads:
        try:
            stat = Path(f"/proc/{pid}/task/{thread}/stat").read_text()
        except OSError:
            continue  # that thread is gone
        if stat.rpartition(")")[2].split()[0] not in ("Z", "X"):
            return True
    return False


def wait_until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        time.sleep(0.1)


@contextmanager
def deployment(tmp_path: Path, store: str, processes: int = 2, *args: str) -> Iterator[Deployment]:
    """Start the mock with ``--processes`` on a free port; stop it (SIGTERM) on the way out."""
    stderr = tmp_path / f"mock-{time.monotonic_ns()}.log"
    command = [
        sys.executable, "-m", "nanobanana_mock", "--port", "0", "--time-scale", "0",
        "--processes", str(processes), "--store", store, *args,
    ]  # fmt: skip
    with stderr.open("w") as err:
        parent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert parent.stdout is not None
        lines = []
        deadline = time.monotonic() + START_SECONDS
        while not lines or not lines[-1].startswith("  curl"):
            line = parent.stdout.readline()
            assert line, f"the mock did not start: {''.join(lines)}{stderr.read_text()[-3000:]}"
            lines.append(line)
            assert time.monotonic() < deadline, "no banner"
        banner = "".join(lines)
        found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", lines[0])
        named = re.search(r"processes (\d+) on one port \(pids ([\d, ]+);", banner)
        assert found and named, banner
        pids = [int(p) for p in named.group(2).split(", ")]
        port = int(found.group(1))
        yield Deployment(parent, f"http://127.0.0.1:{port}", port, pids, banner, stderr)
    finally:
        if parent.poll() is None:
            parent.terminate()
            try:
                parent.wait(60)
            except subprocess.TimeoutExpired:
                parent.kill()
                parent.wait(30)
        if parent.stdout is not None:
            parent.stdout.close()


@needs_redis_store
def test_two_processes_serve_one_port(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    with (
        RedisServer(tmp_path / "redis", password=SECRET) as redis,  # never shown
        deployment(tmp_path, redis.url) as mock,
    ):
        assert len(mock.pids) == 2 and mock.parent.pid not in mock.pids
        assert f"store    redis://:***@127.0.0.1:{redis.port}/0" in mock.banner
        assert mock.banner.count("serving on") == 1  # one banner, from the parent
        assert mock.answering() == set(mock.pids)
        # both serve the providers: a submit answered by each (a new connection each time)
        served_by = set()
        for _ in range(60):
            conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=30)
            conn.request("GET", "/_mock/health")
            pid = json.loads(conn.getresponse().read())["pid"]
            body = json.dumps({"prompt": "a banana"})
            headers = {**KEYS["segmind"], "Content-Type": "application/json"}
            conn.request("POST", "/v2/nano-banana", body=body, headers=headers)
            resp = conn.getresponse()
            answer = json.loads(resp.read())
            conn.close()
            assert resp.status == 200, answer
            validate("segmind", schema_for("segmind", "submit", 200), answer)
            served_by.add(pid)
            if served_by == set(mock.pids):
                break
        assert served_by == set(mock.pids)
    log = mock.log()
    assert SECRET not in log + mock.banner
    access = re.findall(r"^\S+ \S+ (\d+) aiohttp\.access ", log, re.MULTILINE)
    assert set(map(int, access)) == set(mock.pids), log[-2000:]  # each line names its process


@needs_redis_store
def test_a_killed_worker_is_restarted_and_the_other_serves_meanwhile(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with deployment(tmp_path, redis_server.url) as mock:
        killed, kept = mock.pids
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: not alive(killed), 30, "the killed worker is gone")
        assert mock.answering(50) == {kept}  # no refused connection, no error
        wait_until(lambda: len(mock.answering(20)) == 2, START_SECONDS, "a new worker answers")
        (new,) = mock.answering(100) - {kept}
        assert new != killed and alive(new)
        said = mock.log()
        assert f"pid {killed}) exited with code -9: restarting it" in said, said
        assert f"(pid {new}) restarted: listening" in said, said
        assert mock.parent.poll() is None


@needs_redis_store
def test_sigterm_to_the_parent_stops_every_worker(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with deployment(tmp_path, redis_server.url) as mock:
        mock.health()
        mock.parent.send_signal(signal.SIGTERM)
        assert mock.parent.wait(60) == 0
        for pid in mock.pids:
            wait_until(lambda pid=pid: not alive(pid), 30, f"worker {pid} stopped")
        with pytest.raises(OSError):
            mock.get("/_mock/health")


@needs_redis_store
def test_workers_stop_by_themselves_when_the_parent_is_killed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with deployment(tmp_path, redis_server.url) as mock:
        mock.parent.kill()
        mock.parent.wait(30)
        for pid in mock.pids:
            wait_until(lambda pid=pid: not alive(pid), 60, f"orphaned worker {pid} stopped")


@needs_redis_store
def test_a_taken_port_is_one_line_and_exit_1(redis_server: RedisServer) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "nanobanana_mock", "--port", str(port),
             "--processes", "2", "--store", redis_server.url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in proc.stderr


@needs_redis_store
def test_a_job_submitted_to_one_process_is_read_on_the_other(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """With the shared store, a job lives in Redis: whichever process a poll reaches knows it
    (the Redis store's own suite drives every route this way)."""
    redis_server.flush()
    with deployment(tmp_path, redis_server.url) as mock:
        conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=30)
        headers = {**KEYS["segmind"], "Content-Type": "application/json"}
        conn.request("POST", "/v2/nano-banana", body='{"prompt": "a banana"}', headers=headers)
        job = json.loads(conn.getresponse().read())
        conn.close()
        validate("segmind", schema_for("segmind", "submit", 200), job)
        seen = {}
        for _ in range(100):
            conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=30)
            conn.request("GET", "/_mock/health")
            pid = json.loads(conn.getresponse().read())["pid"]
            conn.request("GET", f"/v2/requests/{job['request_id']}/status", headers=headers)
            resp = conn.getresponse()
            seen[pid] = (resp.status, json.loads(resp.read()))
            validate("segmind", schema_for("segmind", "status", resp.status), seen[pid][1])
            conn.close()
            if len(seen) == 2:
                break
        assert set(seen) == set(mock.pids)
        assert all(status == 200 for status, _ in seen.values()), seen


# --- the supervisor alone (tiny workers: tests/process_targets.py) --------------------------


def test_a_worker_that_cannot_start_stops_the_others_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from nanobanana_mock.processes import supervise
    from tests import process_targets

    announced: list[list[int]] = []
    assert supervise(process_targets.refuse, (), 2, announced.append) == 1
    assert announced == [] and "cannot serve (a test)" in capsys.readouterr().err


def test_a_worker_that_keeps_dying_at_once_is_given_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nanobanana_mock import processes
    from tests import process_targets

    monkeypatch.setattr(processes, "FIRST_DELAY", 0.01)
    monkeypatch.setattr(processes, "MAX_QUICK_FAILURES", 3)
    announced: list[list[int]] = []
    started = time.monotonic()
    code = processes.supervise(process_targets.crash_after_listening, (), 1, announced.append)
    said = capsys.readouterr().err
    assert code == 1 and len(announced) == 1, said
    assert said.count("exited with code 3: restarting it in") == 2, said  # 0.01 s, then 0.02 s
    assert "3 times in a row soon after starting: not restarted" in said
    assert "every worker kept failing: stopping" in said
    assert time.monotonic() - started < 60
