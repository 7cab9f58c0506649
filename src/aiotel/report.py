"""Numbers per AI-generated function, from the embedded store. Pure: files in, records out.

The store holds cumulative ``aiotel.function.duration`` points, one file per process.
For each process and series the last point is the total; totals are summed over
processes. ``since`` subtracts, per series, the last point at or before that time.
Quantiles are interpolated inside histogram buckets the way Prometheus'
``histogram_quantile`` does, so the report and a dashboard agree.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from collections import Counter
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

DURATION = "aiotel.function.duration"
UNKNOWN_VERSION = "unknown"


@dataclasses.dataclass
class Point:
    """One cumulative histogram point as read from the store."""

    process: str  # the file it came from, without rotation suffix: one per process
    service: str
    version: str
    function: str
    tool: str
    path: str
    error_type: Optional[str]
    time: int
    count: int
    total: float
    buckets: List[int]
    bounds: List[float]


@dataclasses.dataclass
class FunctionStats:
    function: str
    version: str
    tool: str
    path: str
    calls: int = 0
    errors: int = 0
    total_seconds: float = 0.0
    buckets: List[int] = dataclasses.field(default_factory=list)
    bounds: List[float] = dataclasses.field(default_factory=list)
    error_types: Counter = dataclasses.field(default_factory=Counter)

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def mean(self) -> Optional[float]:
        return self.total_seconds / self.calls if self.calls else None

    def quantile(self, q: float) -> Optional[float]:
        return histogram_quantile(q, self.bounds, self.buckets)

    def to_json(self) -> dict:
        return {
            "function": self.function,
            "service.version": self.version,
            "tool": self.tool,
            "file": self.path,
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "mean_seconds": self.mean,
            "p50_seconds": self.quantile(0.5),
            "p95_seconds": self.quantile(0.95),
            "p99_seconds": self.quantile(0.99),
            "error_types": dict(self.error_types.most_common()),
        }


def histogram_quantile(q: float, bounds: Sequence[float], buckets: Sequence[int]) -> Optional[float]:
    """Prometheus' estimate: linear inside the bucket that holds the q-th observation."""
    total = sum(buckets)
    if total == 0 or not bounds:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if seen + count >= rank and count > 0:
            if index >= len(bounds):  # the +Inf bucket: its lower bound is all one can say
                return bounds[-1]
            lower = bounds[index - 1] if index > 0 else 0.0
            upper = bounds[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


def _attributes(items: Iterable[dict]) -> Dict[str, object]:
    found: Dict[str, object] = {}
    for item in items:
        value = item.get("value", {})
        found[item.get("key", "")] = next(iter(value.values()), None) if value else None
    return found


def store_files(store: str, signal: str = "metrics") -> List[str]:
    return sorted(glob.glob(os.path.join(store, f"{signal}-*.jsonl")) + glob.glob(os.path.join(store, f"{signal}-*.jsonl.1")))


def read_points(files: Sequence[str]) -> Iterator[Point]:
    """Every duration point of ``files``; a line that is not valid OTLP/JSON is skipped."""
    for path in files:
        process = os.path.basename(path).split(".jsonl")[0]
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                lines = list(fh)
        except OSError:
            continue
        for line in lines:
            try:
                request = json.loads(line)
            except ValueError:
                continue
            yield from _points_of(request, process)


def _points_of(request: dict, process: str) -> Iterator[Point]:
    for rm in request.get("resourceMetrics", []) or []:
        resource = _attributes(rm.get("resource", {}).get("attributes", []))
        service = str(resource.get("service.name") or "unknown_service")
        version = str(resource.get("service.version") or UNKNOWN_VERSION)
        for sm in rm.get("scopeMetrics", []) or []:
            for metric in sm.get("metrics", []) or []:
                if metric.get("name") != DURATION or "histogram" not in metric:
                    continue
                for dp in metric["histogram"].get("dataPoints", []) or []:
                    attrs = _attributes(dp.get("attributes", []))
                    yield Point(
                        process=process,
                        service=service,
                        version=version,
                        function=str(attrs.get("code.function.name", "?")),
                        tool=str(attrs.get("aiotel.provenance.tool", "")),
                        path=str(attrs.get("code.file.path", "")),
                        error_type=attrs.get("error.type"),  # type: ignore[arg-type]
                        time=int(dp.get("timeUnixNano", 0)),
                        count=int(dp.get("count", 0)),
                        total=float(dp.get("sum", 0.0)),
                        buckets=[int(b) for b in dp.get("bucketCounts", [])],
                        bounds=[float(b) for b in dp.get("explicitBounds", [])],
                    )


SeriesKey = Tuple[str, str, str, str, Optional[str]]


def _series_totals(points: Iterable[Point], since: Optional[int]) -> List[Point]:
    """The amount of each series (process, service, version, function, error type) in the window."""
    last: Dict[SeriesKey, Point] = {}
    baseline: Dict[SeriesKey, Point] = {}
    for p in points:
        key = (p.process, p.service, p.version, p.function, p.error_type)
        if since is not None and p.time <= since:
            if key not in baseline or p.time > baseline[key].time:
                baseline[key] = p
        if key not in last or p.time > last[key].time:
            last[key] = p
    totals = []
    for key, p in last.items():
        base = baseline.get(key)
        if since is not None and p.time <= since:
            continue
        if base is not None and len(base.buckets) == len(p.buckets):
            p = dataclasses.replace(
                p,
                count=p.count - base.count,
                total=p.total - base.total,
                buckets=[a - b for a, b in zip(p.buckets, base.buckets)],
            )
        totals.append(p)
    return totals


def summarize(points: Iterable[Point], since: Optional[int] = None) -> List[FunctionStats]:
    """Per (function, service.version): calls, errors, latency histogram, error types."""
    stats: Dict[Tuple[str, str], FunctionStats] = {}
    for p in _series_totals(points, since):
        entry = stats.get((p.function, p.version))
        if entry is None:
            entry = stats[(p.function, p.version)] = FunctionStats(p.function, p.version, p.tool, p.path, bounds=list(p.bounds))
        if p.bounds != entry.bounds:
            continue  # another aiotel version's buckets: not mergeable
        entry.calls += p.count
        entry.total_seconds += p.total
        entry.buckets = [a + b for a, b in zip(entry.buckets, p.buckets)] if entry.buckets else list(p.buckets)
        if p.error_type:
            entry.errors += p.count
            entry.error_types[p.error_type] += p.count
    return sorted(stats.values(), key=lambda s: (s.function, s.version))


@dataclasses.dataclass
class Comparison:
    function: str
    old: FunctionStats
    new: FunctionStats
    threshold: float
    min_delta: float = 0.0

    @property
    def latency_ratio(self) -> Optional[float]:
        if self.old.mean and self.new.mean is not None:
            return self.new.mean / self.old.mean
        return None

    @property
    def p95_ratio(self) -> Optional[float]:
        old, new = self.old.quantile(0.95), self.new.quantile(0.95)
        return new / old if old and new is not None else None

    @property
    def slower(self) -> bool:
        """At least ``threshold`` times the old mean, and at least ``min_delta`` seconds more:
        micro-second functions jitter by more than 1.5x between runs."""
        ratio = self.latency_ratio
        if ratio is None or ratio < self.threshold:
            return False
        return (self.new.mean or 0.0) - (self.old.mean or 0.0) >= self.min_delta

    @property
    def more_errors(self) -> bool:
        """The error rate at least doubled (or errors appeared where there were none)."""
        return self.new.errors > 0 and self.new.error_rate >= 2 * self.old.error_rate

    @property
    def flagged(self) -> bool:
        return self.slower or self.more_errors

    def to_json(self) -> dict:
        return {
            "function": self.function,
            "old_version": self.old.version,
            "new_version": self.new.version,
            "old_calls": self.old.calls,
            "new_calls": self.new.calls,
            "latency_ratio": self.latency_ratio,
            "p95_ratio": self.p95_ratio,
            "old_error_rate": self.old.error_rate,
            "new_error_rate": self.new.error_rate,
            "slower": self.slower,
            "more_errors": self.more_errors,
        }


def compare(
    stats: Iterable[FunctionStats], old: str, new: str, threshold: float = 1.5, min_delta: float = 0.0
) -> List[Comparison]:
    """Functions seen in both versions, flagged ones first, then by latency ratio."""
    by_version: Dict[str, Dict[str, FunctionStats]] = {}
    for s in stats:
        by_version.setdefault(s.version, {})[s.function] = s
    olds, news = by_version.get(old, {}), by_version.get(new, {})
    result = [Comparison(f, olds[f], news[f], threshold, min_delta) for f in sorted(set(olds) & set(news))]
    return sorted(result, key=lambda c: (not c.flagged, -(c.latency_ratio or 0.0), c.function))
