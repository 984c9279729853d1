"""Scenario files: examples validate, YAML equals JSON, and every problem names its line."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from nanobanana_mock import scenario, scenario_files, schemas
from nanobanana_mock.scenario import ScenarioError, load_scenario, parse_scenario
from nanobanana_mock.schemas import located

RULE = schemas.load("mock", "fault_rule")["$defs"]
STATUSES = ", ".join(str(s) for s in RULE["http_error"]["properties"]["status"]["enum"])
KINDS = ", ".join(RULE["effect"]["properties"])
SETTINGS = ", ".join(schemas.load("mock", "settings")["properties"])
EXAMPLES = sorted(scenario_files.EXAMPLES.glob("*.yaml"))

FLAKY_YAML = """\
# a comment
settings:
  seed: 7
faults:
  - id: first-429
    match: {provider: segmind, operation: [submit, sync_generate]}
    effect:
      http_error: {status: 429, retry_after: 2.5}
    scope: {first: 1}
credits:
  default: 0.1
rate_limits:
  - rpm: 60
"""

FLAKY_JSON = """\
{
  "settings": {"seed": 7},
  "faults": [
    {
      "id": "first-429",
      "match": {"provider": "segmind", "operation": ["submit", "sync_generate"]},
      "effect": {"http_error": {"status": 429, "retry_after": 2.5}},
      "scope": {"first": 1}
    }
  ],
  "credits": {"default": 0.1},
  "rate_limits": [{"rpm": 60}]
}
"""

BOMB = "\n".join(
    [
        "description: x",
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]",
        *(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def problems_of(text: str, source: str = "s.yaml") -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source=source)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def test_public_api() -> None:
    assert scenario.__all__ == [
        "ScenarioError",
        "check_scenario",
        "load_scenario",
        "parse_data",
        "parse_scenario",
    ]
    assert issubclass(ScenarioError, ValueError)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_parse_and_validate(path: Path) -> None:
    data = load_scenario(path)
    assert data["faults"] or data.get("credits")
    assert not list(schemas.validator("mock", "scenario").iter_errors(data))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip_through_json(path: Path) -> None:
    data = load_scenario(path)
    assert parse_scenario(json.dumps(data, indent=2)) == data


def test_json_and_yaml_of_the_same_scenario_agree() -> None:
    from_yaml = parse_scenario(FLAKY_YAML)
    assert parse_scenario(FLAKY_JSON) == from_yaml
    assert from_yaml["faults"][0]["effect"]["http_error"] == {"status": 429, "retry_after": 2.5}


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n", "~\n"])
def test_empty_file_is_the_empty_scenario(text: str) -> None:
    assert parse_scenario(text) == {}


def test_aliases_and_merge_keys_are_expanded() -> None:
    text = """\
faults:
  - match: &seg {provider: segmind, operation: submit}
    effect: {http_error: {status: 500}}
  - match: {<<: *seg, operation: status}
    effect: {http_error: {status: 502}}
  - match: *seg
    effect: {latency: {fixed: 1}}
"""
    faults = parse_scenario(text)["faults"]
    assert faults[1]["match"] == {"provider": "segmind", "operation": "status"}
    assert faults[2]["match"] == faults[0]["match"]
    assert faults[2]["match"] is not faults[0]["match"]


def test_flow_style_yaml_that_is_not_json_is_read_as_yaml() -> None:
    assert parse_scenario("{settings: {seed: 1}, faults: [],}") == {
        "settings": {"seed": 1},
        "faults": [],
    }


def test_dates_and_equals_stay_strings() -> None:
    assert parse_scenario("description: 2024-05-01\n") == {"description": "2024-05-01"}
    assert parse_scenario("description: =\n") == {"description": "="}


def test_a_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + FLAKY_JSON.encode())
    assert load_scenario(path) == parse_scenario(FLAKY_YAML)


# --- problems, each at its line --------------------------------------------------------------

BAD_ENUM = """\
description: deep enum
faults:
  - match:
      provider: segmind
    effect:
      http_error:
        status: 418
"""

UNKNOWN_TOP = """\
settings:
  seed: 1
colour: blue
"""

MISSING_EFFECT = """\
faults:
  - effect: {latency: {fixed: 1}}
  - id: no-effect
    match: {provider: pixazo}
"""

WRONG_TYPE = """\
settings:
  workers: many
"""

YAML_SYNTAX = """\
settings:
  seed: [1, 2
faults: []
"""

JSON_SYNTAX = """\
{
  "settings": {"seed": 1}
  "faults": []
}
"""

DUPLICATE = """\
settings: {seed: 1}
faults: []
settings: {seed: 2}
"""

PYTHON_TAG = """\
description: harmless
settings: !!python/object/apply:os.system ["echo owned"]
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            BAD_ENUM,
            f"s.yaml:7:17: faults[0].effect.http_error.status: 418 is not one of {STATUSES}",
            id="enum-deep-in-faults",
        ),
        pytest.param(
            UNKNOWN_TOP,
            "s.yaml:3:1: colour: unknown key; allowed: description, settings, faults",
            id="unknown-top-level-key",
        ),
        pytest.param(
            MISSING_EFFECT,
            "s.yaml:3:5: faults[1]: missing required key 'effect'",
            id="missing-effect",
        ),
        pytest.param(
            WRONG_TYPE,
            's.yaml:2:12: settings.workers: expected integer, got string "many"',
            id="wrong-type",
        ),
        pytest.param(
            YAML_SYNTAX, "s.yaml:3:7: YAML syntax error: expected ',' or ']'", id="yaml-syntax"
        ),
        pytest.param(
            JSON_SYNTAX,
            "s.yaml:3:3: JSON syntax error: Expecting ',' delimiter",
            id="json-syntax",
        ),
        pytest.param(
            DUPLICATE, "s.yaml:3:1: settings: duplicate key (first at line 1)", id="duplicate"
        ),
        pytest.param(
            '{"faults": [],\n "faults": []}',
            "s.yaml:2:2: faults: duplicate key (first at line 1)",
            id="json-duplicate",
        ),
        pytest.param(
            "- seed: 1\n- seed: 2\n",
            "s.yaml:1:1: the top level must be a mapping, got list",
            id="top-level-list",
        ),
        pytest.param(
            "just a string\n",
            "s.yaml:1:1: the top level must be a mapping, got string",
            id="top-level-scalar",
        ),
        pytest.param(
            PYTHON_TAG,
            "s.yaml:2:11: settings: tag !!python/object/apply:os.system is not allowed",
            id="python-tag",
        ),
        pytest.param(
            "description: !!binary aGVsbG8=\n",
            "s.yaml:1:14: description: tag !!binary is not allowed",
            id="binary-tag",
        ),
        pytest.param(
            "description: !custom x\n",
            "s.yaml:1:14: description: tag !custom is not allowed",
            id="local-tag",
        ),
        pytest.param(BOMB, "more than 100000 values once aliases are expanded", id="alias-bomb"),
        pytest.param(
            "a: &a [1, *a]\n", "s.yaml:1:4: a[1]: alias refers to a value", id="recursive-alias"
        ),
        pytest.param(
            "settings:\n  1: x\n  yes: y\n",
            "s.yaml:2:3: settings: key '1' is read as integer, not a string; quote it",
            id="integer-key",
        ),
        pytest.param(
            "settings:\n  ? [a, b]\n  : x\n",
            "s.yaml:2:5: settings: keys must be strings",
            id="list-key",
        ),
        pytest.param(
            "settings:\n  time_scale: .inf\n",
            "s.yaml:2:15: settings.time_scale: .inf is not a finite number",
            id="yaml-infinity",
        ),
        pytest.param(
            '{"settings": {"time_scale": NaN}}',
            "s.yaml:1:29: settings.time_scale: NaN is not a finite number",
            id="json-nan",
        ),
        pytest.param(
            "description: a\x00b\n",
            "s.yaml:1:15: unacceptable character #x0000",
            id="control-character",
        ),
        pytest.param(
            "settings: " + "[" * 100 + "]" * 100 + "\n",
            "nested more than 64 levels deep",
            id="deep-nesting",
        ),
        pytest.param(
            "[" * 100_000 + "]" * 100_000, "s.yaml:1:1: nested too deeply", id="very-deep-yaml"
        ),
        pytest.param(
            '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "s.yaml:1:1: nested more than 64 levels deep",
            id="very-deep-json",
        ),
        pytest.param("a: 1\n---\nb: 2\n", "s.yaml:2:1: YAML syntax error", id="two-documents"),
    ],
)
def test_problem_names_line_and_column(text: str, expected: str) -> None:
    found = problems_of(text)
    assert any(expected in problem for problem in found), found


def test_json_validation_errors_have_json_lines() -> None:
    text = FLAKY_JSON.replace('"status": 429', '"status": 418').replace('"rpm": 60', '"rpm": 0')
    assert problems_of(text) == [
        f"s.yaml:7:43: faults[0].effect.http_error.status: 418 is not one of {STATUSES}",
        "s.yaml:12:27: rate_limits[0].rpm: 0 is less than or equal to the minimum of 0",
    ]


def test_effect_problems_name_the_allowed_kinds() -> None:
    text = """\
faults:
  - effect: {}
  - effect: {http_error: {status: 500}, latency: {fixed: 1}}
  - effect:
      explode: {}
  - effect: {latency: {fixed: 1, uniform: [1, 2]}}
"""
    assert problems_of(text) == [
        f"s.yaml:2:13: faults[0].effect: needs exactly one of {KINDS}; got none",
        f"s.yaml:3:13: faults[1].effect: needs exactly one of {KINDS}; got http_error, latency",
        f"s.yaml:5:7: faults[2].effect.explode: unknown key; allowed: {KINDS}",
        "s.yaml:6:23: faults[3].effect.latency: needs exactly one of fixed, uniform, lognormal; "
        "got fixed, uniform",
    ]


def test_one_value_or_a_list_is_explained_by_the_branch_that_fits() -> None:
    text = (
        "faults:\n  - match: {provider: 5, model: [nano-banana, 3]}\n"
        "    effect: {latency: {fixed: 1}}\n"
    )
    enum = schemas.load("mock", "fault_rule")["$defs"]["model"]["enum"]  # every provider's
    assert {"nano-banana", "nano_banana_pro", "gemini-3-pro-image"} <= set(enum)
    models = ", ".join(f'"{name}"' for name in enum)
    assert problems_of(text) == [
        "s.yaml:2:23: faults[0].match.provider: expected string or list, got integer 5",
        f"s.yaml:2:47: faults[0].match.model[1]: 3 is not one of {models}",
    ]


def test_several_problems_are_all_reported_sorted_by_line() -> None:
    text = """\
rate_limits:
  - rpm: -1
settings:
  workers: 0
  colour: red
faults:
  - match: {provider: seaart}
    effect: {job_failure: {error_type: OOPS}}
  - scope: {probability: 2}
description: 5
"""
    found = problems_of(text)
    lines = [int(problem.split(":")[1]) for problem in found]
    assert lines == [2, 4, 5, 8, 9, 9, 10]
    assert found[2] == f"s.yaml:5:3: settings.colour: unknown key; allowed: {SETTINGS}"
    assert found[3].startswith('s.yaml:8:40: faults[0].effect.job_failure.error_type: "OOPS"')
    assert {found[4].split(": ", 1)[1], found[5].split(": ", 1)[1]} == {
        "faults[1]: missing required key 'effect'",
        "faults[1].scope.probability: 2 is greater than the maximum of 1",
    }


def test_structural_problems_are_all_reported_together() -> None:
    text = "a: 1\nb: !!set {x}\na: 2\n"
    assert problems_of(text) == [
        "s.yaml:2:4: b: tag !!set is not allowed (only plain data: mappings, lists and scalars)",
        "s.yaml:3:1: a: duplicate key (first at line 1)",
    ]


def test_paths_quote_keys_that_are_not_names() -> None:
    text = 'settings:\n  processing_seconds:\n    "segmind/nano-banana": fast\n'
    assert problems_of(text) == [
        's.yaml:3:28: settings.processing_seconds["segmind/nano-banana"]: '
        'expected number, got string "fast"'
    ]


def test_long_values_are_shortened() -> None:
    (problem,) = problems_of("description: " + "x" * 3000 + "\n")
    assert problem.startswith("s.yaml:1:14: description: ") and len(problem) < 300


def test_an_oversized_text_is_refused() -> None:
    assert problems_of("#" * (located.MAX_BYTES + 1)) == ["s.yaml: larger than 1048576 bytes"]


def test_error_survives_pickling() -> None:
    error = ScenarioError(["a:1:1: one", "a:2:1: two"])
    assert pickle.loads(pickle.dumps(error)).problems == error.problems


# --- files -----------------------------------------------------------------------------------


def test_load_reads_yaml_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text(BAD_ENUM, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.problems[0].startswith(f"{path}:7:17: faults[0].effect.http_error.status")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError, match=r"nope\.yaml: cannot read: No such file"):
        load_scenario(str(path))


def test_a_directory_is_not_a_scenario(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path)


def test_non_utf8_bytes_are_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"settings:\n  seed: 1\ndescription: caf\xe9\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.problems == [
        f"{path}:3:17: not valid UTF-8 (byte 0xe9: invalid continuation byte)"
    ]


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (located.MAX_BYTES + 10))
    with pytest.raises(ScenarioError, match=r"big\.yaml: larger than"):
        load_scenario(path)


# --- packaged scenarios, by name ----------------------------------------------------------


@pytest.mark.parametrize("name", ["flaky-segmind", "flaky-segmind.yaml", "slow-queue"])
def test_a_packaged_scenario_is_found_by_name(name: str) -> None:
    found = scenario_files.locate(name)
    assert found.parent == scenario_files.EXAMPLES
    assert load_scenario(name) == load_scenario(found)


def test_a_file_wins_over_a_packaged_name(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("slow-queue").write_text("settings: {workers: 7}\n")
    assert load_scenario("slow-queue")["settings"]["workers"] == 7


def test_an_unknown_name_lists_the_packaged_ones() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario("flaky-segmnd")
    message = str(caught.value)
    assert "flaky-segmnd" in message and "(did you mean 'flaky-segmind'?)" in message
    assert all(name in message for name in scenario_files.names())


def test_a_missing_path_is_not_looked_up_by_name(tmp_path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "flaky-segmind")


def test_the_packaged_names() -> None:
    assert scenario_files.names() == ["flaky-segmind", "out-of-credits", "slow-queue"]
