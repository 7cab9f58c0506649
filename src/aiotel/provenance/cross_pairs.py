"""The control's half of a cross-module pair (``replaces: .legacy.total``): the other
module's file, found beside the candidate's as the import system would find it in the
same package, is read and parsed, never imported. Not cached with the candidate's
scan: the answer depends on a second file.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Union

from .decode import MAX_SOURCE_BYTES
from .pairs import EXPERIMENT_REFUSED, check_control
from .records import CANDIDATE, Notice, Provenance, ScanResult
from .syntax import parse_quietly


def module_file(beside: str, beside_module: str, module: str) -> Optional[str]:
    """The source file of ``module``, in the same top-level package directory as
    ``beside`` (the file of ``beside_module``); None when there is none."""
    parts = beside_module.split(".")
    root = os.path.dirname(os.path.abspath(beside))
    if os.path.basename(beside) != "__init__.py":
        parts = parts[:-1]
    for part in reversed(parts):
        if os.path.basename(root) != part:
            return None  # not laid out as its module name says (a path hook's module): nothing to find beside it
        root = os.path.dirname(root)
    base = os.path.join(root, *module.split("."))
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def _tree(path: Optional[str], module: str, max_bytes: int):
    """The syntax tree of ``module``'s file, or a string that says why there is none."""
    if path is None:
        return f"no source file for {module} beside this one (aiotel reads it; it never imports it)"
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        return f"cannot read {module} ({exc.strerror or exc})"
    if len(data) > max_bytes:
        return f"{module} is larger than {max_bytes} bytes"
    try:
        return parse_quietly(data, path)
    except (SyntaxError, ValueError) as exc:
        return f"{module} does not parse ({type(exc).__name__}: {exc})"


def resolve_across(result: ScanResult, source: bytes, max_bytes: int = MAX_SOURCE_BYTES) -> ScanResult:
    """``result`` with each cross-module pair checked against the other module's file: a
    valid one's control record in ``controls``, a refused one's ``shadow`` dropped and a
    notice added."""
    if not any(r.shadow[0] == CANDIDATE for r in result.functions if r.crosses_modules):  # type: ignore[index]
        return result
    trees: Dict[str, Union[str, object]] = {}
    functions: List[Provenance] = []
    notices = list(result.notices)
    controls: List[Provenance] = []
    own_tree = None
    for record in result.functions:
        if not record.crosses_modules or record.shadow[0] != CANDIDATE:  # type: ignore[index]
            functions.append(record)
            continue
        module = record.shadow[1]  # type: ignore[index]
        if module not in trees:
            trees[module] = _tree(module_file(result.path, result.module, module), module, max_bytes)
        tree = trees[module]
        control, problem = None, tree if isinstance(tree, str) else None
        if problem is None:
            if own_tree is None:
                own_tree = parse_quietly(source, result.path)
            control, problem = check_control(own_tree, record, tree)  # type: ignore[arg-type]
        if control is None:
            notices.append(Notice(record.def_line, EXPERIMENT_REFUSED + str(problem)))
            functions.append(dataclasses.replace(record, shadow=None))
        else:
            functions.append(record)
            controls.append(control)
    return dataclasses.replace(result, functions=tuple(functions), controls=tuple(controls),
                               notices=tuple(sorted(notices, key=lambda n: n.line)))
