"""``aiotel report --html DIR``: the embedded store as a static site, in the manner of
``coverage html``: an index of the AI-generated functions, and a page per function whose
source is annotated line by line with what ran in production.

- It opens from ``file://`` with no network: no CDN, no fonts, charts as inline SVG. It
  reads without JavaScript; the one inline script sorts the index's columns.
- Everything that comes from the telemetry or the marker is HTML-escaped, and a
  Content-Security-Policy ``<meta>`` allows no script but that one (by its hash), as a
  second line of defence.
- It never overwrites what it did not write, and keeps the site private (``site_dir``).
- The numbers are ``rollup.summarize``'s, the text report's; the standard library
  renders them (no template engine: an agent's dependencies are every process's).
- One page per function, its versions side by side (a row each, charted together); the
  index has a row per (function, version) that links to that row.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import hashlib
import json
import os
import re
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..provenance.digest import sha256_hex
from ..store import rollup
from ..store.details import Detail, calls_over_time, durations_by_function
from .markup import Markup, esc
from .site_dir import MANIFEST, prepare, write_private
from .svg_charts import histogram_svg, over_time_svg, shares_svg, sparkline_svg
from .units import human_bytes_delta, human_seconds

SORT_SCRIPT = (
    "document.querySelectorAll('th[data-col]').forEach(function(th){th.addEventListener('click',function(){"
    "var t=th.closest('table'),b=t.tBodies[0],i=+th.dataset.col,up=th.dataset.up!=='1';th.dataset.up=up?'1':'0';"
    "Array.from(b.rows).sort(function(x,y){var a=x.cells[i].dataset.v,c=y.cells[i].dataset.v;"
    "var n=parseFloat(a)-parseFloat(c);if(isNaN(n)){n=a<c?-1:a>c?1:0;}return up?n:-n;})"
    ".forEach(function(r){b.appendChild(r);});});});"
)

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;background:#fff}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse}th,td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:right}
th{cursor:pointer;background:#f4f4f4}td.l,th.l{text-align:left}
tr.flag td{background:#fff0f0}.flag-note{color:#b00;font-weight:600}
.src{font:12px/1.5 ui-monospace,monospace;border-collapse:collapse;width:100%}
.src td{border:0;padding:0 .5em;text-align:left;white-space:pre;vertical-align:top}
.src td.n{color:#999;text-align:right;width:3em}.src tr.fb td{background:#fff4d6}
.src tr.none td{background:#e8f0ff}.src tr.raise td{background:#ffe4e4}
.src td.note{white-space:normal;color:#555;font-family:system-ui,sans-serif}
.warn{background:#fff4d6;padding:.5em 1em;border-left:4px solid #e0a000}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{color:#666}dd{margin:0}
svg text{font:10px sans-serif;fill:#555}
"""


def page_name(function: str) -> str:
    """A file name per function: readable, and unique by a digest."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", function)[:80]
    return f"f-{readable}-{sha256_hex(function.encode('utf-8', 'surrogateescape'))[:10]}.html"


def version_anchor(version: str) -> str:
    """The id of a version's row on its function's page (any text can be a version)."""
    return "v-" + sha256_hex(version.encode("utf-8", "surrogateescape"))[:8]


# --- source ---------------------------------------------------------------------------

def find_source(recorded: str, source_root: Optional[str]) -> Optional[str]:
    """The file at the recorded path, or, under ``source_root``, the longest tail of that
    path that exists there (a report run on another machine than the program)."""
    if source_root:
        parts = [p for p in recorded.replace("\\", "/").split("/") if p]
        for start in range(len(parts)):
            candidate = os.path.join(source_root, *parts[start:])
            if os.path.isfile(candidate):
                return candidate
        return None
    return recorded if os.path.isfile(recorded) else None


_parsed: Dict[str, Optional[Tuple[List[bytes], Dict[int, Tuple[int, int]]]]] = {}


def _functions_of(path: str) -> Optional[Tuple[List[bytes], Dict[int, Tuple[int, int]]]]:
    """The file's lines, and each function's (first line, last line) by its ``def`` line:
    parsed once per report, however many functions and versions it has."""
    if path not in _parsed:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            spans = {}
            for node in _definitions(ast.parse(data).body):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                spans[node.lineno] = (first, node.end_lineno or node.lineno)
            _parsed[path] = (data.splitlines(keepends=True), spans)
        except (OSError, SyntaxError, ValueError):
            _parsed[path] = None
    return _parsed[path]


_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def _definitions(statements: List[ast.stmt]) -> Iterable[ast.AST]:
    """Every function definition among ``statements`` and the statements they hold, at
    any depth: a ``def`` is a statement, so expressions are never walked into."""
    pending = list(statements)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
        for field in _BODIES:
            pending.extend(getattr(node, field, ()))


def function_lines(path: str, def_line: Optional[int]) -> Optional[Tuple[List[str], int, str]]:
    """The function defined at ``def_line`` of ``path``: its lines (first decorator to last
    line), the number of the first, and the SHA-256 the telemetry records for them."""
    parsed = _functions_of(path)
    if parsed is None or def_line not in parsed[1]:
        return None
    lines, spans = parsed
    first, last = spans[def_line]
    raw = lines[first - 1:last]
    return [line.decode("utf-8", "replace").rstrip("\r\n") for line in raw], first, sha256_hex(b"".join(raw))


# --- pages ----------------------------------------------------------------------------

def page(title: str, body: str, script: str = "") -> str:
    policy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    if script:
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
        policy += f"; script-src 'sha256-{digest}'"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>{body}"
            + (f"<script>{script}</script>" if script else "") + "</body></html>\n")


def _cell(text: object, value: object = None, left: bool = False) -> str:
    sort = text if value is None else value
    return f'<td{" class=l" if left else ""} data-v="{esc(sort)}">{text if isinstance(text, Markup) else esc(text)}</td>'


def index_page(stats: Sequence[rollup.FunctionStats], details: Dict[str, Detail], sparks: Dict[Tuple[str, str], str],
               flagged: Dict[Tuple[str, str], List[str]], store: str, notes: Sequence[str]) -> str:
    heads = ["function", "version", "tool", "date", "calls", "errors", "error %", "p50", "p95", "p99", "fallbacks",
             "None %", "RSS Δ mean", "calls over time"]
    rows = []
    for s in stats:
        key = (s.function, s.version)
        detail = details.get(s.function)
        date = detail.provenance.get("aiotel.provenance.date", "") if detail else ""
        link = Markup(f'<a href="{esc(page_name(s.function))}#{version_anchor(s.version)}">{esc(s.function)}</a>')
        flags = flagged.get(key)
        if flags:
            link = Markup(link + f' <span class="flag-note">{esc(", ".join(flags))}</span>')
        p50, p95, p99 = s.quantile(0.5), s.quantile(0.95), s.quantile(0.99)
        memory = s.memory.mean if s.memory else None
        cells = [
            _cell(link, s.function, left=True), _cell(s.version, left=True), _cell(s.tool, left=True),
            _cell(date, left=True), _cell(s.calls), _cell(s.errors), _cell(f"{100 * s.error_rate:.1f}", s.error_rate),
            _cell(human_seconds(p50), p50 or 0), _cell(human_seconds(p95), p95 or 0), _cell(human_seconds(p99), p99 or 0),
            _cell(sum(s.fallbacks.values())), _cell(f"{100 * s.empty_rate:.1f}", s.empty_rate),
            _cell(human_bytes_delta(memory), memory if memory is not None else ""),
            _cell(Markup(sparks.get(key, "")), s.calls),
        ]
        rows.append(f'<tr{" class=flag" if flags else ""}>{"".join(cells)}</tr>')
    head = "".join(f'<th data-col="{i}"{" class=l" if i < 4 else ""}>{esc(h)}</th>' for i, h in enumerate(heads))
    said = "".join(f'<p class="warn">{esc(n)}</p>' for n in notes)
    body = (f"<h1>AI-generated functions in production</h1><p>Store: {esc(os.path.abspath(store))}; written "
            f"{esc(time.strftime('%Y-%m-%d %H:%M:%S'))}. Click a column to sort.</p>{said}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return page("aiotel report", body, SORT_SCRIPT)


# The versions a page charts, oldest to newest, take these colours: the newest is blue.
COLOURS = ("#aaa", "#e0a000", "#36c")


@dataclasses.dataclass
class FunctionView:
    """What one function's page shows: its versions' numbers (the text report's, one
    ``FunctionStats`` each, in version order), the versions it charts (oldest to newest,
    at most ``len(COLOURS)``) with their calls over time on one axis, and the flags
    ``--compare`` raised against the newest charted one."""

    function: str
    versions: List[rollup.FunctionStats]
    charted: List[Tuple[rollup.FunctionStats, Tuple[List[int], List[int], int, int]]]
    flags: List[str] = dataclasses.field(default_factory=list)


def function_page(view: FunctionView, detail: Optional[Detail], source_root: Optional[str]) -> str:
    newest = view.charted[-1][0] if view.charted else view.versions[-1]
    parts = [f'<p><a href="index.html">all functions</a></p><h1>{esc(view.function)}</h1>']
    if view.flags and len(view.charted) > 1:
        parts.append(f'<p class="flag-note">{esc(newest.version)}: {esc(", ".join(view.flags))} than '
                     f'{esc(view.charted[0][0].version)}</p>')
    facts: List[Tuple[str, str]] = [("file", detail.path if detail and detail.path else newest.path)]
    if detail:
        for key in sorted(detail.provenance):
            facts.append((key[len("aiotel."):], detail.provenance[key]))
        if detail.source_sha256:
            facts.append(("source.sha256", f"{detail.source_sha256[:16]} (service.version {detail.version})"))
    if newest.commit:
        facts.append(("commit", f"{newest.commit[0]} ({newest.commit[1]})"))
    parts.append("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts) + "</dl>")
    parts.append("<h2>Calls</h2>" + versions_table(view))
    charted = [(s.version, COLOURS[len(COLOURS) - len(view.charted) + i], s, over)
               for i, (s, over) in enumerate(view.charted)]
    histograms = [(name, colour, s.buckets) for name, colour, s, _ in charted if s.bounds == newest.bounds]
    parts.append("<h2>Latency</h2>" + histogram_svg(histograms, newest.bounds))
    measured = [(name, colour, s.memory) for name, colour, s, _ in charted if s.memory and s.memory.calls]
    if measured:
        bounds = measured[-1][2].bounds
        rows = "".join(f"<tr><td class=l>{esc(name)}</td><td>{memory.calls}</td>"
                       f"<td>{esc(human_bytes_delta(memory.mean))}</td>"
                       f"<td>{esc(human_bytes_delta(memory.quantile(0.95)))}</td></tr>" for name, _, memory in measured)
        parts.append("<h2>Resident memory across a call</h2><p>The process's RSS at each recorded call's end less "
                     "its start: process-wide (other threads' allocations count), not an allocation profile.</p>"
                     "<table><tr><th class=l>service.version</th><th>recorded calls</th><th>mean</th><th>p95</th></tr>"
                     f"{rows}</table>" + histogram_svg([(name, colour, m.buckets) for name, colour, m in measured
                                                        if m.bounds == bounds], bounds, human_bytes_delta, "memory"))
    with_llm = [s for s in view.versions if s.llm]
    if with_llm:
        rows = "".join(
            f"<tr><td class=l>{esc(s.version)}</td><td class=l>{esc(model)}</td><td class=l>{esc(provider)}</td>"
            f"<td>{usage.calls}</td><td>{usage.errors}</td><td>{usage.input_tokens}</td><td>{usage.output_tokens}</td>"
            f"<td>{esc(human_seconds(usage.seconds))}</td></tr>"
            for s in with_llm for (model, provider), usage in sorted(s.llm.items(), key=lambda item: -item[1].calls))
        parts.append("<h2>LLM calls made inside it</h2><table><tr><th class=l>service.version</th><th class=l>model</th>"
                     "<th class=l>provider</th><th>calls</th><th>errors</th><th>input tokens</th>"
                     f"<th>output tokens</th><th>LLM time</th></tr>{rows}</table>")
    parts.append("<h2>Calls over time</h2>" + over_time_svg([(name, colour, over) for name, colour, _, over in charted]))
    shaped = [s for s in view.versions if s.inputs]
    if shaped:
        rows = "".join(
            f"<tr><td class=l>{esc(s.version)}</td><td class=l>{esc(parameter)}</td><td class=l>{esc(kind)}</td>"
            f"<td>{shape.calls}</td>"
            f"<td>{esc('-' if not shape.sized else f'{shape.total_length / shape.sized:.1f}')}</td></tr>"
            for s in shaped for (parameter, kind), shape in sorted(s.inputs.items()))
        by_parameter: Dict[str, List[Tuple[str, int]]] = {}
        for (parameter, kind), shape in sorted(shaped[-1].inputs.items()):
            by_parameter.setdefault(parameter, []).append((kind, shape.calls))
        charts = "".join(f"<p>{esc(parameter)} ({esc(shaped[-1].version)})</p>"
                         + shares_svg(sorted(kinds, key=lambda k: -k[1])) for parameter, kinds in by_parameter.items())
        parts.append("<h2>Input shapes</h2><table><tr><th class=l>version</th><th class=l>parameter</th>"
                     f"<th class=l>type</th><th>calls</th><th>mean length</th></tr>{rows}</table>{charts}")
        said = [(s.version, finding.sentence()) for s in shaped for finding in rollup.error_inputs(s)]
        if said:
            parts.append("<h2>Errors and their inputs</h2><ul>"
                         + "".join(f"<li>{esc(version)}: {esc(text)}</li>" for version, text in said) + "</ul>")
    parts.append("<h2>Source</h2>" + source_section(view, detail, source_root))
    if detail and detail.failures:
        items = "".join(
            f"<tr><td class=l>{esc(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(f.time / 1e9)))}</td>"
            f"<td class=l>{esc(f.version)}</td><td class=l>{esc(f.error_type)}</td><td class=l>{esc(f.message)}</td>"
            f"<td>{esc(f.line if f.line is not None else '-')}</td><td class=l>{esc(f.trace_id)}</td></tr>"
            for f in detail.failures)
        parts.append("<h2>Latest errors</h2><table><tr><th class=l>when</th><th class=l>version</th>"
                     "<th class=l>type</th><th class=l>message (redacted)</th><th>line</th><th class=l>trace id</th>"
                     f"</tr>{items}</table>")
    return page(view.function, "".join(parts))


def versions_table(view: FunctionView) -> str:
    """The text report's numbers, a row per service.version (the index links to each)."""
    flagged = view.charted[-1][0].version if view.flags and view.charted else None
    rows = []
    for s in view.versions:
        p50, p95, p99 = s.quantile(0.5), s.quantile(0.95), s.quantile(0.99)
        rows.append(
            f'<tr id="{version_anchor(s.version)}"{" class=flag" if s.version == flagged else ""}>'
            f"<td class=l>{esc(s.version)}</td><td>{s.calls}</td><td>{s.errors}</td><td>{100 * s.error_rate:.1f}</td>"
            f"<td>{esc(human_seconds(p50))}</td><td>{esc(human_seconds(p95))}</td><td>{esc(human_seconds(p99))}</td>"
            f"<td>{sum(s.fallbacks.values())}</td><td>{100 * s.empty_rate:.1f}</td></tr>")
    return ("<table><tr><th class=l>service.version</th><th>calls</th><th>failed</th><th>error %</th><th>p50</th>"
            f"<th>p95</th><th>p99</th><th>fallbacks</th><th>None %</th></tr>{''.join(rows)}</table>")


def source_section(view: FunctionView, detail: Optional[Detail], source_root: Optional[str]) -> str:
    recorded = detail.path if detail and detail.path else view.versions[-1].path
    path = find_source(recorded, source_root)
    if path is None:
        return f'<p class="warn">Source not found: {esc(recorded)} (--source-root maps recorded paths to a checkout).</p>'
    found = function_lines(path, detail.def_line if detail else None)
    if found is None:
        return f'<p class="warn">{esc(path)} has no function at the recorded line: the file changed since.</p>'
    lines, first, digest = found
    recorded_digest = detail.source_sha256 if detail else ""
    # The digest is the newest span's: only its version's counts are known to fit these lines.
    ran = next((s for s in view.versions if detail and s.version == detail.version), None)
    annotate = recorded_digest == digest and ran is not None
    if not recorded_digest:
        said = ('<p class="warn">This telemetry records no source digest (an older aiotel): the lines below '
                "may not be the code that ran, so they are not annotated.</p>")
    elif recorded_digest != digest:
        said = ('<p class="warn">The source changed since this data was recorded (its SHA-256 differs): '
                "shown as it is now, not annotated.</p>")
    elif ran is None:
        said = (f"<p>Not annotated: the lines match service.version {esc(detail.version if detail else '')}, "
                "which has no calls in this window.</p>")
    else:
        said = f"<p>Annotated with what service.version {esc(ran.version)} ran (its lines are these).</p>"
    fallbacks: Dict[int, List[str]] = {}
    raises: Dict[int, List[str]] = {}
    if annotate and ran is not None and detail is not None:
        for (line, kind), count in ran.fallbacks.items():
            if isinstance(line, int):
                fallbacks.setdefault(line, []).append(f"{kind} caught {count}×")
        for failure in detail.failures:
            if failure.line is not None and failure.version == ran.version:
                raises.setdefault(failure.line, []).append(failure.error_type)
    rows = []
    for offset, text in enumerate(lines):
        number = first + offset
        notes, css = [], ""
        if annotate and ran is not None:
            if number in fallbacks:
                css, notes = "fb", ["fallback: " + ", ".join(fallbacks[number])]
            if ran.empty_results.get(number):
                css, notes = "none", notes + [f"returned None {ran.empty_results[number]}×"]
            if number in raises:
                css = "raise"
                kinds = sorted(set(raises[number]))
                notes.append(f"exception left here: {', '.join(kinds)} (in {len(raises[number])} of the latest errors)")
        rows.append(f'<tr{f" class={css}" if css else ""}><td class=n>{number}</td><td>{esc(text)}</td>'
                    f'<td class=note>{esc("; ".join(notes)) if notes else ""}</td></tr>')
    return said + f'<p>{esc(path)}</p><table class="src">{"".join(rows)}</table>'


# --- the site ---------------------------------------------------------------------------

def views_of(stats: Sequence[rollup.FunctionStats], durations: Dict[Tuple[str, str], List[rollup.Point]],
             since: Optional[int], comparisons: Sequence[rollup.Comparison]) -> List[FunctionView]:
    """One view per function. It charts the two versions ``--compare`` set side by side,
    else the ones whose calls came last (at most ``len(COLOURS)``), on one time axis."""
    by_function: Dict[str, List[rollup.FunctionStats]] = {}
    for s in stats:
        by_function.setdefault(s.function, []).append(s)
    compared = {c.function: c for c in comparisons}
    views = []
    for function, versions in by_function.items():
        last_call = {s.version: max((p.time for p in durations.get((function, s.version), [])), default=0)
                     for s in versions}
        comparison = compared.get(function)
        if comparison is not None:
            charted, flags = [comparison.old, comparison.new], comparison.flags
        else:
            charted, flags = sorted(versions, key=lambda s: (last_call[s.version], s.version))[-len(COLOURS):], []
        times = [p.time for s in charted for p in durations.get((function, s.version), [])
                 if since is None or p.time > since]
        window = (min(times), max(times)) if times else None
        views.append(FunctionView(
            function, versions,
            [(s, calls_over_time(durations.get((function, s.version), []), since, window=window)) for s in charted],
            flags))
    return views


def write_site(directory: str, store: str, stats: Sequence[rollup.FunctionStats], details: Dict[str, Detail],
               points: Iterable[rollup.Point], since: Optional[int], source_root: Optional[str] = None,
               comparisons: Sequence[rollup.Comparison] = (), notes: Sequence[str] = ()) -> Tuple[str, int]:
    """Write the site: the path of its index, and how many function pages it has."""
    earlier = prepare(directory)
    durations = durations_by_function(points)
    views = views_of(stats, durations, since, comparisons)
    flagged = {(view.function, view.charted[-1][0].version): view.flags for view in views if view.flags}
    sparks, files = {}, []
    for s in stats:
        over = calls_over_time(durations.get((s.function, s.version), []), since)
        sparks[(s.function, s.version)] = sparkline_svg(over[0], over[1])
    for view in views:
        name = page_name(view.function)
        write_private(directory, name, function_page(view, details.get(view.function), source_root))
        files.append(name)
    write_private(directory, "index.html", index_page(stats, details, sparks, flagged, store, notes))
    files.append("index.html")
    for stale in set(earlier) - set(files) - {MANIFEST}:
        try:
            os.unlink(os.path.join(directory, stale))
        except OSError:
            pass
    write_private(directory, MANIFEST, json.dumps({"written_by": "aiotel report --html", "files": files}, indent=1))
    return os.path.join(os.path.abspath(directory), "index.html"), len(views)
