"""RequestFacts: what a fault rule may match on, gathered once per request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RequestFacts"]


@dataclass(slots=True)  # not frozen: built on every request, and frozen init is slower
class RequestFacts:
    """What a rule may match on, gathered once per request."""

    provider: str | None
    operation: str | None
    method: str
    key: str | None
    model: str | None
    prompt: str | None
    headers: Mapping[str, str]  # case-insensitive (the request's own headers)
    declared: frozenset[int] = frozenset()  # error codes this operation's contract allows
    # prompt_regex pattern -> found in the prompt, worked out off the event loop beforehand
    # (FaultEngine.search_all); a pattern missing here is searched when matched
    found: Mapping[str, bool] | None = None
    # the key's fingerprint, in place of ``key`` where the facts go to a shared store's log
    # (rules.portable): rules match on either
    key_id: str | None = None
