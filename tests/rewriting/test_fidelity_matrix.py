"""The same program, run with and without `aiotel-run`, prints exactly the same.

`samples/matrix` exercises every shape the rewriter handles (plain, defaults, registry
decorator, closure, functools.wraps, class/static methods, property, name mangling,
generators with send/return/close/yield from, coroutines, async generators, recursion
50 frames below the limit and to the limit, tracebacks) and prints what a program can
observe about them. It runs plainly, then under aiotel-run with every call sampled,
then with spans capped to zero (the unsampled path), exporting to a real receiver.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLES, command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

SAMPLE = Path(SAMPLES) / "matrix"


@pytest.fixture
def matrix(tmp_path):
    target = tmp_path / "matrix"
    shutil.copytree(SAMPLE, target)
    return target


def outcome(result):
    return result.returncode, result.stdout, result.stderr


def assert_same(instrumented, plain):
    """Equal outcomes; on a difference, show only the lines that differ."""
    if outcome(instrumented) != outcome(plain):
        import difflib

        diff = []
        for name in ("stdout", "stderr"):
            diff += difflib.unified_diff(
                getattr(plain, name).splitlines(), getattr(instrumented, name).splitlines(),
                f"plain {name}", f"aiotel-run {name}", lineterm="", n=1,
            )
        pytest.fail(f"exit {plain.returncode} vs {instrumented.returncode}\n" + "\n".join(diff))


# every optional feature switched on: argument shapes, and git provenance in a checkout
# whose only commit has an AI trailer, so every function of the sample is instrumented
ALL_ON = {"AIOTEL_CAPTURE_ARGS": "shape", "AIOTEL_GIT_PROVENANCE": "true"}
# the default probes are the C accelerator where it was built: the pure-Python ones too
PURE_PYTHON = {"AIOTEL_ACCELERATOR": "false"}


def commit_as_ai(directory):
    env = dict(os.environ, GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@example.com",
               GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="dev@example.com")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "All\n\nCo-authored-by: Claude <noreply@anthropic.com>"]):
        subprocess.run(["git", *args], cwd=str(directory), env=env, check=True, capture_output=True, timeout=30)


@pytest.mark.parametrize(
    "rate, features",
    [("1000000", {}), ("0", {}), ("1000000", ALL_ON), ("0", ALL_ON), ("1000000", PURE_PYTHON), ("0", PURE_PYTHON)],
    ids=["sampled", "unsampled", "sampled-all-on", "unsampled-all-on", "sampled-pure-python", "unsampled-pure-python"],
)
@pytest.mark.slow
@pytest.mark.parametrize("mode, code", [("ok", 0), ("crash", 1), ("exit3", 3)])
def test_output_is_identical_with_and_without_aiotel(matrix, http_receiver, tmp_path, rate, features, mode, code):
    all_on = features is ALL_ON
    if all_on:
        if shutil.which("git") is None:
            pytest.skip("git is not installed")
        commit_as_ai(matrix)
    plain = run([sys.executable, "matrix.py", mode], cwd=str(matrix))
    assert plain.returncode == code, plain.stderr
    env = telemetry_env(http_receiver, tmp_path, AIOTEL_SPAN_RATE_LIMIT=rate, **features)
    instrumented = run(command("aiotel-run") + ["python", "matrix.py", mode], cwd=str(matrix), env=env)
    assert_same(instrumented, plain)
    assert "recursion 50 below the limit: True" in plain.stdout
    # the program really was instrumented: every call counted, spans only when sampled
    assert http_receiver.received.wait(lambda r: len(r.points) > 10)
    names = {p.attributes["code.function.name"] for p in http_receiver.received.points}
    assert {"shapes.add", "shapes.Account.deposit", "shapes.agen", "shapes.make_counter.<locals>.bump", "matrix.in_main"} <= names
    spans = {s.name for s in http_receiver.received.spans}
    if all_on:
        # git provenance instrumented the unmarked functions too
        assert {"shapes.register", "matrix.show"} <= names
    elif rate == "0":
        assert spans <= {"shapes.Account.deposit", "shapes.crash", "shapes.swallow", "shapes.deepest", "shapes.recurse"}
    else:
        assert {"shapes.gen", "shapes.coro", "shapes.Account.standard"} <= spans
    metrics = {p.metric for p in http_receiver.received.points}
    if mode == "ok":
        assert "aiotel.function.empty_results" in metrics
    assert ("aiotel.function.input.types" in metrics) == all_on


def test_output_is_identical_on_a_second_run_from_the_pyc_cache(matrix, tmp_path):
    env = {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "AIOTEL_CACHE_DIR": str(tmp_path / "c"),
        "PYTHONDONTWRITEBYTECODE": None,
    }
    plain = run([sys.executable, "matrix.py"], cwd=str(matrix), env={"PYTHONDONTWRITEBYTECODE": None})
    first = run(command("aiotel-run") + ["python", "matrix.py"], cwd=str(matrix), env=env)
    cached = list((matrix / "shapes" / "__pycache__").glob("__init__.*-aiotel-*.pyc"))
    assert len(cached) == 1
    cached[0].write_bytes(cached[0].read_bytes())  # a marker that the second run must not rewrite it
    before = cached[0].stat().st_mtime_ns
    second = run(command("aiotel-run") + ["python", "matrix.py"], cwd=str(matrix), env=env)
    assert_same(first, plain)
    assert_same(second, plain)
    assert cached[0].stat().st_mtime_ns == before  # loaded from the cache, not rewritten
