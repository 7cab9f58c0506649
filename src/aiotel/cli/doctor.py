"""``aiotel doctor``: the effective configuration and where each value came from, whether
the configured collector answers, and what the import hook would instrument here."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from ..provenance.pairs import CANDIDATE, EXPERIMENT_REFUSED
from .. import cachedir
from ..config import VARIABLES, Settings, load_settings
from ..rewriting.selection import Scope, select
from ..provenance import CachedScanner
from .instrumentations import content_policy, instrumentations
from .report import loss_sentences
from .walk import module_name, python_files


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="show the effective configuration, check the collector, list what would be instrumented",
        description=(
            "Print every setting aiotel-run would use and where it comes from, check that the "
            "configured OTLP endpoint answers, and list the marked functions the import hook "
            "would instrument under the current directory. Exit 1 when something is wrong."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS", help="for the endpoint check (default 2)")
    parser.set_defaults(run=run, subparser=parser)


def configuration(environ: Mapping[str, str]) -> List[Dict[str, str]]:
    rows = []
    for variable in VARIABLES:
        value = environ.get(variable.name)
        if value is not None and value.strip():
            rows.append({"variable": variable.name, "value": value, "source": "environment"})
        else:
            rows.append({"variable": variable.name, "value": variable.default, "source": "default"})
    return rows


def otlp_endpoints(settings: Settings, environ: Mapping[str, str]) -> List[Tuple[str, str, str]]:
    """(signal, protocol, endpoint) for each signal exported over OTLP, as the exporters resolve them."""
    found = []
    for signal, exporters, protocol in (
        ("traces", settings.traces_exporters, settings.otlp_traces_protocol),
        ("metrics", settings.metrics_exporters, settings.otlp_metrics_protocol),
        ("logs", settings.logs_exporters, settings.otlp_logs_protocol),
    ):
        if "otlp" not in exporters:
            continue
        specific = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
        general = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        default = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
        found.append((signal, protocol, specific or general or default))
    return found


def answers(endpoint: str, timeout: float) -> Optional[str]:
    """None when a TCP connection to the endpoint succeeds, else why it did not."""
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    host = parts.hostname or "localhost"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def would_instrument(settings: Settings, root: str = ".") -> List[Dict[str, Any]]:
    scope = Scope(settings.include, settings.exclude)
    scanner = CachedScanner(settings.markers, settings.cache_dir, settings.max_source_bytes)
    scanned = []
    controls: Dict[str, List[str]] = {}  # module -> controls that pairs in other modules name there
    for path in python_files(root, ()):
        name = module_name(path)
        full = os.path.abspath(path)
        if scope.why_not(name, full) is not None:
            continue  # out of scope: the hook never reads it either
        result = scanner.scan_path(path, name)
        scanned.append((path, name, full, result))
        for control in result.controls:
            controls.setdefault(control.module, []).append(control.qualname)
    found = []
    for path, name, full, result in scanned:
        selection = select(scope, name, full, result)
        functions = [f.qualname for f in selection.functions] + [
            q for q in controls.get(name, []) if q not in {f.qualname for f in selection.functions}]
        if functions:
            entry: Dict[str, Any] = {"file": path, "module": name, "functions": functions}
            # experiments, when the file has any: a pair runs both arms under AIOTEL_SHADOW, a refused one never
            pairs = [f"{f.qualname} replaces {f.shadow[1] + '.' if f.shadow[1] else ''}{f.shadow[2]} (compare: {f.shadow[3]})"
                     for f in selection.functions if f.shadow is not None and f.shadow[0] == CANDIDATE]
            refused = [f"line {n.line}: {n.message}" for n in result.notices if n.message.startswith(EXPERIMENT_REFUSED)]
            if pairs or refused:
                entry.update(pairs=pairs, pairs_refused=refused)
            if name in controls:
                entry["controls_of_other_modules"] = controls[name]
            found.append(entry)
    return found


ARCHIVES = (".pyz", ".zip", ".egg")


def zipped_marked(settings: Settings, root: str = ".") -> List[Dict[str, Any]]:
    """Marked modules inside zip archives under ``root`` (zipapps, eggs): Python imports
    them through zipimport, which the import hook does not rewrite."""
    import zipfile

    scanner = CachedScanner(settings.markers, settings.cache_dir, settings.max_source_bytes)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("node_modules", "__pycache__")]
        for name in sorted(filenames):
            if not name.endswith(ARCHIVES):
                continue
            archive = os.path.join(dirpath, name)
            try:
                with zipfile.ZipFile(archive) as zipped:
                    members = [m for m in zipped.namelist() if m.endswith(".py")]
                    for member in members:
                        data = zipped.read(member)
                        module = member[:-3].replace("/", ".").removesuffix(".__init__")
                        result = scanner.scan_bytes(data, f"{archive}/{member}", module)
                        if result.functions:
                            found.append({"file": f"{archive}/{member}", "module": module,
                                          "functions": [f.qualname for f in result.functions]})
            except (OSError, zipfile.BadZipFile, RuntimeError):
                continue
    return found


def probe_implementation(settings: Settings) -> str:
    """Which enter/leave the marked functions would call, and why."""
    from .. import probes

    if not settings.accelerator:
        return "pure Python (AIOTEL_ACCELERATOR=false)"
    if not probes.accelerator_available():
        return "pure Python (the C accelerator aiotel._speedups was not built at install, or does not load)"
    return "C accelerator (aiotel._speedups)"


def sampling(settings: Settings, environ: Mapping[str, str]) -> str:
    """Which calls get spans, in one line."""
    if not settings.traces_exporters or settings.span_rate_limit <= 0:
        return "no aiotel spans (metrics only)"
    if settings.traces_sampler_set:
        sampler = f"the sampler set by OTEL_TRACES_SAMPLER ({environ.get('OTEL_TRACES_SAMPLER', '').strip()})"
    elif settings.trace_rate_limit > 0:
        sampler = f"parent-based, at most {settings.trace_rate_limit:g} new traces a second in each process"
    else:
        sampler = "parent-based, always on"
    return (f"{sampler}; a function starts at most {settings.span_rate_limit:g} traces a second after a burst of "
            f"{settings.span_burst}; inside a recorded trace every call gets a span, up to "
            f"{settings.trace_span_budget} per function and trace")


def store_losses(settings: Settings) -> Dict[str, Any]:
    """What the store's processes said they lost, and the lines it cannot read (nothing
    without a store)."""
    found: Dict[str, Any] = {"spans_dropped": {}, "metric_exports_failed": 0, "lines_skipped": []}
    if "store" not in settings.metrics_exporters:
        return found
    from ..store import rollup
    from ..store.window import read_totals

    skipped = rollup.Skipped()
    points = read_totals(rollup.store_files(settings.store_dir), None, skipped)  # a few lines a process
    found.update(spans_dropped=rollup.spans_dropped(points), metric_exports_failed=rollup.metric_exports_failed(points),
                 lines_skipped=skipped.lines())
    return found


def spill_waiting(settings: Settings) -> Optional[Dict[str, Any]]:
    """What the spill holds (files, bytes), or None when it holds nothing."""
    if not settings.spill_dir or not os.path.isdir(settings.spill_dir):
        return None
    from ..store import rollup

    files = rollup.store_files(settings.spill_dir, "traces") + rollup.store_files(settings.spill_dir, "metrics")
    if not files:
        return None
    size = sum(os.path.getsize(path) for path in files if os.path.isfile(path))
    return {"directory": settings.spill_dir, "files": len(files), "bytes": size}


def store_problem(settings: Settings) -> Optional[str]:
    """Why the store cannot be written, as aiotel-run would find out, or None."""
    if "store" not in settings.traces_exporters + settings.metrics_exporters:
        return None
    from ..store.writer import usable_directory

    path = usable_directory(settings.store_dir, settings.private_store_dir)  # says so when it falls back
    existing = path
    while not os.path.isdir(existing):  # the nearest directory that exists: it must take the new one
        if os.path.lexists(existing) and not os.path.isdir(existing):
            return f"the store {path} cannot be created: {existing} is not a directory"
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the store {path} cannot be written: {existing} is not writable here"
    return None


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    environ = os.environ
    settings = load_settings(environ)
    refused = cachedir.refusal(settings.cache_dir)
    if refused:  # what aiotel-run would do: say so, and run without a cache
        settings = settings._replace(cache_dir=None, problems=settings.problems + (refused,))
    checks = []
    for signal, protocol, endpoint in otlp_endpoints(settings, environ):
        problem = answers(endpoint, args.timeout)
        checks.append({"signal": signal, "protocol": protocol, "endpoint": endpoint, "answers": problem is None,
                       "problem": problem})
    report = {
        "configuration": configuration(environ),
        "problems": list(settings.problems),
        "traces_exporters": list(settings.traces_exporters),
        "metrics_exporters": list(settings.metrics_exporters),
        "logs_exporters": list(settings.logs_exporters),
        "store": settings.store_dir if "store" in settings.traces_exporters + settings.metrics_exporters + settings.logs_exporters else None,
        "endpoints": checks,
        "would_instrument": would_instrument(settings),
        "not_instrumented_zipped": zipped_marked(settings),
        "probes": probe_implementation(settings),
        "sampling": sampling(settings, environ),
        **store_losses(settings),
        "spill": spill_waiting(settings),
        "instrumentations": instrumentations(settings),
        "llm_content": dict(zip(("policy", "notes"), content_policy(settings))),
    }
    problem = store_problem(settings)
    if problem:
        report["problems"].append(problem)
    healthy = not report["problems"] and all(c["answers"] for c in checks)
    if args.json:
        json.dump({**report, "healthy": healthy}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if healthy else 1
    out = sys.stdout
    out.write("configuration:\n")
    width = max(len(r["variable"]) for r in report["configuration"])
    for row in report["configuration"]:
        out.write(f"  {row['variable']:<{width}}  {row['value'] or '-'}  ({row['source']})\n")
    for problem in report["problems"]:
        out.write(f"problem: {problem}\n")
    out.write(f"traces go to: {', '.join(settings.traces_exporters) or 'nowhere'}; "
              f"metrics go to: {', '.join(settings.metrics_exporters) or 'nowhere'}; "
              f"logs go to: {', '.join(settings.logs_exporters) or 'nowhere'}\n")
    if report["store"]:
        out.write(f"store: {report['store']}\n")
    for line in loss_sentences(report["spans_dropped"], report["metric_exports_failed"]):
        out.write(f"lost, as the store's data says: {line}\n")
    for line in report["lines_skipped"]:
        out.write(f"store: {line}\n")
    if report["spill"]:
        spill = report["spill"]
        out.write(f"spill: {spill['directory']} holds {spill['files']} file(s), {spill['bytes'] // 1024} KiB, of telemetry "
                  f"a collector did not take; send it with: aiotel push (already pushed lines are not sent again)\n")
    out.write(f"sampling: {report['sampling']}\n")
    for check in checks:
        verdict = "answers" if check["answers"] else f"does not answer ({check['problem']})"
        out.write(f"{check['signal']} endpoint {check['endpoint']} ({check['protocol']}): {verdict}\n")
    out.write(f"probes: {report['probes']}\n")
    for row in report["instrumentations"]:
        version = f" {row['version']}" if row["version"] else ""
        out.write(f"instrumentation {row['name']} ({row['distribution'] or '?'}{version}): {row['state']}, {row['reason']}\n")
        if row["fix"]:
            out.write(f"    fix: {row['fix']}\n")
        for note in row["notes"]:
            out.write(f"    note: {note}\n")
    out.write(f"LLM prompts and completions: {report['llm_content']['policy']}\n")
    for note in report["llm_content"]["notes"]:
        out.write(f"    note: {note}\n")
    marked = report["would_instrument"]
    total = sum(len(m["functions"]) for m in marked)
    out.write(f"would instrument here: {total} function(s) in {len(marked)} file(s)\n")
    for entry in marked:
        out.write(f"  {entry['file']}: {', '.join(entry['functions'])}\n")
        for pair in entry.get("pairs", []):
            out.write(f"    experiment: {pair}\n")
        for refused in entry.get("pairs_refused", []):
            out.write(f"    {refused}\n")
        if entry.get("controls_of_other_modules"):
            out.write(f"    replaced by rewrites elsewhere (instrumented as their controls): "
                      f"{', '.join(entry['controls_of_other_modules'])}\n")
    zipped = report["not_instrumented_zipped"]
    if zipped:
        out.write(f"not instrumented: {sum(len(m['functions']) for m in zipped)} marked function(s) inside zip "
                  "archives (imported from a zip, a module runs uninstrumented; install or unpack it):\n")
        for entry in zipped:
            out.write(f"  {entry['file']}: {', '.join(entry['functions'])}\n")
    return 0 if healthy else 1
