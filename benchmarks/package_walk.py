"""What finding cross-module experiment pairs costs at a package's import, against a
baseline measured in the same run.

    python benchmarks/package_walk.py           # a package of 2 040 files, medians of 9
    python benchmarks/package_walk.py --quick   # CI: 200 files, 3 runs, checks it runs

At the import of a top-level package, the import hook looks through its files for markers
that name a function of another of its modules (``replaces: .legacy.total``), so that the
replaced code is instrumented whatever the import order. Measured in-process: that walk,
warm (the unmarked index knows the files) and with the cache off (every file read), each
against the floor of the same work, one ``os.stat`` per file of the same tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from aiotel.config import load_settings
from aiotel.rewriting.importhook import ImportHook


def make_package(root: str, directories: int, files: int) -> str:
    package = os.path.join(root, "bigpkg")
    os.makedirs(package)
    open(os.path.join(package, "__init__.py"), "w").close()
    for d in range(directories):
        sub = os.path.join(package, f"sub{d}")
        os.makedirs(sub)
        open(os.path.join(sub, "__init__.py"), "w").close()
        for i in range(files):
            with open(os.path.join(sub, f"m{i}.py"), "w") as fh:
                fh.write("import os\n" + "".join(f"def f{j}(x):\n    return x + {j}\n" for j in range(60)))
    # one rewrite that names code beside it: the walk scans this file (the rest it only stats)
    with open(os.path.join(package, "sub0", "fast.py"), "w") as fh:
        fh.write("# AI-generated: Claude, replaces: .m0.f0\ndef fast(x):\n    return x\n")
    return package


def stat_every_file(package: str) -> None:
    for directory, _, names in os.walk(package):
        for name in names:
            os.stat(os.path.join(directory, name))


def timed(action, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    directories, files, runs = (4, 50, 3) if options.quick else (40, 51, 9)
    with tempfile.TemporaryDirectory() as work:
        package = make_package(work, directories, files)
        count = sum(len(names) for _, _, names in os.walk(package))
        cache = os.path.join(work, "cache")

        def walk(cache_dir: str) -> None:
            hook = ImportHook(load_settings({"AIOTEL_CACHE_DIR": cache_dir}))
            hook._look_through_package("bigpkg", [package])
            assert set(hook.controls) == {"bigpkg.sub0.m0"}, hook.controls

        walk(cache)  # the first start: fills the unmarked index
        floor = timed(lambda: stat_every_file(package), runs)
        warm = timed(lambda: walk(cache), runs)
        cold = timed(lambda: walk("off"), runs)
    print(f"looking through a package of {count} files for cross-module pairs, CPython "
          f"{sys.version.split()[0]}; medians of {runs}")
    print(f"  a stat per file (the floor)   {floor * 1e3:7.1f} ms")
    print(f"  the walk, warm                {warm * 1e3:7.1f} ms  ({warm / floor:.1f}x the floor, "
          f"{warm / count * 1e6:.1f} us a file)")
    print(f"  the walk, cache off           {cold * 1e3:7.1f} ms  ({cold / floor:.1f}x the floor)")


if __name__ == "__main__":
    main()
