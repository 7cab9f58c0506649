"""What the pipeline lost and must say so: spans the export queue had no room for.

A plain counter, read by the metrics bridge as ``aiotel.spans.dropped`` (the store
keeps it, and ``aiotel report`` and ``aiotel doctor`` show it)."""

from __future__ import annotations

_dropped = [0]


def span_dropped() -> None:
    _dropped[0] += 1


def spans_dropped() -> int:
    return _dropped[0]


def reset() -> None:
    """A forked child counts its own."""
    _dropped[0] = 0
