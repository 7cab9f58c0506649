"""The embedded store (OTLP/JSON lines) and `aiotel report` reading it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess

import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from aiotel.store.since import parse_since
from aiotel.store.rollup import FunctionStats, Point, compare, histogram_quantile, summarize
from aiotel.store.writer import ROTATED_FILES, JsonLinesFile
from conftest import ROOT, SAMPLES, aiotel_run, command, run

SAMPLE = os.path.join(SAMPLES, "shopapp")
BOUNDS = [0.001, 0.01, 0.1]


def point(process, time, count, buckets, error=None, version="1", function="f", total=None):
    return Point(process, "svc", version, function, "Claude", "/f.py", error, time, count,
                 total if total is not None else 0.001 * count, buckets, BOUNDS)


def test_histogram_quantile_interpolates_like_prometheus():
    assert histogram_quantile(0.5, BOUNDS, [0, 10, 0, 0]) == pytest.approx(0.0055)
    assert histogram_quantile(0.99, BOUNDS, [10, 0, 0, 0]) == pytest.approx(0.00099)
    assert histogram_quantile(0.95, BOUNDS, [0, 0, 0, 4]) == 0.1  # +Inf bucket: its lower bound
    assert histogram_quantile(0.5, BOUNDS, [0, 0, 0, 0]) is None


def test_summary_takes_the_last_cumulative_point_per_process_and_adds_processes():
    points = [
        point("p1", 1, 2, [2, 0, 0, 0]),
        point("p1", 2, 5, [4, 1, 0, 0]),  # cumulative: replaces the first
        point("p2", 1, 3, [0, 3, 0, 0]),
        point("p2", 2, 1, [0, 0, 1, 0], error="KeyError"),
    ]
    (s,) = summarize(points)
    assert (s.calls, s.errors, s.buckets, dict(s.error_types)) == (9, 1, [4, 4, 1, 0], {"KeyError": 1})


def test_since_subtracts_the_last_point_before_the_window():
    points = [point("p1", 10, 5, [5, 0, 0, 0]), point("p1", 20, 8, [6, 2, 0, 0]), point("p2", 5, 4, [4, 0, 0, 0])]
    (s,) = summarize(points, since=15)
    assert (s.calls, s.buckets) == (3, [1, 2, 0, 0])  # p2 ended before the window


def test_compare_flags_slower_and_erroring_functions():
    def stats(version, function, calls, seconds, errors=0):
        s = FunctionStats(function, version, "Claude", "/f.py", calls=calls, errors=errors,
                          total_seconds=seconds, buckets=[calls, 0, 0, 0], bounds=BOUNDS)
        return s

    rows = [stats("1", "a", 10, 0.010), stats("2", "a", 10, 0.020),
            stats("1", "b", 10, 0.010), stats("2", "b", 10, 0.011, errors=2),
            stats("1", "c", 10, 0.010), stats("2", "c", 10, 0.012)]
    result = {c.function: c for c in compare(rows, "1", "2")}
    assert result["a"].slower and result["a"].latency_ratio == pytest.approx(2.0)
    assert result["b"].more_errors and not result["b"].slower
    assert not result["c"].flagged
    assert [c.function for c in compare(rows, "1", "2")][:2] == ["a", "b"]  # flagged first


def test_since_accepts_durations_and_iso_times():
    assert parse_since("2h", now=10_000) == int((10_000 - 7200) * 1e9)
    assert parse_since("2024-01-01T00:00:00Z") == 1704067200 * 10**9
    with pytest.raises(ValueError):
        parse_since("yesterday")


def test_store_file_rotates_at_its_cap_keeps_the_newest_files_and_counts_what_it_removes(tmp_path):
    store = tmp_path / "store"
    removed = []
    target = JsonLinesFile(str(store), "traces-x.jsonl", max_bytes=100, on_rotated_out=removed.append)
    for i in range(20):
        target.write_line(json.dumps({"n": i, "pad": "x" * 20}), items=2)  # 33 bytes: three lines a file
    target.close()
    names = sorted(os.listdir(store))
    assert names == ["traces-x.jsonl"] + [f"traces-x.jsonl.{i}" for i in range(1, ROTATED_FILES + 1)]
    assert all(os.path.getsize(store / n) <= 100 for n in names)
    kept = [json.loads(line)["n"] for name in list(reversed(names[1:])) + [names[0]]
            for line in (store / name).read_text().splitlines()]
    assert kept == list(range(20 - len(kept), 20))  # the newest lines, in order
    assert sum(removed) == 2 * (20 - len(kept))  # every line removed counted, with its items
    assert stat.S_IMODE(os.stat(store / names[0]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o700


@pytest.fixture
def app(tmp_path):
    target = tmp_path / "shopapp"
    shutil.copytree(SAMPLE, target)
    return target


@pytest.mark.instrumentation
def test_zero_setup_run_then_report(app, tmp_path):
    env = {"AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    for mode in ("ok", "ok", "fail"):
        aiotel_run(["python", "main.py", mode], app, env)
    store = app / ".aiotel"
    files = sorted(os.listdir(store))
    assert len([f for f in files if f.startswith("metrics-")]) == 3 and len([f for f in files if f.startswith("traces-")]) == 3

    # the lines are OTLP/JSON, as the Collector's file exporter writes them
    line = json.loads((store / next(f for f in files if f.startswith("traces-"))).read_text().splitlines()[0])
    span = line["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16 and isinstance(span["kind"], int)
    for ids in (s for rs in line["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]):
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in ids:
                ids[key] = base64.b64encode(bytes.fromhex(ids[key])).decode()
    decoded = ParseDict(line, ExportTraceServiceRequest())
    assert {s.name for rs in decoded.resource_spans for ss in rs.scope_spans for s in ss.spans} >= {"shop.cart.Cart.total"}

    table = run(command("aiotel") + ["report"], cwd=str(app))
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:]}
    assert rows["main.run"][2:5] == ["3", "1", "33.3"]  # calls, errors, error %
    assert rows["shop.cart.Cart.total"][2:4] == ["4", "1"]
    assert "ValueError" in rows["shop.cart.subtotal"][-2]

    data = json.loads(run(command("aiotel") + ["report", "--json"], cwd=str(app)).stdout)
    total = next(f for f in data["functions"] if f["function"] == "shop.cart.Cart.total")
    assert total["calls"] == 4 and total["errors"] == 1 and total["error_types"] == {"ValueError": 1}
    assert 0 < total["p50_seconds"] <= total["p95_seconds"] <= total["p99_seconds"]
    assert total["service.version"] and total["file"] == str(app / "shop" / "cart.py")


@pytest.mark.instrumentation
def test_compare_flags_the_version_that_got_slower(app, tmp_path):
    for version, slow in (("1.0", None), ("1.1", "1")):
        env = {"OTEL_RESOURCE_ATTRIBUTES": f"service.version={version}", "SHOP_SLOW": slow,
               "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
        assert aiotel_run(["python", "main.py", "many"], app, env).returncode == 0
    result = run(command("aiotel") + ["report", "--compare", "1.0", "1.1", "--json"], cwd=str(app))
    assert result.returncode == 1, result.stderr
    rows = {r["function"]: r for r in json.loads(result.stdout)["functions"]}
    assert rows["shop.cart.Cart.total"]["slower"] and rows["shop.cart.Cart.total"]["latency_ratio"] > 1.5
    assert not rows["shop.cart.subtotal"]["slower"]
    unknown = run(command("aiotel") + ["report", "--compare", "1.0", "9.9"], cwd=str(app))
    assert unknown.returncode == 2 and "9.9" in unknown.stderr


def test_report_on_an_empty_store_says_what_to_do(tmp_path):
    result = run(command("aiotel") + ["report"], cwd=str(tmp_path))
    assert result.returncode == 1 and "run a program under aiotel-run first" in result.stderr


EXAMPLES = os.path.join(ROOT, "examples")


@pytest.mark.instrumentation
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_report_shows_fallbacks_none_results_input_shapes_and_commits(tmp_path):
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES, work / "examples")
    git_env = dict(os.environ, GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="d@example.com",
                   GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="d@example.com")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "Example"]):
        subprocess.run(["git", *args], cwd=str(work), env=git_env, check=True, capture_output=True, timeout=30)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=str(work), capture_output=True, text=True).stdout.strip()
    # The first run blames in the background, and its exit waits for the blame to be cached
    # (within AIOTEL_SHUTDOWN_TIMEOUT, generous here for a loaded machine); the second run
    # finds it in the cache and its spans name the commit at once.
    env = {"AIOTEL_CACHE_DIR": str(tmp_path / "c"), "AIOTEL_CAPTURE_ARGS": "shape", "AIOTEL_SPAN_RATE_LIMIT": "1000",
           "AIOTEL_SHUTDOWN_TIMEOUT": "30"}
    runs = 2
    for _ in range(runs):
        assert aiotel_run(["python", "examples/app.py"], work, env).returncode == 0
    data = json.loads(run(command("aiotel") + ["report", "--json"], cwd=str(work)).stdout)
    rows = {f["function"]: f for f in data["functions"]}

    discount = rows["shop.pricing.discounted_total"]
    assert discount["fallbacks"] == [{"line": 11, "exception.type": "KeyError", "count": 20 * runs}]  # bronze, 20 a run
    assert discount["fallback_rate"] == pytest.approx(40 / 120)
    coupon = rows["shop.pricing.coupon_rate"]
    assert coupon["empty_results"] == [{"line": 17, "count": 40 * runs}] and coupon["empty_rate"] == pytest.approx(80 / 120)
    shapes = {(i["parameter"], i["type"]): i for i in rows["app.checkout"]["inputs"]}
    assert shapes[("tier", "str")]["calls"] == 61 * runs and shapes[("order", "str")]["mean_length"] > 5
    assert rows["app.checkout"]["commit"]["sha"] == sha

    table = run(command("aiotel") + ["report"], cwd=str(work)).stdout
    header, *lines = table.split("\n\n")[0].splitlines()
    assert header.split()[9:12] == ["FALLBACKS", "NONE", "%"]
    row = next(line.split() for line in lines if line.startswith("shop.pricing.discounted_total "))
    assert row[8] == str(20 * runs) and "KeyError@11" in row[-2]
    assert "input shapes" in table and any(line.split()[:3] == ["app.checkout", "order", "str"] for line in table.splitlines())


@pytest.mark.instrumentation
def test_spans_the_export_queue_drops_are_counted_and_reported(tmp_path):
    """A queue of two and forty spans at once: what is not in the store is counted,
    and report and doctor say that the traces are incomplete."""
    app = tmp_path / "traces"
    shutil.copytree(os.path.join(SAMPLES, "traces"), app)
    env = {"AIOTEL_CACHE_DIR": str(tmp_path / "c"), "AIOTEL_SPAN_BURST": "1000", "OTEL_BSP_MAX_QUEUE_SIZE": "2",
           "OTEL_BSP_SCHEDULE_DELAY": "10000"}
    result = run(command("aiotel-run") + ["python", "app.py", "threads"], cwd=str(app), env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    stored = 0
    for name in os.listdir(app / ".aiotel"):
        if name.startswith("traces"):
            for line in open(app / ".aiotel" / name):
                stored += sum(len(ss["spans"]) for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"])
    report = run(command("aiotel") + ["report", "--json"], cwd=str(app))
    data = json.loads(report.stdout)
    dropped = data["spans_dropped"]
    assert dropped > 0 and stored + dropped == 40, (stored, dropped)
    assert data["spans_dropped_by_reason"] == {"queue_full": dropped}
    assert f"{dropped} finished spans were lost because the export queue was full" in report.stderr
    doctor = run(command("aiotel") + ["doctor"], cwd=str(app), env={"AIOTEL_CACHE_DIR": str(tmp_path / "c")})
    assert f"lost, as the store's data says: {dropped} finished spans were lost because the export queue" in doctor.stdout
