"""What a request produces and costs, read from the contracts; the spending plan and cap.

:func:`plan` answers, for a request body, the aspect ratio, resolution, format, image count,
pixel size and price, the way ``mockserver.contracts.Model.plan`` decides them: the first
size field present in the body, else the first schema default, else the model's fallback
(``api.json``). :func:`cheapest` turns a documented example into the cheapest request of
the same model, which is what the paid lifecycle checks send.

Errors::

    SpendingRefused   a paid check would take the run's spending over ``--max-spend``
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nanobanana_mock import schemas
from nanobanana_mock.engine import images

from .facts import documented_requests

__all__ = [
    "Budget",
    "Case",
    "Plan",
    "SpendingRefused",
    "cases",
    "cheapest",
    "format_plan",
    "plan",
]


class SpendingRefused(Exception):
    """A paid check would take the spending over the cap; the check is skipped, not run."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What one request implies: the output it must produce and its price in USD."""

    aspect_ratio: str
    resolution: str
    output_format: str
    count: int
    size: tuple[int, int] | None  # None: the contracts give no size for this combination
    price: float


def _model(provider: str, model: str) -> Mapping[str, Any]:
    found: Mapping[str, Any] = schemas.load(provider, "api")["models"][model]
    return found


def _properties(provider: str, model: str) -> Mapping[str, Any]:
    request = schemas.load(provider, _model(provider, model)["request"])
    found: Mapping[str, Any] = request.get("properties", {})
    return found


def _pick(provider: str, model: str, kind: str, body: Mapping[str, Any]) -> Any:
    info = _model(provider, model)
    names = info["fields"].get(kind, [])
    for name in names:
        if body.get(name) is not None:
            return body[name]
    properties = _properties(provider, model)
    for name in names:
        if "default" in properties.get(name, {}):
            return properties[name]["default"]
    return info["fallback"][kind]


def price(provider: str, model: str, resolution: str) -> float:
    """The price of one image at ``resolution`` (api.json ``price_usd``; unknown: the top)."""
    table = _model(provider, model)["price_usd"]
    if resolution in table:
        return float(table[resolution])
    try:
        tier = images.normalise_tier(resolution)
    except ValueError:
        tier = None
    return float(table[tier]) if tier in table else float(max(table.values()))


def plan(provider: str, model: str, body: Mapping[str, Any]) -> Plan:
    """The output and price a request body implies (see the module docstring)."""
    aspect = str(_pick(provider, model, "aspect_ratio", body))
    resolution = str(_pick(provider, model, "resolution", body))
    fmt = str(_pick(provider, model, "output_format", body)).lower()
    count = int(_pick(provider, model, "num_images", body))
    try:
        size = images.pixel_size(_model(provider, model)["image_family"], aspect, resolution)
    except ValueError:
        size = None
    return Plan(aspect, resolution, fmt, count, size, price(provider, model, resolution) * count)


def cheapest(provider: str, model: str) -> dict[str, Any]:
    """The shortest documented request of the model, with an explicit aspect ratio, at its
    cheapest resolution and one image (ties go to the fewest pixels)."""
    examples = documented_requests(provider, model)
    if not examples:
        raise LookupError(f"{provider} {model}: no documented example request to start from")
    base = min(examples.values(), key=len)
    info = _model(provider, model)
    for name in info["fields"].get("num_images", []):
        base.pop(name, None)
    base = _explicit_aspect(provider, model, base)
    fields = info["fields"].get("resolution", [])
    if not fields:
        return base
    stripped = {k: v for k, v in base.items() if k not in fields}
    properties = _properties(provider, model)
    options = [
        {**stripped, name: value}
        for name in fields
        for value in properties.get(name, {}).get("enum", [])
    ]
    return min(options or [base], key=lambda body: _cost_key(provider, model, body))


def _explicit_aspect(provider: str, model: str, body: dict[str, Any]) -> dict[str, Any]:
    """The body with its aspect ratio spelled out: "auto" or an absent ratio follow the input
    images on the real services, so the output size would not be known in advance."""
    fields = _model(provider, model)["fields"].get("aspect_ratio", [])
    if not fields:
        return body
    aspect = _pick(provider, model, "aspect_ratio", body)
    if aspect == "auto":
        aspect = _model(provider, model)["fallback"]["aspect_ratio"]
    return {**{k: v for k, v in body.items() if k not in fields}, fields[0]: aspect}


def _cost_key(provider: str, model: str, body: Mapping[str, Any]) -> tuple[float, int]:
    planned = plan(provider, model, body)
    pixels = planned.size[0] * planned.size[1] if planned.size else 1 << 62
    return (planned.price, pixels)


class Budget:
    """Spending of one run, per provider, against an optional cap (thread-safe)."""

    def __init__(self, cap: float | None) -> None:
        self.cap = cap
        self.spent: defaultdict[str, float] = defaultdict(float)  # provider -> USD
        self._lock = threading.Lock()

    @property
    def total(self) -> float:
        return sum(self.spent.values())

    def spend(self, provider: str, usd: float) -> None:
        """Record a charge before the request that incurs it; SpendingRefused over the cap."""
        with self._lock:
            if self.cap is not None and self.total + usd > self.cap + 1e-9:
                raise SpendingRefused(
                    f"${usd:.3f} more would exceed --max-spend ${self.cap:.2f} "
                    f"(spent ${self.total:.3f})"
                )
            self.spent[provider] += usd


def format_plan(
    target: str, rows: Iterable[tuple[str, int, int, float]], cap: float | None
) -> list[str]:
    """The plan printed before a run: per provider (free checks, paid checks, estimated
    USD), then the total against the cap."""
    lines = [f"conformance plan, target {target}:"]
    total_paid, total_usd = 0, 0.0
    for provider, free, paid, usd in rows:
        lines.append(f"  {provider:8} {free:3} free, {paid:3} paid checks, estimated ${usd:.3f}")
        total_paid, total_usd = total_paid + paid, total_usd + usd
    cap_text = f" (cap ${cap:.2f})" if cap is not None else ""
    lines.append(f"  total    {total_paid:3} paid checks, estimated ${total_usd:.3f}{cap_text}")
    if target == "mock":
        lines.append("  (the mock charges nothing; the estimate is what a live run would cost)")
    else:
        lines.append("  (free checks send unauthorised and invalid requests; a target that")
        lines.append("   accepted one would charge it, and the check would report it)")
    return lines


@dataclass(frozen=True, slots=True)
class Case:
    """One request a check sends: the provider, the model, where the body comes from
    (``cheapest`` or an example's name), the body and what it implies."""

    provider: str
    model: str
    source: str
    body: Mapping[str, Any]
    plan: Plan

    @property
    def id(self) -> str:
        tail = "" if self.source == "cheapest" else "-" + self.source.split(".")[-1]
        return f"{self.provider}-{self.model}{tail}"


def cases(
    providers: Iterable[str], kind: str, needs: str | Iterable[str] | None = None
) -> list[Case]:
    """The cases of a check, for the providers that have operation ``needs`` (or all of
    several: a check of a submit-and-poll surface needs ``submit``, one of a blocking call
    ``sync_generate``, one of Gemini's batches ``batch_create``):
    ``model``: each model's cheapest request; ``example``: each documented request;
    ``provider``: the provider's cheapest request of all (a check of the provider, not of a
    model, e.g. cancelling)."""
    found = []
    for provider in providers:
        api = schemas.load(provider, "api")
        wanted = (needs,) if isinstance(needs, str) else tuple(needs or ())
        if not all(name in api["operations"] for name in wanted):
            continue
        mine = []
        for model in api["models"]:
            bodies = (
                documented_requests(provider, model)
                if kind == "example"
                else {"cheapest": cheapest(provider, model)}
            )
            mine += [
                Case(provider, model, source, body, plan(provider, model, body))
                for source, body in bodies.items()
            ]
        found += [min(mine, key=lambda c: c.plan.price)] if kind == "provider" and mine else mine
    return found
