"""What the export-time scrub of other instrumentations' spans costs: the store exporter
writing batches of foreign spans (an HTTP client's, an LLM call's with content) bare,
against the same exporter wrapped by ``pipeline.scrubbing`` (content dropped, every
string through the redactor), in the same run. Paid in the exporter's thread, never in
the program's.

    python benchmarks/scrub.py           # medians of 9 repeats of 20 batches of 512 spans
    python benchmarks/scrub.py --quick   # CI: checks that every case runs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any, List

from opentelemetry.sdk.trace import TracerProvider

from aiotel.pipeline.scrubbing import ContentPolicy, scrubbing
from aiotel.probes.redact import Redactor
from aiotel.store.writer import StoreSpanExporter


def foreign_spans(count: int) -> List[Any]:
    tracer = TracerProvider().get_tracer("opentelemetry.instrumentation.requests")
    llm = TracerProvider().get_tracer("openinference.instrumentation.openai")
    spans = []
    for i in range(count):
        if i % 4:
            span = tracer.start_span("GET", attributes={
                "http.request.method": "GET", "url.full": f"https://api.example.com/v1/items?page={i}",
                "server.address": "api.example.com", "server.port": 443, "http.response.status_code": 200,
                "user_agent.original": "python-requests/2.31", "aiotel.function.name": "app.fetch"})
        else:
            span = llm.start_span("ChatCompletion", attributes={
                "openinference.span.kind": "LLM", "llm.system": "openai", "llm.model_name": "gpt-4o-mini",
                "input.value": '{"messages": [{"role": "user", "content": "summarize the quarterly report"}]}',
                "llm.input_messages.0.message.content": "summarize the quarterly report",
                "llm.output_messages.0.message.content": "The quarter went well." * 20,
                "llm.token_count.prompt": 120, "llm.token_count.completion": 80, "aiotel.function.name": "app.ask"})
        span.end()
        spans.append(span)
    return spans


def measure(exporter: Any, spans: List[Any], batches: int, repeats: int) -> float:
    results = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(batches):
            exporter.export(spans)
        results.append((time.perf_counter_ns() - start) / (batches * len(spans)))
    return statistics.median(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    batches, repeats = (2, 1) if options.quick else (20, 9)
    spans = foreign_spans(512)
    with tempfile.TemporaryDirectory() as store:
        bare = StoreSpanExporter(store, max_bytes=1 << 40)
        scrubbed = scrubbing(StoreSpanExporter(store, max_bytes=1 << 40),
                             ContentPolicy("false", {}, Redactor(())))
        base = measure(bare, spans, batches, repeats)
        ours = measure(scrubbed, spans, batches, repeats)
    print(f"exporting foreign spans to the store, ns per span (medians of {repeats}); 3 in 4 HTTP client spans, "
          "1 in 4 LLM spans with content")
    print(f"  store exporter, bare        {base:10.0f}  1.00x")
    print(f"  scrubbed, then the exporter {ours:10.0f}  {ours / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
