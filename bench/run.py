"""`make bench`: the mock against a bare aiohttp reference, side by side, in one run.

Both servers run pinned to core 0 (taskset) with uvloop; wrk runs on core 1 with 50
connections. Each route is measured in rounds of one run against the mock and one against
the reference; the report gives requests per second, p50 and p99 latency, and the median
round's ratio to the reference's matching route (POST for submit, GET for the rest, the same
number of bytes for the image), with the spread of ratios. Then the memory of 100,000 stored
jobs (tracemalloc) and the time to render a 4K image. Results go to BENCHMARKS.md with the
command that produced them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

KEY = "bench-key"
TARGETS = {"submit": 0.60, "submit 1 KB": None, "status": 0.70, "result": None, "image": 0.50}
# the issue's; "submit 1 KB" posts the documentation's nano-banana-pro body (bench/post1k.lua),
# with only its p99 held (< 20 ms)
DOC_BODY = "schemas/segmind/examples/request.nano-banana-pro.seed000.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def mock_command(port: int, *extra: str) -> list[str]:
    """The benchmarked mock on ``port``: real time off, quiet, no jitter; and ``extra``."""
    return [
        sys.executable,
        "-m",
        "nanobanana_mock",
        "--port",
        str(port),
        "--time-scale",
        "0",
        "--log-level",
        "WARNING",
        "--processing-jitter",
        "0",
        *extra,
    ]


def start(command: list[str], probe: str, pin: str | None = "0") -> subprocess.Popen[bytes]:
    """``command`` pinned to the cores ``pin`` (where taskset is), once ``probe`` answers."""
    taskset = ["taskset", "-c", pin] if pin and shutil.which("taskset") else []
    proc = subprocess.Popen(taskset + command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(probe)
    return proc


def request(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"x-api-key": KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def wrk(url: str, script: str, seconds: int, connections: int) -> dict[str, float]:
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    out = subprocess.run(
        [
            *pin,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(HERE / script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rps,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def bench_http(seconds: int, connections: int, rounds: int) -> dict[str, Any]:
    """Both servers up at once, each pinned to core 0; for each route, ``rounds`` rounds of
    one wrk run against each server, the mock first in even rounds and the reference first in
    odd ones. A round's ratio compares two runs seconds apart, so a neighbour's burst of load
    on a shared machine moves both; the report gives the median round and the spread."""
    python = sys.executable
    port = free_port()
    mock = start(mock_command(port), f"http://127.0.0.1:{port}/_mock/health")
    reference: subprocess.Popen[bytes] | None = None
    base = f"http://127.0.0.1:{port}"
    try:
        job = request(
            f"{base}/v2/nano-banana-pro",
            {"prompt": "bench", "output_resolution": "4K", "aspect_ratio": "16:9"},
        )
        request(f"{base}/_mock/clock", {"advance": 100})
        result = request(job["response_url"])
        image_url = result["output"]
        image_size = len(urllib.request.urlopen(image_url, timeout=60).read())  # renders and caches
        ref_port = free_port()
        reference = start(
            [python, str(HERE / "reference.py"), str(ref_port), str(image_size)],
            f"http://127.0.0.1:{ref_port}/v2/requests/x/status",
        )
        ref = f"http://127.0.0.1:{ref_port}"
        # reads first: the submit runs create ~100,000 jobs, and the store then evicts the
        # oldest, this job among them
        routes = {
            "status": ("get.lua", job["status_url"], f"{ref}/v2/requests/x/status"),
            "result": ("get.lua", job["response_url"], f"{ref}/v2/requests/x"),
            "image": ("get.lua", image_url, f"{ref}/image"),
            "submit": ("post.lua", f"{base}/v2/nano-banana", f"{ref}/v2/nano-banana"),
            "submit 1 KB": (
                "post1k.lua",
                f"{base}/v2/nano-banana-pro",
                f"{ref}/v2/nano-banana-pro",
            ),
        }
        runs: dict[str, Any] = {}
        for name, (script, mock_url, ref_url) in routes.items():
            runs[name] = []
            for i in range(rounds):  # the mock first, then the reference first: a drift in
                # the machine's load during a round favours neither side
                mock_first = i % 2 == 0
                first, second = (mock_url, ref_url) if mock_first else (ref_url, mock_url)
                a = wrk(first, script, seconds, connections)
                b = wrk(second, script, seconds, connections)
                runs[name].append((a, b) if mock_first else (b, a))
            print(
                f"{name}: " + ", ".join(f"{m['rps'] / r['rps']:.0%}" for m, r in runs[name]),
                flush=True,
            )
    finally:
        for proc in (mock, reference):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
    return {"routes": runs, "image_bytes": image_size}


def summary(runs: list[tuple[dict[str, float], dict[str, float]]]) -> dict[str, float]:
    """The median round of one route: its figures, its ratio, and the spread of ratios."""
    ratios = sorted(m["rps"] / r["rps"] for m, r in runs)
    return {
        "rps": statistics.median(m["rps"] for m, _ in runs),
        "ref_rps": statistics.median(r["rps"] for _, r in runs),
        "p50": statistics.median(m["p50"] for m, _ in runs),
        "p99": statistics.median(m["p99"] for m, _ in runs),
        "ref_p99": statistics.median(r["p99"] for _, r in runs),
        "worst_p99": max(m["p99"] for m, _ in runs),
        "errors": sum(m["errors"] for m, _ in runs),
        "ratio": statistics.median(ratios),
        "low": ratios[0],
        "high": ratios[-1],
    }


def bench_memory(jobs: int) -> float:
    """Bytes per stored job, as the store keeps them (Job, store, pool), made directly."""
    from nanobanana_mock.engine.jobs import Job, JobStore, Output

    store = JobStore(workers=4, max_jobs=jobs)
    output = Output(1376, 768, "png", 1)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(jobs):
        job = Job(
            id=f"{i:08x}-0000-4000-8000-000000000000",
            provider="segmind",
            model="nano-banana",
            owner="0123456789abcdef",
            text=b"A red apple on a white table",
            output=output,
            image_seed=i,
            cost=0.04,
            submitted_at=0.0,
            ready_at=1.0,
            duration=14.28,
            expires_at=3600.0,
        )
        store.add(job, 0.0)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / jobs


def doc_body() -> dict[str, Any]:
    """The documentation's Segmind nano-banana-pro body: a long prompt and two image_urls."""
    return json.loads((ROOT / DOC_BODY).read_text(encoding="utf-8"))["instance"]


def largest_body(max_bytes: int = 256 * 1024) -> dict[str, Any]:
    """The largest body the mock takes (valid, just under ``--max-body-bytes``): the longest
    prompt the schema allows, in 4-byte characters, and the rest small objects in a field
    the real API ignores (the body of 3.5 MB per job in issue 10)."""
    body: dict[str, Any] = {**doc_body(), "prompt": "\U0001f34c" * 20_000, "extra": []}
    size = len(json.dumps(body, ensure_ascii=False).encode())
    item = {"k": 1}
    body["extra"] = [item] * ((max_bytes - size - 64) // len(json.dumps(item) + ", "))
    return body


def bench_job_memory(jobs: int) -> dict[str, dict[str, float]]:
    """Memory kept per submit through HTTP (tracemalloc, after a collection), for the
    documentation's body and for the largest body: what a job costs the server for real."""
    import asyncio

    return asyncio.run(_job_memory(jobs))


async def _job_memory(jobs: int) -> dict[str, dict[str, float]]:
    return {
        "documentation body": await _kept_per_job(doc_body(), jobs),
        "largest body": await _kept_per_job(largest_body(), max(10, jobs // 50)),
    }


async def _kept_per_job(body: dict[str, Any], count: int) -> dict[str, float]:
    import gc

    import aiohttp
    from aiohttp.test_utils import TestServer

    from nanobanana_mock.app import create_app
    from nanobanana_mock.config import MockConfig

    data = json.dumps(body, ensure_ascii=False).encode()
    # a journal of one entry: the figure is the job's, not the journal's
    config = MockConfig(time_scale=0.0, processing_jitter=0.0, journal_size=1)
    headers = {"x-api-key": KEY, "Content-Type": "application/json"}
    # a plain session: aiohttp's TestClient keeps every response it made
    async with TestServer(create_app(config)) as server, aiohttp.ClientSession() as client:
        url = str(server.make_url("/v2/nano-banana-pro"))

        async def submit() -> None:
            async with client.post(url, data=data, headers=headers) as r:
                assert r.status == 200, await r.text()
                await r.read()

        async def settle() -> None:
            # the connection keeps its last request (and so its body) until the next: a
            # small one, so that no body is counted as a job's
            async with client.get(server.make_url("/_mock/health")) as r:
                await r.read()
            gc.collect()

        for _ in range(20):  # warm: caches, the first lane, the journal's one entry
            await submit()
        await settle()
        tracked = len(gc.get_objects())
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            await submit()
        await settle()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        tracked = len(gc.get_objects()) - tracked
    return {
        "body_bytes": len(data),
        "per_job": (after - before) / count,
        "tracked": tracked / count,  # objects each collection of the old generation scans
        "jobs": count,
    }


def bench_render() -> dict[str, float]:
    from nanobanana_mock.engine.images import ImageSpec, render

    times = {}
    for fmt in ("jpg", "png", "webp"):
        spec = ImageSpec(5504, 3072, fmt, 1, "bench 16:9 4K")
        best = min(_timed(render, spec) for _ in range(3))
        times[fmt] = best
    return times


def _timed(func: object, spec: object) -> float:
    start = time.perf_counter()
    func(spec)  # type: ignore[operator]
    return time.perf_counter() - start


def report(
    http: dict,
    memory: float,
    job_memory: dict[str, dict[str, float]],
    render: dict,
    args: argparse.Namespace,
    command: str,
) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}.",
        f"Both servers pinned to core 0 (uvloop), wrk on core 1 with {args.connections} "
        f"connections. Each route is measured in {args.rounds} rounds; a round is {args.seconds} s "
        "against the mock and the same against the bare aiohttp reference (bench/reference.py), "
        "the mock first in even rounds and the reference first in odd ones. "
        "A round's ratio compares two runs seconds apart, and the table gives the median round "
        "and the lowest and highest ratios: these machines are shared, so only ratios measured "
        "side by side are compared.",
        "",
        "| route | mock req/s | p50 ms | p99 ms (worst) | non-2xx | reference req/s "
        "| reference p99 ms | ratio | ratio range | target | |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, target in TARGETS.items():
        row = summary(http["routes"][name])
        ok = (target is None or row["ratio"] >= target) and row["p99"] < 20 and not row["errors"]
        wanted = f"≥{target:.0%}, p99 < 20 ms" if target is not None else "p99 < 20 ms"
        lines.append(
            f"| {name} | {row['rps']:,.0f} | {row['p50']:.2f} | {row['p99']:.2f} "
            f"({row['worst_p99']:.2f}) | {row['errors']} | {row['ref_rps']:,.0f} "
            f"| {row['ref_p99']:.2f} | {row['ratio']:.0%} | {row['low']:.0%} to {row['high']:.0%} "
            f"| {wanted} | {'met' if ok else 'NOT met'} |"
        )
    lines += [
        "",
        f"The image is a cached 5504x3072 JPEG of {http['image_bytes']:,} bytes; the reference "
        "serves the same number of bytes.",
        "",
        "The 1 KB submit posts the documentation's Segmind nano-banana-pro body "
        f"({job_memory['documentation body']['body_bytes']:,.0f} bytes: a long prompt and two "
        "`image_urls`) to the mock, and the same bytes to the reference's POST.",
        "",
        f"Memory per stored job: **{memory:,.0f} bytes** over {args.jobs:,} jobs made directly "
        "in a store (target ≤ 2,048).",
        "",
        "Memory kept per job submitted through HTTP (tracemalloc after a collection; a job "
        "keeps its prompt and a few numbers, never its body):",
        "",
        "| body | body bytes | jobs | bytes kept per job | objects the collector tracks per job |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {row['body_bytes']:,.0f} | {row['jobs']:,.0f} | {row['per_job']:,.0f} "
            f"| {row['tracked']:.1f} |"
            for name, row in job_memory.items()
        ),
        "",
        "Rendering a 5504x3072 image (best of 3, in a worker process in the mock): "
        + ", ".join(f"{fmt} {seconds * 1000:.0f} ms" for fmt, seconds in render.items())
        + ".",
    ]
    analysis = HERE / "ANALYSIS.md"
    if analysis.is_file():
        lines += ["", analysis.read_text(encoding="utf-8").rstrip()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per route (mock, reference)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument(
        "--http-jobs", type=int, default=5_000, help="jobs submitted to measure memory per job"
    )
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument(
        "--store-rounds", type=int, default=3, help="rounds per route of bench/store.py"
    )
    parser.add_argument(
        "--no-store", action="store_true", help="leave out the shared store (needs redis-server)"
    )
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    given = sys.argv[1:] if argv is None else argv
    command = "python bench/run.py " + " ".join(given) if given else "make bench"
    http = bench_http(args.seconds, args.connections, args.rounds)
    memory = bench_memory(args.jobs)
    job_memory = bench_job_memory(args.http_jobs)
    render = bench_render()
    text = report(http, memory, job_memory, render, args, command)
    if not args.no_store:  # the shared store, side by side (bench/store.py)
        from bench.store import bench_store
        from bench.store import report as store_report

        store = bench_store(args.seconds, args.store_rounds, args.connections)
        section = store_report(store)
        if "\n## Analysis" in text:  # before the analysis kept by hand
            text = text.replace("\n## Analysis", "\n" + section + "\n## Analysis", 1)
        else:
            text += "\n" + section
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
