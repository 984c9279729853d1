"""Providers are registered by their contract folders: the mock's provider classes, the
client's adapters and the folders of ``schemas/`` with an ``api.json`` are one set, and
everything that lists providers is derived from the contracts."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanobanana_mock import providers as mock_providers
from nanobanana_mock import schemas
from nanobanana_mock.app import PROVIDERS as APP_PROVIDERS
from nanobanana_mock.app import base_urls, create_app
from nanobanana_mock.cli import banner
from nanobanana_mock.client import providers as client_providers
from nanobanana_mock.openapi import openapi_document
from nanobanana_mock.providers.base import Provider

ROOT = Path(schemas.__file__).resolve().parent
FOLDERS = {path.parent.name for path in ROOT.glob("*/api.json")}


def test_the_mock_providers_the_client_adapters_and_the_contract_folders_are_one_set() -> None:
    assert set(schemas.PROVIDERS) == FOLDERS
    assert [cls.name for cls in mock_providers.PROVIDER_CLASSES] == list(schemas.PROVIDERS)
    assert list(client_providers.ADAPTERS) == list(schemas.PROVIDERS)
    for cls in mock_providers.PROVIDER_CLASSES:
        assert cls.__module__ == f"nanobanana_mock.providers.{cls.name}"
    for name, adapter in client_providers.ADAPTERS.items():
        assert adapter.name == name
    assert list(create_app()[APP_PROVIDERS]) == list(schemas.PROVIDERS)


@pytest.mark.parametrize("provider", schemas.PROVIDERS)
def test_identity_comes_from_api_json(provider: str) -> None:
    api = schemas.load(provider, "api")
    (cls,) = [c for c in mock_providers.PROVIDER_CLASSES if c.name == provider]
    assert cls.fault_messages == {int(code): m for code, m in api["fault_messages"].items()}
    paths = [op["path"] for op in api["operations"].values()]  # its stray paths are its own
    assert all(path.startswith(cls.prefixes) for path in paths)
    assert all(any(path.startswith(p) for path in paths) for p in cls.prefixes)
    adapter = client_providers.ADAPTERS[provider]
    assert adapter.key_env == tuple(api["environment"]["api_key"])
    assert adapter.base_env == api["environment"]["base_url"]
    assert adapter.default_base == api["origin"]
    assert base_urls("http://h:1")[provider] == "http://h:1" + api["base_url_path"]
    assert openapi_document(provider)["info"]["title"].startswith(api["title"])
    assert f"  {api['title']:<8} " in banner(create_app(), 1)


def test_a_provider_class_needs_a_contract_folder() -> None:
    with pytest.raises(TypeError, match=r"no contract folder schemas/nope/"):

        class Nope(Provider, contract="nope"):
            prefixes = ()


def test_a_contract_is_registered_once() -> None:
    with pytest.raises(TypeError, match=r"'segmind' is already registered by .*\.Segmind"):

        class Second(Provider, contract="segmind"):
            prefixes = ()

    with pytest.raises(TypeError, match=r"an adapter for 'seaart' is registered"):

        class Again(client_providers.Adapter, contract="seaart"):
            pass


def test_a_shared_base_class_registers_nothing() -> None:
    class Shared(Provider):
        prefixes = ()

    assert Shared not in mock_providers.PROVIDER_CLASSES


def test_a_contract_folder_without_a_module_or_adapter_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schemas, "PROVIDERS", (*schemas.PROVIDERS, "fourth"))
    with pytest.raises(ImportError, match=r"schemas/fourth/ has no provider module: write "):
        mock_providers._registry()
    with pytest.raises(ImportError, match=r"no client adapter for the contract folder\(s\) fourth"):
        client_providers._adapters()
