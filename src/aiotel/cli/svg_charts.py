"""The report's charts as inline SVG (no script, no network): latency histograms, argument
type shares, and calls over time."""

from __future__ import annotations

import time
from typing import Callable, List, Sequence, Tuple

from .markup import esc
from .units import human_seconds


def histogram_svg(series: Sequence[Tuple[str, str, Sequence[int]]], bounds: Sequence[float],
                  unit: Callable[[float], str] = human_seconds, what: str = "latency") -> str:
    """Bars per bucket (of latency, or of ``what`` in ``unit``), one colour per series
    (name, colour, counts)."""
    series = [s for s in series if s[2] and sum(s[2])]
    if not series or not bounds:
        return f"<p>no {esc(what)} data</p>"
    shares = [[c / max(sum(counts), 1) for c in counts] for _, _, counts in series]
    used = [i for i in range(len(series[0][2])) if any(s[i] for s in shares)]
    low, high = max(min(used) - 1, 0), min(max(used) + 2, len(series[0][2]))
    columns = list(range(low, high))
    width, height, left = max(48 * len(columns), 240), 150, 34
    bar = (width / len(columns)) / (len(series) + 0.5)
    top = max(max(s[i] for i in columns) for s in shares) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left}" height="{height + 40}" role="img" '
             f'aria-label="{esc(what)} histogram">']
    for k, (name, colour, counts) in enumerate(series):
        for j, i in enumerate(columns):
            h = shares[k][i] / top * height
            x = left + j * (width / len(columns)) + k * bar
            parts.append(f'<rect x="{x:.1f}" y="{height - h + 5:.1f}" width="{bar * 0.9:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{esc(name)}: {counts[i]} calls</title></rect>')
    for j, i in enumerate(columns):
        label = "≤" + unit(bounds[i]) if i < len(bounds) else ">" + unit(bounds[-1])
        parts.append(f'<text x="{left + j * (width / len(columns)):.1f}" y="{height + 20}">{esc(label)}</text>')
    parts.append(f'<text x="0" y="12">{100 * top:.0f}%</text></svg>')
    legend = " ".join(f'<span style="color:{colour}">■ {esc(name)}</span>' for name, colour, _ in series)
    return "".join(parts) + (f"<p>{legend}</p>" if len(series) > 1 else "")


def shares_svg(parts: Sequence[Tuple[str, int]], width: int = 360) -> str:
    """Horizontal bars: each part's share of the whole (argument types of one parameter)."""
    total = sum(count for _, count in parts) or 1
    rows = []
    for i, (name, count) in enumerate(parts):
        y = i * 18
        rows.append(f'<rect x="120" y="{y + 3}" width="{count / total * (width - 170):.1f}" height="12" fill="#36c">'
                    f'<title>{esc(name)}: {count} calls</title></rect><text x="0" y="{y + 13}">{esc(name[:20])}</text>'
                    f'<text x="{width - 45}" y="{y + 13}">{100 * count / total:.0f}%</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{18 * len(parts) + 4}" role="img" '
            f'aria-label="argument types">{"".join(rows)}</svg>')


def sparkline_svg(calls: Sequence[int], errors: Sequence[int], width: int = 120, height: int = 24) -> str:
    top = max(max(calls, default=0), 1)
    step = width / max(len(calls) - 1, 1)

    def points(values: Sequence[int]) -> str:
        return " ".join(f"{i * step:.1f},{height - v / top * (height - 2) - 1:.1f}" for i, v in enumerate(values))

    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="calls over time"><polyline fill="none" stroke="#36c" stroke-width="1.5" '
            f'points="{points(calls)}"/>' + (f'<polyline fill="none" stroke="#c33" stroke-width="1" '
                                             f'points="{points(errors)}"/>' if any(errors) else "") + "</svg>")


def over_time_svg(series: Sequence[Tuple[str, str, Tuple[List[int], List[int], int, int]]]) -> str:
    """Calls over time of each version (name, colour, ``calls_over_time`` on one axis), and
    the failed calls of the last (the newest) in red."""
    if not any(any(over[0]) for _, _, over in series):
        return "<p>no calls in this window</p>"
    first = min(over[2] for _, _, over in series if any(over[0]))
    last = max(over[3] for _, _, over in series if any(over[0]))
    when = lambda ns: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))  # noqa: E731
    if first == last:
        total = sum(sum(over[0]) for _, _, over in series)
        return (f"<p>All {total} calls arrived in one export, at {esc(when(first))} (a short run, or one "
                "export interval): no curve to draw.</p>")
    width, height = 600, 90
    top = max(max(max(over[0]) for _, _, over in series), 1)
    step = width / max(len(series[0][2][0]) - 1, 1)

    def line(values: Sequence[int], colour: str, stroke: float) -> str:
        points = " ".join(f"{i * step:.1f},{height - v / top * (height - 2) - 1:.1f}" for i, v in enumerate(values))
        return f'<polyline fill="none" stroke="{colour}" stroke-width="{stroke}" points="{points}"/>'

    lines = [line(over[0], colour, 1.5) for _, colour, over in series]
    errors = series[-1][2][1]
    if any(errors):
        lines.append(line(errors, "#c33", 1))
    legend = ", ".join(f'<span style="color:{colour}">■ calls of {esc(name)}</span>' for name, colour, _ in series)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="calls over time">{"".join(lines)}</svg>'
            f"<p>{esc(when(first))} to {esc(when(last))}: {legend}"
            + (f', <span style="color:#c33">■ failed calls of {esc(series[-1][0])}</span>' if any(errors) else "")
            + "</p>")
