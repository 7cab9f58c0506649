"""`aiotel doctor`: configuration with sources, the endpoint check, what would be instrumented."""

from __future__ import annotations

import json
import socket

from conftest import command, run


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
    assert [c["answers"] for c in report["endpoints"]] == [True, True]
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
