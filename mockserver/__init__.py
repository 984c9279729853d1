"""nanobanana-mock: a contract-testing mock of the Nano Banana APIs of Segmind, SeaArt and Pixazo.

Everything this distribution installs lives under this one import name:

- ``nanobanana_mock``: the mock server. Build one with :func:`create_app`; every setting
  lives in :class:`MockConfig`; ``python -m nanobanana_mock`` serves it.
- ``nanobanana_mock.schemas``: the provider contracts (JSON Schema) and their loader.
- ``nanobanana_mock.client``: the async client and the ``nanobanana`` CLI.
- ``nanobanana_mock.conformance``: the conformance suite and its drift report.

Importing this package imports nothing else: the client and the contracts never pull in the
server. The names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .config import MockConfig
    from .control.client import MockControl
    from .control.pytest_plugin import MockServer
    from .engine.clock import VirtualClock
    from .engine.jobs import Failure, State, Surface
    from .state import STATE, MockState

_LAZY = {
    "create_app": "app",
    "VirtualClock": "engine.clock",
    "MockConfig": "config",
    "MockControl": "control.client",
    "MockServer": "control.pytest_plugin",
    "Failure": "engine.jobs",
    "State": "engine.jobs",
    "Surface": "engine.jobs",
    "STATE": "state",
    "MockState": "state",
}

__all__ = [
    "STATE",
    "Failure",
    "MockConfig",
    "MockControl",
    "MockServer",
    "MockState",
    "State",
    "Surface",
    "VirtualClock",
    "create_app",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
