"""Errors tied to their inputs (AIOTEL_CAPTURE_ARGS=shape): a failed call's argument shapes
are counted by exception type (aiotel.function.input.errors, lengths in power-of-ten
buckets) and put on its span, late spans included; never another call's shapes (threads,
recursion); and the report names the shape the failures concentrate on."""

from __future__ import annotations

import sys
import textwrap

import pytest

from conftest import command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

MODULE = textwrap.dedent(
    '''\
    # AI-generated: Claude, 2026-12-06, prompt: "total"
    def total(payload, mode):
        if len(payload) > 100:
            raise ValueError("payload too long")
        return sum(payload)


    # AI-generated: Claude, 2026-12-06, prompt: "walk"
    def walk(items, depth):
        if depth:
            return walk(items + [0], depth - 1)  # an inner call of the same function, then the outer fails
        raise KeyError("bottom")
    '''
)

APP = textwrap.dedent(
    '''\
    import threading
    import shop

    failed = 0
    for i in range(400):
        try:
            shop.total([1] * (150 if i % 40 == 0 else i % 30), "sum")
        except ValueError:
            failed += 1


    def small():
        for _ in range(3000):
            shop.total([1, 2], "sum")


    def big():
        global failed
        for _ in range(300):
            try:
                shop.total([1] * 500, "sum")
            except ValueError:
                failed += 1

    threads = [threading.Thread(target=small), threading.Thread(target=big)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        shop.walk([], 2)
    except KeyError:
        pass
    print(failed)
    '''
)


def test_failed_calls_are_counted_by_the_shapes_they_started_with(tmp_path, http_receiver):
    (tmp_path / "shop.py").write_text(MODULE)
    (tmp_path / "app.py").write_text(APP)
    plain = run([sys.executable, "app.py"], cwd=str(tmp_path))
    # no call is sampled: every failure's span is a late one, and its shapes were kept per thread
    env = telemetry_env(http_receiver, tmp_path, AIOTEL_CAPTURE_ARGS="shape", AIOTEL_LATE_SPAN_RATE="100000",
                        OTEL_TRACES_SAMPLER="always_off")
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env)
    assert (result.returncode, result.stdout, result.stderr) == (0, plain.stdout, "")
    assert plain.stdout.strip() == "310"

    got = http_receiver.received
    assert got.wait(lambda r: any(p.metric == "aiotel.function.input.errors" for p in r.points))
    counts = {}
    for p in got.latest_points("aiotel.function.input.errors").values():
        a = p.attributes
        counts[(a["code.function.name"], a["error.type"], a["aiotel.input.parameter"], a["aiotel.input.type"],
                a["aiotel.input.length"])] = p.sum
    # every failure of total, on each parameter, with its own shape: never the small
    # lists another thread was calling with at the same time
    assert counts[("shop.total", "ValueError", "payload", "list", "101..1000")] == 310
    assert counts[("shop.total", "ValueError", "mode", "str", "2..10")] == 310
    assert {k for k in counts if k[0] == "shop.total"} == {
        ("shop.total", "ValueError", "payload", "list", "101..1000"), ("shop.total", "ValueError", "mode", "str", "2..10")}
    # the middle call of the recursion failed after an inner call of its own: unknown,
    # counted, never given the inner call's shapes; the innermost knows its own, and so
    # does the outermost, which carried the trace's (not recorded) decision on its Call
    walk = {k[3:]: v for k, v in counts.items() if k[0] == "shop.walk" and k[2] == "items"}
    assert walk == {("list", "2..10"): 1, ("_UNKNOWN", ""): 1, ("list", "0"): 1}, walk
    # the failed calls' spans (late ones: they were not sampled) carry the shapes
    failed = [s for s in got.spans if s.name == "shop.total" and s.attributes.get("error.type") == "ValueError"]
    assert len(failed) == 310 and all(s.attributes["aiotel.span.reason"] == "error" for s in failed)
    assert all(s.attributes["aiotel.input.payload.type"] == "list" and s.attributes["aiotel.input.payload.length"] in (150, 500)
               and s.attributes["aiotel.input.mode.length"] == 3 for s in failed)


def test_the_report_says_which_input_the_errors_come_with(tmp_path):
    (tmp_path / "shop.py").write_text(MODULE)
    (tmp_path / "app.py").write_text(APP)
    store = tmp_path / "store"
    env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "AIOTEL_CAPTURE_ARGS": "shape"}
    assert run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path), env=env).returncode == 0
    text = run(command("aiotel") + ["report", "--store", str(store)], cwd=str(tmp_path)).stdout
    # of 3710 calls of total, 310 had a payload of length 101..1000: all of the failures
    assert ("shop.total (unknown): ValueError: 310 of 310 failures had `payload` a list of length 101..1000 "
            "(310 calls had it)") in text, text
    site = tmp_path / "site"
    assert run(command("aiotel") + ["report", "--store", str(store), "--html", str(site)], cwd=str(tmp_path)).returncode == 0
    page = next(p.read_text() for p in site.glob("f-shop.total-*.html"))
    assert "<h2>Errors and their inputs</h2>" in page
    assert "ValueError: 310 of 310 failures had `payload` a list of length 101..1000 (310 calls had it)" in page


DRIFTING = textwrap.dedent(
    '''\
    import sys
    import shop

    for i in range(200):
        size = 500 if sys.argv[1] == "2.0" and i % 2 else 5
        try:
            shop.total([1] * size, "sum")
        except ValueError:
            pass
    '''
)


def test_compare_tells_how_each_parameter_s_inputs_changed_between_versions(tmp_path):
    import json

    (tmp_path / "shop.py").write_text(MODULE)
    (tmp_path / "app.py").write_text(DRIFTING)
    store = tmp_path / "store"
    for version in ("1.0", "2.0"):
        env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "AIOTEL_CAPTURE_ARGS": "shape",
               "OTEL_RESOURCE_ATTRIBUTES": f"service.version={version}"}
        assert run(command("aiotel-run") + ["python", "app.py", version], cwd=str(tmp_path), env=env).returncode == 0
    compared = run(command("aiotel") + ["report", "--store", str(store), "--compare", "1.0", "2.0"], cwd=str(tmp_path))
    # half the calls of 2.0 have a payload of 500 items: a distance of 0.5; `mode` is the same
    assert "shop.total: `payload`: list of length 101..1000 0% -> 50% of calls (distance 0.50)" in compared.stdout
    assert "`mode`" not in compared.stdout
    data = json.loads(run(command("aiotel") + ["report", "--store", str(store), "--compare", "1.0", "2.0", "--json"],
                          cwd=str(tmp_path)).stdout)
    drift = next(f for f in data["functions"] if f["function"] == "shop.total")["input_drift"]
    assert [(d["parameter"], d["shape"], d["old_share"], d["new_share"]) for d in drift] == [
        ("payload", "list of length 101..1000", 0.0, 0.5)]
