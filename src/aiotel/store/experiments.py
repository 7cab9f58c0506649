"""The verdict of each experiment (``AIOTEL_SHADOW``), from the store's ``aiotel.experiment.*``
series: calls compared, mismatches by kind, and the candidate's latency against the
control's with a confidence interval.

The latency ratio is the ratio of the arms' mean times (exact: from the histograms'
sums). Its 95% interval is a percentile bootstrap over the bucketed histograms: each
resample draws every arm's calls again from its bucket counts (a bucket's calls at its
mid-point, scaled so the arm's mean stays exact); an arm of more than
``_EXACT_RESAMPLE`` calls has its resampled mean drawn from the normal limit of the
same resampling. Seeded: one store gives one verdict. Pure: points in, results out.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .. import semconv
from .rollup import Point, series_totals

SAME_FASTER = "same results, faster"
SAME_SLOWER = "same results, slower"
DIFFERS = "differs"
INCONCLUSIVE = "inconclusive"

MIN_CALLS = 20  # per arm, before the latency says anything
_RESAMPLES = 2000
_EXACT_RESAMPLE = 2000


@dataclasses.dataclass
class Arm:
    calls: int = 0
    total_seconds: float = 0.0
    buckets: List[int] = dataclasses.field(default_factory=list)
    bounds: List[float] = dataclasses.field(default_factory=list)

    @property
    def mean(self) -> Optional[float]:
        return self.total_seconds / self.calls if self.calls else None

    def add(self, point: Point) -> None:
        if self.bounds and point.bounds != self.bounds:
            return  # another aiotel version's buckets: not mergeable
        self.bounds = list(point.bounds)
        self.calls += point.count
        self.total_seconds += point.total
        self.buckets = [a + b for a, b in zip(self.buckets, point.buckets)] if self.buckets else list(point.buckets)


@dataclasses.dataclass
class Experiment:
    candidate: str
    control: str
    comparator: str
    version: str
    compared: Dict[str, int] = dataclasses.field(default_factory=dict)  # live arm -> calls
    mismatches: Dict[str, int] = dataclasses.field(default_factory=dict)  # kind -> calls
    arms: Dict[str, Arm] = dataclasses.field(default_factory=lambda: {"candidate": Arm(), "control": Arm()})
    shadow_errors: Dict[Tuple[str, str], int] = dataclasses.field(default_factory=dict)  # (arm, error.type)
    ratio: Optional[float] = None
    interval: Optional[Tuple[float, float]] = None
    verdict: str = INCONCLUSIVE
    reason: str = ""

    @property
    def calls(self) -> int:
        return sum(self.compared.values())

    @property
    def mismatch_rate(self) -> float:
        return sum(self.mismatches.values()) / self.calls if self.calls else 0.0

    def to_json(self) -> dict:
        return {
            "candidate": self.candidate, "control": self.control, "comparator": self.comparator,
            "version": self.version, "calls_compared": self.calls, "calls_compared_by_live_arm": dict(self.compared),
            "mismatches": dict(self.mismatches), "mismatch_rate": self.mismatch_rate,
            "mean_seconds": {arm: a.mean for arm, a in self.arms.items()},
            "latency_ratio": self.ratio,
            "latency_ratio_95ci": list(self.interval) if self.interval else None,
            "interval_method": "percentile bootstrap over the bucketed arm histograms",
            "shadow_errors": [{"arm": arm, "error_type": kind, "count": n}
                              for (arm, kind), n in sorted(self.shadow_errors.items())],
            "verdict": self.verdict, "reason": self.reason,
        }


def summarize(points: Iterable[Point], since: Optional[int] = None) -> List[Experiment]:
    """One result per (candidate, control, comparator, service.version)."""
    found: Dict[Tuple[str, str, str, str], Experiment] = {}
    for p in series_totals(points, since):
        if p.metric not in (semconv.EXPERIMENT_CALLS, semconv.EXPERIMENT_MISMATCHES, semconv.EXPERIMENT_ARM_DURATION,
                            semconv.EXPERIMENT_SHADOW_ERRORS):
            continue
        control, comparator = str(p.labels[0]), str(p.labels[1])
        key = (p.function, control, comparator, p.version)
        entry = found.get(key)
        if entry is None:
            entry = found[key] = Experiment(p.function, control, comparator, p.version)
        if p.metric == semconv.EXPERIMENT_CALLS:
            entry.compared[str(p.labels[2])] = entry.compared.get(str(p.labels[2]), 0) + p.count
        elif p.metric == semconv.EXPERIMENT_MISMATCHES:
            entry.mismatches[str(p.labels[3])] = entry.mismatches.get(str(p.labels[3]), 0) + p.count
        elif p.metric == semconv.EXPERIMENT_ARM_DURATION:
            entry.arms.setdefault(str(p.labels[2]), Arm()).add(p)
        else:
            arm_error = (str(p.labels[2]), str(p.labels[3]))
            entry.shadow_errors[arm_error] = entry.shadow_errors.get(arm_error, 0) + p.count
    results = sorted(found.values(), key=lambda e: (e.candidate, e.version))
    for entry in results:
        decide(entry)
    return results


def decide(entry: Experiment) -> None:
    candidate, control = entry.arms["candidate"], entry.arms["control"]
    if candidate.mean and control.mean:
        entry.ratio = candidate.mean / control.mean
        if candidate.calls >= MIN_CALLS and control.calls >= MIN_CALLS:
            entry.interval = ratio_interval(candidate, control)
    differing = {k: n for k, n in entry.mismatches.items() if k != "inconclusive" and n}
    if not entry.calls:
        entry.verdict, entry.reason = INCONCLUSIVE, "no call was compared"
    elif differing:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(differing.items()))
        entry.verdict, entry.reason = DIFFERS, f"{sum(differing.values())} of {entry.calls} compared calls differ ({kinds})"
    elif entry.mismatches.get("inconclusive"):
        entry.verdict = INCONCLUSIVE
        entry.reason = f"the comparator could not decide {entry.mismatches['inconclusive']} of {entry.calls} calls"
    elif entry.interval is None:
        entry.verdict, entry.reason = INCONCLUSIVE, f"same results, but fewer than {MIN_CALLS} timed calls per arm"
    elif entry.interval[1] < 1.0:
        entry.verdict, entry.reason = SAME_FASTER, f"same results in {entry.calls} calls; the 95% interval is below 1"
    elif entry.interval[0] > 1.0:
        entry.verdict, entry.reason = SAME_SLOWER, f"same results in {entry.calls} calls; the 95% interval is above 1"
    else:
        entry.verdict, entry.reason = INCONCLUSIVE, "same results; the latency difference is within the 95% interval"


def _midpoints(arm: Arm) -> List[float]:
    """A value per bucket (geometric mid-point; the open-ended ones from their one bound),
    scaled so that the arm's mean from them is its exact mean."""
    bounds = arm.bounds
    values = []
    for index in range(len(arm.buckets)):
        low = bounds[index - 1] if index > 0 else 0.0
        high = bounds[index] if index < len(bounds) else bounds[-1] * 2
        values.append(math.sqrt(low * high) if low > 0 else high / 2)
    approximate = sum(c * v for c, v in zip(arm.buckets, values))
    scale = arm.total_seconds / approximate if approximate > 0 else 1.0
    return [v * scale for v in values]


def _resampled_means(arm: Arm, rng: random.Random) -> List[float]:
    values = _midpoints(arm)
    n = arm.calls
    if n <= _EXACT_RESAMPLE:
        population = range(len(values))
        return [sum(values[i] for i in rng.choices(population, weights=arm.buckets, k=n)) / n
                for _ in range(_RESAMPLES)]
    mean = sum(c * v for c, v in zip(arm.buckets, values)) / n
    variance = sum(c * (v - mean) ** 2 for c, v in zip(arm.buckets, values)) / n
    spread = math.sqrt(variance / n)
    return [max(rng.gauss(mean, spread), 1e-12) for _ in range(_RESAMPLES)]


def ratio_interval(candidate: Arm, control: Arm, level: float = 0.95) -> Tuple[float, float]:
    rng = random.Random(20261205)
    ratios = sorted(a / b for a, b in zip(_resampled_means(candidate, rng), _resampled_means(control, rng)) if b > 0)
    tail = (1 - level) / 2
    return ratios[int(tail * (len(ratios) - 1))], ratios[int((1 - tail) * (len(ratios) - 1))]


def table_rows(results: Sequence[Experiment]) -> List[List[str]]:
    rows = [["CANDIDATE", "CONTROL", "VERSION", "COMPARED", "MISMATCH %", "RATIO", "95% CI", "VERDICT"]]
    for e in results:
        rows.append([
            e.candidate, e.control, e.version, str(e.calls), f"{100 * e.mismatch_rate:.1f}",
            f"{e.ratio:.2f}x" if e.ratio else "-",
            f"{e.interval[0]:.2f}-{e.interval[1]:.2f}" if e.interval else "-",
            e.verdict,
        ])
    return rows
