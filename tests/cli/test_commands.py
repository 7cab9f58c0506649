"""`aiotel COMMAND` loads that command's modules only: a report does not pay for the
doctor's or the scanner's imports."""

from __future__ import annotations

import sys

import pytest

from conftest import run

LOADS = "import sys; from aiotel.cli.main import main; code = main(sys.argv[1:]); " \
        "print(code, sorted(m for m in sys.modules if m.startswith('aiotel.cli.')))"


@pytest.mark.parametrize("command, loaded", [
    (["report", "--store", "{store}"], ["aiotel.cli.main", "aiotel.cli.report"]),
    (["scan", "{store}"], ["aiotel.cli.main", "aiotel.cli.scan"]),
])
def test_a_command_loads_its_own_modules(tmp_path, command, loaded):
    args = [part.format(store=tmp_path) for part in command]
    result = run([sys.executable, "-c", LOADS] + args, cwd=str(tmp_path))
    code, modules = result.stdout.split(" ", 1)
    assert code in ("0", "1"), result.stderr  # an empty store: the report says so and exits 1
    assert "aiotel.cli.doctor" not in modules and "aiotel.cli.push" not in modules and "aiotel.cli.mcp" not in modules
    assert all(name in modules for name in loaded)


def test_help_still_lists_every_command(tmp_path):
    result = run([sys.executable, "-m", "aiotel", "--help"], cwd=str(tmp_path))
    assert result.returncode == 0
    for name in ("scan", "report", "doctor", "push", "mcp"):
        assert f"    {name} " in result.stdout


@pytest.mark.instrumentation
def test_aiotel_mcp_on_python_3_9_says_the_sdk_needs_3_10(tmp_path):
    """On 3.10 and newer the server runs (tests/e2e/test_mcp.py); CI runs this file on 3.9 too."""
    if sys.version_info >= (3, 10):
        pytest.skip("the MCP SDK runs here: tests/e2e/test_mcp.py")
    result = run([sys.executable, "-m", "aiotel", "mcp"], cwd=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == "aiotel mcp: the MCP Python SDK needs Python 3.10 or newer; this is Python 3.9\n"
