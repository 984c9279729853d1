"""API keys as the simulation holds them: a stable fingerprint, never the key in clear.

Here, in the engine, because the journal, the quotas and the fault rules all key by it, and
the engine imports no HTTP code (the import contracts in pyproject.toml).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

__all__ = ["CACHED_KEY_CHARS", "fingerprint"]

CACHED_KEY_CHARS = 256
"""Longest key whose fingerprint is cached: a cache entry holds its key, and control-plane
keys may be as long as a body (4,096 of 256 KiB were a gigabyte). Longer ones are hashed
each time (linear, a few microseconds per kilobyte)."""


def fingerprint(api_key: str) -> str:
    """A stable, non-reversible stand-in for an API key (keys are never stored in clear)."""
    if len(api_key) <= CACHED_KEY_CHARS:
        return _cached_fingerprint(api_key)
    return _fingerprint(api_key)


def _fingerprint(api_key: str) -> str:
    return hashlib.blake2b(api_key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


_cached_fingerprint = lru_cache(maxsize=4096)(_fingerprint)
