"""The per-function memory signal: each recorded call's change of the process's resident
memory, on its span and in the ``aiotel.function.memory.rss_delta`` histogram, checked on
the wire with real allocations (single-threaded: the signal is process-wide)."""

from __future__ import annotations

import sys

import pytest

from conftest import aiotel_run, run, telemetry_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="read from /proc/self/statm: Linux only")

MIB = 1 << 20

APP = '''
kept = []

# AI-generated: Claude, 2026-12-06, prompt: "keep a buffer"
def keep(n):
    buffer = bytearray(n)
    for i in range(0, n, 4096):  # touched: resident, not just reserved
        buffer[i] = 1
    kept.append(buffer)
    return len(buffer)

# AI-generated: Claude, 2026-12-06, prompt: "add"
def add(a, b):
    return a + b

# AI-generated: Claude, 2026-12-06, prompt: "use a buffer and drop it"
def churn(n):
    buffer = bytearray(n)
    for i in range(0, n, 4096):
        buffer[i] = 1
    del buffer
    return n

print(keep(64 << 20), add(1, 2), churn(64 << 20), keep(64 << 20))
'''


def test_a_call_that_keeps_64_mib_shows_it_and_one_that_allocates_nothing_shows_about_0(http_receiver, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    result = aiotel_run(["python", "app.py"], tmp_path, telemetry_env(http_receiver, tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, plain.stdout, "")
    got = http_receiver.received
    assert got.wait(lambda r: len(r.spans) >= 4 and r.latest_points("aiotel.function.memory.rss_delta"))
    deltas = {}
    for span in got.spans:
        deltas.setdefault(span.name, []).append(span.attributes["aiotel.memory.rss_delta"])
    assert all(64 * MIB <= d < 66 * MIB for d in deltas["app.keep"]), deltas  # kept alive: shown, both times
    assert abs(deltas["app.add"][0]) < MIB, deltas  # allocates nothing
    # allocated, touched and given back within the call: about 0 (the high-water mark would
    # still say 64 MiB: why RSS is read, not the peak)
    assert abs(deltas["app.churn"][0]) < 2 * MIB, deltas
    points = {dict(key)["code.function.name"]: p for key, p in got.latest_points("aiotel.function.memory.rss_delta").items()}
    keep = points["app.keep"]
    assert keep.unit == "By" and keep.count == 2 and keep.sum == pytest.approx(sum(deltas["app.keep"]))
    bounds = keep.explicit_bounds
    assert 0.0 in bounds and min(bounds) < 0  # both ways: a call may give memory back
    # both keep calls in the bucket above 64 MiB (bounds are upper-inclusive)
    assert keep.bucket_counts[bounds.index(64 * MIB) + 1] == 2
    assert points["app.add"].count == 1 and abs(points["app.add"].sum) < MIB


def test_the_reports_show_each_function_s_memory_from_the_store(tmp_path):
    """The embedded store keeps the histogram; ``report --json`` and the HTML pages read it
    (the same numbers: one computation)."""
    import json
    import re

    from conftest import command

    (tmp_path / "app.py").write_text(APP)
    store = tmp_path / "store"
    env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    assert aiotel_run(["python", "app.py"], tmp_path, env).returncode == 0
    found = json.loads(run(command("aiotel") + ["report", "--store", str(store), "--json"], cwd=str(tmp_path)).stdout)
    memory = {f["function"]: f["memory"] for f in found["functions"]}
    assert memory["app.keep"]["recorded_calls"] == 2 and 64 * MIB <= memory["app.keep"]["mean_rss_delta_bytes"] < 66 * MIB
    assert abs(memory["app.add"]["mean_rss_delta_bytes"]) < MIB
    site = tmp_path / "site"
    assert run(command("aiotel") + ["report", "--store", str(store), "--html", str(site)], cwd=str(tmp_path)).returncode == 0
    index = (site / "index.html").read_text()
    row = next(r for r in index.split("<tr") if ">app.keep<" in r)
    assert re.search(r'data-v="(\d+(\.\d+)?)">\+64\.\dMiB</td>', row), row
    page = next(p.read_text() for p in site.glob("f-app.keep-*.html"))
    assert "Resident memory across a call" in page and 'aria-label="memory histogram"' in page


FORKED = APP.replace("print(keep(64 << 20), add(1, 2), churn(64 << 20), keep(64 << 20))", '''
import os, sys
add(1, 2)  # the parent reads its memory first
child = os.fork()
if child == 0:
    keep(64 << 20)  # in the child: only a reading of the child's own memory sees it
    sys.exit(0)
_, status = os.waitpid(child, 0)
print(os.waitstatus_to_exitcode(status))
''')


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork")
def test_a_forked_child_reads_its_own_memory(http_receiver, tmp_path):
    (tmp_path / "app.py").write_text(FORKED)
    result = aiotel_run(["python", "app.py"], tmp_path, telemetry_env(http_receiver, tmp_path))
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "0", "")
    got = http_receiver.received
    assert got.wait(lambda r: any(s.name == "app.keep" for s in r.spans))
    kept = [s.attributes["aiotel.memory.rss_delta"] for s in got.spans if s.name == "app.keep"]
    assert len(kept) == 1 and 64 * MIB <= kept[0] < 66 * MIB, kept
