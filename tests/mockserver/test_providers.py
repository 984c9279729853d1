"""Providers are thin adapters: each implements the envelope protocol, none simulates."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.config import MockConfig
from nanobanana_mock.providers import PROVIDER_CLASSES, Provider, QueueProvider, SeaArt
from nanobanana_mock.providers.base import Envelopes
from nanobanana_mock.state import MockState
from nanobanana_mock.store.tenant import DEFAULT, Tenant, use

ENVELOPES = {"error", "auth_error", "invalid", "unknown_job"}


def serving(state: MockState) -> tuple[()]:
    """Make ``state`` the current tenant's, as a request would (no arguments for a provider)."""
    use(Tenant(DEFAULT, state))
    return ()


def test_the_envelope_protocol_is_what_a_provider_must_implement() -> None:
    assert Envelopes.__abstractmethods__ == ENVELOPES
    assert Provider.__abstractmethods__ == ENVELOPES | {"routes"}
    assert QueueProvider.__abstractmethods__ == {"auth_error", "result_body"}
    with pytest.raises(TypeError, match="abstract"):
        QueueProvider()  # type: ignore[abstract]


@pytest.mark.parametrize("cls", PROVIDER_CLASSES, ids=lambda cls: cls.name)
def test_every_provider_implements_it(cls: type[Provider]) -> None:
    assert not inspect.isabstract(cls)
    provider = cls(*serving(MockState.create(MockConfig())))
    assert provider.sim is provider.state.sim
    assert {route.kwargs["name"].partition(".")[0] for route in provider.routes()} == {cls.name}


def test_seaart_is_a_queue_provider() -> None:
    assert issubclass(SeaArt, QueueProvider)


@pytest.mark.parametrize(
    "module", sorted(Path(inspect.getfile(Provider)).parent.glob("*.py")), ids=lambda p: p.name
)
def test_no_provider_module_simulates(module: Path) -> None:
    """Jobs are found, polled, cancelled and stored by the simulator only."""
    text = module.read_text(encoding="utf-8")
    for simulated in ("polls", "state.store", "Job(", "ledger", ".images."):
        assert simulated not in text, f"{module.name} holds {simulated!r}: the simulator's"


@pytest.mark.parametrize("cls", PROVIDER_CLASSES, ids=lambda cls: cls.name)
def test_every_route_is_an_operation_of_the_contract(cls: type[Provider]) -> None:
    """Routes are built from api.json (method, path, name), not written again in Python."""
    provider = cls(*serving(MockState.create(MockConfig())))
    served = {
        (r.kwargs["name"], r.method, re.sub(r"\{\w+(?::[^{}]*)?\}", "{}", r.path))
        for r in provider.routes()
    }
    operations = schemas.load(cls.name, "api")["operations"]
    declared = {
        (f"{cls.name}.{op}", spec["method"], re.sub(r"\{\w+\}", "{}", spec["path"]))
        for op, spec in operations.items()
    }
    assert served == declared
