"""A bounded soak: many concurrent clients submit and poll while fault rules fire.

    python bench/soak.py [--seconds 120] [--clients 40]

The mock runs as its own process on a free loopback port, with a short retention and a small
job cap so eviction starts within seconds. Every answer must be one the operation's contract
allows (or the broken connection a transport rule asked for); the server's resident memory,
sampled once a second, must stay flat once eviction has started. Bounded in time and in
requests; it targets 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
from faker import Faker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import schemas  # noqa: E402
from nanobanana.providers import adapter  # noqa: E402

KEY = "soak-key-0123456789"
MODELS = {"segmind": "nano-banana", "seaart": "nano_banana_pro", "pixazo": "nano-banana-pro"}
AUTH = {  # the auth header alone: aiohttp sets Content-Type itself for JSON bodies
    p: {k: v for k, v in adapter(p).headers(KEY).items() if k != "Content-Type"} for p in MODELS
}
SUBMIT = {
    p: (
        adapter(p).path("submit", model=model),
        {"prompt": "soak", **({"image_urls": ["https://a.io/b.png"]} if p == "pixazo" else {})},
    )
    for p, model in MODELS.items()
}
PIXAZO_RESULT = adapter("pixazo").path("result")
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
    stop: float,
    tally: Counter[str],
    unexpected: list[str],
) -> None:
    fake = Faker()
    fake.seed_instance(rng.random())  # realistic, varied prompts, replayable from the seed
    while time.monotonic() < stop:
        provider = rng.choice(list(SUBMIT))
        path, body = SUBMIT[provider]
        body = {**body, "prompt": fake.sentence(nb_words=rng.randint(3, 40))}
        try:
            async with session.post(base + path, json=body, headers=AUTH[provider]) as resp:
                data = await resp.json(content_type=None)
                _record(provider, "submit", resp.status, tally, unexpected)
            if resp.status != 200:
                continue
            for _ in range(rng.randint(1, 4)):
                if provider == "pixazo":
                    call = session.post(
                        base + PIXAZO_RESULT,
                        json={"request_id": data["request_id"]},
                        headers=AUTH[provider],
                    )
                    operation = "result"
                else:
                    call = session.get(data["status_url"], headers=AUTH[provider])
                    operation = "status"
                async with call as resp:
                    await resp.read()
                    _record(provider, operation, resp.status, tally, unexpected)
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ServerDisconnectedError):
            tally["broken (transport rule)"] += 1


def _record(
    provider: str, operation: str, status: int, tally: Counter[str], unexpected: list[str]
) -> None:
    tally[f"{provider}.{operation} {status}"] += 1
    if status not in declared(provider, operation):
        unexpected.append(f"{provider}.{operation} answered {status}")


async def soak(seconds: float, clients: int, seed: int, max_jobs: int) -> dict[str, object]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mockserver",
            "--port",
            str(port),
            "--time-scale",
            "50",
            "--retention-seconds",
            "*=300",
            "--max-jobs",
            str(max_jobs),
            "--journal-size",
            "2000",
            "--api-keys",
            KEY,
            "--seed",
            str(seed),
            "--log-level",
            "ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    tally: Counter[str] = Counter()
    unexpected: list[str] = []
    samples: list[tuple[float, int, int]] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
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
            start = time.monotonic()
            stop = start + seconds
            rng = random.Random(seed)
            workers = [
                asyncio.ensure_future(
                    client(session, base, random.Random(rng.random()), stop, tally, unexpected)
                )
                for _ in range(clients)
            ]
            while time.monotonic() < stop:
                await asyncio.sleep(1)
                async with session.get(base + "/_mock/health") as resp:
                    jobs = (await resp.json())["jobs"]
                samples.append((time.monotonic() - start, rss_kib(server.pid), jobs))
            await asyncio.gather(*workers)
            async with session.get(base + "/_mock/health") as resp:
                violations = (await resp.json())["violations"]
    finally:
        server.terminate()
        server.wait(10)
    full = [s for s in samples if s[2] >= 0.9 * max_jobs]  # eviction has started: near the cap
    steady = full[len(full) // 3 :] if len(full) >= 6 else []
    growth = (steady[-1][1] - steady[0][1]) / steady[0][1] if steady else None
    return {
        "requests": sum(tally.values()),
        "tally": dict(tally.most_common()),
        "unexpected": unexpected[:20],
        "violations": violations,
        "rss_kib": [s[1] for s in samples],
        "jobs": [s[2] for s in samples],
        "steady_rss_growth": growth,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-jobs", type=int, default=5000, help="the mock's job cap")
    parser.add_argument(
        "--max-growth", type=float, default=0.10, help="allowed RSS growth once full"
    )
    args = parser.parse_args(argv)
    result = asyncio.run(soak(args.seconds, args.clients, args.seed, args.max_jobs))
    print(json.dumps({k: v for k, v in result.items() if k not in ("rss_kib", "jobs")}, indent=2))
    print("rss KiB per second:", result["rss_kib"])
    print("jobs per second:   ", result["jobs"])
    growth = result["steady_rss_growth"]
    ok = (
        not result["unexpected"]
        and not result["violations"]
        and growth is not None
        and growth <= args.max_growth
    )
    print(
        "soak:",
        "passed" if ok else "FAILED",
        f"(steady RSS growth {growth:.1%})" if growth is not None else "(eviction never started)",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
