"""Hostile and broken environments: the program still runs unchanged, and aiotel says once
what it could not do. (A user's sitecustomize that raises: tests/test_launcher.py.)"""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
import textwrap
import time

import pytest

from conftest import command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

SECRET_KEY = "sk-ant-api03-" + "Z" * 40
AWS_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"


def aiotel_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("aiotel:")]


def test_prompts_with_secrets_continuations_and_a_megabyte_are_redacted_and_cut(tmp_path, http_receiver):
    megabyte = "x" * 100 + " " + AWS_KEY + " " + "y" * (1024 * 1024)
    (tmp_path / "secrets_mod.py").write_text(textwrap.dedent(f'''\
        # AI-generated: Claude, prompt: "connect with password=hunter2 and key {SECRET_KEY}", ticket="db_token: t0psecret"
        def connect():
            return 1


        # AI-generated: Claude,
        #   prompt: "first line, then
        #   postgres://app:pa55word@db/prod on the next, and employee id E-1234"
        def continued():
            return 2


        # AI-generated: Claude, prompt: "{megabyte}"
        def big():
            raise ValueError("password: hunter2 was rejected")
        '''))
    (tmp_path / "app.py").write_text(
        "import secrets_mod\nprint(secrets_mod.connect(), secrets_mod.continued())\n"
        "try:\n    secrets_mod.big()\nexcept ValueError as e:\n    print('caught', e)\n"
    )
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    env = telemetry_env(http_receiver, tmp_path, AIOTEL_SPAN_RATE_LIMIT="1000", AIOTEL_REDACT=r"E-\d{4}")
    started = time.monotonic()
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    elapsed = time.monotonic() - started
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert elapsed < 30  # a 1 MB marker line is scanned once, never in a loop
    assert http_receiver.received.wait(lambda r: {"secrets_mod.connect", "secrets_mod.continued", "secrets_mod.big"}
                                       <= {s.name for s in r.spans})
    spans = {s.name: s for s in http_receiver.received.spans}
    connect = spans["secrets_mod.connect"].attributes
    assert connect["aiotel.provenance.prompt"] == "connect with password=[REDACTED] and key [REDACTED]"
    assert connect["aiotel.provenance.ticket"] == "db_token: [REDACTED]"
    continued = spans["secrets_mod.continued"].attributes["aiotel.provenance.prompt"]
    assert continued == "first line, then postgres://app:[REDACTED]@db/prod on the next, and employee id [REDACTED]"
    big = spans["secrets_mod.big"]
    assert len(big.attributes["aiotel.provenance.prompt"]) == 256
    assert AWS_KEY not in big.attributes["aiotel.provenance.prompt"] and "[REDACTED]" in big.attributes["aiotel.provenance.prompt"]
    # the exception's message, on the event and in the status, is redacted too
    event = next(e for e in big.events if e["name"] == "exception")
    assert event["exception.message"] == "password: [REDACTED] was rejected"
    assert "hunter2" not in event["exception.stacktrace"] and big.status_message == "ValueError: password: [REDACTED] was rejected"
    everything = repr([(s.attributes, s.events, s.status_message) for s in http_receiver.received.spans])
    for secret in ("hunter2", "t0psecret", "pa55word", SECRET_KEY, AWS_KEY, "E-1234"):
        assert secret not in everything


def test_exception_messages_with_cloud_keys_auth_headers_and_spoken_passwords_are_redacted_on_the_wire(tmp_path, http_receiver):
    aws_secret = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
    (tmp_path / "client_mod.py").write_text(textwrap.dedent(f'''\
        # AI-generated: Claude, 2026-11-20, prompt: "call the API"
        def call(headers):
            try:
                raise PermissionError(f"denied with {{headers!r}}, keys {AWS_KEY} {aws_secret}")
            except PermissionError:
                raise ConnectionError("login failed: password hunter2x, Password must be at least 8 characters")
        '''))
    (tmp_path / "app.py").write_text(
        "import client_mod\ntry:\n    client_mod.call({'Authorization': 'Basic dXNlcjpwYXNz', 'Accept': 'json'})\n"
        "except ConnectionError as e:\n    print('caught', type(e).__name__)\n"
    )
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=telemetry_env(http_receiver, tmp_path))
    assert result.returncode == 0 and result.stdout == "caught ConnectionError\n", result.stderr
    assert http_receiver.received.wait(lambda r: "client_mod.call" in {s.name for s in r.spans})
    span = next(s for s in http_receiver.received.spans if s.name == "client_mod.call")
    event = next(e for e in span.events if e["name"] == "exception")
    assert event["exception.message"] == "login failed: password [REDACTED], Password must be at least 8 characters"
    trace = event["exception.stacktrace"]
    assert "'Authorization': 'Basic [REDACTED]', 'Accept': 'json'" in trace and "PermissionError" in trace
    everything = repr([(s.attributes, s.events, s.status_message) for s in http_receiver.received.spans])
    for secret in ("hunter2x", "dXNlcjpwYXNz", aws_secret, AWS_KEY):
        assert secret not in everything


def test_other_instrumentations_exception_events_and_statuses_are_redacted_too(tmp_path, http_receiver):
    (tmp_path / "app.py").write_text(textwrap.dedent('''\
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        client = trace.get_tracer("http.client.lib")  # as an HTTP or LLM client instrumentation would


        # AI-generated: Claude, 2026-11-20, prompt: "fetch"
        def fetch():
            with client.start_as_current_span("GET /orders", record_exception=False) as span:
                error = PermissionError("401 for {'Authorization': 'Bearer abcdef0123456789xyz'}")
                span.record_exception(error, attributes={"note": "password hunter2x"})
                span.set_status(Status(StatusCode.ERROR, "token=t0psecret rejected"))
                span.add_event("retry", {"attempt": 2, "url": "https://bob:pa55word@api.example/orders"})
            return "ok"


        print(fetch())
        '''))
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=telemetry_env(http_receiver, tmp_path))
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
    assert http_receiver.received.wait(lambda r: "GET /orders" in {s.name for s in r.spans})
    span = next(s for s in http_receiver.received.spans if s.name == "GET /orders")
    event = next(e for e in span.events if e["name"] == "exception")
    assert event["exception.message"] == "401 for {'Authorization': 'Bearer [REDACTED]'}"
    assert event["note"] == "password [REDACTED]" and event["exception.type"] == "PermissionError"
    assert span.status_message == "token=[REDACTED] rejected"
    retry = next(e for e in span.events if e["name"] == "retry")
    assert retry == {"name": "retry", "attempt": 2, "url": "https://bob:[REDACTED]@api.example/orders"}
    assert span.attributes["aiotel.function.name"] == "app.fetch"  # still tied to its AI function


def test_prompts_with_invalid_utf8_behave_as_python_does(tmp_path, http_receiver):
    # Python does not decode comments: undecodable bytes in a marker are no error to it
    (tmp_path / "odd_mod.py").write_bytes(b'# AI-generated: Claude, prompt: "caf\xe9 \xff\xfe"\ndef f():\n    return 1\n')
    (tmp_path / "app.py").write_text("import odd_mod\nprint(odd_mod.f())\n")
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    env = telemetry_env(http_receiver, tmp_path)
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr) == (0, "1\n", "")
    assert http_receiver.received.wait(lambda r: any(s.name == "odd_mod.f" for s in r.spans))
    span = next(s for s in http_receiver.received.spans if s.name == "odd_mod.f")
    assert span.attributes["aiotel.provenance.prompt"] == "caf\ufffd \ufffd\ufffd"  # one replacement per byte

    # in a string, Python refuses them: the import fails exactly as it does without aiotel
    (tmp_path / "odd_mod.py").write_bytes(b'# AI-generated: Claude\ndef f():\n    return "\xff"\n')
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env={"OTEL_TRACES_EXPORTER": "none"})
    assert plain.returncode == result.returncode == 1 and "SyntaxError" in plain.stderr
    assert result.stderr == plain.stderr  # a syntax error is the import's to report

    # declared as Latin-1, the same bytes are a valid module, and the prompt is exported as text
    (tmp_path / "odd_mod.py").write_bytes(b'# -*- coding: latin-1 -*-\n# AI-generated: Claude, prompt: "caf\xe9"\n'
                                          b'def f():\n    return "\xff"\n')
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env={"OTEL_TRACES_EXPORTER": "none"})
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr) == (
        0, "\xff\n", "")


MARKED = '''\
# AI-generated: Claude
def work(n):
    try:
        return {1: 1, 2: 2}[n]
    except KeyError:
        return -1
'''


def make_read_only(path):
    """Read-only for the program: permissions, or, for root (whom permissions do not stop),
    a regular file where the cache directory would go."""
    if os.geteuid() == 0:
        return False
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            target = os.path.join(root, name)
            os.chmod(target, os.stat(target).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    os.chmod(path, os.stat(path).st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return True


def test_read_only_source_tree_and_cache_dir(tmp_path, http_receiver):
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(3):
        (tree / f"mod{i}.py").write_text(MARKED.replace("work", f"work{i}"))
    (tree / "app.py").write_text("import mod0, mod1, mod2\nprint(mod0.work0(1), mod1.work1('a'), mod2.work2(2))\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    env = telemetry_env(http_receiver, tmp_path, PYTHONDONTWRITEBYTECODE=None, AIOTEL_CACHE_DIR=str(cache))
    if not make_read_only(tree) or not make_read_only(cache):
        (tree / "__pycache__").write_text("")  # no bytecode directory can be made
        (tmp_path / "blocker").write_text("")
        env["AIOTEL_CACHE_DIR"] = str(tmp_path / "blocker" / "scan")
    try:
        plain = run([sys.executable, "app.py"], cwd=str(tree), env={"PYTHONDONTWRITEBYTECODE": None})
        result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tree), env=env)
    finally:
        for root, dirs, _ in os.walk(tmp_path):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
        os.chmod(tree, 0o755)
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout) == (0, "1 -1 2\n")
    said = aiotel_lines(result.stderr)
    assert len(said) == 2 and "scan cache" in said[0] and "rewritten code" in said[1], result.stderr
    assert http_receiver.received.wait(lambda r: len({p.attributes["code.function.name"] for p in r.points}) == 3)


def test_a_module_deleted_between_scan_and_import(tmp_path, monkeypatch):
    """The finder read the file: the module loads from what it read, instrumented; a file
    gone before the finder looks is Python's own ModuleNotFoundError."""
    from aiotel.config import load_settings
    from aiotel.rewriting.importhook import ImportHook

    (tmp_path / "vanishing.py").write_text(MARKED)
    monkeypatch.syspath_prepend(str(tmp_path))
    hook = ImportHook(load_settings({"AIOTEL_CACHE_DIR": "off", "AIOTEL_GIT_BLAME": "false"}))
    spec = hook.find_spec("vanishing", None)
    assert spec is not None and type(spec.loader).__name__ == "RewritingLoader"
    os.unlink(tmp_path / "vanishing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.work(1) == 1 and module.work(3) == -1 and "__aiotel_probes__" in vars(module)
    assert hook.find_spec("vanishing", None) is None  # now: the normal "not found"


THREADED = '''\
import threading
import marked_mod

results = []
def worker(k):
    total = 0
    for i in range(2000):
        total += marked_mod.work(i % 7)
    results.append(total)
threads = [threading.Thread(target=worker, args=(k,)) for k in range(64)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(results), sorted(set(results)))
'''


def test_64_threads_call_marked_functions_while_the_exporter_fails(tmp_path):
    from conftest import free_port

    (tmp_path / "marked_mod.py").write_text(MARKED)
    (tmp_path / "app.py").write_text(THREADED)
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    port = free_port()  # nothing listens: every export fails
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "50",
           "OTEL_METRIC_EXPORT_INTERVAL": "100", "AIOTEL_SPAN_RATE_LIMIT": "100000", "AIOTEL_CACHE_DIR": "off"}
    started = time.monotonic()
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env, timeout=120)
    elapsed = time.monotonic() - started
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout)
    assert result.stdout.startswith("64 ")
    said = aiotel_lines(result.stderr)
    # each thing it could not do, once: spans dropped from the full queue, the failing
    # export, the flush given up at exit
    assert 1 <= len(said) <= 3 and len(set(said)) == len(said), result.stderr
    assert len(result.stderr.splitlines()) == len(said)
    assert elapsed < 60


def test_ten_thousand_marked_functions_in_one_process(tmp_path, http_receiver):
    package = tmp_path / "many"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for m in range(10):
        functions = "\n\n".join(f"# AI-generated: Copilot\ndef f{i}(x):\n    return x + {i}\n" for i in range(1000))
        (package / f"m{m}.py").write_text(functions)
    (tmp_path / "app.py").write_text(
        "import importlib\n"
        "total = 0\n"
        "for m in range(10):\n"
        "    module = importlib.import_module(f'many.m{m}')\n"
        "    total += sum(getattr(module, f'f{i}')(1) for i in range(1000))\n"
        "print(total)\n"
    )
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    env = telemetry_env(http_receiver, tmp_path)
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env, timeout=300)
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout)
    # 10 000 first calls are 10 000 spans at once: more than the span queue holds, which
    # the SDK says once; every call is still counted
    assert all("queue" in line.lower() or "dropped" in line.lower() for line in aiotel_lines(result.stderr)), result.stderr
    got = http_receiver.received
    assert got.wait(lambda r: len({p.attributes["code.function.name"] for p in r.points
                                   if p.metric == "aiotel.function.duration"}) == 10_000, timeout=60)
    assert sum(p.count for p in got.latest_points("aiotel.function.duration").values()) == 10_000


def test_empty_pythonpath_entries_still_mean_the_current_directory(tmp_path):
    """An empty PYTHONPATH entry puts the working directory on sys.path: a program run from
    elsewhere imports its marked module from there, with and without aiotel."""
    (tmp_path / "marked_mod.py").write_text(MARKED)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "app.py").write_text("import sys, marked_mod\nprint(marked_mod.work(2), marked_mod.__file__)\n")
    env = {"PYTHONPATH": f"{os.pathsep}{scripts}{os.pathsep}{os.pathsep}"}
    plain = run([sys.executable, "scripts/app.py"], cwd=str(tmp_path), env=env)
    result = run(command("aiotel-run") + ["python", "scripts/app.py"], cwd=str(tmp_path),
                 env=dict(env, OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", AIOTEL_CACHE_DIR="off"))
    assert (result.returncode, result.stdout, result.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert plain.stdout.startswith("2 ")
