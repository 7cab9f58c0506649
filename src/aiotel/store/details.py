"""What the HTML report shows beside the numbers of ``rollup``: each function's provenance,
commit and latest errors, read from the store's spans in one pass, and its calls over
time, read from the metric points. The numbers themselves are ``rollup.summarize``'s:
the text and the HTML report are two renderings of one computation."""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import json
import re
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from .. import semconv
from .rollup import (DURATION, UNKNOWN_VERSION, Point, Skipped, _WRONG_SHAPE, _attributes, _requests, commits_of,
                     take_commit)

LATEST_ERRORS = 10
TIME_SLOTS = 30  # a chart over time has this many slots; the store is read at as many times
# A failed span's status, as OTLP/JSON spells it (the enum as a number, or by name). In
# the raw text these can only be JSON syntax: a quote inside a string is escaped.
_ERROR_STATUSES = ('"code":2}', '"code":"STATUS_CODE_ERROR"}')
_SPAN_START = '{"traceId":'
_RESOURCE_KEY = '"resource":'  # only a key can be spelt so: a quote inside a string is escaped
_decoder = json.JSONDecoder()


def failed_spans(text: str) -> List[dict]:
    """The failed spans of one export request's JSON, each decoded alone: a failed span's
    status is found in the text, and the span is the nearest object before it that starts
    with ``{"traceId":`` and holds it (spans are written with their fields in protobuf
    order; their links also start so, and end before the status)."""
    return [span for _, span in _failed_spans_at(text)]


def failed_request(text: str) -> dict:
    """One export request's JSON as a request with only its failed spans, each under the
    resource it was exported with (the ``"resource":`` key nearest before it)."""
    resources: List[Tuple[int, dict]] = []
    position = text.find(_RESOURCE_KEY)
    while position >= 0:
        resource, end = _decoder.raw_decode(text, position + len(_RESOURCE_KEY))
        resources.append((position, resource))
        position = text.find(_RESOURCE_KEY, end)
    starts = [start for start, _ in resources]
    grouped: Dict[int, List[dict]] = {}
    for start, span in _failed_spans_at(text):
        grouped.setdefault(bisect.bisect(starts, start) - 1, []).append(span)
    return {"resourceSpans": [{"resource": resources[index][1] if index >= 0 else {}, "scopeSpans": [{"spans": spans}]}
                              for index, spans in grouped.items()]}


def _failed_spans_at(text: str) -> List[Tuple[int, dict]]:
    found: List[Tuple[int, dict]] = []
    for marker in _ERROR_STATUSES:
        position = 0
        while True:
            hit = text.find(marker, position)
            if hit < 0:
                break
            start, end = hit, hit
            while end <= hit:  # an object that ends before the status is a link of the span: further back
                start = text.rfind(_SPAN_START, 0, start)
                if start < 0:
                    raise ValueError("a status outside any span")
                span, end = _decoder.raw_decode(text, start)
            if not isinstance(span, dict):
                raise ValueError("not a span")
            found.append((start, span))
            position = max(end, hit + len(marker))
    return found


_FRAME = re.compile(r'^  File "(?P<file>.+)", line (?P<line>\d+), in ', re.M)


@dataclasses.dataclass
class Failure:
    time: int  # the span's end, ns since the epoch
    error_type: str
    message: str  # as exported: redacted
    line: Optional[int]  # the line of the function where the exception left it
    trace_id: str
    version: str = UNKNOWN_VERSION  # the service.version of the process that failed
    # its input shapes when captured: "<parameter>.type" / "<parameter>.length" -> value
    inputs: Dict[str, object] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Detail:
    """One function as its newest span describes it, and its latest failures."""

    function: str
    seen: int = -1  # end time of the span the provenance was read from
    version: str = UNKNOWN_VERSION  # that span's service.version: the one its source digest is of
    provenance: Dict[str, str] = dataclasses.field(default_factory=dict)  # aiotel.provenance.* attributes
    path: str = ""
    def_line: Optional[int] = None
    source_sha256: str = ""
    failures: List[Failure] = dataclasses.field(default_factory=list)


def read_spans(files: Sequence[str], wanted: Dict[str, int], skipped: Optional[Skipped] = None,
               latest: int = LATEST_ERRORS) -> Tuple[Dict[str, Tuple[str, str]], Dict[str, Detail]]:
    """One pass over the aiotel spans in the store's trace ``files``, newest first: each
    function's commit, as ``rollup.read_commits`` finds it, and its ``Detail``. Lines are
    read until every function of ``wanted`` has its commit (where one is named), its
    provenance and its latest failures: as many as ``wanted`` says it had (the window's
    errors, from the metrics), at most ``latest``. So a function that failed
    twice stops the reading at its second failure, not at the end of the store."""
    newest: Dict[str, Tuple[int, str, str]] = {}
    details: Dict[str, Detail] = {}
    if not wanted:
        return {}, details
    missing = set(wanted)
    uncommitted = set(wanted)  # no commit found yet: lines naming one are still read
    undescribed = True  # some function still lacks its provenance: whole lines are decoded

    def decode(text: str) -> dict:
        if undescribed or (uncommitted and semconv.PROVENANCE_COMMIT in text):
            return json.loads(text)
        if missing:  # only failures are still wanted: just the failed spans are decoded
            return failed_request(text)
        return {}

    def containing() -> Tuple[str, ...]:
        """The lines still worth reading: any aiotel span's while a function is undescribed;
        then only those with a failed span or a commit, as still wanted (the others are
        skipped by the search, never decoded)."""
        if undescribed:
            return (semconv.CODE_FUNCTION_NAME,)
        return (_ERROR_STATUSES if missing else ()) + ((semconv.PROVENANCE_COMMIT,) if uncommitted else ())

    for path, _, request in _requests(files, skipped, containing=containing, newest_first=True, decode=decode):
        try:
            for version, span, attrs in spans_of(request):
                take_commit(newest, span, attrs)
                if missing:
                    _take(details, span, attrs, version)
        except _WRONG_SHAPE:
            if skipped is not None:
                skipped.add(path, "lines of the wrong shape")
        if missing:
            missing = {f for f in missing
                       if f not in details or len(details[f].failures) < min(wanted[f], latest)}
            undescribed = any(f not in details for f in wanted)
        uncommitted.difference_update(newest)
        if not missing and not uncommitted:
            break
    for detail in details.values():
        detail.failures.sort(key=lambda f: f.time, reverse=True)
        del detail.failures[latest:]
    return commits_of(newest), details


def spans_of(request: dict) -> Iterator[Tuple[str, dict, Dict[str, object]]]:
    """(service.version, span, its attributes) of each span of an export request."""
    for rs in request.get("resourceSpans", []) or []:
        resource = _attributes((rs.get("resource") or {}).get("attributes", []) or [])
        version = str(resource.get(semconv.SERVICE_VERSION) or UNKNOWN_VERSION)
        for ss in rs.get("scopeSpans", []) or []:
            for span in ss.get("spans", []) or []:
                yield version, span, _attributes(span.get("attributes", []))


def _take(details: Dict[str, Detail], span: dict, attrs: Dict[str, object], version: str) -> None:
    function = attrs.get(semconv.CODE_FUNCTION_NAME)
    if not isinstance(function, str) or semconv.SPAN_REASON not in attrs or attrs.get(semconv.SHADOW):
        return  # not an aiotel span, or a shadow arm's: no call the program made
    detail = details.setdefault(function, Detail(function))
    end = int(span.get("endTimeUnixNano", 0))
    if end >= detail.seen:
        detail.seen = end
        detail.version = version
        detail.provenance = {k: str(v) for k, v in attrs.items() if k.startswith(semconv.PROVENANCE_PREFIX)}
        detail.path = str(attrs.get(semconv.CODE_FILE_PATH, ""))
        line = attrs.get(semconv.CODE_LINE_NUMBER)
        detail.def_line = int(line) if isinstance(line, (int, str)) and str(line).isdigit() else None
        detail.source_sha256 = str(attrs.get(semconv.SOURCE_SHA256, ""))
    kind = attrs.get(semconv.ERROR_TYPE)
    if not kind:
        return
    message, trace = "", ""
    for event in span.get("events", []) or []:
        if event.get("name") == "exception":
            event_attrs = _attributes(event.get("attributes", []))
            message = str(event_attrs.get(semconv.EXCEPTION_MESSAGE, ""))
            trace = str(event_attrs.get(semconv.EXCEPTION_STACKTRACE, ""))
    inputs = {k[len(semconv.INPUT_PREFIX):]: v for k, v in attrs.items() if k.startswith(semconv.INPUT_PREFIX)}
    detail.failures.append(Failure(end, str(kind), message, _line_in(trace, str(attrs.get(semconv.CODE_FILE_PATH, ""))),
                                   str(span.get("traceId", "")), version, inputs))


def _line_in(stacktrace: str, path: str) -> Optional[int]:
    """The last line of ``path`` in a formatted traceback: where the exception left the
    function (or the deepest call of it that the traceback shows)."""
    found = None
    for match in _FRAME.finditer(stacktrace):
        if match.group("file") == path:
            found = int(match.group("line"))
    return found


def durations_by_function(points: Iterable[Point]) -> Dict[Tuple[str, str], List[Point]]:
    """The duration points of each (function, version), in time order."""
    grouped: Dict[Tuple[str, str], List[Point]] = {}
    for p in points:
        if p.metric == DURATION:
            grouped.setdefault((p.function, p.version), []).append(p)
    for series in grouped.values():
        series.sort(key=lambda p: p.time)
    return grouped


def calls_over_time(points: Sequence[Point], since: Optional[int], slots: int = TIME_SLOTS,
                    window: Optional[Tuple[int, int]] = None) -> Tuple[List[int], List[int], int, int]:
    """Calls and failed calls per time slot, from one function's duration points in time
    order (``durations_by_function``): (calls, errors, first ns, last ns). Each series is
    cumulative per process: its increments between exports fall in the slot of the later.
    ``window``: (first, last) ns to lay the slots over, to draw two versions on one axis."""
    steps: List[Tuple[int, int, bool]] = []  # (time, calls added, failed)
    last: Dict[Tuple[str, Tuple[object, ...]], int] = {}
    for p in points:
        key = (p.process, p.labels)
        added = p.count - last.get(key, 0)
        last[key] = p.count
        if added > 0 and (since is None or p.time > since):
            steps.append((p.time, added, bool(p.error_type)))
    calls, errors = [0] * slots, [0] * slots
    if not steps:
        return calls, errors, 0, 0
    first, end = window if window is not None else (steps[0][0], steps[-1][0])
    width = max(end - first, 1)
    for time, added, failed in steps:
        slot = min(int((time - first) * slots / width), slots - 1)
        calls[slot] += added
        if failed:
            errors[slot] += added
    return calls, errors, first, end


class SlowCall(NamedTuple):
    """One recorded call of a marked function, by its span."""

    seconds: float
    function: str
    version: str
    end: int  # ns since the epoch
    trace_id: str
    span_id: str
    error_type: str  # "" when it returned


def slowest_calls(files: Sequence[str], function: Optional[str] = None, limit: int = 10,
                  since: Optional[int] = None, skipped: Optional[Skipped] = None) -> List[SlowCall]:
    """The ``limit`` longest recorded calls (of ``function``, or of any marked function)
    that ended after ``since``. Every span line of the window is read: the slowest call
    may be anywhere in it."""
    found: List[SlowCall] = []
    for path, _, request in _requests(files, skipped, containing=function or semconv.CODE_FUNCTION_NAME):
        try:
            for version, span, attrs in spans_of(request):
                name = attrs.get(semconv.CODE_FUNCTION_NAME)
                if (not isinstance(name, str) or semconv.SPAN_REASON not in attrs or attrs.get(semconv.SHADOW)
                        or (function is not None and name != function)):
                    continue
                end = int(span.get("endTimeUnixNano", 0))
                if since is not None and end <= since:
                    continue
                call = SlowCall((end - int(span.get("startTimeUnixNano", end))) / 1e9, name, version, end,
                                str(span.get("traceId", "")), str(span.get("spanId", "")),
                                str(attrs.get(semconv.ERROR_TYPE, "") or ""))
                if len(found) < limit:
                    heapq.heappush(found, call)
                elif limit:
                    heapq.heappushpop(found, call)
        except (_WRONG_SHAPE, ValueError):
            if skipped is not None:
                skipped.add(path, "lines of the wrong shape")
    return sorted(found, reverse=True)
