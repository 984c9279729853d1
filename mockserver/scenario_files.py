"""Scenario files by path, or by the name of one that ships with the package.

``--scenario flaky-segmind`` finds ``scenarios/flaky-segmind.yaml`` inside the installed
package, so an installed user reaches the examples without the source tree. A path that
exists always wins over a name; a value that is neither is refused naming what ships.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .names import did_you_mean

__all__ = ["EXAMPLES", "SUFFIXES", "UnknownScenario", "locate", "names"]

EXAMPLES = Path(__file__).resolve().parent / "scenarios"
SUFFIXES = (".yaml", ".yml", ".json")


class UnknownScenario(LookupError):
    """Neither a file nor the name of a packaged scenario."""


def names(folders: Sequence[Path] = (EXAMPLES,)) -> list[str]:
    """The packaged scenarios' names (file names without their suffix), sorted."""
    found = {p.stem for folder in folders if folder.is_dir() for p in folder.iterdir()}
    return sorted(
        n for n in found if any((f / n).with_suffix(s).is_file() for f in folders for s in SUFFIXES)
    )


def locate(value: str | os.PathLike[str], folders: Sequence[Path] = (EXAMPLES,)) -> Path:
    """The file ``value`` names: itself when it exists or has a folder part, else the packaged
    scenario of that name (with or without its suffix). A bare name that is neither raises
    :class:`UnknownScenario`."""
    path = Path(value)
    text = os.fspath(value)
    if path.exists() or path.name != text or text in {"", ".", ".."}:
        return path  # a path: the reader says why it cannot be read
    stem = path.stem if path.suffix in SUFFIXES else text
    for folder in folders:
        for suffix in SUFFIXES:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    shipped = names(folders)
    raise UnknownScenario(
        f"{text}: no such file, and no packaged scenario of that name"
        f"{did_you_mean(stem, shipped)} (packaged: {', '.join(shipped) or 'none'})"
    )
