"""A pair across modules is made of two halves, one per module, in whichever order the
program imports them; each arm is looked up in its own module; a reload keeps the counts."""

from __future__ import annotations

import pytest

from aiotel.probes import experiments
from aiotel.probes.state import FunctionProbe

KEY = "shop.fast.fast_total replaces shop.legacy.total"


def module_runs(name, arm, local, probe, body):
    """What a rewritten module's header does: ``pair_half`` called from the module's own globals."""
    namespace = {"__name__": name, "pair_half": experiments.pair_half, "probe": probe}
    exec(body, namespace)
    exec(f"pair_half(probe, {arm!r}, {KEY!r}, {local!r}, 'eq')", namespace)
    return namespace


@pytest.fixture(autouse=True)
def forget_pairs():
    yield
    experiments._experiments.pop(KEY, None)
    experiments._waiting.pop(KEY, None)
    experiments.configure(0.0, {})


@pytest.mark.parametrize("control_first", [True, False])
def test_halves_meet_in_either_order_and_each_arm_is_found_in_its_module(control_first):
    experiments.configure(1.0, {})
    candidate, control = FunctionProbe("shop.fast.fast_total", {}, {}), FunctionProbe("shop.legacy.total", {}, {})
    runs = [("shop.legacy", "control", "total", control, "def total(items): return 0"),
            ("shop.fast", "candidate", "fast_total", candidate, "def fast_total(items): return 1")]
    if not control_first:
        runs.reverse()
    first = module_runs(*runs[0])
    # one half alone is no experiment: nothing is shadowed, nothing is reported
    assert (runs[0][3].experiment, runs[0][3].shadow_rate) == (None, 0.0)
    assert KEY not in [f"{e.probes['candidate'].name} replaces {e.probes['control'].name}" for e in experiments.all_experiments()]
    second = module_runs(*runs[1])
    experiment = candidate.experiment
    assert experiment is control.experiment is not None
    assert experiments.all_experiments().count(experiment) == 1
    assert (candidate.shadow_rate, control.shadow_rate) == (1.0, 1.0)
    namespaces = {runs[0][1]: first, runs[1][1]: second}
    assert experiment.function("candidate") is namespaces["candidate"]["fast_total"]
    assert experiment.function("control") is namespaces["control"]["total"]


def test_a_module_run_again_keeps_the_pair_and_its_counts():
    candidate, control = FunctionProbe("shop.fast.fast_total", {}, {}), FunctionProbe("shop.legacy.total", {}, {})
    module_runs("shop.legacy", "control", "total", control, "def total(items): return 0")
    module_runs("shop.fast", "candidate", "fast_total", candidate, "def fast_total(items): return 1")
    experiment = candidate.experiment
    experiment.calls["candidate"] = 7
    again = FunctionProbe("shop.fast.fast_total", {}, {})
    reloaded = module_runs("shop.fast", "candidate", "fast_total", again, "def fast_total(items): return 2")
    assert again.experiment is experiment and experiment.probes["candidate"] is again
    assert experiment.calls == {"candidate": 7}
    assert experiment.function("candidate") is reloaded["fast_total"]
    assert experiments.all_experiments().count(experiment) == 1
