"""Lengths in buckets by powers of ten: "0", "1", "2..10", "11..100", ..., ">10000000".

What a failed call's argument length is counted by (``probes.shapes``), and what the
reports merge the finer size histogram into to compare two versions' inputs: a few
buckets a parameter, each saying "a list of more than 100 items" plainly."""

from __future__ import annotations

from bisect import bisect_left
from typing import Tuple

DECADES: Tuple[int, ...] = tuple(10 ** k for k in range(8))  # 1 .. 10_000_000


def length_bucket(size: float) -> str:
    """The bucket of a length (or of a histogram bucket's upper bound: the size
    histogram's bounds include every power of ten); "" for no length (below 0)."""
    if size < 0:
        return ""
    if size <= 1:
        return str(int(size))
    if size > DECADES[-1]:
        return f">{DECADES[-1]}"
    upper = DECADES[bisect_left(DECADES, size)]
    return f"{upper // 10 + 1}..{upper}"
