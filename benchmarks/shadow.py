"""What an experiment costs (AIOTEL_SHADOW), against baselines measured in the same run.

    python benchmarks/shadow.py           # full run: medians of 9 repeats
    python benchmarks/shadow.py --quick   # CI: checks that every case runs

One program under ``aiotel-run`` (metrics only, so no span cost blurs the figures), with
two identical pairs of trivial functions and one lone marked function:
- marked alone:  a marked function that is in no pair (the floor every call pays)
- pair, off:     an arm of a pair that AIOTEL_SHADOW leaves at 0: one attribute read more
- pair, every call shadowed (AIOTEL_SHADOW=<pair>=1): both arms run, compared, timed
Printed: each per call, and ratios: off against alone, and a shadowed call against two
calls of the lone function (what running both arms costs at the least).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PROGRAM = textwrap.dedent(
    '''\
    import statistics, sys, time

    def old_on(x):
        return x + 1

    # AI-generated: Claude, 2026-11-20, replaces: old_on
    def new_on(x):
        return x + 1

    def old_off(x):
        return x + 1

    # AI-generated: Claude, 2026-11-20, replaces: old_off
    def new_off(x):
        return x + 1

    # AI-generated: Claude, 2026-11-20
    def alone(x):
        return x + 1

    def per_call(function, calls):
        start = time.perf_counter_ns()
        for i in range(calls):
            function(i)
        return (time.perf_counter_ns() - start) / calls

    calls, repeats = int(sys.argv[1]), int(sys.argv[2])
    for function in (alone, new_off, new_on):
        function(0)
    figures = {name: [] for name in ("alone", "off", "on")}
    for _ in range(repeats):
        figures["alone"].append(per_call(alone, calls))
        figures["off"].append(per_call(new_off, calls))
        figures["on"].append(per_call(new_on, calls))
    for name, values in figures.items():
        print(name, statistics.median(values))
    '''
)


def main() -> int:
    quick = "--quick" in sys.argv
    calls, repeats = (2_000, 3) if quick else (200_000, 9)
    launcher = os.path.join(os.path.dirname(sys.executable), "aiotel-run")
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "bench.py"), "w") as fh:
            fh.write(PROGRAM)
        env = dict(os.environ, AIOTEL_SHADOW="new_on=1", AIOTEL_SPAN_RATE_LIMIT="0", AIOTEL_STORE=os.path.join(work, "s"),
                   AIOTEL_CACHE_DIR="off", AIOTEL_GIT_BLAME="false")
        result = subprocess.run([launcher, sys.executable, "bench.py", str(calls), str(repeats)], cwd=work, env=env,
                                capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        print(result.stdout, result.stderr, file=sys.stderr)
        return 1
    ns = {line.split()[0]: float(line.split()[1]) for line in result.stdout.splitlines()}
    print(f"{'case':<36}{'ns/call':>10}")
    print(f"{'marked alone':<36}{ns['alone']:>10.0f}")
    print(f"{'pair, AIOTEL_SHADOW off':<36}{ns['off']:>10.0f}")
    print(f"{'pair, every call shadowed':<36}{ns['on']:>10.0f}")
    print(f"off / alone: {ns['off'] / ns['alone']:.2f}x;  shadowed / (2 x alone): {ns['on'] / (2 * ns['alone']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
