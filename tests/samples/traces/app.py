"""Traces as real programs make them: a web framework's request spans, a client library's
spans inside AI-generated functions, threads, hot loops, a slow call and a seeded random
stream. Run with one mode: requests, handlers, threads, budget, slow, random."""

import random
import sys
import threading
import time

from opentelemetry import trace

framework = trace.get_tracer("webframework")  # as Flask's or Django's instrumentation does
client = trace.get_tracer("llmclient")  # as an LLM or HTTP client's instrumentation does


def client_call(n):
    with client.start_as_current_span("client.call", kind=trace.SpanKind.CLIENT):
        return n * 2


# AI-generated: Claude, 2026-11-01, prompt: "one step of the pipeline"
def step(n):
    return client_call(n) + 1


# AI-generated: Copilot, 2026-11-02
def handler(request):
    return sum(step(i) for i in range(5)) + request


def requests_mode():
    for request in range(60):
        with framework.start_as_current_span("GET /", kind=trace.SpanKind.SERVER):
            sum(step(i) for i in range(5))


def handlers_mode():
    for request in range(60):
        handler(request)


# AI-generated: GPT-4o, 2026-11-03
def tick(n):
    return n + 1


def threads_mode():
    def worker():
        for i in range(5):
            tick(i)

    workers = [threading.Thread(target=worker) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


# AI-generated: Claude, 2026-11-04
def helper(n):
    return n & 7


# AI-generated: Claude, 2026-11-04
def outer(calls):
    return sum(helper(i) for i in range(calls))


def budget_mode():
    outer(20_000)
    with framework.start_as_current_span("GET /bulk", kind=trace.SpanKind.SERVER):
        sum(helper(i) for i in range(1_500))


# AI-generated: Cursor, 2026-11-05
def work(seconds):
    if seconds:
        time.sleep(seconds)
    return seconds


def slow_mode():
    for i in range(300):
        work(0)
        if i == 150:
            work(0.5)


def random_mode():
    random.seed(1234)
    out = []
    for i in range(20):
        out.append(random.random())
        handler(i)  # spans: ids drawn on every one
        tick(i)
    time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)  # export attempts, retries
    out.append(random.getrandbits(64))
    print(" ".join(repr(x) for x in out))


if __name__ == "__main__":
    {"requests": requests_mode, "handlers": handlers_mode, "threads": threads_mode, "budget": budget_mode,
     "slow": slow_mode, "random": random_mode}[sys.argv[1]]()
