"""One explanation of a schema violation (schemas.violations): the fast validator
(jsonschema-rs) and the explaining one (jsonschema) always agree; violations are placed by
JSON pointers, shown dotted, bounded and counted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.schemas import Violation, is_valid, violations

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


# -- one explanation ---------------------------------------------------------------------------

SEGMIND = ("segmind", "request.nano-banana-2")
ROOMY = 5.0  # the explanation's wall-time budget, roomy: a loaded host must not cut it short


def test_a_valid_instance_has_no_violation() -> None:
    assert schemas.explain(*SEGMIND, {"prompt": "a banana"}) == []


def test_a_violation_is_placed_by_a_json_pointer_and_shown_dotted() -> None:
    body = {"prompt": "x", "image_urls": ["ftp://x/y.png"], "aspect_ratio": "7:3"}
    found = schemas.explain(*SEGMIND, body, seconds=ROOMY)
    assert [(v.pointer, v.rule) for v in found] == [
        ("/aspect_ratio", "enum"),
        ("/image_urls/0", "pattern"),
    ]
    assert str(found[1]).startswith("image_urls[0]: 'ftp://x/y.png' is not a valid value")
    assert found[0].value == "7:3" and "16:9" in found[0].expected


def test_pointer_escapes_and_dotted_quotes_what_is_not_a_name() -> None:
    assert violations.pointer(("a/b", "c~d", 0)) == "/a~1b/c~0d/0"
    assert violations.dotted(("faults", 0, "match", "x-y", 2)) == 'faults[0].match["x-y"][2]'
    assert violations.dotted(()) == ""


def test_required_and_unknown_keys_are_one_violation_each_at_their_key() -> None:
    rule = {"match": {"methd": "POST", "mdl": "x"}}  # no effect, two unknown keys
    found = schemas.explain("mock", "fault_rule", rule, seconds=ROOMY)
    assert [(v.pointer, v.rule) for v in found] == [
        ("/effect", "required"),
        ("/match/mdl", "additionalProperties"),
        ("/match/methd", "additionalProperties"),
    ]
    assert found[2].message.startswith("unknown key (did you mean 'method'?); allowed: provider")
    assert str(found[0]) == "effect: field required"


def test_the_rest_are_counted_in_one_last_violation() -> None:
    body = {"prompt": 1, **{f"x{i}": 1 for i in range(3)}, "image_urls": [1] * 14}
    found = schemas.explain(*SEGMIND, body, limit=3, seconds=ROOMY)
    assert len(found) == 4 and found[-1].rule == violations.MORE
    assert re.fullmatch(r"\.\.\. and \d+ more problems", str(found[-1]))


def test_exact_integers_refuse_a_float_with_no_fraction() -> None:
    body = {"prompt": "x", "seed": 12.0}  # JSON Schema counts 12.0 as an integer
    assert schemas.explain(*SEGMIND, body) == []
    (found,) = schemas.explain(*SEGMIND, body, exact_integers=True, seconds=ROOMY)
    assert (found.pointer, found.rule) == ("/seed", "type")


def test_each_branch_of_a_one_of_has_its_violations() -> None:
    found = schemas.explain(
        "segmind", "status", {"status": "QUEUED", "metrics": "none"}, seconds=ROOMY
    )
    (top,) = found
    assert top.rule == "oneOf" and top.pointer == ""
    branches = top.branches()
    assert len(branches) >= 2 and all(branches)
    assert all(isinstance(v, Violation) for branch in branches for v in branch)


def test_the_document_register_words_a_violation_for_a_file() -> None:
    (missing,) = schemas.explain("mock", "scenario", {"faults": [{}]}, seconds=ROOMY)
    (shown,) = violations.document_message(missing)
    assert (shown.path, shown.message) == (("faults", 0), "missing required key 'effect'")


def test_did_you_mean_suggests_the_closest_name() -> None:
    assert violations.did_you_mean("segmnd", ["segmind", "seaart"]) == " (did you mean 'segmind'?)"
    assert violations.did_you_mean("zzz", ["segmind"]) == ""


def test_one_contract_violation_for_the_mock_the_suite_and_the_client() -> None:
    from nanobanana_mock.client import ContractViolation as ClientViolation
    from nanobanana_mock.pipeline.self_check import ContractViolation as MockViolation
    from nanobanana_mock.schemas.checks import ContractViolation as SuiteViolation

    assert MockViolation is SuiteViolation is schemas.ContractViolation
    assert issubclass(ClientViolation, schemas.ContractViolation)
    assert issubclass(schemas.ContractViolation, AssertionError)
    error = schemas.ContractViolation(["a", "b"])
    assert (str(error), error.violations) == ("a\nb", ["a", "b"])
