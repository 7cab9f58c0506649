"""Find the Python files of a source tree, and the module name each would import as."""

from __future__ import annotations

import fnmatch
import os
from typing import Iterator, Sequence

# Never the project's own code: installed packages, caches, VCS data.
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", "site-packages", "dist-packages", "node_modules", ".tox", ".nox",
     ".mypy_cache", ".pytest_cache", ".hypothesis", ".aiotel", ".eggs"}
)


def is_virtualenv(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def _excluded(rel: str, name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def python_files(root: str, exclude: Sequence[str] = ()) -> Iterator[str]:
    """Every ``.py``/``.pyw`` file under ``root`` (or ``root`` itself), in a stable order."""
    if os.path.isfile(root):
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        kept = []
        for name in sorted(dirnames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if name in SKIPPED_DIRS or name.endswith(".egg-info") or is_virtualenv(full):
                continue
            if _excluded(rel, name, exclude):
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.endswith((".py", ".pyw")):
                continue
            full = os.path.join(dirpath, name)
            if _excluded(os.path.relpath(full, root), name, exclude):
                continue
            yield full


def module_name(path: str) -> str:
    """The module name import would use: climb while the folder is a package."""
    folder, filename = os.path.split(os.path.abspath(path))
    stem = os.path.splitext(filename)[0]
    parts = [] if stem == "__init__" else [stem]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        parts.insert(0, package)
    return ".".join(parts) or stem
