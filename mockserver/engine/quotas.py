"""Quotas per API key: a credit ledger and a token-bucket rate limiter on the virtual clock.

Both are off until configured. Keys are held as fingerprints and shown redacted. Collections
are bounded: at most ``MAX_KEYS`` accounts and buckets, the least recently used going first,
and at most ``MAX_KEYS`` keys with a rate limit of their own (one more is refused).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from .journal import redact
from .keys import fingerprint

__all__ = ["Ledger", "LimitError", "RateLimiter"]

MAX_KEYS = 10_000


@dataclass(slots=True)
class Account:
    shown: str | None
    balance: float
    spent: float = 0.0


class Ledger:
    """What each key may still spend. Off until a balance (or a default) is set."""

    def __init__(self) -> None:
        self.default: float | None = None
        self._accounts: OrderedDict[str, Account] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.default is not None or bool(self._accounts)

    def set(self, key: str, balance: float) -> None:
        self.set_id(fingerprint(key), redact(key), balance)

    def set_id(self, key_id: str, shown: str | None, balance: float) -> None:
        """:meth:`set` by the key's fingerprint and shown (redacted) name: no key in clear."""
        self._touch(key_id, Account(shown, float(balance)))

    def set_default(self, balance: float) -> None:
        self.default = float(balance)

    def disable(self) -> None:
        self.default = None
        self._accounts.clear()

    def balance(self, key_id: str) -> float | None:
        """The balance of a key fingerprint; None when the ledger does not cover it."""
        account = self._accounts.get(key_id)
        if account is not None:
            return account.balance
        return self.default

    def charge(self, key_id: str, shown: str | None, cost: float) -> bool:
        """Take ``cost`` from the key's balance; False (nothing taken) when it is too low."""
        balance = self.balance(key_id)
        if balance is None:
            return True
        if balance + 1e-9 < cost:
            return False
        account = self._accounts.get(key_id) or Account(shown, balance)
        account.balance = round(balance - cost, 9)
        account.spent = round(account.spent + cost, 9)
        self._touch(key_id, account)
        return True

    def public(self, key: str | None = None) -> dict[str, Any]:
        if key is None:
            accounts = list(self._accounts.values())
        else:
            account = self._accounts.get(fingerprint(key))
            accounts = [account] if account is not None else []
        return {
            "enabled": self.enabled,
            "default": self.default,
            "accounts": [
                {"key": a.shown, "balance": a.balance, "spent": a.spent} for a in accounts
            ],
        }

    def _touch(self, key_id: str, account: Account) -> None:
        self._accounts.pop(key_id, None)
        self._accounts[key_id] = account
        while len(self._accounts) > MAX_KEYS:
            self._accounts.popitem(last=False)


@dataclass(slots=True)
class Limit:
    key_id: str | None  # None: every key, each with its own bucket
    shown: str | None
    rpm: float
    scope: str  # "generate" | "all"


class LimitError(ValueError):
    """A rate limit the limiter cannot take (more keys than ``MAX_KEYS``)."""


class RateLimiter:
    """Token buckets: ``rpm`` tokens (at least one, so that a limit below 1 rpm lets one
    request through every ``60 / rpm`` seconds), refilled at ``rpm`` per virtual minute.

    At most one limit for every key (``key_id`` None) and one per key, at most ``MAX_KEYS``
    of those: a dict by key, so adding a limit and finding those that apply to a request
    take constant time however many there are."""

    def __init__(self) -> None:
        self._limits: dict[str | None, Limit] = {}  # by key fingerprint, in the order set
        self._buckets: OrderedDict[tuple[str | None, str], tuple[float, float]] = OrderedDict()

    @property
    def limits(self) -> list[Limit]:
        return list(self._limits.values())

    def __bool__(self) -> bool:
        return bool(self._limits)

    def set(self, rpm: float, key: str | None = None, scope: str = "generate") -> None:
        """Set the limit of ``key`` (of every key when None), replacing its previous one;
        :class:`LimitError` (nothing changed) beyond ``MAX_KEYS`` keys."""
        self.set_id(rpm, fingerprint(key) if key else None, redact(key), scope)

    def set_id(
        self, rpm: float, key_id: str | None, shown: str | None, scope: str = "generate"
    ) -> None:
        """:meth:`set` by the key's fingerprint and shown name (no key in clear)."""
        limits = self._limits
        previous = limits.pop(key_id, None)
        if key_id is not None and previous is None and len(limits) - (None in limits) >= MAX_KEYS:
            raise LimitError(f"at most {MAX_KEYS} keys may have their own rate limit")
        limits[key_id] = Limit(key_id, shown, float(rpm), scope)
        if key_id is None:
            self._buckets.clear()  # every key's bucket of the shared limit starts full again
        else:
            self._buckets.pop((key_id, key_id), None)

    def clear(self) -> None:
        self._limits.clear()
        self._buckets.clear()

    def take(self, key_id: str, generate: bool, now: float) -> float | None:
        """Spend a token from every bucket that applies; None if allowed, else the seconds
        until each has one again (nothing is spent then)."""
        refilled: list[tuple[tuple[str | None, str], float]] = []
        wait = 0.0
        for limit in (self._limits.get(None), self._limits.get(key_id)):
            if limit is None or (limit.scope == "generate" and not generate):
                continue
            slot = (limit.key_id, key_id)
            size = max(1.0, limit.rpm)  # a bucket smaller than a token would never refill
            tokens, last = self._buckets.get(slot, (size, now))
            tokens = min(size, tokens + (now - last) * limit.rpm / 60.0)
            refilled.append((slot, tokens))
            if tokens < 1.0:
                wait = max(wait, (1.0 - tokens) * 60.0 / limit.rpm)
        spend = 0.0 if wait else 1.0
        for slot, tokens in refilled:
            self._remember(slot, (tokens - spend, now))
        return wait or None

    def public(self) -> dict[str, Any]:
        return {
            "limits": [
                {"key": lim.shown, "rpm": lim.rpm, "scope": lim.scope}
                for lim in self._limits.values()
            ]
        }

    def _remember(self, slot: tuple[str | None, str], value: tuple[float, float]) -> None:
        self._buckets.pop(slot, None)
        self._buckets[slot] = value
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
