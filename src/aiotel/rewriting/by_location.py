"""Modules a program loads by their path: ``importlib.util.spec_from_file_location``, then
``module_from_spec`` and ``spec.loader.exec_module``, as plugin loaders and test runners
do. No finder is asked, so the import hook never sees them. ``install`` wraps that one
public function: a spec it makes for a source file (the stock ``SourceFileLoader``)
gets the hook's rewriting loader when the file has functions to instrument; anything
else, or any failure, is the spec it made, untouched. The standard library's own
finders call the function's original in ``importlib._bootstrap_external``: normal
imports do not pass here.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

_WRAPPED = "__aiotel_wrapped__"


def install(hook: Any) -> None:
    original = importlib.util.spec_from_file_location
    if getattr(original, _WRAPPED, False):
        return

    @functools.wraps(original)
    def spec_from_file_location(*args: Any, **kwargs: Any) -> Any:
        return hook.by_location(original(*args, **kwargs))

    setattr(spec_from_file_location, _WRAPPED, True)
    importlib.util.spec_from_file_location = spec_from_file_location
