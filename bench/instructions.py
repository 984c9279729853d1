"""Instructions per request, old against new: a comparison a busy host cannot disturb.

`python bench/instructions.py --old /path/to/old/.venv/bin/python` runs each version's mock
(its own venv's Python, whose editable install points at its checkout) under valgrind's
callgrind, with instrumentation off while it starts, and counts the instructions the mock's
process executes while one keep-alive connection sends it ``--requests`` requests of a route
(after a warm-up). Wall-clock ratios on a shared two-core machine move by several percent
from run to run (`bench/versus.py` loads both versions at once to cancel most of that); an
instruction count repeats to a few parts in a hundred thousand, whatever the neighbours do,
so a change of one percent in the mock's own work shows. It cannot see cache misses or
system-call time: a wall-clock comparison still has the last word. Needs valgrind (Debian's
``valgrind`` package); takes about a minute per route and version.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import HERE, free_port, mock_command, wait_until_up

ROUTES = ("status", "submit", "submit1k", "result", "image")
KEY = "bench-key"


class Client:
    """One keep-alive HTTP/1.1 connection, requests written by hand (no client library's
    work in the count: it runs in this process, outside valgrind)."""

    def __init__(self, port: int) -> None:
        self.host = f"127.0.0.1:{port}".encode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.file = self.sock.makefile("rb")

    def send(self, raw: bytes) -> tuple[int, bytes]:
        self.sock.sendall(raw)
        status = int(self.file.readline().split()[1])
        length = 0
        while (line := self.file.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, self.file.read(length)

    def post(self, path: str, body: dict[str, object]) -> bytes:
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host.decode()}\r\nx-api-key: {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data

    def get(self, path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\nHost: {self.host.decode()}\r\nx-api-key: {KEY}\r\n\r\n".encode()


def count(python: str, route: str, requests: int, warm: int = 300) -> float:
    """Instructions the mock run by ``python`` executes per request of ``route``."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        mock = subprocess.Popen(  # bench/run.py's mock, run by the version's own Python
            [*valgrind, f"--callgrind-out-file={out}", python, *mock_command(port)[1:]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(f"http://127.0.0.1:{port}/_mock/health", seconds=600)
            client = Client(port)
            body = {"prompt": "bench", "output_resolution": "4K", "aspect_ratio": "16:9"}
            job = json.loads(client.send(client.post("/v2/nano-banana-pro", body))[1])
            client.send(client.post("/_mock/clock", {"advance": 100}))
            local = {
                name: re.sub(r"^https?://[^/]+", "", job[name]) for name in job if "url" in name
            }
            if route == "submit1k":  # bench/post1k.lua's body: the provider's documented one
                lua = (HERE / "post1k.lua").read_text(encoding="utf-8")
                doc = json.loads(lua.split("[==[", 1)[1].split("]==]", 1)[0])
                raw = client.post("/v2/nano-banana-pro", doc)
            elif route == "image":  # the result's image (bench/run.py's image route)
                result = json.loads(client.send(client.get(local["response_url"]))[1])
                raw = client.get(re.sub(r"^https?://[^/]+", "", result["output"]))
            elif route == "submit":
                raw = client.post("/v2/nano-banana", {"prompt": "bench"})
            else:  # status, result
                raw = client.get(local[{"status": "status_url", "result": "response_url"}[route]])
            for _ in range(warm):  # caches filled, the image rendered
                client.send(raw)
            control = ["callgrind_control", "-i"]
            subprocess.run([*control, "on", str(mock.pid)], capture_output=True, check=True)
            statuses = {client.send(raw)[0] for _ in range(requests)}
            subprocess.run([*control, "off", str(mock.pid)], capture_output=True, check=True)
            if statuses != {200}:
                raise RuntimeError(f"{route} answered {sorted(statuses)}, not only 200")
            subprocess.run(["callgrind_control", "-d", str(mock.pid)], capture_output=True)
            time.sleep(1)
        finally:
            mock.kill()
            mock.wait()
        dumps = sorted(Path(tmp).glob("callgrind.out*"), key=lambda p: p.stat().st_mtime)
        total = 0
        for line in dumps[-1].read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
        return total / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the old checkout's venv Python")
    parser.add_argument("--new", default=sys.executable, help="the new one's (this one)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--routes", nargs="+", choices=ROUTES, default=list(ROUTES))
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    for route in args.routes:
        old, new = (count(python, route, args.requests) for python in (args.old, args.new))
        print(
            f"{route}: old {old:,.0f}, new {new:,.0f} instructions per request, new/old {new / old:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
