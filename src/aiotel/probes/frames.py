"""Which marked function is running: the innermost frame of rewritten code on a stack.

Asked only when another instrumentation starts a span (``aiotel.pipeline.foreign_spans``),
never per marked call. A rewritten function's code holds the call-state local
(``aiotel.rewriting.rewrite.CALL``) and names its probe's module global
(``rewrite.handle_name``: ``__aiotel_f<N>__``), so each code object is looked at once and
remembered. The names are copied here, not imported: the rewriting stage imports the
probes, never the other way (tests/probes/test_traces.py checks that they agree).
"""

from __future__ import annotations

import sys
from types import CodeType, FrameType
from typing import Dict, Optional

from .state import FunctionProbe

CALL = "__aiotel_call__"
HANDLE_PREFIX, HANDLE_SUFFIX = "__aiotel_f", "__"

# How many frames up a marked call is looked for: deeper stacks are rare, and the
# look-up must stay cheap for a span started in a deep library call chain
MAX_DEPTH = 200
_MAX_REMEMBERED = 20_000

_handles: Dict[CodeType, Optional[str]] = {}


def _is_handle(name: str) -> bool:
    return (name.startswith(HANDLE_PREFIX) and name.endswith(HANDLE_SUFFIX)
            and name[len(HANDLE_PREFIX):-len(HANDLE_SUFFIX)].isdigit())


def _handle_of(code: CodeType) -> Optional[str]:
    """The global naming the probe of the function this code is, or None."""
    if CALL not in code.co_varnames:
        return None
    for name in code.co_names:
        if _is_handle(name):
            return name
    return None


def innermost_probe(frame: Optional[FrameType] = None) -> Optional[FunctionProbe]:
    """The probe of the innermost marked function running on this thread's stack."""
    if frame is None:
        frame = sys._getframe(1)
    handles = _handles
    for _ in range(MAX_DEPTH):
        if frame is None:
            return None
        code = frame.f_code
        try:
            handle = handles[code]
        except KeyError:
            handle = _handle_of(code)
            if len(handles) >= _MAX_REMEMBERED:
                handles.clear()
            handles[code] = handle
        if handle is not None:
            probe = frame.f_globals.get(handle)
            if probe.__class__ is FunctionProbe:
                return probe
        frame = frame.f_back
    return None
