"""JSON types as the documentation shows them: where a model page (the specification, see
docs/providers.md) or another of the provider's own doc pages shows an integer, the contract
says ``integer``; where it shows a fraction, ``number``; and every numeric field says in its
description where its type comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import validators

from nanobanana_mock import schemas
from nanobanana_mock.schemas import PROVIDERS

ROOT = Path(schemas.__file__).resolve().parent
EXAMPLES = sorted(ROOT.glob("*/examples/*.json"))
DOCUMENTED = [  # valid examples copied from the documentation: model pages and doc pages
    path
    for path in EXAMPLES
    if (wrapper := json.loads(path.read_text(encoding="utf-8")))["valid"]
    and wrapper["source"].startswith("[DOC")
]
# Every example body of the five model pages (.seed000 to .seed004), as (provider, file)
SEED_EXAMPLES = {
    ("segmind", "request.nano-banana-pro.seed000"),  # Segmind nano-banana-pro's payload
    ("segmind", "request.nano-banana-2.seed001"),  # seed=420875, safety_tolerance=4
    ("segmind", "request.nano-banana.seed002"),
    ("seaart", "request.nano_banana_pro.seed003"),
    ("seaart", "submit.seed003"),  # queue_position: 0, "int" in its table
    ("pixazo", "request.nano-banana-pro.seed004"),
    ("pixazo", "submit.seed004"),
    ("pixazo", "result_request.seed004"),
    ("pixazo", "result.in_progress.seed004"),  # queue_position 2, estimated_remaining 8
    ("pixazo", "result.completed.seed004"),  # 1024 x 1024, 12.4 s, 2 input images
    ("pixazo", "result.failed.seed004"),
    *(("pixazo", f"error.{code}.seed004") for code in (400, 401, 403, 404, 429, 500)),
    ("pixazo", "error.example.seed004"),
}
NUMERIC_REFS = {f"../common.json#/$defs/{name}" for name in ("nonNegNumber", "nonNegInteger")}
NUMERIC_REFS.add("../common.json#/$defs/positiveInteger")


def _is_int(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_fraction(checker: Any, instance: Any) -> bool:
    return isinstance(instance, float)


def as_shown(provider: str, name: str) -> Any:
    """A validator whose ``integer`` is an integer as written and whose ``number`` is a
    number written with a fraction: an example's 8 then needs ``integer``, its 12.4
    ``number``."""
    base = schemas.validator(provider, name)
    checker = base.TYPE_CHECKER.redefine("integer", _is_int).redefine("number", _is_fraction)
    shown = validators.extend(type(base), type_checker=checker)
    return shown(base.schema, registry=base._registry)


def test_every_model_page_example_is_stored() -> None:
    stored = {(p.parent.parent.name, p.stem) for p in DOCUMENTED}
    assert stored >= SEED_EXAMPLES, SEED_EXAMPLES - stored


@pytest.mark.parametrize("path", DOCUMENTED, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTED])
def test_the_contract_types_each_number_as_the_documentation_shows_it(path: Path) -> None:
    wrapper = json.loads(path.read_text(encoding="utf-8"))
    check = as_shown(path.parent.parent.name, wrapper["schema"])
    problems = [
        f"/{'/'.join(map(str, error.absolute_path))}: {error.message}"
        + "".join(f" ({sub.message})" for sub in error.context or [])
        for error in check.iter_errors(wrapper["instance"])
    ]
    assert problems == []


def _numeric_nodes(node: Any, pointer: str = "", key: str = "") -> list[tuple[str, dict]]:
    """Every subschema that types a JSON number (directly or through a common definition)."""
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        if key not in ("properties", "$defs", "patternProperties"):
            kind = node.get("type")
            kinds = set(kind) if isinstance(kind, list) else {kind}
            if kinds & {"integer", "number"} or node.get("$ref") in NUMERIC_REFS:
                found.append((pointer, node))
        for name, value in node.items():
            found += _numeric_nodes(value, f"{pointer}/{name}", name)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _numeric_nodes(value, f"{pointer}/{index}")
    return found


CONTRACTS = [
    path
    for provider in PROVIDERS
    for path in sorted((ROOT / provider).glob("*.json"))
    if path.stem not in ("api", "lifecycle")
]


@pytest.mark.parametrize("path", CONTRACTS, ids=[str(p.relative_to(ROOT)) for p in CONTRACTS])
def test_every_numeric_field_says_where_its_type_comes_from(path: Path) -> None:
    """Each says "JSON type: ..." in its description: the page that shows it, or that the
    model pages show no value (and what the type was kept from)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    silent = [
        p for p, node in _numeric_nodes(doc) if "JSON type:" not in node.get("description", "")
    ]
    assert silent == []


def test_as_shown_tells_an_integer_from_a_fraction() -> None:
    """The check above can fail: a schema saying number for the page's 8 is caught."""
    body = {"status": "IN_PROGRESS", "request_id": "a", "queue_position": 2}
    check = as_shown("pixazo", "result")
    assert check.is_valid({**body, "estimated_remaining_seconds": 8})
    assert not check.is_valid({**body, "estimated_remaining_seconds": 8.0})
    assert not as_shown("pixazo", "result").is_valid({**body, "queue_position": 2.0})
    image = {
        "url": "https://a.io/1.png",
        "width": 1024,
        "height": 1024,
        "content_type": "image/png",
    }
    completed = {"status": "COMPLETED", "request_id": "a", "images": [image]}
    metadata = {"processing_time_seconds": 12.4, "input_image_count": 2}
    assert check.is_valid({**completed, "metadata": metadata})
    metadata["processing_time_seconds"] = 12  # an integer where the contract says number
    assert not check.is_valid({**completed, "metadata": metadata})
