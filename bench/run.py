"""`make bench`: the mock against a bare aiohttp reference, side by side, in one run.

Each server runs alone on core 0 (taskset) with uvloop; wrk runs on core 1 with 50
connections. Figures are requests per second, p50 and p99 latency, and each figure as a
ratio to the reference's matching route (POST for submit, GET for the rest, the same number of
bytes for the image). Then the memory of 100,000 stored jobs (tracemalloc) and the time to
render a 4K image. Results go to BENCHMARKS.md with the command that produced them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

KEY = "bench-key"
TARGETS = {"submit": 0.60, "status": 0.70, "result": 0.70, "image": 0.50}


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


def start(command: list[str], probe: str) -> subprocess.Popen[bytes]:
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    proc = subprocess.Popen(pin + command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(probe)
    return proc


def request(url: str, body: dict | None = None, method: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method or ("POST" if data else "GET"),
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


def bench_http(seconds: int, connections: int) -> dict[str, dict[str, dict[str, float]]]:
    python = sys.executable
    results: dict[str, dict[str, dict[str, float]]] = {"mock": {}, "reference": {}}
    port = free_port()
    mock = start(
        [
            python,
            "-m",
            "mockserver",
            "--port",
            str(port),
            "--time-scale",
            "0",
            "--log-level",
            "WARNING",
            "--processing-jitter",
            "0",
        ],
        f"http://127.0.0.1:{port}/_mock/health",
    )
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
        # reads first: the submit run creates ~100,000 jobs, and the store then evicts the
        # oldest, this job among them
        urls = {
            "status": ("get.lua", job["status_url"]),
            "result": ("get.lua", job["response_url"]),
            "image": ("get.lua", image_url),
            "submit": ("post.lua", f"{base}/v2/nano-banana"),
        }
        for name, (script, url) in urls.items():
            results["mock"][name] = wrk(url, script, seconds, connections)
    finally:
        mock.terminate()
        mock.wait(10)
    port = free_port()
    reference = start(
        [python, str(HERE / "reference.py"), str(port), str(image_size)],
        f"http://127.0.0.1:{port}/v2/requests/x/status",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        urls = {
            "submit": ("post.lua", f"{base}/v2/nano-banana"),
            "status": ("get.lua", f"{base}/v2/requests/x/status"),
            "result": ("get.lua", f"{base}/v2/requests/x"),
            "image": ("get.lua", f"{base}/image"),
        }
        for name, (script, url) in urls.items():
            results["reference"][name] = wrk(url, script, seconds, connections)
    finally:
        reference.terminate()
        reference.wait(10)
    results["image_bytes"] = {"size": image_size}  # type: ignore[assignment]
    return results


def bench_memory(jobs: int) -> float:
    """Bytes per stored job, as the mock stores them (Job, store, pool, expiry heap)."""
    from mockserver.jobs import Job, JobStore, Output

    store = JobStore(workers=4, max_jobs=jobs)
    body = '{"prompt": "A red apple on a white table", "aspect_ratio": "16:9"}'
    output = Output(1376, 768, "png", 1)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(jobs):
        job = Job(
            id=f"{i:08x}-0000-4000-8000-000000000000",
            provider="segmind",
            model="nano-banana",
            owner="0123456789abcdef",
            request=json.loads(body),
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


def bench_render() -> dict[str, float]:
    from mockserver.images import ImageSpec, render

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


def report(http: dict, memory: float, render: dict, args: argparse.Namespace, command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}.",
        f"Each server alone on core 0 (uvloop), wrk on core 1: {args.connections} connections, "
        f"{args.seconds} s per route. Ratios are to the bare aiohttp reference (bench/reference.py) "
        "measured in the same run: these machines are shared, so only ratios are compared.",
        "",
        "| route | mock req/s | p50 ms | p99 ms | non-2xx | reference req/s | ratio | target | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, target in TARGETS.items():
        mock, ref = http["mock"][name], http["reference"][name]
        ratio = mock["rps"] / ref["rps"]
        ok = ratio >= target and mock["p99"] < 20 and mock["errors"] == 0
        lines.append(
            f"| {name} | {mock['rps']:,.0f} | {mock['p50']:.2f} | {mock['p99']:.2f} | {mock['errors']} | {ref['rps']:,.0f} | "
            f"{ratio:.0%} | ≥{target:.0%}, p99 < 20 ms | {'met' if ok else 'NOT met'} |"
        )
    lines += [
        "",
        f"The image is a cached 5504x3072 JPEG of {http['image_bytes']['size']:,} bytes; the reference "
        "serves the same number of bytes.",
        "",
        f"Memory per stored job: **{memory:,.0f} bytes** over {args.jobs:,} jobs (target ≤ 2,048).",
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
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    given = sys.argv[1:] if argv is None else argv
    command = "python bench/run.py " + " ".join(given) if given else "make bench"
    http = bench_http(args.seconds, args.connections)
    memory = bench_memory(args.jobs)
    render = bench_render()
    text = report(http, memory, render, args, command)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
