"""aiotel's default sampler, used only when ``OTEL_TRACES_SAMPLER`` is not set: parent-based,
with new traces limited per second per process (``AIOTEL_TRACE_RATE_LIMIT``), whoever
starts them.

With a web framework instrumented, every request starts a recorded trace, and every
marked call inside one gets its span: the per-function cap no longer bounds anything.
ddtrace's rate limiter is the model (100 traces a second by default): a token bucket
of that many per second, a second's worth of burst. A trace whose decision arrived
from upstream (a remote parent) is obeyed as the parent-based samplers do. A sampler
the user sets is used as it is.
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes


class TraceRateLimit(Sampler):
    """Records at most ``per_second`` new traces a second (burst: one second's worth)."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._capacity = max(1.0, per_second)
        self._tokens = self._capacity
        self._last = time.monotonic()

    def _take(self) -> bool:
        # No lock (a lock held by another thread at fork would stay held in the child):
        # two threads racing here may let one trace more through, never fewer
        now = time.monotonic()
        tokens = min(self._capacity, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    def should_sample(
        self,
        parent_context: Optional[Any],
        trace_id: int,
        name: str,
        kind: Optional[SpanKind] = None,
        attributes: Attributes = None,
        links: Optional[Sequence[Link]] = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if self._take() else Decision.DROP
        return SamplingResult(decision, attributes if decision.is_sampled() else None, trace_state)

    def get_description(self) -> str:
        return f"AiotelTraceRateLimit{{{self.per_second:g}/s}}"


def default_sampler(per_second: float) -> Optional[Sampler]:
    """Parent-based, new traces rate-limited; None (the SDK's own default) when the limit is 0."""
    if per_second <= 0:
        return None
    return ParentBased(root=TraceRateLimit(per_second))
