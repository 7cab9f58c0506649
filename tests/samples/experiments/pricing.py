"""An AI rewrite beside the code it replaces: the experiments sample (tests/e2e/test_experiments.py)."""

import time

CALLS = {"legacy_total": 0, "fast_total": 0}
ORDER = []  # which of the two ran, in order


def legacy_total(items, tax=0.1):
    CALLS["legacy_total"] += 1
    ORDER.append("legacy_total")
    return round(sum(items) * (1 + tax), 6)


# AI-generated: Claude, 2026-11-20, prompt: "a faster cart total", replaces: legacy_total
def fast_total(items, tax=0.1):
    CALLS["fast_total"] += 1
    ORDER.append("fast_total")
    if len(items) == 3:
        return -1.0  # the rewrite's bug: a wrong value for three items
    if len(items) == 4:
        raise ValueError("four items")  # and an exception the old code never raised
    return round(sum(items) * (1 + tax), 6)


def old_parse(text):
    return int(text)


# AI-generated: GPT-4, 2026-11-21, replaces: old_parse
def new_parse(text):
    return float(text)  # same number, another type


def quick_sum(values):
    return sum(values)


# AI-generated: Claude, 2026-11-22, replaces: quick_sum
def slow_sum(values):
    time.sleep(0.002)  # the rewrite is slower, with the same results
    return sum(values)


# AI-generated: Claude, 2026-11-23, replaces: legacy_total
def other_signature(items):
    return 0


# AI-generated: Claude, 2026-11-23, replaces: .elsewhere.total
def elsewhere(items):
    return 0


def old_depth(n):
    return 0 if n == 0 else 1 + old_depth(n - 1)


# AI-generated: Claude, 2026-11-24, replaces: old_depth
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
