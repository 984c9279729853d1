"""Contract files: well-formed schemas, examples, lifecycles and API declarations."""

import json
from collections import deque
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from nanobanana_mock import schemas
from nanobanana_mock.schemas import PROVIDERS, load, validator

ROOT = Path(schemas.__file__).resolve().parent
BASE = "https://nanobanana-mock.local/schemas/"
DATA_FILES = {"lifecycle", "api"}


def _schema_files() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*.json")):
        rel = path.relative_to(ROOT)
        if "examples" in rel.parts or (len(rel.parts) >= 2 and path.stem in DATA_FILES):
            continue
        out.append(path)
    return out


def _key(path: Path) -> tuple[str, str]:
    """(provider, name) of a schema file; a file in a sub-folder (mock/control/) is named
    with it (``control/clock``)."""
    rel = path.relative_to(ROOT).with_suffix("")
    return (rel.parts[0], "/".join(rel.parts[1:])) if len(rel.parts) > 1 else ("", rel.name)


SCHEMA_FILES = _schema_files()
SCHEMA_IDS = [str(p.relative_to(ROOT)) for p in SCHEMA_FILES]
EXAMPLES = sorted(ROOT.glob("*/examples/*.json"))
EXAMPLE_IDS = [str(p.relative_to(ROOT)) for p in EXAMPLES]


def _requests(provider: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / provider).glob("request.*.json"))


REQUESTS = [(p, n) for p in PROVIDERS for n in _requests(p)]


# ------------------------------------------------------------------ public surface


def test_public_surface_is_pinned():
    assert schemas.__all__ == [
        "PROVIDERS",
        "ContractViolation",
        "Violation",
        "documents",
        "explain",
        "is_valid",
        "load",
        "search",
        "validator",
    ]
    assert PROVIDERS == ("segmind", "seaart", "pixazo", "gemini", "fal")


def test_load_is_cached_and_supports_top_level():
    assert load("segmind", "status") is load("segmind", "status")
    assert load("", "common")["$id"] == BASE + "common.json"
    assert validator("seaart", "status") is validator("seaart", "status")


@pytest.mark.parametrize(("provider", "name"), [("segmind", "nope"), ("nope", "status")])
def test_load_unknown_raises_key_error(provider, name):
    with pytest.raises(KeyError):
        load(provider, name)


def test_validator_refuses_data_files():
    with pytest.raises(KeyError):
        validator("segmind", "lifecycle")


# ------------------------------------------------------------------ schema files


def test_patterns_run_on_re2_past_a_ref_into_another_file():
    # The scenario schema reaches settings.json through a $ref: its patterns must run as the
    # settings validator's do (RE2, whose $ is the end of the text), not on Python's re,
    # whose $ also matches before a final newline ("a\n" was a valid control host there).
    direct = list(validator("mock", "settings").iter_errors({"control_hosts": ["a\n"]}))
    through = validator("mock", "scenario").iter_errors({"settings": {"control_hosts": ["a\n"]}})
    assert [e.message for e in through] == [e.message for e in direct] != []


def test_expected_files_exist():
    expected = {
        "segmind": {
            "request.nano-banana",
            "request.nano-banana-2",
            "request.nano-banana-pro",
            "submit",
            "status",
            "result",
            "error",
            "sync_headers",
            "lifecycle",
            "api",
        },
        "seaart": {
            "request.nano_banana_pro",
            "request.nano_banana_2",
            "submit",
            "status",
            "result",
            "cancel",
            "error",
            "lifecycle",
            "api",
        },
        "pixazo": {
            "request.nano-banana-pro",
            "result_request",
            "submit",
            "result",
            "error",
            "lifecycle",
            "api",
        },
        "fal": {
            *(
                f"request.{m}{e}"
                for m in ("nano-banana", "nano-banana-2", "nano-banana-pro")
                for e in ("", ".edit")
            ),
            "submit",
            "status",
            "result",
            "output",
            "cancel",
            "error",
            "lifecycle",
            "api",
        },
    }
    for provider, names in expected.items():
        assert {p.stem for p in (ROOT / provider).glob("*.json")} == names
        assert list((ROOT / provider / "examples").glob("*.json"))
    top = {"common", "lifecycle.schema", "api.schema", "example.schema"}
    assert {p.stem for p in ROOT.glob("*.json")} == top


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=SCHEMA_IDS)
def test_schema_file_is_well_formed(path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == BASE + str(path.relative_to(ROOT)).replace("\\", "/")
    assert doc["title"].strip()
    assert doc["description"].strip()


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=SCHEMA_IDS)
def test_every_ref_resolves(path):
    resolver = validator(*_key(path))._resolver
    for ref in _refs(load(*_key(path))):
        resolver.lookup(ref)


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=SCHEMA_IDS)
def test_no_format_keyword(path):
    assert not _format_keywords(json.loads(path.read_text(encoding="utf-8")))


def _format_keywords(node, names=False):
    """The ``format`` keywords of a schema (a property named ``format`` is not one)."""
    if isinstance(node, list):
        return [found for value in node for found in _format_keywords(value)]
    if not isinstance(node, dict):
        return []
    found = ["format"] if "format" in node and not names else []
    for key, value in node.items():
        found += _format_keywords(value, names=key in ("properties", "$defs"))
    return found


# ------------------------------------------------------------------ examples


@pytest.mark.parametrize("path", EXAMPLES, ids=EXAMPLE_IDS)
def test_example(path):
    wrapper = json.loads(path.read_text(encoding="utf-8"))
    validator("", "example.schema").validate(wrapper)
    assert path.stem.split(".")[0] == wrapper["schema"].split(".")[0]
    errors = list(
        validator(path.parent.parent.name, wrapper["schema"]).iter_errors(wrapper["instance"])
    )
    if wrapper["valid"]:
        assert errors == [], [e.message for e in errors]
    else:
        assert errors, f"{path.name} should be rejected: {wrapper['note']}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_response_schema_has_a_valid_example(provider):
    api = load(provider, "api")
    names = {
        r["schema"]
        for op in api["operations"].values()
        for r in op["responses"].values()
        if "schema" in r
    }
    names |= {
        r["headers"]
        for op in api["operations"].values()
        for r in op["responses"].values()
        if "headers" in r
    }
    names |= {m["request"] for m in api["models"].values()}
    wrappers = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in (ROOT / provider / "examples").glob("*.json")
    ]
    covered = {w["schema"] for w in wrappers if w["valid"]}
    assert names <= covered


@pytest.mark.parametrize(
    ("provider", "name"),
    [("seaart", "request.nano_banana_2"), ("seaart", "request.nano_banana_pro")],
)
def test_seaart_prompt_length_bounds(provider, name):
    check = validator(provider, name)
    assert check.is_valid({"prompt": "a" * 2500})
    assert not check.is_valid({"prompt": "a" * 2501})
    assert not check.is_valid({"prompt": ""})


@pytest.mark.parametrize(("provider", "name"), [(p, n) for p, n in REQUESTS if p != "seaart"])
def test_long_prompt_bound(provider, name):
    needs_images = "image_urls" in load(provider, name)["required"]
    base = {"image_urls": ["https://a.example/x.png"]} if needs_images else {}
    check = validator(provider, name)
    assert check.is_valid({**base, "prompt": "a" * 20000})
    assert not check.is_valid({**base, "prompt": "a" * 20001})


@pytest.mark.parametrize(("provider", "name"), REQUESTS)
def test_requests_allow_unknown_fields_but_not_webhooks(provider, name):
    base = {"prompt": "x", "image_urls": ["https://a.example/x.png"]}
    check = validator(provider, name)
    assert check.is_valid({**base, "some_future_field": 1})
    assert check.is_valid({**base, "webhook_url": "https://h.example"}) is (provider != "seaart")


# ------------------------------------------------------------------ request defaults


def _defaulted(provider: str, name: str) -> list[tuple[str, object]]:
    props = load(provider, name)["properties"]
    return [(k, v["default"]) for k, v in props.items() if "default" in v]


DEFAULTS = [(p, n, k, d) for p, n in REQUESTS for k, d in _defaulted(p, n)]


@pytest.mark.parametrize(
    ("provider", "name", "field", "default"),
    DEFAULTS,
    ids=[f"{p}/{n}/{k}" for p, n, k, _ in DEFAULTS],
)
def test_request_default_is_valid(provider, name, field, default):
    sub = validator(provider, name).evolve(
        schema={"$ref": f"{load(provider, name)['$id']}#/properties/{field}"}
    )
    assert list(sub.iter_errors(default)) == []


@pytest.mark.parametrize(("provider", "name"), REQUESTS)
def test_request_schema_is_open_object_requiring_prompt(provider, name):
    doc = load(provider, name)
    assert doc["type"] == "object"
    assert doc["additionalProperties"] is True
    assert "prompt" in doc["required"]


# ------------------------------------------------------------------ lifecycle


@pytest.mark.parametrize("provider", PROVIDERS)
def test_lifecycle_matches_meta_schema(provider):
    doc = load(provider, "lifecycle")
    validator("", "lifecycle.schema").validate(doc)
    assert doc["provider"] == provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_lifecycle_is_consistent(provider):
    doc = load(provider, "lifecycle")
    states = doc["states"]
    assert doc["initial"] in states
    assert not states[doc["initial"]]["terminal"]
    assert set(doc["transitions"]) == set(states)
    for source, targets in doc["transitions"].items():
        assert set(targets) <= set(states), source
        assert (targets == []) is states[source]["terminal"], source
    for state in states:
        assert _reaches_terminal(state, doc), state
    for route, codes in doc["http_status"].items():
        assert set(codes) == {*states, "EXPIRED"}, route


def _reaches_terminal(start: str, doc: dict) -> bool:
    seen, todo = {start}, deque([start])
    while todo:
        state = todo.popleft()
        if doc["states"][state]["terminal"]:
            return True
        for nxt in doc["transitions"][state]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_state_is_reachable_from_initial(provider):
    doc = load(provider, "lifecycle")
    seen, todo = {doc["initial"]}, deque([doc["initial"]])
    while todo:
        for nxt in doc["transitions"][todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(doc["states"])


def test_seaart_wire_statuses_are_the_documented_three():
    wires = {s["wire"] for s in load("seaart", "lifecycle")["states"].values()}
    assert wires == {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}


# ------------------------------------------------------------------ api


@pytest.mark.parametrize("provider", PROVIDERS)
def test_api_matches_meta_schema(provider):
    doc = load(provider, "api")
    validator("", "api.schema").validate(doc)
    assert doc["provider"] == provider


def _names(provider: str) -> set[str]:
    return {p.stem for p in (ROOT / provider).glob("*.json")} - DATA_FILES


@pytest.mark.parametrize("provider", PROVIDERS)
def test_api_operations_are_consistent(provider):
    api, life = load(provider, "api"), load(provider, "lifecycle")
    names = _names(provider)
    for op_name, op in api["operations"].items():
        assert op["path"].startswith(api["base_path"] + "/"), op_name
        request = op["request"]
        if request == "model":
            assert "{model}" in op["path"] or op.get("model") in api["models"], op_name
        elif request is not None:
            assert request in names, op_name
        for code, response in op["responses"].items():
            for key in ("schema", "headers"):
                if key in response:
                    assert response[key] in names, f"{op_name} {code}"
        route = op["lifecycle_route"]
        if route is not None:
            assert route in life["http_status"], op_name
            codes = {str(c) for c in life["http_status"][route].values()}
            assert codes <= set(op["responses"]), op_name
    routes = {op["lifecycle_route"] for op in api["operations"].values()}
    assert set(life["http_status"]) <= routes


@pytest.mark.parametrize("provider", PROVIDERS)
def test_api_models_are_consistent(provider):
    api = load(provider, "api")
    for model_id, model in api["models"].items():
        assert model["request"] in _names(provider), model_id
        props = load(provider, model["request"])["properties"]
        for setting, fields in model["fields"].items():
            for field in fields:
                assert field in props, f"{model_id} {setting} {field}"
        prices = set(model["price_usd"])
        for field in model["fields"]["resolution"]:
            assert set(props[field]["enum"]) <= prices, f"{model_id} {field}"
        assert model["fallback"]["resolution"] in prices, model_id
        for field in model["fields"]["aspect_ratio"]:
            assert all(r == "auto" or ":" in r for r in props[field]["enum"]), model_id


@pytest.mark.parametrize("provider", PROVIDERS)
def test_api_fallbacks_match_documented_defaults(provider):
    api = load(provider, "api")
    for model_id, model in api["models"].items():
        check = validator(provider, model["request"])
        props = load(provider, model["request"])["properties"]
        for setting, fields in model["fields"].items():
            value = model["fallback"][setting]
            if not fields:
                continue
            sub = check.evolve(schema={"$ref": f"{check.schema['$id']}#/properties/{fields[0]}"})
            assert sub.is_valid(value), f"{model_id} {setting}={value!r}"
            default = props[fields[0]].get("default")
            if default is not None and default != "auto":
                assert value == default, f"{model_id} {setting}"


def test_model_catalogue():
    assert set(load("segmind", "api")["models"]) == {
        "nano-banana",
        "nano-banana-2",
        "nano-banana-pro",
    }
    assert set(load("seaart", "api")["models"]) == {"nano_banana_pro", "nano_banana_2"}
    assert set(load("pixazo", "api")["models"]) == {"nano-banana-pro"}
    assert set(load("fal", "api")["models"]) == {"nano-banana", "nano-banana-2", "nano-banana-pro"}


@pytest.mark.parametrize("path", EXAMPLES, ids=EXAMPLE_IDS)
def test_example_http_status_is_declared(path):
    wrapper = json.loads(path.read_text(encoding="utf-8"))
    if not wrapper["valid"] or "http_status" not in wrapper:
        return
    api = load(path.parent.parent.name, "api")
    declared = {
        (code, response.get("schema") or response.get("headers"))
        for op in api["operations"].values()
        for code, response in op["responses"].items()
    }
    assert (str(wrapper["http_status"]), wrapper["schema"]) in declared


# ------------------------------------------------------------------ registration


def test_the_providers_are_the_contract_folders_in_their_order():
    folders = {p.name for p in ROOT.iterdir() if (p / "api.json").is_file()}
    assert set(PROVIDERS) == folders
    orders = [load(p, "api")["order"] for p in PROVIDERS]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_api_identity_is_consistent(provider):
    api = load(provider, "api")
    environment = api["environment"]
    assert environment["api_key"][0] == f"{provider.upper()}_API_KEY"
    assert environment["base_url"] == f"{provider.upper()}_BASE_URL"
    # the base URL a client is given reaches the operations: their paths start with it
    base = api["base_url_path"]
    assert any(op["path"].startswith(base + "/") for op in api["operations"].values())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_declared_error_code_has_a_fault_message(provider):
    api = load(provider, "api")
    error_codes = {
        code
        for op in api["operations"].values()
        for code, response in op["responses"].items()
        if response.get("schema") == "error"
    }
    assert error_codes <= set(api["fault_messages"])


def _x_enums(node, where=""):
    if isinstance(node, dict):
        if "x-enum" in node:
            yield where, node
        for key, value in node.items():
            yield from _x_enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _x_enums(item, f"{where}/{i}")


def test_every_x_enum_is_loaded_with_the_names_it_stands_for():
    found = {}
    for path in SCHEMA_FILES:
        for where, node in _x_enums(load(*_key(path))):
            found[f"{path.stem}{where}"] = node
    assert len(found) >= 8  # providers in four files, operations, models, map-setting keys
    operations = [op for p in PROVIDERS for op in load(p, "api")["operations"]]
    models = [m for p in PROVIDERS for m in load(p, "api")["models"]]
    expected = {
        "providers": list(PROVIDERS),
        "operations": list(dict.fromkeys(operations)),
        "models": list(dict.fromkeys(models)),
    }
    for where, node in found.items():
        spec = node["x-enum"]
        plus = spec.get("plus", [])
        assert node["enum"][: len(plus)] == plus, where
        if spec["names"] in expected:
            assert node["enum"][len(plus) :] == expected[spec["names"]], where
        else:
            assert spec["names"] == "provider/model", where
            assert len(node["enum"]) == len(plus) + len(PROVIDERS) + len(models), where


# ------------------------------------------------------------------ the neutral states


def test_the_neutral_states_are_the_lifecycle_schemas() -> None:
    from nanobanana_mock.client import JobStatus
    from nanobanana_mock.engine.jobs import State as EngineState
    from nanobanana_mock.schemas.lifecycle import EXPIRED, STATES, TERMINAL, State

    defs = load("", "lifecycle.schema")["$defs"]
    assert [str(s) for s in State] == list(STATES) == defs["stateName"]["enum"]
    assert EngineState is JobStatus is State
    assert EXPIRED in defs["route"]["propertyNames"]["enum"] and EXPIRED not in STATES
    for provider in PROVIDERS:
        for name, state in load(provider, "lifecycle")["states"].items():
            assert state["terminal"] == (State(name) in TERMINAL), (provider, name)
            assert State(name).terminal == state["terminal"]


def test_tiers_and_formats_are_named_once() -> None:
    from nanobanana_mock.client import cli as client_cli
    from nanobanana_mock.engine import images
    from nanobanana_mock.schemas import media

    defs = load("", "common")["$defs"]
    assert set(media.MEDIA_TYPES.values()) == set(defs["imageContentType"]["enum"])
    assert set(media.TIER_SPELLINGS.values()) == set(media.TIERS)
    assert images.TIERS is media.TIERS and client_cli.EXTENSIONS is media.EXTENSIONS
    assert {name: f.content_type for name, f in images.FORMATS.items()} == media.MEDIA_TYPES
    assert media.spelling_in("512px", ["0.5K", "1K"]) == "0.5K"
    assert media.spelling_in("jpg", ["jpeg", "png"]) == "jpeg"
