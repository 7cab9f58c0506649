"""A real library's own test suite, run plainly and then under ``aiotel-run`` with every
function and method of the library marked as AI-generated. Fails unless every test has the
same outcome both ways and spans arrived for most of the functions the suite exercised.

    python tests/foreign/foreign_suite.py --python .venv-foreign/bin/python [toolz boltons]

``--python`` is the interpreter the suites run with: it needs aiotel and the pytest the
library's tests were written for (boltons' conftest does not load on pytest 9). The
script itself needs this repository's test extra (the OTLP receiver decodes protobuf).
The source distributions come from the package index, pinned below.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from typing import Dict, List, NamedTuple, Tuple

import libcst as cst

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from otlp_receiver import HttpReceiver  # noqa: E402

MARKER = "# AI-generated: foreign-suite, prompt: \"every function of the library\""
# Share of the exercised functions that must have at least one span.
MIN_SPAN_SHARE = 0.9


class Suite(NamedTuple):
    name: str
    version: str
    package: str  # the library's source folder inside the sdist
    tests: Tuple[str, ...]  # test paths inside the sdist
    style: str


SUITES = {
    "toolz": Suite("toolz", "1.0.0", "toolz", ("toolz/tests",), "functional: curried functions, closures, generators"),
    "boltons": Suite("boltons", "25.0.0", "boltons", ("tests",), "classes, descriptors, generators, metaprogramming"),
}


class MarkEveryFunction(cst.CSTTransformer):
    """Puts the marker on its own line directly above every ``def`` (above its decorators)."""

    def __init__(self) -> None:
        self.marked = 0

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        self.marked += 1
        marker = cst.EmptyLine(indent=True, whitespace=cst.SimpleWhitespace(""), comment=cst.Comment(MARKER))
        return updated.with_changes(leading_lines=[*updated.leading_lines, marker])


def mark_library(folder: str, excluded: Tuple[str, ...]) -> Tuple[int, int]:
    """Mark every function under ``folder`` except in ``excluded`` paths; (files, functions)."""
    files = functions = 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in excluded and d != "__pycache__"]
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                module = cst.parse_module(fh.read())
            marker = MarkEveryFunction()
            changed = module.visit(marker)
            if marker.marked:
                with open(path, "wb") as fh:
                    fh.write(changed.bytes)
                files += 1
                functions += marker.marked
    return files, functions


def fetch(suite: Suite, python: str, into: str) -> str:
    """Download and unpack the sdist; returns its folder."""
    subprocess.run(
        [python, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
         f"{suite.name}=={suite.version}", "-d", into],
        check=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    archive = next(os.path.join(into, n) for n in os.listdir(into) if n.endswith(".tar.gz"))
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    return os.path.join(into, f"{suite.name}-{suite.version}")


def outcomes(junit: str) -> Dict[str, str]:
    """Test id -> passed / failed / error / skipped, from pytest's JUnit XML."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
        found[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return found


def counts(results: Dict[str, str]) -> Dict[str, int]:
    tally: Dict[str, int] = {}
    for outcome in results.values():
        tally[outcome] = tally.get(outcome, 0) + 1
    return dict(sorted(tally.items()))


def run_suite(suite: Suite, python: str, aiotel_run: str, work: str) -> List[str]:
    """Both runs of one suite; returns the problems found (empty: it passed)."""
    root = fetch(suite, python, work)
    excluded = tuple(os.path.join(root, t) for t in suite.tests)
    files, marked = mark_library(os.path.join(root, suite.package), excluded)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_", "PYTEST_"))}
    base_env["PYTHONDONTWRITEBYTECODE"] = "1"
    pytest_args = ["-m", "pytest", "-p", "no:cacheprovider", "-q", *suite.tests]

    started = time.monotonic()
    plain = subprocess.run([python, *pytest_args, f"--junitxml={work}/plain.xml"], cwd=root, env=base_env,
                           capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)
    plain_seconds = time.monotonic() - started
    receiver = HttpReceiver()
    try:
        env = dict(base_env, **receiver.env())
        env.update({
            "AIOTEL_CACHE_DIR": os.path.join(work, "aiotel-cache"),
            "AIOTEL_SHUTDOWN_TIMEOUT": "60",
            "AIOTEL_CAPTURE_ARGS": "shape",  # full instrumentation: every optional signal on
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BSP_MAX_QUEUE_SIZE": "1000000",
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            # a suite starts hundreds of traces a second: the default per-process limit
            # (100/s) would leave functions called in a busy second without a span, and
            # this run is about every function reaching the collector
            "AIOTEL_TRACE_RATE_LIMIT": "0",
        })
        started = time.monotonic()
        instrumented = subprocess.run([aiotel_run, python, *pytest_args, f"--junitxml={work}/aiotel.xml"], cwd=root,
                                      env=env, capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL)
        instrumented_seconds = time.monotonic() - started
        received = receiver.received
        received.wait(lambda r: any(p.metric == "aiotel.function.duration" for p in r.points), timeout=30)
        exercised = {p.attributes["code.function.name"] for p in received.points
                     if p.metric == "aiotel.function.duration" and p.count}
        with_spans = {s.name for s in received.spans} & exercised
    finally:
        receiver.stop()

    problems = []
    plain_results = outcomes(f"{work}/plain.xml") if os.path.exists(f"{work}/plain.xml") else {}
    aiotel_results = outcomes(f"{work}/aiotel.xml") if os.path.exists(f"{work}/aiotel.xml") else {}
    share = len(with_spans) / len(exercised) if exercised else 0.0
    print(f"{suite.name} {suite.version} ({suite.style}): {marked} functions marked in {files} files")
    print(f"  plain:      {counts(plain_results)} in {plain_seconds:.1f} s (pytest exit {plain.returncode})")
    print(f"  aiotel-run: {counts(aiotel_results)} in {instrumented_seconds:.1f} s (pytest exit {instrumented.returncode})")
    print(f"  functions exercised by the suite: {len(exercised)}; with spans: {len(with_spans)} ({100 * share:.0f} %)")
    said = [line for line in instrumented.stderr.splitlines() if line.startswith("aiotel:")]
    for line in said:
        print(f"  {line}")
    if not plain_results:
        problems.append(f"{suite.name}: the plain run produced no results:\n{plain.stdout[-2000:]}{plain.stderr[-2000:]}")
    if plain_results != aiotel_results or plain.returncode != instrumented.returncode:
        differing = sorted(t for t in set(plain_results) | set(aiotel_results)
                           if plain_results.get(t) != aiotel_results.get(t))
        problems.append(f"{suite.name}: outcomes differ under aiotel-run for {len(differing)} tests, e.g. "
                        + ", ".join(f"{t}: {plain_results.get(t)} -> {aiotel_results.get(t)}" for t in differing[:5])
                        + f"\n{instrumented.stdout[-3000:]}{instrumented.stderr[-2000:]}")
    if share < MIN_SPAN_SHARE:
        problems.append(f"{suite.name}: spans arrived for only {len(with_spans)} of {len(exercised)} exercised functions")
    return problems


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"which ({', '.join(SUITES)}; default: all)")
    parser.add_argument("--python", required=True, help="the interpreter the suites run with (aiotel and pytest installed)")
    options = parser.parse_args(argv)
    unknown = [name for name in options.suites if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite {unknown[0]!r}; known: {', '.join(SUITES)}")
    python = os.path.abspath(options.python)
    aiotel_run = os.path.join(os.path.dirname(python), "aiotel-run")
    problems: List[str] = []
    for name in options.suites or list(SUITES):
        with tempfile.TemporaryDirectory(prefix=f"aiotel-foreign-{name}-") as work:
            problems += run_suite(SUITES[name], python, aiotel_run, work)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
