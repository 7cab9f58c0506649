"""`aiotel-run` as a user runs it, checked on the wire: a sample app in a fresh interpreter,
from another directory, exporting OTLP to a receiver that decodes real protobuf."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import time

import pytest

from conftest import SAMPLES, aiotel_run, command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

SAMPLE = os.path.join(SAMPLES, "shopapp")
MARKED = {"main.run", "shop.cart.Cart.total", "shop.cart.subtotal", "shop.cart.batches"}
SPAN_ATTRIBUTES = {
    "code.function.name",
    "code.file.path",
    "code.line.number",
    "aiotel.provenance.tool",
    "aiotel.provenance.source",
    "aiotel.source.sha256",
    "aiotel.span.reason",
    "aiotel.memory.rss_delta",  # the change of resident memory across the recorded call
}


@pytest.fixture
def app(tmp_path):
    target = tmp_path / "shopapp"
    shutil.copytree(SAMPLE, target)
    return target


def by_name(spans):
    found = {}
    for span in spans:
        assert span.name not in found, f"one span expected for {span.name}"
        found[span.name] = span
    return found


def test_spans_and_metrics_arrive_with_the_contract_names(app, receiver, tmp_path):
    plain = run([sys.executable, "main.py"], cwd=str(app))
    result = aiotel_run(["python", "main.py"], app, telemetry_env(receiver, tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr) == (
        0,
        "total 3.6\nbatches [[1, 2], [3]]\n",
        "",
    )
    got = receiver.received
    assert got.wait(lambda r: {s.name for s in r.spans} >= MARKED and r.points), got.span_names()
    spans = by_name(got.spans)
    assert set(spans) == MARKED  # nothing for Cart.__init__ or validate, which are not marked

    total = spans["shop.cart.Cart.total"]
    assert total.kind == 1 and total.scope == "aiotel"  # SPAN_KIND_INTERNAL
    digest = total.attributes.pop("aiotel.source.sha256")
    source = (app / "shop" / "cart.py").read_bytes().splitlines(keepends=True)
    assert digest == hashlib.sha256(b"".join(source[11:15])).hexdigest()  # lines 12-15: the def to its return
    assert isinstance(total.attributes.pop("aiotel.memory.rss_delta"), int)
    # with OpenInference installed (the test extra, Python 3.10+), Phoenix's span kind: a step
    openinference = importlib.util.find_spec("openinference") is not None
    assert total.attributes.pop("openinference.span.kind", None) == ("CHAIN" if openinference else None)
    for span in spans.values():
        span.attributes.pop("openinference.span.kind", None)
    assert total.attributes == {
        "code.function.name": "shop.cart.Cart.total",
        "code.file.path": str(app / "shop" / "cart.py"),
        "code.line.number": 12,
        "aiotel.provenance.tool": "Claude",
        "aiotel.provenance.date": "2025-03-01",
        "aiotel.provenance.prompt": "sum a cart with a discount",
        "aiotel.provenance.source": "comment",
        "aiotel.provenance.ticket": "SHOP-12",
        "aiotel.span.reason": "in_trace",  # inside main.run's trace
    }
    assert set(spans["shop.cart.subtotal"].attributes) == SPAN_ATTRIBUTES | {"aiotel.provenance.date"}
    assert set(spans["shop.cart.batches"].attributes) == SPAN_ATTRIBUTES
    assert total.resource["telemetry.distro.name"] == "aiotel"

    # nesting: run -> Cart.total -> subtotal, and the generator is a child of run
    root = spans["main.run"]
    assert root.parent_span_id == ""
    assert total.parent_span_id == root.span_id
    assert spans["shop.cart.subtotal"].parent_span_id == total.span_id
    assert spans["shop.cart.batches"].parent_span_id == root.span_id
    assert len({s.trace_id for s in spans.values()}) == 1
    assert all(s.status_code == 0 for s in spans.values())  # UNSET

    # no SDK self-metrics: the durations, and the memory of the recorded calls
    assert {p.metric for p in got.points} == {"aiotel.function.duration", "aiotel.function.memory.rss_delta"}
    points = got.latest_points("aiotel.function.duration")
    assert {p.attributes["code.function.name"] for p in points.values()} == MARKED
    for point in points.values():
        assert (point.kind, point.unit, point.count, point.scope) == ("histogram", "s", 1, "aiotel")
        assert set(point.attributes) == {"code.function.name", "aiotel.provenance.tool", "code.file.path"}
        assert sum(point.bucket_counts) == 1 and len(point.bucket_counts) == len(point.explicit_bounds) + 1
        assert 0 < point.sum < 5


def test_failed_call_gets_error_status_event_and_error_type(app, http_receiver, tmp_path):
    plain = run([sys.executable, "main.py", "fail"], cwd=str(app))
    result = aiotel_run(["python", "main.py", "fail"], app, telemetry_env(http_receiver, tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert result.returncode == 1 and "ValueError: negative price -1" in result.stderr
    got = http_receiver.received
    assert got.wait(lambda r: len(r.spans) >= 6 and r.points)
    failed = [s for s in got.spans if s.status_code == 2]  # STATUS_CODE_ERROR
    assert sorted(s.name for s in failed) == ["main.run", "shop.cart.Cart.total", "shop.cart.subtotal"]
    for span in failed:
        assert span.attributes["error.type"] == "ValueError"
        assert span.status_message == "ValueError: negative price -1"
        (event,) = span.events
        assert event["name"] == "exception" and event["exception.type"] == "ValueError"
    errors = {
        p.attributes["code.function.name"]: p.count
        for p in got.latest_points("aiotel.function.duration").values()
        if p.attributes.get("error.type") == "ValueError"
    }
    assert errors == {"main.run": 1, "shop.cart.Cart.total": 1, "shop.cart.subtotal": 1}


def test_unsampled_failure_still_gets_a_span_with_its_true_start(app, http_receiver, tmp_path):
    env = telemetry_env(http_receiver, tmp_path, OTEL_TRACES_SAMPLER="always_off")
    before = time.time_ns()
    result = aiotel_run(["python", "main.py", "fail"], app, env)
    assert result.returncode == 1
    got = http_receiver.received
    assert got.wait(lambda r: len(r.spans) >= 3 and r.points)
    time.sleep(0.3)
    assert all(s.status_code == 2 for s in got.spans)  # the successful calls were not sampled
    spans = by_name(got.spans)
    assert set(spans) == {"main.run", "shop.cart.Cart.total", "shop.cart.subtotal"}
    run_span, total = spans["main.run"], spans["shop.cart.Cart.total"]
    # created at the end, but dated from the call's start: the outer call started first
    assert before < run_span.start < total.start <= total.end <= run_span.end
    # the sampler dropped the caller's trace: each error span starts its own trace
    assert total.parent_span_id == "" and total.trace_id != run_span.trace_id
    counts = {p.attributes["code.function.name"]: p.count for p in got.latest_points("aiotel.function.duration").values()}
    assert counts["shop.cart.batches"] == 1  # metrics count every call, sampled or not


def test_the_trace_budget_caps_spans_but_not_counts(app, http_receiver, tmp_path):
    # every call runs inside main.run's recorded trace: the budget, not the rate cap, bounds it
    env = telemetry_env(http_receiver, tmp_path, AIOTEL_SPAN_RATE_LIMIT="2", AIOTEL_TRACE_SPAN_BUDGET="2")
    result = aiotel_run(["python", "main.py", "many"], app, env)
    assert result.returncode == 0 and "sum 100.0" in result.stdout
    got = http_receiver.received
    assert got.wait(lambda r: r.points and any(s.name == "main.run" for s in r.spans))
    time.sleep(0.3)
    totals = [s for s in got.spans if s.name == "shop.cart.Cart.total"]
    assert len(totals) == 2
    (run_span,) = [s for s in got.spans if s.name == "main.run"]
    unrecorded = dict(zip(run_span.attributes["aiotel.span.unrecorded.functions"],
                          run_span.attributes["aiotel.span.unrecorded.calls"]))
    assert unrecorded["shop.cart.Cart.total"] == 99
    ok = [
        p
        for p in got.latest_points("aiotel.function.duration").values()
        if p.attributes["code.function.name"] == "shop.cart.Cart.total" and "error.type" not in p.attributes
    ]
    assert [p.count for p in ok] == [101]


def test_python_dash_m_is_instrumented(app, http_receiver, tmp_path):
    plain = run([sys.executable, "-m", "shop"], cwd=str(app))
    result = aiotel_run(["python", "-m", "shop"], app, telemetry_env(http_receiver, tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert result.stdout == "total 3.5\n"
    assert http_receiver.received.wait(lambda r: {"shop.cart.Cart.total", "shop.cart.subtotal"} <= {s.name for s in r.spans})


@pytest.mark.parametrize(
    "suite, code, spans",
    [
        # the marked fixture, registered by pytest at definition, is instrumented too
        ("test_cart.py", 0, {"shop.cart.Cart.total", "shop.testing.cart"}),
        ("test_broken.py", 1, {"shop.cart.Cart.total"}),
    ],
)
def test_console_script_pytest_is_instrumented(app, http_receiver, tmp_path, suite, code, spans):
    pytest_args = ["-q", "-p", "no:cacheprovider", suite]
    plain = run([os.path.join(os.path.dirname(sys.executable), "pytest")] + pytest_args, cwd=str(app))
    # as in an activated virtualenv: the console script is found on PATH
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    result = aiotel_run(["pytest"] + pytest_args, app, telemetry_env(http_receiver, tmp_path, PATH=path))
    assert [line for line in result.stderr.splitlines() if line.startswith("aiotel")] == []
    assert plain.returncode == result.returncode == code
    assert result.stdout.splitlines()[-1].split(" in ")[0] == plain.stdout.splitlines()[-1].split(" in ")[0]
    assert http_receiver.received.wait(lambda r: spans <= {s.name for s in r.spans})


def test_flask_route_and_click_command_register_the_instrumented_function(tmp_path, http_receiver):
    target = tmp_path / "webapp"
    shutil.copytree(os.path.join(SAMPLES, "webapp"), target)
    plain = run([sys.executable, "app.py"], cwd=str(target))
    result = aiotel_run(["python", "app.py"], target, telemetry_env(http_receiver, tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert result.stdout.startswith("registered True Price for a quantity. price\n200 {'total': 12}\n500\n")
    assert "ValueError: too many" in result.stderr  # Flask logged the traceback the same way
    got = http_receiver.received
    assert got.wait(lambda r: {"app.price", "app.greet"} <= {s.name for s in r.spans})
    prices = [s for s in got.spans if s.name == "app.price"]
    assert sorted(s.status_code for s in prices) == [0, 2]  # one ok, one ValueError


@pytest.mark.parametrize("mode, code", [("ok", 0), ("fail", 1), ("exit3", 3)])
def test_exit_codes_and_output_are_unchanged(app, tmp_path, mode, code):
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    plain = run([sys.executable, "main.py", mode], cwd=str(app))
    result = aiotel_run(["python", "main.py", mode], app, env)
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert result.returncode == code


def test_collector_down_changes_nothing_but_one_line(app, tmp_path):
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # discard port: nothing listens
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        "AIOTEL_SHUTDOWN_TIMEOUT": "2",
        "AIOTEL_CACHE_DIR": str(tmp_path / "c"),
    }
    plain = run([sys.executable, "main.py"], cwd=str(app))
    started = time.monotonic()
    result = aiotel_run(["python", "main.py"], app, env)
    elapsed = time.monotonic() - started
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout)
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 3 and all(line.startswith("aiotel: ") for line in lines), result.stderr
    assert elapsed < 30  # bounded by the shutdown timeout, not by exporter retries


def test_ai_function_span_sits_in_the_request_span_and_holds_the_outgoing_call(tmp_path, http_receiver):
    target = tmp_path / "webapp"
    shutil.copytree(os.path.join(SAMPLES, "webapp"), target)
    plain = run([sys.executable, "service.py"], cwd=str(target))
    result = aiotel_run(["python", "service.py"], target, telemetry_env(http_receiver, tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert result.stdout == "{'qty': 3, 'total': 7.5}\n"
    got = http_receiver.received
    assert got.wait(lambda r: len(r.spans) >= 3)
    ai = next(s for s in got.spans if s.name == "service.fetch_quote")
    request = next(s for s in got.spans if s.span_id == ai.parent_span_id)
    outgoing = [s for s in got.spans if s.parent_span_id == ai.span_id]
    assert request.kind == 2 and request.scope.startswith("opentelemetry.instrumentation.flask")  # SERVER
    assert [s.kind for s in outgoing] == [3] and outgoing[0].attributes.get("http.request.method", outgoing[0].attributes.get("http.method")) == "GET"  # CLIENT


def test_library_instrumentation_can_be_switched_off(tmp_path, http_receiver):
    target = tmp_path / "webapp"
    shutil.copytree(os.path.join(SAMPLES, "webapp"), target)
    env = telemetry_env(http_receiver, tmp_path, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="flask")
    assert aiotel_run(["python", "service.py"], target, env).returncode == 0
    got = http_receiver.received
    assert got.wait(lambda r: "service.fetch_quote" in {s.name for s in r.spans})
    ai = next(s for s in got.spans if s.name == "service.fetch_quote")
    assert ai.parent_span_id == ""  # no request span around it: flask was not instrumented
    assert any(s.parent_span_id == ai.span_id for s in got.spans)  # urllib still was


def test_a_library_is_instrumented_on_its_first_import_not_at_start_up(tmp_path):
    """Loading an instrumentor imports its library: a program that never imports Flask must
    not pay for it, and one that does gets the instrumented class from `from flask import`."""
    probe = ("import sys; print('flask' in sys.modules); from flask import Flask; import flask; "
             "print(Flask.__name__, Flask is flask.Flask)")
    plain = run([sys.executable, "-c", probe], cwd=str(tmp_path))
    result = run(command("aiotel-run") + ["python", "-c", probe], cwd=str(tmp_path),
                 env={"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"})
    assert plain.stdout == "False\nFlask True\n"
    assert (result.returncode, result.stdout, result.stderr) == (0, "False\n_InstrumentedFlask True\n", "")


def test_installed_instrumentations_are_remembered_between_starts(tmp_path):
    """Reading entry points scans every distribution; the second start reads the cache."""
    probe = ("import sys; print('importlib.metadata' in sys.modules or 'importlib_metadata' in sys.modules); "
             "from flask import Flask; print(Flask.__name__)")  # on 3.9, the backport the instrumentations use
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    first = run(command("aiotel-run") + ["python", "-c", probe], cwd=str(tmp_path), env=env)
    second = run(command("aiotel-run") + ["python", "-c", probe], cwd=str(tmp_path), env=env)
    assert first.stdout == "True\n_InstrumentedFlask\n" and first.stderr == ""
    assert second.stdout == "False\n_InstrumentedFlask\n" and second.stderr == ""
    # a disabled one stays disabled when it comes from the cache
    third = run(command("aiotel-run") + ["python", "-c", probe], cwd=str(tmp_path),
                env=dict(env, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="flask"))
    assert third.stdout == "False\nFlask\n"


@pytest.mark.parametrize("variables, prompt", [
    ({"AIOTEL_PROMPT_MAX_LENGTH": "8"}, "sum a ca"),
    ({"AIOTEL_CAPTURE_PROMPT": "false"}, None),
])
def test_prompt_is_truncated_or_left_out_as_configured(app, http_receiver, tmp_path, variables, prompt):
    result = aiotel_run(["python", "main.py"], app, telemetry_env(http_receiver, tmp_path, **variables))
    assert result.returncode == 0 and result.stderr == ""
    got = http_receiver.received
    assert got.wait(lambda r: "shop.cart.Cart.total" in {s.name for s in r.spans})
    total = next(s for s in got.spans if s.name == "shop.cart.Cart.total")
    assert total.attributes.get("aiotel.provenance.prompt") == prompt
    assert total.attributes["aiotel.provenance.ticket"] == "SHOP-12"  # other fields stay
