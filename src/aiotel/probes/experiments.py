"""Experiments (``AIOTEL_SHADOW``): a call of either function of a pair, when drawn, also
runs the other one with the same arguments, and the two outcomes are compared.

Scientist's rule: the program gets the result or exception of the function it called
(the live arm), exactly as without aiotel; the other (the shadow arm) runs before or
after it, in random order, and whatever it raises is caught and counted. Recorded
under names of their own (``aiotel.experiment.*``): the shadow arm's call is never
counted as a call of its function.

How the shadow arm is told apart: it is called with a ``ShadowParent`` as the current
span, so its own ``enter`` (Python or C) takes the in-trace path, where
``spans._begin_in_trace`` hands it to ``arm_begins``. It gets a ``ShadowCall``: its
``leave``/``fail`` come back here, with its own time measured inside its frame, as
the live arm's is. Marked calls below it (its recursion, helpers) are part of it: counted
nowhere, no span of their own. One trial at a time per thread: a call made during a
trial never starts another.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from bisect import bisect_left
from typing import Any, Dict, List, Optional, Tuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanKind

from .. import semconv
from .comparators import comparator
from .state import BOUNDS_NS, IN_TRACE, Call, FunctionProbe, _settings

CANDIDATE, CONTROL = "candidate", "control"
LIVE, SHADOW = "live", "shadow"
VALUE, EXCEPTION, TYPE, INCONCLUSIVE = "value", "exception", "type", "inconclusive"
MISMATCH_KINDS = (VALUE, EXCEPTION, TYPE, INCONCLUSIVE)

_now = time.perf_counter_ns  # the clock of enter and leave
_attach = otel_context.attach
_detach = otel_context.detach
_in_context = trace.set_span_in_context

# aiotel's own generator: the program's `random.seed()` neither steers nor is disturbed by
# which calls are drawn and which arm goes first
_random = random.Random(os.urandom(16))
_active = threading.local()  # .trial: the trial running on this thread


class _Rates:
    default = 0.0
    by_name: Dict[str, float] = {}


_rates = _Rates()
_experiments: Dict[str, "Experiment"] = {}  # pair key ("<candidate> replaces <control>") -> experiment
# a cross-module pair's arm whose other module has not run yet: key -> arm -> (probe, globals, local name)
_waiting: Dict[str, Dict[str, Tuple[FunctionProbe, Dict[str, Any], str]]] = {}
_pairing_lock = threading.Lock()  # two modules of one pair may run in two threads
# The C enter reads no context when spans are off: told how many shadow arms run, so
# that it does while one does (set by aiotel.probes when the accelerator loads)
shadowing_changed: Any = None
_shadowing = [0]
_shadowing_lock = threading.Lock()


def _count_shadowing(step: int) -> None:
    with _shadowing_lock:
        _shadowing[0] += step
        if shadowing_changed is not None:
            shadowing_changed(_shadowing[0])


def configure(default: float, by_name: Dict[str, float]) -> None:
    """``AIOTEL_SHADOW``: the fraction of calls shadowed, and per function name (its
    qualname, its name in the module, or its last part), for either arm of a pair."""
    _rates.default = default
    _rates.by_name = dict(by_name)
    for experiment in _experiments.values():
        experiment.apply_rates()


def _rate_of(names: List[Tuple[str, str]]) -> float:
    """The rate set for the first of ``names`` (qualified, local) that AIOTEL_SHADOW names:
    by its qualified name, its name in the module or its last part."""
    for qualified, local in names:
        for key in (qualified, local, local.rpartition(".")[2]):
            rate = _rates.by_name.get(key)
            if rate is not None:
                return rate
    return _rates.default


class Experiment:
    """One pair: the candidate (the marker that says ``replaces:``), the control, how their
    outcomes compare, and the counts."""

    def __init__(self, arms: Dict[str, Tuple[FunctionProbe, Dict[str, Any], str]], comparator_name: str) -> None:
        self.probes: Dict[str, FunctionProbe] = {}
        self.namespaces: Dict[str, Dict[str, Any]] = {}  # each arm's module globals: where it is looked up at run time
        self.local_names: Dict[str, str] = {}
        self.comparator_name = comparator_name
        self.compare = comparator(comparator_name)
        self.reset()
        for arm, (probe, namespace, local) in arms.items():
            self.set_arm(arm, probe, namespace, local)

    def set_arm(self, arm: str, probe: FunctionProbe, namespace: Dict[str, Any], local: str) -> None:
        """Each arm when its module runs (again, on a reload: the counts go on)."""
        self.probes[arm] = probe
        self.namespaces[arm] = namespace
        self.local_names[arm] = local
        probe.experiment = self
        if len(self.probes) == 2:
            self.attributes = {
                semconv.EXPERIMENT_CANDIDATE: self.probes[CANDIDATE].name,
                semconv.EXPERIMENT_CONTROL: self.probes[CONTROL].name,
                semconv.EXPERIMENT_COMPARATOR: self.comparator_name,
            }
            self.apply_rates()

    def reset(self) -> None:
        self.calls: Dict[str, int] = {}  # live arm -> compared calls
        self.mismatches: Dict[Tuple[str, str], int] = {}  # (live arm, kind) -> count
        self.durations: Dict[Tuple[str, str], List[int]] = {}  # (arm, role) -> bucket counts..., sum ns
        self.shadow_errors: Dict[Tuple[str, str], int] = {}  # (shadow arm, error.type) -> count
        self.missing = 0  # drawn calls whose other arm could not be found

    def apply_rates(self) -> None:
        names = {arm: (self.probes[arm].name, self.local_names[arm]) for arm in (CANDIDATE, CONTROL)}
        self.probes[CANDIDATE].shadow_rate = _rate_of([names[CANDIDATE], names[CONTROL]])
        self.probes[CONTROL].shadow_rate = _rate_of([names[CONTROL], names[CANDIDATE]])

    def arm_of(self, probe: FunctionProbe) -> str:
        return CANDIDATE if probe is self.probes[CANDIDATE] else CONTROL

    def function(self, arm: str) -> Any:
        """The arm as the program would call it now (a rebinding is followed), or None."""
        owner: Any = None
        found: Any = self.namespaces[arm]
        for part in self.local_names[arm].split("."):
            owner = found
            found = owner.get(part) if isinstance(owner, dict) else owner.__dict__.get(part)
            if found is None:
                return None
        return found if callable(found) else None

    def count_duration(self, arm: str, role: str, elapsed: int) -> None:
        counts = self.durations.get((arm, role))
        if counts is None:
            counts = self.durations.setdefault((arm, role), [0] * (len(BOUNDS_NS) + 2))
        counts[bisect_left(BOUNDS_NS, elapsed)] += 1
        counts[-1] += elapsed


def pair(candidate: FunctionProbe, control: FunctionProbe, candidate_name: str, control_name: str,
         comparator_name: str) -> None:
    """Called once per pair when its module runs (both functions are rewritten there)."""
    try:
        namespace = sys._getframe(1).f_globals  # the module being run: its functions are looked up there
        with _pairing_lock:
            _join(f"{candidate.name} replaces {control.name}", comparator_name,
                  {CANDIDATE: (candidate, namespace, candidate_name), CONTROL: (control, namespace, control_name)})
    except Exception:
        pass


def pair_half(probe: FunctionProbe, arm: str, key: str, local_name: str, comparator_name: str) -> None:
    """Called when the module of one arm of a cross-module pair runs; the pair is made
    when the other arm's module has run too. aiotel never imports one for the other."""
    try:
        namespace = sys._getframe(1).f_globals
        with _pairing_lock:
            halves = _waiting.setdefault(key, {})
            halves[arm] = (probe, namespace, local_name)
            if len(halves) == 2 or key in _experiments:
                _join(key, comparator_name, {arm: halves[arm]} if key in _experiments else halves)
    except Exception:
        pass


def _join(key: str, comparator_name: str, arms: Dict[str, Tuple[FunctionProbe, Dict[str, Any], str]]) -> None:
    experiment = _experiments.get(key)
    if experiment is None:
        _experiments[key] = Experiment(arms, comparator_name)
    else:  # a module run again (reload): same pair, new functions
        for arm, (probe, namespace, local) in arms.items():
            experiment.set_arm(arm, probe, namespace, local)


def all_experiments() -> List[Experiment]:
    return [e for e in _experiments.values() if len(e.probes) == 2]


def reset_counts() -> None:
    for experiment in _experiments.values():
        experiment.reset()


class Trial:
    """One drawn call: both arms' outcomes and times."""

    __slots__ = ("experiment", "live", "shadow", "live_call", "args", "kwargs", "live_start", "live_elapsed",
                 "shadow_done", "shadow_started", "shadow_elapsed", "shadow_result", "shadow_exc", "shadow_missing")

    def __init__(self, experiment: Experiment, live: str, live_call: Any, args: tuple, kwargs: dict) -> None:
        self.experiment = experiment
        self.live = live
        self.shadow = CONTROL if live == CANDIDATE else CANDIDATE
        self.live_call = live_call
        self.args = args
        self.kwargs = kwargs
        self.live_start = 0
        self.live_elapsed = 0
        self.shadow_done = self.shadow_started = self.shadow_missing = False
        self.shadow_elapsed = 0
        self.shadow_result: Any = None
        self.shadow_exc: Optional[BaseException] = None


def trial_drawn(probe: FunctionProbe) -> bool:
    """Whether this call is shadowed: drawn from the function's fraction, and no trial is
    already running on this thread (a shadow arm never shadows itself)."""
    try:
        return getattr(_active, "trial", None) is None and _random.random() < probe.shadow_rate
    except Exception:
        return False


def trial_begins(probe: FunctionProbe, call: Any, args: tuple, kwargs: dict) -> Optional[Trial]:
    """At the start of a drawn call's body: the shadow arm first, or not (random), then the
    live arm's clock starts."""
    try:
        experiment = probe.experiment
        if experiment is None:  # pair() failed when the module ran
            return None
        trial = Trial(experiment, experiment.arm_of(probe), call, args, kwargs)
        _active.trial = trial
        try:
            if _random.random() < 0.5:
                _run_shadow(trial)
        except BaseException:
            _active.trial = None
            raise  # KeyboardInterrupt: the program's, not ours to keep
        trial.live_start = _now()
        return trial
    except Exception:
        _active.trial = None
        return None


def trial_returned(trial: Trial, result: Any) -> None:
    """The live arm returned ``result`` (its body ran to a return or its end)."""
    return _finish(trial, result, None)


def trial_raised(trial: Trial, exc: BaseException) -> None:
    """An exception leaves the live arm: the program gets it; it is compared first."""
    return _finish(trial, None, exc)


def _finish(trial: Trial, result: Any, exc: Optional[BaseException]) -> None:
    trial.live_elapsed = _now() - trial.live_start
    try:
        if not trial.shadow_done:
            _run_shadow(trial)
    finally:
        _active.trial = None
    try:
        _record(trial, result, exc)
    except Exception:
        pass
    return None


def _run_shadow(trial: Trial) -> None:
    trial.shadow_done = True
    function = trial.experiment.function(trial.shadow)
    if function is None:
        trial.shadow_missing = True
        return
    outer = trace.get_current_span()
    token = _attach(_in_context(ShadowParent(outer.get_span_context(), trial)))
    _count_shadowing(1)
    start = _now()
    try:
        trial.shadow_result = function(*trial.args, **trial.kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: the shadow arm never ends the program
        trial.shadow_exc = exc
    finally:
        end = _now()
        _count_shadowing(-1)
        try:
            _detach(token)
        except Exception:
            pass
    if not trial.shadow_started:  # its probes never ran (a decorator answered for it): timed from outside
        trial.shadow_elapsed = end - start


def _type_name(value: Any) -> str:
    cls = value.__class__
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def _mismatch(experiment: Experiment, live: Tuple[Any, Optional[BaseException]],
              shadow: Tuple[Any, Optional[BaseException]]) -> Optional[str]:
    """The kind of disagreement between two outcomes (result, exception), or None."""
    (live_value, live_exc), (shadow_value, shadow_exc) = live, shadow
    if live_exc is not None or shadow_exc is not None:
        if live_exc is None or shadow_exc is None or live_exc.__class__ is not shadow_exc.__class__:
            return EXCEPTION
        return None  # both raised the same type: messages may hold values, they are not compared
    if live_value.__class__ is not shadow_value.__class__:
        return TYPE
    verdict = experiment.compare(live_value, shadow_value, 0)
    if verdict is None:
        return INCONCLUSIVE
    return None if verdict else VALUE


def _record(trial: Trial, result: Any, exc: Optional[BaseException]) -> None:
    experiment = trial.experiment
    if trial.shadow_missing:
        experiment.missing += 1
        if experiment.missing == 1:
            from .. import log  # here: a rare path

            log.warn(f"experiment {experiment.attributes[semconv.EXPERIMENT_CANDIDATE]} replaces "
                     f"{experiment.attributes[semconv.EXPERIMENT_CONTROL]}: "
                     f"{experiment.local_names[trial.shadow]} is no longer a function of its module; "
                     "calls are not compared while it is not")
        return
    experiment.count_duration(trial.live, LIVE, trial.live_elapsed)
    experiment.count_duration(trial.shadow, SHADOW, trial.shadow_elapsed)
    if trial.shadow_exc is not None:
        key = (trial.shadow, _type_name(trial.shadow_exc))
        experiment.shadow_errors[key] = experiment.shadow_errors.get(key, 0) + 1
    kind = _mismatch(experiment, (result, exc), (trial.shadow_result, trial.shadow_exc))
    experiment.calls[trial.live] = experiment.calls.get(trial.live, 0) + 1
    if kind is None:
        return
    key = (trial.live, kind)
    experiment.mismatches[key] = experiment.mismatches.get(key, 0) + 1
    call = trial.live_call
    if call.__class__ is Call and call.trace is not None:
        outcomes = {trial.live: exc if exc is not None else result,
                    trial.shadow: trial.shadow_exc if trial.shadow_exc is not None else trial.shadow_result}
        call.span.add_event(semconv.EVENT_MISMATCH, {
            semconv.MISMATCH_KIND: kind,
            semconv.MISMATCH_CANDIDATE_TYPE: _type_name(outcomes[CANDIDATE]),
            semconv.MISMATCH_CONTROL_TYPE: _type_name(outcomes[CONTROL]),
        })


class ShadowParent(NonRecordingSpan):
    """The current span while a shadow arm runs: the context of the span another
    instrumentation's spans should have as parent (the live call's, then the arm's own),
    and the trial it belongs to."""

    def __init__(self, context: Any, trial: Trial) -> None:
        super().__init__(context)
        self.trial = trial


class ShadowCall:
    """The shadow arm's own call in flight (what its ``enter`` returned)."""

    __slots__ = ("start", "span", "token", "trial")

    def __init__(self, start: int, span: Any, token: Any, trial: Trial) -> None:
        self.start = start
        self.span = span
        self.token = token
        self.trial = trial


# A marked call below a shadow arm (its recursion, its helpers): part of the arm, counted
# nowhere (what ``leave``/``fail`` get back for it; arm_ends ignores it)
BELOW_ARM = ShadowCall(0, None, None, None)  # type: ignore[arg-type]


def arm_begins(probe: FunctionProbe, start: int, parent: ShadowParent) -> Any:
    """``enter`` under a ShadowParent: the shadow arm itself gets a ShadowCall (with a span,
    tagged, when the live call has a recording one); a marked call below it, BELOW_ARM."""
    trial = parent.trial
    if probe is not trial.experiment.probes[trial.shadow] or trial.shadow_started:
        return BELOW_ARM
    trial.shadow_started = True
    span = token = None
    live = trial.live_call
    if live.__class__ is Call and live.trace is not None and _settings.tracer is not None:
        attributes = dict(probe.by_reason[IN_TRACE], **{semconv.SHADOW: True, semconv.EXPERIMENT_ARM: trial.shadow})
        span = _settings.tracer.start_span(probe.name, context=_in_context(live.span), kind=SpanKind.INTERNAL,
                                           attributes=attributes)
        # below the arm, its span is the parent, still marked as the shadow's
        token = _attach(_in_context(ShadowParent(span.get_span_context(), trial)))
    return ShadowCall(_now(), span, token, trial)


def arm_ends(call: ShadowCall, end: int, exc: Optional[BaseException], mark_failed: Any) -> None:
    """The shadow arm's ``leave`` or ``fail``: its time, and its span ended."""
    trial = call.trial
    if trial is None:  # BELOW_ARM
        return
    trial.shadow_elapsed = end - call.start
    if call.token is not None:
        token, call.token = call.token, None
        _detach(token)
    if call.span is not None:
        if exc is not None:
            mark_failed(call.span, exc, _type_name(exc))
        call.span.end()


def _reseed() -> None:
    global _random
    _random = random.Random(os.urandom(16))  # a forked child draws its own calls
    _active.trial = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)
