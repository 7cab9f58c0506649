"""A real trace back-end: Arize Phoenix (its own virtualenv, pinned in .ci/run) receives the
spans of a sample app under aiotel-run; they are read back through Phoenix's REST API with
their provenance attributes and parent/child links intact."""

from __future__ import annotations

import json
import sys
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import ROOT, SAMPLES, command, free_port, run, stop

PHOENIX = os.environ.get("AIOTEL_TEST_PHOENIX") or os.path.join(ROOT, ".venv-phoenix", "bin", "phoenix")
SAMPLE = os.path.join(SAMPLES, "shopapp")

pytestmark = [
    pytest.mark.skipif(
        not os.path.exists(PHOENIX) and os.environ.get("CI") != "true",
        reason="Phoenix is not installed (.ci/run puts it in .venv-phoenix)",
    )
]



def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


@pytest.fixture
def phoenix(tmp_path):
    assert os.path.exists(PHOENIX), f"Phoenix not found at {PHOENIX}: run .ci/run or set AIOTEL_TEST_PHOENIX"
    port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_", "PHOENIX_"))}
    env.update({"PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(grpc_port), "PHOENIX_HOST": "127.0.0.1",
                "PHOENIX_WORKING_DIR": str(tmp_path / "phoenix"), "PHOENIX_TELEMETRY_ENABLED": "false"})
    log = open(tmp_path / "phoenix.log", "wb")
    process = subprocess.Popen([PHOENIX, "serve"], env=env, cwd=str(tmp_path), stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError(f"Phoenix did not start: {(tmp_path / 'phoenix.log').read_text()[-2000:]}")
        yield base
    finally:
        stop(process, timeout=15)
        log.close()


def test_spans_reach_phoenix_with_provenance_and_links(phoenix, tmp_path):
    app = tmp_path / "shopapp"
    shutil.copytree(SAMPLE, app)
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{phoenix}/v1/traces", "OTEL_TRACES_EXPORTER": "otlp",
           "OTEL_METRICS_EXPORTER": "none", "OTEL_SERVICE_NAME": "shop", "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    result = run(command("aiotel-run") + ["python", "main.py", "fail"], cwd=str(app), env=env)
    assert result.returncode == 1 and "ValueError: negative price -1" in result.stderr
    wanted = {"main.run", "shop.cart.Cart.total", "shop.cart.subtotal", "shop.cart.batches"}

    spans = []
    deadline = time.monotonic() + 60  # ingestion is asynchronous: poll
    while time.monotonic() < deadline:
        data = get_json(f"{phoenix}/v1/projects/default/spans?limit=100")
        spans = data["data"] if data else []
        if wanted <= {s["name"] for s in spans} and len(spans) >= 6:
            break
        time.sleep(0.5)
    assert wanted <= {s["name"] for s in spans}, [s["name"] for s in spans]

    by_id = {s["context"]["span_id"]: s for s in spans}
    totals = [s for s in spans if s["name"] == "shop.cart.Cart.total"]
    ok = next(s for s in totals if s["status_code"] != "ERROR")
    assert ok["attributes"]["aiotel.provenance.tool"] == "Claude"
    assert ok["attributes"]["aiotel.provenance.prompt"] == "sum a cart with a discount"
    assert ok["attributes"]["aiotel.provenance.ticket"] == "SHOP-12"
    assert ok["attributes"]["code.file.path"] == str(app / "shop" / "cart.py")
    assert by_id[ok["parent_id"]]["name"] == "main.run"
    subtotal = next(s for s in spans if s["name"] == "shop.cart.subtotal" and s["parent_id"] == ok["context"]["span_id"])
    assert subtotal["context"]["trace_id"] == ok["context"]["trace_id"]
    failed = next(s for s in totals if s["status_code"] == "ERROR")
    assert failed["attributes"]["error.type"] == "ValueError"
    assert [e["name"] for e in failed["events"]] == ["exception"]


def chromium_dom(url, tmp_path, screenshot=None):
    """The page as headless Chromium renders it (its scripts run), and optionally a PNG."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (.ci/run installs it)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=15000",
             "--window-size=1400,900"]
    if screenshot:
        subprocess.run([chromium, *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
    return subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout


def test_llm_calls_show_in_phoenix_as_steps_of_the_ai_function_that_made_them(phoenix, tmp_path):
    """OpenInference's instrumentation of the real openai client; aiotel's function span is a
    CHAIN whose child is the LLM call, in Phoenix's API and in its UI."""
    pytest.importorskip("openinference.instrumentation.openai")
    app = tmp_path / "llm"
    shutil.copytree(os.path.join(SAMPLES, "llm"), app)
    server = subprocess.Popen([sys.executable, str(app / "fake_openai.py")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{phoenix}/v1/traces", "OTEL_TRACES_EXPORTER": "otlp",
               "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "OTEL_SERVICE_NAME": "llm-app",
               "AIOTEL_CACHE_DIR": str(tmp_path / "c"), "FAKE_OPENAI_URL": f"http://127.0.0.1:{port}/v1",
               "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "opentelemetry-instrumentation-openai-v2"}
        result = run(command("aiotel-run") + ["python", "app.py", "calls"], cwd=str(app), env=env)
        assert result.returncode == 0, result.stderr
    finally:
        stop(server)
    spans = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = get_json(f"{phoenix}/v1/projects/default/spans?limit=100")
        spans = data["data"] if data else []
        if len([s for s in spans if s["span_kind"] == "LLM"]) == 7:
            break
        time.sleep(0.5)
    by_id = {s["context"]["span_id"]: s for s in spans}
    llm = [s for s in spans if s["span_kind"] == "LLM"]
    assert len(llm) == 7, [(s["name"], s["span_kind"]) for s in spans]
    summarize = [s for s in spans if s["name"] == "app.summarize"]
    assert len(summarize) == 3 and {s["span_kind"] for s in summarize} == {"CHAIN"}
    children = [s for s in llm if s["parent_id"] and by_id[s["parent_id"]]["name"] == "app.summarize"]
    assert len(children) == 3 and all(s["attributes"]["aiotel.function.name"] == "app.summarize" for s in children)
    assert all("input.value" not in s["attributes"] for s in llm)  # content stayed in the process

    # Phoenix's own UI, rendered by headless Chromium: the trace of one call shows both kinds
    trace_id = summarize[0]["context"]["trace_id"]
    projects = get_json(f"{phoenix}/v1/projects")["data"]
    project = next(p["id"] for p in projects if p["name"] == "default")
    url = f"{phoenix}/projects/{project}/traces/{trace_id}"
    dom = chromium_dom(url, tmp_path, screenshot=os.environ.get("AIOTEL_PHOENIX_SCREENSHOT"))
    assert "app.summarize" in dom and "ChatCompletion" in dom, dom[-3000:]
    assert "chain" in dom.lower() and "llm" in dom.lower()
