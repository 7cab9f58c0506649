"""``aiotel report``: per-function numbers from the embedded store, and version comparisons."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from .. import config
from ..store import rollup as report
from ..store.since import parse_since
from .units import human_seconds



def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="per-function calls, errors and latency from the embedded store",
        description=(
            "Per AI-generated function and service.version: calls, error rate, p50/p95/p99 "
            "latency (from the histogram buckets), silent fallbacks, None results, the commit "
            "that last changed it, the top exception types and, when captured, input shapes; "
            "read from the store that aiotel-run writes when no collector is configured."
        ),
    )
    parser.add_argument("--store", metavar="DIR", help="the store to read (default: $AIOTEL_STORE or ./.aiotel)")
    parser.add_argument("--since", metavar="WHEN", help="only what happened since: a duration (30m, 2h, 7d) or an ISO time")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"),
                        help="per-function regressions between two service.version values; exit 1 if any is flagged")
    parser.add_argument("--by", metavar="ATTRIBUTE", default="service.version",
                        help="the resource attribute whose values the report and --compare set side by side "
                             "(default: service.version; a canary: deployment.environment.name, k8s.deployment.name)")
    parser.add_argument("--threshold", type=float, default=1.5, metavar="RATIO",
                        help="flag functions at least RATIO times slower (mean latency) in NEW (default: 1.5)")
    parser.add_argument("--min-delta", type=float, default=0.0001, metavar="SECONDS",
                        help="and at least SECONDS slower on average (default: 0.0001; micro-second functions jitter)")
    parser.add_argument("--prometheus", metavar="URL",
                        help="read a fleet's metrics from Prometheus' HTTP API instead of the store (the last 7 days, "
                             "or --since; versions from the service_version label)")
    parser.add_argument("--html", metavar="DIR",
                        help="write a static site to DIR: an index, and a page per function with its source annotated")
    parser.add_argument("--source-root", metavar="DIR",
                        help="with --html: find the recorded source files under DIR (a checkout elsewhere)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 3 instead of reporting when the store holds lines that cannot be read")
    parser.set_defaults(run=run, subparser=parser)


def _ratio(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _table(rows: Sequence[Sequence[str]], out: Any) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) if i < len(row) - 1 else cell
                            for i, cell in enumerate(row)).rstrip() + "\n")


def _print_stats(stats: List[report.FunctionStats], out: Any) -> None:
    rows = [["FUNCTION", "VERSION", "CALLS", "ERRORS", "ERROR %", "P50", "P95", "P99", "FALLBACKS", "NONE %",
             "COMMIT", "TOP ERRORS / FALLBACKS"]]
    for s in stats:
        top = [f"{name} ({count})" for name, count in s.error_types.most_common(2)]
        top += [f"{kind}@{line} ({count})" for (line, kind), count in s.fallbacks.most_common(2)]
        rows.append([
            s.function, s.version, str(s.calls), str(s.errors), f"{100 * s.error_rate:.1f}",
            human_seconds(s.quantile(0.5)), human_seconds(s.quantile(0.95)), human_seconds(s.quantile(0.99)),
            str(sum(s.fallbacks.values())), f"{100 * s.empty_rate:.1f}", s.commit[0][:10] if s.commit else "-",
            ", ".join(top),
        ])
    _table(rows, out)
    shapes = [["FUNCTION", "PARAMETER", "TYPE", "CALLS", "MEAN LEN", "P95 LEN"]]
    for s in stats:
        for (parameter, kind), shape in sorted(s.inputs.items(), key=lambda item: (item[0][0], -item[1].calls)):
            data = shape.to_json(parameter, kind)
            mean, p95 = data["mean_length"], data["p95_length"]
            shapes.append([s.function, parameter, kind, str(shape.calls),
                           "-" if mean is None else f"{mean:.1f}", "-" if p95 is None else f"{p95:.0f}"])
    if len(shapes) > 1:
        out.write("\ninput shapes (AIOTEL_CAPTURE_ARGS=shape)\n")
        _table(shapes, out)
    llm = [["FUNCTION", "MODEL", "PROVIDER", "CALLS", "ERRORS", "INPUT TOKENS", "OUTPUT TOKENS", "LLM TIME"]]
    for s in stats:
        for (model, provider), usage in sorted(s.llm.items(), key=lambda item: (-item[1].calls, item[0])):
            llm.append([s.function, model, provider, str(usage.calls), str(usage.errors), str(usage.input_tokens),
                        str(usage.output_tokens), human_seconds(usage.seconds)])
    if len(llm) > 1:
        out.write("\nLLM calls made inside each function (aiotel.function.gen_ai.*)\n")
        _table(llm, out)
    found = [(s, finding) for s in stats for finding in report.error_inputs(s)]
    if found:
        out.write("\nerrors and their inputs (AIOTEL_CAPTURE_ARGS=shape)\n")
        for s, finding in found:
            out.write(f"  {s.function} ({s.version}): {finding.sentence()}\n")


def _print_comparison(comparisons: List[report.Comparison], old: str, new: str, out: Any) -> None:
    rows = [["FUNCTION", "CALLS OLD/NEW", "LATENCY", "P95", "ERROR % OLD -> NEW", "FLAG"]]
    for c in comparisons:
        rows.append([
            c.function, f"{c.old.calls}/{c.new.calls}", _ratio(c.latency_ratio), _ratio(c.p95_ratio),
            f"{100 * c.old.error_rate:.1f} -> {100 * c.new.error_rate:.1f}", ", ".join(c.flags),
        ])
    out.write(f"{old} -> {new}\n")
    _table(rows, out)
    drifted = [(c.function, drift) for c in comparisons for drift in c.input_drift]
    if drifted:
        out.write(f"\ninputs that changed from {old} to {new} (AIOTEL_CAPTURE_ARGS=shape)\n")
        for function, drift in drifted:
            out.write(f"  {function}: {drift.sentence()}\n")


_LOSSES = {
    "queue_full": "the export queue was full (raise OTEL_BSP_MAX_QUEUE_SIZE, or lower the span limits)",
    "export_failed": "their export failed (collector unreachable, or the store could not be written)",
    "store_rotated": "the store rotated out the oldest file that held them (raise AIOTEL_STORE_MAX_BYTES)",
    "exit_deadline": "their process exited before they were exported (raise AIOTEL_SHUTDOWN_TIMEOUT)",
}


def loss_sentences(dropped: Dict[str, int], failed_metric_exports: int) -> List[str]:
    """What the recorded processes said they lost, one sentence per cause."""
    said = [f"{count} finished spans were lost because {_LOSSES.get(reason, reason)}; their traces are incomplete"
            for reason, count in sorted(dropped.items())]
    if failed_metric_exports:
        said.append(f"{failed_metric_exports} metric exports failed; totals are complete when a later export succeeded")
    return said


def _compared(args: argparse.Namespace, stats: List[report.FunctionStats]) -> Optional[List[report.Comparison]]:
    """``--compare OLD NEW`` over ``stats``, or None after saying which version has no data."""
    old, new = args.compare
    versions = {s.version for s in stats}
    missing = [v for v in (old, new) if v not in versions]
    if missing:
        print(f"aiotel report: no data for {args.by} {', '.join(map(repr, missing))}; "
              f"known: {', '.join(sorted(versions)) or 'none'}", file=sys.stderr)
        return None
    return report.compare(stats, old, new, args.threshold, args.min_delta)


def _write_comparison(args: argparse.Namespace, comparisons: List[report.Comparison], out: Any) -> int:
    """The comparison as a table or JSON; exit status 1 when something is flagged."""
    old, new = args.compare
    if args.json:
        json.dump({"by": args.by, "old": old, "new": new, "threshold": args.threshold, "min_delta": args.min_delta,
                   "functions": [c.to_json() for c in comparisons]}, out, indent=2)
        out.write("\n")
    else:
        _print_comparison(comparisons, old, new, out)
    return 1 if any(c.flagged for c in comparisons) else 0


def _from_prometheus(args: argparse.Namespace, parser: argparse.ArgumentParser, since: Optional[int]) -> int:
    """The same tables and JSON from Prometheus (``answers.prometheus_source``): the
    numbers only, spans are not there."""
    if args.html or args.store or args.by != "service.version":
        parser.error("--prometheus reads the numbers of the text report: not with --html, --store or --by")
    from ..answers import SourceCannotAnswer
    from ..answers.prometheus_source import PrometheusSource

    try:
        stats = PrometheusSource(args.prometheus).stats(since)
    except SourceCannotAnswer as exc:
        print(f"aiotel report: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    if args.compare:
        comparisons = _compared(args, stats)
        return 2 if comparisons is None else _write_comparison(args, comparisons, out)
    if args.json:
        json.dump({"prometheus": args.prometheus, "functions": [s.to_json() for s in stats]}, out, indent=2)
        out.write("\n")
    elif stats:
        _print_stats(stats, out)
    else:
        print("no calls of AI-generated functions in Prometheus in this window", file=sys.stderr)
    return 0


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    store = args.store or config.store_dir(os.environ)
    since = None
    if args.since:
        try:
            since = parse_since(args.since)
        except ValueError:
            parser.error(f"--since {args.since!r}: expected a duration such as 30m, 2h, 7d, or an ISO time")
    if args.prometheus:
        return _from_prometheus(args, parser, since)
    files = report.store_files(store)
    if not files:
        print(f"aiotel report: no metrics in {store!r} yet; run a program under aiotel-run first", file=sys.stderr)
        return 1
    from ..store.window import read_window

    skipped = report.Skipped()
    # the window's totals, for every rendering: a few lines of each process's files (see
    # store.window); the pages also chart each function over time, from a line per slot
    samples = 0
    if args.html:
        from ..store.details import TIME_SLOTS as samples
    points, timeline = read_window(files, since, skipped, args.by, samples)
    # before the spans are read: which functions failed decides how far back they are read
    stats = report.summarize(points, since)
    details: Dict[str, Any] = {}
    if args.html:  # the spans are read once, for the commits and what the pages show of each function
        from ..store.details import read_spans

        wanted: Dict[str, int] = {}  # failures to show: the window's, of every version
        for s in stats:
            wanted[s.function] = wanted.get(s.function, 0) + s.errors
        commits, details = read_spans(report.store_files(store, "traces"), wanted, skipped)
    else:
        commits = report.read_commits(report.store_files(store, "traces"), skipped, {s.function for s in stats})
    report.attach_commits(stats, commits)
    for line in skipped.lines():
        print(f"aiotel report: {line}", file=sys.stderr)
    if skipped and args.strict:
        print("aiotel report: --strict: not reporting from a store with lines it cannot read", file=sys.stderr)
        return 3
    dropped = report.spans_dropped(points, since)
    failed_exports = report.metric_exports_failed(points, since)
    for line in loss_sentences(dropped, failed_exports):  # said on every report: this window is not whole
        print(f"aiotel report: {line}", file=sys.stderr)
    out = sys.stdout
    comparisons: List[report.Comparison] = []
    if args.compare:
        found = _compared(args, stats)
        if found is None:
            return 2
        comparisons = found
    if args.html:
        from .html_report import write_site
        from .site_dir import ReportError

        try:
            index, pages = write_site(args.html, store, stats, details, timeline, since, args.source_root, comparisons,
                                      loss_sentences(dropped, failed_exports))
        except (ReportError, OSError) as exc:
            print(f"aiotel report: --html {args.html}: {exc}", file=sys.stderr)
            return 2
        print(f"aiotel report: {pages} function page(s) and an index written: file://{index}")
        return 1 if any(c.flagged for c in comparisons) else 0
    if args.compare:
        return _write_comparison(args, comparisons, out)
    from ..store import experiments as trials

    verdicts = trials.summarize(points, since)
    if args.json:
        json.dump({"store": os.path.abspath(store), "spans_dropped": sum(dropped.values()),
                   "spans_dropped_by_reason": dropped, "metric_exports_failed": failed_exports,
                   "lines_skipped": {path: dict(reasons) for path, reasons in skipped.by_file.items()},
                   "functions": [s.to_json() for s in stats],
                   "experiments": [e.to_json() for e in verdicts]}, out, indent=2)
        out.write("\n")
        return 0
    if stats:
        _print_stats(stats, out)
    else:
        print("no calls of AI-generated functions in this window", file=sys.stderr)
    if verdicts:
        out.write("\nEXPERIMENTS (AIOTEL_SHADOW): candidate against the control it replaces; RATIO = candidate's "
                  "mean time / control's\n")
        _table(trials.table_rows(verdicts), out)
        for e in verdicts:
            out.write(f"  {e.candidate}: {e.verdict}: {e.reason}\n")
    return 0
