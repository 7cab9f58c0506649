/* The unsampled call path of aiotel.probes (enter and leave) in C.
 *
 * Optional: aiotel.probes uses the pure-Python functions when this module is missing
 * (no compiler at install, another platform) or when AIOTEL_ACCELERATOR=false. Both
 * must behave alike; tests run the probes both ways.
 *
 * What it does, as the Python versions do:
 *   enter(probe)       -> reads the OTel context's current span (one context variable
 *                         read and one dict lookup). Outside any trace: the call's token
 *                         (its start time less the base bind() returns, a float: floats
 *                         come from a free list), or whatever probes._begin_span returns
 *                         when the probe's rate-cap gate is open (a trace may start). Under
 *                         the span last seen in a trace decided not recorded: the token.
 *                         Under any other span: what probes._begin_in_trace returns.
 *                         Spans off (the gate at "never"): the start time, nothing read,
 *                         unless an experiment's shadow arm runs somewhere in the process
 *                         (set_shadowing): then the context is read, as in Python, so the
 *                         arm's own call is told apart (aiotel.probes.experiments).
 *   leave(probe, call) -> counts an unsampled call (call is its token, or its int start
 *                         time from the Python functions) in probe.fast_counts, a
 *                         bytearray of C long longs (bucket counts, then the sum in ns),
 *                         unless it took longer than probe.slow; that call (with its start
 *                         as an int), and any other (a Call with a span), goes to
 *                         probes._leave_sampled.
 *
 * The probe's slots are read at the offsets of FunctionProbe's member descriptors, found
 * once by bind(); an object of another type, or slots holding what they should not,
 * take the Python path. The clock is CLOCK_MONOTONIC, the clock time.perf_counter_ns()
 * reads on Linux (start times cross between the C and Python functions); bind() checks
 * that they agree. Under the GIL each function runs without interruption, so counts are
 * never lost between threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <time.h>

#ifndef __linux__
#error "the accelerator reads CLOCK_MONOTONIC, which is perf_counter_ns()'s clock on Linux only"
#endif

#define MAX_BOUNDS 64

static PyTypeObject *probe_type = NULL;
static Py_ssize_t gate_offset, counts_offset, slow_offset;
static long long bounds[MAX_BOUNDS];
static Py_ssize_t bound_count = 0;
static PyObject *begin_span = NULL;   /* probes._begin_span(probe, start) */
static PyObject *leave_sampled = NULL; /* probes._leave_sampled(probe, call, end) */
static PyObject *begin_in_trace = NULL; /* probes._begin_in_trace(probe, start, span) */
static PyObject *context_var = NULL;   /* the ContextVar holding the OTel context */
static PyObject *span_key = NULL;      /* the context's key of the current span */
static PyObject *empty_context = NULL; /* the variable's default: no span, no lookup */
static PyObject *invalid_span = NULL;  /* trace.INVALID_SPAN: no trace */
static PyObject *unsampled = NULL;     /* a one-item list: the span last seen in an unrecorded trace */
static long long never = 0;            /* the gate value that means "spans off" */
static long long token_base = 0;       /* an unsampled call's token is its start minus this, as a float */
static int shadowing = 0;              /* shadow arms running now: spans off still reads the context */

static inline long long
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline PyObject **
slot(PyObject *probe, Py_ssize_t offset)
{
    return (PyObject **)((char *)probe + offset);
}

static Py_ssize_t
member_offset(PyTypeObject *type, const char *name)
{
    PyObject *descr = PyDict_GetItemString(type->tp_dict, name); /* borrowed */
    if (descr == NULL || Py_TYPE(descr) != &PyMemberDescr_Type) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX && member->type != T_OBJECT) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot", type->tp_name, name);
        return -1;
    }
    return member->offset;
}

/* A slot holding an exact int, as a long long; 0 and *ok = 0 when it does not. */
static long long
int_slot(PyObject *probe, Py_ssize_t offset, int *ok)
{
    PyObject *value = *slot(probe, offset);
    *ok = 0;
    if (value == NULL || !PyLong_CheckExact(value)) {
        return 0;
    }
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (overflow) {
        number = overflow > 0 ? LLONG_MAX : LLONG_MIN;
    }
    *ok = 1;
    return number;
}

static PyObject *
bind(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 11 || !PyType_Check(args[0]) || !PyTuple_Check(args[1]) || !PyList_CheckExact(args[8])
        || PyList_GET_SIZE(args[8]) != 1 || !PyLong_CheckExact(args[9])) {
        PyErr_SetString(PyExc_TypeError, "bind(FunctionProbe, bounds_ns, begin_span, leave_sampled, begin_in_trace, "
                                         "context_var, span_key, invalid_span, unsampled, never, empty_context)");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    Py_ssize_t gate = member_offset(type, "gate");
    Py_ssize_t counts = member_offset(type, "fast_counts");
    Py_ssize_t slow = member_offset(type, "slow");
    if (gate < 0 || counts < 0 || slow < 0) {
        return NULL;
    }
    if (!PyContextVar_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError, "context_var must be a ContextVar");
        return NULL;
    }
    long long never_value = PyLong_AsLongLong(args[9]);
    if (never_value == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(args[1]);
    if (count > MAX_BOUNDS) {
        PyErr_SetString(PyExc_ValueError, "too many bucket bounds");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        long long bound = PyLong_AsLongLong(PyTuple_GET_ITEM(args[1], i));
        if (bound == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (i > 0 && bound <= bounds[i - 1]) {
            PyErr_SetString(PyExc_ValueError, "bucket bounds must increase");
            return NULL;
        }
        bounds[i] = bound;
    }
    bound_count = count;
    gate_offset = gate;
    counts_offset = counts;
    slow_offset = slow;
    never = never_value;
    if (token_base == 0) {
        token_base = now_ns(); /* once: a token in flight must keep its meaning */
    }
    /* the objects kept, in the order of bind's arguments (never is a number, copied above) */
    PyObject **kept[] = {(PyObject **)&probe_type, NULL, &begin_span, &leave_sampled, &begin_in_trace, &context_var,
                         &span_key, &invalid_span, &unsampled, NULL, &empty_context};
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (kept[i] != NULL) {
            Py_INCREF(args[i]);
            Py_XSETREF(*kept[i], args[i]);
        }
    }
    return PyLong_FromLongLong(token_base);
}

static PyObject *
now(PyObject *module, PyObject *unused)
{
    return PyLong_FromLongLong(now_ns());
}

static PyObject *
call_with_start(PyObject *function, PyObject *probe, long long start, PyObject *span)
{
    PyObject *start_object = PyLong_FromLongLong(start);
    if (start_object == NULL) {
        return NULL;
    }
    PyObject *call_args[3] = {probe, start_object, span};
    PyObject *result = PyObject_Vectorcall(function, call_args, span == NULL ? 2 : 3, NULL);
    Py_DECREF(start_object);
    return result;
}

/* An unsampled call's token: its start time less token_base, as a float. Floats come from
 * a free list, ints do not: this is most of what an unsampled call allocates. Exact while
 * the difference is below 2**53 ns (104 days after the accelerator was bound). */
static inline PyObject *
token(long long start)
{
    return PyFloat_FromDouble((double)(start - token_base));
}

static PyObject *
enter(PyObject *module, PyObject *probe)
{
    long long start = now_ns();
    int known = probe_type != NULL && Py_TYPE(probe) == probe_type;
    int ok = 0;
    long long gate = known ? int_slot(probe, gate_offset, &ok) : 0;
    if (ok && gate >= never && !shadowing) {
        return token(start); /* spans off */
    }
    if (begin_span == NULL) {
        return token(start);
    }
    /* A context that cannot be read counts as no trace: enter never raises into the
     * user's function. */
    PyObject *context = NULL;
    if (PyContextVar_Get(context_var, NULL, &context) < 0) {
        PyErr_Clear();
        context = NULL;
    }
    PyObject *span = NULL;
    if (context != NULL && context != empty_context && PyDict_Check(context)) {
        span = PyDict_GetItemWithError(context, span_key); /* borrowed */
        if (span == NULL && PyErr_Occurred()) {
            PyErr_Clear();
        }
    }
    if (span == NULL || span == invalid_span) { /* outside any trace: the rate cap decides */
        Py_XDECREF(context);
        if (ok && start < gate) {
            return token(start);
        }
        return call_with_start(begin_span, probe, start, NULL);
    }
    if (span == PyList_GET_ITEM(unsampled, 0)) { /* inside a trace decided not recorded */
        Py_DECREF(context);
        return token(start);
    }
    Py_INCREF(span); /* the context may go while Python runs */
    Py_DECREF(context);
    PyObject *result = call_with_start(begin_in_trace, probe, start, span);
    Py_DECREF(span);
    return result;
}

/* probe.ok_buckets[index] += 1 and probe.ok_sum_ns += elapsed; 0, or -1 when the
 * slots hold something unexpected (nothing has changed then). */
static int
count_call(PyObject *probe, long long elapsed)
{
    PyObject *counts = *slot(probe, counts_offset);
    if (counts == NULL || !PyByteArray_CheckExact(counts)
        || PyByteArray_GET_SIZE(counts) != (Py_ssize_t)sizeof(long long) * (bound_count + 2)) {
        return -1;
    }
    Py_ssize_t index = 0; /* bisect_left: the first bound >= elapsed */
    Py_ssize_t high = bound_count;
    while (index < high) {
        Py_ssize_t middle = (index + high) / 2;
        if (bounds[middle] < elapsed) {
            index = middle + 1;
        }
        else {
            high = middle;
        }
    }
    long long *cells = (long long *)PyByteArray_AS_STRING(counts);
    cells[index] += 1;
    cells[bound_count + 1] += elapsed;
    return 0;
}

static PyObject *
leave(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long long end = now_ns();
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "leave(probe, call)");
        return NULL;
    }
    PyObject *probe = args[0], *call = args[1];
    int is_token = PyFloat_CheckExact(call);
    if ((is_token || PyLong_CheckExact(call)) && probe_type != NULL && Py_TYPE(probe) == probe_type) {
        /* an unsampled call: its token, or the int start time the Python functions give */
        long long start = is_token ? token_base + (long long)PyFloat_AS_DOUBLE(call) : PyLong_AsLongLong(call);
        int ok = 0;
        long long slow = int_slot(probe, slow_offset, &ok);
        if (!(start == -1 && PyErr_Occurred()) && ok && end - start <= slow && count_call(probe, end - start) == 0) {
            Py_RETURN_NONE;
        }
        PyErr_Clear();
        if (leave_sampled == NULL) {
            Py_RETURN_NONE;
        }
        /* slow (or slots the C code leaves alone): Python gets the start as an int */
        PyObject *start_object = PyLong_FromLongLong(start);
        PyObject *end_object = PyLong_FromLongLong(end);
        PyObject *result = NULL;
        if (start_object != NULL && end_object != NULL) {
            PyObject *call_args[3] = {probe, start_object, end_object};
            result = PyObject_Vectorcall(leave_sampled, call_args, 3, NULL);
        }
        Py_XDECREF(start_object);
        Py_XDECREF(end_object);
        return result;
    }
    if (leave_sampled == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *end_object = PyLong_FromLongLong(end);
    if (end_object == NULL) {
        return NULL;
    }
    PyObject *call_args[3] = {probe, call, end_object};
    PyObject *result = PyObject_Vectorcall(leave_sampled, call_args, 3, NULL);
    Py_DECREF(end_object);
    return result;
}

static PyObject *
set_shadowing(PyObject *module, PyObject *count)
{
    long value = PyLong_AsLong(count);
    if (value == -1 && PyErr_Occurred()) {
        return NULL;
    }
    shadowing = value > 0;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"set_shadowing", set_shadowing, METH_O,
     "set_shadowing(count): how many experiment shadow arms run now (0: spans off reads nothing)."},
    {"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL,
     "bind(FunctionProbe, bounds_ns, begin_span, leave_sampled, begin_in_trace, context_var, span_key, "
     "invalid_span, unsampled, never, empty_context): where the probe's slots are, and what enter reads and calls."},
    {"now", now, METH_NOARGS, "The clock enter and leave read, in ns (perf_counter_ns on Linux)."},
    {"enter", enter, METH_O, "enter(probe): a call starts (see aiotel.probes.enter)."},
    {"leave", (PyCFunction)(void (*)(void))leave, METH_FASTCALL,
     "leave(probe, call): a call returned (see aiotel.probes.leave)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "aiotel._speedups", "aiotel.probes' unsampled call path in C.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module_definition);
}
