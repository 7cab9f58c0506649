"""Span and trace id generation: aiotel's private generator against the SDK's default
(which draws from the global ``random``) and the other options, in the same run.

    python benchmarks/ids.py           # medians of 15 repeats
    python benchmarks/ids.py --quick   # CI: checks that every case runs

The options: the SDK's ``RandomIdGenerator`` (global ``random``: what aiotel must not
touch), aiotel's ``PrivateIdGenerator`` (a ``random.Random`` of its own, seeded from
``os.urandom``, reseeded after fork), ``os.urandom`` per id, and ``secrets.randbits``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from typing import Callable, List

from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from aiotel.pipeline.ids import PrivateIdGenerator


def urandom_pair() -> int:
    return int.from_bytes(os.urandom(16), "big") ^ int.from_bytes(os.urandom(8), "big")


def secrets_pair() -> int:
    return secrets.randbits(128) ^ secrets.randbits(64)


def measure(fn: Callable[[], object], calls: int, repeats: int) -> float:
    results = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        results.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(results)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args(argv)
    calls, repeats = (1_000, 3) if options.quick else (100_000, 15)
    sdk, ours = RandomIdGenerator(), PrivateIdGenerator()
    rows = [
        ("SDK RandomIdGenerator (global random)", lambda: (sdk.generate_trace_id(), sdk.generate_span_id())),
        ("aiotel PrivateIdGenerator", lambda: (ours.generate_trace_id(), ours.generate_span_id())),
        ("os.urandom per id", urandom_pair),
        ("secrets.randbits", secrets_pair),
    ]
    measured = [(name, measure(fn, calls, repeats)) for name, fn in rows]
    base = measured[0][1]
    print(f"one trace id and one span id, ns (medians of {repeats}); ratio against the SDK's default")
    for name, ns in measured:
        print(f"{name:<42}{ns:>8.0f}{ns / base:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
