"""`aiotel scan` as a user runs it: a fresh process, another working directory."""

from __future__ import annotations

import json
import os
import textwrap

import jsonschema
import pytest

from conftest import ROOT, command, run

SCHEMA_PATH = os.path.join(ROOT, "src", "aiotel", "schemas", "scan.schema.json")


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "project"
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "cart.py").write_text(textwrap.dedent('''\
        """Cart."""


        class Cart:
            # AI-generated: GPT-4, 2024-01-15, prompt: "sum the cart with discounts applied in order", reviewed: yes
            def total(self):
                return 0

            # AI-generated: Claude, 2024-02-01
            def tax(self):
                return 0

            def manual(self):
                return 0
        '''))
    (root / "tool.py").write_text('# AI-generated: Copilot\ndef helper():\n    pass\n\n# AI-generated: X\n\nx = 1\n')
    (root / "broken.py").write_text("# AI-generated: X\ndef f(:\n")
    for skipped in (".venv/lib/site-packages/dep", "node_modules/pkg", "build_ignored", ".git"):
        (root / skipped).mkdir(parents=True)
        (root / skipped / "m.py").write_text("# AI-generated: Hidden\ndef hidden():\n    pass\n")
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    return root


def test_scan_prints_the_table_and_summaries(tree, tmp_path):
    result = run(command("aiotel") + ["scan", "--exclude", "build_*", str(tree)], cwd=str(tmp_path),
                 env={"AIOTEL_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["LOCATION", "FUNCTION", "TOOL", "DATE", "PROMPT"]
    rows = [line.split()[:4] for line in lines[1:4]]
    assert rows == [
        ["project/shop/cart.py:6", "shop.cart.Cart.total", "GPT-4", "2024-01-15"],
        ["project/shop/cart.py:10", "shop.cart.Cart.tax", "Claude", "2024-02-01"],
        ["project/tool.py:2", "tool.helper", "Copilot"],
    ]
    assert "sum the cart with discounts applied in …" in lines[1]
    assert "3 AI-generated functions in 2 files (4 files scanned)" in result.stdout
    assert "Hidden" not in result.stdout
    assert "broken.py: not scanned: syntax error at line 2" in result.stderr
    assert "tool.py:5: marker is not directly above a def or class" in result.stderr


def test_scan_json_follows_the_documented_schema(tree, tmp_path):
    result = run(command("aiotel") + ["scan", "--json", "--require-field", "reviewed", "."], cwd=str(tree),
                 env={"AIOTEL_CACHE_DIR": "off"})
    report = json.loads(result.stdout)
    with open(SCHEMA_PATH) as fh:
        jsonschema.validate(report, json.load(fh))
    assert result.returncode == 1
    assert report["summary"]["by_tool"] == {"Claude": 1, "Copilot": 1, "GPT-4": 1, "Hidden": 1}
    total = next(f for f in report["functions"] if f["qualname"] == "shop.cart.Cart.total")
    assert total["fields"] == {"reviewed": "yes"} and total["def_line"] == 6 and total["file"] == "shop/cart.py"
    assert {m["qualname"] for m in report["missing_fields"]} == {"shop.cart.Cart.tax", "tool.helper", "m.hidden"}


def test_schema_rejects_a_report_missing_a_field(tree, tmp_path):
    result = run(command("aiotel") + ["scan", "--json", str(tree / "tool.py")], cwd=str(tmp_path))
    report = json.loads(result.stdout)
    del report["functions"][0]["tool"]
    with open(SCHEMA_PATH) as fh, pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, json.load(fh))


def test_require_field_passes_when_every_marker_has_it(tree, tmp_path):
    result = run(command("aiotel") + ["scan", "--require-field", "tool", str(tree / "shop")], cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr


def test_usage_errors_exit_2_with_a_message(tmp_path):
    missing = run(command("aiotel") + ["scan", "no/such/dir"], cwd=str(tmp_path))
    assert missing.returncode == 2 and "no such file or folder: no/such/dir" in missing.stderr
    bad_flag = run(command("aiotel") + ["scan", "--bogus"], cwd=str(tmp_path))
    assert bad_flag.returncode == 2 and "unrecognized arguments: --bogus" in bad_flag.stderr
    no_command = run(command("aiotel"), cwd=str(tmp_path))
    assert no_command.returncode == 2 and "COMMAND is required" in no_command.stderr


def test_bad_marker_variable_is_reported_once_and_scan_goes_on(tree, tmp_path):
    result = run(command("aiotel") + ["scan", str(tree / "tool.py")], cwd=str(tmp_path),
                 env={"AIOTEL_MARKERS": "(unclosed"})
    assert result.returncode == 0
    assert result.stderr.count("AIOTEL_MARKERS='(unclosed' ignored") == 1
    assert "tool.helper" in result.stdout
