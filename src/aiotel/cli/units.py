"""How the reports write a duration: one spelling for the text and the HTML report."""

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
