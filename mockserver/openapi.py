"""OpenAPI 3.1 documents built from the contracts: never a hand-kept copy.

For each provider, from ``api.json`` (operations, auth, models), the request and response
JSON Schemas and ``lifecycle.json``:
- ``{model}`` paths are expanded into one concrete path per model, so each gets its own body schema;
- every schema file is bundled under ``components/schemas`` with its cross-file ``$ref`` s
  rewritten to document-local ones (JSON Schema 2020-12 is OpenAPI 3.1's dialect);
- links from submit lead to status, result and cancel, so stateful testing can follow a job.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urljoin

from nanobanana_mock import schemas

__all__ = ["openapi_document"]

ROOT = "https://nanobanana-mock.local/schemas/"


def _component(provider: str, name: str) -> str:
    return f"{provider}.{name}"


def _schema_files(provider: str) -> list[tuple[str, str]]:
    """(folder, name) of every schema file a provider's documents may reference."""
    api = schemas.load(provider, "api")
    names = {
        spec["schema"]
        for op in api["operations"].values()
        for spec in op["responses"].values()
        if "schema" in spec
    }
    names |= {
        spec["headers"]
        for op in api["operations"].values()
        for spec in op["responses"].values()
        if "headers" in spec
    }
    names |= {info["request"] for info in api["models"].values()}
    names |= {  # a variant's schemas (fal's /edit: request.<model>.edit)
        info["request"] + op["request_suffix"]
        for op in api["operations"].values()
        if "request_suffix" in op
        for info in api["models"].values()
    }
    names |= {
        op["request"]
        for op in api["operations"].values()
        if op.get("request") not in (None, "model")
    }
    files = [(provider, name) for name in sorted(names)]
    files.append(("", "common"))
    return files


def _rewrite(node: Any, base_id: str, known: dict[str, str]) -> Any:
    """Copy ``node`` with every ``$ref`` made document-local."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("$id", "$schema"):
                continue
            if key == "$ref" and isinstance(value, str):
                target, _, fragment = urljoin(base_id, value).partition("#")
                out[key] = f"#/components/schemas/{known[target]}{fragment}"
            else:
                out[key] = _rewrite(value, base_id, known)
        return out
    if isinstance(node, list):
        return [_rewrite(item, base_id, known) for item in node]
    return node


def _components(provider: str) -> dict[str, Any]:
    files = _schema_files(provider)
    known = {}
    for folder, name in files:
        doc = schemas.load(folder, name)
        known[doc["$id"]] = _component(folder or "shared", name)
    # schemas may reference files outside the list (e.g. status from result): add them too
    pending = list(files)
    bundled: dict[str, Any] = {}
    while pending:
        folder, name = pending.pop()
        doc = schemas.load(folder, name)
        for ref in _refs(doc):
            target = urljoin(doc["$id"], ref).partition("#")[0]
            if target not in known:
                rel = target[len(ROOT) :].removesuffix(".json")
                sub_folder, _, sub_name = rel.rpartition("/")
                known[target] = _component(sub_folder or "shared", sub_name)
                pending.append((sub_folder, sub_name))
        bundled[known[doc["$id"]]] = _rewrite(doc, doc["$id"], known)
    return dict(sorted(bundled.items()))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def _ref(provider: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{_component(provider, name)}"}


def _responses(provider: str, operation: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, spec in sorted(operation["responses"].items()):
        response: dict[str, Any] = {"description": spec.get("description", f"HTTP {code}")}
        if "schema" in spec:
            response["content"] = {"application/json": {"schema": _ref(provider, spec["schema"])}}
        elif "events" in spec:  # an event stream: the schema is each event's (its data JSON)
            response["content"] = {spec["content_type"]: {"schema": _event(provider, spec)}}
        elif "content_type" in spec:
            response["content"] = {
                spec["content_type"]: {"schema": {"type": "string", "format": "binary"}}
            }
        out[code] = response
    return out


def _event(provider: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event (its fields, as an event-stream schema gives them), whose data is
    JSON keeping the schema api.json names in ``events``."""
    data = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": _ref(provider, spec["events"]),
    }
    return {"type": "object", "required": ["data"], "properties": {"data": data}}


def _security(provider: str) -> tuple[dict[str, Any], list[dict[str, list[str]]]]:
    auth = schemas.load(provider, "api")["auth"]
    if auth.get("schemes"):
        scheme = {
            "type": "http",
            "scheme": "bearer",
            "description": f"{auth['header']}: {' or '.join(auth['schemes'])} <key>",
        }
    else:
        scheme = {"type": "apiKey", "in": "header", "name": auth["header"]}
    return {"apiKey": scheme}, [{"apiKey": []}]


def _links(provider: str, api: dict[str, Any], model: str | None) -> dict[str, Any]:
    links = {}
    for name, op in api["operations"].items():
        if (
            name in ("submit", "sync_generate", "sync", "stream")
            or op.get("lifecycle_route") is None
        ):
            continue
        link: dict[str, Any] = {
            "operationId": _operation_id(name, model if "{model}" in op["path"] else None)
        }
        if "{request_id}" in op["path"]:
            link["parameters"] = {"request_id": "$response.body#/request_id"}
        elif op.get("request") == "result_request":
            link["requestBody"] = {"request_id": "$response.body#/request_id"}
        links[name] = link
    return links


def _operation_id(name: str, model: str | None) -> str:
    return f"{name}.{model}" if model else name


def _title(api: dict[str, Any]) -> str:
    """The provider's title, with the other name its documentation uses: SeaArt (SeaCloud)."""
    other = api.get("also_known_as")
    return f"{api['title']} ({other})" if other else str(api["title"])


@cache
def openapi_document(provider: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of one provider (cached; treat it as read-only)."""
    api = schemas.load(provider, "api")
    schemes, security = _security(provider)
    paths: dict[str, Any] = {}
    for name, op in api["operations"].items():
        models = list(api["models"]) if "{model}" in op["path"] else [op.get("model")]
        for model in models:
            path = (
                op["path"].replace("{model}", model)
                if model and "{model}" in op["path"]
                else op["path"]
            )
            entry: dict[str, Any] = {
                "operationId": _operation_id(name, model if "{model}" in op["path"] else None),
                "summary": f"{name} ({model})" if model else name,
                "responses": _responses(provider, op),
            }
            parameters = [
                {"name": name, "in": "query", "required": False, "schema": value}
                for name, value in op.get("query", {}).items()
            ]
            if "{request_id}" in path:
                parameters.insert(
                    0,
                    {
                        "name": "request_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                    },
                )
            if parameters:
                entry["parameters"] = parameters
            request = (
                api["models"][model]["request"] + op.get("request_suffix", "")
                if op.get("request") == "model" and model
                else op.get("request")
            )
            if request:
                entry["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(provider, request)}},
                }
            if name == "submit":
                for code in ("200", "201", "202"):
                    if code in entry["responses"]:
                        entry["responses"][code]["links"] = _links(provider, api, model)
            paths.setdefault(path, {})[op["method"].lower()] = entry
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": f"{_title(api)} Nano Banana API (nanobanana-mock contract)",
            "version": "1",
            "description": api.get("description", "") or f"Built from schemas/{provider}.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": _components(provider), "securitySchemes": schemes},
        "security": security,
    }
