"""How the reports write a duration and a change of memory: one spelling for the text and
the HTML report."""

from __future__ import annotations

from typing import Optional


def human_seconds(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.1f}µs"
    if value < 1:
        return f"{value * 1e3:.1f}ms"
    return f"{value:.2f}s"


def human_bytes_delta(value: Optional[float]) -> str:
    """A signed change of memory in binary units: +64.0MiB, -12.0KiB, +0B."""
    if value is None:
        return "-"
    sign, size = ("-" if value < 0 else "+"), abs(value)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{sign}{size:.0f}{unit}" if unit == "B" else f"{sign}{size:.1f}{unit}"
        size /= 1024
    return f"{sign}{size:.2f}GiB"
