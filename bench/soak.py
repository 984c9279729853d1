"""A bounded soak: many concurrent clients submit and poll while fault rules fire, and
hostile clients attack the mock alongside them.

    python bench/soak.py [--seconds 120] [--clients 40]

The mock runs as its own process (``python -m nanobanana_mock``, so through the one start path
with its deadlines and connection cap) on a free loopback port, with a job cap and a
retention long enough that only the cap evicts. Beside the honest clients, attackers send:
half-sent headers, bodies dribbled too slowly, oversized bodies (by Content-Length and
chunked), deeply nested bodies, and prompts that a catastrophic-regex rule (``(a+)+$``)
would backtrack on (the rule may be refused when it is added; either is fine).

The verdict does not depend on the machine's speed: the run lasts ``--seconds`` AND until
the work is done (the job store has turned over ``--turnover`` times, counted from the
accepted submits, so eviction has really run), bounded by ``--max-seconds``. It passes when
- every answer is one the operation's contract allows (a 500 never is: no rule injects it),
  and the mock's own self-check saw no violation;
- the event loop never stalled: a separate thread polls ``/_mock/health`` all along, and its
  slowest answer stays under ``--max-stall`` seconds;
- resident memory is flat once eviction has started (median of the first and last samples).
Bounded in time and in requests; it targets 127.0.0.1 only.

    python bench/soak.py --store redis [--processes 2] [--seconds 60]

runs instead two mock processes on two ports and one ``redis-server`` of its own (a free
port, a temporary directory, an append-only file), clients alternating between the two as a
load balancer would (``shared_soak``): one process is SIGKILLed at 30% of the run, Redis is
stopped (SIGTERM: the file written) for 5 s at 50% and started again from its file. It passes
when every job accepted is seen finished exactly once (polled on either process) and no id
was answered twice, the store's 503 (``X-Mock-Store``) came only during the outage, jobs are
accepted again once Redis is back, no answer broke its contract, and the survivor's RSS is
flat once its job cap is reached.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from faker import Faker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import free_port  # noqa: E402
from nanobanana_mock import schemas  # noqa: E402
from nanobanana_mock.client.models import JobHandle  # noqa: E402
from nanobanana_mock.client.providers import Call, adapter  # noqa: E402
from nanobanana_mock.conformance.facts import documented_requests  # noqa: E402

KEY = "soak-key-0123456789"
# every provider with a job queue (a contract folder with a submit operation), with the
# first model of its api.json; a surface of blocking calls alone (Gemini's generateContent)
# has no job to poll, and is not soaked here
MODELS = {
    p: next(iter(schemas.load(p, "api")["models"]))
    for p in schemas.PROVIDERS
    if "submit" in schemas.load(p, "api")["operations"]
}
ADAPTERS = {p: adapter(p) for p in MODELS}
AUTH = {  # the auth header alone: aiohttp sets Content-Type itself for JSON bodies
    p: {k: v for k, v in ADAPTERS[p].headers(KEY).items() if k != "Content-Type"} for p in MODELS
}


def _smallest_body(provider: str, model: str) -> dict:
    """A prompt, and the other fields the request schema requires, as documented."""
    name = schemas.load(provider, "api")["models"][model]["request"]
    required = set(schemas.load(provider, name).get("required", [])) - {"prompt"}
    documented = min(documented_requests(provider, model).values(), key=len, default={})
    return {"prompt": "soak", **{k: v for k, v in documented.items() if k in required}}


SUBMIT = {
    p: (ADAPTERS[p].path("submit", model=model), _smallest_body(p, model))
    for p, model in MODELS.items()
}
RULES = [
    {
        "match": {"operation": ["status", "result"]},
        "effect": {"http_error": {"status": 502}},
        "scope": {"probability": 0.05},
    },
    {
        "match": {"operation": "submit"},
        "effect": {"http_error": {"status": 429, "retry_after": 1}},
        "scope": {"probability": 0.03},
    },
    {
        "match": {"operation": "status"},
        "effect": {"transport": {"kind": "reset"}},
        "scope": {"probability": 0.01},
    },
    {
        "match": {"operation": "submit"},
        "effect": {"job_failure": {"error": "soak failure"}},
        "scope": {"probability": 0.1},
    },
]
# A rule whose regex backtracks exponentially on a run of "a" that does not end the prompt
# (Python's re: 18 s for 27 of them). A linear engine runs it, or the rule is refused.
REGEX_RULE = {
    "match": {"prompt_regex": "(a+)+$"},
    "effect": {"http_error": {"status": 503}},
    "scope": {"probability": 0.5},
}
REGEX_PROMPT = "a" * 27 + "!"
ATTACKS = ("slow_headers", "slow_body", "oversized", "nested", "regex")
ATTACK_PAUSE = 0.1  # seconds between two attacks of one attacker: bounded in count too
INJECTED = {429, 503}  # what the rules above may answer a submit instead, attacked or not
# The server's slow-client settings in the soak: short, so the attackers are cut off within
# the run, and a cap the honest clients and attackers together stay far below.
SERVER_LIMITS = {
    "--header-timeout": "2",
    "--body-timeout": "2",
    "--keepalive-timeout": "5",
    "--max-connections": "256",
}
MAX_BODY = 256 * 1024  # the mock's default --max-body-bytes
NESTING = (1020, 20_000)  # an unknown field nested this deep (near and far past any cap)


def declared(provider: str, operation: str) -> set[int]:
    return {
        int(code) for code in schemas.load(provider, "api")["operations"][operation]["responses"]
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def client(
    session: aiohttp.ClientSession,
    base: str,
    rng: random.Random,
    run: Run,
    regex: bool,
) -> None:
    tally, unexpected = run.tally, run.unexpected
    fake = Faker()
    fake.seed_instance(rng.random())  # realistic, varied prompts, replayable from the seed
    while not run.done:
        provider = rng.choice(list(SUBMIT))
        path, body = SUBMIT[provider]
        prompt = fake.sentence(nb_words=rng.randint(3, 40))
        if regex and rng.random() < 0.05:
            prompt = REGEX_PROMPT
        body = {**body, "prompt": prompt}
        try:
            async with session.post(base + path, json=body, headers=AUTH[provider]) as resp:
                data = await resp.json(content_type=None)
                _record(provider, "submit", resp.status, tally, unexpected)
            if resp.status != 200:
                continue
            run.accepted += 1
            poll = ADAPTERS[provider].status_call(_handle(base, provider, data))
            for _ in range(rng.randint(1, 4)):
                async with _send(session, poll, provider) as resp:
                    await resp.read()
                    _record(provider, poll.operation, resp.status, tally, unexpected)
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ServerDisconnectedError):
            tally["broken (transport rule)"] += 1


def _handle(base: str, provider: str, submitted: dict) -> JobHandle:
    """The job a submit answer describes, as the client library reads it."""
    return ADAPTERS[provider].handle(base, MODELS[provider], submitted)


def _send(session: aiohttp.ClientSession, call: Call, provider: str) -> Any:
    """One request as the client library would make it (the status of a Pixazo job is a POST
    to its result route, with the id in the body)."""
    return session.request(call.method, call.url, json=call.json, headers=AUTH[provider])


def _record(
    provider: str, operation: str, status: int, tally: Counter[str], unexpected: list[str]
) -> None:
    tally[f"{provider}.{operation} {status}"] += 1
    if status not in declared(provider, operation) or status == 500:  # no rule injects 500
        unexpected.append(f"{provider}.{operation} answered {status}")


class Run:
    """What the clients share: the tallies, the accepted submits, and when to stop."""

    def __init__(self) -> None:
        self.tally: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.accepted = 0  # submits answered 200: the jobs the store has taken
        self.done = False


# -- the attackers ----------------------------------------------------------------------------


async def _answer(reader: asyncio.StreamReader, seconds: float) -> tuple[int | None, bytes]:
    """The status and body of the one answer on a raw connection (None: closed unanswered)."""
    data = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(65536):
                data += chunk
    except (TimeoutError, ConnectionError):
        pass
    if not data.startswith(b"HTTP/1.1 "):
        return None, data
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _request_head(provider: str, path: str, extra: str, port: int) -> bytes:
    auth = "".join(f"{k}: {v}\r\n" for k, v in AUTH[provider].items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
        f"Content-Type: application/json\r\n{extra}"
    ).encode()


def _chunked(data: bytes, size: int = 32768) -> bytes:
    pieces = (data[i : i + size] for i in range(0, len(data), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def _nested(depth: int, arrays: bool) -> bytes:
    """A valid body with an unknown field nested ``depth`` deep (arrays or objects)."""
    inner = b"[" * depth + b"]" * depth if arrays else b'{"x":' * depth + b"1" + b"}" * depth
    return b'{"prompt": "nested", "extra": ' + inner + b"}"


async def attacker(
    session: aiohttp.ClientSession,
    port: int,
    rng: random.Random,
    run: Run,
    attacks: tuple[str, ...],
) -> None:
    """Send one hostile request after another (``attacks`` holds no "regex": the honest
    clients send those prompts); each answer must be the documented one (a nested body that
    is accepted makes a job, whose status and result are then followed)."""
    limit = float(SERVER_LIMITS["--header-timeout"]) + float(SERVER_LIMITS["--body-timeout"])
    while not run.done:
        follow: dict = {}
        kind = rng.choice(attacks)
        provider = rng.choice(list(SUBMIT))
        path = SUBMIT[provider][0]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            run.tally["attack: connect refused"] += 1
            await asyncio.sleep(ATTACK_PAUSE)  # a refused connect is no reason to spin
            continue
        try:
            if kind == "slow_headers":
                writer.write(_request_head(provider, path, "X-Slow: ", port))
                status, _ = await _answer(reader, limit + 5)
                expected: set[int | None] = {408}
            elif kind == "slow_body":
                writer.write(_request_head(provider, path, "Content-Length: 1000\r\n\r\n", port))
                writer.write(b'{"prompt": "slow')
                status, _ = await _answer(reader, limit + 5)
                expected = {400}
            elif kind == "oversized":
                data = b'{"prompt": "' + b"x" * (MAX_BODY + 1000) + b'"}'
                if rng.random() < 0.5:
                    writer.write(
                        _request_head(provider, path, f"Content-Length: {len(data)}\r\n\r\n", port)
                    )
                    writer.write(data)
                else:
                    writer.write(
                        _request_head(provider, path, "Transfer-Encoding: chunked\r\n\r\n", port)
                    )
                    writer.write(_chunked(data))
                status, _ = await _answer(reader, limit + 5)
                expected = {413}
            else:  # nested
                data = _nested(rng.choice(NESTING), rng.random() < 0.5)
                extra = f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
                writer.write(_request_head(provider, path, extra, port) + data)
                status, body = await _answer(reader, limit + 5)
                expected = declared(provider, "submit") - {500}
                if status == 200:
                    follow = json.loads(body)
        except ConnectionError:
            status, expected = None, {None}
        finally:
            writer.close()
        await asyncio.sleep(ATTACK_PAUSE)
        run.tally[f"attack {kind}: {status}"] += 1
        if status not in expected | INJECTED:
            run.unexpected.append(f"attack {kind} on {provider} answered {status}")
        if follow:
            run.accepted += 1
            await _follow(session, f"http://127.0.0.1:{port}", provider, follow, run)


async def _follow(
    session: aiohttp.ClientSession, base: str, provider: str, job: dict, run: Run
) -> None:
    """Finish a job at once (control plane), then read its status, result and first image
    as a client would, checking each answer."""
    job_id = job["request_id"]
    async with session.post(f"{base}/_mock/jobs/{job_id}/state", json={"state": "SUCCEEDED"}):
        pass
    handle = _handle(base, provider, job)
    status, result = ADAPTERS[provider].status_call(handle), ADAPTERS[provider].result_call(handle)
    calls = [status] if status == result else [status, result]  # Pixazo's are one route
    images: list[str] = []
    for call in calls:
        try:
            async with _send(session, call, provider) as resp:
                data = await resp.read()
                _record(provider, call.operation, resp.status, run.tally, run.unexpected)
            if call.operation == "result" and resp.status == 200:
                images = _file_urls(json.loads(data))
        except (TimeoutError, aiohttp.ClientError, ValueError):
            run.tally["broken (transport rule)"] += 1
    if images:
        async with session.get(images[0]) as resp:
            await resp.read()
            run.tally[f"{provider}.image {resp.status}"] += 1
            if resp.status != 200:
                run.unexpected.append(f"{provider}.image answered {resp.status}")


def _file_urls(value: object) -> list[str]:
    """Every output-image URL in an answer."""
    if isinstance(value, str):
        return [value] if "/_mock/files/" in value else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [url for item in value for url in _file_urls(item)]
    return []


def health_poller(port: int, stop: threading.Event, latencies: list[float]) -> None:
    """In a thread of its own: poll /_mock/health and keep each answer's latency."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/_mock/health")
            conn.getresponse().read()
            conn.close()
        except OSError:
            pass
        latencies.append(time.perf_counter() - started)
        stop.wait(0.1)


def start_mock(port: int, max_jobs: int, seed: int, *extra: str) -> subprocess.Popen[bytes]:
    """A mock process on ``port`` with the soak's settings (and ``extra``), output discarded."""
    limits = [part for pair in SERVER_LIMITS.items() for part in pair]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mockserver",
            "--port",
            str(port),
            *extra,
            "--time-scale",
            "50",
            "--retention-seconds",
            "*=86400",  # only the cap evicts: when it starts is counted in submits
            "--max-jobs",
            str(max_jobs),
            "--journal-size",
            "2000",
            "--api-keys",
            KEY,
            "--seed",
            str(seed),
            "--self-check",
            *limits,
            "--log-level",
            "ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def soak(
    seconds: float,
    clients: int,
    seed: int,
    max_jobs: int,
    turnover: float = 2.0,
    max_seconds: float | None = None,
    attacks: tuple[str, ...] = ATTACKS,
) -> dict[str, object]:
    """Run the soak; see the module's docstring for what ends it and what it measures."""
    max_seconds = max_seconds if max_seconds is not None else max(4 * seconds, seconds + 120)
    port = free_port()
    server = start_mock(port, max_jobs, seed)
    base = f"http://127.0.0.1:{port}"
    run = Run()
    samples: list[tuple[float, int, int, int]] = []  # (seconds, RSS KiB, jobs, accepted)
    latencies: list[float] = []
    stop_polling = threading.Event()
    poller = threading.Thread(target=health_poller, args=(port, stop_polling, latencies))
    regex_rule = None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            for _ in range(100):
                try:
                    async with session.get(base + "/_mock/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            for rule in RULES:
                async with session.post(base + "/_mock/faults", json=rule) as resp:
                    assert resp.status == 201, await resp.text()
            if "regex" in attacks:
                async with session.post(base + "/_mock/faults", json=REGEX_RULE) as resp:
                    # a linear-time engine runs it (201); refusing it at once is fine too
                    assert resp.status in (201, 400), await resp.text()
                    regex_rule = "accepted" if resp.status == 201 else "refused"
            poller.start()
            start = time.monotonic()
            rng = random.Random(seed)
            regex = "regex" in attacks
            workers = [
                asyncio.ensure_future(
                    client(session, base, random.Random(rng.random()), run, regex)
                )
                for _ in range(clients)
            ]
            hostile = tuple(a for a in attacks if a != "regex")  # regex: the clients' prompts
            workers += [
                asyncio.ensure_future(
                    attacker(session, port, random.Random(rng.random()), run, hostile)
                )
                for _ in range(max(2, clients // 5) if hostile else 0)
            ]
            target = int(turnover * max_jobs) + max_jobs  # filled, then turned over
            while True:
                await asyncio.sleep(0.5)
                async with session.get(base + "/_mock/health") as resp:
                    jobs = (await resp.json())["jobs"]
                elapsed = time.monotonic() - start
                samples.append((elapsed, rss_kib(server.pid), jobs, run.accepted))
                steady = _steady(samples, max_jobs)
                if (elapsed >= seconds and run.accepted >= target and len(steady) >= 6) or (
                    elapsed >= max_seconds
                ):
                    break
            run.done = True
            await asyncio.gather(*workers)
            async with session.get(base + "/_mock/health") as resp:
                violations = (await resp.json())["violations"]
    finally:
        run.done = True
        stop_polling.set()
        if poller.is_alive():
            poller.join(90)
        server.terminate()
        server.wait(10)
    return {
        "requests": sum(run.tally.values()),
        "accepted_submits": run.accepted,
        "seconds": round(samples[-1][0], 1) if samples else 0,
        "regex_rule": regex_rule,
        **_observed(run, violations, latencies, samples, max_jobs),
    }


def _observed(
    run: Any,
    violations: Any,
    latencies: list[float],
    samples: list[tuple[float, int, int, int]],
    max_jobs: int,
) -> dict[str, Any]:
    """What both soaks report alike: the answers tallied, the mock's own contract
    violations, how long health waited, and memory over the run (its growth once the job
    store is full: None when too few samples are steady)."""
    steady = _steady(samples, max_jobs)
    growth = None
    if len(steady) >= 6:
        first = statistics.median(s[1] for s in steady[:3])
        last = statistics.median(s[1] for s in steady[-3:])
        growth = (last - first) / first
    return {
        "tally": dict(run.tally.most_common()),
        "unexpected": run.unexpected[:20],
        "violations": violations,
        "health_polls": len(latencies),
        "max_stall_seconds": round(max(latencies), 3) if latencies else None,
        "rss_kib": [s[1] for s in samples],
        "jobs": [s[2] for s in samples],
        "steady_rss_growth": growth,
    }


def _steady(
    samples: list[tuple[float, int, int, int]], max_jobs: int
) -> list[tuple[float, int, int, int]]:
    """The samples taken once eviction has run for a while: the store is full and a fifth
    of it has been replaced since (the RSS of a store still filling is not flat)."""
    return [s for s in samples if s[2] >= max_jobs and s[3] >= 1.2 * max_jobs]


# -- across two processes on Redis ------------------------------------------------------------

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
OUTAGE_SECONDS = 5.0  # Redis stopped this long
STORE_GRACE = 5.0  # seconds after Redis is back within which a store 503 is still expected
FOLLOW_SECONDS = 90.0  # the longest a client follows one job (outage and restart included)


class RedisProcess:
    """The soak's own ``redis-server`` on a free loopback port, in a temporary directory,
    persisting to an append-only file (``--appendonly yes``, fsync every second): a SIGTERM
    shuts it down gracefully (the AOF flushed), and started again on the same port and
    directory it loads that file, so the data survives the outage."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--protected-mode",
                "yes",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        """SIGTERM: a graceful shutdown, the append-only file flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


class Balancer:
    """What a load balancer does without sticky sessions: requests alternate between the
    processes; a process that refuses a connection is left out for a second."""

    def __init__(self, bases: list[str]) -> None:
        self.bases = bases
        self.down_until = dict.fromkeys(bases, 0.0)
        self.turn = 0
        self.failovers = 0

    def next(self) -> str:
        now = time.monotonic()
        for _ in self.bases:
            self.turn += 1
            base = self.bases[self.turn % len(self.bases)]
            if self.down_until[base] <= now:
                return base
        return self.bases[self.turn % len(self.bases)]

    def down(self, base: str) -> None:
        self.down_until[base] = time.monotonic() + 1.0
        self.failovers += 1


class SharedRun(Run):
    """A run across processes: besides the tallies, every job accepted and seen finished,
    and when the store answered 503."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: Counter[str] = Counter()  # request id -> times a submit answered it
        self.finished: Counter[str] = Counter()  # request id -> times seen finished (once)
        self.unfinished: list[str] = []  # followed for FOLLOW_SECONDS, never finished
        self.store_503: list[float] = []  # when (run seconds) the store's 503 was answered
        self.submits_cut = 0  # a submit whose connection died with its process
        self.start = time.monotonic()
        self.redis_back: float | None = None  # when Redis answered again
        self.first_accept_after: float | None = None  # the first job taken after that

    def now(self) -> float:
        return time.monotonic() - self.start


async def _request(
    session: aiohttp.ClientSession,
    lb: Balancer,
    method: str,
    path: str,
    provider: str,
    run: SharedRun,
    body: Any = None,
    resend: bool = True,
) -> tuple[int, Any] | None:
    """One request through the balancer: (status, body), or None when the connection broke
    after the request was sent (a transport rule, or a process killed under it). A refused
    connection is sent to the other process (``resend``: also when it broke mid-way)."""
    for _ in range(2 * len(lb.bases)):
        base = lb.next()
        try:
            async with session.request(
                method, base + path, json=body, headers=AUTH[provider]
            ) as resp:
                raw = await resp.read()
                if resp.status == 503 and "X-Mock-Store" in resp.headers:
                    run.store_503.append(run.now())
                    run.tally[f"{provider} store 503"] += 1
                    return 503, None
                try:
                    data = json.loads(raw) if raw else None
                except ValueError:
                    data = None
                return resp.status, data
        except aiohttp.ClientConnectorError:
            lb.down(base)
        except (TimeoutError, aiohttp.ClientError):
            run.tally["broken (transport rule or killed process)"] += 1
            if not resend:
                return None
    return None


def _path_of(url: str) -> str:
    """A URL's path (the process answering it is the balancer's choice)."""
    return "/" + url.split("/", 3)[3]


async def shared_client(
    session: aiohttp.ClientSession, lb: Balancer, rng: random.Random, run: SharedRun
) -> None:
    """Submit a job, then follow it to its end, every request to the next process."""
    fake = Faker()
    fake.seed_instance(rng.random())
    while not run.done:
        provider = rng.choice(list(SUBMIT))
        path, body = SUBMIT[provider]
        body = {**body, "prompt": fake.sentence(nb_words=rng.randint(3, 40))}
        answer = await _request(session, lb, "POST", path, provider, run, body, resend=False)
        if answer is None:
            run.submits_cut += 1
            continue
        status, data = answer
        if status == 503 and data is None:
            await asyncio.sleep(0.1)
            continue
        _record(provider, "submit", status, run.tally, run.unexpected)
        if status != 200:
            continue
        run.accepted += 1
        if run.redis_back is not None and run.first_accept_after is None:
            run.first_accept_after = run.now()
        handle = _handle("http://mock", provider, data)
        rid = handle.request_id
        run.ids[rid] += 1
        poll = ADAPTERS[provider].status_call(handle)
        deadline = time.monotonic() + FOLLOW_SECONDS
        while time.monotonic() < deadline:
            answer = await _request(
                session, lb, poll.method, _path_of(poll.url), provider, run, poll.json
            )
            if answer is not None and answer[1] is not None:
                status, data = answer
                _record(provider, poll.operation, status, run.tally, run.unexpected)
                report = ADAPTERS[provider].report(status, data)
                if status == 404:
                    run.unexpected.append(f"{provider} job {rid} lost (404)")
                    break
                if report is not None and report.status.value in TERMINAL:
                    run.finished[rid] += 1
                    break
            await asyncio.sleep(0.05)
        else:
            run.unfinished.append(rid)


async def shared_soak(
    seconds: float, clients: int, seed: int, max_jobs: int, max_seconds: float | None = None
) -> dict[str, object]:
    """Two mock processes on their own ports, one Redis, clients alternating between them;
    one process SIGKILLed at 30% of ``seconds``, Redis stopped for 5 s at 50% and started
    again from its append-only file. See ``main``'s verdict."""
    import tempfile

    kill_at, outage_at = 0.3 * seconds, 0.5 * seconds
    seconds = max(seconds, outage_at + OUTAGE_SECONDS + 4)  # service seen to resume
    max_seconds = max_seconds if max_seconds is not None else seconds + 120
    directory = Path(tempfile.mkdtemp(prefix="nanobanana-soak-redis-"))
    redis = RedisProcess(directory)
    redis.start()
    servers: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    for _ in range(2):
        ports.append(free_port())
        servers.append(start_mock(ports[-1], max_jobs, seed, "--store", redis.url))
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    survivor, victim = servers
    run = SharedRun()
    lb = Balancer(bases)
    samples: list[tuple[float, int, int, int]] = []
    latencies: list[float] = []
    stop_polling = threading.Event()
    poller = threading.Thread(target=health_poller, args=(ports[0], stop_polling, latencies))
    events: dict[str, float] = {}
    violations: list[Any] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            for base in bases:
                for _ in range(600):
                    try:
                        async with session.get(base + "/_mock/health") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            for rule in RULES:
                async with session.post(bases[1] + "/_mock/faults", json=rule) as resp:
                    assert resp.status == 201, await resp.text()
            poller.start()
            run.start = time.monotonic()
            rng = random.Random(seed)
            workers = [
                asyncio.ensure_future(shared_client(session, lb, random.Random(rng.random()), run))
                for _ in range(clients)
            ]
            while True:
                await asyncio.sleep(0.5)
                elapsed = run.now()
                if "killed" not in events and elapsed >= kill_at:
                    victim.kill()  # SIGKILL: no goodbye
                    victim.wait(10)
                    events["killed"] = round(run.now(), 2)
                if "redis_stopped" not in events and elapsed >= outage_at:
                    events["redis_stopped"] = round(run.now(), 2)  # SIGTERM sent
                    await asyncio.to_thread(redis.stop)
                    events["redis_exited"] = round(run.now(), 2)
                    await asyncio.sleep(OUTAGE_SECONDS)
                    await asyncio.to_thread(redis.start)
                    events["redis_back"] = round(run.now(), 2)
                    run.redis_back = run.now()
                    continue
                jobs = None
                try:
                    async with session.get(bases[0] + "/_mock/health") as resp:
                        jobs = (await resp.json()).get("jobs")
                except (aiohttp.ClientError, ValueError):
                    pass
                if isinstance(jobs, int):
                    samples.append((elapsed, rss_kib(survivor.pid), jobs, run.accepted))
                steady = _steady(samples, max_jobs)
                done = elapsed >= seconds and run.first_accept_after is not None
                if (done and len(steady) >= 6) or elapsed >= max_seconds:
                    break
            run.done = True
            await asyncio.gather(*workers)
            async with session.get(bases[0] + "/_mock/health") as resp:
                violations = (await resp.json()).get("violations", [])
    finally:
        run.done = True
        stop_polling.set()
        if poller.is_alive():
            poller.join(90)
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.wait(10)
        redis.stop()
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
    stopped, back = events.get("redis_stopped", 0.0), events.get("redis_back", 0.0)
    outside = [t for t in run.store_503 if t < stopped - 0.01 or t > back + STORE_GRACE]
    return {
        "requests": sum(run.tally.values()),
        "accepted_submits": run.accepted,
        "seconds": round(samples[-1][0], 1) if samples else 0,
        "events": events,
        "failovers": lb.failovers,
        "submits_cut": run.submits_cut,
        "store_503": len(run.store_503),
        "store_503_outside_outage": len(outside),
        "last_store_503_after_redis_back": (
            round(max(run.store_503) - back, 2) if run.store_503 and back else None
        ),
        "first_job_after_redis_back": (
            round(run.first_accept_after - back, 2) if run.first_accept_after else None
        ),
        "finished": len(run.finished),
        "lost": sorted(set(run.ids) - set(run.finished))[:20],
        "unfinished": run.unfinished[:20],
        "duplicated": [rid for rid, n in run.ids.items() if n > 1][:20],
        "finished_twice": [rid for rid, n in run.finished.items() if n > 1][:20],
        **_observed(run, violations, latencies, samples, max_jobs),
    }


def shared_verdict(result: dict[str, Any], max_growth: float) -> tuple[bool, list[str]]:
    """Pass: every job accepted finished exactly once, none twice accepted; the store's 503
    only around the outage and at least one; service resumed; no unexpected answer or
    violation; the survivor's RSS flat."""
    growth = result["steady_rss_growth"]
    checks = {
        "an unexpected answer": bool(result["unexpected"]),
        "a self-check violation": bool(result["violations"]),
        "a lost job": bool(result["lost"]),
        "a duplicated job": bool(result["duplicated"] or result["finished_twice"]),
        "no store 503 in the outage": not result["store_503"],
        "a store 503 outside the outage": bool(result["store_503_outside_outage"]),
        "no job after Redis came back": result["first_job_after_redis_back"] is None,
        "RSS not flat (or eviction never ran long enough)": growth is None or growth > max_growth,
    }
    failed = [name for name, bad in checks.items() if bad]
    reasons = [
        *failed,
        f"steady RSS growth {growth:.1%}" if growth is not None else "no steady RSS",
        f"{result['finished']} jobs finished, {result['store_503']} store 503s",
    ]
    return not failed, reasons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="the least it runs")
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-jobs", type=int, default=5000, help="the mock's job cap")
    parser.add_argument(
        "--turnover",
        type=float,
        default=2.0,
        help="how many times the full store is replaced before the verdict",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=None, help="the bound (default 4x --seconds)"
    )
    parser.add_argument(
        "--attacks",
        default=",".join(ATTACKS),
        help=f"comma-separated attackers among {','.join(ATTACKS)} (empty: none)",
    )
    parser.add_argument(
        "--max-growth", type=float, default=0.10, help="allowed RSS growth once full"
    )
    parser.add_argument(
        "--max-stall",
        type=float,
        default=2.0,
        help="slowest /_mock/health answer allowed, in seconds (a stalled loop takes many)",
    )
    parser.add_argument(
        "--store",
        choices=("memory", "redis"),
        default="memory",
        help="redis: two mock processes on their own redis-server (see shared_soak)",
    )
    parser.add_argument(
        "--processes", type=int, default=None, help="1 (memory) or 2 (redis, the default)"
    )
    args = parser.parse_args(argv)
    if args.store == "redis":
        if args.processes not in (None, 2):
            parser.error("--store redis runs two processes (--processes 2)")
        return _main_shared(args)
    if args.processes not in (None, 1):
        parser.error("more than one process needs --store redis")
    attacks = tuple(a for a in args.attacks.split(",") if a)
    unknown = set(attacks) - set(ATTACKS)
    if unknown:
        parser.error(f"unknown attacks {sorted(unknown)}")
    result = asyncio.run(
        soak(
            args.seconds,
            args.clients,
            args.seed,
            args.max_jobs,
            args.turnover,
            args.max_seconds,
            attacks,
        )
    )
    print(json.dumps({k: v for k, v in result.items() if k not in ("rss_kib", "jobs")}, indent=2))
    print("rss KiB per sample:", result["rss_kib"])
    print("jobs per sample:   ", result["jobs"])
    growth = result["steady_rss_growth"]
    stall = result["max_stall_seconds"]
    stalled = stall is None or stall > args.max_stall
    ok = (
        not result["unexpected"]
        and not result["violations"]
        and not stalled
        and growth is not None
        and growth <= args.max_growth
    )
    reasons = []
    if growth is None:
        reasons.append(
            f"eviction never ran long enough ({result['accepted_submits']} submits accepted "
            f"in {result['seconds']} s, {int((args.turnover + 1) * args.max_jobs)} needed)"
        )
    else:
        reasons.append(f"steady RSS growth {growth:.1%}")
    reasons.append(f"slowest health answer {stall} s")
    print("soak:", "passed" if ok else "FAILED", f"({'; '.join(reasons)})")
    return 0 if ok else 1


def _main_shared(args: argparse.Namespace) -> int:
    result = asyncio.run(
        shared_soak(args.seconds, args.clients, args.seed, args.max_jobs, args.max_seconds)
    )
    print(json.dumps({k: v for k, v in result.items() if k not in ("rss_kib", "jobs")}, indent=2))
    print("survivor rss KiB per sample:", result["rss_kib"])
    print("jobs per sample:            ", result["jobs"])
    ok, reasons = shared_verdict(result, args.max_growth)
    print("soak:", "passed" if ok else "FAILED", f"({'; '.join(reasons)})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
