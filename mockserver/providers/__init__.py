"""One module per provider, holding only what differs between them.

A provider is a contract folder (``schemas/<name>/api.json``) and the module
``providers/<name>.py``, whose class registers itself for it
(``class Name(Provider, contract="name")``). The modules are imported here, one per contract
folder, and :data:`PROVIDER_CLASSES` is the registry they filled, checked against the folders.
"""

from __future__ import annotations

from importlib import import_module

from nanobanana_mock import schemas

from .base import REGISTERED, Provider
from .fal import Fal
from .gemini import Gemini
from .pixazo import Pixazo
from .queue import QueueProvider
from .seaart import SeaArt
from .segmind import Segmind

__all__ = [
    "PROVIDER_CLASSES",
    "Fal",
    "Gemini",
    "Pixazo",
    "Provider",
    "QueueProvider",
    "SeaArt",
    "Segmind",
]


def _registry() -> tuple[type[Provider], ...]:
    """Import ``providers/<name>.py`` for each contract folder; each must register a class."""
    for name in schemas.PROVIDERS:
        module = f"{__name__}.{name}"
        try:
            import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            raise ImportError(
                f"the contract folder schemas/{name}/ has no provider module: "
                f"write mockserver/providers/{name}.py with a class Provider(contract={name!r})"
            ) from None
        if name not in REGISTERED:
            raise ImportError(
                f"mockserver/providers/{name}.py registers no class for the contract {name!r}: "
                f"declare it as class ...(Provider, contract={name!r})"
            )
    return tuple(REGISTERED[name] for name in schemas.PROVIDERS)


PROVIDER_CLASSES: tuple[type[Provider], ...] = _registry()
"""Every provider class (its ``name`` is its contract's), in the order of ``schemas.PROVIDERS``."""
