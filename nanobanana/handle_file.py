"""The CLI's job-handle files: a :class:`JobHandle` as JSON, plus where its images go.

The file is ``JobHandle.to_dict()`` with one more member, ``out``: the folder the first run's
``--out`` named, relative to the file's own folder (so a folder moved with its handle still
works). :meth:`JobHandle.load` ignores the extra member, so the library reads these files too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .models import JobHandle

__all__ = ["load_handle_file", "save_handle_file"]

OUT: str = "out"


def save_handle_file(handle: JobHandle, path: str | os.PathLike[str], out: str) -> Path:
    """Write ``handle`` to ``path``, recording the image folder ``out``; OSError if it cannot."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(os.path.abspath(out), os.path.abspath(target.parent))
    data = {**handle.to_dict(), OUT: relative}
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return target


def load_handle_file(path: str | os.PathLike[str]) -> tuple[JobHandle, str | None]:
    """The handle in ``path`` and the image folder it records (None for a handle saved by the
    library). OSError, or ValueError naming what is wrong, if the file is not a handle."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    handle = JobHandle.from_dict(data)
    recorded = data.get(OUT)
    if recorded is None:
        return handle, None
    if not isinstance(recorded, str) or not recorded:
        raise ValueError(f'"{OUT}" is a folder name, not {recorded!r}')
    return handle, os.path.normpath(os.path.join(Path(path).parent, recorded))
