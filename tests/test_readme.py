"""The README's "testing your client" example runs as written, through the installed plugin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).parents[1] / "README.md"
BLOCK = re.compile(
    r"<!-- readme-test:start -->\s*```python\n(.*?)```\s*<!-- readme-test:end -->", re.S
)


def test_readme_example_is_present() -> None:
    assert len(BLOCK.findall(README.read_text(encoding="utf-8"))) == 1


def test_readme_example_passes(pytester: pytest.Pytester) -> None:
    (code,) = BLOCK.findall(README.read_text(encoding="utf-8"))
    pytester.makepyfile(test_readme_example=code)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
