"""``aiotel scan``: the AI-generated surface of a source tree, before anything is deployed."""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from .. import cachedir
from .._version import __version__
from ..config import load_settings
from ..provenance import CachedScanner, Provenance, ScanResult
from ..provenance.pairs import CANDIDATE
from ..provenance.records import SOURCE_CONTROL
from ..provenance.git import Commit, GitHistory, TrailerRules, ai_functions, iso_date
from ..rewriting.selection import Scope
from .walk import module_name, python_files

SCHEMA_ID = "aiotel.scan/1"
_NAMED_FIELDS = ("tool", "date", "prompt")
_PROMPT_EXCERPT = 40


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="list the AI-generated functions of a source tree",
        description="List every function carrying an AI-generated marker under PATH (default: .).",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to scan (default: .)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="skip files and folders matching GLOB (relative path or name); repeatable")
    parser.add_argument("--json", action="store_true", help=f"print JSON (schema {SCHEMA_ID}, see README)")
    parser.add_argument("--require-field", action="append", default=[], metavar="FIELD",
                        help="exit 1 listing marked functions whose marker lacks FIELD (e.g. reviewed); repeatable")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the scan cache")
    parser.add_argument("--git", action="store_true",
                        help="also list functions last changed mostly by commits with AI trailers (as "
                             "AIOTEL_GIT_PROVENANCE=true instruments them), and each function's commit (git blame)")
    parser.set_defaults(run=run, subparser=parser)


def _display_path(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


Commits = Dict[Tuple[str, int], Commit]


def _with_git(result: ScanResult, history: GitHistory, commits: Commits) -> ScanResult:
    """``result`` plus the functions git provenance finds; each function's commit into ``commits``."""
    repo = history.repository(result.path)
    if repo is None or result.skipped:
        return result
    try:
        with open(result.path, "rb") as fh:
            st = os.fstat(fh.fileno())
            source = fh.read()
    except OSError:
        return result
    ai, files = history.ai_commits(repo)
    blame = None
    if result.functions or (ai and repo.relative(result.path) in files):
        blame = history.blame(result.path, st)
    if blame is None:
        return result
    found = ai_functions(source, result.path, result.module, blame, ai, {f.def_line for f in result.functions})
    result = dataclasses.replace(result, functions=tuple(sorted(result.functions + tuple(found), key=lambda f: f.def_line)))
    for function in result.functions:
        commit = blame.majority(function.first_line, function.last_line)
        if commit is not None:
            commits[(result.path, function.def_line)] = commit
    return result


def scan_tree(
    paths: Sequence[str], exclude: Sequence[str], use_cache: bool, git: bool = False, commits: Optional[Commits] = None
) -> Tuple[List[ScanResult], int]:
    settings = load_settings()
    refused = cachedir.refusal(settings.cache_dir) if use_cache else None
    for problem in settings.problems + ((refused,) if refused else ()):
        print(f"aiotel: {problem}", file=sys.stderr)
    if refused:
        use_cache = False
    scanner = CachedScanner(settings.markers, settings.cache_dir if use_cache else None, settings.max_source_bytes)
    history = None
    if git:
        history = GitHistory(settings.cache_dir if use_cache else None,
                             TrailerRules(settings.git_ai_trailers, settings.git_ai_coauthors))
    results: List[ScanResult] = []
    seen = set()
    count = 0
    for root in paths:
        for path in python_files(root, exclude):
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            count += 1
            result = scanner.scan_path(path, module_name(path))
            if history is not None:
                result = _with_git(result, history, commits if commits is not None else {})
                for problem in history.problems:
                    print(f"aiotel: git: {problem}", file=sys.stderr)
                history.problems.clear()
            if result.functions or result.notices or result.skipped:
                results.append(result)
    results.sort(key=lambda r: r.path)
    if history is not None:
        history.save()
    return results, count


def _missing(function: Provenance, required: Sequence[str]) -> List[str]:
    fields = function.marker.field_dict()
    missing = []
    for name in required:
        key = name.lower().replace("-", "_")
        value = getattr(function.marker, key) if key in _NAMED_FIELDS else fields.get(key)
        if key == "tool" and value == "unknown":
            value = None
        if not value:
            missing.append(name)
    return missing


def build_report(
    results: Sequence[ScanResult], files_scanned: int, required: Sequence[str], commits: Optional[Commits] = None,
    scope: Optional[Scope] = None,
) -> Dict[str, Any]:
    """The scan as JSON (schema ``aiotel.scan/1``). With ``scope`` (the one aiotel-run's
    hook uses), a function the hook would leave alone carries ``not_instrumented``: why."""
    functions, notices, skipped, missing, pairs = [], [], [], [], []
    by_tool: Dict[str, int] = collections.Counter()
    by_file: Dict[str, int] = collections.Counter()
    for result in results:
        shown = _display_path(result.path)
        if result.skipped:
            skipped.append({"file": shown, "reason": result.skipped})
        for notice in result.notices:
            notices.append({"file": shown, "line": notice.line, "message": notice.message})
        left_alone = scope.why_not(result.module, os.path.abspath(result.path)) if scope is not None else None
        for function in result.functions:
            if function.shadow is not None and function.shadow[0] == CANDIDATE:
                _, module, control, comparator = function.shadow
                pairs.append({"file": shown, "line": function.def_line, "candidate": function.qualname,
                              "control": f"{module}.{control}" if module else control,
                              "comparator": comparator})
            if function.source == SOURCE_CONTROL:
                continue  # not AI-generated: listed as its pair's control
            entry = {"file": shown}
            entry.update(function.to_json())
            if left_alone is not None:
                entry["not_instrumented"] = left_alone
            if commits is not None:
                commit = commits.get((result.path, function.def_line))
                entry["commit"] = {"sha": commit.sha, "time": iso_date(commit.time)} if commit else None
            functions.append(entry)
            by_tool[function.marker.tool] += 1
            by_file[shown] += 1
            lacking = _missing(function, required)
            if lacking:
                missing.append({"file": shown, "qualname": function.qualname, "def_line": function.def_line,
                                "missing": lacking})
    report: Dict[str, Any] = {
        "schema": SCHEMA_ID,
        "aiotel_version": __version__,
        "files_scanned": files_scanned,
        "functions": functions,
        "notices": notices,
        "skipped": skipped,
        "pairs": pairs,  # experiments (a marker's `replaces:`) that AIOTEL_SHADOW can run; refused ones are notices
        "summary": {
            "functions": len(functions),
            "files_with_markers": len(by_file),
            "by_tool": dict(sorted(by_tool.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_file": dict(sorted(by_file.items(), key=lambda kv: (-kv[1], kv[0]))),
        },
    }
    if required:
        report["required_fields"] = list(required)
        report["missing_fields"] = missing
    return report


def _excerpt(text: Any) -> str:
    if not text:
        return ""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _PROMPT_EXCERPT else flat[: _PROMPT_EXCERPT - 1] + "…"


def _table(rows: List[List[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)


def print_text(report: Dict[str, Any], out: TextIO) -> None:
    functions = report["functions"]
    git = bool(functions) and "commit" in functions[0]
    if functions:
        rows = [["LOCATION", "FUNCTION", "TOOL", "DATE"] + (["SOURCE", "COMMIT"] if git else []) + ["PROMPT"]]
        for f in functions:
            commit = [f["source"], (f["commit"] or {}).get("sha", "")[:12]] if git else []
            rows.append([f"{f['file']}:{f['def_line']}", f["qualname"], f["tool"], f["date"] or ""] + commit
                        + [_excerpt(f["prompt"])])
        _table(rows, out)
        print(file=out)
    if report["pairs"]:
        _table([["LOCATION", "CANDIDATE", "REPLACES", "COMPARE"]]
               + [[f"{p['file']}:{p['line']}", p["candidate"], p["control"], p["comparator"]] for p in report["pairs"]],
               out)
        print(file=out)
    summary = report["summary"]
    print(f"{summary['functions']} AI-generated functions in {summary['files_with_markers']} files "
          f"({report['files_scanned']} files scanned)", file=out)
    if summary["by_tool"]:
        print(file=out)
        _table([["TOOL", "FUNCTIONS"]] + [[k, str(v)] for k, v in summary["by_tool"].items()], out)
        print(file=out)
        _table([["FILE", "FUNCTIONS"]] + [[k, str(v)] for k, v in summary["by_file"].items()], out)


def print_problems(report: Dict[str, Any], err: TextIO) -> None:
    for notice in report["notices"]:
        print(f"aiotel: {notice['file']}:{notice['line']}: {notice['message']}", file=err)
    for skipped in report["skipped"]:
        print(f"aiotel: {skipped['file']}: not scanned: {skipped['reason']}", file=err)
    said = set()
    for function in report["functions"]:
        if function.get("not_instrumented") and function["file"] not in said:
            said.add(function["file"])
            print(f"aiotel: {function['file']}: aiotel-run leaves it uninstrumented: {function['not_instrumented']}",
                  file=err)
    for entry in report.get("missing_fields", []):
        print(f"aiotel: {entry['file']}:{entry['def_line']}: {entry['qualname']} lacks "
              f"{', '.join(entry['missing'])}", file=err)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    paths = args.paths or ["."]
    for path in paths:
        if not os.path.exists(path):
            parser.error(f"no such file or folder: {path}")
    commits: Optional[Commits] = {} if args.git else None
    results, count = scan_tree(paths, args.exclude, not args.no_cache, args.git, commits)
    settings = load_settings()
    report = build_report(results, count, args.require_field, commits, Scope(settings.include, settings.exclude))
    if args.json:
        json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        print_text(report, sys.stdout)
    print_problems(report, sys.stderr)
    return 1 if report.get("missing_fields") else 0
