"""`aiotel doctor`: configuration with sources, the endpoint check, what would be instrumented."""

from __future__ import annotations

import json
import socket

import os
import sys

import pytest

from conftest import ROOT, command, run


def test_doctor_reports_sources_endpoint_and_marked_functions(tmp_path, http_receiver):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "m.py").write_text("# AI-generated: Claude\ndef f():\n    return 1\n\ndef g():\n    return 2\n")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": http_receiver.endpoint, "AIOTEL_SPAN_RATE_LIMIT": "5",
           "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    result = run(command("aiotel") + ["doctor", "--json"], cwd=str(tmp_path), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    rows = {r["variable"]: r for r in report["configuration"]}
    assert rows["AIOTEL_SPAN_RATE_LIMIT"] == {"variable": "AIOTEL_SPAN_RATE_LIMIT", "value": "5", "source": "environment"}
    assert rows["AIOTEL_PROMPT_MAX_LENGTH"]["source"] == "default"
    assert report["traces_exporters"] == ["otlp"] and report["healthy"] is True
    assert [(c["signal"], c["answers"]) for c in report["endpoints"]] == [("traces", True), ("metrics", True), ("logs", True)]
    assert report["would_instrument"] == [{"file": "./pkg/m.py", "module": "pkg.m", "functions": ["pkg.m.f"]}]


def test_doctor_fails_when_the_collector_does_not_answer_or_a_value_is_bad(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "AIOTEL_CAPTURE_PROMPT": "maybe"}
    result = run(command("aiotel") + ["doctor"], cwd=str(tmp_path), env=env)
    assert result.returncode == 1
    assert f"traces endpoint http://127.0.0.1:{port} (http/protobuf): does not answer" in result.stdout
    assert "problem: AIOTEL_CAPTURE_PROMPT='maybe' ignored" in result.stdout
    zero = run(command("aiotel") + ["doctor"], cwd=str(tmp_path))
    assert zero.returncode == 0 and "traces go to: store; metrics go to: store" in zero.stdout


def _broken_instrumentation(folder):
    """An installed instrumentor whose module cannot be imported (as openai-v2 with a helper
    release that removed a module it imports): a real distribution on the path."""
    info = folder / "broken_instrumentation-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-instrumentation\nVersion: 0.1\n"
                                   "Requires-Dist: flask ; extra == 'instruments'\n")
    (info / "entry_points.txt").write_text("[opentelemetry_instrumentor]\nbroken = broken_instrumentor:Instrumentor\n")
    (folder / "broken_instrumentor.py").write_text("from a_helper_module_that_is_gone import Instruments\n")


def test_doctor_lists_each_instrumentation_with_its_state_reason_and_fix(tmp_path):
    _broken_instrumentation(tmp_path / "site")
    env = {"PYTHONPATH": str(tmp_path / "site"), "AIOTEL_CACHE_DIR": str(tmp_path / "c")}
    result = run(command("aiotel") + ["doctor", "--json"], cwd=str(tmp_path), env=env)
    rows = {r["distribution"]: r for r in json.loads(result.stdout)["instrumentations"]}
    broken = rows["broken-instrumentation"]
    assert broken["state"] == "failed" and "ModuleNotFoundError" in broken["reason"]
    assert "a_helper_module_that_is_gone" in broken["reason"] and broken["fix"]
    assert rows["opentelemetry-instrumentation-flask"]["state"] == "armed"
    assert rows["opentelemetry-instrumentation-flask"]["reason"] == "activated when flask is first imported"
    text = run(command("aiotel") + ["doctor"], cwd=str(tmp_path), env=env).stdout
    assert "instrumentation broken (broken-instrumentation 0.1): failed, ModuleNotFoundError" in text
    disabled = run(command("aiotel") + ["doctor", "--json"], cwd=str(tmp_path),
                   env=dict(env, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="broken-instrumentation"))
    rows = {r["distribution"]: r for r in json.loads(disabled.stdout)["instrumentations"]}
    assert rows["broken-instrumentation"]["state"] == "disabled"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib; the LLM sets need 3.10+ and the test extra")
def test_the_llm_sets_doctor_knows_are_the_extras_pyproject_pins_and_the_installed_ones_are_them(tmp_path):
    import tomllib

    pytest.importorskip("openai")
    from aiotel.cli.instrumentations import TESTED_SETS

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        extras = tomllib.load(fh)["project"]["optional-dependencies"]
    for tested in TESTED_SETS.values():
        pinned = {req.split("==")[0]: req.split("==")[1].split(";")[0] for req in extras[tested.extra]}
        assert pinned == tested.pins
        test_extra = " ".join(extras["test"])
        assert all(f"{package}=={version}" in test_extra for package, version in tested.pins.items())
    result = run(command("aiotel") + ["doctor", "--json"], cwd=str(tmp_path),
                 env={"OPENINFERENCE_HIDE_INPUTS": "false", "AIOTEL_CACHE_DIR": str(tmp_path / "c")})
    report = json.loads(result.stdout)
    rows = {r["distribution"]: r for r in report["instrumentations"]}
    for distribution in TESTED_SETS:
        assert rows[distribution]["state"] == "armed"
        # the installed versions are the tested ones; the only note: two instrumentations of openai
        assert [note.split(":")[0] for note in rows[distribution]["notes"]] == ["openai is also instrumented by "
                                                                              + next(d for d in TESTED_SETS if d != distribution)]
    assert report["llm_content"]["policy"].startswith("not exported")
    assert report["llm_content"]["notes"] == [
        "OPENINFERENCE_HIDE_INPUTS=false set: OpenInference's content follows your switches, not aiotel's setting"]


@pytest.mark.skipif(sys.version_info < (3, 10), reason="the LLM sets need Python 3.10+ and the test extra")
def test_doctor_says_when_a_helper_or_the_client_is_not_what_the_set_was_tested_with(tmp_path):
    """Distributions found first on the path, as pip would leave them after an upgrade: a
    newer helper (the release that broke the set) and an openai outside the tested range."""
    pytest.importorskip("opentelemetry.instrumentation.openai_v2")
    site = tmp_path / "site"
    for name, version in (("opentelemetry_util_genai", "1.3b0"), ("openai", "3.63.0")):
        info = site / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n")
    result = run(command("aiotel") + ["doctor"], cwd=str(tmp_path),
                 env={"PYTHONPATH": str(site), "AIOTEL_CACHE_DIR": str(tmp_path / "c")})
    assert ("note: opentelemetry-util-genai 1.3b0 is not the tested 1.1b0: pip install 'aiotel[openai]'"
            in result.stdout), result.stdout
    assert "note: openai 3.63.0 is outside the versions this set is tested with (openai>=2.8,<3)" in result.stdout
