"""The SDK pipeline is built when the program first needs it, not at start-up: a program
that imports neither a marked module nor the OpenTelemetry API loads none of it; one
that does gets the same provider, resource and spans as if it had been built at start."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import aiotel_run, command, run, telemetry_env

# What start-up must not load: the OpenTelemetry API and SDK, the probes, git, the rewrite
# itself (only a cold rewrite needs it), the exporters, the scanner's records; nor
# dataclasses (with inspect) and logging, 10 ms between them, until something needs them.
HEAVY = ("opentelemetry", "aiotel.probes", "aiotel.provenance.git", "aiotel.rewriting.rewrite",
         "aiotel.rewriting.attribution", "aiotel.pipeline.exporters", "aiotel.pipeline.resource",
         "aiotel.provenance.records", "dataclasses", "inspect", "logging")
LOADED = f"import sys; print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"


def test_a_program_that_records_nothing_loads_no_opentelemetry(tmp_path):
    env = {"AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    result = aiotel_run(["python", "-c", LOADED], tmp_path, env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")
    # the same with a plain module imported (the import hook runs, and finds no marker)
    (tmp_path / "plain.py").write_text("def f():\n    return 1\n")
    result = aiotel_run(["python", "-c", "import plain; " + LOADED], tmp_path, env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")


def git(cwd, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_built_later_with_what_the_process_started_with(http_receiver, tmp_path):
    """A `python -m` program that changes its working directory and sys.argv, then uses the
    OpenTelemetry API by hand, then imports a marked module: its spans (by hand and
    marked) share aiotel's provider and a resource detected from the process as it
    started (module name, checkout), and the program's tracer was aiotel's from the first."""
    project = tmp_path / "project"
    (project / "tool").mkdir(parents=True)
    (project / "tool" / "__init__.py").write_text("")
    (project / "tool" / "work.py").write_text(
        "# AI-generated: Claude, 2026-01-02, prompt: \"double it\"\ndef double(x):\n    return 2 * x\n")
    (project / "tool" / "__main__.py").write_text(
        "import os, sys\n"
        "os.chdir('/')\n"
        "sys.argv[:] = ['renamed']\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))\n"
        "from opentelemetry import trace\n"
        "print(type(trace.get_tracer_provider()).__module__)\n"
        "with trace.get_tracer('by.hand').start_as_current_span('by hand'):\n"
        "    from tool import work\n"
        "    print(work.double(21))\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "tool")
    head = git(project, "rev-parse", "HEAD")
    result = aiotel_run(["python", "-m", "tool"], project, telemetry_env(http_receiver, tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "False\nopentelemetry.sdk.trace\n42\n", "")
    got = http_receiver.received
    assert got.wait(lambda r: {"by hand", "tool.work.double"} <= {s.name for s in r.spans})
    spans = {s.name: s for s in got.spans}
    assert spans["tool.work.double"].parent_span_id == spans["by hand"].span_id
    for span in spans.values():
        assert span.resource["service.name"] == "tool"
        assert span.resource["vcs.ref.head.revision"] == head
        assert span.resource["process.pid"] == spans["by hand"].resource["process.pid"]


def test_the_probes_are_configured_when_a_library_instrumentation_loads_them_first(tmp_path):
    """An instrumentation (Flask's) builds the provider, whose span processors import the
    probes' package: the probes are configured once that build is done, and a marked
    module imported afterwards records its calls."""
    (tmp_path / "marked.py").write_text("# AI-generated: Claude\ndef one():\n    return 1\n")
    code = ("import flask\nfrom aiotel.probes import state\n"
            "print(state._settings.starter is not None)\n"
            "import marked\nprint(marked.one())\n"
            "print(sum(sum(p.ok_counts()[:-1]) for p in state.all_probes()))\n")
    env = {"AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "OTEL_METRICS_EXPORTER": "none",
           "OTEL_TRACES_EXPORTER": "none"}
    result = aiotel_run(["python", "-c", code], tmp_path, env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "True\n1\n1\n", ""), result.stderr


def test_tracing_that_cannot_be_built_is_said_once_and_the_program_runs(tmp_path):
    """A part of aiotel's tracing cannot be imported (here: the program blocks it, as a
    broken install would): the program's own `import opentelemetry.trace` and its marked
    module's import go on as without aiotel, one line says why no span is recorded, and
    the calls are still counted in the store."""
    (tmp_path / "marked.py").write_text("# AI-generated: Claude\ndef one():\n    return 1\n")
    code = ("import sys\nsys.modules['aiotel.pipeline.sampling'] = None  # a part that cannot load\n"
            "from opentelemetry import trace\nprint(type(trace.get_tracer_provider()).__name__)\n"
            "import marked\nprint(marked.one(), marked.one())\n")
    plain = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True, text=True)
    env = {"AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "AIOTEL_STORE": str(tmp_path / "store")}
    result = aiotel_run(["python", "-c", code], tmp_path, env)
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout) == (0, "ProxyTracerProvider\n1 1\n")
    said = result.stderr.splitlines()
    assert len(said) == 1 and said[0].startswith("aiotel: could not set up tracing (ModuleNotFoundError"), result.stderr
    report = run(command("aiotel") + ["report", "--json", "--store", str(tmp_path / "store")], cwd=str(tmp_path))
    assert report.returncode == 0, report.stderr
    assert [(f["function"], f["calls"]) for f in json.loads(report.stdout)["functions"]] == [("marked.one", 2)]
