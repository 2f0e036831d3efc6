"""Finding the recordings a triage is given: directories (searched recursively), globs and files."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from .results import TriageError

RECORDING_SUFFIX = ".chrec"  # what a directory given to triage is searched for (recursively)


def find_recordings(patterns: Iterable[str]) -> list[tuple[str, Path]]:
    """The recordings named by ``patterns``: (name as given, absolute path), each once, in a stable order.

    A directory gives its ``*.chrec`` files (recursively), a glob (``**`` recursive) or a file itself.
    TriageError when a pattern names nothing.
    """
    found: dict[Path, str] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        names: list[str] = []
        for match in matches:
            path = Path(match)
            if path.is_dir():
                names += sorted(str(p) for p in path.rglob(f"*{RECORDING_SUFFIX}") if p.is_file())
            elif path.exists() or path.is_symlink():
                names.append(match)
        if not names:
            what = "no such file or directory" if not glob.has_magic(pattern) and not Path(pattern).exists() else (
                "no recordings match")  # fmt: skip
            raise TriageError(f"{pattern}: {what}")
        for name in names:
            found.setdefault(Path(os.path.abspath(name)), name)
    return [(name, path) for path, name in found.items()]
