"""Facts the checks take from the documented examples (``schemas/<provider>/examples``):
the example requests, the documented answer for a code, an id no job has, invalid bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nanobanana_mock import schemas

__all__ = [
    "INVALID_KINDS",
    "documented_body",
    "documented_example",
    "documented_invalid",
    "documented_requests",
    "invalid_body",
    "unknown_request_id",
    "variants",
]

INVALID_KINDS = ("bad-enum", "missing-prompt", "too-many-image-urls")
NOT_A_VALUE = "conformance-not-a-value"
SPARE_URL = "https://example.com/conformance.png"


def _examples(provider: str) -> list[tuple[str, Mapping[str, Any]]]:
    folder = Path(schemas.__file__).resolve().parent / provider / "examples"
    return [
        (path.stem, schemas.load(provider, f"examples/{path.stem}"))
        for path in sorted(folder.glob("*.json"))
    ]


def _request_schema(provider: str, model: str) -> str:
    return str(schemas.load(provider, "api")["models"][model]["request"])


def documented_requests(provider: str, model: str) -> dict[str, dict[str, Any]]:
    """The documented example requests of a model (``examples/*.json`` whose schema is the
    model's request schema and that are valid), by example name."""
    wanted = _request_schema(provider, model)
    found = {}
    for name, wrapper in _examples(provider):
        if wrapper.get("schema") == wanted and wrapper.get("valid") is True:
            found[name] = dict(wrapper["instance"])
    return found


def documented_body(provider: str, schema: str, http_status: int) -> Any:
    """The documented example answer of ``schema`` with this HTTP code (None if none)."""
    for _, wrapper in _examples(provider):
        same = wrapper.get("schema") == schema and wrapper.get("http_status") == http_status
        if same and wrapper.get("valid") is True:
            return wrapper["instance"]
    return None


def variants(provider: str, operation: str) -> list[str]:
    """The operation and its twins on other paths, as api.json names them
    (``sync_generate_stable``: Gemini's generateContent under /v1/ besides /v1beta/)."""
    operations = schemas.load(provider, "api")["operations"]
    return [op for op in operations if op == operation or op.startswith(operation + "_")]


def documented_example(provider: str, schema: str) -> Any:
    """The first valid documented example of ``schema`` (e.g. a request), or None."""
    for _, wrapper in _examples(provider):
        if wrapper.get("schema") == schema and wrapper.get("valid") is True:
            return wrapper["instance"]
    return None


def documented_invalid(provider: str, schema: Any) -> list[Any]:
    """The documented invalid examples of a request schema (none for the model's own
    ``model`` schema: its invalid bodies are made from its rules, :func:`invalid_body`)."""
    if schema in (None, "model"):
        return []
    return [
        wrapper["instance"]
        for _, wrapper in _examples(provider)
        if wrapper.get("schema") == schema and wrapper.get("valid") is False
    ]


def unknown_request_id(provider: str) -> str:
    """A well-formed request id from the documentation, which no job of ours has."""
    for _, wrapper in _examples(provider):
        body = wrapper.get("instance")
        if wrapper.get("valid") is True and str(wrapper.get("schema")).startswith("submit"):
            rid = body.get("request_id") if isinstance(body, Mapping) else None
            if isinstance(rid, str) and rid.replace("-", "").replace("_", "").isalnum():
                return rid
    raise LookupError(f"{provider}: no documented submit answer with a request id")


def invalid_body(
    provider: str, model: str, base: Mapping[str, Any], kind: str
) -> dict[str, Any] | None:
    """``base`` broken one way (:data:`INVALID_KINDS`), from the request schema's own rules;
    None when the schema has no such rule."""
    schema = schemas.load(provider, _request_schema(provider, model))
    properties = schema.get("properties", {})
    body = dict(base)
    if kind == "bad-enum":
        name = next((n for n, p in properties.items() if "enum" in p), None)
        return None if name is None else {**body, name: NOT_A_VALUE}
    if kind == "missing-prompt":
        if "prompt" not in schema.get("required", []):
            return None
        body.pop("prompt", None)
        return body
    if kind == "too-many-image-urls":
        limit = properties.get("image_urls", {}).get("maxItems")
        if limit is None:
            return None
        urls = body.get("image_urls") or [SPARE_URL]
        return {**body, "image_urls": [urls[0]] * (limit + 1)}
    raise ValueError(f"unknown kind of invalid body {kind!r}")
