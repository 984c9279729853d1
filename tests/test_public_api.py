"""The public surface of each package is pinned: changing it must be a deliberate act."""

import nanobanana_mock as mockserver
from nanobanana_mock import schemas
from nanobanana_mock.schemas import checks, hosts, report


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


def test_contract_checks_public_api() -> None:
    assert sorted(checks.__all__) == [
        "ADDITIVE",
        "BREAKING",
        "ContractViolation",
        "Finding",
        "http_status_findings",
        "image_findings",
        "response_findings",
        "route_status_findings",
        "schema_findings",
        "transition_findings",
    ]
    assert report.__all__ == ["Report"]


def test_hosts_public_api() -> None:
    assert hosts.__all__ == ["is_host_map", "layout", "parse_host_map", "rebase", "to_mock", "url"]
