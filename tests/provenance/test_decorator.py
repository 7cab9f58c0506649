"""@aiotel.ai_generated at run time: attaches provenance, returns the very same object."""

from __future__ import annotations

import inspect

import aiotel


def test_returns_the_same_function_with_provenance_attached():
    def original(a, b=2):
        """Doc."""
        return a + b

    marked = aiotel.ai_generated(tool="Claude", date="2024-02-02", prompt="add", reviewed="yes")(original)
    assert marked is original
    assert marked.__aiotel_provenance__ == {"tool": "Claude", "date": "2024-02-02", "prompt": "add", "reviewed": "yes"}
    assert str(inspect.signature(marked)) == "(a, b=2)" and marked(1) == 3


def test_bare_and_positional_forms():
    @aiotel.ai_generated
    def bare():
        pass

    @aiotel.ai_generated("Gemini")
    class Generated:
        pass

    assert bare.__aiotel_provenance__ == {"tool": "unknown"}
    assert Generated.__aiotel_provenance__ == {"tool": "Gemini"}


def test_objects_that_refuse_attributes_are_returned_unchanged():
    assert aiotel.ai_generated(tool="X")(len) is len


def test_importing_aiotel_imports_no_opentelemetry():
    import subprocess
    import sys

    code = "import sys, aiotel; print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'libcst'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
