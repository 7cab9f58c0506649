"""Numbers per AI-generated function, from the embedded store. Pure: files in, records out.

The store holds cumulative points of aiotel's metrics (duration, fallbacks, empty
results, input shapes), one file per process.
For each process and series the last point is the total; totals are summed over
processes. ``since`` subtracts, per series, the last point at or before that time.
Quantiles are interpolated inside histogram buckets the way Prometheus'
``histogram_quantile`` does, so the report and a dashboard agree.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import mmap
import os
import re
from collections import Counter
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from .. import semconv
from ..length_buckets import length_bucket

DURATION = semconv.FUNCTION_DURATION
FALLBACKS = semconv.FUNCTION_FALLBACKS
EMPTY_RESULTS = semconv.FUNCTION_EMPTY_RESULTS
INPUT_TYPES = semconv.FUNCTION_INPUT_TYPES
INPUT_SIZE = semconv.FUNCTION_INPUT_SIZE
INPUT_ERRORS = semconv.FUNCTION_INPUT_ERRORS
MEMORY = semconv.FUNCTION_MEMORY_RSS_DELTA
LLM_DURATION = semconv.FUNCTION_GEN_AI_OPERATION_DURATION
LLM_TOKENS = semconv.FUNCTION_GEN_AI_TOKEN_USAGE
UNKNOWN_VERSION = "unknown"
LAYOUT = 2  # the newest store layout this reader knows (see store.writer.file_name)

# The attributes that tell one series of a metric from another, besides the function.
_LABELS = {
    DURATION: (semconv.ERROR_TYPE,),
    FALLBACKS: (semconv.CODE_LINE_NUMBER, semconv.EXCEPTION_TYPE),
    EMPTY_RESULTS: (semconv.CODE_LINE_NUMBER,),
    INPUT_TYPES: (semconv.INPUT_PARAMETER, semconv.INPUT_TYPE),
    INPUT_SIZE: (semconv.INPUT_PARAMETER, semconv.INPUT_TYPE),
    INPUT_ERRORS: (semconv.ERROR_TYPE, semconv.INPUT_PARAMETER, semconv.INPUT_TYPE, semconv.INPUT_LENGTH),
    semconv.FUNCTION_SPANS_OVER_BUDGET: (),
    MEMORY: (),
    LLM_DURATION: (semconv.GEN_AI_REQUEST_MODEL, semconv.GEN_AI_PROVIDER_NAME, semconv.ERROR_TYPE),
    LLM_TOKENS: (semconv.GEN_AI_REQUEST_MODEL, semconv.GEN_AI_PROVIDER_NAME, semconv.GEN_AI_TOKEN_TYPE),
    semconv.SPANS_DROPPED: (semconv.SPANS_DROPPED_REASON,),
    semconv.METRIC_EXPORTS_FAILED: (),
    # an experiment's series are filed under its candidate (store.experiments reads them)
    semconv.EXPERIMENT_CALLS: (semconv.EXPERIMENT_CONTROL, semconv.EXPERIMENT_COMPARATOR, semconv.EXPERIMENT_LIVE),
    semconv.EXPERIMENT_MISMATCHES: (semconv.EXPERIMENT_CONTROL, semconv.EXPERIMENT_COMPARATOR, semconv.EXPERIMENT_LIVE,
                                    semconv.MISMATCH_KIND),
    semconv.EXPERIMENT_ARM_DURATION: (semconv.EXPERIMENT_CONTROL, semconv.EXPERIMENT_COMPARATOR, semconv.EXPERIMENT_ARM,
                                      semconv.EXPERIMENT_ROLE),
    semconv.EXPERIMENT_SHADOW_ERRORS: (semconv.EXPERIMENT_CONTROL, semconv.EXPERIMENT_COMPARATOR,
                                       semconv.EXPERIMENT_ARM, semconv.ERROR_TYPE),
}
EXPERIMENT_METRICS = (semconv.EXPERIMENT_CALLS, semconv.EXPERIMENT_MISMATCHES, semconv.EXPERIMENT_ARM_DURATION,
                      semconv.EXPERIMENT_SHADOW_ERRORS)


@dataclasses.dataclass
class Point:
    """One cumulative point as read from the store: a histogram, or a counter (its value
    in ``count``, no buckets)."""

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
    metric: str = DURATION
    labels: Tuple[object, ...] = ()

    def __post_init__(self) -> None:
        if self.metric == DURATION and not self.labels:
            self.labels = (self.error_type,)


@dataclasses.dataclass
class InputShape:
    """One parameter's arguments of one type: how often, and their lengths when sized."""

    calls: int = 0
    sized: int = 0
    total_length: float = 0.0
    buckets: List[int] = dataclasses.field(default_factory=list)
    bounds: List[float] = dataclasses.field(default_factory=list)

    def to_json(self, parameter: str, kind: str) -> dict:
        return {
            "parameter": parameter,
            "type": kind,
            "calls": self.calls,
            "mean_length": self.total_length / self.sized if self.sized else None,
            "p95_length": histogram_quantile(0.95, self.bounds, self.buckets) if self.sized else None,
        }


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
    fallbacks: Counter = dataclasses.field(default_factory=Counter)  # (handler line, exception.type)
    empty_results: Counter = dataclasses.field(default_factory=Counter)  # return line
    inputs: Dict[Tuple[str, str], InputShape] = dataclasses.field(default_factory=dict)  # (parameter, type)
    commit: Optional[Tuple[str, str]] = None  # (sha, time) from the newest span that names one
    spans_over_budget: int = 0  # calls a trace's span budget left without a span
    memory: Optional["MemoryDelta"] = None  # recorded calls' change of resident memory
    # failed calls by (error.type, parameter, type, length bucket), with shapes captured
    failed_inputs: Counter = dataclasses.field(default_factory=Counter)
    llm: Dict[Tuple[str, str], "LLMUsage"] = dataclasses.field(default_factory=dict)  # (model, provider)

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def fallback_rate(self) -> float:
        """Fallbacks per call (a call may fall back more than once)."""
        return sum(self.fallbacks.values()) / self.calls if self.calls else 0.0

    @property
    def empty_rate(self) -> float:
        return sum(self.empty_results.values()) / self.calls if self.calls else 0.0

    @property
    def mean(self) -> Optional[float]:
        return self.total_seconds / self.calls if self.calls else None

    def quantile(self, q: float) -> Optional[float]:
        return histogram_quantile(q, self.bounds, self.buckets)

    def to_json(self) -> dict:
        return {
            "function": self.function,
            semconv.SERVICE_VERSION: self.version,
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
            "fallbacks": [{"line": line, "exception.type": kind, "count": count}
                          for (line, kind), count in self.fallbacks.most_common()],
            "fallback_rate": self.fallback_rate,
            "empty_results": [{"line": line, "count": count} for line, count in self.empty_results.most_common()],
            "empty_rate": self.empty_rate,
            "inputs": [shape.to_json(parameter, kind) for (parameter, kind), shape in sorted(self.inputs.items())],
            "commit": {"sha": self.commit[0], "time": self.commit[1]} if self.commit else None,
            "spans_over_budget": self.spans_over_budget,
            "memory": self.memory.to_json() if self.memory else None,
            "errors_by_input": [finding.to_json() for finding in error_inputs(self)],
            "llm_calls": [usage.to_json(model, provider) for (model, provider), usage
                          in sorted(self.llm.items(), key=lambda item: (-item[1].calls, item[0]))],
        }


@dataclasses.dataclass
class LLMUsage:
    """The LLM calls a function made with one model of one provider (aiotel.function.gen_ai.*)."""

    calls: int = 0
    errors: int = 0
    seconds: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    def to_json(self, model: str, provider: str) -> dict:
        return {"model": model, "provider": provider, "calls": self.calls, "errors": self.errors,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "llm_seconds": self.seconds}


@dataclasses.dataclass
class MemoryDelta:
    """Recorded calls' change of the process's resident memory (bytes; process-wide, see
    the telemetry docs): how many calls, their net sum, the histogram (both ways)."""

    calls: int = 0
    total_bytes: float = 0.0
    buckets: List[int] = dataclasses.field(default_factory=list)
    bounds: List[float] = dataclasses.field(default_factory=list)

    @property
    def mean(self) -> Optional[float]:
        return self.total_bytes / self.calls if self.calls else None

    def quantile(self, q: float) -> Optional[float]:
        return histogram_quantile(q, self.bounds, self.buckets)

    def to_json(self) -> dict:
        return {"recorded_calls": self.calls, "mean_rss_delta_bytes": self.mean,
                "p95_rss_delta_bytes": self.quantile(0.95)}


class ErrorInput(NamedTuple):
    """Where one exception type of a function concentrates: the argument shape (parameter,
    type, length bucket) that most of its failures had, against the share of all calls
    that had it (from the input metrics)."""

    error_type: str
    parameter: str
    type: str
    length: str  # "" for an argument without a length
    failures: int  # failed calls with that error type and this shape
    of_failures: int  # failed calls with that error type
    calls: Optional[int]  # all calls with this shape, where the input metrics tell it

    def sentence(self) -> str:
        """ "ValueError: 40 of 40 failures had `payload` a list of length 101..1000 (40 calls had it)"."""
        what = f"a {self.type}" + (f" of length {self.length}" if self.length else "")
        share = f" ({self.calls} calls had it)" if self.calls is not None else ""
        return f"{self.error_type}: {self.failures} of {self.of_failures} failures had `{self.parameter}` {what}{share}"

    def to_json(self) -> dict:
        return {"error_type": self.error_type, "parameter": self.parameter, "type": self.type,
                "length": self.length or None, "failures": self.failures, "of_failures": self.of_failures,
                "calls_with_this_shape": self.calls, "text": self.sentence()}


def decade_counts(shape: "InputShape") -> Optional[Dict[str, int]]:
    """The sized calls of one parameter and type by power-of-ten length bucket, merged from
    its size histogram; None when a histogram bucket straddles two (other bounds)."""
    counts: Dict[str, int] = {}
    for index, count in enumerate(shape.buckets):
        upper = shape.bounds[index] if index < len(shape.bounds) else float("inf")
        lower = shape.bounds[index - 1] if index > 0 else -1.0
        label = length_bucket(upper)
        if label != length_bucket(int(lower) + 1):
            if count:
                return None
            continue
        counts[label] = counts.get(label, 0) + count
    return counts


def _calls_in_length_bucket(shape: "InputShape", length: str) -> Optional[int]:
    """Calls whose argument's length fell in ``length`` ("" : all calls of this type)."""
    if not length:
        return shape.calls
    counts = decade_counts(shape) if shape.buckets and shape.bounds else None
    return None if counts is None else counts.get(length, 0)


def error_inputs(stats: "FunctionStats") -> List[ErrorInput]:
    """Per exception type, the argument shape that tells its failures apart: among the
    shapes at least half of them had, the one most over-represented against all calls
    (its share of the failures over its share of the calls: a parameter every call has
    the same shape of says nothing); with none that common, the most common. Shapes are
    captured opt-in; unknown ones (see probes.shapes) count in the failures, never named."""
    by_error: Dict[str, Counter] = {}
    for (kind, parameter, name, length), count in stats.failed_inputs.items():
        if name != semconv.UNKNOWN_INPUT_TYPE:
            by_error.setdefault(kind, Counter())[(parameter, name, length)] += count
    found = []
    for kind, shapes in sorted(by_error.items()):
        failures = max(stats.error_types.get(kind, 0), max(shapes.values()))
        ranked = []
        for (parameter, name, length), count in shapes.items():
            shape = stats.inputs.get((parameter, name))
            calls = _calls_in_length_bucket(shape, length) if shape is not None else None
            lift = (count / failures) / (calls / stats.calls) if calls and stats.calls else 0.0
            ranked.append((2 * count >= failures, lift, count, parameter, name, length, calls))
        _, _, count, parameter, name, length, calls = max(ranked, key=lambda r: (r[0], r[1] if r[0] else 0, *r[2:6]))
        found.append(ErrorInput(kind, parameter, name, length, count, failures, calls))
    return found


DRIFT_THRESHOLD = 0.2  # the distance from which two versions' inputs are said to differ


class InputDrift(NamedTuple):
    """How one parameter's inputs differ between two versions: the total variation
    distance between their shares of calls by type and power-of-ten length (0: the same
    mix, 1: nothing in common), and the shape whose share moved most."""

    parameter: str
    distance: float
    shape: str  # "list of length 101..1000", or a type alone
    old_share: float
    new_share: float

    def sentence(self) -> str:
        return (f"`{self.parameter}`: {self.shape} {100 * self.old_share:.0f}% -> {100 * self.new_share:.0f}% of calls "
                f"(distance {self.distance:.2f})")

    def to_json(self) -> dict:
        return {"parameter": self.parameter, "distance": self.distance, "shape": self.shape,
                "old_share": self.old_share, "new_share": self.new_share, "text": self.sentence()}


def input_mix(stats: "FunctionStats", parameter: str) -> Dict[str, int]:
    """One parameter's calls by type and, for sized types, power-of-ten length."""
    mix: Dict[str, int] = {}
    for (name, kind), shape in stats.inputs.items():
        if name != parameter:
            continue
        decades = decade_counts(shape) if shape.sized and shape.buckets and shape.bounds else None
        if decades is None:
            mix[kind] = mix.get(kind, 0) + shape.calls
            continue
        for length, count in decades.items():
            if count:
                mix[f"{kind} of length {length}"] = count
        if shape.calls > shape.sized:  # calls whose len() could not be taken
            mix[kind] = mix.get(kind, 0) + shape.calls - shape.sized
    return mix


def input_drift(old: "FunctionStats", new: "FunctionStats", threshold: float = DRIFT_THRESHOLD) -> List[InputDrift]:
    """The parameters whose input mix differs between the two versions by at least
    ``threshold``, the most changed first (input shapes are captured opt-in)."""
    found = []
    for parameter in sorted({p for p, _ in old.inputs} & {p for p, _ in new.inputs}):
        before, after = input_mix(old, parameter), input_mix(new, parameter)
        total_before, total_after = sum(before.values()), sum(after.values())
        if not total_before or not total_after:
            continue
        moves = {shape: after.get(shape, 0) / total_after - before.get(shape, 0) / total_before
                 for shape in set(before) | set(after)}
        distance = sum(abs(move) for move in moves.values()) / 2
        if distance >= threshold:
            shape = max(sorted(moves), key=lambda k: (abs(moves[k]), moves[k]))  # a tie: the shape that grew
            found.append(InputDrift(parameter, distance, shape, before.get(shape, 0) / total_before,
                                    after.get(shape, 0) / total_after))
    return sorted(found, key=lambda d: -d.distance)


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
            # below the first bound: from 0, or (bounds below 0: a change) nothing below it is known
            lower = bounds[index - 1] if index > 0 else min(0.0, bounds[0])
            upper = bounds[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


def _attributes(items: Iterable[dict]) -> Dict[str, object]:
    found: Dict[str, object] = {}
    for item in items:
        value = item.get("value", {})
        kind, raw = next(iter(value.items()), (None, None))
        found[item.get("key", "")] = int(raw) if kind == "intValue" and raw is not None else raw  # int64 is a JSON string
    return found


# what reading a JSON value of another shape than OTLP's raises
_WRONG_SHAPE = (AttributeError, TypeError, ValueError, KeyError, IndexError, StopIteration, OverflowError, RecursionError)
_FILE = re.compile(r"^(?P<signal>[a-z]+)-(?:v(?P<layout>\d+)-)?.*\.jsonl(?:\.\d+)?$")


@dataclasses.dataclass
class Skipped:
    """What the reader could not use, per file and reason; the rest is still read."""

    by_file: Dict[str, Counter] = dataclasses.field(default_factory=dict)

    def add(self, path: str, reason: str, lines: int = 1) -> None:
        self.by_file.setdefault(path, Counter())[reason] += lines

    def __bool__(self) -> bool:
        return bool(self.by_file)

    def lines(self) -> List[str]:
        """One sentence per file."""
        said = []
        for path, reasons in sorted(self.by_file.items()):
            parts = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
            said.append(f"skipped in {path}: {parts}")
        return said


def layout_of(path: str) -> int:
    """The store layout a file's name says it was written in (1: names without ``v<N>``)."""
    match = _FILE.match(os.path.basename(path))
    return int(match.group("layout") or 1) if match else 1


def newer_layout(path: str) -> str:
    """Why a file of a layout newer than ``LAYOUT`` is skipped."""
    return f"file of store layout v{layout_of(path)} (written by a newer aiotel: upgrade to read it)"


def store_files(store: str, signal: str = "metrics") -> List[str]:
    """The files of ``signal`` in ``store``, current and rotated, in time order per layout."""
    found = glob.glob(os.path.join(store, f"{signal}-*.jsonl")) + glob.glob(os.path.join(store, f"{signal}-*.jsonl.*"))
    return sorted(path for path in found if _FILE.match(os.path.basename(path)))


def read_points(files: Sequence[str], skipped: Optional[Skipped] = None,
                group_by: str = semconv.SERVICE_VERSION) -> Iterator[Point]:
    """Every point of aiotel's metrics in ``files``. A line that is not an OTLP/JSON
    metrics request, and a file of a layout this version does not know, is skipped and
    counted in ``skipped``. ``group_by``: the resource attribute whose value is each
    point's ``version`` (what a report and a comparison set side by side; a canary's
    ``deployment.environment.name``, say)."""
    for path, process, request in _requests(files, skipped):
        try:
            points = list(_points_of(request, process, group_by))
        except _WRONG_SHAPE:
            if skipped is not None:
                skipped.add(path, "lines of the wrong shape")
            continue
        yield from points


Needles = Union[str, Tuple[str, ...]]


def _requests(files: Sequence[str], skipped: Optional[Skipped], containing: Union[Needles, Callable[[], Needles]] = "",
              newest_first: bool = False, decode: Callable[[str], Any] = json.loads) -> Iterator[Tuple[str, str, dict]]:
    """(file, process, export request) for each JSON object line of ``files`` that holds
    ``containing`` (a text or several, any of which will do, or what gives them now); the
    process is the file's name without rotation suffix (layout 2 names are unique per
    process; ``_points_of`` prefers ``service.instance.id``). A file that does not hold it
    is not split into lines at all (a search of its bytes: the commit pass over a store
    without commits). ``newest_first``: the files and their lines in reverse, found by
    searching the mapped file for the texts, so lines without them are never copied or
    decoded. ``decode``: what parses a line (it may read only part of it)."""
    def needles() -> Tuple[bytes, ...]:
        wanted = containing() if callable(containing) else containing
        return tuple(text.encode() for text in ((wanted,) if isinstance(wanted, str) else wanted))

    tally = skipped if skipped is not None else Skipped()
    for path in (reversed(list(files)) if newest_first else files):
        if layout_of(path) > LAYOUT:
            tally.add(path, newer_layout(path))
            continue
        process = os.path.basename(path).split(".jsonl")[0]
        try:
            lines = _lines_newest_first(path, needles) if newest_first else _lines(path, needles())
        except OSError as exc:
            tally.add(path, f"unreadable file ({exc.strerror or exc})")
            continue
        for last, raw in lines:
            if not raw or raw.isspace() or not any(needle in raw for needle in needles()):
                continue
            try:
                request = decode(raw.decode("utf-8"))
            except RecursionError:
                tally.add(path, "lines of the wrong shape")
                continue
            except ValueError:  # includes UnicodeDecodeError
                # a last line without its newline was cut short (a process killed mid-write)
                tally.add(path, "truncated last line" if last else "lines that are not JSON")
                continue
            if not isinstance(request, dict):
                tally.add(path, "lines of the wrong shape")
                continue
            yield path, process, request


def _lines(path: str, needles: Tuple[bytes, ...]) -> List[Tuple[bool, bytes]]:
    """(is the file's last line, line) for each line of a file that holds one of ``needles``."""
    data = _read_if_holding(path, needles[0] if len(needles) == 1 else b"")
    if data is None:
        return []
    lines = data.split(b"\n")
    return [(index == len(lines) - 1, raw) for index, raw in enumerate(lines)]


def _lines_newest_first(path: str, needles: Callable[[], Tuple[bytes, ...]]) -> Iterator[Tuple[bool, bytes]]:
    """The lines of the file that hold one of ``needles()``, last first, taken from the
    mapped file one at a time: a reader that stops early reads no more, and a line without
    them is skipped by the search, never copied."""
    with open(path, "rb") as fh:  # an unreadable file raises here, at the call
        try:
            mapped: Optional[mmap.mmap] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # an empty file, or one that cannot be mapped: read it
            mapped = None
    if mapped is None:
        return reversed(_lines(path, needles()))
    return _matching_lines_newest_first(mapped, needles)


def _matching_lines_newest_first(mapped: mmap.mmap, needles: Callable[[], Tuple[bytes, ...]]
                                 ) -> Iterator[Tuple[bool, bytes]]:
    with mapped:
        size = len(mapped)
        whole = mapped[size - 1:size] == b"\n"  # the last line ended: it was not cut short
        end = size  # the lines still to look at end before this
        last_seen: Dict[bytes, int] = {}  # each needle's last position before ``end`` (-1: none)
        while end >= 0:
            found = -1
            for needle in needles():
                at = last_seen.get(needle)
                if at is None or at >= end:  # not searched yet, or in a line already given
                    at = last_seen[needle] = mapped.rfind(needle, 0, end)
                found = max(found, at)
            if found < 0:
                return
            start = mapped.rfind(b"\n", 0, found) + 1
            stop = mapped.find(b"\n", found)
            stop = size if stop < 0 else stop
            yield stop == size and not whole, mapped[start:stop]
            end = start - 1  # before the newline that ends the line before


def _read_if_holding(path: str, needle: bytes) -> Optional[bytes]:
    """The file's bytes, or None when it does not hold ``needle``: searched in place
    (mapped, not copied: a 20 MB span file without a commit costs a few ms, not a read)."""
    with open(path, "rb") as fh:
        if needle:
            try:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                    if mapped.find(needle) < 0:
                        return None
            except (ValueError, OSError):  # an empty file, or one that cannot be mapped: read it
                pass
        return fh.read()


def _points_of(request: dict, process: str, group_by: str = semconv.SERVICE_VERSION,
               counts_only: bool = False) -> Iterator[Point]:
    """The points of an export request. ``counts_only``: without their buckets (a chart of
    calls over time draws counts: the buckets' conversion was most of a point's cost)."""
    keep_buckets = not counts_only
    for rm in request.get("resourceMetrics", []) or []:
        resource = _attributes(rm.get("resource", {}).get("attributes", []))
        service = str(resource.get(semconv.SERVICE_NAME) or "unknown_service")
        version = str(resource.get(group_by) or UNKNOWN_VERSION)
        # Each process's cumulative series are its own, even when two processes once
        # shared a file (layout 1 names could collide: pid 1 in two containers).
        instance = resource.get(semconv.SERVICE_INSTANCE_ID)
        owner = f"{process}/{instance}" if instance else process
        for sm in rm.get("scopeMetrics", []) or []:
            for metric in sm.get("metrics", []) or []:
                name = metric.get("name")
                if name not in _LABELS:
                    continue
                histogram = "histogram" in metric
                for dp in (metric.get("histogram") or metric.get("sum") or {}).get("dataPoints", []) or []:
                    attrs = _attributes(dp.get("attributes", []))
                    if histogram:
                        count, total = int(dp.get("count", 0)), float(dp.get("sum", 0.0))
                    else:
                        count, total = int(float(dp.get("asInt", dp.get("asDouble", 0)))), 0.0
                    yield Point(
                        process=owner,
                        service=service,
                        version=version,
                        function=str(attrs.get(semconv.CODE_FUNCTION_NAME) or attrs.get(semconv.EXPERIMENT_CANDIDATE)
                                     or "?"),
                        tool=str(attrs.get(semconv.PROVENANCE_TOOL, "")),
                        path=str(attrs.get(semconv.CODE_FILE_PATH, "")),
                        error_type=_text(attrs.get(semconv.ERROR_TYPE)) if name == DURATION else None,
                        time=int(dp.get("timeUnixNano", 0)),
                        count=count,
                        total=total,
                        buckets=[int(b) for b in dp.get("bucketCounts", [])] if histogram and keep_buckets else [],
                        bounds=[float(b) for b in dp.get("explicitBounds", [])] if histogram and keep_buckets else [],
                        metric=name,
                        labels=tuple(_hashable(attrs.get(label)) for label in _LABELS[name]),
                    )


def _text(value: object) -> Optional[str]:
    return None if value is None else str(value)


def _hashable(value: object) -> object:
    """An attribute as a series label: arrays (JSON lists or dicts) as their text."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value, sort_keys=True)


def read_commits(files: Sequence[str], skipped: Optional[Skipped] = None,
                 functions: Optional[Iterable[str]] = None) -> Dict[str, Tuple[str, str]]:
    """Per function, the commit named by its newest span that names one (commit
    attribution), the files and their lines read newest first. With ``functions``,
    reading stops once each of them has its commit: in a store whose spans name commits,
    the newest lines are enough, not every span of the store."""
    newest: Dict[str, Tuple[int, str, str]] = {}
    missing = set(functions) if functions is not None else None
    for path, _, request in _requests(files, skipped, containing=semconv.PROVENANCE_COMMIT, newest_first=True):
        try:
            for rs in request.get("resourceSpans", []) or []:
                for ss in rs.get("scopeSpans", []) or []:
                    for span in ss.get("spans", []) or []:
                        take_commit(newest, span, _attributes(span.get("attributes", [])))
        except _WRONG_SHAPE:
            if skipped is not None:
                skipped.add(path, "lines of the wrong shape")
        if missing is not None:
            missing.difference_update(newest)
            if not missing:
                break
    return commits_of(newest)


def take_commit(newest: Dict[str, Tuple[int, str, str]], span: dict, attrs: Dict[str, object]) -> None:
    """Keep the span's commit in ``newest`` (function -> (end, sha, time)) if it is the newest seen."""
    sha, function = attrs.get(semconv.PROVENANCE_COMMIT), attrs.get(semconv.CODE_FUNCTION_NAME)
    end = int(span.get("endTimeUnixNano", 0))
    if sha and function and end >= newest.get(str(function), (-1, "", ""))[0]:
        newest[str(function)] = (end, str(sha), str(attrs.get(semconv.PROVENANCE_COMMIT_TIME, "")))


def commits_of(newest: Dict[str, Tuple[int, str, str]]) -> Dict[str, Tuple[str, str]]:
    return {function: (sha, when) for function, (_, sha, when) in newest.items()}


SeriesKey = Tuple[str, str, str, str, str, Tuple[object, ...]]


def series_totals(points: Iterable[Point], since: Optional[int]) -> List[Point]:
    """What each series added in the window (its last point, less its last before ``since``)."""
    return _series_totals(points, since)


def _series_totals(points: Iterable[Point], since: Optional[int]) -> List[Point]:
    """The amount of each series (process, service, version, function, error type) in the window."""
    last: Dict[SeriesKey, Point] = {}
    baseline: Dict[SeriesKey, Point] = {}
    for p in points:
        key = (p.process, p.service, p.version, p.function, p.metric, p.labels)
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


def summarize(
    points: Iterable[Point], since: Optional[int] = None, commits: Optional[Dict[str, Tuple[str, str]]] = None
) -> List[FunctionStats]:
    """Per (function, service.version): calls, errors, latency histogram, error types,
    fallbacks, empty results, input shapes and (from ``commits``) the function's commit."""
    stats: Dict[Tuple[str, str], FunctionStats] = {}
    for p in _series_totals(points, since):
        if p.metric in (semconv.SPANS_DROPPED, semconv.METRIC_EXPORTS_FAILED) or p.metric in EXPERIMENT_METRICS:
            continue  # the pipeline's (see spans_dropped()) or an experiment's (store.experiments)
        entry = stats.get((p.function, p.version))
        if entry is None:
            entry = stats[(p.function, p.version)] = FunctionStats(p.function, p.version, p.tool, p.path)
        if p.metric == DURATION:
            if not entry.bounds:
                entry.bounds = list(p.bounds)
            if p.bounds != entry.bounds:
                continue  # another aiotel version's buckets: not mergeable
            entry.calls += p.count
            entry.total_seconds += p.total
            entry.buckets = _summed(entry.buckets, p.buckets)
            if p.error_type:
                entry.errors += p.count
                entry.error_types[p.error_type] += p.count
        elif p.metric == FALLBACKS:
            entry.fallbacks[p.labels] += p.count
        elif p.metric == EMPTY_RESULTS:
            entry.empty_results[p.labels[0]] += p.count
        elif p.metric == semconv.FUNCTION_SPANS_OVER_BUDGET:
            entry.spans_over_budget += p.count
        elif p.metric == INPUT_ERRORS:
            entry.failed_inputs[tuple(str(label) for label in p.labels)] += p.count
        elif p.metric in (LLM_DURATION, LLM_TOKENS):
            usage = entry.llm.setdefault((str(p.labels[0]), str(p.labels[1])), LLMUsage())
            if p.metric == LLM_DURATION:
                usage.calls += p.count
                usage.seconds += p.total
                usage.errors += p.count if p.labels[2] else 0
            elif p.labels[2] == "input":
                usage.input_tokens += int(p.total)
            elif p.labels[2] == "output":
                usage.output_tokens += int(p.total)
        elif p.metric == MEMORY:
            memory = entry.memory = entry.memory or MemoryDelta(bounds=list(p.bounds))
            if memory.bounds == p.bounds:
                memory.calls += p.count
                memory.total_bytes += p.total
                memory.buckets = _summed(memory.buckets, p.buckets)
        else:
            shape = entry.inputs.setdefault((str(p.labels[0]), str(p.labels[1])), InputShape())
            if p.metric == INPUT_TYPES:
                shape.calls += p.count
            elif not shape.bounds or shape.bounds == p.bounds:
                shape.bounds = list(p.bounds)
                shape.sized += p.count
                shape.total_length += p.total
                shape.buckets = _summed(shape.buckets, p.buckets)
    found = sorted((s for s in stats.values() if s.calls), key=lambda s: (s.function, s.version))
    return attach_commits(found, commits or {})


def _summed(buckets: List[int], more: List[int]) -> List[int]:
    """Two histograms' bucket counts added (the first empty: the second's)."""
    return [a + b for a, b in zip(buckets, more)] if buckets else list(more)


def attach_commits(stats: List[FunctionStats], commits: Dict[str, Tuple[str, str]]) -> List[FunctionStats]:
    """Each function's commit (``read_commits``) on its stats."""
    for entry in stats:
        entry.commit = commits.get(entry.function)
    return stats


def spans_dropped(points: Iterable[Point], since: Optional[int] = None) -> Dict[str, int]:
    """Finished spans that never reached their destination in the window, by reason
    (``queue_full`` for points written before reasons were recorded)."""
    found: Counter = Counter()
    for p in _series_totals(points, since):
        if p.metric == semconv.SPANS_DROPPED and p.count:
            found[str(p.labels[0] or "queue_full")] += p.count
    return dict(found)


def metric_exports_failed(points: Iterable[Point], since: Optional[int] = None) -> int:
    """Metric exports that failed in the window (their totals arrived with a later one)."""
    return sum(p.count for p in _series_totals(points, since) if p.metric == semconv.METRIC_EXPORTS_FAILED)


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
    def more_fallbacks(self) -> bool:
        """Silent fallbacks per call at least doubled (or appeared where there were none)."""
        return self.new.fallback_rate > 0 and self.new.fallback_rate >= 2 * self.old.fallback_rate

    @property
    def flags(self) -> List[str]:
        """What got worse, in words: the text report's FLAG column, the HTML report's notes."""
        return [name for name, on in (("slower", self.slower), ("more errors", self.more_errors),
                                      ("more fallbacks", self.more_fallbacks)) if on]

    @property
    def flagged(self) -> bool:
        return self.slower or self.more_errors or self.more_fallbacks

    @property
    def input_drift(self) -> List[InputDrift]:
        """Parameters whose inputs differ between the versions (told, not flagged: new
        inputs are news, not a regression)."""
        return input_drift(self.old, self.new)

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
            "old_fallback_rate": self.old.fallback_rate,
            "new_fallback_rate": self.new.fallback_rate,
            "slower": self.slower,
            "more_errors": self.more_errors,
            "more_fallbacks": self.more_fallbacks,
            "input_drift": [drift.to_json() for drift in self.input_drift],
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
