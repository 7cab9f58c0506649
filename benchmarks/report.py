"""``aiotel report --html`` against the text report, on the same store, in the same run.

    python benchmarks/report.py           # a store of about 40 000 spans, medians of 5 runs
    python benchmarks/report.py --quick   # CI: a small store, 2 runs, checks it runs

The store is written by a real program under ``aiotel-run``: 60 marked functions in
three ``service.version``s, some failing, with every call sampled (a store that is mostly
spans, the HTML report's extra reading); then again with the program in a git checkout,
so that the spans name commits (what the reports then read to show them). Printed: the median wall time of each command
as a whole process, and their ratio (target: the HTML report at most 1.2x the text one).
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
from typing import Dict, List

BIN = os.path.dirname(sys.executable)

FUNCTION = '''
# AI-generated: Claude, 2026-11-20, prompt: "step {n}"
def step_{n}(x):
    if x % 17 == 0:
        raise ValueError("no multiples of 17")
    try:
        return {{"a": 1}}[x % 3 and "a" or "b"]
    except KeyError:
        return None
'''

PROGRAM = '''
import sys
import steps

for i in range(int(sys.argv[1])):
    for n in range(60):
        try:
            getattr(steps, f"step_{n}")(i)
        except ValueError:
            pass
'''


def env(**extra: str) -> Dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_", "PYTHON"))}
    clean.update(extra)
    return clean


def make_store(work: str, rounds: int, committed: bool = False) -> str:
    """The store of three versions' runs; ``committed``: the program in a git checkout, so
    its spans name the commit that last changed each function (commit attribution)."""
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "steps.py"), "w") as f:
        f.write("".join(FUNCTION.format(n=n) for n in range(60)))
    with open(os.path.join(work, "main.py"), "w") as f:
        f.write(PROGRAM)
    if committed:
        git = dict(os.environ, GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="d@example.com", GIT_COMMITTER_NAME="Dev",
                   GIT_COMMITTER_EMAIL="d@example.com")
        for args in (["init", "-q"], ["add", "steps.py", "main.py"], ["commit", "-q", "-m", "steps"]):
            subprocess.run(["git", *args], cwd=work, env=git, check=True, capture_output=True, timeout=60)
    store = os.path.join(work, "store")
    for version in ("1.0", "1.1", "2.0"):
        done = subprocess.run(
            [os.path.join(BIN, "aiotel-run"), "python", "main.py", str(rounds)], cwd=work, capture_output=True,
            text=True, timeout=600,
            env=env(AIOTEL_STORE=store, AIOTEL_CACHE_DIR=os.path.join(work, "cache"), AIOTEL_SPAN_RATE_LIMIT="1000000",
                    AIOTEL_SPAN_BURST="1000000", AIOTEL_TRACE_RATE_LIMIT="1000000", OTEL_BSP_MAX_QUEUE_SIZE="100000",
                    # the store writes a few thousand spans a second: every call's span, however long it takes
                    AIOTEL_SHUTDOWN_TIMEOUT="600", OTEL_RESOURCE_ATTRIBUTES=f"service.version={version}"))
        if done.returncode != 0 or done.stderr:
            raise SystemExit(done.stderr[-2000:])
    spans = sum(open(os.path.join(store, name), "rb").read().count(b'"traceId"')
                for name in os.listdir(store) if name.startswith("traces-"))
    if spans != rounds * 60 * 3:
        raise SystemExit(f"the store holds {spans} spans of {rounds * 60 * 3} calls: not the store this measures")
    return store


def median_seconds(args: List[str], runs: int, before=None) -> float:
    times = []
    for attempt in range(runs + 1):  # the first, not counted, writes the bytecode caches as a user's first run does
        if before is not None:
            before()
        started = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env())
        if attempt:
            times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)}: {done.stderr[-2000:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    rounds, runs = (20, 2) if options.quick else (220, 5)
    with tempfile.TemporaryDirectory() as work:
        for committed in (False, True):
            where = os.path.join(work, "git" if committed else "plain")
            store = make_store(where, rounds, committed)
            size = sum(os.path.getsize(os.path.join(store, n)) for n in os.listdir(store))
            site = os.path.join(where, "site")
            aiotel = os.path.join(BIN, "aiotel")
            text = median_seconds([aiotel, "report", "--store", store], runs)
            pages = median_seconds([aiotel, "report", "--store", store, "--html", site], runs,
                                   before=lambda: shutil.rmtree(site, ignore_errors=True))
            print(f"store{', its spans naming commits' if committed else ''}: {size / 1e6:.1f} MB "
                  f"({rounds * 60 * 3} calls, every one with a span); medians of {runs} runs")
            print(f"  aiotel report          {text * 1e3:8.1f} ms")
            print(f"  aiotel report --html   {pages * 1e3:8.1f} ms  ({pages / text:.2f}x the text report; "
                  f"target <= 1.2x: {'met' if pages <= 1.2 * text else 'NOT met'})")


if __name__ == "__main__":
    main()
