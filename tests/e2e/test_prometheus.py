"""A real Prometheus scrapes an app under aiotel-run (OTEL_METRICS_EXPORTER=prometheus), and
PromQL returns each function's call count and error count."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.parse
import urllib.request

import pytest

from conftest import PROMETHEUS, ROOT, command, get_json, query, stop, wait_until
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None and os.environ.get("CI") != "true",
    reason="the prometheus server is not installed (.ci/run installs Debian's package)",
)

APP = textwrap.dedent(
    '''\
    import sys, time


    # AI-generated: Claude, 2025-01-01
    def parse(text):
        return int(text)


    # AI-generated: Claude, 2025-01-01
    def lenient(text):
        try:
            return int(text)
        except ValueError:
            return None


    def old_double(n):
        return n * 2


    # AI-generated: Claude, 2025-01-01, replaces: old_double
    def double(n):
        return n + n


    for text in ["1", "2", "x", "3", "y"]:
        double(len(text))
        lenient(text)
        try:
            parse(text)
        except ValueError:
            pass
    print("ready", flush=True)
    sys.stdin.read()  # serve /metrics until the test closes stdin
    '''
)



def dashboard_queries():
    path = os.path.join(ROOT,
                        "collector-config", "grafana", "dashboards", "ai-generated-code.json")
    with open(path) as fh:
        dashboard = json.load(fh)
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in (("$__rate_interval", "1m"), ("$__range", "1h"), ("$service", ".*"),
                                    ("$tool", ".*"), ("$function", ".*")):
                expr = expr.replace(variable, value)
            yield panel["title"], expr


def dashboard_variables():
    path = os.path.join(ROOT,
                        "collector-config", "grafana", "dashboards", "ai-generated-code.json")
    with open(path) as fh:
        dashboard = json.load(fh)
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
        assert match, variable["query"]["query"]
        yield match.group(1).replace("$service", ".*").replace("$tool", ".*"), match.group(2)


def alert_rules():
    import yaml

    path = os.path.join(ROOT, "collector-config", "alert-rules.yml")
    with open(path) as fh:
        return [rule for group in yaml.safe_load(fh)["groups"] for rule in group["rules"]]


def test_prometheus_scrapes_call_and_error_counts(prometheus, tmp_path):
    base, app_port = prometheus
    (tmp_path / "app.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_"))}
    env.update({"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_TRACES_EXPORTER": "none",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT": str(app_port),
                "AIOTEL_CACHE_DIR": str(tmp_path / "c"), "AIOTEL_CAPTURE_ARGS": "shape",
                "AIOTEL_SHADOW": "1"})
    app = subprocess.Popen(command("aiotel-run") + [sys.executable, "app.py"], cwd=str(tmp_path), env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert app.stdout.readline() == "ready\n"
        calls = wait_until(lambda: query(base, 'sum by (code_function_name) (aiotel_function_duration_seconds_count)'))
        assert calls == {(("code_function_name", "app.parse"),): 5.0, (("code_function_name", "app.lenient"),): 5.0,
                         (("code_function_name", "app.double"),): 5.0}  # its shadow arm, app.old_double, is no call
        errors = query(base, 'sum by (code_function_name, error_type) (aiotel_function_duration_seconds_count{error_type!=""})')
        assert errors == {(("code_function_name", "app.parse"), ("error_type", "ValueError")): 2.0}
        p95 = query(base, 'histogram_quantile(0.95, sum by (le) (aiotel_function_duration_seconds_bucket))')
        assert list(p95.values())[0] > 0
        # the silent signals and input shapes, under the names the dashboard and alert (d) use
        assert query(base, 'sum by (code_function_name, code_line_number, exception_type) (aiotel_function_fallbacks_total)') == {
            (("code_function_name", "app.lenient"), ("code_line_number", "13"), ("exception_type", "ValueError")): 2.0}
        assert query(base, 'sum by (code_line_number) (aiotel_function_empty_results_total)') == {(("code_line_number", "14"),): 2.0}
        assert query(base, 'sum by (code_function_name, aiotel_input_type) (aiotel_function_input_types_total)') == {
            (("aiotel_input_type", "str"), ("code_function_name", "app.lenient")): 5.0,
            (("aiotel_input_type", "str"), ("code_function_name", "app.parse")): 5.0,
            (("aiotel_input_type", "int"), ("code_function_name", "app.double")): 5.0}  # not app.old_double: a shadow arm
        assert query(base, 'sum(aiotel_function_input_size_sum{code_function_name="app.parse"})') == {(): 5.0}
        # failed calls by the shape of their input ("x", "y": a str of one character)
        assert query(base, 'sum by (code_function_name, error_type, aiotel_input_parameter, aiotel_input_type, '
                           'aiotel_input_length) (aiotel_function_input_errors_total)') == {
            (("aiotel_input_length", "1"), ("aiotel_input_parameter", "text"), ("aiotel_input_type", "str"),
             ("code_function_name", "app.parse"), ("error_type", "ValueError")): 2.0}
        # the experiment (AIOTEL_SHADOW=1), under the names the dashboard and alert (f) use
        assert query(base, 'sum by (aiotel_experiment_candidate, aiotel_experiment_control) (aiotel_experiment_calls_total)') == {
            (("aiotel_experiment_candidate", "app.double"), ("aiotel_experiment_control", "app.old_double")): 5.0}
        assert query(base, 'sum by (aiotel_experiment_arm) (aiotel_experiment_arm_duration_seconds_count)') == {
            (("aiotel_experiment_arm", "candidate"),): 5.0, (("aiotel_experiment_arm", "control"),): 5.0}
        assert query(base, 'aiotel_experiment_mismatches_total') == {}
        # every alert expression runs without error on the series aiotel-run produced
        # (no data yet: the windows need hours of history; promtool tests cover firing)
        for rule in alert_rules():
            query(base, rule["expr"])
        # every dashboard expression too, with Grafana's variables as "All"; the per-function,
        # per-tool and per-version panels have data already
        for title, expr in dashboard_queries():
            result = query(base, expr)
            if re.match(r"(Calls per second|p95 latency|Error rate|Functions|Fallbacks per call|None results"
                        r"|Argument types|p95 argument length|Experiments)", title) and "mismatches_total" not in expr:
                # (the pair agrees on every call: no mismatch series exists)
                # rate() needs two scrapes inside its window
                assert result or wait_until(lambda: query(base, expr), timeout=20), title
        # and the dashboard's variables, label_values(selector, label), through the labels API
        for selector, label in dashboard_variables():
            data = get_json(f"{base}/api/v1/label/{label}/values?{urllib.parse.urlencode({'match[]': selector})}")
            assert data is not None and data["status"] == "success", (selector, label, data)
            if label == "code_function_name":
                assert data["data"] == ["app.double", "app.lenient", "app.parse"]
    finally:
        app.stdin.close()
        app.wait(timeout=20)
    assert app.returncode == 0, app.stderr.read()


def test_prometheus_scrapes_each_functions_llm_calls_and_tokens(prometheus, tmp_path):
    """The LLM rollup under the names the dashboard uses, from the real openai client."""
    pytest.importorskip("openinference.instrumentation.openai")
    base, app_port = prometheus
    sample = os.path.join(ROOT, "tests", "samples", "llm")
    server = subprocess.Popen([sys.executable, os.path.join(sample, "fake_openai.py")], stdout=subprocess.PIPE, text=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_"))}
    env.update({"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT": str(app_port),
                "AIOTEL_CACHE_DIR": str(tmp_path / "c"),
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "opentelemetry-instrumentation-openai-v2"})
    app = None
    try:
        env["FAKE_OPENAI_URL"] = f"http://127.0.0.1:{int(server.stdout.readline())}/v1"
        app = subprocess.Popen(command("aiotel-run") + [sys.executable, os.path.join(sample, "app.py"), "calls", "serve"],
                               cwd=str(tmp_path), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        assert app.stdout.readline() == "ready\n"
        tokens = wait_until(lambda: query(base, "sum by (code_function_name, gen_ai_token_type) "
                                                "(aiotel_function_gen_ai_token_usage_sum)"))
        assert tokens == {
            (("code_function_name", "app.summarize"), ("gen_ai_token_type", "input")): 33.0,
            (("code_function_name", "app.summarize"), ("gen_ai_token_type", "output")): 21.0,
            (("code_function_name", "app.classify"), ("gen_ai_token_type", "input")): 200.0,
            (("code_function_name", "app.classify"), ("gen_ai_token_type", "output")): 80.0,
            (("code_function_name", "app.inner"), ("gen_ai_token_type", "input")): 11.0,
            (("code_function_name", "app.inner"), ("gen_ai_token_type", "output")): 7.0}
        calls = query(base, "sum by (code_function_name, gen_ai_request_model, gen_ai_provider_name) "
                            "(aiotel_function_gen_ai_operation_duration_seconds_count)")
        assert calls == {
            (("code_function_name", "app.classify"), ("gen_ai_provider_name", "openai"), ("gen_ai_request_model", "m-large")): 2.0,
            (("code_function_name", "app.inner"), ("gen_ai_provider_name", "openai"), ("gen_ai_request_model", "m-small")): 1.0,
            (("code_function_name", "app.summarize"), ("gen_ai_provider_name", "openai"), ("gen_ai_request_model", "m-small")): 3.0}
        for title, expr in dashboard_queries():
            if title.startswith("LLM"):  # the dashboard's LLM panels have data (rate() needs two scrapes)
                assert query(base, expr) or wait_until(lambda: query(base, expr), timeout=30), title
        # a fleet's report from Prometheus has the same LLM numbers as the store's
        fleet = subprocess.run(command("aiotel") + ["report", "--prometheus", base, "--json"], cwd=str(tmp_path),
                               capture_output=True, text=True, timeout=60)
        assert fleet.returncode == 0, fleet.stderr
        llm = {f["function"]: [(c["model"], c["calls"], c["input_tokens"], c["output_tokens"]) for c in f["llm_calls"]]
               for f in json.loads(fleet.stdout)["functions"]}
        assert llm == {"app.summarize": [("m-small", 3, 33, 21)], "app.classify": [("m-large", 2, 200, 80)],
                       "app.inner": [("m-small", 1, 11, 7)], "app.outer": []}
    finally:
        if app is not None:
            app.stdin.close()
            app.wait(timeout=20)
        stop(server)
    assert app.returncode == 0, app.stderr.read()
