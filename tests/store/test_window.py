"""The window's totals read from a few lines of each process's files (``store.window``) are
the totals of every point (``rollup.series_totals`` over ``read_points``), for any
``since``, across rotated files, and when the newest file is empty."""

from __future__ import annotations

import os
import shutil

import pytest

from aiotel.store.details import calls_over_time, durations_by_function
from aiotel.store.rollup import DURATION, read_points, store_files, summarize, series_totals
from aiotel.store.window import _TIME, read_totals, read_window
from conftest import aiotel_run

PROGRAM = '''
import sys, time

# AI-generated: Claude, 2026-11-20, prompt: "parse"
def parse(x):
    if x % 7 == 0:
        raise ValueError("seven")
    try:
        return {"a": 1}[x % 2 and "a" or "b"]
    except KeyError:
        return None

# AI-generated: Claude, 2026-11-20, prompt: "double"
def double(x):
    return 2 * x

for i in range(int(sys.argv[1])):
    for x in range(i % 5 + 1):
        try:
            parse(x + i)
        except ValueError:
            pass
        double(x)
    time.sleep(0.005)
'''


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two real processes exporting metrics every 10 ms into small files, so each rotates
    (``.1`` to ``.4``, the oldest lost) and holds many cumulative lines."""
    work = tmp_path_factory.mktemp("window")
    (work / "app.py").write_text(PROGRAM)
    folder = work / "store"
    for rounds in ("150", "90"):
        result = aiotel_run(["python", "app.py", rounds], work, {
            "AIOTEL_STORE": str(folder), "AIOTEL_CACHE_DIR": str(work / "cache"), "OTEL_METRIC_EXPORT_INTERVAL": "10",
            "AIOTEL_STORE_MAX_BYTES": "30000", "OTEL_TRACES_EXPORTER": "none"})
        assert result.returncode == 0 and result.stderr == "", result.stderr
    return folder


def line_times(files):
    times = []
    for path in files:
        with open(path, "rb") as fh:
            times += [int(m.group(1)) for m in (_TIME.search(line) for line in fh) if m]
    return sorted(set(times))


def as_numbers(points, since):
    """The report's numbers; the mean compared apart: a sum of floats in another order may
    differ in its last digit."""
    found = []
    for stats in summarize(points, since):
        numbers = stats.to_json()
        found.append((numbers.pop("mean_seconds"), numbers))
    return found


def same_numbers(got, expected):
    assert [numbers for _, numbers in got] == [numbers for _, numbers in expected]
    assert [mean for mean, _ in got] == pytest.approx([mean for mean, _ in expected])


def test_the_window_s_totals_are_every_point_s(store):
    files = store_files(str(store))
    assert any(f.endswith(".jsonl.4") for f in files) and any(f.endswith(".jsonl") for f in files)
    times = line_times(files)
    assert len(times) > 20
    everything = list(read_points(files))
    # before everything, at a line's own time, between two lines, in each third, after the end
    for since in [None, times[0] - 1, times[0], times[len(times) // 3], times[len(times) // 2] + 1,
                  times[2 * len(times) // 3], times[-2], times[-1], times[-1] + 1]:
        expected = as_numbers(everything, since)
        assert expected or since is not None and since >= times[len(times) // 2]  # the program's calls stop early
        same_numbers(as_numbers(read_totals(files, since), since), expected)
        assert sum(p.count for p in read_totals(files, since)) == sum(p.count for p in series_totals(everything, since))


def test_a_process_whose_newest_file_is_empty_is_read_from_its_rotated_one(store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    current = str(sorted(copy.glob("metrics-*.jsonl"))[0])
    for index in range(3, 0, -1):  # what a rotation does: each file one step older, the newest empty
        os.replace(f"{current}.{index}", f"{current}.{index + 1}")
    os.replace(current, f"{current}.1")
    open(current, "w").close()
    files = store_files(str(copy))
    everything = list(read_points(files))
    for since in (None, line_times(files)[len(line_times(files)) // 2]):
        same_numbers(as_numbers(read_totals(files, since), since), as_numbers(everything, since))


def test_a_chart_reads_a_line_per_slot_and_adds_up_to_the_window_s_calls(store):
    """With ``samples``, each process is read at that many lines (and its newest, and the
    baseline), not all of them; the calls charted from those lines add up to the
    window's calls, and never run ahead of the chart drawn from every line."""
    files = store_files(str(store))
    everything = list(read_points(files))
    times = line_times(files)
    samples = 8
    assert len(times) > 4 * samples  # every line would be many more
    for since in (None, times[len(times) // 3]):
        window = read_window(files, since, samples=samples)
        same_numbers(as_numbers(window.totals, since), as_numbers(everything, since))
        lines_read = {}
        for p in window.timeline:
            lines_read.setdefault(p.process, set()).add(p.time)
        assert len(lines_read) == 2 and all(len(read) <= samples + 2 for read in lines_read.values())
        sampled, full = durations_by_function(window.timeline), durations_by_function(everything)
        assert sampled.keys() == full.keys()
        for key, points in full.items():
            charted = [p.time for p in points if since is None or p.time > since]
            if not charted:
                continue
            span = (min(charted), max(charted))
            drawn, every = calls_over_time(sampled[key], since, window=span)[0], calls_over_time(points, since, window=span)[0]
            expected = sum(p.count for p in series_totals(everything, since)
                           if (p.function, p.version) == key and p.metric == DURATION)
            assert sum(drawn) == sum(every) == expected > 0
            for slot in range(len(drawn)):  # a sampled line holds what came before it, and no more
                assert sum(drawn[:slot + 1]) <= sum(every[:slot + 1])


def test_a_store_of_many_processes_is_sampled_less_per_process(store, monkeypatch):
    """The chart's lines are budgeted over the store (SAMPLE_BUDGET), at least two a
    process; its calls still add up to the window's."""
    from aiotel.store import window

    files = store_files(str(store))
    monkeypatch.setattr(window, "SAMPLE_BUDGET", 6)  # two processes: three lines each
    sampled = read_window(files, samples=30)
    lines_read = {}
    for p in sampled.timeline:
        lines_read.setdefault(p.process, set()).add(p.time)
    assert len(lines_read) == 2 and all(len(read) <= 3 + 1 for read in lines_read.values())
    for key, points in durations_by_function(sampled.timeline).items():
        expected = sum(p.count for p in sampled.totals if (p.function, p.version) == key and p.metric == DURATION)
        assert sum(calls_over_time(points, None)[0]) == expected > 0
