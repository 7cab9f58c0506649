"""Complete traces, checked on the wire: one sampling decision per trace, other
instrumentations' spans tied to the AI function that made them, hot loops bounded and
counted, slow calls recorded, and the program's own ``random`` stream untouched."""

from __future__ import annotations

import collections
import os
import shutil
import sys

import pytest

from conftest import SAMPLES, command, free_port, run, telemetry_env

pytestmark = pytest.mark.instrumentation

SAMPLE = os.path.join(SAMPLES, "traces")


@pytest.fixture
def app(tmp_path):
    target = tmp_path / "traces"
    shutil.copytree(SAMPLE, target)
    return target


def traced(app, mode, receiver, tmp_path, **env):
    result = run(command("aiotel-run") + ["python", "app.py", mode], cwd=str(app),
                 env=telemetry_env(receiver, tmp_path, **env))
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result


def children(spans):
    found = collections.defaultdict(list)
    for span in spans:
        found[span.parent_span_id].append(span)
    return found


def test_traces_under_a_request_span_are_whole_and_client_spans_name_their_function(app, receiver, tmp_path):
    # a cap of one trace per function: inside the framework's recorded requests it must not matter
    traced(app, "requests", receiver, tmp_path, AIOTEL_SPAN_BURST="1", AIOTEL_SPAN_RATE_LIMIT="0.001")
    got = receiver.received
    assert got.wait(lambda r: sum(s.name == "client.call" for s in r.spans) >= 300), got.span_names()
    spans = got.spans
    below = children(spans)
    requests = [s for s in spans if s.name == "GET /"]
    assert len(requests) == 60
    for request in requests:
        steps = below[request.span_id]
        assert [s.name for s in steps] == ["app.step"] * 5
        for step in steps:
            assert step.attributes["aiotel.span.reason"] == "in_trace"
            (call,) = below[step.span_id]
            assert call.name == "client.call" and call.trace_id == request.trace_id
            assert call.attributes["aiotel.function.name"] == "app.step"
            assert call.attributes["aiotel.function.tool"] == "Claude"
            assert call.attributes["aiotel.function.file"] == str(app / "app.py")
            assert call.attributes["aiotel.function.line"] == 22


def test_traces_under_an_aiotel_root_are_whole_and_unrecorded_calls_still_name_the_function(app, receiver, tmp_path):
    traced(app, "handlers", receiver, tmp_path, AIOTEL_SPAN_BURST="10", AIOTEL_SPAN_RATE_LIMIT="0.001",
           AIOTEL_TRACE_RATE_LIMIT="0")  # no per-process limit on traces: the cap alone decides
    got = receiver.received
    assert got.wait(lambda r: sum(s.name == "client.call" for s in r.spans) >= 300), got.span_names()
    spans = got.spans
    below = children(spans)
    handlers = [s for s in spans if s.name == "app.handler"]
    assert len(handlers) == 10  # the cap: 10 of 60 handler calls start a trace
    for handler in handlers:
        assert handler.attributes["aiotel.span.reason"] == "root" and handler.parent_span_id == ""
        steps = below[handler.span_id]
        assert [s.name for s in steps] == ["app.step"] * 5  # every step of a recorded trace
        assert all(len(below[s.span_id]) == 1 for s in steps)
    # the 50 handler calls without a span: their first 10 steps start traces of their own
    # (step's own cap), the other 240 client spans are roots, as without aiotel, and say
    # which AI function made them
    root_steps = [s for s in spans if s.name == "app.step" and s.parent_span_id == ""]
    assert len(root_steps) == 10
    calls = [s for s in spans if s.name == "client.call"]
    assert len(calls) == 300
    assert all(c.attributes["aiotel.function.name"] == "app.step" for c in calls)
    assert sum(c.parent_span_id == "" for c in calls) == 240


def test_new_traces_are_limited_per_process_and_an_unrecorded_request_gets_no_span(app, receiver, tmp_path):
    # 60 requests, 20 traces a second allowed, a second's worth at once
    traced(app, "requests", receiver, tmp_path, AIOTEL_TRACE_RATE_LIMIT="20")
    got = receiver.received
    assert got.wait(lambda r: sum(s.name == "GET /" for s in r.spans) >= 20), got.span_names()
    spans = got.spans
    recorded = [s for s in spans if s.name == "GET /"]
    requests = {s.span_id for s in recorded}
    # the burst, plus what refilled while they ran (however slow the machine: measured
    # from the recorded requests' own start times), and never all 60 unless that slow
    ran_for = (max(s.start for s in recorded) - min(s.start for s in recorded)) / 1e9
    assert 20 <= len(requests) <= 20 + 20 * ran_for + 1, (len(requests), ran_for)
    # the other requests were decided not recorded, and nothing below them became a root
    steps = [s for s in spans if s.name == "app.step"]
    assert len(steps) == 5 * len(requests) and all(s.parent_span_id in requests for s in steps)
    assert sum(s.name == "client.call" for s in spans) == len(steps)


def test_a_sampler_the_user_set_is_obeyed_as_it_is(app, receiver, tmp_path):
    traced(app, "requests", receiver, tmp_path, OTEL_TRACES_SAMPLER="parentbased_always_on",
           AIOTEL_TRACE_RATE_LIMIT="20")
    got = receiver.received
    assert got.wait(lambda r: sum(s.name == "client.call" for s in r.spans) >= 300), got.span_names()
    assert sum(s.name == "GET /" for s in got.spans) == 60


def test_forty_calls_from_eight_threads_give_forty_spans(app, receiver, tmp_path):
    traced(app, "threads", receiver, tmp_path)
    got = receiver.received
    assert got.wait(lambda r: sum(s.name == "app.tick" for s in r.spans) >= 40), got.span_names()
    assert sum(s.name == "app.tick" for s in got.spans) == 40


def test_a_hot_loop_stays_within_the_trace_budget_and_is_counted(app, receiver, tmp_path):
    traced(app, "budget", receiver, tmp_path, AIOTEL_TRACE_SPAN_BUDGET="1000", OTEL_BSP_MAX_QUEUE_SIZE="10000")
    got = receiver.received

    def arrived(r):
        return any(s.name == "app.outer" for s in r.spans) and any(s.name == "GET /bulk" for s in r.spans) and \
            r.latest_points("aiotel.function.spans_over_budget")

    assert got.wait(arrived), got.span_names()
    (outer,) = [s for s in got.spans if s.name == "app.outer"]
    (bulk,) = [s for s in got.spans if s.name == "GET /bulk"]
    helpers = [s for s in got.spans if s.name == "app.helper"]
    assert sum(s.trace_id == outer.trace_id for s in helpers) == 1000
    assert sum(s.trace_id == bulk.trace_id for s in helpers) == 1000
    # 19 000 of outer's 20 000 helper calls have no span: said on outer, before it ended
    assert outer.attributes["aiotel.span.unrecorded.functions"] == ["app.helper"]
    assert outer.attributes["aiotel.span.unrecorded.calls"] == [19_000]
    # every call left out, in both traces, is counted by the metric
    (point,) = got.latest_points("aiotel.function.spans_over_budget").values()
    assert point.attributes["code.function.name"] == "app.helper" and point.sum == 19_000 + 500
    (calls,) = [p for p in got.latest_points("aiotel.function.duration").values()
                if p.attributes["code.function.name"] == "app.helper"]
    assert calls.count == 21_500


def test_a_slow_call_without_a_span_gets_one_with_its_true_start(app, receiver, tmp_path):
    # one trace for the function, then the cap is spent: 300 fast calls and one of 0.5 s
    traced(app, "slow", receiver, tmp_path, AIOTEL_SPAN_BURST="1", AIOTEL_SPAN_RATE_LIMIT="0.001")
    got = receiver.received
    assert got.wait(lambda r: sum(s.name == "app.work" for s in r.spans) >= 2), got.span_names()
    spans = [s for s in got.spans if s.name == "app.work"]
    reasons = sorted(s.attributes["aiotel.span.reason"] for s in spans)
    assert reasons == ["root", "slow"]
    (slow,) = [s for s in spans if s.attributes["aiotel.span.reason"] == "slow"]
    assert 0.5e9 <= slow.end - slow.start < 1.5e9
    assert slow.parent_span_id == "" and slow.status_code == 0


def test_slow_calls_are_not_recorded_when_the_threshold_is_off(app, receiver, tmp_path):
    traced(app, "slow", receiver, tmp_path, AIOTEL_SPAN_BURST="1", AIOTEL_SPAN_RATE_LIMIT="0.001",
           AIOTEL_SLOW_THRESHOLD="off")
    got = receiver.received
    assert got.wait(lambda r: any(p.metric == "aiotel.function.duration" for p in r.points))
    assert [s.attributes["aiotel.span.reason"] for s in got.spans if s.name == "app.work"] == ["root"]


@pytest.mark.parametrize("collector", ["up", "down"])
def test_a_seeded_random_stream_is_the_same_with_aiotel(app, tmp_path, collector, http_receiver):
    """Span ids, exporter retry jitter: none of it may draw from the program's ``random``."""
    plain = run([sys.executable, "app.py", "random", "1.5"], cwd=str(app))
    env = telemetry_env(http_receiver, tmp_path, OTEL_BSP_SCHEDULE_DELAY="50", AIOTEL_SPAN_BURST="1000")
    if collector == "down":  # every export fails and is retried after a random back-off
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
        env["AIOTEL_SHUTDOWN_TIMEOUT"] = "1"
    result = run(command("aiotel-run") + ["python", "app.py", "random", "1.5"], cwd=str(app), env=env)
    assert plain.returncode == result.returncode == 0, result.stderr
    assert result.stdout == plain.stdout and len(plain.stdout.split()) == 21
    if collector == "up":
        assert http_receiver.received.wait(lambda r: sum(s.name == "app.handler" for s in r.spans) == 20)
