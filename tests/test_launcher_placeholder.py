"""`aiotel-run` before the instrumentation lands: the command runs unchanged, and it says so."""

from __future__ import annotations

import sys

from conftest import command, run


def test_command_output_and_exit_code_pass_through(tmp_path):
    script = tmp_path / "app.py"
    script.write_text("import sys\nprint('hello', sys.argv[1:])\nsys.exit(3)\n")
    plain = run([sys.executable, str(script), "a", "b"], cwd=str(tmp_path))
    wrapped = run(command("aiotel-run") + [sys.executable, str(script), "a", "b"], cwd=str(tmp_path))
    assert (wrapped.returncode, wrapped.stdout) == (plain.returncode, plain.stdout) == (3, "hello ['a', 'b']\n")
    assert wrapped.stderr.count("running the command unchanged") == 1


def test_missing_command_and_no_command_are_usage_errors(tmp_path):
    missing = run(command("aiotel-run") + ["no-such-program-here"], cwd=str(tmp_path))
    assert missing.returncode == 127 and "command not found: no-such-program-here" in missing.stderr
    empty = run(command("aiotel-run"), cwd=str(tmp_path))
    assert empty.returncode == 2 and "usage: aiotel-run COMMAND" in empty.stderr
