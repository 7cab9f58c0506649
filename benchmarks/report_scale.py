"""``aiotel report`` over a large store: cold, warm, and its peak memory against the store's size.

    python benchmarks/report_scale.py                # a 1 GB store (and a 256 MB one for memory)
    python benchmarks/report_scale.py --size-mb 64   # smaller
    python benchmarks/report_scale.py --quick        # CI: 24 MB, checks it runs

A real program under ``aiotel-run`` writes the base store: 60 marked functions, some
failing, in three ``service.version``s, exporting metrics every 20 ms (a long-lived
service's file of many cumulative exports) and up to 25 spans a second per function
(about as many bytes of spans as of metrics). The base files are then copied under new process names until the store reaches
the size asked for: each copy is one more process, as a fleet's shared store holds.

Printed, for each size: the text report cold (the first report on this store; the
files were just written, so they are in the page cache, as on a machine that writes
them), warm (the same store again, unchanged), with ``--since`` (the middle of the
runs), and the peak RSS of the report process; and the floor: the report of a store of
one process. Targets (issue "a report
that scales"): cold <= 5 s at 1 GB, warm <= 0.1x cold, peak memory independent of the
store's size. Then the HTML report of the same store (its time against the text
report's, and its peak RSS): it reads the same few lines a process, a line per chart
slot, and the newest spans until each function's latest errors are found.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # benchmarks/report.py, when imported

from report import FUNCTION, PROGRAM as ROUNDS  # the same 60 functions and rounds as benchmarks/report.py
from report import env as clean_env

BIN = os.path.dirname(sys.executable)

# report.py's program, pausing 10 ms a round: a service that exports many times
PROGRAM = ROUNDS.rstrip() + "\n    time.sleep(0.01)\n"
PROGRAM = PROGRAM.replace("import sys\n", "import sys, time\n", 1)


def base_store(work: str, rounds: int) -> str:
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "steps.py"), "w") as fh:
        fh.write("".join(FUNCTION.format(n=n) for n in range(60)))
    with open(os.path.join(work, "main.py"), "w") as fh:
        fh.write(PROGRAM)
    store = os.path.join(work, "base")
    for version in ("1.0", "1.1", "2.0"):
        done = subprocess.run(
            [os.path.join(BIN, "aiotel-run"), "python", "main.py", str(rounds)], cwd=work, capture_output=True,
            text=True, timeout=600,
            env=clean_env(AIOTEL_STORE=store, AIOTEL_CACHE_DIR=os.path.join(work, "cache"),
                          OTEL_METRIC_EXPORT_INTERVAL="20", AIOTEL_SHUTDOWN_TIMEOUT="60",
                          AIOTEL_SPAN_RATE_LIMIT="25", AIOTEL_TRACE_RATE_LIMIT="100000",
                          OTEL_RESOURCE_ATTRIBUTES=f"service.version={version}"))
        if done.returncode != 0 or done.stderr:
            raise SystemExit(done.stderr[-2000:])
    return store


def grow(base: str, store: str, size: int) -> int:
    """Copies of the base files under new process names until ``store`` holds ``size`` bytes."""
    os.makedirs(store, mode=0o700, exist_ok=True)
    files = sorted(os.listdir(base))
    total, copy = 0, 0
    while total < size:
        for name in files:
            signal, rest = name.split("-v2-", 1)
            start, pid, host_and_rest = rest.split("-", 2)
            target = os.path.join(store, f"{signal}-v2-{start}-{int(pid) + 100000 * (copy + 1)}-{host_and_rest}")
            shutil.copyfile(os.path.join(base, name), target)
            total += os.path.getsize(target)
        copy += 1
    return total


def report(args: List[str], cache: str) -> Tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and output of one report process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([os.path.join(BIN, "aiotel"), "report", *args], stdout=out, stderr=err,
                                   env=clean_env(AIOTEL_CACHE_DIR=cache))
        _, status, usage = os.wait4(process.pid, 0)  # its own rusage: the peak RSS of this process alone
        took = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"aiotel report {' '.join(args)} failed: {err.read().decode(errors='replace')[-2000:]}")
        return took, usage.ru_maxrss, out.read().decode()


def middle_time(store: str) -> str:
    """An ISO time in the middle of the store's metric lines, for ``--since``."""
    import datetime
    import re

    times = []
    for name in os.listdir(store):
        if name.startswith("metrics-"):
            with open(os.path.join(store, name), "rb") as fh:
                times += [int(m.group(1)) for m in (re.search(rb'"timeUnixNano":"(\d+)"', line) for line in fh) if m]
    middle = sorted(times)[len(times) // 2]
    return datetime.datetime.fromtimestamp(middle / 1e9, datetime.timezone.utc).isoformat()


def measure(store: str, cache: str, runs: int, since: str) -> Dict[str, float]:
    shutil.rmtree(cache, ignore_errors=True)
    cold, rss, text = report(["--store", store], cache)
    warm = statistics.median(report(["--store", store], cache)[0] for _ in range(runs))
    again = report(["--store", store], cache)[2]
    if again != text:
        raise SystemExit("the warm report differs from the cold one")
    with_since = statistics.median(report(["--store", store, "--since", since], cache)[0] for _ in range(runs))
    site = os.path.join(os.path.dirname(store), "site")
    html, html_rss = [], 0
    for _ in range(runs):
        shutil.rmtree(site, ignore_errors=True)
        took, peak, _ = report(["--store", store, "--html", site], cache)
        html.append(took)
        html_rss = max(html_rss, peak)
    shutil.rmtree(site, ignore_errors=True)
    return {"cold": cold, "warm": warm, "since": with_since, "rss": rss, "html": statistics.median(html),
            "html_rss": html_rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="a 24 MB store, 1 run each: checks that it runs")
    options = parser.parse_args()
    size_mb, runs, rounds = (24, 1, 100) if options.quick else (options.size_mb, 3, 400)
    with tempfile.TemporaryDirectory(prefix="aiotel-report-scale-") as work:
        base = base_store(work, rounds)
        base_size = sum(os.path.getsize(os.path.join(base, n)) for n in os.listdir(base))
        spans = sum(os.path.getsize(os.path.join(base, n)) for n in os.listdir(base) if n.startswith("traces-"))
        since = middle_time(base)
        one = os.path.join(work, "one")
        os.makedirs(one)
        for name in os.listdir(base):
            if "-" + sorted(os.listdir(base))[0].split("-")[3] + "-" in name:  # the first process's two files
                shutil.copyfile(os.path.join(base, name), os.path.join(one, name))
        floor = statistics.median(report(["--store", one], os.path.join(work, "cache-one"))[0] for _ in range(max(runs, 3)))
        print(f"base store: {base_size / 1e6:.1f} MB ({spans / base_size:.0%} spans) from 3 runs of a real program "
              f"(60 marked functions); the report of one process's files: {floor:.3f} s")
        sizes = [size_mb] if options.quick else sorted({max(size_mb // 4, 1), size_mb})
        results = {}
        for mb in sizes:
            store = os.path.join(work, f"store-{mb}")
            total = grow(base, store, mb * 1024 * 1024)
            figures = results[mb] = measure(store, os.path.join(work, f"cache-{mb}"), runs, since)
            print(f"store of {total / 1e6:.0f} MB ({len(os.listdir(store))} files): cold {figures['cold']:.2f} s, "
                  f"warm {figures['warm']:.3f} s ({figures['warm'] / figures['cold']:.3f}x cold), "
                  f"--since {figures['since']:.2f} s, peak RSS {figures['rss'] / 1024:.0f} MiB; --html "
                  f"{figures['html']:.2f} s ({figures['html'] / figures['warm']:.2f}x the text report), "
                  f"peak RSS {figures['html_rss'] / 1024:.0f} MiB")
            shutil.rmtree(store)
        if not options.quick:
            top = results[sizes[-1]]
            print(f"targets at {sizes[-1]} MB: cold <= 5 s: {'met' if top['cold'] <= 5 else 'MISSED'}; warm <= 0.1x cold: "
                  f"{'met' if top['warm'] <= 0.1 * top['cold'] else 'MISSED'}; peak RSS {top['rss'] / 1024:.0f} MiB "
                  f"against {results[sizes[0]]['rss'] / 1024:.0f} MiB at {sizes[0]} MB")


if __name__ == "__main__":
    main()
