"""LLM calls inside AI-generated functions, in real processes: the real ``openai`` client
with each tested instrumentation set, against a local OpenAI-compatible server that
reports fixed token usage; everything checked on the wire (the OTLP receiver decodes
traces, metrics and logs).

Sets: ``genai`` (opentelemetry-instrumentation-openai-v2 with opentelemetry-util-genai)
and ``openinference`` (openinference-instrumentation-openai). Both are installed in the
test venv; each run disables the other, by distribution name, as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import SAMPLES, command, run, stop, telemetry_env

pytestmark = pytest.mark.instrumentation

try:
    import openai  # noqa: F401
    HAVE_OPENAI = True
except ImportError:
    HAVE_OPENAI = False
# the real client and its instrumentations: Python 3.10 or newer, and the test extra
needs_openai = pytest.mark.skipif(not HAVE_OPENAI, reason="the LLM instrumentations need Python 3.10+ (test extra)")

SAMPLE = os.path.join(SAMPLES, "llm")
SETS = {
    "genai": "openinference-instrumentation-openai",  # what each set's runs disable
    "openinference": "opentelemetry-instrumentation-openai-v2",
}
DURATION = "aiotel.function.gen_ai.operation.duration"
TOKENS = "aiotel.function.gen_ai.token.usage"


@pytest.fixture(scope="module")
def fake_openai():
    """The local OpenAI-compatible server, started on an ephemeral port, stopped by PID."""
    process = subprocess.Popen([sys.executable, os.path.join(SAMPLE, "fake_openai.py")], stdout=subprocess.PIPE, text=True)
    try:
        import select

        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "the fake OpenAI server did not start"
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)


@pytest.fixture
def app(tmp_path):
    target = tmp_path / "llm"
    shutil.copytree(SAMPLE, target)
    return target


def llm_run(app, mode, instrumentation, receiver, tmp_path, fake_openai, **env):
    result = run(command("aiotel-run") + ["python", "app.py", mode], cwd=str(app),
                 env=telemetry_env(receiver, tmp_path, FAKE_OPENAI_URL=fake_openai,
                                   OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=SETS[instrumentation], **env))
    assert (result.returncode, result.stdout.strip()) == (0, "done"), result.stderr
    return result


def totals(received, metric, key):
    """Sum and count per ``key(attributes)`` over the latest point of each series."""
    found = {}
    for point in received.latest_points(metric).values():
        k = key(point.attributes)
        count, total = found.get(k, (0, 0.0))
        found[k] = (count + point.count, total + point.sum)
    return found


def every_text(received):
    """Every string that reached the receiver: span attributes, events, statuses, log records."""
    texts = []
    for span in received.spans:
        texts += [json.dumps(span.attributes), json.dumps(span.events), span.status_message]
    for record in received.logs:
        texts += [json.dumps(record.body), json.dumps(record.attributes)]
    return "\n".join(texts)


@needs_openai
@pytest.mark.parametrize("instrumentation", sorted(SETS))
def test_each_functions_llm_calls_and_tokens_are_exact_and_attributed(app, instrumentation, receiver, tmp_path, fake_openai):
    llm_run(app, "calls", instrumentation, receiver, tmp_path, fake_openai)
    got = receiver.received
    assert got.wait(lambda r: r.latest_points(TOKENS))
    by_type = totals(got, TOKENS, lambda a: (a["code.function.name"], a["gen_ai.request.model"], a["gen_ai.token.type"]))
    assert by_type == {
        ("app.summarize", "m-small", "input"): (3, 33.0), ("app.summarize", "m-small", "output"): (3, 21.0),
        ("app.classify", "m-large", "input"): (2, 200.0), ("app.classify", "m-large", "output"): (2, 80.0),
        ("app.inner", "m-small", "input"): (1, 11.0), ("app.inner", "m-small", "output"): (1, 7.0),
    }  # the call outside every marked function is in no series; outer's call is inner's
    calls = totals(got, DURATION, lambda a: (a["code.function.name"], a["gen_ai.provider.name"], a["aiotel.provenance.tool"]))
    assert {k: v[0] for k, v in calls.items()} == {
        ("app.summarize", "openai", "Claude"): 3, ("app.classify", "openai", "GPT-4"): 2, ("app.inner", "openai", "Copilot"): 1}
    assert all(0 < total < 5 for _, total in calls.values())
    point = next(iter(got.latest_points(TOKENS).values()))
    assert point.unit == "{token}" and point.explicit_bounds[:3] == [1, 4, 16]  # the GenAI conventions' buckets
    # the LLM spans name the function that made them; aiotel's spans are CHAIN steps for Phoenix
    llm_spans = [s for s in got.spans if s.scope != "aiotel"]
    assert len(llm_spans) == 7
    assert sorted(s.attributes.get("aiotel.function.name", "-") for s in llm_spans) == [
        "-", "app.classify", "app.classify", "app.inner", "app.summarize", "app.summarize", "app.summarize"]
    assert {s.attributes.get("openinference.span.kind") for s in got.spans if s.scope == "aiotel"} == {"CHAIN"}


@needs_openai
def test_two_instrumentations_of_one_client_count_each_call_once(app, http_receiver, tmp_path, fake_openai):
    """Both sets active (what doctor warns of): each call makes two nested LLM spans, one
    of each convention; the rollup still counts every call, and its tokens, once."""
    result = run(command("aiotel-run") + ["python", "app.py", "calls"], cwd=str(app),
                 env=telemetry_env(http_receiver, tmp_path, FAKE_OPENAI_URL=fake_openai))
    assert (result.returncode, result.stdout.strip()) == (0, "done"), result.stderr
    got = http_receiver.received
    assert got.wait(lambda r: r.latest_points(TOKENS) and len([s for s in r.spans if s.scope != "aiotel"]) == 14)
    assert {s.scope for s in got.spans if s.scope != "aiotel"} == {
        "openinference.instrumentation.openai", "opentelemetry.util.genai.handler"}
    tokens = totals(got, TOKENS, lambda a: (a["code.function.name"], a["gen_ai.token.type"]))
    assert tokens == {("app.summarize", "input"): (3, 33.0), ("app.summarize", "output"): (3, 21.0),
                      ("app.classify", "input"): (2, 200.0), ("app.classify", "output"): (2, 80.0),
                      ("app.inner", "input"): (1, 11.0), ("app.inner", "output"): (1, 7.0)}
    calls = totals(got, DURATION, lambda a: a["code.function.name"])
    assert {k: v[0] for k, v in calls.items()} == {"app.summarize": 3, "app.classify": 2, "app.inner": 1}


@needs_openai
@pytest.mark.parametrize("instrumentation", sorted(SETS))
def test_calls_in_traces_the_sampler_drops_are_counted_and_never_exported(app, instrumentation, receiver, tmp_path,
                                                                          fake_openai):
    llm_run(app, "calls", instrumentation, receiver, tmp_path, fake_openai, OTEL_TRACES_SAMPLER="always_off")
    got = receiver.received
    assert got.wait(lambda r: r.latest_points(DURATION))
    calls = totals(got, DURATION, lambda a: a["code.function.name"])
    assert {k: v[0] for k, v in calls.items()} == {"app.summarize": 3, "app.classify": 2, "app.inner": 1}
    tokens = totals(got, TOKENS, lambda a: (a["code.function.name"], a["gen_ai.token.type"]))
    assert tokens[("app.summarize", "input")] == (3, 33.0)
    # recorded only: tallied, not one LLM span exported (a slow first call may get aiotel's late span)
    assert [s.name for s in got.spans if s.scope != "aiotel"] == []
    assert {s.attributes["aiotel.span.reason"] for s in got.spans} <= {"slow"}


@needs_openai
@pytest.mark.parametrize("instrumentation", sorted(SETS))
def test_no_prompt_or_completion_leaves_the_process_by_default(app, instrumentation, http_receiver, tmp_path, fake_openai):
    llm_run(app, "calls", instrumentation, http_receiver, tmp_path, fake_openai)
    got = http_receiver.received
    assert got.wait(lambda r: len([s for s in r.spans if s.scope != "aiotel"]) == 7)
    text = every_text(got)
    assert "CANARY-PROMPT" not in text and "CANARY-ANSWER" not in text
    keys = {key for s in got.spans for key in s.attributes}
    assert not keys & {"input.value", "output.value", "gen_ai.input.messages", "gen_ai.output.messages"}


@needs_openai
def test_the_opt_in_exports_content_as_recorded_and_redacted_through_the_redactor(app, http_receiver, tmp_path,
                                                                                 fake_openai, grpc_receiver):
    llm_run(app, "calls", "openinference", http_receiver, tmp_path, fake_openai, AIOTEL_CAPTURE_LLM_CONTENT="true")
    assert http_receiver.received.wait(lambda r: len([s for s in r.spans if s.scope != "aiotel"]) == 7)
    text = every_text(http_receiver.received)
    assert "CANARY-PROMPT a long text" in text and "CANARY-ANSWER the reply" in text

    llm_run(app, "calls", "openinference", grpc_receiver, tmp_path, fake_openai, AIOTEL_CAPTURE_LLM_CONTENT="redacted",
            AIOTEL_REDACT="CANARY-PROMPT")
    assert grpc_receiver.received.wait(lambda r: len([s for s in r.spans if s.scope != "aiotel"]) == 7)
    text = every_text(grpc_receiver.received)
    assert "CANARY-PROMPT" not in text and "[REDACTED] a long text" in text and "CANARY-ANSWER the reply" in text


@needs_openai
def test_the_instrumentations_own_switch_wins_and_genai_events_go_out_as_logs(app, receiver, tmp_path, fake_openai):
    llm_run(app, "calls", "genai", receiver, tmp_path, fake_openai,
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_and_event")
    got = receiver.received
    assert got.wait(lambda r: len(r.logs) >= 7 and len([s for s in r.spans if s.scope != "aiotel"]) == 7)
    events = [r for r in got.logs if r.event_name == "gen_ai.client.inference.operation.details"]
    assert len(events) == 7
    llm_spans = {s.span_id: s for s in got.spans if s.scope != "aiotel"}
    assert all(r.span_id in llm_spans for r in events)  # each event in its call's span context
    assert events[0].resource["service.name"] == "app"
    assert "CANARY-PROMPT a long text" in json.dumps([r.attributes for r in events])  # the user's switch said so
    assert "CANARY-ANSWER the reply" in every_text(got)


@needs_openai
def test_the_programs_logging_leaves_only_when_asked(app, http_receiver, grpc_receiver, tmp_path, fake_openai):
    llm_run(app, "logging", "genai", http_receiver, tmp_path, fake_openai)
    assert http_receiver.received.wait(lambda r: r.latest_points(DURATION))
    assert "APP-LOG-LINE" not in every_text(http_receiver.received)

    result = llm_run(app, "logging", "genai", grpc_receiver, tmp_path, fake_openai,
                     OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
                     OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="span_and_event")
    # the program's own logging as without aiotel: its basicConfig found no handler of aiotel's
    assert "WARNING:shop:APP-LOG-LINE from the program" in result.stderr.splitlines()
    assert "aiotel:" not in result.stderr  # one logger provider, aiotel's, for both kinds of records
    got = grpc_receiver.received
    assert got.wait(lambda r: any(rec.body and "APP-LOG-LINE" in str(rec.body) for rec in r.logs)
                    and len([rec for rec in r.logs if rec.event_name]) >= 1)
    assert not [rec for rec in got.logs if rec.scope.startswith(("opentelemetry.sdk", "aiotel"))]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_forked_child_counts_only_its_own_llm_calls(app, http_receiver, tmp_path, fake_openai):
    llm_run(app, "fork", "genai", http_receiver, tmp_path, fake_openai)
    got = http_receiver.received

    def calls_by_process(received):
        last = {}
        for point in received.points:
            if point.metric == DURATION:
                last[point.resource["service.instance.id"]] = point.count
        return last

    assert got.wait(lambda r: len(calls_by_process(r)) == 2), calls_by_process(got)
    assert sorted(calls_by_process(got).values()) == [1, 2]  # the child's one, not the parent's two as well


def test_the_net_drops_the_content_of_an_instrumentation_aiotel_cannot_configure(app, receiver, tmp_path, fake_openai):
    llm_run(app, "by-hand", "genai", receiver, tmp_path, fake_openai)
    got = receiver.received
    assert got.wait(lambda r: any(s.scope == "some.llm.library" for s in r.spans) and r.latest_points(TOKENS)
                    and r.logs), (got.requests, [s.scope for s in got.spans], len(got.logs))
    [record] = got.logs  # the event arrives, its body and content attribute do not
    assert record.event_name == "gen_ai.client.inference.operation.details" and record.body is None
    assert record.attributes == {"gen_ai.request.model": "m-small"}
    span = next(s for s in got.spans if s.scope == "some.llm.library")
    assert "gen_ai.input.messages" not in span.attributes and "llm.output_messages.0.message.content" not in span.attributes
    assert [e["name"] for e in span.events] == []  # the content event is dropped whole
    assert span.attributes["http.request.header.authorization"] == "Bearer [REDACTED]"  # foreign strings redacted too
    assert span.attributes["aiotel.function.name"] == "app.hand_made_llm_span"
    assert "CANARY" not in every_text(got)
    tokens = totals(got, TOKENS, lambda a: (a["code.function.name"], a["gen_ai.token.type"]))
    assert tokens == {("app.hand_made_llm_span", "input"): (1, 5.0), ("app.hand_made_llm_span", "output"): (1, 3.0)}


@needs_openai
def test_the_embedded_store_keeps_the_rollup_and_the_report_shows_it(app, tmp_path, fake_openai):
    result = run(command("aiotel-run") + ["python", "app.py", "calls"], cwd=str(app),
                 env={"FAKE_OPENAI_URL": fake_openai, "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
                      "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": SETS["genai"],
                      "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "event_only"})
    assert result.returncode == 0, result.stderr
    assert [name.split("-")[0] for name in sorted(os.listdir(app / ".aiotel"))] == ["logs", "metrics", "traces"]
    report = run(command("aiotel") + ["report", "--json"], cwd=str(app))
    assert report.returncode == 0, report.stderr
    llm = {f["function"]: f["llm_calls"] for f in json.loads(report.stdout)["functions"] if f.get("llm_calls")}
    assert llm["app.summarize"] == [{"model": "m-small", "provider": "openai", "calls": 3, "errors": 0,
                                     "input_tokens": 33, "output_tokens": 21,
                                     "llm_seconds": llm["app.summarize"][0]["llm_seconds"]}]
    assert llm["app.classify"][0]["input_tokens"] == 200 and llm["app.classify"][0]["calls"] == 2
    text = run(command("aiotel") + ["report"], cwd=str(app)).stdout
    table = text[text.index("LLM calls made inside each function"):].splitlines()
    assert table[2].split() == ["app.classify", "m-large", "openai", "2", "0", "200", "80", table[2].split()[-1]]
    html = run(command("aiotel") + ["report", "--html", str(tmp_path / "site")], cwd=str(app))
    assert html.returncode == 0, html.stderr
    pages = [open(os.path.join(tmp_path / "site", name)).read() for name in os.listdir(tmp_path / "site")
             if name.endswith(".html") and name != "index.html"]
    page = next(p for p in pages if "<h1>app.summarize</h1>" in p)
    assert "LLM calls made inside it" in page and "<td class=l>m-small</td><td class=l>openai</td><td>3</td>" in page
