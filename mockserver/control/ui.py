"""The dashboard's static files (``/_mock/ui/``): one HTML page, its style sheet and its
ES modules, from the package's ``ui/`` folder, served by name from a fixed list.

The page holds no state: it reads and changes the mock through the control plane's own JSON
routes, from the same origin, so those routes' guards (loopback, ``Host``, ``Origin``,
token, JSON on writes) apply to everything it does. The files themselves go through
:func:`~.api.guarded` too, without the token (a browser cannot send a header when it opens a
page; the page then asks for the token and sends it with every call). Every answer forbids
inline script and any other origin (``Content-Security-Policy``), sniffing and framing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aiohttp import web

from ..http import json_response

__all__ = ["FILES", "HEADERS", "ui_bare", "ui_file", "ui_page"]

FOLDER = Path(__file__).resolve().parent.parent / "ui"
# Every file the page may load, by name, and its media type: nothing else is ever read
FILES = {
    "index.html": "text/html",
    "dashboard.css": "text/css",
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "dom.js": "text/javascript",
    "timeline.js": "text/javascript",
    "journal.js": "text/javascript",
    "faults.js": "text/javascript",
    "clock.js": "text/javascript",
    "quotas.js": "text/javascript",
    "reports.js": "text/javascript",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _read(name: str) -> bytes:
    return (FOLDER / name).read_bytes()


def _answer(name: str) -> web.Response:
    kind = FILES.get(name)
    if kind is None:  # the control plane's 404, as for any path it does not have
        return json_response(404, {"error": f"no dashboard file {name[:100]!r}"})
    return web.Response(body=_read(name), content_type=kind, charset="utf-8", headers=HEADERS)


async def ui_page(request: web.Request) -> web.Response:
    """``/_mock/ui/``: the page."""
    return _answer("index.html")


async def ui_file(request: web.Request) -> web.Response:
    """``/_mock/ui/{file}``: one of :data:`FILES`, by its exact name (no path, no folder)."""
    return _answer(request.match_info["file"])


async def ui_bare(request: web.Request) -> web.Response:
    """``/_mock/ui``: to the page, whose modules load relative to its trailing slash."""
    raise web.HTTPPermanentRedirect("ui/")
