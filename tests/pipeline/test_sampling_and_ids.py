"""aiotel's default trace rate limit, its id generator and the SDK modules that must not
draw from the program's ``random``."""

from __future__ import annotations

import importlib
import os
import random

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision

from aiotel.pipeline import ids, sampling


def test_new_traces_are_limited_to_the_rate_with_a_second_of_burst():
    limit = sampling.TraceRateLimit(20)
    decisions = [limit.should_sample(None, 1, "root").decision for _ in range(100)]
    assert decisions[:20] == [Decision.RECORD_AND_SAMPLE] * 20
    assert decisions.count(Decision.RECORD_AND_SAMPLE) <= 21


def test_the_default_sampler_follows_the_parent_and_is_off_at_zero():
    sampler = sampling.default_sampler(5)
    assert "ParentBased" in sampler.get_description() and "AiotelTraceRateLimit{5/s}" in sampler.get_description()
    assert sampling.default_sampler(0) is None


def test_ids_are_random_in_the_w3c_sense_and_leave_the_global_random_alone():
    random.seed(7)
    expected = [random.random() for _ in range(3)]
    random.seed(7)
    provider = TracerProvider(id_generator=ids.PrivateIdGenerator())
    tracer = provider.get_tracer("t")
    contexts = []
    for _ in range(50):
        with tracer.start_as_current_span("s") as span:
            contexts.append(span.get_span_context())
    assert [random.random() for _ in range(3)] == expected
    assert ids.PrivateIdGenerator().is_trace_id_random()
    if hasattr(contexts[0].trace_flags, "random_trace_id"):  # SDKs that set the W3C random flag (1.42 on)
        assert all(c.trace_flags.random_trace_id for c in contexts)  # ratio samplers rely on it
    assert len({c.trace_id for c in contexts}) == 50 and all(c.trace_id and c.span_id for c in contexts)


def test_a_forked_child_draws_other_ids_than_its_parent():
    generator = ids.PrivateIdGenerator()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, to the parent
        os.close(read)
        os.write(write, generator.generate_trace_id().to_bytes(16, "big"))
        os._exit(0)
    os.close(write)
    child = int.from_bytes(os.read(read, 16), "big")
    os.waitpid(pid, 0)
    os.close(read)
    assert child != generator.generate_trace_id()


@pytest.mark.parametrize("module, name", [
    ("opentelemetry.exporter.otlp.proto.grpc.exporter", "random"),
    ("opentelemetry.exporter.otlp.common.http", "random"),  # 1.42 on
    ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "random"),  # 1.41 and older
    ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "random"),
    ("opentelemetry.sdk.metrics._internal.exemplar.exemplar_reservoir", "randrange"),
])
def test_the_sdk_modules_that_draw_randomness_get_aiotel_s_generator(module, name):
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not in this SDK")
    before = getattr(loaded, name, None)
    if before is None or (before is not random and getattr(before, "__self__", None) is not random._inst
                          and before is not ids.PRIVATE_RANDOM
                          and getattr(before, "__self__", None) is not ids.PRIVATE_RANDOM):
        pytest.skip(f"{module} draws no randomness through {name} in this release")
    try:
        ids.isolate_loaded_modules()
        got = getattr(loaded, name)
        assert got is ids.PRIVATE_RANDOM or getattr(got, "__self__", None) is ids.PRIVATE_RANDOM
    finally:
        setattr(loaded, name, before)
