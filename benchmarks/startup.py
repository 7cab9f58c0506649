"""Start-up cost of aiotel-run, against bare Python and the agents users would pick instead,
all measured in the same run (medians of wall time of whole processes).

    python benchmarks/startup.py                 # full run, peers from .venv-peers
    python benchmarks/startup.py --quick         # CI: a few runs each, checks it works
    python benchmarks/startup.py --no-peers      # aiotel against bare Python only

Cases:
- ``-c pass``: bare, under ``aiotel-run``, ``opentelemetry-instrument``, ``ddtrace-run``
  and ``hud-run`` (hud-sdk, which starts with no key);
- importing 200 modules, 5 of them with marked functions: bare, aiotel cold (empty
  scan cache, no rewritten bytecode yet), aiotel warm (both cached); and, timed inside
  the program, the import of one marked and of one unmarked module, bare and warm;
- peak RSS of a program with 1000 marked functions, each called once, bare and under
  aiotel-run (exporters off: the SDK's own buffers are not aiotel's).

The peers live in their own virtualenv (``--peers``, default ``.venv-peers``), created
with the pinned versions below when missing, with the same library instrumentations
aiotel's test environment has (Flask, urllib), so both agents find the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

PEERS = ["opentelemetry-distro==0.66b1", "opentelemetry-exporter-otlp==1.45.1",
         "opentelemetry-instrumentation-flask==0.66b1", "opentelemetry-instrumentation-urllib==0.66b1", "flask==3.1.3",
         "ddtrace==4.16.0", "hud-sdk==0.5.6"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def median_seconds(args: List[str], cwd: str, env: Dict[str, str], runs: int, before=None) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        done = subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=120)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {done.stderr.decode(errors='replace')[-2000:]}")
    return statistics.median(times)


def clean_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_", "DD_", "PYTHON"))}
    env.update({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                "DD_TRACE_ENABLED": "true", "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
                "DD_REMOTE_CONFIGURATION_ENABLED": "false"})
    env.update(extra)
    return env


def peers_python(venv: str, create: bool) -> Optional[str]:
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        if not create:
            return None
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        # aiotel too, so benchmarks/overhead.py can put every agent's per-call cost side by side
        subprocess.run([python, "-m", "pip", "install", "--quiet", *PEERS, "-e", ROOT], check=True)
    return python


def make_app(folder: str, package_name: str, marked: int) -> str:
    """200 modules importing a few of the standard library, ``marked`` of them with marked
    functions, and a script that imports them all (and calls nothing: import cost only).
    Returns the script's name."""
    package = os.path.join(folder, package_name)
    os.makedirs(package)
    open(os.path.join(package, "__init__.py"), "w").close()
    every = 200 // marked if marked else 0
    for i in range(200):
        lines = ["import json, os, re", "", f"VALUE_{i} = {i}", ""]
        for j in range(10):
            if every and i % every == 0:
                lines.append(f"# AI-generated: Claude, prompt: \"helper {j} of module {i}\"")
            lines += [f"def f{j}(x):", f"    return x + {j}", ""]
        with open(os.path.join(package, f"m{i}.py"), "w") as fh:
            fh.write("\n".join(lines))
    script = f"{package_name}_app.py"
    with open(os.path.join(folder, script), "w") as fh:
        # prints how long each import took, in ms: start-up noise stays out of per-module numbers
        fh.write("import importlib, json, sys, time\n"
                 "took = []\n"
                 "for i in range(200):\n"
                 "    started = time.perf_counter()\n"
                 f"    importlib.import_module(f'{package_name}.m{{i}}')\n"
                 "    took.append((time.perf_counter() - started) * 1000)\n"
                 "sys.stdout.write(json.dumps(took))\n")
    return script


def import_times(args: List[str], cwd: str, env: Dict[str, str], runs: int,
                 marked_every: int) -> Tuple[float, float, float]:
    """Medians over runs of the import time (ms) of the first marked module (under aiotel it
    builds the tracer provider), the mean of the later marked ones, and the mean of the others."""
    first, marked, others = [], [], []
    for _ in range(runs):
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        took = json.loads(done.stdout)
        is_marked = [i % marked_every == 0 for i in range(200)]
        first.append(took[0])
        later = [t for i, (t, m) in enumerate(zip(took, is_marked)) if m and i > 0]
        marked.append(statistics.mean(later) if later else 0.0)
        others.append(statistics.mean(t for t, m in zip(took, is_marked) if not m))
    return statistics.median(first), statistics.median(marked), statistics.median(others)


def rss_with_1000_functions(work: str, env: Dict[str, str], aiotel_run: str) -> Tuple[int, int]:
    """Peak RSS (KiB) of a program defining 1000 marked functions and calling each once."""
    folder = os.path.join(work, "memory")
    os.makedirs(folder)
    with open(os.path.join(folder, "thousand.py"), "w") as fh:
        fh.write("\n".join(f"# AI-generated: Claude\ndef f{i}(x):\n    return x + {i}\n" for i in range(1000)))
    with open(os.path.join(folder, "app.py"), "w") as fh:
        fh.write("import resource, thousand\n"
                 "print(sum(getattr(thousand, f'f{i}')(1) for i in range(1000)))\n"
                 "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    found = []
    for args in ([sys.executable, "app.py"], [aiotel_run, sys.executable, "app.py"]):
        for _ in range(2):  # the second run: warm caches
            done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=300,
                                  stdin=subprocess.DEVNULL)
        found.append(int(done.stdout.split()[-1]))
    return found[0], found[1]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per case: checks that everything works")
    parser.add_argument("--peers", default=os.path.join(ROOT, ".venv-peers"), help="the peers' virtualenv")
    parser.add_argument("--no-peers", action="store_true", help="skip the other agents")
    options = parser.parse_args(argv)
    runs = 3 if options.quick else 21
    aiotel_run = os.path.join(BIN, "aiotel-run")
    rows = []
    with tempfile.TemporaryDirectory(prefix="aiotel-startup-") as work:
        env = clean_env(AIOTEL_CACHE_DIR=os.path.join(work, "cache"))
        bare = median_seconds([sys.executable, "-c", "pass"], work, env, runs)
        rows.append(("python -c pass", bare, None))
        rows.append(("aiotel-run python -c pass", median_seconds([aiotel_run, sys.executable, "-c", "pass"], work, env, runs),
                     bare))
        peer = None if options.no_peers else peers_python(options.peers, create=True)
        if peer is not None:
            peer_bin = os.path.dirname(peer)
            peer_bare = median_seconds([peer, "-c", "pass"], work, env, runs)
            rows.append(("opentelemetry-instrument python -c pass",
                         median_seconds([os.path.join(peer_bin, "opentelemetry-instrument"), peer, "-c", "pass"],
                                        work, env, runs), peer_bare))
            for runner in ("ddtrace-run", "hud-run"):
                if os.path.exists(os.path.join(peer_bin, runner)):
                    rows.append((f"{runner} python -c pass",
                                 median_seconds([os.path.join(peer_bin, runner), peer, "-c", "pass"], work, env, runs),
                                 peer_bare))
        app = make_app(work, "bigapp", marked=5)
        unmarked_app = make_app(work, "plainapp", marked=0)
        bytecode = os.path.join(work, "pycache")

        def cold() -> None:
            """aiotel's caches only: the scan cache and the rewritten bytecode (Python's own
            bytecode of the standard library, the SDK and libcst stays, as it would)."""
            shutil.rmtree(os.path.join(work, "cache"), ignore_errors=True)
            for folder, _, names in os.walk(bytecode):
                for name in names:
                    if "-aiotel-" in name:
                        os.unlink(os.path.join(folder, name))

        app_env = dict(env, PYTHONPYCACHEPREFIX=bytecode)
        for script in (app, unmarked_app):  # Python's own pyc and aiotel's caches, warm
            median_seconds([sys.executable, script], work, app_env, 1)
            median_seconds([aiotel_run, sys.executable, script], work, app_env, 1)
        app_bare = median_seconds([sys.executable, app], work, app_env, runs)
        rows.append(("import 200 modules (5 marked)", app_bare, None))
        rows.append(("  aiotel-run, cold caches", median_seconds([aiotel_run, sys.executable, app], work, app_env,
                                                                  runs, before=cold), app_bare))
        median_seconds([aiotel_run, sys.executable, app], work, app_env, 1)
        rows.append(("  aiotel-run, warm caches", median_seconds([aiotel_run, sys.executable, app], work, app_env,
                                                                  runs), app_bare))
        # per module, measured inside the program (the first marked import also loads what
        # the scan cache needs, which is counted in it)
        bare_first, bare_marked, _ = import_times([sys.executable, app], work, app_env, runs, 40)
        warm_first, warm_marked, _ = import_times([aiotel_run, sys.executable, app], work, app_env, runs, 40)
        _, _, bare_unmarked = import_times([sys.executable, unmarked_app], work, app_env, runs, 1000)
        _, _, warm_unmarked = import_times([aiotel_run, sys.executable, unmarked_app], work, app_env, runs, 1000)

        memory = rss_with_1000_functions(work, env, aiotel_run)

    print(f"start-up, medians of {runs} runs (ms); added = case minus its own bare interpreter")
    print(f"{'case':<42}{'ms':>9}{'added ms':>10}")
    added: Dict[str, float] = {}
    for name, seconds, base in rows:
        extra = (seconds - base) * 1000 if base is not None else None
        if extra is not None:
            added[name] = extra
        print(f"{name:<42}{seconds * 1000:>9.1f}{'' if extra is None else f'{extra:>10.1f}'}")
    per_marked = warm_marked - bare_marked
    print(f"import of one module, warm caches, mean: unmarked {bare_unmarked:.3f} ms bare, "
          f"{warm_unmarked:.3f} ms under aiotel-run (+{warm_unmarked - bare_unmarked:.3f}); marked "
          f"{bare_marked:.3f} ms bare, {warm_marked:.3f} ms under aiotel-run (+{per_marked:.3f}; target <= 1 ms: "
          f"{'met' if per_marked <= 1 else 'MISSED'}); the first marked module {bare_first:.3f} ms bare, "
          f"{warm_first:.3f} ms under aiotel-run (+{warm_first - bare_first:.3f}: it builds the tracer provider)")
    bare_kib, aiotel_kib = memory
    print(f"peak RSS, 1000 marked functions each called once: bare {bare_kib / 1024:.1f} MiB, "
          f"aiotel-run {aiotel_kib / 1024:.1f} MiB (+{(aiotel_kib - bare_kib) / 1024:.1f} MiB)")
    ours, theirs = added.get("aiotel-run python -c pass"), added.get("opentelemetry-instrument python -c pass")
    if ours is not None and theirs:
        ratio = ours / theirs
        print(f"target: aiotel-run adds <= 0.15x what opentelemetry-instrument adds: {ratio:.2f}x "
              f"{'met' if ratio <= 0.15 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
