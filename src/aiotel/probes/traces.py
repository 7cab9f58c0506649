"""What aiotel remembers of each recorded trace while it runs in this process: how many
spans each function has had in it (the per-trace budget), which aiotel spans are open,
and the calls the budget left without a span, to be told on the nearest aiotel span.

State is made for a trace when an aiotel span joins or starts it, and dropped when the
trace's local root ends (``aiotel.pipeline.foreign_spans`` sees every span end). Traces
whose root this process never sees end (a root on another tracer provider) are bounded
by ``MAX_TRACES``: the oldest state goes first.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

MAX_TRACES = 4096
# How far up the chain of open spans the nearest aiotel span is looked for
_MAX_HOPS = 64


class TraceState:
    __slots__ = ("spans", "open", "parents", "unrecorded")

    def __init__(self) -> None:
        self.spans: Dict[Any, int] = {}  # probe -> spans of that function in this trace
        self.open: Dict[int, Any] = {}  # span id -> probe, for aiotel spans not yet ended
        self.parents: Dict[int, int] = {}  # span id -> parent span id, for other spans in this trace
        self.unrecorded: Dict[int, Dict[str, int]] = {}  # aiotel span id -> function name -> calls

    def credit_unrecorded(self, span_id: int, name: str) -> bool:
        """Count a call left without a span on the nearest open aiotel span above
        ``span_id``; False when there is none."""
        for _ in range(_MAX_HOPS):
            if span_id in self.open:
                counts = self.unrecorded.setdefault(span_id, {})
                counts[name] = counts.get(name, 0) + 1
                return True
            parent = self.parents.get(span_id)
            if parent is None:
                return False
            span_id = parent
        return False


_traces: Dict[int, TraceState] = {}


def state_of(trace_id: int) -> TraceState:
    """The trace's state, made on first use."""
    state = _traces.get(trace_id)
    if state is None:
        if len(_traces) >= MAX_TRACES:
            try:
                del _traces[next(iter(_traces))]  # the oldest: its root ended unseen
            except (StopIteration, KeyError, RuntimeError):
                pass
        state = _traces.setdefault(trace_id, TraceState())
    return state


def find(trace_id: int) -> Optional[TraceState]:
    return _traces.get(trace_id)


def ended(trace_id: int) -> None:
    """The trace's local root ended: nothing more of it runs here."""
    _traces.pop(trace_id, None)


def forget_all() -> None:
    """A forked child starts with no trace in flight of its own."""
    _traces.clear()


def in_flight() -> int:
    return len(_traces)
