"""Experiments (AIOTEL_SHADOW) as a user runs them: `aiotel-run` in a fresh interpreter, from
another directory, checked on the wire (OTLP decoded from protobuf) and in `aiotel report`."""

from __future__ import annotations

import collections
import json
import os
import shutil
import sys

import pytest

from conftest import SAMPLES, aiotel_run, command, run, telemetry_env

pytestmark = pytest.mark.instrumentation

SAMPLE = os.path.join(SAMPLES, "experiments")
TOTAL = {"aiotel.experiment.candidate": "pricing.fast_total", "aiotel.experiment.control": "pricing.legacy_total",
         "aiotel.experiment.comparator": "eq"}
PARSE = {"aiotel.experiment.candidate": "pricing.new_parse", "aiotel.experiment.control": "pricing.old_parse",
         "aiotel.experiment.comparator": "eq"}


@pytest.fixture
def app(tmp_path):
    target = tmp_path / "experiments"
    shutil.copytree(SAMPLE, target)
    return target


def counters(received, metric):
    """attributes (as a sorted tuple) -> value, for the latest point of each series."""
    return {key: point.sum for key, point in received.latest_points(metric).items()}


def series(attributes, **more):
    return tuple(sorted(dict(attributes, **{k.replace("__", "."): v for k, v in more.items()}).items()))


def test_nothing_runs_twice_by_default(app, http_receiver, tmp_path):
    plain = run([sys.executable, "main.py", "mixed"], cwd=str(app))
    result = aiotel_run(["python", "main.py", "mixed"], app, telemetry_env(http_receiver, tmp_path))
    assert (result.returncode, result.stdout, result.stderr.count("experiment not shadowed")) == (
        plain.returncode, plain.stdout, 1)  # the refused pairs are said once, in one line
    assert "{'legacy_total': 2, 'fast_total': 50}" in result.stdout
    got = http_receiver.received
    assert got.wait(lambda r: r.latest_points("aiotel.function.duration"))
    assert not [p for p in got.points if p.metric.startswith("aiotel.experiment.")]
    assert not [s for s in got.spans if "aiotel.shadow" in s.attributes]


def test_shadow_runs_compare_on_the_wire_and_change_no_result(app, http_receiver, tmp_path):
    plain = run([sys.executable, "main.py", "mixed"], cwd=str(app))
    result = aiotel_run(["python", "main.py", "mixed"], app, telemetry_env(http_receiver, tmp_path, AIOTEL_SHADOW="1"))
    assert result.returncode == plain.returncode == 0
    # the program gets what it called: each line as without aiotel, only the call counts
    # show that both functions ran
    assert result.stdout.splitlines()[0] == plain.stdout.splitlines()[0]
    assert result.stdout.splitlines()[1] == "{'legacy_total': 52, 'fast_total': 52}"
    got = http_receiver.received
    assert got.wait(lambda r: r.latest_points("aiotel.experiment.calls") and r.latest_points("aiotel.function.duration"))

    assert counters(got, "aiotel.experiment.calls") == {
        series(TOTAL, aiotel__experiment__live="candidate"): 50,
        series(TOTAL, aiotel__experiment__live="control"): 2,
        series(PARSE, aiotel__experiment__live="candidate"): 1,
    }
    mismatch = "aiotel.experiment.mismatch.kind"
    assert counters(got, "aiotel.experiment.mismatches") == {
        series(TOTAL, aiotel__experiment__live="candidate", **{mismatch.replace(".", "__"): "value"}): 10,
        series(TOTAL, aiotel__experiment__live="candidate", **{mismatch.replace(".", "__"): "exception"}): 10,
        series(TOTAL, aiotel__experiment__live="control", **{mismatch.replace(".", "__"): "exception"}): 1,
        series(PARSE, aiotel__experiment__live="candidate", **{mismatch.replace(".", "__"): "type"}): 1,
    }
    assert counters(got, "aiotel.experiment.shadow.errors") == {
        series(TOTAL, aiotel__experiment__arm="candidate", error__type="ValueError"): 1,
    }
    durations = {key: p.count for key, p in got.latest_points("aiotel.experiment.arm.duration").items()}
    assert durations == {
        series(TOTAL, aiotel__experiment__arm="candidate", aiotel__experiment__role="live"): 50,
        series(TOTAL, aiotel__experiment__arm="control", aiotel__experiment__role="shadow"): 50,
        series(TOTAL, aiotel__experiment__arm="control", aiotel__experiment__role="live"): 2,
        series(TOTAL, aiotel__experiment__arm="candidate", aiotel__experiment__role="shadow"): 2,
        series(PARSE, aiotel__experiment__arm="candidate", aiotel__experiment__role="live"): 1,
        series(PARSE, aiotel__experiment__arm="control", aiotel__experiment__role="shadow"): 1,
    }
    # the call counts are the program's calls: a shadow arm is never one
    calls = {}
    for key, point in got.latest_points("aiotel.function.duration").items():
        name = dict(key)["code.function.name"]
        calls[name] = calls.get(name, 0) + point.count
    assert calls == {"pricing.fast_total": 50, "pricing.legacy_total": 2, "pricing.new_parse": 1}

    # shadow spans: tagged, children of the live call's span; the mismatch is an event on
    # the live span with the types, never the values
    assert got.wait(lambda r: sum(1 for s in r.spans if s.attributes.get("aiotel.shadow")) == 53)
    spans = {s.span_id: s for s in got.spans}
    for shadow in (s for s in got.spans if s.attributes.get("aiotel.shadow")):
        live = spans[shadow.parent_span_id]
        assert "aiotel.shadow" not in live.attributes
        assert {live.name, shadow.name} in ({"pricing.fast_total", "pricing.legacy_total"},
                                            {"pricing.new_parse", "pricing.old_parse"})
        assert shadow.attributes["aiotel.experiment.arm"] == (
            "control" if shadow.name in ("pricing.legacy_total", "pricing.old_parse") else "candidate")
    events = [(s.name, e) for s in got.spans for e in s.events if e["name"] == "aiotel.experiment.mismatch"]
    assert len(events) == 22
    parse_event = [e for name, e in events if name == "pricing.new_parse"][0]
    assert parse_event == {"name": "aiotel.experiment.mismatch", "aiotel.experiment.mismatch.kind": "type",
                                         "aiotel.experiment.candidate.type": "float",
                                         "aiotel.experiment.control.type": "int"}
    assert "7" not in json.dumps([e for _, e in events])


def test_an_exception_is_the_live_arms_with_its_traceback(app, tmp_path):
    plain = run([sys.executable, "main.py", "crash"], cwd=str(app))
    shadowed = aiotel_run(["python", "main.py", "crash"], app,
                          {"AIOTEL_SHADOW": "1", "AIOTEL_STORE": str(tmp_path / "store"),
                           "AIOTEL_CACHE_DIR": str(tmp_path / "cache")})
    assert plain.returncode == shadowed.returncode == 1
    refused = [line for line in shadowed.stderr.splitlines() if line.startswith("aiotel:")]
    assert len(refused) == 1 and "experiment not shadowed" in refused[0]
    assert [line for line in shadowed.stderr.splitlines() if not line.startswith("aiotel:")] == plain.stderr.splitlines()
    assert 'line 22, in fast_total\n    raise ValueError("four items")' in plain.stderr


def test_the_fraction_is_respected(app, tmp_path):
    store = tmp_path / "store"
    env = {"AIOTEL_SHADOW": "0.3,new_parse=1", "AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    result = aiotel_run(["python", "main.py", "many", "4000"], app, env)
    assert result.returncode == 0, result.stderr
    report = run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path))
    [experiment] = json.loads(report.stdout)["experiments"]
    compared = experiment["calls_compared"]
    # binomial(4000, 0.3): mean 1200, standard deviation 29; five of them either side
    assert 1055 <= compared <= 1345, compared
    assert experiment["calls_compared_by_live_arm"] == {"control": compared}

    named = aiotel_run(["python", "main.py", "many", "500"], app,
                       dict(env, AIOTEL_SHADOW="fast_total=1", AIOTEL_STORE=str(tmp_path / "named")))
    assert named.returncode == 0
    report = run(command("aiotel") + ["report", "--json", "--store", str(tmp_path / "named")], cwd=str(tmp_path))
    # a name selects its pair: calls of either arm
    assert [e["calls_compared"] for e in json.loads(report.stdout)["experiments"]] == [500]


def test_the_report_gives_the_verdict(app, tmp_path):
    store = tmp_path / "store"
    env = {"AIOTEL_SHADOW": "1", "AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    for mode in ("slow", "mixed"):
        assert aiotel_run(["python", "main.py", mode], app, env).returncode == 0
    report = run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path))
    verdicts = {e["candidate"]: e for e in json.loads(report.stdout)["experiments"]}
    slow = verdicts["pricing.slow_sum"]
    assert slow["verdict"] == "same results, slower", slow
    assert slow["calls_compared"] == 60 and slow["mismatches"] == {}
    low, high = slow["latency_ratio_95ci"]
    assert 1 < low <= slow["latency_ratio"] <= high
    total = verdicts["pricing.fast_total"]
    assert total["verdict"] == "differs"
    assert total["mismatches"] == {"value": 10, "exception": 11}
    assert verdicts["pricing.new_parse"]["verdict"] == "differs"

    text = run(command("aiotel") + ["report", "--store", str(store)], cwd=str(tmp_path))
    assert "EXPERIMENTS" in text.stdout
    assert "pricing.slow_sum: same results, slower" in text.stdout


def test_scan_and_doctor_list_pairs_and_refusals(app, tmp_path):
    scan = run(command("aiotel") + ["scan", "--json", "--no-cache", "pricing.py"], cwd=str(app))
    found = json.loads(scan.stdout)
    assert [(p["candidate"], p["control"], p["comparator"]) for p in found["pairs"]] == [
        ("pricing.fast_total", "pricing.legacy_total", "eq"),
        ("pricing.new_parse", "pricing.old_parse", "eq"),
        ("pricing.slow_sum", "pricing.quick_sum", "eq"),
        ("pricing.depth", "pricing.old_depth", "eq"),
    ]
    # the replaced functions are not AI-generated: listed as controls, not counted
    assert found["summary"]["functions"] == 6
    refused = {n["line"]: n["message"] for n in found["notices"]}
    assert refused == {
        46: "experiment not shadowed: signatures differ: other_signature(items) and legacy_total(items, tax=...)",
        51: "experiment not shadowed: replaces: '.elsewhere.total' is relative, and pricing is not in a package",
    }
    doctor = run(command("aiotel") + ["doctor"], cwd=str(app), env={"AIOTEL_CACHE_DIR": str(tmp_path / "cache")})
    assert "experiment: pricing.fast_total replaces pricing.legacy_total (compare: eq)" in doctor.stdout
    assert "line 46: experiment not shadowed: signatures differ" in doctor.stdout


CANARY_APP = '''\
import os, time


# AI-generated: Claude, 2026-11-20
def handle(n):
    time.sleep(float(os.environ["DELAY"]))
    return n


for n in range(30):
    handle(n)
'''


def test_compare_groups_by_any_resource_attribute(tmp_path):
    (tmp_path / "app.py").write_text(CANARY_APP)
    store = tmp_path / "store"
    for environment, delay in (("stable", "0.001"), ("canary", "0.004")):
        env = {"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "DELAY": delay,
               "OTEL_RESOURCE_ATTRIBUTES": f"deployment.environment.name={environment},service.version=1.0"}
        assert aiotel_run(["python", "app.py"], tmp_path, env).returncode == 0
    compare = command("aiotel") + ["report", "--store", str(store), "--json", "--compare", "stable", "canary",
                                   "--by", "deployment.environment.name"]
    result = run(compare, cwd=str(tmp_path))
    assert result.returncode == 1, result.stderr  # a regression is flagged
    found = json.loads(result.stdout)
    assert found["by"] == "deployment.environment.name"
    [function] = found["functions"]
    assert function["function"] == "app.handle" and function["slower"] and not function["more_errors"], function
    # grouped by service.version, both runs are one version: nothing to set side by side
    same = run(compare[:-2], cwd=str(tmp_path))
    assert same.returncode == 2 and "no data for service.version 'stable', 'canary'" in same.stderr


@pytest.mark.parametrize("accelerator", ["true", "false"])
def test_a_shadow_arm_is_no_call_with_spans_off(app, tmp_path, accelerator):
    """Metrics only (no trace exporter): the C enter reads no context then, unless a shadow
    arm runs; the Python one always does. Either way the arm is told apart."""
    store = tmp_path / "store"
    env = {"AIOTEL_SHADOW": "1", "AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
           "OTEL_TRACES_EXPORTER": "none", "AIOTEL_ACCELERATOR": accelerator}
    assert aiotel_run(["python", "main.py", "mixed"], app, env).returncode == 0
    report = json.loads(run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path)).stdout)
    assert {f["function"]: f["calls"] for f in report["functions"]} == {
        "pricing.fast_total": 50, "pricing.legacy_total": 2, "pricing.new_parse": 1}
    verdicts = {e["candidate"]: e for e in report["experiments"]}
    assert verdicts["pricing.fast_total"]["calls_compared"] == 52
    assert verdicts["pricing.fast_total"]["mismatches"] == {"value": 10, "exception": 11}


def test_an_arm_rebound_at_run_time_is_said_once_and_not_compared(app, tmp_path):
    (app / "rebind.py").write_text(
        "import pricing\n"
        "pricing.legacy_total = None  # the program replaces the control by something else\n"
        "print([pricing.fast_total([1, 2]) for _ in range(3)])\n")
    store = tmp_path / "store"
    env = {"AIOTEL_SHADOW": "1", "AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    result = aiotel_run(["python", "rebind.py"], app, env)
    plain = run([sys.executable, "rebind.py"], cwd=str(app))
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout) == (0, "[3.3, 3.3, 3.3]\n")
    said = [line for line in result.stderr.splitlines() if "no longer a function" in line]
    assert said == ["aiotel: experiment pricing.fast_total replaces pricing.legacy_total: legacy_total is no longer "
                    "a function of its module; calls are not compared while it is not"]
    report = json.loads(run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path)).stdout)
    assert report["experiments"] == []


def test_the_arm_that_runs_first_is_drawn_per_call(app, tmp_path):
    env = {"AIOTEL_STORE": str(tmp_path / "store"), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    assert aiotel_run(["python", "main.py", "order"], app, env).stdout == "['fast_total'] 40\n"
    # 40 calls, each drawing which arm goes first: both orders appear (all alike: 2 in 2**40)
    shadowed = aiotel_run(["python", "main.py", "order"], app, dict(env, AIOTEL_SHADOW="1"))
    assert shadowed.stdout == "['fast_total', 'legacy_total'] 80\n"


def test_recursion_below_an_arm_is_part_of_it(app, tmp_path):
    """A recursive pair: each top-level call is one trial; the live arm's recursive calls are
    its calls, the shadow arm's are part of the shadow arm (counted nowhere)."""
    store = tmp_path / "store"
    env = {"AIOTEL_SHADOW": "1", "AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    result = aiotel_run(["python", "main.py", "recurse"], app, env)
    assert (result.returncode, result.stdout) == (0, "[20, 20, 20, 20, 20]\n")
    report = json.loads(run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path)).stdout)
    assert {f["function"]: f["calls"] for f in report["functions"]} == {"pricing.depth": 105}  # 5 x 21, as without aiotel
    [experiment] = report["experiments"]
    assert (experiment["candidate"], experiment["calls_compared"], experiment["mismatches"]) == ("pricing.depth", 5, {})


ACROSS = os.path.join(SAMPLES, "experiments_across")
SHOP_TOTAL = {"aiotel.experiment.candidate": "shop.fast.fast_total", "aiotel.experiment.control": "shop.legacy.total",
              "aiotel.experiment.comparator": "eq"}
SHOP_COUNT = dict(SHOP_TOTAL, **{"aiotel.experiment.candidate": "shop.fast.fast_count",
                                 "aiotel.experiment.control": "shop.legacy.Cart.count"})
SHOP_RATE = dict(SHOP_TOTAL, **{"aiotel.experiment.candidate": "shop.billing.vat.vat_rate",
                                "aiotel.experiment.control": "shop.legacy.rate"})
KIND = "aiotel__experiment__mismatch__kind"


@pytest.fixture
def shop(tmp_path):
    target = tmp_path / "across"
    shutil.copytree(ACROSS, target)
    return target


@pytest.mark.parametrize("mode", ["legacy", "fast"])
def test_a_pair_across_modules_is_shadowed_though_the_replaced_code_is_imported_first(shop, http_receiver, tmp_path, mode):
    """main.py imports shop.legacy (no marker) before the rewrites that name it: aiotel
    finds the pairs when the package is imported and instruments the control anyway."""
    plain = run([sys.executable, "main.py", mode], cwd=str(shop))
    result = aiotel_run(["python", "main.py", mode], shop, telemetry_env(http_receiver, tmp_path, AIOTEL_SHADOW="1"))
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout) == (0, plain.stdout)
    assert "[11, 'ValueError: negative quantity', 4]" in plain.stdout or mode == "fast"
    # the refused pair is said once, with the reason; the others are not mentioned
    assert result.stderr.count("experiment not shadowed") == 1
    assert "signatures differ: shop.fast.fast_rate(region, default=...) and shop.legacy.rate(region)" in result.stderr
    got = http_receiver.received
    assert got.wait(lambda r: r.latest_points("aiotel.experiment.calls"))
    live = "control" if mode == "legacy" else "candidate"
    assert counters(got, "aiotel.experiment.calls") == {
        series(SHOP_TOTAL, aiotel__experiment__live=live): 3,
        series(SHOP_COUNT, aiotel__experiment__live="control"): 1,
        series(SHOP_RATE, aiotel__experiment__live="candidate"): 1,
        series(SHOP_RATE, aiotel__experiment__live="control"): 1,
    }
    assert counters(got, "aiotel.experiment.mismatches") == {
        series(SHOP_TOTAL, aiotel__experiment__live=live, **{KIND: "exception"}): 1,
        series(SHOP_COUNT, aiotel__experiment__live="control", **{KIND: "value"}): 1,
    }
    shadow_errors = counters(got, "aiotel.experiment.shadow.errors")
    assert shadow_errors == ({} if mode == "legacy" else
                             {series(SHOP_TOTAL, aiotel__experiment__arm="control", error__type="ValueError"): 1})
    # each arm's calls are the program's own: the shadow runs are counted under experiments only
    calls = collections.Counter()
    for key, point in got.latest_points("aiotel.function.duration").items():  # a series per error.type
        calls[dict(key)["code.function.name"]] += point.count
    assert calls == {("shop.legacy.total" if mode == "legacy" else "shop.fast.fast_total"): 3,
                     "shop.legacy.Cart.count": 1, "shop.billing.vat.vat_rate": 1, "shop.legacy.rate": 1}


def test_a_pair_across_modules_costs_nothing_by_default_and_its_control_is_watched(shop, http_receiver, tmp_path):
    result = aiotel_run(["python", "main.py", "legacy"], shop, telemetry_env(http_receiver, tmp_path))
    assert result.returncode == 0
    got = http_receiver.received
    assert got.wait(lambda r: r.latest_points("aiotel.function.duration"))
    assert not [p for p in got.points if p.metric.startswith("aiotel.experiment.")]
    sources = {s.attributes["code.function.name"]: s.attributes["aiotel.provenance.source"] for s in got.spans}
    assert sources["shop.legacy.total"] == "control" and sources["shop.billing.vat.vat_rate"] == "comment"
    # a second run reads the scan cache and the cached rewritten code: the same pairs
    again = aiotel_run(["python", "main.py", "legacy"], shop, telemetry_env(http_receiver, tmp_path, AIOTEL_SHADOW="1"))
    assert (again.returncode, again.stdout) == (result.returncode, result.stdout)
    assert got.wait(lambda r: r.latest_points("aiotel.experiment.calls"))


def test_a_pair_whose_control_module_is_excluded_is_said_not_shadowed(shop, tmp_path):
    """AIOTEL_EXCLUDE=shop.legacy: the controls there run uninstrumented, so their pairs
    cannot be shadowed; said once, naming them, and the program's output is its own."""
    plain = run([sys.executable, "main.py", "legacy"], cwd=str(shop))
    result = aiotel_run(["python", "main.py", "legacy"], shop, {
        "AIOTEL_SHADOW": "1", "AIOTEL_EXCLUDE": "shop.legacy", "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
        "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"})
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout)
    said = [line for line in result.stderr.splitlines() if "its module is excluded" in line]
    assert len(said) == 1 and "was imported before" not in result.stderr, result.stderr
    for pair in ("shop.fast.fast_total replaces shop.legacy.total", "shop.fast.fast_count replaces shop.legacy.Cart.count",
                 "shop.billing.vat.vat_rate replaces shop.legacy.rate"):
        assert pair in said[0], said[0]


def test_scan_lists_pairs_across_modules(shop):
    scan = run(command("aiotel") + ["scan", "--json", "--no-cache", "."], cwd=str(shop))
    found = json.loads(scan.stdout)
    assert [(p["candidate"], p["control"]) for p in found["pairs"]] == [
        ("shop.billing.vat.vat_rate", "shop.legacy.rate"), ("shop.fast.fast_total", "shop.legacy.total"),
        ("shop.fast.fast_count", "shop.legacy.Cart.count")]
    assert [n["message"] for n in found["notices"]] == [
        "experiment not shadowed: signatures differ: shop.fast.fast_rate(region, default=...) and shop.legacy.rate(region)"]
    assert "shop.legacy.total" not in [f["qualname"] for f in found["functions"]]  # a control is not AI-generated
    doctor = run(command("aiotel") + ["doctor"], cwd=str(shop), env={"AIOTEL_CACHE_DIR": str(shop / "cache")})
    assert ("  ./shop/legacy.py: shop.legacy.total, shop.legacy.Cart.count, shop.legacy.rate\n"
            "    replaced by rewrites elsewhere (instrumented as their controls): shop.legacy.total, "
            "shop.legacy.Cart.count, shop.legacy.rate\n") in doctor.stdout
    assert "experiment: shop.billing.vat.vat_rate replaces shop.legacy.rate (compare: eq)" in doctor.stdout


def test_a_control_imported_before_aiotel_started_is_said_once(shop, tmp_path):
    """`import aiotel.auto` after the replaced code already ran: its pair cannot be
    followed, and aiotel says so instead of reporting an experiment that never runs."""
    (shop / "late.py").write_text("from shop import legacy\nimport aiotel.auto\nfrom shop import fast\n"
                                  "print(legacy.total([(1, 2)]), fast.fast_total([(1, 2)]))\n")
    env = {"AIOTEL_SHADOW": "1", "AIOTEL_STORE": str(tmp_path / "store"), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")}
    result = run([sys.executable, "late.py"], cwd=str(shop), env=env)
    assert (result.returncode, result.stdout) == (0, "2 2\n")
    said = [line for line in result.stderr.splitlines() if "imported before aiotel read the marker" in line]
    assert said == ["aiotel: experiment not shadowed: shop.fast.fast_total replaces shop.legacy.total, shop.fast.fast_count "
                    "replaces shop.legacy.Cart.count: shop.legacy was imported before aiotel read the marker that names it"]


def test_two_rewrites_of_one_function_in_two_modules_pair_only_the_first(tmp_path):
    app = tmp_path / "app"
    (app / "shop").mkdir(parents=True)
    (app / "shop" / "__init__.py").write_text("")
    (app / "shop" / "legacy.py").write_text("def total(items):\n    return sum(items)\n")
    for name in ("a", "b"):
        (app / "shop" / f"{name}.py").write_text(
            f"# AI-generated: Claude, replaces: .legacy.total\ndef total_{name}(items):\n    return sum(items)\n")
    (app / "main.py").write_text("from shop import legacy, a, b\nprint(legacy.total([1, 2]), a.total_a([1]), b.total_b([2]))\n")
    store = tmp_path / "store"
    result = aiotel_run(["python", "main.py"], app, {"AIOTEL_SHADOW": "1", "AIOTEL_STORE": str(store),
                                                       "AIOTEL_CACHE_DIR": str(tmp_path / "cache")})
    assert (result.returncode, result.stdout) == (0, "3 1 2\n")
    assert [line for line in result.stderr.splitlines() if "experiment not shadowed" in line] == [
        "aiotel: experiment not shadowed: shop.b.total_b replaces shop.legacy.total: shop.legacy.total is in the "
        "pair shop.a.total_a replaces shop.legacy.total already"]
    report = json.loads(run(command("aiotel") + ["report", "--json", "--store", str(store)], cwd=str(tmp_path)).stdout)
    assert [(e["candidate"], e["control"], e["calls_compared"]) for e in report["experiments"]] == [
        ("shop.a.total_a", "shop.legacy.total", 2)]
