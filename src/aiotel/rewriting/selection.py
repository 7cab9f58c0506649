"""What gets instrumented, and why not: the one place it is decided.

The import hook, the main-script runner, ``aiotel scan`` and ``aiotel doctor`` all ask
``Scope``, so what doctor and scan say is what the hook does, by construction. A module
is in scope when it is user code (not the standard library, not an installed package,
not aiotel itself), unless ``AIOTEL_INCLUDE``/``AIOTEL_EXCLUDE`` patterns say otherwise;
its functions are instrumented when the scanner found them marked (``select``).
"""

from __future__ import annotations

import fnmatch
import os
import sys
import sysconfig
from typing import TYPE_CHECKING, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

if TYPE_CHECKING:  # the records load with the first marked file
    from ..provenance.records import Provenance, ScanResult

_THIRD_PARTY_DIRS = ("site-packages", "dist-packages")

# The reasons a module is left alone (what doctor and scan print).
EXCLUDED = "excluded by AIOTEL_EXCLUDE"
AIOTEL_ITSELF = "aiotel's own code"
STANDARD_LIBRARY = "the standard library (AIOTEL_INCLUDE a path to instrument it)"
INSTALLED_PACKAGE = "an installed package in site-packages (AIOTEL_INCLUDE it to instrument it)"


def _stdlib_names() -> frozenset:
    names = getattr(sys, "stdlib_module_names", None)  # 3.10+
    if names:
        return frozenset(names)
    # 3.9: what the stdlib directory holds, plus the built-in modules
    found = set(sys.builtin_module_names)
    stdlib = sysconfig.get_paths().get("stdlib")
    try:
        for entry in os.listdir(stdlib) if stdlib else ():
            name, ext = os.path.splitext(entry)
            if ext == ".py" or (not ext and entry.isidentifier() and entry != "site-packages"):
                found.add(name)
    except OSError:
        pass
    return frozenset(found)


class Scope:
    """Which modules aiotel may rewrite: user code by default, patterns add or remove."""

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.include_modules, self.include_paths = self._split(include)
        self.exclude_modules, self.exclude_paths = self._split(exclude)
        prefixes = set()
        for key in ("stdlib", "platstdlib"):
            path = sysconfig.get_paths().get(key)
            if path:
                prefixes.add(os.path.join(os.path.normcase(os.path.abspath(path)), ""))
                prefixes.add(os.path.join(os.path.normcase(os.path.realpath(path)), ""))
        self.stdlib_prefixes = tuple(prefixes)
        self.stdlib_names = _stdlib_names()
        # directory -> None (user code) or why its modules are left alone
        self._directories: Dict[str, Optional[str]] = {}

    @staticmethod
    def _split(patterns: Sequence[str]) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
        modules: List[str] = []
        paths: List[str] = []
        for pattern in patterns:
            if "/" in pattern or os.sep in pattern or pattern.endswith(".py"):
                paths.append(pattern if os.path.isabs(pattern) else "*" + os.sep + pattern)
            else:
                modules.append(pattern)
        return tuple(modules), tuple(paths)

    @staticmethod
    def _module_matches(name: str, patterns: Iterable[str]) -> bool:
        # a package pattern covers its submodules
        return any(fnmatch.fnmatchcase(name, p) or name.startswith(p + ".") for p in patterns)

    @staticmethod
    def _path_matches(path: str, patterns: Iterable[str]) -> bool:
        return any(fnmatch.fnmatch(path, p) for p in patterns)

    def rules_out(self, name: str) -> bool:
        """Decided from the name alone, before any file-system lookup (imports are hot).
        True only where ``why_not`` would give a reason for every path."""
        if self.exclude_modules and self._module_matches(name, self.exclude_modules):
            return True
        if self.include_modules and self._module_matches(name, self.include_modules):
            return False
        if name == "aiotel" or name.startswith("aiotel."):
            return True
        return name.partition(".")[0] in self.stdlib_names and not self.include_paths

    def why_not(self, name: str, path: str) -> Optional[str]:
        """None when the module ``name``, loaded from ``path``, is in scope; else why not."""
        if self.exclude_modules or self.exclude_paths or self.include_modules or self.include_paths:
            if self._module_matches(name, self.exclude_modules) or self._path_matches(path, self.exclude_paths):
                return EXCLUDED
            if self._module_matches(name, self.include_modules) or self._path_matches(path, self.include_paths):
                return None
        if name == "aiotel" or name.startswith("aiotel."):
            return AIOTEL_ITSELF
        # the rest depends on the directory alone: decided once per directory
        directory = os.path.dirname(path)
        try:
            return self._directories[directory]
        except KeyError:
            pass
        reason = self._why_not_directory(directory)
        if len(self._directories) < 4096 and os.path.isabs(directory):  # a relative one depends on the cwd
            self._directories[directory] = reason
        return reason

    def wants(self, name: str, path: str) -> bool:
        return self.why_not(name, path) is None

    def _why_not_directory(self, directory: str) -> Optional[str]:
        """User code is neither the standard library's nor a site-packages'."""
        normalized = os.path.join(os.path.normcase(os.path.abspath(directory)), "")
        if normalized.startswith(self.stdlib_prefixes):
            return STANDARD_LIBRARY
        parts = normalized.split(os.sep)
        if any(part in _THIRD_PARTY_DIRS for part in parts):
            return INSTALLED_PACKAGE
        return None


class Selection(NamedTuple):
    """What the hook instruments in one file: the functions, or why none."""

    functions: Tuple[Provenance, ...]
    why_not: Optional[str]  # None when ``functions`` is not empty


def select(scope: Scope, name: str, path: str, result: ScanResult) -> Selection:
    """The functions of ``result`` (the scan of the module ``name`` at ``path``) that the
    import hook instruments, or why it instruments none of them."""
    reason = scope.why_not(name, path)
    if reason is not None:
        return Selection((), reason)
    if result.skipped:
        return Selection((), f"not scanned: {result.skipped}")
    if not result.functions:
        return Selection((), "no marked function")
    return Selection(result.functions, None)
