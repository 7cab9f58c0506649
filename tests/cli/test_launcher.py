"""`aiotel-run` itself: options and environment, PYTHONPATH, interpreter arguments,
the user's own sitecustomize. Subprocess tests run it as a user does."""

from __future__ import annotations

import os
import re
import sys

import pytest

from aiotel.config import VARIABLES
from aiotel.launcher import BOOTSTRAP_DIR, is_python_name, private_directory, script_index, skips_bootstrap, which, with_bootstrap
from conftest import ROOT, command, run

pytestmark = pytest.mark.instrumentation

QUIET = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}


@pytest.mark.parametrize(
    "args, index",
    [
        (["app.py", "-x"], 0),
        (["-u", "-W", "error", "app.py"], 3),
        (["-Werror", "-X", "dev", "app.py", "a"], 3),
        (["-uB", "--", "app.py"], 2),
        (["--check-hash-based-pycs", "always", "app.py"], 2),
        (["-c", "pass", "app.py"], None),
        (["-um", "pkg"], None),
        (["-"], None),
        ([], None),
        (["--version"], None),
    ],
)
def test_script_is_found_among_interpreter_options(args, index):
    assert script_index(args) == index


def test_the_launcher_s_own_helpers_answer_as_the_standard_library_does(tmp_path, monkeypatch):
    """The launcher imports neither re nor shutil nor tempfile (start-up): its stand-ins
    must agree with them."""
    import itertools
    import shutil
    import stat

    pattern = re.compile(r"^python(\d+(\.\d+)?)?[dtw]?(\.exe)?$")
    pieces = ["python", "3", ".", "12", "d", "t", "w", ".exe", "x", "", "-"]
    for parts in itertools.product(pieces, repeat=4):
        name = "".join(parts)
        assert is_python_name(name) == bool(pattern.match(name)), name
    bins = [tmp_path / "a", tmp_path / "b"]
    for folder in bins:
        folder.mkdir()
    (bins[1] / "tool").write_text("#!/bin/sh\n")
    (bins[1] / "tool").chmod(0o755)
    (bins[0] / "tool").write_text("not executable")
    (bins[0] / "dir-tool").mkdir()
    path = os.pathsep.join(str(b) for b in bins)
    for name in ("tool", "dir-tool", "missing", str(bins[1] / "tool"), str(bins[0] / "tool"), "sh"):
        assert which(name, path) == shutil.which(name, path=path), name
        assert which(name) == shutil.which(name), name
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    made = private_directory("aiotel-main-")
    assert os.path.dirname(made) == str(tmp_path) and os.path.basename(made).startswith("aiotel-main-")
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))  # not there: the next candidate, as tempfile does
    elsewhere = private_directory("aiotel-main-")
    assert os.path.isdir(elsewhere) and not elsewhere.startswith(str(tmp_path))
    os.rmdir(elsewhere)


def test_isolated_modes_are_recognised():
    assert skips_bootstrap(["-I", "app.py"], 1) and skips_bootstrap(["-uE", "app.py"], 1)
    assert skips_bootstrap(["-S", "app.py"], 1)
    assert not skips_bootstrap(["-W", "Ignore", "app.py"], 2) and not skips_bootstrap(["-Xdev", "app.py"], 1)


def test_pythonpath_gets_the_bootstrap_first_and_keeps_empty_entries():
    assert with_bootstrap(None) == BOOTSTRAP_DIR
    assert with_bootstrap("") == BOOTSTRAP_DIR
    # an empty entry means the current directory to Python: it stays
    assert with_bootstrap(f"a{os.pathsep}{os.pathsep}b{os.pathsep}") == os.pathsep.join([BOOTSTRAP_DIR, "a", "", "b", ""])
    assert with_bootstrap(os.pathsep.join([BOOTSTRAP_DIR, "a"])) == os.pathsep.join([BOOTSTRAP_DIR, "a"])


def test_help_lists_every_option_with_its_variable():
    result = run(command("aiotel-run") + ["--help"], cwd=os.getcwd())
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for variable in VARIABLES:
        assert variable.flag in text and f"[{variable.name}]" in text


def test_each_option_sets_its_variable_for_the_command(tmp_path):
    args = []
    for i, variable in enumerate(VARIABLES):
        args += [variable.flag, f"v{i}"]
    names = [v.name for v in VARIABLES]
    probe = f"import os; print([os.environ.get(n) for n in {names!r}])"
    # -I: the bootstrap must not run with these nonsense values
    result = run(command("aiotel-run") + args + [sys.executable, "-I", "-c", probe], cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str([f"v{i}" for i in range(len(VARIABLES))])


def test_sys_path_and_environment_seen_by_the_program(tmp_path):
    probe = "import os, sys; print(sys.path); print(os.environ['PYTHONPATH'])"
    plain = run([sys.executable, "-c", probe], cwd=str(tmp_path), env={"PYTHONPATH": f"{tmp_path}{os.pathsep}"})
    wrapped = run(command("aiotel-run") + ["python", "-c", probe], cwd=str(tmp_path),
                  env={**QUIET, "PYTHONPATH": f"{tmp_path}{os.pathsep}"})
    plain_path, wrapped_path = plain.stdout.splitlines()[0], wrapped.stdout.splitlines()[0]
    assert wrapped_path == plain_path  # the empty entry (the current directory) included
    assert BOOTSTRAP_DIR not in wrapped_path
    assert wrapped.stdout.splitlines()[1] == os.pathsep.join([BOOTSTRAP_DIR, str(tmp_path), ""])


def test_user_sitecustomize_still_runs_and_its_failure_looks_as_usual(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import builtins\nbuiltins.CUSTOMIZED = 'yes'\n")
    (tmp_path / "app.py").write_text("print(CUSTOMIZED)\n")
    env = {**QUIET, "PYTHONPATH": str(site)}
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path), env={"PYTHONPATH": str(site)})
    wrapped = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert wrapped.stdout == "yes\n"

    (site / "sitecustomize.py").write_text("raise RuntimeError('broken site')\n")
    (tmp_path / "app.py").write_text("print('still runs')\n")
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path), env={"PYTHONPATH": str(site)})
    wrapped = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert (wrapped.returncode, wrapped.stdout) == (plain.returncode, plain.stdout) == (0, "still runs\n")
    # aiotel-run is a Python program too: its own interpreter meets the broken
    # sitecustomize first, then the command's interpreter says exactly what Python says
    assert plain.stderr.startswith("Error in sitecustomize")
    assert wrapped.stderr == plain.stderr * 2


def test_bad_values_are_named_once_and_the_program_runs(tmp_path):
    (tmp_path / "app.py").write_text("print('ran')\n")
    result = run(command("aiotel-run") + ["--span-rate-limit", "fast", "python", "app.py"], cwd=str(tmp_path), env=QUIET)
    assert result.returncode == 0 and result.stdout == "ran\n"
    assert result.stderr == "aiotel: AIOTEL_SPAN_RATE_LIMIT='fast' ignored (could not convert string to float: 'fast'); using the default\n"


def test_sdk_disabled_runs_the_program_uninstrumented(tmp_path):
    (tmp_path / "m.py").write_text("# AI-generated: Claude\ndef f():\n    return 1\n")
    (tmp_path / "app.py").write_text("import m, sys\nprint(m.f(), '__aiotel_probes__' in vars(m))\n")
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env={"OTEL_SDK_DISABLED": "true"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "1 False\n", "")


def test_missing_command_and_no_command(tmp_path):
    missing = run(command("aiotel-run") + ["no-such-program-here"], cwd=str(tmp_path))
    assert missing.returncode == 127 and "command not found: no-such-program-here" in missing.stderr
    empty = run(command("aiotel-run"), cwd=str(tmp_path))
    assert empty.returncode == 2 and "no command given" in empty.stderr


def test_missing_script_fails_as_python_does(tmp_path):
    plain = run([sys.executable, "nope.py"], cwd=str(tmp_path))
    wrapped = run(command("aiotel-run") + [sys.executable, "nope.py"], cwd=str(tmp_path), env=QUIET)
    assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == (plain.returncode, plain.stdout, plain.stderr)


def test_the_temporary_main_pyc_is_removed(tmp_path):
    (tmp_path / "app.py").write_text("import sys\nprint(sys.argv)\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result = run(command("aiotel-run") + ["python", "app.py", "x"], cwd=str(tmp_path), env={**QUIET, "TMPDIR": str(tmp)})
    assert result.stdout == "['app.py', 'x']\n"
    assert list(tmp.iterdir()) == []


def test_otel_log_level_error_keeps_stderr_quiet(tmp_path):
    (tmp_path / "m.py").write_text("# AI-generated: Claude\ndef f():\n    return 1\n")
    (tmp_path / "app.py").write_text("import m\nprint(m.f())\n")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_LOG_LEVEL": "error"}
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "1\n", "")
    loud = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env={**env, "OTEL_LOG_LEVEL": "warn"})
    assert loud.stderr.startswith("aiotel: could not export telemetry")


def test_configuration_table_lists_every_variable_with_its_option():
    table = open(os.path.join(ROOT, "docs", "configuration.md")).read()
    for variable in VARIABLES:
        assert f"| `{variable.name}` | `{variable.flag}` |" in table, variable.name


def test_readme_and_docs_name_only_files_and_pages_that_exist():
    """Files move (the tests did, by stage): every tests/... path and every relative link
    in README.md and docs/ must still lead somewhere."""
    pages = [os.path.join(ROOT, "README.md")] + [
        os.path.join(ROOT, "docs", name) for name in sorted(os.listdir(os.path.join(ROOT, "docs"))) if name.endswith(".md")]
    missing = []
    for page in pages:
        text = open(page).read()
        for path in re.findall(r"\btests/[\w/]+\.py", text):
            if not os.path.exists(os.path.join(ROOT, path)):
                missing.append((os.path.basename(page), path))
        for link in re.findall(r"\]\(([^)#:]+\.(?:md|png))(?:#[^)]*)?\)", text):
            if not os.path.exists(os.path.join(os.path.dirname(page), link)):
                missing.append((os.path.basename(page), link))
    assert len(pages) > 5 and not missing, missing


def test_configuration_table_lists_only_variables_that_config_reads():
    """The other way round: a row of the table that config.py does not know is a setting
    that does nothing."""
    from aiotel import config

    table = open(os.path.join(ROOT, "docs", "configuration.md")).read()
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \| `(--[a-z-]+)` \|", table, re.M)
    known = {(v.name, v.flag) for v in config.VARIABLES}
    assert rows and set(rows) <= known, set(rows) - known


def test_start_up_loads_no_exporter_metrics_sdk_scanner_or_argparse(tmp_path):
    """What keeps `aiotel-run` cheap to start: the OTLP exporters (gRPC, protobuf,
    requests) load with the first span, the metrics SDK with the first marked call, libcst
    with the first file to scan, argparse only when options are given."""
    code = ("import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('grpc', 'google', 'requests', 'libcst', 'argparse') or "
            "m.startswith(('opentelemetry.exporter', 'opentelemetry.proto', 'opentelemetry.sdk.metrics'))))")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
           "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    result = run(command("aiotel-run") + ["python", "-c", code], cwd=str(tmp_path), env=env)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == "[]\n"
    # and they do load once a marked function runs (its span goes to the gRPC exporter),
    # in the thread that its first call starts
    wait = "from aiotel.pipeline import background\nbackground.settle(10)\n"
    (tmp_path / "app.py").write_text("# AI-generated: Claude\ndef f():\n    return 1\n\nf()\n" + wait + code + "\n")
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path),
                 env=dict(env, AIOTEL_SHUTDOWN_TIMEOUT="0.5"))
    assert "'grpc'" in result.stdout and "'opentelemetry.sdk.metrics'" in result.stdout, result.stdout + result.stderr


def test_a_console_script_of_an_environment_without_aiotel_is_named_with_what_would_work(tmp_path):
    # a "pytest" first on PATH whose interpreter cannot import aiotel (here: the base Python)
    base = os.path.join(sys.base_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    if sys.prefix == sys.base_prefix or not os.path.exists(base):
        pytest.skip("needs a virtualenv whose base interpreter has no aiotel")
    other = tmp_path / "other-env" / "bin"
    other.mkdir(parents=True)
    tool = other / "pytest"
    tool.write_text(f"#!{base}\nprint('tests ran')\n")
    tool.chmod(0o755)
    path = f"{other}{os.pathsep}{os.environ.get('PATH', '')}"
    result = run(command("aiotel-run") + ["pytest"], cwd=str(tmp_path), env={"PATH": path})
    assert result.returncode == 0 and result.stdout == "tests ran\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines  # one line, from the launcher; the process does not repeat it
    assert f"pytest is {tool}, run by {base}, where aiotel is not installed" in lines[0]
    assert f"aiotel-run {os.path.join(os.path.dirname(sys.executable), 'pytest')}" in lines[0]  # this env's pytest

    # a script of aiotel's own interpreter is not checked, and says nothing
    mine = other / "mine"
    mine.write_text(f"#!{sys.executable}\nprint('ok')\n")
    mine.chmod(0o755)
    quiet = run(command("aiotel-run") + ["mine"], cwd=str(tmp_path), env={"PATH": path})
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "ok\n", "")


@pytest.mark.parametrize("head, expected", [
    ("#!/opt/env/bin/python3.11\n", "/opt/env/bin/python3.11"),
    ("#!/bin/sh\n'''exec' \"/a/very/long/path/bin/python3\" \"$0\" \"$@\"\n' '''\n", "/a/very/long/path/bin/python3"),
    ("#!/bin/bash\necho hi\n", None),
    ("no shebang\n", None),
])
def test_the_interpreter_of_a_console_script_is_read_from_its_first_lines(tmp_path, head, expected):
    from aiotel.launcher import script_interpreter

    script = tmp_path / "tool"
    script.write_text(head)
    assert script_interpreter(str(script)) == expected
