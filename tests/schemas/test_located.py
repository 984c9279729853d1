"""The one located document loader (schemas.located): data, and where each value starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.schemas.located import (
    MAX_JSON_DEPTH,
    Document,
    DocumentError,
    Pos,
    parse_document,
    read_document,
    too_deep,
)

YAML = "settings:\n  seed: 1\nfaults:\n  - effect: {latency: {fixed: 1}}\n"


def test_yaml_and_json_give_the_same_data_with_their_own_places() -> None:
    yaml = parse_document(YAML, "s.yaml")
    json = parse_document('{"settings": {"seed": 1},\n "faults": [{"effect": {}}]}', "s.json")
    assert yaml.data["settings"] == json.data["settings"] == {"seed": 1}
    assert yaml.at(("settings", "seed")) == Pos(2, 9)
    assert yaml.key_at(("settings", "seed")) == Pos(2, 3)
    assert json.at(("faults", 0, "effect")) == Pos(2, 24)
    assert yaml.at(("faults", 0, "nothing", "here")) == yaml.at(("faults", 0))


def test_violations_are_lines_sorted_by_place() -> None:
    document = parse_document("faults:\n  - {}\nsettings: {seed: -1}\n", "s.yaml")
    found = schemas.explain("mock", "scenario", document.data)
    assert document.lines(found)[-1].startswith("s.yaml:3:18: settings.seed: ")


def test_a_document_seen_under_a_prefix_keeps_its_places() -> None:
    rules = parse_document("- effect: {}\n- effect: {}\n", "rules.yaml")
    scenario = rules.nested(("faults",), {"faults": rules.data})
    assert scenario.at(("faults", 1, "effect")) == rules.at((1, "effect")) == Pos(2, 11)


def test_data_that_was_not_read_from_text_is_named_by_path_only() -> None:
    found = schemas.explain("mock", "scenario", {"settings": {"seed": -1}})
    shown = Document.of({}).lines(found)
    assert shown == [str(found[0])] == ["settings.seed: must be >= 0, got -1"]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\na: 2\n", "s.yaml:2:1: a: duplicate key (first at line 1)"),
        ("a: !!python/object:os.system x\n", "s.yaml:1:4: a: tag !!python/object:os.system"),
        ("a: [\n", "s.yaml:2:1: YAML syntax error"),
        ('{"a": NaN}', "s.yaml:1:7: a: NaN is not a finite number"),
    ],
)
def test_what_is_not_plain_data_is_refused_in_place(text: str, line: str) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(text, "s.yaml")
    assert caught.value.problems[0].startswith(line), caught.value.problems


def test_a_file_that_cannot_be_read_or_decoded_is_named(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"missing\.yaml: cannot read: "):
        read_document(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(DocumentError, match=r"bad\.yaml:2:4: not valid UTF-8 \(byte 0xff"):
        read_document(bad)


def test_nesting_is_bounded() -> None:
    assert not too_deep("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    assert too_deep("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(DocumentError, match="nested more than"):
        parse_document("a:\n" + "".join("  " * i + "- \n" for i in range(1, 70)), "s.yaml")
