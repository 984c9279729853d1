"""The OpenAPI documents are built from the contracts, valid, complete and served."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from nanobanana_mock import schemas
from nanobanana_mock.openapi import openapi_document
from tests.harness import Mock


@pytest.mark.parametrize("provider", schemas.PROVIDERS)
def test_documents_are_valid_openapi_3_1(provider: str) -> None:
    document = openapi_document(provider)
    assert document["openapi"] == "3.1.0"
    validate(document)


@pytest.mark.parametrize("provider", schemas.PROVIDERS)
def test_every_operation_and_model_has_a_path(provider: str) -> None:
    api = schemas.load(provider, "api")
    paths = openapi_document(provider)["paths"]
    for name, op in api["operations"].items():
        models = api["models"] if "{model}" in op["path"] else [None]
        for model in models:
            path = op["path"].replace("{model}", model) if model else op["path"]
            entry = paths[path][op["method"].lower()]
            assert set(entry["responses"]) == set(op["responses"]), (name, model)


@pytest.mark.parametrize("provider", schemas.PROVIDERS)
def test_request_schemas_are_the_contract_files(provider: str) -> None:
    api = schemas.load(provider, "api")
    components = openapi_document(provider)["components"]["schemas"]
    for model, info in api["models"].items():
        source = schemas.load(provider, info["request"])
        built = components[f"{provider}.{info['request']}"]
        assert built["properties"].keys() == source["properties"].keys()
        assert built.get("required") == source.get("required"), model
        assert "$id" not in built and all(
            ref.startswith("#/components/schemas/") for ref in _refs(built)
        )


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.parametrize(
    ("provider", "targets"),
    [
        ("segmind", {"status", "result", "poll"}),
        ("seaart", {"status", "result", "cancel"}),
        ("pixazo", {"result"}),
    ],
)
def test_submit_links_to_the_polling_routes(provider: str, targets: set[str]) -> None:
    paths = openapi_document(provider)["paths"]
    for entry in (methods["post"] for methods in paths.values() if "post" in methods):
        if entry["operationId"].startswith("submit"):
            assert set(entry["responses"]["200"]["links"]) == targets


async def test_the_mock_serves_them(mock: Mock) -> None:
    for provider in schemas.PROVIDERS:
        resp = await mock.client.get(f"/_mock/openapi/{provider}.json")
        assert resp.status == 200 and await resp.json() == openapi_document(provider)
    assert (await mock.client.get("/_mock/openapi/midjourney.json")).status == 404
