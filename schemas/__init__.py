"""The provider contracts: JSON Schema (draft 2020-12) files plus a tiny loader.

Files live in ``schemas/<provider>/<name>.json`` (``mock`` holds the mock's own
contracts: fault rules, scenario files, and under ``mock/control/`` the control plane's
bodies, named ``control/<name>``); top-level files (``common``, ``lifecycle.schema``,
``api.schema``, ``example.schema``) use provider ``""``. Every file with a ``$id`` is
registered under it, so relative ``$ref``s resolve.

The package is the project's shared vocabulary, and imports nothing else of the project:
``violations`` (one explanation of a schema violation, :func:`explain`, and the one
:class:`ContractViolation`), ``located`` (the one YAML/JSON document loader whose problems
name file, line and column), ``lifecycle`` (the provider-neutral job states), ``hosts`` (the
real host a mock path prefix stands for: fal's two).

The providers are the contract folders: a folder with an ``api.json`` is one, listed in the
order its ``api.json`` gives (:data:`PROVIDERS`). Lists of their names in other schema
files are not written by hand: a node ``{"x-enum": {"names": "providers"}}`` is loaded with
the ``enum`` it stands for (:data:`_DERIVED`), so a new folder is known everywhere at once.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from .violations import ContractViolation, Violation, explain, is_valid

__all__ = [
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

_ROOT = Path(__file__).resolve().parent


def _providers() -> tuple[str, ...]:
    """The contract folders (those with an ``api.json``), by their ``order``, then name."""
    found = []
    for folder in _ROOT.iterdir():
        if (folder / "api.json").is_file():
            with (folder / "api.json").open(encoding="utf-8") as fh:
                found.append((json.load(fh).get("order", 0), folder.name))
    return tuple(name for _, name in sorted(found))


PROVIDERS: tuple[str, ...] = _providers()
_FOLDERS = (*PROVIDERS, "mock")  # mock/: the mock's own contracts (fault rules, scenarios)


def _path(provider: str, name: str) -> Path:
    if provider and provider not in _FOLDERS:
        raise KeyError(f"unknown provider {provider!r}")
    path = (_ROOT / provider / f"{name}.json") if provider else _ROOT / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no schema file {provider or '.'}/{name}.json")
    return path


@functools.cache
def load(provider: str, name: str) -> dict[str, Any]:
    """Return the parsed ``schemas/<provider>/<name>.json`` (cached: do not mutate it)."""
    with _path(provider, name).open(encoding="utf-8") as fh:
        data: dict[str, Any] = _derive(json.load(fh))
    return data


def _operations() -> list[str]:
    return [op for p in PROVIDERS for op in load(p, "api")["operations"]]


def _models() -> list[str]:
    return [m for p in PROVIDERS for m in load(p, "api")["models"]]


def _provider_models() -> list[str]:
    return [
        key
        for p in PROVIDERS
        for key in (f"{p}/*", *(f"{p}/{m}" for m in load(p, "api")["models"]))
    ]


_DERIVED: dict[str, Callable[[], list[str]]] = {
    "providers": lambda: list(PROVIDERS),
    "operations": _operations,
    "models": _models,
    "provider/model": _provider_models,
}
"""What an ``x-enum`` node's ``names`` stands for: every provider, every operation or model
of their ``api.json`` files, or every ``provider/*`` and ``provider/model`` key."""


def _derive(node: Any) -> Any:
    """``node`` with each ``{"x-enum": {"names": kind, "plus": [...]}}`` given its ``enum``:
    ``plus`` first, then the names of ``kind`` (:data:`_DERIVED`), each once."""
    if isinstance(node, list):
        return [_derive(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _derive(value) for key, value in node.items()}
    spec = out.get("x-enum")
    if isinstance(spec, dict):
        names = [*spec.get("plus", []), *_DERIVED[spec["names"]]()]
        out["enum"] = list(dict.fromkeys(names))
    return out


@functools.cache
def _registry() -> Registry:
    """Every schema file, keyed by its ``$id``. Registered without ``$schema`` (every file is
    Draft 2020-12): jsonschema picks the validator class of a ``$ref``'d file from its
    ``$schema``, which would swap :func:`validator`'s class (RE2 patterns, the mock's bounded
    explanation) for the plain Draft 2020-12 one past the first reference to another file."""
    resources = []
    for schema_id, doc in documents():
        Draft202012Validator.check_schema(doc)
        contents = {k: v for k, v in doc.items() if k != "$schema"}
        resources.append((schema_id, DRAFT202012.create_resource(contents)))
    return Registry().with_resources(resources).crawl()


def documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema file (a JSON file with a ``$id``, outside ``examples/``): its ``$id`` and
    its content, as :func:`load` caches it."""
    for path in sorted(_ROOT.rglob("*.json")):
        relative = path.relative_to(_ROOT)
        if "examples" in relative.parts:
            continue
        parts = relative.with_suffix("").parts
        doc = load(parts[0], "/".join(parts[1:])) if len(parts) > 1 else load("", parts[0])
        if "$id" in doc:
            yield doc["$id"], doc


@functools.cache
def validator(provider: str, name: str, *, exact_integers: bool = False) -> Any:
    """Return a cached validator for ``schemas/<provider>/<name>.json``; every $ref resolves.

    It is jsonschema's Draft 2020-12 validator, except that ``pattern`` and
    ``patternProperties`` run on RE2: Python's backtracking ``re`` takes time quadratic or
    worse in the text for some patterns (``^https?://[^/]+[^ ]*$`` against a long URL that
    fails at its end took 2.4 s for 20,000 characters), and the texts are what clients and
    upstreams send. RE2 is linear, and like JSON Schema's own dialect (and jsonschema-rs on
    the mock's hot path) its ``$`` does not match before a trailing newline.

    With ``exact_integers``, an ``integer`` must be written as one: JSON Schema counts
    ``12.0`` as an integer, but a client that parses it gets a float (the mock holds its own
    answers to this; a provider's answer is judged by the standard rule)."""
    schema = load(provider, name)
    if "$id" not in schema:
        raise KeyError(f"{provider or '.'}/{name}.json is data, not a schema")
    cls = _ExactValidator if exact_integers else _Validator
    return cls(schema, registry=_registry())


@functools.lru_cache(maxsize=512)  # the schema files' patterns; bounded should a caller's come
def _regex(pattern: str) -> Any:
    options = re2.Options()
    options.never_capture = True  # only "is it found" is asked
    return re2.compile(pattern, options)


def search(pattern: str, text: str) -> bool:
    """Is the schema ``pattern`` found in ``text`` (RE2, linear in the text)?"""
    return _regex(pattern).search(text.encode("utf-8", "surrogatepass")) is not None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not search(pattern, instance):
        shown = repr(instance) if len(instance) <= 200 else repr(instance[:200]) + "..."
        yield ValidationError(f"{shown} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


# validators.extend is untyped in types-jsonschema (its arguments and result carry no types)
_Validator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern, "patternProperties": _pattern_properties}
)


def _is_exact_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_ExactValidator = validators.extend(  # type: ignore[no-untyped-call]  # as above
    _Validator, type_checker=_Validator.TYPE_CHECKER.redefine("integer", _is_exact_integer)
)
