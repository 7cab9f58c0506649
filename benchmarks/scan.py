"""Cost of finding provenance, over the Python standard library as corpus.

    python benchmarks/scan.py [--quick]

Prints, with a baseline measured in the same run for each:
  pre-filter      ms per MB and for the whole stdlib (target: whole stdlib < 50 ms)
                  baseline: bytes.count(b"\\n") over the same bytes (one pass, C speed)
  cold scan       ms per 1000 lines of a marked file (libcst parse + walk)
                  baseline: ast.parse of the same text
  warm lookup     ms per file from the disk cache (target: <= 1 ms)
                  baseline: open + read of the same file
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import sys
import sysconfig
import tempfile
import time

from aiotel.provenance import CachedScanner, Prefilter, scan_source
from aiotel.provenance.grammar import DEFAULT_MARKERS

MARKER = b"# AI-generated: Benchmark, 2024-01-01, prompt: \"every function\"\n\n"


def stdlib_files():
    root = sysconfig.get_paths()["stdlib"]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("site-packages", "dist-packages", "__pycache__")]
        for name in filenames:
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few files, one repeat: checks the benchmark works")
    args = parser.parse_args()

    files = sorted(stdlib_files())
    corpus = []
    for path in files:
        with open(path, "rb") as fh:
            corpus.append((path, fh.read()))
    total_bytes = sum(len(d) for _, d in corpus)
    megabytes = total_bytes / 1e6
    repeat = 1 if args.quick else 7

    prefilter = Prefilter(DEFAULT_MARKERS)
    candidates = [p for p, d in corpus if prefilter.may_have_markers(d)]
    filter_best, filter_median = best_of(repeat, lambda: [prefilter.may_have_markers(d) for _, d in corpus])
    base_best, _ = best_of(repeat, lambda: [d.count(b"\n") for _, d in corpus])

    # Mid-sized files, marked at the top so every function is reported.
    sample = [(p, MARKER + d) for p, d in corpus if 20_000 < len(d) < 60_000][: 3 if args.quick else 40]
    lines = sum(d.count(b"\n") for _, d in sample)
    texts = [d.decode("utf-8", "replace") for _, d in sample]
    cold_best, _ = best_of(1 if args.quick else 3, lambda: [scan_source(d, p, "m") for p, d in sample])
    ast_best, _ = best_of(1 if args.quick else 3, lambda: [ast.parse(t) for t in texts])

    with tempfile.TemporaryDirectory() as cache_dir:
        marked_paths = []
        for index, (_, data) in enumerate(sample):
            path = os.path.join(cache_dir, f"m{index}.py")
            with open(path, "wb") as fh:
                fh.write(data)
            marked_paths.append(path)
        scanner = CachedScanner(cache_dir=os.path.join(cache_dir, "cache"))
        for path in marked_paths:
            scanner.scan_path(path, "m")
        warm_scanner = CachedScanner(cache_dir=os.path.join(cache_dir, "cache"))
        warm_best, _ = best_of(repeat, lambda: [warm_scanner.scan_path(p, "m") for p in marked_paths])
        warm = [CachedScanner(cache_dir=os.path.join(cache_dir, "cache")).scan_path(p, "m") for p in marked_paths]
        assert [r.functions for r in warm] == [CachedScanner().scan_path(p, "m").functions for p in marked_paths]
        assert sum(len(r.functions) for r in warm) > 0

        def read_all():
            for p in marked_paths:
                with open(p, "rb") as fh:
                    fh.read()

        read_best, _ = best_of(repeat, read_all)

    per_file = len(marked_paths)
    rows = [
        ("pre-filter, whole stdlib", f"{filter_best * 1e3:.1f} ms", f"{base_best * 1e3:.1f} ms",
         f"{filter_best / base_best:.2f}x", "< 50 ms", filter_best < 0.050),
        ("pre-filter, per MB", f"{filter_best * 1e3 / megabytes:.3f} ms", f"{base_best * 1e3 / megabytes:.3f} ms",
         f"{filter_best / base_best:.2f}x", "", None),
        ("cold scan, per 1000 lines", f"{cold_best * 1e3 / lines * 1000:.1f} ms", f"{ast_best * 1e3 / lines * 1000:.1f} ms",
         f"{cold_best / ast_best:.1f}x", "", None),
        ("warm lookup, per file", f"{warm_best * 1e3 / per_file:.3f} ms", f"{read_best * 1e3 / per_file:.3f} ms",
         f"{warm_best / read_best:.1f}x", "<= 1 ms", warm_best / per_file <= 0.001),
    ]
    print(f"Python {sys.version.split()[0]}; corpus: {len(corpus)} stdlib files, {megabytes:.1f} MB; "
          f"{len(candidates)} pass the pre-filter; scan sample: {len(sample)} files, {lines} lines")
    header = ("measure", "aiotel", "baseline", "ratio", "target", "met")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(5)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths + [3])))
    for row in rows:
        met = "" if row[5] is None else ("yes" if row[5] else "NO")
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:5], widths)) + "  " + met)
    print("baselines: pre-filter vs bytes.count(b'\\n'); cold scan vs ast.parse; warm lookup vs open+read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
