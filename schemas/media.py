"""Output images as the contracts name them: size tiers and formats (``common.json``).

A tier or a format has several spellings (Segmind's ``512`` and ``512px``, Pixazo's
``0.5K``; ``jpg`` and ``jpeg``). The mock (which size, which encoding) and the client (which
spelling a provider's field accepts) read them from ``$defs.resolutionTier.spellings`` and
``$defs.imageFormat.mediaTypes``, never from a table of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import load

__all__ = ["EXTENSIONS", "MEDIA_TYPES", "TIERS", "TIER_SPELLINGS", "canonical", "spelling_in"]

_DEFS: dict[str, Any] = load("", "common")["$defs"]

TIERS: tuple[str, ...] = tuple(_DEFS["resolutionTier"]["enum"])
"""The size tiers, smallest first."""

TIER_SPELLINGS: Mapping[str, str] = dict(_DEFS["resolutionTier"]["spellings"])
"""Each spelling of a tier, in lower case, and the tier it names."""

MEDIA_TYPES: Mapping[str, str] = dict(_DEFS["imageFormat"]["mediaTypes"])
"""Each format name and its media type."""

EXTENSIONS: Mapping[str, str] = {media: name for name, media in reversed(list(MEDIA_TYPES.items()))}
"""Each media type and its file extension (the first name that has it: ``jpg``)."""


def canonical(value: object) -> str | None:
    """The tier (``1K``) or the media type (``image/jpeg``) a spelling names, if any."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return TIER_SPELLINGS.get(text) or MEDIA_TYPES.get(text)


def spelling_in(value: object, allowed: Iterable[Any]) -> Any | None:
    """The first of ``allowed`` that names what ``value`` names (``0.5K`` for ``512px``)."""
    meant = canonical(value)
    if meant is None:
        return None
    return next((each for each in allowed if canonical(each) == meant), None)
