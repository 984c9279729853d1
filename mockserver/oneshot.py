"""An answer of a ``bytes`` body (JSON, an image) written in one go: the same bytes as
aiohttp's ``web.Response``, with one coroutine where aiohttp awaits about ten (the mock's
hottest path: every status poll).

aiohttp prepares a response through a chain of coroutines (``prepare``, ``_start`` twice,
``_prepare_headers``, ``_prepare_hook``, ``_write_headers``, the writer's ``write_headers``,
then ``write_eof`` three levels deep), each a frame and a coroutine object made and awaited:
about a tenth of a status poll's instructions (bench/instructions.py: 231,000, then 202,000
with this). :class:`OneShot` does what that chain does for the common case (a fixed ``bytes``
body, no compression, no cookies, no chunking, no ``on_response_prepare`` signal, a method
and status that carry a body) in its ``prepare``: the headers aiohttp adds (Content-Length,
Content-Type, Date, Server, Connection), serialised by aiohttp's own serialiser and sent with
the body in one write. Any other case, and any aiohttp whose writer lacks what this relies
on, takes aiohttp's own path (:data:`FAST`). tests/mockserver/test_oneshot.py holds the two
paths to the same bytes.
"""

from __future__ import annotations

import inspect
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http import SERVER_SOFTWARE, HttpVersion10, HttpVersion11
from multidict import CIMultiDict

__all__ = ["FAST", "OneShot"]

try:  # what the one-go path uses of aiohttp's writer (3.14 has all of it)
    from aiohttp.compression_utils import MAX_SYNC_CHUNK_SIZE
    from aiohttp.helpers import rfc822_formatted_time
    from aiohttp.http_writer import StreamWriter, _serialize_headers

    FAST = all(
        hasattr(StreamWriter, name)
        for name in ("_writelines", "_write", "_send_headers_with_payload", "drain")
    )
except ImportError:  # pragma: no cover - an aiohttp without them: its own path, always
    FAST = False

# a response may be handed the headers it keeps (no copy), where aiohttp allows it
_OWN_HEADERS = FAST and "_real_headers" in inspect.signature(web.StreamResponse.__init__).parameters
_CONTENT_TYPE = hdrs.CONTENT_TYPE
_CONTENT_LENGTH = hdrs.CONTENT_LENGTH
_DATE = hdrs.DATE
_SERVER = hdrs.SERVER
_CONNECTION = hdrs.CONNECTION
_NO_BODY = frozenset({hdrs.METH_HEAD, hdrs.METH_CONNECT})


class OneShot(web.Response):
    """A ``web.Response`` of a ``bytes`` body (JSON, by default) that writes itself in one
    go when it can (see the module's text), and as aiohttp does otherwise."""

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: Any = None,
        content_type: str = "application/json",
    ) -> None:
        real: CIMultiDict[str] = CIMultiDict() if headers is None else CIMultiDict(headers)
        if _CONTENT_TYPE not in real:
            real[_CONTENT_TYPE] = content_type
        if not _OWN_HEADERS:  # pragma: no cover - an older aiohttp copies them once more
            super().__init__(status=status, body=body, headers=real)
            return
        web.StreamResponse.__init__(self, status=status, _real_headers=real)
        self._body = body
        self._zlib_executor_size = MAX_SYNC_CHUNK_SIZE
        self._zlib_executor = None

    async def prepare(self, request: web.BaseRequest) -> Any:
        status = self._status
        writer = request._payload_writer
        if (
            not FAST
            or self._payload_writer is not None
            or self._eof_sent
            or self._compression
            or self._chunked
            or self._cookies
            or not isinstance(self._body, bytes)
            or status < 200
            or status in (204, 304)
            or request.method in _NO_BODY
            or _CONTENT_LENGTH in self._headers
            or not isinstance(writer, StreamWriter)
            or writer._on_headers_sent is not None
            or writer._on_chunk_sent is not None
            or writer._compress is not None
            or writer.chunked
        ):
            return await super().prepare(request)
        match_info = getattr(request, "_match_info", None)  # (a web.Request's)
        for app in match_info._apps if match_info is not None else ():
            if app.on_response_prepare:  # a listener: aiohttp's path, which calls it
                return await super().prepare(request)
        body = self._body
        keep_alive = self._keep_alive
        if keep_alive is None:
            keep_alive = self._keep_alive = request.keep_alive
        version = request.version
        headers = self._headers
        headers[_CONTENT_LENGTH] = str(len(body))
        if body:
            headers.setdefault(_CONTENT_TYPE, "application/octet-stream")
        if _DATE not in headers:
            headers[_DATE] = rfc822_formatted_time()
        headers.setdefault(_SERVER, SERVER_SOFTWARE)
        if _CONNECTION not in headers:
            if keep_alive:
                if version == HttpVersion10:
                    headers[_CONNECTION] = "keep-alive"
            elif version == HttpVersion11:
                headers[_CONNECTION] = "close"
        line = f"HTTP/{version[0]}.{version[1]} {status} {self._reason}"
        head = _serialize_headers(line, headers)
        if body:
            writer._writelines((head, body))
        else:
            writer._write(head)
        writer._eof = True
        self._eof_sent = True
        self._body_length = writer.output_size
        await writer.drain()
        return writer
