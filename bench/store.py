"""The shared store, side by side in one run: in memory, Redis on one process, Redis on two.

Three mocks are up at once (one Redis server, one database each for the two Redis-backed
ones), and each route is measured in rounds: one wrk run against each mock per round, the
order turned every round, so a neighbour's burst of load on a shared machine moves all three.
The one-process mocks are pinned to core 0 with wrk and Redis on core 1; the two-process mock
has both cores, which it shares with wrk and Redis: so the table also gives what each setup
did per CPU-second (the mock's processes and Redis, read from /proc), which is what a larger
machine would turn into throughput. Round trips per request come from each process's
``/_mock/health`` (``store_round_trips``: the exchanges with Redis a request waited for, one
per script run however many commands it runs; ``store_journal_writes``: the journal's
pipelined batches, sent in the background); Redis commands per request from Redis's own
``INFO commandstats``, which counts the commands scripts run too.

``make bench`` runs it after bench/run.py and adds its section to BENCHMARKS.md; alone:
``python bench/store.py --seconds 3 --rounds 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.run import free_port, mock_command, request, start, wrk  # noqa: E402

SETUPS = ("memory, 1 process", "Redis, 1 process", "Redis, 2 processes")
ROUTES = ("status", "submit")
TARGETS = {"status": 0.50, "submit": 0.40}  # Redis on one process, against memory
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes ``pids`` used so far."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in out.split()]


def commands(port: int) -> int:
    """Commands Redis has served (those a client sent: INFO's own calls left out)."""
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "info", "commandstats"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = 0
    for line in out.splitlines():
        if line.startswith("cmdstat_") and not line.startswith("cmdstat_info:"):
            total += int(line.split("calls=", 1)[1].split(",", 1)[0])
    return total


def trips(base: str, processes: int) -> tuple[int, int]:
    """The store's round trips and journal writes so far, summed over the mock's processes
    (health answers from one process at a time: asked until each has answered)."""
    seen: dict[int, tuple[int, int]] = {}
    for _ in range(50 * processes):
        with urllib.request.urlopen(f"{base}/_mock/health", timeout=10) as resp:
            health = json.load(resp)
        seen[health["pid"]] = (
            health.get("store_round_trips", 0),
            health.get("store_journal_writes", 0),
        )
        if len(seen) == processes:
            break
    return sum(a for a, _ in seen.values()), sum(b for _, b in seen.values())


class Mock:
    def __init__(self, name: str, store: str, processes: int, pin: str | None) -> None:
        self.name = name
        self.processes = processes
        self.port = free_port()
        command = mock_command(self.port, "--store", store, "--processes", str(processes))
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = start(command, f"{self.base}/_mock/health", pin)

    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(
    mocks: dict[str, Mock], redis_pid: int, redis_port: int, seconds: int, rounds: int, conns: int
) -> dict[str, dict[str, list[dict[str, float]]]]:
    runs: dict[str, dict[str, list[dict[str, float]]]] = {r: {m: [] for m in mocks} for r in ROUTES}
    urls: dict[str, dict[str, tuple[str, str]]] = {}
    for name, mock in mocks.items():
        job = request(f"{mock.base}/v2/nano-banana", {"prompt": "bench", "aspect_ratio": "16:9"})
        request(f"{mock.base}/_mock/clock", {"advance": 100})
        urls[name] = {
            "status": ("get.lua", job["status_url"]),
            "submit": ("post.lua", f"{mock.base}/v2/nano-banana"),
        }
    for route in ROUTES:
        for i in range(rounds):
            order = list(mocks)[i % len(mocks) :] + list(mocks)[: i % len(mocks)]
            for name in order:
                script, url = urls[name][route]
                pids = mocks[name].pids()
                cpu0, redis0, cmd0 = cpu_seconds(pids), cpu_seconds([redis_pid]), 0
                trips0 = (0, 0)
                if name != "memory, 1 process":
                    cmd0 = commands(redis_port)
                    trips0 = trips(mocks[name].base, mocks[name].processes)
                result = wrk(url, script, seconds, conns)
                requests = result["rps"] * seconds
                result["cpu"] = cpu_seconds(pids) - cpu0
                result["redis_cpu"] = (
                    cpu_seconds([redis_pid]) - redis0 if name != "memory, 1 process" else 0.0
                )
                result["commands"] = (
                    (commands(redis_port) - cmd0 - 1) / requests
                    if name != "memory, 1 process" and requests
                    else 0.0
                )
                result["round_trips"] = result["journal_writes"] = 0.0
                if name != "memory, 1 process" and requests:
                    trips1 = trips(mocks[name].base, mocks[name].processes)
                    result["round_trips"] = (trips1[0] - trips0[0]) / requests
                    result["journal_writes"] = (trips1[1] - trips0[1]) / requests
                result["requests"] = requests
                runs[route][name].append(result)
            print(
                f"{route} round {i + 1}: "
                + ", ".join(f"{n} {runs[route][n][-1]['rps']:,.0f}/s" for n in mocks),
                flush=True,
            )
    return runs


def start_redis() -> tuple[subprocess.Popen[bytes], int, str]:
    """A Redis of the benchmark's own on core 1 (loopback, a temporary folder, persisting
    nothing), once it answers: its process, its port and its folder."""
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    folder = tempfile.mkdtemp(prefix="nb-bench-redis-")
    redis_port = free_port()
    taskset = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    redis = subprocess.Popen(
        [
            *taskset,
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--dir",
            folder,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while (
        subprocess.run(
            ["redis-cli", "-p", str(redis_port), "ping"], capture_output=True
        ).stdout.strip()
        != b"PONG"
    ):
        if time.monotonic() > deadline:
            redis.kill()
            raise RuntimeError("redis-server did not come up")
        time.sleep(0.05)
    return redis, redis_port, folder


def bench_store(seconds: int, rounds: int, connections: int) -> dict[str, Any]:
    redis, redis_port, folder = start_redis()
    mocks: dict[str, Mock] = {}
    try:
        url = f"redis://127.0.0.1:{redis_port}"
        mocks = {
            SETUPS[0]: Mock(SETUPS[0], "memory", 1, "0"),
            SETUPS[1]: Mock(SETUPS[1], f"{url}/0", 1, "0"),
            SETUPS[2]: Mock(SETUPS[2], f"{url}/1", 2, None),
        }
        runs = measure(mocks, redis.pid, redis_port, seconds, rounds, connections)
    finally:
        for mock in mocks.values():
            mock.stop()
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    return {"runs": runs, "seconds": seconds, "rounds": rounds, "connections": connections}


def _median(rows: list[dict[str, float]], name: str) -> float:
    return statistics.median(row[name] for row in rows)


def report(result: dict[str, Any]) -> str:
    runs = result["runs"]
    lines = [
        "## The shared store (bench/store.py)",
        "",
        f"Three mocks up at once, {result['rounds']} rounds of {result['seconds']} s per route "
        f"and mock (the order turned each round), wrk with {result['connections']} connections. "
        "One-process mocks on core 0, wrk and Redis on core 1; the two-process mock on both cores, "
        "shared with wrk and Redis. CPU is the mock's processes plus Redis, from /proc. Round "
        "trips per request: the exchanges with Redis a request waited for (one script run is one, "
        "however many commands it runs), from the processes' `/_mock/health`; journal writes: "
        "pipelined batches of entries, sent in the background (not waited for); Redis commands "
        "per request from `INFO commandstats`, the commands scripts run included.",
        "",
        "| route | setup | req/s | p50 ms | p99 ms | vs memory | round trips per request "
        "| journal writes per request | Redis commands per request (in scripts too) "
        "| CPU ms per 1,000 requests (mock + Redis) | requests per CPU-second | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for route in ROUTES:
        memory = _median(runs[route][SETUPS[0]], "rps")
        for setup in SETUPS:
            rows = runs[route][setup]
            rps = _median(rows, "rps")
            cpu = statistics.median(
                (r["cpu"] + r["redis_cpu"]) / r["requests"] * 1e6 for r in rows if r["requests"]
            )
            target = ""
            if setup == SETUPS[1]:
                wanted = TARGETS[route]
                ok = rps / memory >= wanted and _median(rows, "p99") < 20
                target = f"≥{wanted:.0%}, p99 < 20 ms: {'met' if ok else 'NOT met'}"
            lines.append(
                f"| {route} | {setup} | {rps:,.0f} | {_median(rows, 'p50'):.2f} "
                f"| {_median(rows, 'p99'):.2f} | {rps / memory:.0%} "
                f"| {_median(rows, 'round_trips'):.2f} | {_median(rows, 'journal_writes'):.2f} "
                f"| {_median(rows, 'commands'):.2f} | {cpu:.0f} | {1e6 / cpu:,.0f} | {target} |"
            )
        two, one = _median(runs[route][SETUPS[2]], "rps"), _median(runs[route][SETUPS[1]], "rps")
        lines.append(
            f"| {route} | two processes vs one (Redis) | | | | {two / one:.0%} | | | | | | |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    text = report(bench_store(args.seconds, args.rounds, args.connections))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
