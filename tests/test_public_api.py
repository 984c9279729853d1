"""The public surface of each package is pinned: changing it must be a deliberate act."""

import nanobanana_mock as mockserver
from nanobanana_mock import schemas


def test_mockserver_public_api() -> None:
    assert sorted(mockserver.__all__) == [
        "Failure",
        "MockConfig",
        "MockControl",
        "MockServer",
        "MockState",
        "STATE",
        "State",
        "Surface",
        "VirtualClock",
        "create_app",
    ]
    for name in mockserver.__all__:
        assert getattr(mockserver, name) is not None


def test_schemas_public_api() -> None:
    assert schemas.__all__ == [
        "PROVIDERS",
        "ContractViolation",
        "Violation",
        "documents",
        "explain",
        "is_valid",
        "load",
        "search",
        "validator",
    ]
