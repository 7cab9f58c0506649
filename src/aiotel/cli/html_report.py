"""``aiotel report --html DIR``: the embedded store as a static site, in the manner of
``coverage html``: an index of the AI-generated functions, and a page per function whose
source is annotated line by line with what ran in production.

- It opens from ``file://`` with no network: no CDN, no fonts, charts as inline SVG. It
  reads without JavaScript; the one inline script sorts the index's columns.
- Everything that comes from the telemetry or the marker is HTML-escaped, and a
  Content-Security-Policy ``<meta>`` allows no script but that one (by its hash), as a
  second line of defence.
- It never overwrites what it did not write: a directory that is not empty and has no
  ``aiotel-report.json`` (the site's manifest) is refused. The site is created ``0700``
  and its files ``0600``, as the store is: the pages hold error messages.
- The numbers are ``rollup.summarize``'s, the text report's; the standard library
  renders them (no template engine: an agent's dependencies are every process's).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import html
import json
import os
import re
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..provenance.digest import sha256_hex
from ..store import rollup
from ..store.details import Detail, calls_over_time, durations_by_function
from .units import human_seconds

MANIFEST = "aiotel-report.json"

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


class ReportError(Exception):
    """The site cannot be written where asked (said as one line, exit 2)."""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page_name(function: str, version: str) -> str:
    """A file name per (function, version): readable, and unique by a digest."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", function)[:80]
    key = (function + "\0" + version).encode("utf-8", "surrogateescape")
    return f"f-{readable}-{sha256_hex(key)[:10]}.html"


# --- the directory ------------------------------------------------------------------

def prepare(directory: str) -> List[str]:
    """Create ``directory`` (0700), or check that it is this report's; the files an earlier
    report wrote there (to be replaced)."""
    if not os.path.exists(directory):
        os.makedirs(directory, mode=0o700)
        return []
    if os.path.islink(directory) or not os.path.isdir(directory):
        raise ReportError(f"{directory} is not a directory")
    entries = os.listdir(directory)
    if not entries:
        return []
    manifest = os.path.join(directory, MANIFEST)
    try:
        with open(manifest, encoding="utf-8") as fh:
            earlier = json.load(fh)
        if earlier.get("written_by") != "aiotel report --html":
            raise ValueError("not aiotel's")
        return [str(name) for name in earlier.get("files", []) if "/" not in str(name)]
    except (OSError, ValueError, AttributeError):
        raise ReportError(f"{directory} is not empty and holds no {MANIFEST} of an earlier report: "
                          "not overwriting files aiotel did not write (give an empty or new directory)") from None


def write_private(directory: str, name: str, text: str) -> None:
    """``name`` in ``directory``, mode 0600, replaced whole (a temporary file, then a rename)."""
    final = os.path.join(directory, name)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(temporary, final)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


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
            for node in ast.walk(ast.parse(data)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                    spans[node.lineno] = (first, node.end_lineno or node.lineno)
            _parsed[path] = (data.splitlines(keepends=True), spans)
        except (OSError, SyntaxError, ValueError):
            _parsed[path] = None
    return _parsed[path]


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


# --- charts ---------------------------------------------------------------------------

def histogram_svg(series: Sequence[Tuple[str, str, Sequence[int]]], bounds: Sequence[float]) -> str:
    """Bars per latency bucket, one colour per series (name, colour, counts)."""
    series = [s for s in series if s[2] and sum(s[2])]
    if not series or not bounds:
        return "<p>no latency data</p>"
    shares = [[c / max(sum(counts), 1) for c in counts] for _, _, counts in series]
    used = [i for i in range(len(series[0][2])) if any(s[i] for s in shares)]
    low, high = max(min(used) - 1, 0), min(max(used) + 2, len(series[0][2]))
    columns = list(range(low, high))
    width, height, left = max(48 * len(columns), 240), 150, 34
    bar = (width / len(columns)) / (len(series) + 0.5)
    top = max(max(s[i] for i in columns) for s in shares) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left}" height="{height + 40}" role="img" '
             f'aria-label="latency histogram">']
    for k, (name, colour, counts) in enumerate(series):
        for j, i in enumerate(columns):
            h = shares[k][i] / top * height
            x = left + j * (width / len(columns)) + k * bar
            parts.append(f'<rect x="{x:.1f}" y="{height - h + 5:.1f}" width="{bar * 0.9:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{esc(name)}: {counts[i]} calls</title></rect>')
    for j, i in enumerate(columns):
        label = "≤" + human_seconds(bounds[i]) if i < len(bounds) else ">" + human_seconds(bounds[-1])
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


def over_time_svg(calls: Sequence[int], errors: Sequence[int], first: int, last: int,
                  older: Optional[Tuple[str, Sequence[int]]] = None) -> str:
    """Calls and failed calls over time; ``older``: (version, calls) of the version it is
    compared with, on the same axis, in grey."""
    if not any(calls):
        return "<p>no calls in this window</p>"
    when = lambda ns: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))  # noqa: E731
    if first == last:
        return (f"<p>All {sum(calls)} calls arrived in one export, at {esc(when(first))} (a short run, or one "
                "export interval): no curve to draw.</p>")
    chart = sparkline_svg(calls, errors, width=600, height=90)
    legend = "calls (blue), failed calls (red)"
    if older is not None and any(older[1]):
        top = max(max(calls), max(older[1]), 1)
        step = 600 / max(len(calls) - 1, 1)
        line = " ".join(f"{i * step:.1f},{90 - v / top * 88 - 1:.1f}" for i, v in enumerate(older[1]))
        chart = chart.replace("</svg>", f'<polyline fill="none" stroke="#aaa" stroke-width="1.5" points="{line}"/></svg>')
        legend += f", {esc(older[0])} calls (grey)"
    return chart + f"<p>{esc(when(first))} to {esc(when(last))}: {legend}</p>"


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


class Markup(str):
    """HTML built here from escaped parts."""


def index_page(stats: Sequence[rollup.FunctionStats], details: Dict[str, Detail], sparks: Dict[Tuple[str, str], str],
               flagged: Dict[Tuple[str, str], List[str]], store: str, notes: Sequence[str]) -> str:
    heads = ["function", "version", "tool", "date", "calls", "errors", "error %", "p50", "p95", "p99", "fallbacks",
             "None %", "calls over time"]
    rows = []
    for s in stats:
        key = (s.function, s.version)
        detail = details.get(s.function)
        date = detail.provenance.get("aiotel.provenance.date", "") if detail else ""
        link = Markup(f'<a href="{esc(page_name(s.function, s.version))}">{esc(s.function)}</a>')
        flags = flagged.get(key)
        if flags:
            link = Markup(link + f' <span class="flag-note">{esc(", ".join(flags))}</span>')
        p50, p95, p99 = s.quantile(0.5), s.quantile(0.95), s.quantile(0.99)
        cells = [
            _cell(link, s.function, left=True), _cell(s.version, left=True), _cell(s.tool, left=True),
            _cell(date, left=True), _cell(s.calls), _cell(s.errors), _cell(f"{100 * s.error_rate:.1f}", s.error_rate),
            _cell(human_seconds(p50), p50 or 0), _cell(human_seconds(p95), p95 or 0), _cell(human_seconds(p99), p99 or 0),
            _cell(sum(s.fallbacks.values())), _cell(f"{100 * s.empty_rate:.1f}", s.empty_rate),
            _cell(Markup(sparks.get(key, "")), s.calls),
        ]
        rows.append(f'<tr{" class=flag" if flags else ""}>{"".join(cells)}</tr>')
    head = "".join(f'<th data-col="{i}"{" class=l" if i < 4 else ""}>{esc(h)}</th>' for i, h in enumerate(heads))
    said = "".join(f'<p class="warn">{esc(n)}</p>' for n in notes)
    body = (f"<h1>AI-generated functions in production</h1><p>Store: {esc(os.path.abspath(store))}; written "
            f"{esc(time.strftime('%Y-%m-%d %H:%M:%S'))}. Click a column to sort.</p>{said}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return page("aiotel report", body, SORT_SCRIPT)


def function_page(s: rollup.FunctionStats, detail: Optional[Detail], over_time: Tuple[List[int], List[int], int, int],
                  source_root: Optional[str], other: Optional[rollup.FunctionStats], flags: List[str],
                  other_over_time: Optional[Sequence[int]] = None) -> str:
    title = f"{s.function} ({s.version})"
    parts = [f'<p><a href="index.html">all functions</a></p><h1>{esc(s.function)}</h1>']
    if flags:
        parts.append(f'<p class="flag-note">{esc(", ".join(flags))} than {esc(other.version if other else "")}</p>')
    facts: List[Tuple[str, str]] = [("service.version", s.version), ("file", detail.path if detail and detail.path else s.path)]
    if detail:
        for key in sorted(detail.provenance):
            facts.append((key[len("aiotel."):], detail.provenance[key]))
        if detail.source_sha256:
            facts.append(("source.sha256", detail.source_sha256[:16]))
    if s.commit:
        facts.append(("commit", f"{s.commit[0]} ({s.commit[1]})"))
    parts.append("<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts) + "</dl>")
    p50, p95, p99 = s.quantile(0.5), s.quantile(0.95), s.quantile(0.99)
    parts.append(
        f"<h2>Calls</h2><p>{s.calls} calls, {s.errors} failed ({100 * s.error_rate:.1f} %); p50 "
        f"{esc(human_seconds(p50))}, p95 {esc(human_seconds(p95))}, p99 {esc(human_seconds(p99))}; "
        f"{sum(s.fallbacks.values())} fallbacks; {100 * s.empty_rate:.1f} % returned None.</p>")
    series = [(s.version, "#36c", s.buckets)]
    if other is not None and other.bounds == s.bounds:
        series.insert(0, (other.version, "#aaa", other.buckets))
    parts.append("<h2>Latency</h2>" + histogram_svg(series, s.bounds))
    older = (other.version, other_over_time) if other is not None and other_over_time is not None else None
    parts.append("<h2>Calls over time</h2>" + over_time_svg(*over_time, older=older))
    if s.inputs:
        rows = "".join(
            f"<tr><td class=l>{esc(parameter)}</td><td class=l>{esc(kind)}</td><td>{shape.calls}</td>"
            f"<td>{esc('-' if not shape.sized else f'{shape.total_length / shape.sized:.1f}')}</td></tr>"
            for (parameter, kind), shape in sorted(s.inputs.items()))
        by_parameter: Dict[str, List[Tuple[str, int]]] = {}
        for (parameter, kind), shape in sorted(s.inputs.items()):
            by_parameter.setdefault(parameter, []).append((kind, shape.calls))
        charts = "".join(f"<p>{esc(parameter)}</p>" + shares_svg(sorted(kinds, key=lambda k: -k[1]))
                         for parameter, kinds in by_parameter.items())
        parts.append("<h2>Input shapes</h2><table><tr><th class=l>parameter</th><th class=l>type</th><th>calls</th>"
                     f"<th>mean length</th></tr>{rows}</table>{charts}")
    parts.append("<h2>Source</h2>" + source_section(s, detail, source_root))
    if detail and detail.failures:
        items = "".join(
            f"<tr><td class=l>{esc(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(f.time / 1e9)))}</td>"
            f"<td class=l>{esc(f.error_type)}</td><td class=l>{esc(f.message)}</td>"
            f"<td>{esc(f.line if f.line is not None else '-')}</td><td class=l>{esc(f.trace_id)}</td></tr>"
            for f in detail.failures)
        parts.append("<h2>Latest errors</h2><table><tr><th class=l>when</th><th class=l>type</th>"
                     f"<th class=l>message (redacted)</th><th>line</th><th class=l>trace id</th></tr>{items}</table>")
    return page(title, "".join(parts))


def source_section(s: rollup.FunctionStats, detail: Optional[Detail], source_root: Optional[str]) -> str:
    recorded = detail.path if detail and detail.path else s.path
    path = find_source(recorded, source_root)
    if path is None:
        return f'<p class="warn">Source not found: {esc(recorded)} (--source-root maps recorded paths to a checkout).</p>'
    found = function_lines(path, detail.def_line if detail else None)
    if found is None:
        return f'<p class="warn">{esc(path)} has no function at the recorded line: the file changed since.</p>'
    lines, first, digest = found
    recorded_digest = detail.source_sha256 if detail else ""
    annotate = recorded_digest == digest
    warning = ""
    if not recorded_digest:
        warning = ('<p class="warn">This telemetry records no source digest (an older aiotel): the lines below '
                   "may not be the code that ran, so they are not annotated.</p>")
    elif not annotate:
        warning = ('<p class="warn">The source changed since this data was recorded (its SHA-256 differs): '
                   "shown as it is now, not annotated.</p>")
    fallbacks: Dict[int, List[str]] = {}
    for (line, kind), count in s.fallbacks.items():
        if isinstance(line, int):
            fallbacks.setdefault(line, []).append(f"{kind} caught {count}×")
    raises: Dict[int, List[str]] = {}
    for failure in (detail.failures if detail else []):
        if failure.line is not None:
            raises.setdefault(failure.line, []).append(failure.error_type)
    rows = []
    for offset, text in enumerate(lines):
        number = first + offset
        notes, css = [], ""
        if annotate:
            if number in fallbacks:
                css, notes = "fb", ["fallback: " + ", ".join(fallbacks[number])]
            if isinstance(number, int) and s.empty_results.get(number):
                css, notes = "none", notes + [f"returned None {s.empty_results[number]}×"]
            if number in raises:
                css = "raise"
                kinds = sorted(set(raises[number]))
                notes.append(f"exception left here: {', '.join(kinds)} (in {len(raises[number])} of the latest errors)")
        rows.append(f'<tr{f" class={css}" if css else ""}><td class=n>{number}</td><td>{esc(text)}</td>'
                    f'<td class=note>{esc("; ".join(notes))}</td></tr>')
    return warning + f'<p>{esc(path)}</p><table class="src">{"".join(rows)}</table>'


# --- the site ---------------------------------------------------------------------------

def write_site(directory: str, store: str, stats: Sequence[rollup.FunctionStats], details: Dict[str, Detail],
               points: Iterable[rollup.Point], since: Optional[int], source_root: Optional[str] = None,
               comparisons: Sequence[rollup.Comparison] = (), notes: Sequence[str] = ()) -> str:
    """Write the site; the path of its index."""
    earlier = prepare(directory)
    durations = durations_by_function(points)
    flagged: Dict[Tuple[str, str], List[str]] = {}
    others: Dict[Tuple[str, str], rollup.FunctionStats] = {}
    for c in comparisons:
        names = [name for name, on in (("slower", c.slower), ("more errors", c.more_errors),
                                       ("more fallbacks", c.more_fallbacks)) if on]
        others[(c.function, c.new.version)] = c.old
        if names:
            flagged[(c.function, c.new.version)] = names
    sparks, files = {}, []
    for s in stats:
        key = (s.function, s.version)
        series = durations.get(key, [])
        over = calls_over_time(series, since)
        sparks[key] = sparkline_svg(over[0], over[1])
        other, other_over = others.get(key), None
        if other is not None:  # both versions on one time axis
            older = durations.get((other.function, other.version), [])
            times = [p.time for p in series + older if since is None or p.time > since]
            if times:
                window = (min(times), max(times))
                over = calls_over_time(series, since, window=window)
                other_over = calls_over_time(older, since, window=window)[0]
        write_private(directory, page_name(s.function, s.version),
                      function_page(s, details.get(s.function), over, source_root, other, flagged.get(key, []),
                                    other_over))
        files.append(page_name(s.function, s.version))
    write_private(directory, "index.html", index_page(stats, details, sparks, flagged, store, notes))
    files.append("index.html")
    for stale in set(earlier) - set(files) - {MANIFEST}:
        try:
            os.unlink(os.path.join(directory, stale))
        except OSError:
            pass
    write_private(directory, MANIFEST, json.dumps({"written_by": "aiotel report --html", "files": files}, indent=1))
    return os.path.join(os.path.abspath(directory), "index.html")
