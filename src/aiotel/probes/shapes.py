"""Input shapes (``AIOTEL_CAPTURE_ARGS=shape``): each argument's type and, for sized
values, its length. Never a value.

A failed call's shapes are also counted by its exception type (``failed_inputs``), with
lengths in buckets by powers of ten, and put on its late span: the shapes computed at
the call's start are kept for that, on its ``Call`` when it has a span, else as the
latest call of its function in its thread (an outer call of a recursion, or a coroutine
whose call of the same function interleaved with another's, finds a newer call there:
its failure is counted with the shape ``_UNKNOWN``, never with another call's)."""

from __future__ import annotations

from bisect import bisect_left
from threading import get_ident
from types import BuiltinFunctionType, MethodDescriptorType, WrapperDescriptorType
from typing import Any, Dict, Tuple

from .. import semconv
from ..length_buckets import length_bucket
from .signals import _type_name
from .experiments import ShadowCall
from .state import Call, FunctionProbe


# Input shapes (AIOTEL_CAPTURE_ARGS=shape). Sizes are bucketed like durations: exact
# counts in plain lists, handed to the readers as aiotel.function.input.size.
SIZE_BOUNDS: Tuple[int, ...] = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000,
                                100_000, 1_000_000, 10_000_000)
# Distinct type names kept per parameter; later ones are counted as OTHER_TYPE.
MAX_TYPES_PER_PARAMETER = 10
OTHER_TYPE = "_OTHER"
_MAX_TYPE_NAME = 128
_MAX_THREADS_KEPT = 256  # threads whose latest call's shape is kept, per function
# Per parameter and type: [calls, sized calls, size sum, bucket counts...]
INPUT_CALLS, INPUT_SIZED, INPUT_SIZE_SUM, INPUT_BUCKETS = 0, 1, 2, 3
_C_CALLABLES = (WrapperDescriptorType, MethodDescriptorType, BuiltinFunctionType)
_type_cache: Dict[type, Tuple[str, bool]] = {}
_TYPE_CACHE_MAX = 4096


def _describe(cls: type) -> Tuple[str, bool]:
    """(type name, whether ``len()`` is safe): only a ``__len__`` written in C is called.
    A Python ``__len__`` may run a query or have side effects (an ORM's lazy result set)."""
    sized = False
    for klass in cls.__mro__:
        if "__len__" in klass.__dict__:
            sized = isinstance(klass.__dict__["__len__"], _C_CALLABLES)
            break
    described = (_type_name(cls)[:_MAX_TYPE_NAME], sized)
    if len(_type_cache) < _TYPE_CACHE_MAX:
        _type_cache[cls] = described
    return described


def shapes(probe: FunctionProbe, call: Any, values: Tuple[Any, ...]) -> None:
    """At the start of a call: the type and, for sized values, the length of each argument.
    Never a value."""
    try:
        if call.__class__ is ShadowCall:  # the shadow arm's arguments are the live call's, counted there
            return
        shape = []
        for value, per_type in zip(values, probe.inputs):
            cls = type(value)  # not value.__class__, which a proxy may fake
            name, sized = _type_cache.get(cls) or _describe(cls)
            counts = per_type.get(name)
            if counts is None:
                if len(per_type) >= MAX_TYPES_PER_PARAMETER:
                    name = OTHER_TYPE
                    sized = False  # the OTHER series mixes types: no sizes
                counts = per_type.setdefault(name, [0] * (INPUT_BUCKETS + len(SIZE_BOUNDS) + 1))
            counts[INPUT_CALLS] += 1
            size = -1
            if sized:
                try:
                    size = len(value)
                except Exception:  # OverflowError of a huge range, a released memoryview
                    pass
                if size >= 0:
                    counts[INPUT_SIZED] += 1
                    counts[INPUT_SIZE_SUM] += size
                    counts[INPUT_BUCKETS + bisect_left(SIZE_BOUNDS, size)] += 1
            shape.append((name, size))
        if call.__class__ is Call:
            call.shape = tuple(shape)
            call.span.set_attributes(input_attributes(probe, call.shape))  # as a late span gets them
        else:
            kept = probe.call_shapes
            if len(kept) >= _MAX_THREADS_KEPT:
                kept.clear()  # threads come and go; their entries are only ever the latest call
            kept[get_ident()] = (call, tuple(shape))
    except Exception:
        pass


def failed_shape(probe: FunctionProbe, call: Any) -> Any:
    """The shapes a failing call started with, or None when they are not known (see above)."""
    if call.__class__ is Call:
        return call.shape
    kept = probe.call_shapes.get(get_ident())
    return kept[1] if kept is not None and kept[0] == call and kept[0].__class__ is call.__class__ else None


def count_failed_inputs(probe: FunctionProbe, kind: str, shape: Any) -> None:
    """One failed call, counted per parameter by its exception type, argument type and length bucket."""
    counts = probe.failed_inputs
    for index, parameter in enumerate(probe.parameters):
        if shape is not None and index < len(shape):
            name, size = shape[index]
            key = (kind, parameter, name, length_bucket(size))
        else:
            key = (kind, parameter, semconv.UNKNOWN_INPUT_TYPE, "")
        counts[key] = counts.get(key, 0) + 1


def input_attributes(probe: FunctionProbe, shape: Any) -> Dict[str, Any]:
    """A late span's input attributes: what a span made at the call's start gets."""
    attributes: Dict[str, Any] = {}
    for parameter, (name, size) in zip(probe.parameters, shape or ()):
        attributes[semconv.input_attribute(parameter, "type")] = name
        if size >= 0:
            attributes[semconv.input_attribute(parameter, "length")] = size
    return attributes
