"""The access log, without secrets: the request line with every query value redacted.

aiohttp's ``%r`` logs the request line as sent, query included, so ``GET
/_mock/journal?key=K`` would write the key ``K`` to the log. :class:`AccessLog` logs the path
as sent (still percent-encoded, so no control character reaches the log) with the request's
own API key (from any provider's key header) redacted, and the query's parameter names only.
Every runner the mock starts (the CLI, the pytest plugin) uses it.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp.web_log import AccessLogger, KeyMethod
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from nanobanana_mock import schemas

__all__ = ["ACCESS_LOG_FORMAT", "AccessLog", "request_line"]

ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'
REDACTED = "…"
MAX_LOGGED_PATH = 2048  # characters of a path written to the log (a long one is cut)
# every provider's key header (api.json "auth"); a scheme such as "Bearer " is dropped
KEY_HEADERS = tuple(sorted({schemas.load(p, "api")["auth"]["header"] for p in schemas.PROVIDERS}))


def _keys(request: BaseRequest) -> list[str]:
    """The API keys the request carries, plain and percent-encoded, longest first."""
    found = set()
    for header in KEY_HEADERS:
        value = request.headers.get(header, "").strip()
        if " " in value:
            value = value.partition(" ")[2].strip()
        if value:  # a byte that is not UTF-8 arrives as a surrogate escape: sent as is
            found |= {value, quote(value, safe="", errors="surrogateescape")}
    return sorted(found, key=len, reverse=True)


def request_line(request: BaseRequest | None) -> str:
    """``METHOD /raw/path?name=…&other=… HTTP/1.1``: no query value ever reaches the log."""
    if request is None:
        return "-"
    path, sep, query = request.raw_path.partition("?")
    marked = path
    for key in _keys(request):
        marked = marked.replace(key, "\0")  # no NUL in a parsed request line
    if marked != path:  # whole segments: a short key ("a") replaced inside words spelt itself
        path = "/".join("[redacted]" if "\0" in part else part for part in marked.split("/"))
    if len(path) > MAX_LOGGED_PATH:
        path = path[:MAX_LOGGED_PATH] + REDACTED
    if sep:
        names = (part.partition("=")[0] for part in query.split("&") if part)
        path += "?" + "&".join(f"{name[:100]}={REDACTED}" for name in names)
    version = request.version
    return f"{request.method} {path} HTTP/{version.major}.{version.minor}"


def _format_r(request: BaseRequest, response: StreamResponse, time: float) -> str:
    return request_line(request)


class AccessLog(AccessLogger):
    """aiohttp's access logger with ``%r`` redacted (:func:`request_line`)."""

    def __init__(self, logger: logging.Logger, log_format: str = ACCESS_LOG_FORMAT) -> None:
        super().__init__(logger, log_format)
        # aiohttp caches compiled formats on its own class, shared with plain AccessLoggers:
        # the redacted method is swapped in on this instance only
        self._methods = [
            KeyMethod(m.key, _format_r) if m.key == "first_request_line" else m
            for m in self._methods
        ]
