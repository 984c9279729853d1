"""Two versions of the mock against each other, loaded at the same moment.

`python bench/versus.py --old /path/to/old/.venv/bin/python` starts the old checkout's mock and
this one's (each with its own venv's Python, whose editable install points at its checkout),
both pinned to core 0, and loads both at once from core 1 (`wrk -c25` each, 4 s per round),
route by route. A neighbour's burst of load on a shared machine then falls on both alike, which
two runs of `make bench` seconds apart cannot promise. It prints, for each route, the new
version's requests per second over the old one's in every round, and the median; and the new
version's CPU per request over the old one's (each mock's process, from /proc), which a busy
host moves less. `--redis`: both on the shared store (a Redis of their own on core 1, a
database each, one process each).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import HERE, free_port, request, start
from bench.store import cpu_seconds

ROUTES = {  # name: the wrk script that loads it
    "submit": "post.lua",
    "submit 1 KB": "post1k.lua",
    "status": "get.lua",
    "result": "get.lua",
    "image": "get.lua",
}


def serve(python: str, *extra: str) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """One mock (``extra``: more flags), and the URL of each route on it (a finished 4K job
    for the reads)."""
    port = free_port()
    flags = ["--port", str(port), "--time-scale", "0", "--log-level", "WARNING", *extra]
    proc = start(
        [python, "-m", "nanobanana_mock", *flags, "--processing-jitter", "0"],
        f"http://127.0.0.1:{port}/_mock/health",
    )
    base = f"http://127.0.0.1:{port}"
    job = request(
        f"{base}/v2/nano-banana-pro",
        {"prompt": "bench", "output_resolution": "4K", "aspect_ratio": "16:9"},
    )
    request(f"{base}/_mock/clock", {"advance": 100})
    image = request(job["response_url"])["output"]
    urllib.request.urlopen(image, timeout=60).read()  # renders and caches
    urls = {
        "submit": f"{base}/v2/nano-banana",
        "submit 1 KB": f"{base}/v2/nano-banana-pro",
        "status": job["status_url"],
        "result": job["response_url"],
        "image": image,
    }
    return proc, urls


def both(script: str, old: str, new: str, seconds: int, connections: int) -> tuple[float, float]:
    """wrk against both at once, from core 1; requests per second of (old, new)."""
    command = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s"]
    runs = [
        subprocess.Popen([*command, str(HERE / script), url], stdout=subprocess.PIPE, text=True)
        for url in (old, new)
    ]
    rates = []
    for run in runs:
        out, _ = run.communicate(timeout=seconds + 60)
        line = next(x for x in out.splitlines() if x.startswith("Requests/sec:"))
        rates.append(float(line.split()[1]))
    return rates[0], rates[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the old checkout's venv Python")
    parser.add_argument("--new", default=sys.executable, help="the new one's (this one)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=25)
    parser.add_argument(
        "--redis",
        action="store_true",
        help="both on a Redis of their own (one process each, a database each): the shared store",
    )
    args = parser.parse_args(argv)
    redis: tuple[subprocess.Popen[bytes], int, str] | None = None
    stores: list[list[str]] = [[], []]
    if args.redis:
        from bench.store import start_redis

        redis = start_redis()
        url = f"redis://127.0.0.1:{redis[1]}"
        stores = [["--store", f"{url}/{db}", "--processes", "1"] for db in (0, 1)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        old, old_urls = serve(args.old, *stores[0])
        procs.append(old)
        new, new_urls = serve(args.new, *stores[1])
        procs.append(new)
        for name, script in ROUTES.items():
            ratios, costs = [], []
            for _ in range(args.rounds):
                cpu = [cpu_seconds([proc.pid]) for proc in (old, new)]
                a, b = both(script, old_urls[name], new_urls[name], args.seconds, args.connections)
                used = [
                    cpu_seconds([proc.pid]) - was for proc, was in zip((old, new), cpu, strict=True)
                ]
                ratios.append(b / a)
                costs.append((used[1] / b) / (used[0] / a) if a and b and used[0] else 0.0)
            shown = ", ".join(f"{r:.2f}" for r in ratios)
            spent = ", ".join(f"{c:.2f}" for c in costs)
            print(
                f"{name}: new/old {statistics.median(ratios):.2f} (rounds {shown}); "
                f"CPU per request new/old {statistics.median(costs):.2f} (rounds {spent})",
                flush=True,
            )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(10)
            shutil.rmtree(redis[2], ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
