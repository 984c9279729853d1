"""Deliberate contract breaks applied to an answer (the mechanics of the ``drift`` effect).

Edits use RFC 6901 JSON pointers. A pointer that does not resolve changes nothing: a drift
rule written for one state's body leaves other bodies alone. A drift edits the contract's
normal answers (:func:`drifts_here`), never an error envelope, unless ``when_status`` says so.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

__all__ = ["apply_drift", "drifts_here"]

MISSING = object()


def _parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def _index(part: str, items: list[Any]) -> int | None:
    """An RFC 6901 array index that exists: "0" or ASCII digits without a leading zero
    ("²" and "٣" are digits to ``str.isdigit`` but index nothing)."""
    if not part.isascii() or not part.isdigit() or (part[0] == "0" and part != "0"):
        return None
    if len(part) > len(str(len(items))):  # longer than any index: no int() of 5,000 digits
        return None
    index = int(part)
    return index if index < len(items) else None


def _parent(doc: Any, pointer: str) -> tuple[Any, str | int] | None:
    parts = _parts(pointer)
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and (index := _index(part, node)) is not None:
            node = node[index]
        else:
            return None
    last = parts[-1]
    if isinstance(node, list):
        index = _index(last, node)
        return None if index is None else (node, index)
    return (node, last) if isinstance(node, dict) else None


def _exists(doc: Any, pointer: str) -> bool:
    found = _parent(doc, pointer)
    if found is None:
        return False
    node, key = found
    return key in node if isinstance(node, dict) else True


def _pop(doc: Any, pointer: str) -> Any:
    found = _parent(doc, pointer)
    if found is None:
        return MISSING
    node, key = found
    if isinstance(node, dict):
        return node.pop(key, MISSING)
    return node.pop(key)


def _put(doc: Any, pointer: str, value: Any) -> None:
    found = _parent(doc, pointer)
    if found is not None:
        node, key = found
        node[key] = copy.deepcopy(value)  # a later drift may edit it: the rule's stays intact


def _edit(body: Any, drift: Mapping[str, Any]) -> Any:
    """``body`` (freshly parsed, edited in place) with one drift applied."""
    if "rename" in drift:
        value = _pop(body, drift["rename"]["from"])
        if value is not MISSING:
            _put(body, drift["rename"]["to"], value)
    if "add" in drift:
        _put(body, drift["add"]["path"], drift["add"]["value"])
    if "remove" in drift:
        _pop(body, drift["remove"])
    if "replace" in drift and _exists(body, drift["replace"]["path"]):
        _put(body, drift["replace"]["path"], drift["replace"]["value"])
    return body


def apply_drift(
    response: web.StreamResponse, drifts: list[Mapping[str, Any]]
) -> web.StreamResponse:
    """The answer with every drift applied (JSON bodies are edited; other bodies only get a
    new status)."""
    if not isinstance(response, web.Response):
        return response
    status = response.status
    body: bytes | None = response.body if isinstance(response.body, bytes) else None
    if response.content_type == "application/json" and body is not None:
        data = json.loads(body)
        for drift in drifts:
            data = _edit(data, drift)
        body = json.dumps(data, separators=(",", ":")).encode()
    for drift in drifts:
        status = drift.get("status", status)
    headers = {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in ("content-length", "content-type")
    }
    return web.Response(
        status=status, body=body, headers=headers, content_type=response.content_type
    )


def drifts_here(
    operations: Mapping[str, Any],
    operation: str | None,
    status: int,
    drift: Mapping[str, Any],
) -> bool:
    """Does ``drift`` apply to an answer of ``status`` to ``operation``? Only to the answers
    ``when_status`` names or, without it, to the contract's normal answers (those of
    ``operations``, a provider's api.json, whose schema is not the error envelope)."""
    if "when_status" in drift:
        return status in drift["when_status"]
    if operation is None or operation not in operations:
        return status < 400
    spec = operations[operation]["responses"].get(str(status), {})
    return ("schema" in spec and spec["schema"] != "error") or "content_type" in spec
