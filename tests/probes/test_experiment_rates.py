"""AIOTEL_SHADOW's per-function fractions: a name selects its pair, by any of its spellings,
and an arm's own name wins over its partner's."""

from __future__ import annotations

import pytest

from aiotel.probes import experiments
from aiotel.probes.state import FunctionProbe


@pytest.fixture
def pair():
    candidate = FunctionProbe("shop.pricing.Cart.fast_total", {}, {})
    control = FunctionProbe("shop.pricing.Cart.total", {}, {})
    experiment = experiments.Experiment({"candidate": (candidate, {}, "Cart.fast_total"),
                                         "control": (control, {}, "Cart.total")}, "eq")
    yield experiment, candidate, control
    experiments.configure(0.0, {})


def rates(experiment, default, by_name):
    experiments.configure(default, by_name)
    experiment.apply_rates()
    return experiment.probes["candidate"].shadow_rate, experiment.probes["control"].shadow_rate


@pytest.mark.parametrize("name", ["shop.pricing.Cart.total", "Cart.total", "total",
                                  "shop.pricing.Cart.fast_total", "Cart.fast_total", "fast_total"])
def test_either_arm_by_any_spelling_selects_the_pair(pair, name):
    assert rates(pair[0], 0.25, {name: 1.0}) == (1.0, 1.0)


def test_an_arms_own_name_wins_and_the_rest_take_the_default(pair):
    assert rates(pair[0], 0.0, {"total": 0.5, "fast_total": 1.0}) == (1.0, 0.5)
    assert rates(pair[0], 0.1, {"pricing.Cart.total": 1.0, "other": 1.0}) == (0.1, 0.1)  # not a spelling of it
