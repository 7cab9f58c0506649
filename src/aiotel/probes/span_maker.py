"""aiotel's own spans, started without paying ``Tracer.start_span``'s per-call set-up.

They are the SDK's own ``Span`` objects (of the SDK the tracer comes from: the probes
import no SDK themselves), decided by the tracer's sampler, with its id generator's ids,
started through ``Span.start`` (so every processor's ``on_start`` sees them) and ended as
any span is; only their making differs. ``start_span`` validates every
attribute against the span limits and builds a bounded attribute map, event and link
lists and a lock for each span: most of a sampled call's cost. What is the same for
every call of a function (its attributes, validated once against the limits, its
resource, scope and processors) is built once here, in a template span made by the
SDK's own constructor; each call's span copies it and gets fresh mutable parts.

The copy is only as good as its knowledge of the ``Span`` it copies, so it is checked
once, when the maker is built: an SDK whose spans or attribute maps hold fields not
named here, or a tracer without the parts read here, gets ``start_span`` as before.
So does a call whose sampler changes the attributes it was given.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Dict, Optional, Tuple

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

# Every field of the SDK's Span (1.27 to 1.45): the ones set per span are replaced on
# each copy, the others are the same for every span of a function
_PER_SPAN = {"_context", "_parent", "_attributes", "_events", "_links", "_lock", "_start_time", "_end_time"}
_SHARED = {"_name", "_kind", "_resource", "_instrumentation_info", "_instrumentation_scope", "_status", "_sampler",
           "_trace_config", "_record_exception", "_set_status_on_exception", "_span_processor", "_limits",
           "_record_end_metrics"}
_ATTRIBUTE_FIELDS = {"_dict", "_immutable", "_lock", "dropped", "max_value_len", "maxlen", "_extended_attributes"}
_TRACER_PARTS = ("sampler", "resource", "span_processor", "id_generator", "instrumentation_info", "_span_limits",
                 "_instrumentation_scope")
_INTERNAL = SpanKind.INTERNAL
_SAMPLED = TraceFlags.SAMPLED
_RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)  # the W3C random flag, where the API knows it (1.42 on)
_MAX_TEMPLATES = 4096  # functions times attribute sets: a bound, not a working size
_new = object.__new__


def _lock_like(lock: Any) -> Any:
    """What makes a new lock of ``lock``'s kind (lock types cannot be called themselves)."""
    for make in (threading.Lock, threading.RLock):
        if type(lock) is type(make()):
            return make
    raise TypeError(f"not a lock: {type(lock).__name__}")


class SpanMaker:
    """Starts spans of marked functions on one SDK ``tracer``; ``usable`` says whether it can."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self.usable = False
        self._templates: Dict[int, Tuple[Dict[str, Any], Any]] = {}
        try:
            self._check()
        except Exception:
            self.usable = False

    def _check(self) -> None:
        if not all(hasattr(self.tracer, part) for part in _TRACER_PARTS):
            return
        # the span class of the SDK the tracer comes from (the probes import no SDK themselves)
        sdk = sys.modules.get(type(self.tracer).__module__)
        self._span_class = getattr(sdk, "_Span", None) or getattr(sdk, "Span", None)
        if not isinstance(self._span_class, type):
            return
        template = self._template("aiotel.check", {"aiotel.check": 1})
        fields = set(vars(template))
        if not fields <= _PER_SPAN | _SHARED or not set(vars(template._attributes)) <= _ATTRIBUTE_FIELDS:
            return
        self._bounded_list = type(template._events)
        if self._bounded_list.__name__ != "BoundedList" or type(template._links) is not self._bounded_list:
            return
        self._attribute_lock = _lock_like(template._attributes._lock)
        self._span_lock = _lock_like(template._lock)
        limits = self.tracer._span_limits
        self._max_events, self._max_links = limits.max_events, limits.max_links
        self._sampler = self.tracer.sampler
        self._ids = self.tracer.id_generator
        self._enabled = getattr(self.tracer, "_is_enabled", None)
        self.usable = True

    def _template(self, name: str, attributes: Dict[str, Any]) -> Any:
        """A span the SDK's constructor makes (never started: no processor sees it)."""
        tracer = self.tracer
        return self._span_class(
            name=name, context=SpanContext(1, 1, False), parent=None, sampler=tracer.sampler,
            resource=tracer.resource, attributes=attributes, span_processor=tracer.span_processor, kind=_INTERNAL,
            links=(), instrumentation_info=tracer.instrumentation_info, limits=tracer._span_limits,
            instrumentation_scope=tracer._instrumentation_scope)

    def start(self, name: str, attributes: Dict[str, Any], parent: Optional[SpanContext]) -> Optional[Any]:
        """A started span for a call named ``name`` with ``attributes`` (the same dict for
        every call of a function), under ``parent`` (None: a new trace); a
        ``NonRecordingSpan`` when the sampler says no; None: let ``start_span`` make it."""
        if self._enabled is not None and not self._enabled():
            return None
        ids = self._ids
        trace_id = ids.generate_trace_id() if parent is None else parent.trace_id
        result = self._sampler.should_sample(None, trace_id, name, _INTERNAL, attributes, ())
        decision = result.decision
        flags = _SAMPLED if decision.is_sampled() else 0
        if _RANDOM and (ids.is_trace_id_random() if parent is None else parent.trace_flags.random_trace_id):
            flags |= _RANDOM
        context = SpanContext(trace_id, ids.generate_span_id(), False, TraceFlags(flags), result.trace_state)
        if not decision.is_recording():
            return NonRecordingSpan(context)
        given = result.attributes  # the SDK's samplers hand back a read-only view of ``attributes``
        if given != attributes:
            span = self._template(name, given)  # the sampler changed them: the SDK's own way
        else:
            span = self._copy(name, attributes)
        span._context, span._parent = context, parent
        span.start()
        return span

    def _copy(self, name: str, attributes: Dict[str, Any]) -> Any:
        entry = self._templates.get(id(attributes))
        if entry is None or entry[0] is not attributes:
            if len(self._templates) >= _MAX_TEMPLATES:
                self._templates.clear()
            entry = self._templates[id(attributes)] = (attributes, self._template(name, attributes))
        template = entry[1]
        span = _new(self._span_class)
        fields = span.__dict__
        fields.update(template.__dict__)
        shared = template._attributes
        own = _new(BoundedAttributes)
        own.__dict__.update(shared.__dict__)
        own._dict = shared._dict.copy()
        own._lock = self._attribute_lock()
        fields["_attributes"] = own
        fields["_events"] = self._bounded_list(self._max_events)
        fields["_links"] = self._bounded_list(self._max_links)
        fields["_lock"] = self._span_lock()
        return span
