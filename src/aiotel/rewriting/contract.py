"""What rewritten code, the probes and the rewritten-bytecode cache agree on: the names the
rewrite gives its globals and locals, the format of the calls it makes, and the options
that change what it inserts. Apart from ``rewrite`` so that the import hook can name a
cached pyc without loading the transform (which only a cold rewrite needs).
"""

from __future__ import annotations

from typing import NamedTuple

PROBES = "__aiotel_probes__"
ENTER = "__aiotel_enter__"  # the module's binding of probes.enter (see probes.use_accelerator)
LEAVE = "__aiotel_leave__"
CALL = "__aiotel_call__"
EXC = "__aiotel_exc__"
RESULT = "__aiotel_result__"
TRIAL = "__aiotel_trial__"
PROBES_MODULE = "aiotel.probes"

# Raise when the rewritten code changes how it calls the probes (names, arguments): a pyc
# cached by an earlier rewrite must not meet probes that expect other calls.
REWRITE_FORMAT = 7  # 7: enter/leave through module globals; 6: pairs across modules (probes.pair_half)

# Parameters whose shapes are recorded, at most: bounds the span attributes and series.
MAX_SHAPE_PARAMETERS = 16


class RewriteOptions(NamedTuple):  # not a dataclass: importing dataclasses costs start-up 6 ms
    """What the rewrite puts into each function besides the call probes.

    Fallback and empty-result counting cost nothing on paths that do not take them
    (the report sits inside the handler, the None check is one comparison), so they are
    on by default; they can be switched off here for the overhead benchmark. Shapes
    read every argument on every call, so they are opt-in (``AIOTEL_CAPTURE_ARGS=shape``).
    """

    count_fallbacks: bool = True
    count_empty_results: bool = True
    capture_shapes: bool = False

    @property
    def tag(self) -> str:
        """Part of the cached pyc's name: code rewritten with other options, or by a rewrite
        whose output calls the probes differently, is never reused."""
        flags = "".join(flag for flag, on in (("f", self.count_fallbacks), ("e", self.count_empty_results),
                                              ("s", self.capture_shapes)) if on)
        return f"r{REWRITE_FORMAT}{flags}"
