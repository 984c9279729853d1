"""The control plane's spec: ``schemas/mock/control/api.json`` and the schemas it names.

Each route (by its aiohttp name without ``control.``, or ``mock.`` for health, index and
OpenAPI) has a method, a path, the schema of its request body and of its answer per success
status; every refusal is ``control/error``. The server checks request bodies (and, with
``self_check``, its answers) against them; the tests check :class:`MockControl` against the
same files.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from nanobanana_mock import schemas
from nanobanana_mock.schemas import Violation

__all__ = ["ERROR", "answer_schema", "check", "properties", "request_schema", "route_of", "routes"]

ERROR = "control/error"


@cache
def routes() -> dict[str, dict[str, Any]]:
    """Every route of the contract, by name."""
    return dict(schemas.load("mock", "control/api")["routes"])


def request_schema(route: str) -> str | None:
    """The schema name (``control/<name>``) of a route's request body; None: it takes none."""
    name = routes()[route]["request"]
    return None if name is None else f"control/{name}"


def answer_schema(route: str, status: int) -> str | None:
    """The schema name of a route's answer with ``status`` (``control/error`` for a refusal);
    None: no body, or a success status the contract does not list."""
    if status >= 400:
        return ERROR
    name = routes()[route]["answers"].get(str(status))
    return None if name is None else f"control/{name}"


@cache
def properties(route: str) -> tuple[str, ...]:
    """The members a route's request body may have (its schema's ``properties``)."""
    name = request_schema(route)
    return () if name is None else tuple(schemas.load("mock", name).get("properties", {}))


def check(schema: str, body: Any) -> list[Violation]:
    """How ``body`` breaks ``schemas/mock/<schema>.json`` (bounded: see ``explain``)."""
    return schemas.explain("mock", schema, body)


@cache
def _patterns() -> list[tuple[str, str, re.Pattern[str]]]:
    found = []
    for name, route in routes().items():
        parts = re.split(r"(\{[a-z_]+\})", route["path"])
        pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        # every route is served under /t/{tenant} too
        found.append((route["method"], name, re.compile(r"(?:/t/[^/]+)?" + pattern + r"\Z")))
    return found


def route_of(method: str, path: str) -> str | None:
    """The route a request (method and path, no query, with or without a ``/t/{tenant}``
    prefix) is for, if the contract has it."""
    for wanted, name, pattern in _patterns():
        if wanted == method and pattern.match(path):
            return name
    return None
