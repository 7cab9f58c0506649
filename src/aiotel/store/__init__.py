"""Stage 5: the embedded local store, for runs with no collector.

``writer`` holds the span and metric exporters that append OTLP/JSON lines (the format
the Collector's file exporter writes); ``rollup`` reads them back into numbers per
AI-generated function for ``aiotel report``.
"""
