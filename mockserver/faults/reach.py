"""Can a fault rule ever apply? The checks its schema cannot make alone.

``schemas/mock/fault_rule.json`` already refuses a name the mock does not know (a provider,
operation, model or method outside its enums). What it cannot see is a combination that no
request will ever have: an operation or model of another provider than the rule names, an
``http_error`` code that none of the matched operations may answer (the engine never breaks
an operation's contract, so the rule would silently never fire), or a job effect on an
operation that creates no job. Each is refused when the rule is added, naming the word and
what is allowed there. What an effect needs is its class's to say (``Effect.unreachable``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..names import PROVIDERS, did_you_mean, models, operations
from .effects import EFFECTS

__all__ = ["unreachable"]

Path = tuple[str | int, ...]


def unreachable(spec: Mapping[str, Any]) -> list[tuple[Path, str]]:
    """(path, message) for every part of a schema-valid rule that no request can meet."""
    match = spec.get("match", {})
    providers = _listed(match.get("provider")) or list(PROVIDERS)
    ops = _listed(match.get("operation"))
    found = _not_of(providers, ops, "operation", operations)
    if ops:  # the providers that have one of the operations
        providers = [p for p in providers if set(ops) & set(operations(p))] or providers
    found += _not_of(providers, _listed(match.get("model")), "model", models)
    if not found:
        found += _effect_problems(spec["effect"], providers, ops)
    return found


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _not_of(
    providers: list[str], given: list[str], what: str, known: Any
) -> list[tuple[Path, str]]:
    """Each of ``given`` that none of ``providers`` has (``known(provider)`` lists theirs)."""
    allowed = list(dict.fromkeys(name for p in providers for name in known(p)))
    found = []
    for index, word in enumerate(given):
        if word in allowed:
            continue
        path: Path = ("match", what) if len(given) == 1 else ("match", what, index)
        found.append(
            (
                path,
                f"{word!r} is not {_article(what)} {what} of {', '.join(providers)}"
                f"{did_you_mean(word, allowed)}, so the rule would never match; "
                f"allowed: {', '.join(allowed)}",
            )
        )
    return found


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _effect_problems(
    effect: Mapping[str, Any], providers: list[str], ops: list[str]
) -> list[tuple[Path, str]]:
    """What the effect's own kind says about where it can apply (:meth:`Effect.unreachable`)."""
    kind, params = next(iter(effect.items()))
    return EFFECTS[kind].unreachable(params, providers, ops)
