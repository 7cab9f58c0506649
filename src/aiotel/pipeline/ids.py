"""Randomness of aiotel's own, so the program's ``random`` stream stays its own.

The SDK's ``RandomIdGenerator`` draws span and trace ids from the global ``random``
module, and the OTLP exporters' retry jitter and the metrics SDK's exemplar reservoir
call it too: a program that seeds ``random`` would see another sequence once spans are
on. aiotel's tracer providers get ``PrivateIdGenerator``, and those SDK modules get
``PRIVATE_RANDOM`` in place of the module-level functions they call. It is a
``random.Random`` seeded from ``os.urandom`` (about as fast as the global functions; see
``benchmarks/ids.py``), reseeded in every forked child so that parent and child never
share ids.
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace.id_generator import IdGenerator

PRIVATE_RANDOM = random.Random(os.urandom(32))


def _reseed() -> None:
    PRIVATE_RANDOM.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


class PrivateIdGenerator(IdGenerator):
    """Random ids, as the SDK's default makes them, from aiotel's own generator."""

    def generate_span_id(self) -> int:
        span_id = PRIVATE_RANDOM.getrandbits(64)
        while span_id == trace_api.INVALID_SPAN_ID:
            span_id = PRIVATE_RANDOM.getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        trace_id = PRIVATE_RANDOM.getrandbits(128)
        while trace_id == trace_api.INVALID_TRACE_ID:
            trace_id = PRIVATE_RANDOM.getrandbits(128)
        return trace_id

    def is_trace_id_random(self) -> bool:
        return True  # uniform 128 bits: ratio-based samplers keep working


# SDK modules that draw from the global ``random`` (as ``import random`` or ``from random
# import ...``), and the names to point at PRIVATE_RANDOM instead
_MODULE_USERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",  # retry jitter: random.uniform
    "opentelemetry.exporter.otlp.common.http",  # retry jitter: random.uniform
    # releases before the common module (1.41 and older): each HTTP exporter's own jitter
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
)
_FUNCTION_USERS = (
    ("opentelemetry.sdk.metrics._internal.exemplar.exemplar_reservoir", "randrange"),
)


def isolate_loaded_modules() -> None:
    """Point the SDK modules loaded so far at PRIVATE_RANDOM (called once the exporters
    and the metrics SDK are imported; calling it again is harmless)."""
    for name in _MODULE_USERS:
        module: Any = sys.modules.get(name)
        if module is not None and getattr(module, "random", None) is random:
            module.random = PRIVATE_RANDOM
    for name, function in _FUNCTION_USERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, function, None) is getattr(random, function):
            setattr(module, function, getattr(PRIVATE_RANDOM, function))
