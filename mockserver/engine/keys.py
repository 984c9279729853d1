"""API keys as the simulation holds them: a stable fingerprint, never the key in clear.

Here, in the engine, because the journal, the quotas and the fault rules all key by it, and
the engine imports no HTTP code (the import contracts in pyproject.toml).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

__all__ = ["CACHED_KEY_CHARS", "SEALED", "fingerprint", "sealed"]

CACHED_KEY_CHARS = 256
"""Longest key whose fingerprint is cached: a cache entry holds its key, and control-plane
keys may be as long as a body (4,096 of 256 KiB were a gigabyte). Longer ones are hashed
each time (linear, a few microseconds per kilobyte)."""


def fingerprint(api_key: str) -> str:
    """A stable, non-reversible stand-in for an API key (keys are never stored in clear); a
    sealed key's (:func:`sealed`) is the key's own."""
    if len(api_key) <= CACHED_KEY_CHARS:
        return _cached_fingerprint(api_key)
    return _fingerprint(api_key)


def _fingerprint(api_key: str) -> str:
    if api_key.startswith(SEALED):  # a key already sealed is its fingerprint
        return api_key[len(SEALED) :]
    return hashlib.blake2b(api_key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


_cached_fingerprint = lru_cache(maxsize=4096)(_fingerprint)


SEALED = "\0fp:"
"""The prefix of a key held sealed: ``SEALED`` and its fingerprint, where a setting or a rule
kept a key in clear and the state goes to a shared store (which never holds a key in clear).
No key a client sends can start with it (a NUL is not allowed in an HTTP header)."""


def sealed(api_key: str) -> str:
    """``api_key`` sealed (:data:`SEALED`); a sealed key is returned as it is."""
    return api_key if api_key.startswith(SEALED) else SEALED + fingerprint(api_key)
