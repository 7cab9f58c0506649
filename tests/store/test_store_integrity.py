"""A store that loses nothing and says when it can't write; a reader that never crashes.

Real runs of the shop sample under ``aiotel-run``, then ``aiotel report`` on what they
wrote, spoiled in every way a disk, a killed process or another aiotel version can."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys

import pytest

from aiotel.store import rollup
from conftest import SAMPLES, command, free_port, run

SAMPLE = os.path.join(SAMPLES, "shopapp")
ROOT_ONLY = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root (mount, unshare)")


@pytest.fixture
def app(tmp_path):
    target = tmp_path / "shopapp"
    shutil.copytree(SAMPLE, target)
    return target


def shop_run(app, tmp_path, store, mode="ok", **env):
    full = {"AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "AIOTEL_STORE": str(store), **env}
    return run(command("aiotel-run") + ["python", "main.py", mode], cwd=str(app), env=full)


def report(store, *args):
    return run(command("aiotel") + ["report", "--json", "--store", str(store), *args], cwd=str(store.parent))


def calls(result):
    assert result.returncode == 0, result.stderr
    return {f["function"]: f["calls"] for f in json.loads(result.stdout)["functions"]}


@pytest.fixture
def good_store(app, tmp_path):
    """A store of two real runs, and the report it gives."""
    store = tmp_path / "store"
    for _ in range(2):
        assert shop_run(app, tmp_path, store).returncode == 0
    return store, calls(report(store))


def test_file_names_are_unique_per_process_and_name_the_layout(good_store):
    store, expected = good_store
    names = sorted(os.listdir(store))
    assert len(names) == 4, names
    pattern = re.compile(r"^(traces|metrics)-v2-\d{8}T\d{6}-\d+-[A-Za-z0-9._]+-[0-9a-f]{8}\.jsonl$")
    assert all(pattern.match(n) for n in names), names
    assert expected["shop.cart.Cart.total"] == 2  # once per ok run


def test_every_kind_of_bad_line_is_skipped_counted_and_named(good_store, tmp_path):
    store, expected = good_store
    metrics = sorted(store.glob("metrics-*.jsonl"))
    with open(metrics[0], "a") as fh:
        fh.write("this is not json\n")
        fh.write('[1, 2, 3]\n')  # JSON, not an object
        fh.write('{"resourceMetrics": 5}\n')  # an object of the wrong shape
        fh.write('{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "aiotel.function.duration", '
                 '"histogram": {"dataPoints": [{"count": "many"}]}}]}]}]}\n')
        fh.write("[" * 100_000 + "\n")  # nested past the parser's recursion limit
        fh.write('{"resourceMetrics": [')  # a last line cut short by a kill
    (store / "metrics-v9-20300101T000000-1-host-00000000.jsonl").write_text("{}\n")  # a newer aiotel's layout
    result = report(store)
    assert calls(result) == expected  # the good data, all of it
    lines = [line for line in result.stderr.splitlines() if "skipped in" in line]
    assert len(lines) == 2, result.stderr  # one line per file
    spoiled = next(line for line in lines if str(metrics[0]) in line)
    for said in ("1 lines that are not JSON", "4 lines of the wrong shape", "1 truncated last line"):
        assert said in spoiled, spoiled
    assert "store layout v9" in next(line for line in lines if "v9" in line)
    skipped = json.loads(result.stdout)["lines_skipped"]
    assert sum(skipped[str(metrics[0])].values()) == 6

    strict = run(command("aiotel") + ["report", "--strict", "--store", str(store)], cwd=str(tmp_path))
    assert strict.returncode == 3 and not strict.stdout and "--strict" in strict.stderr


def test_a_fuzzed_store_never_crashes_the_reader(good_store):
    store, expected = good_store
    lines = [line for path in sorted(store.glob("*.jsonl")) for line in path.read_text().splitlines()]
    values = [None, True, 0, -1, 2**70, 1.5, float("inf"), "", "x", [], {}, [1], {"a": 1}]
    rng = random.Random(20261203)

    def spoil(node):
        """One random change somewhere in a JSON tree: a value replaced, a key dropped."""
        if isinstance(node, dict) and node and rng.random() < 0.7:
            key = rng.choice(sorted(node))
            if rng.random() < 0.2:
                del node[key]
            elif rng.random() < 0.5:
                node[key] = rng.choice(values)
            else:
                spoil(node[key])
        elif isinstance(node, list) and node and rng.random() < 0.7:
            index = rng.randrange(len(node))
            if rng.random() < 0.5:
                node[index] = rng.choice(values)
            else:
                spoil(node[index])

    fuzzed = store.parent / "fuzzed"
    fuzzed.mkdir()
    for round_ in range(300):
        out = []
        for line in lines:
            if rng.random() < 0.5:
                tree = json.loads(line)
                for _ in range(rng.randint(1, 4)):
                    spoil(tree)
                line = json.dumps(tree)
            if rng.random() < 0.1:  # bytes cut or flipped
                cut = rng.randrange(len(line))
                line = line[:cut] + rng.choice(["", "\x00", "\ufffd", '"', "}", "\\"]) + line[cut + 1:]
            out.append(line)
        for name in os.listdir(fuzzed):
            os.unlink(fuzzed / name)
        (fuzzed / "metrics-v2-20261203T000000-1-h-00000000.jsonl").write_text("\n".join(out) + "\n")
        (fuzzed / "traces-v2-20261203T000000-1-h-00000000.jsonl").write_text("\n".join(out) + "\n")
        skipped = rollup.Skipped()
        files = rollup.store_files(str(fuzzed))
        points = list(rollup.read_points(files, skipped))
        stats = rollup.summarize(points, None, rollup.read_commits(rollup.store_files(str(fuzzed), "traces"), skipped))
        rollup.spans_dropped(points)
        rollup.metric_exports_failed(points)
        for entry in stats:
            entry.to_json()
        rollup.compare(stats, "1", "2")
    # and the command itself, on the last one
    result = run(command("aiotel") + ["report", "--store", str(fuzzed)], cwd=str(fuzzed))
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr


@ROOT_ONLY
def test_two_processes_each_pid_1_in_its_own_namespace_keep_all_their_calls(app, tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    store = tmp_path / "store"
    launcher = command("aiotel-run")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_"))}
    environment.update(AIOTEL_CACHE_DIR=str(tmp_path / "cache"), AIOTEL_STORE=str(store))
    # unshare --fork makes the program pid 1 of a new pid namespace (exec keeps the pid)
    args = ["unshare", "--pid", "--fork", "--mount-proc", *launcher, "python", "main.py", "ok"]
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or probe.stdout.strip() != "1":
        pytest.skip(f"pid namespaces unavailable here: {probe.stderr.strip()}")
    processes = [subprocess.Popen(args, cwd=str(app), env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL) for _ in range(2)]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    names = os.listdir(store)
    assert {n.split("-")[3] for n in names} == {"1"}, names  # both were pid 1
    assert len(names) == 4, names
    assert calls(report(store))["shop.cart.Cart.total"] == 2


def test_the_report_tells_processes_apart_by_instance_even_in_one_file(good_store, tmp_path):
    """Stores written before file names were unique: two processes' lines in one file."""
    store, expected = good_store
    merged = tmp_path / "merged"
    merged.mkdir()
    lines = []
    for path in sorted(store.glob("metrics-*.jsonl")):
        lines += path.read_text().splitlines()
    (merged / "metrics-20261203T000000-1.jsonl").write_text("\n".join(lines) + "\n")  # layout 1's name
    assert calls(report(merged)) == expected


def _mount(options, target):
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@pytest.mark.parametrize("case", ["not-a-directory", pytest.param("read-only", marks=ROOT_ONLY),
                                  pytest.param("disk-full", marks=ROOT_ONLY)])
def test_a_store_that_cannot_be_written_is_said_once_and_the_program_runs_unchanged(app, tmp_path, case):
    plain = run([sys.executable, "main.py", "ok"], cwd=str(app))
    mounted = tmp_path / "mnt"
    mounted.mkdir()
    if case == "not-a-directory":
        (mounted / "file").write_text("")
        store = mounted / "file" / "store"
    elif case == "read-only":
        _mount("ro,size=1m", mounted)
        store = mounted / "store"
    else:
        _mount("size=16k", mounted)
        (mounted / "filler").write_bytes(b"\0" * (16 * 1024 - 4096))  # leaves one block
        store = mounted / "store"
    try:
        result = shop_run(app, tmp_path, store, "ok")
    finally:
        if case != "not-a-directory":
            subprocess.run(["umount", "-l", str(mounted)], capture_output=True)
    assert (result.returncode, result.stdout) == (plain.returncode, plain.stdout)
    said = [line for line in result.stderr.splitlines() if line.startswith("aiotel:")]
    assert "Traceback" not in result.stderr
    assert said and all("cannot write the store file" in line and str(mounted) in line for line in said), said
    # once per file and reason: two signals, and not once per export
    assert len(said) <= 2, said


def test_a_world_writable_store_without_sticky_bit_or_a_link_is_refused_for_a_private_one(app, tmp_path):
    state = tmp_path / "state"
    for kind in ("world-writable", "symlink"):
        store = tmp_path / kind
        if kind == "world-writable":
            store.mkdir()
            os.chmod(store, 0o777)
        else:
            (tmp_path / "elsewhere").mkdir()
            os.symlink(tmp_path / "elsewhere", store)
        result = shop_run(app, tmp_path, store, "ok", XDG_STATE_HOME=str(state))
        assert result.returncode == 0, result.stderr
        said = [line for line in result.stderr.splitlines() if line.startswith("aiotel:")]
        assert len(said) == 1 and f"not writing the store to {store}" in said[0] and str(state) in said[0], said
        assert not [n for n in os.listdir(store) if n.endswith(".jsonl")]
    private = state / "aiotel" / "store"
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
    assert calls(report(private))["shop.cart.Cart.total"] == 2  # both runs

    shared = tmp_path / "shared"  # group-writable (fsGroup) and sticky world-writable are fine
    shared.mkdir()
    os.chmod(shared, 0o1777)
    result = shop_run(app, tmp_path, shared, "ok", XDG_STATE_HOME=str(state))
    assert result.returncode == 0 and "aiotel:" not in result.stderr, result.stderr
    assert len(os.listdir(shared)) == 2


def test_spans_whose_export_failed_are_counted_in_report_and_doctor(app, tmp_path):
    store = tmp_path / "store"
    dead = f"http://127.0.0.1:{free_port()}"
    result = shop_run(app, tmp_path, store, "ok", OTEL_TRACES_EXPORTER="otlp", OTEL_METRICS_EXPORTER="store", AIOTEL_SPILL="off",
                      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=dead + "/v1/traces", OTEL_EXPORTER_OTLP_TIMEOUT="500",
                      AIOTEL_SHUTDOWN_TIMEOUT="5")
    assert result.returncode == 0, result.stderr
    data = json.loads(report(store).stdout)
    lost = data["spans_dropped_by_reason"].get("export_failed", 0)
    assert lost > 0, data
    table = run(command("aiotel") + ["report", "--store", str(store)], cwd=str(tmp_path))
    assert f"{lost} finished spans were lost because their export failed" in table.stderr
    doctor = run(command("aiotel") + ["doctor"], cwd=str(tmp_path),
                 env={"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache")})
    assert f"{lost} finished spans were lost because their export failed" in doctor.stdout


def _stored_spans(store):
    count = 0
    for path in store.iterdir():
        if path.name.startswith("traces-"):
            for line in path.read_text().splitlines():
                count += sum(len(ss["spans"]) for rs in json.loads(line)["resourceSpans"] for ss in rs["scopeSpans"])
    return count


def test_spans_in_rotated_out_files_are_counted_and_reported(tmp_path):
    app = tmp_path / "traces"
    shutil.copytree(os.path.join(SAMPLES, "traces"), app)
    env = {"AIOTEL_CACHE_DIR": str(tmp_path / "cache"), "AIOTEL_SPAN_BURST": "1000",
           "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1", "OTEL_BSP_SCHEDULE_DELAY": "1"}
    whole, small = tmp_path / "whole", tmp_path / "small"
    for store, cap in ((whole, {}), (small, {"AIOTEL_STORE_MAX_BYTES": "500"})):  # 500: a file a line
        result = run(command("aiotel-run") + ["python", "app.py", "threads"], cwd=str(app),
                     env={**env, "AIOTEL_STORE": str(store), **cap})
        assert result.returncode == 0, result.stderr
    total, kept = _stored_spans(whole), _stored_spans(small)
    assert len([p for p in small.iterdir() if p.name.startswith("traces-")]) == 5  # the file and four rotated
    data = json.loads(report(small).stdout)
    assert kept < total and data["spans_dropped_by_reason"] == {"store_rotated": total - kept}, (total, kept, data)
    table = run(command("aiotel") + ["report", "--store", str(small)], cwd=str(tmp_path))
    assert f"{total - kept} finished spans were lost because the store rotated out" in table.stderr


BURST = '''
# AI-generated: Claude, 2026-11-20
def step(n):
    return n + 1


for i in range(20000):
    step(i)
'''


def test_spans_the_exit_deadline_leaves_unwritten_are_counted_and_said(tmp_path):
    """A short program that ends with more spans queued than the store can write within
    AIOTEL_SHUTDOWN_TIMEOUT: what is written and what is counted lost add up to every
    call's span (at most the batch being written at that moment is in neither), and the
    run and the report say it."""
    (tmp_path / "app.py").write_text(BURST)
    store = tmp_path / "store"
    result = run(command("aiotel-run") + ["python", "app.py"], cwd=str(tmp_path),
                 env={"AIOTEL_STORE": str(store), "AIOTEL_CACHE_DIR": str(tmp_path / "cache"),
                      "AIOTEL_SPAN_BURST": "1000000", "AIOTEL_SPAN_RATE_LIMIT": "1000000",
                      "AIOTEL_TRACE_RATE_LIMIT": "0", "OTEL_BSP_MAX_QUEUE_SIZE": "100000",
                      "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100", "AIOTEL_SHUTDOWN_TIMEOUT": "0.2"})
    assert result.returncode == 0, result.stderr
    data = json.loads(report(store).stdout)
    lost = data["spans_dropped_by_reason"].get("exit_deadline", 0)
    written = _stored_spans(store)
    assert lost > 0 and 20000 - 100 <= written + lost <= 20000, (written, lost, data)
    assert f"exiting without {lost} finished spans" in result.stderr
    assert result.stderr.count("aiotel:") == 1, result.stderr
    table = run(command("aiotel") + ["report", "--store", str(store)], cwd=str(tmp_path))
    assert f"{lost} finished spans were lost because their process exited before they were exported" in table.stderr


def test_a_store_file_written_again_after_close_is_the_same_file_or_nothing(tmp_path):
    """An exporter thread may still write when the exit flush has closed the file: the line
    is appended to that same file, never to a file or link put in its place."""
    from aiotel.store.writer import JsonLinesFile

    store = tmp_path / "store"
    target = JsonLinesFile(str(store), "traces-v2-x.jsonl")
    target.write_line("one")
    target.close()
    target.write_line("two")
    assert (store / "traces-v2-x.jsonl").read_text() == "one\ntwo\n"
    target.close()
    os.replace(store / "traces-v2-x.jsonl", store / "moved")
    (tmp_path / "elsewhere").write_text("")
    os.symlink(tmp_path / "elsewhere", store / "traces-v2-x.jsonl")
    with pytest.raises(OSError):
        target.write_line("three")
    os.unlink(store / "traces-v2-x.jsonl")
    (store / "traces-v2-x.jsonl").write_text("someone else's\n")
    with pytest.raises(OSError):
        target.write_line("three")
    assert (tmp_path / "elsewhere").read_text() == "" and (store / "traces-v2-x.jsonl").read_text() == "someone else's\n"


def test_empty_store_files_are_read_as_empty(good_store):
    """A process killed before its first export leaves empty files; the reader, which
    searches span files in place (mapped) before reading them, takes them as empty."""
    store, expected = good_store
    (store / "traces-v2-20300101T000000-7-host-0000000a.jsonl").write_bytes(b"")
    (store / "metrics-v2-20300101T000000-7-host-0000000b.jsonl").write_bytes(b"")
    result = report(store)
    assert calls(result) == expected
    assert json.loads(result.stdout)["lines_skipped"] == {} and "skipped" not in result.stderr
    site = store.parent / "site"
    html = run(command("aiotel") + ["report", "--store", str(store), "--html", str(site)], cwd=str(store.parent))
    assert html.returncode == 0 and "skipped" not in html.stderr, html.stderr
