"""aiotel's set-up runs beside the first marked call, not in it: the call returns at once,
its time is its own, and a fork or an exit while the set-up runs loses nothing."""

from __future__ import annotations

import json
import textwrap

import pytest

from conftest import command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

TIMED = textwrap.dedent(
    '''\
    import json, time
    from aiotel.pipeline import background


    # AI-generated: Claude, 2026-11-20, prompt: "add one"
    def step(n):
        return n + 1


    began = time.perf_counter_ns()
    step(0)
    first = time.perf_counter_ns() - began
    for i in range(1000):
        step(i)
    background.settle(30)
    set_up = time.perf_counter_ns() - began
    print(json.dumps({"first": first, "set_up": set_up}))
    '''
)


@pytest.mark.parametrize("exporter", ["store", "otlp"])
def test_the_first_call_returns_before_the_set_up_and_records_only_its_own_time(tmp_path, http_receiver, exporter):
    (tmp_path / "app.py").write_text(TIMED)
    store = tmp_path / "store"
    env = ({"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")} if exporter == "store"
           else telemetry_env(http_receiver, tmp_path))
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    seen = json.loads(result.stdout)
    # the set-up (SDK, exporters: tens of ms) went on after the first call had returned
    assert seen["first"] * 5 < seen["set_up"], seen
    if exporter == "store":
        report = run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path))
        [function] = json.loads(report.stdout)["functions"]
        assert function["calls"] == 1001
        # the set-up is in no call's duration: all 1 001 together took less than it
        assert function["mean_seconds"] * 1001 * 1e9 < seen["set_up"] / 5, (function, seen)
    else:
        received = http_receiver.received
        assert received.wait(lambda r: sum(p.count for p in r.latest_points("aiotel.function.duration").values()) == 1001,
                             timeout=15)
        [point] = received.latest_points("aiotel.function.duration").values()
        assert point.sum * 1e9 < seen["set_up"] / 5
        # the series start at the first call, not when the reader was built later
        [span] = [s for s in received.spans if s.name == "app.step"][:1]
        assert point.start <= span.start


FORKS = textwrap.dedent(
    '''\
    import os, sys


    # AI-generated: Claude, 2026-11-20, prompt: "add one"
    def step(n):
        return n + 1


    step(0)  # starts the set-up; the fork below comes while it runs
    pid = os.fork()
    if pid == 0:
        # what the set-up imports, imported in the child: no module lock of it is left held
        import google.protobuf.json_format, opentelemetry.sdk.metrics.export
        step(1)
        step(2)
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    step(3)
    print("child exit", os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status)
    '''
)


def test_a_fork_while_the_set_up_runs_waits_for_it_and_both_processes_report(tmp_path, http_receiver):
    (tmp_path / "app.py").write_text(FORKS)
    # (from 3.12 on, Python warns of any fork with threads running: those of the exporters
    # that the first call started; the same without the background set-up)
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), timeout=60,
                 env=telemetry_env(http_receiver, tmp_path, PYTHONWARNINGS="ignore::DeprecationWarning"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "child exit 0\n", "")
    received = http_receiver.received

    def per_process(r):
        latest = {}
        for p in r.points:
            if p.attributes.get("code.function.name") == "app.step":
                key = p.resource["service.instance.id"]
                latest[key] = max(latest.get(key, 0), p.count)
        return sorted(latest.values())

    # the parent's 2 calls, the child's 2 (it starts from zero), under two instance ids
    assert received.wait(lambda r: per_process(r) == [2, 2], timeout=15), per_process(received)


STUCK = textwrap.dedent(
    '''\
    import os, threading, time
    from aiotel.pipeline import background


    # AI-generated: Claude, 2026-11-20, prompt: "add one"
    def step(n):
        return n + 1


    step(0)
    background.settle(30)
    release = threading.Event()
    background.run(lambda: release.wait(30))  # stands for a set-up that hangs
    waits = []
    for _ in range(2):
        began = time.monotonic()
        pid = os.fork()
        if pid == 0:
            step(1)
            os._exit(0)
        waits.append(time.monotonic() - began)
        os.waitpid(pid, 0)
    release.set()
    # the first fork waited its bound; the second did not wait for the same set-up again
    print(waits[0] >= background.SET_UP_WAIT * 0.9, waits[1] < background.SET_UP_WAIT / 2)
    '''
)


def test_a_set_up_that_outlives_the_fork_wait_is_named_in_each_child(tmp_path):
    (tmp_path / "app.py").write_text(STUCK)
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), timeout=60,
                 env={"AIOTEL_STORE": str(tmp_path / "store"), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
                      "PYTHONWARNINGS": "ignore::DeprecationWarning"})
    assert (result.returncode, result.stdout) == (0, "True True\n"), result.stderr
    said = [line for line in result.stderr.splitlines() if "forked while aiotel was still setting up" in line]
    assert len(said) == 2 and result.stderr.count("\n") == 2, result.stderr


# 60 spans in about a millisecond: all of them end while the exporter is being built (its
# imports take tens of milliseconds). Spans that keep coming after the build at more than
# the export of a 50-span queue keeps up with are dropped by the queue, as they should be.
BURST = textwrap.dedent(
    '''\
    # AI-generated: Claude, 2026-11-20, prompt: "add one"
    def step(n):
        return n + 1


    for i in range(60):
        step(i)
    '''
)


def test_spans_that_end_during_the_set_up_wait_for_it_and_all_arrive(tmp_path, http_receiver):
    """More spans than the export queue holds (50) end before the exporter exists: they
    wait, then a span's end waits for the build, as when the build was made there."""
    (tmp_path / "app.py").write_text(BURST)
    env = telemetry_env(http_receiver, tmp_path, OTEL_BSP_MAX_QUEUE_SIZE="50", AIOTEL_SPAN_RATE_LIMIT="1000000",
                        AIOTEL_SPAN_BURST="1000", AIOTEL_TRACE_RATE_LIMIT="1000000")
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert (result.returncode, result.stderr) == (0, "")
    received = http_receiver.received
    assert received.wait(lambda r: len(r.spans) >= 60, timeout=15)
    assert len({s.span_id for s in received.spans if s.name == "app.step"}) == 60
