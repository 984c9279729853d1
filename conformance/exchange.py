"""Raw HTTP for the suite: every answer as it came (status, content type, body), so each one
can be checked against the contract. No retries, no error mapping: a 4xx is an observation.

A blocking facade over one aiohttp session on a private event loop, so the suite's tests stay
plain functions. Errors (a tool error, never a contract finding; STYLE rule 5)::

    TargetError   no answer at all: connection refused, reset, timed out
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["Answer", "Http", "TargetError"]

TIMEOUT_SECONDS = 120.0


class TargetError(Exception):
    """The target gave no answer (a tool error: the run cannot judge the contract)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer. ``body`` is the decoded JSON when the answer is JSON, else the text
    (or the bytes, for images)."""

    status: int
    content_type: str
    body: Any
    raw: bytes

    @property
    def json(self) -> Mapping[str, Any]:
        """The body if it is a JSON object, else an empty mapping (checks report the rest)."""
        return self.body if isinstance(self.body, Mapping) else {}


class Http:
    """One aiohttp session on a private loop; :meth:`close` it when done."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self._loop = asyncio.new_event_loop()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def call(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Answer:
        """Send one request and read the whole answer."""
        return self._loop.run_until_complete(self._call(method, url, headers, json_body))

    def close(self) -> None:
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
        self._loop.close()

    async def _call(
        self, method: str, url: str, headers: Mapping[str, str] | None, json_body: Any
    ) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        data = None if json_body is None else json.dumps(json_body).encode()
        try:
            async with self._session.request(
                method, url, headers=dict(headers or {}), data=data
            ) as response:
                raw = await response.read()
                return Answer(response.status, response.content_type, _decode(response, raw), raw)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__  # a timeout has no message
            raise TargetError(f"{method} {url}: no answer ({reason})") from exc


def _decode(response: aiohttp.ClientResponse, raw: bytes) -> Any:
    if response.content_type == "application/json" or response.content_type.endswith("+json"):
        try:
            return json.loads(raw)
        except ValueError:
            pass  # a broken JSON answer: keep its text, the schema check reports it
    if response.content_type.startswith("image/"):
        return raw
    return raw.decode("utf-8", "replace")
