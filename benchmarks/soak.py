"""Memory over time: a program under ``aiotel-run`` whose 8 threads call marked functions
while its collector is up, then down, then flapping; its resident memory is sampled
throughout and its growth fitted as a slope once warmed up.

    python benchmarks/soak.py                 # 3 minutes: a minute per phase
    python benchmarks/soak.py --seconds 3600  # an hour
    python benchmarks/soak.py --quick         # CI: 15 s, checks that it runs

The collector is a stdlib HTTP server in a process of its own on 127.0.0.1 (an
ephemeral port, kept across restarts), answering every OTLP/HTTP export with an empty
success; "down" kills it, so exports are refused and go to the spill. Spans are made
at up to 50 a second per function (AIOTEL_SPAN_RATE_LIMIT), so the export queue, the
spill and the per-trace state are all in use. Printed: RSS per phase, and least-squares
slopes of RSS against time: after warm-up (the first sixth), and once the bounded queues
are full (from the middle of the outage on; target: at most 1 MB an hour).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Dict, List, Optional, Tuple

BIN = os.path.dirname(sys.executable)

PROGRAM = textwrap.dedent('''\
    import sys
    import threading
    import time


    # AI-generated: Claude, 2026-11-20, prompt: "parse an amount"
    def parse(text):
        try:
            return int(text)
        except ValueError:
            return None


    # AI-generated: Claude, 2026-11-20, prompt: "sum the cart"
    def total(items):
        if not items:
            raise ValueError("an empty cart")
        return sum(parse(item) or 0 for item in items)


    def work(stop):
        n = 0
        while time.monotonic() < stop:
            n += 1
            try:
                total([str(n), "x", str(n % 7)] if n % 50 else [])
            except ValueError:
                pass
            time.sleep(0.0005)


    stop = time.monotonic() + float(sys.argv[1])
    threads = [threading.Thread(target=work, args=(stop,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ''')

COLLECTOR = textwrap.dedent('''\
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer


    class Sink(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass


    HTTPServer.allow_reuse_address = True
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
    ''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """The sink, started and killed by PID."""

    def __init__(self, port: int, script: str) -> None:
        self.port, self.script = port, script
        self.process: Optional[subprocess.Popen] = None

    def up(self) -> None:
        if self.process is None:
            self.process = subprocess.Popen([sys.executable, self.script, str(self.port)])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return
                except OSError:
                    time.sleep(0.05)
            raise SystemExit("the test collector did not start within 10 s")

    def down(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def rss_kib(pid: int) -> Optional[int]:
    """The resident set of ``pid`` in KiB (the program's own, not its children's)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def slope_mib_per_hour(samples: List[Tuple[float, int]]) -> float:
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_r = sum(r for _, r in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (r - mean_r) for t, r in samples)
    return (cov / var) * 3600 / 1024 if var else 0.0  # KiB a second -> MiB an hour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    seconds = 15.0 if options.quick else options.seconds
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "app.py"), "w") as fh:
            fh.write(PROGRAM)
        collector_script = os.path.join(work, "collector.py")
        with open(collector_script, "w") as fh:
            fh.write(COLLECTOR)
        port = free_port()
        collector = Collector(port, collector_script)
        env: Dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith(("AIOTEL_", "OTEL_"))}
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}", OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                   OTEL_EXPORTER_OTLP_TIMEOUT="1000", OTEL_METRIC_EXPORT_INTERVAL="5000",
                   AIOTEL_SPAN_RATE_LIMIT="50", AIOTEL_CACHE_DIR=os.path.join(work, "cache"),
                   AIOTEL_SPILL=os.path.join(work, "spill"), OTEL_SERVICE_NAME="soak")
        collector.up()
        launcher = subprocess.Popen([os.path.join(BIN, "aiotel-run"), "python", "app.py", str(seconds)], cwd=work,
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        pid = launcher.pid  # aiotel-run execs the program: the same process
        started = time.monotonic()
        samples: List[Tuple[float, int]] = []
        phase = "up"
        try:
            while launcher.poll() is None:
                elapsed = time.monotonic() - started
                if elapsed < seconds / 3:
                    wanted = "up"
                elif elapsed < 2 * seconds / 3:
                    wanted = "down"
                else:  # flapping: two seconds each way
                    wanted = "up" if int(elapsed / 2) % 2 else "down"
                if wanted != phase:
                    (collector.up if wanted == "up" else collector.down)()
                    phase = wanted
                rss = rss_kib(pid)
                if rss is not None and 1.0 <= elapsed <= seconds:  # from 1 s: the program has started
                    samples.append((elapsed, rss))
                time.sleep(0.25)
            stderr = launcher.communicate(timeout=60)[1]
        finally:
            if launcher.poll() is None:
                launcher.kill()
            collector.down()
        if launcher.returncode != 0:
            raise SystemExit(f"the program failed ({launcher.returncode}): {stderr[-2000:]}")
    warm = [(t, r) for t, r in samples if t >= seconds / 6]
    # once the bounded queues are full: from the middle of the first collector outage on
    full = [(t, r) for t, r in samples if t >= seconds / 2]
    if len(warm) < 8 or len(full) < 8:
        raise SystemExit("too few samples to fit")
    slope = slope_mib_per_hour(full)
    first, peak, last = samples[0][1], max(r for _, r in samples), samples[-1][1]
    print(f"soak: {seconds:g} s, 8 threads, collector up / down / flapping, {len(samples)} RSS samples")
    print(f"  RSS at start {first / 1024:.1f} MiB, after warm-up {warm[0][1] / 1024:.1f} MiB, "
          f"peak {peak / 1024:.1f} MiB, at end {last / 1024:.1f} MiB")
    for name, low, high in (("up", 0, 1 / 3), ("down", 1 / 3, 2 / 3), ("flapping", 2 / 3, 1)):
        part = [(t, r) for t, r in samples if low * seconds <= t < high * seconds]
        late = [(t, r) for t, r in part if t >= (low + high) / 2 * seconds]  # its second half
        if len(late) >= 8:
            print(f"  {name:<9} RSS {min(r for _, r in part) / 1024:6.1f} to {max(r for _, r in part) / 1024:6.1f} MiB;"
                  f" slope over its second half {slope_mib_per_hour(late):+8.2f} MiB an hour")
    print(f"  slope after warm-up (from {seconds / 6:g} s): {slope_mib_per_hour(warm):+.2f} MiB an hour, "
          "the bounded queues filling included")
    print(f"  slope once they are full (from {seconds / 2:g} s, mid-outage): {slope:+.2f} MiB an hour (target <= 1.0: "
          f"{'met' if slope <= 1.0 else 'NOT met'}{'; too short a run to tell' if seconds < 600 else ''})")
    said = [line for line in stderr.splitlines() if line.startswith("aiotel:")]
    print(f"  aiotel said: {said if said else 'nothing'}")


if __name__ == "__main__":
    main()
