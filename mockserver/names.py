"""The names a user may give, and how an unknown one is refused.

Providers, their operations, models and declared error codes are read from the contracts
(each provider's ``api.json``), never restated. A name that is not one of them is refused
with a message that names the word, suggests the closest known one and lists the allowed
ones, e.g.::

    unknown provider 'segmnd' (did you mean 'segmind'?); allowed: segmind, seaart, pixazo

Imports only the schemas (``config`` uses it too).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import cache

from nanobanana_mock import schemas
from nanobanana_mock.schemas.violations import did_you_mean  # the one wording, shared

__all__ = [
    "CREDIT_STATUSES",
    "GENERATE",
    "IMAGE",
    "IMAGE_ERRORS",
    "PROVIDERS",
    "all_models",
    "all_operations",
    "answerable",
    "declared_errors",
    "did_you_mean",
    "models",
    "operations",
    "unknown",
]

PROVIDERS: tuple[str, ...] = schemas.PROVIDERS
IMAGE = "image"  # an output image download: an operation of every provider (its CDN)
IMAGE_ERRORS = frozenset({403, 404, 429, 500, 502, 503, 504})  # what a CDN may answer
GENERATE = frozenset(
    {"submit", "sync_generate", "sync_generate_stable", "batch_create", "batch_create_stable"}
)  # the operations that create a job
CREDIT_STATUSES = frozenset({402, 406})  # insufficient credits: each provider has its own code
MAX_WORD = 60  # characters of an unknown word repeated in a message


@cache
def operations(provider: str) -> tuple[str, ...]:
    """The operations of ``provider``: those of its api.json, then ``image``."""
    return (*schemas.load(provider, "api")["operations"], IMAGE)


@cache
def models(provider: str) -> tuple[str, ...]:
    """The models of ``provider`` (Segmind slugs, SeaArt endpoints, Pixazo's one model)."""
    return tuple(schemas.load(provider, "api")["models"])


@cache
def all_operations() -> tuple[str, ...]:
    """Every provider's operations, each once, in the order of the providers."""
    return tuple(dict.fromkeys(op for p in PROVIDERS for op in operations(p)))


@cache
def all_models() -> tuple[str, ...]:
    """Every provider's models, each once, in the order of the providers."""
    return tuple(dict.fromkeys(m for p in PROVIDERS for m in models(p)))


@cache
def declared_errors(provider: str, operation: str) -> frozenset[int]:
    """The error codes ``provider``'s contract lets ``operation`` answer in its error envelope
    (an output image: what a CDN may answer); empty for an operation it does not have."""
    if operation == IMAGE:
        return IMAGE_ERRORS
    spec = schemas.load(provider, "api")["operations"].get(operation)
    if spec is None:
        return frozenset()
    return frozenset(
        int(code)
        for code, answer in spec["responses"].items()
        if int(code) >= 400 and answer.get("schema") == "error"
    )


def answerable(status: int, declared: Collection[int]) -> bool:
    """May an operation declaring the error codes ``declared`` answer ``status``? The one
    equivalence is insufficient credits: 402 and 406 both mean the provider's own code, so
    either is answerable where the operation declares one of them."""
    if status in CREDIT_STATUSES:
        return not CREDIT_STATUSES.isdisjoint(declared)
    return status in declared


def unknown(
    what: str, words: object, allowed: Iterable[str], known: Iterable[str] | None = None
) -> str:
    """``unknown <what> 'word' (did you mean ...?); allowed: a, b, c``. ``words`` is one word
    or a list of them; suggestions come from ``known`` (default: ``allowed``)."""
    allowed = list(allowed)
    known = allowed if known is None else list(known)
    listed = words if isinstance(words, list) else [words]
    shown = ", ".join(_shown(word) + did_you_mean(word, known) for word in listed[:10])
    plural = "s" if len(listed) > 1 else ""
    return f"unknown {what}{plural} {shown}; allowed: {', '.join(allowed)}"


def _shown(word: object) -> str:
    text = repr(word)
    return text if len(text) <= MAX_WORD else text[: MAX_WORD - 3] + "..."
