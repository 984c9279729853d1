"""A stand-in for fal's real queue host, on a loopback port: fal's real layout
(``/fal-ai/{model}``, ``/fal-ai/{model}/requests/{id}/status``, ..., no ``/fal/queue``
prefix), each request forwarded to a mock's queue under ``/fal/queue``. The mock's queue URLs
in an answer (``status_url``, ``response_url``, ``cancel_url``) become the stand-in's, so a
client that follows them stays on it. ``requests`` lists every request as it arrived (method,
path): what the tests check.

A thread of the standard library's HTTP server; no test sleeps on it.
"""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FalStandIn", "closed_port"]

FORWARDED = ("authorization", "content-type")


class FalStandIn:
    """``with FalStandIn(mock_origin) as standin:`` serves at ``standin.origin``."""

    def __init__(self, mock_origin: str) -> None:
        self.queue = mock_origin.rstrip("/") + "/fal/queue"
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FalStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Any:
        """The mock's answer to the same request under its queue prefix: status, content
        type, body (the mock's queue URLs turned into the stand-in's)."""
        self.requests.append((method, path))
        sent = urllib.request.Request(self.queue + path, body, headers, method=method)
        try:
            with urllib.request.urlopen(sent, timeout=30) as answer:
                status, kind, data = answer.status, answer.headers["Content-Type"], answer.read()
        except urllib.error.HTTPError as err:
            status, kind, data = err.code, err.headers["Content-Type"], err.read()
        return (
            status,
            kind or "application/octet-stream",
            data.replace(self.queue.encode(), self.origin.encode()),
        )


def closed_port() -> int:
    """A loopback port nothing listens on: a request there fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _handler(standin: FalStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes

        def do_GET(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED}
            status, kind, data = standin.forward(self.command, self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PUT = do_DELETE = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
