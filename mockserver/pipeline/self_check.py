"""The mock's check of its own answers (``self_check``): each JSON answer against the schema
its operation's api.json names for its status.

An answer that breaks it is recorded in ``MockState.violations`` and raised as a
:class:`ContractViolation` (the contracts' one, ``nanobanana_mock.schemas``), past the
pipeline's error boundary: aiohttp answers 500, and the
tests, which run with the check on, assert the list is empty. An answer a drift changed or a
source forwarded is not the mock's own, and is not checked.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from nanobanana_mock import schemas
from nanobanana_mock.schemas import ContractViolation, Violation, is_valid

if TYPE_CHECKING:
    from .routing import Target

__all__ = ["ContractViolation", "self_check"]


def self_check(target: Target, response: web.StreamResponse) -> None:
    """Validate a JSON response against the schema its operation names for its status."""
    provider = target.provider
    if provider is None or not isinstance(response, web.Response):
        return
    if response.content_type != "application/json" or response.text is None:
        return
    operation = target.operation
    if operation is not None and operation in provider.contract.api["operations"]:
        schema = provider.contract.response_schema(operation, response.status)
    else:  # images, stray paths and methods answer with the provider's error envelope
        schema = "error"
    state = provider.state
    if schema is None:
        state.violations.append(f"{provider.name}.{operation} {response.status}")
        raise ContractViolation(
            [],
            f"{provider.name}.{operation} answered {response.status}, "
            "which its api.json does not list",
        )
    try:
        body = json.loads(response.text)
    except ValueError:
        return  # a malformed_json fault, on purpose
    problems = answer_problems(provider.name, schema, body)
    if problems:
        state.violations.append(f"{provider.name}.{operation} {response.status}")
        raise ContractViolation(
            problems,
            f"{provider.name}.{operation} {response.status} breaks {schema}.json: "
            + "; ".join(map(str, problems))
            + f"\nbody: {response.text[:500]}",
        )


def answer_problems(provider: str, schema: str, body: Any) -> list[Violation]:
    """How the mock's own answer breaks its schema. jsonschema-rs, like JSON Schema, counts
    ``12.0`` as an integer: an answer holding such a float is judged by the pure-Python
    validator, where an integer must be written as one. That walk has no time budget: the
    answer is the mock's own (bounded), and a budget that ran out on a loaded machine
    reported a valid answer as a violation ("possibly more problems")."""
    if not _integral_floats(body):
        if is_valid(provider, schema, body):
            return []
        return schemas.explain(provider, schema, body)
    return schemas.explain(provider, schema, body, exact_integers=True, seconds=math.inf)


def _integral_floats(body: Any) -> bool:
    """Does an answer hold a float with no fraction (``12.0``)? JSON Schema counts it as an
    integer, but a client parsing it gets a float: where the contract says integer, the mock
    writes one."""
    if isinstance(body, float):
        return body.is_integer()
    if isinstance(body, dict):
        return any(_integral_floats(value) for value in body.values())
    if isinstance(body, list):
        return any(_integral_floats(value) for value in body)
    return False
