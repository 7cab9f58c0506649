"""Writing spans to the embedded store: the direct OTLP/JSON encoder against the protobuf
way (``encode_spans``, ``MessageToDict``, hex ids, ``json.dumps``), on the same spans in
the same run. Both give the same text (checked here and in tests/store/test_span_json.py).

    python benchmarks/store_write.py           # batches of 512 aiotel spans, best of 15
    python benchmarks/store_write.py --quick   # CI: checks that it runs

Printed: microseconds a span each way, their ratio, and the spans a second one writer
thread can encode (what bounds the store, and so what a short program's exit flush can
write within AIOTEL_SHUTDOWN_TIMEOUT).
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, List

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from aiotel.store.span_json import spans_line
from aiotel.store.writer import otlp_json


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: List = []

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def aiotel_like_spans(count: int) -> List:
    """Spans with the attributes aiotel's own carry; one in 17 failed, with its event."""
    kept = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("aiotel", "0.9")
    for i in range(count):
        with tracer.start_as_current_span(f"steps.step_{i % 60}", attributes={
                "code.function.name": f"steps.step_{i % 60}", "code.file.path": "/srv/app/steps.py",
                "code.line.number": 30 + i % 60, "aiotel.provenance.tool": "Claude",
                "aiotel.provenance.date": "2026-11-20", "aiotel.provenance.prompt": "sum the cart with discounts",
                "aiotel.provenance.source": "comment", "aiotel.span.reason": "root",
                "aiotel.source.sha256": "ab" * 32}) as span:
            if i % 17 == 0:
                span.add_event("exception", {"exception.type": "ValueError", "exception.message": "no multiples of 17"})
                span.set_status(Status(StatusCode.ERROR, "no multiples of 17"))
    return kept.spans


def best_per_span(encode: Callable[[List], str], spans: List, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        encode(spans)
        best = min(best, time.perf_counter() - started)
    return best / len(spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    spans = aiotel_like_spans(512)
    repeats = 2 if options.quick else 15
    assert spans_line(spans) == otlp_json(encode_spans(spans)), "the two encoders disagree"
    slow = best_per_span(lambda batch: otlp_json(encode_spans(batch)), spans, repeats)
    fast = best_per_span(spans_line, spans, repeats)
    print(f"store span encoding, batches of {len(spans)}, best of {repeats}")
    print(f"  protobuf, MessageToDict, json   {slow * 1e6:7.1f} µs a span   {1 / slow:9.0f} spans/s")
    print(f"  direct OTLP/JSON                {fast * 1e6:7.1f} µs a span   {1 / fast:9.0f} spans/s")
    print(f"  direct / protobuf way           {fast / slow:7.2f}x")


if __name__ == "__main__":
    main()
