"""The fast validator (jsonschema-rs) and the explaining one (jsonschema) always agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.schemas import is_valid

ROOT = Path(schemas.__file__).parent
EXAMPLES = sorted(ROOT.glob("*/examples/*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.parts[-3]}/{p.name}" for p in EXAMPLES])
def test_both_validators_agree_on_every_stored_example(path: Path) -> None:
    example = json.loads(path.read_text())
    provider = path.parts[-3]
    fast = is_valid(provider, example["schema"], example["instance"])
    assert fast == schemas.validator(provider, example["schema"]).is_valid(example["instance"])
    assert fast == example.get("valid", True)


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "x", "image_urls": ["http://\x1cbad/x"]},
        {"prompt": "x", "image_urls": ["https://a.io/ b"]},
        {"prompt": "\ud800"},
        {"prompt": "x", "aspect_ratio": "auto"},
        {"prompt": ""},
        {"prompt": "x" * 20001},
    ],
)
def test_both_validators_agree_on_edge_cases(body: dict) -> None:
    for provider, name in (
        ("segmind", "request.nano-banana-2"),
        ("seaart", "request.nano_banana_2"),
        ("pixazo", "request.nano-banana-pro"),
    ):
        assert is_valid(provider, name, body) == schemas.validator(provider, name).is_valid(body), (
            provider,
            body,
        )
