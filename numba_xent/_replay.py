"""Replays: a plan's kernel call, recorded once, made again on arrays like its own.

A plan that writes no caller's buffer and whose divisors are all numbers (no
count pass, no sum of weights before the kernel) makes, for every call whose
arrays have the same dtypes, shapes and strides (and whose options and 0-d
arrays have the same values, bit for bit), the same allocations and the same
kernel call with the same scalars, on views that differ only in the arrays
they view.  :func:`run` runs the first such call through the runner with a
recording backend, which notes what the run allocates and the backend's kernel
call (``KernelCall``), and finds where each array of that call comes from: a
view of one of the plan's arrays, a view of an allocation, or a constant
(placeholders, broadcast numbers).  Each view's recipe is checked to rebuild
that very view from its source.  The next calls make the allocations, the views
of their own arrays and the call: no planning, a few microseconds of Python.
A run that does anything else (a count pass, a copy, no kernel or two) is not
replayed: it runs through the runner every time.

Only backends that make their kernel calls as values are replayed (``replays``,
``kernel_call``: the CPU's).  A recording keeps no array of the call it was
recorded from.
"""

import numpy as np
from numpy.lib.array_utils import byte_bounds

from ._plan import CONSTANT, COUNTED

_PROGRAMS = {}
_MOST = 512  # recordings kept; beyond that the cache starts again
_NOT = "not replayed"


def run(be, p, runner):
    """``runner(be, p)``'s results, through a replay where ``p`` has one."""
    key = _key(p)
    try:
        program = _PROGRAMS.get(key)
    except TypeError:  # an unhashable option
        key = None
    if key is None:
        return runner(be, p)
    if program is None:
        recorder = _Recorder(be)
        results = runner(recorder, p)
        if len(_PROGRAMS) >= _MOST:
            _PROGRAMS.clear()
        _PROGRAMS[key] = _record(recorder, p, results)
        return results
    if program is _NOT or not program.current(be):
        return runner(be, p)
    return program.replay(p)


def replayable(p):
    """Whether ``p``'s run depends on its arrays' values only in its kernel call."""
    if p.out is not None or p.grad is not None:
        return False
    first = (p.loss_scale,) if p.loss is not None else ()  # needed before the kernel
    if p.g is not None:
        first += (p.grad_scale, p.g_divisor)
    if any(d is not None and d.by != CONSTANT for d in first):
        return False
    d = p.loss_divisor  # applied to the kernel's sums: a count made in the same pass will do
    return p.loss is None or d is None or d.by == CONSTANT or d.by in COUNTED


def _key(p):
    if not replayable(p):
        return None
    try:
        # The smoothing and the ignored value only compare: their zeros' signs don't matter.
        return (p.variant, p.smoothing, type(p.ignore_value), p.ignore_value, p.loss,
                p.loss_scale, p.loss_divisor, p.g_elem, p.grad_scale, p.g_divisor, p.cast,
                _meta(p.x), _meta(p.z), _meta(p.weights), _meta(p.pos_weight), _meta(p.g))
    except (TypeError, ValueError, OverflowError):  # g not a number
        return None


def _meta(a):
    """What the run depends on of an array: its layout, and the values the runner reads
    on the host (of 0-d arrays and numbers), bit for bit."""
    if a is None:
        return None
    if type(a) is np.ndarray:
        return a.dtype, a.shape, a.strides, a.tobytes() if a.ndim == 0 else None
    return _number(a)


def _number(v):
    return None if v is None else (type(v), float(v).hex())


def _roles(p):
    return p.x, p.z, p.weights, p.pos_weight, p.g


class _Program:
    """A recorded run: its allocations, a function per kernel argument ``(roles,
    fresh) -> argument`` (roles: the plan's arrays, fresh: the allocations), the
    finish's out likewise, and what the run returns."""

    def __init__(self, call, allocations, args, finish_out, results):
        self.call = call  # the recorded KernelCall, its arrays left out
        self.finish = call.finish  # its Finish, whose out (the last field) each replay makes
        self.allocations = allocations  # [(shape, dtype, zero)]
        # The constant arguments in place, and the others' (position, function).
        self.template = [make(None, None) if constant else None for make, constant in args]
        self.made = [(i, make) for i, (make, constant) in enumerate(args) if not constant]
        self.finish_out = finish_out
        self.results = results

    def current(self, be):
        """Whether a call now would be split as the recorded one (the thread count)."""
        return self.call.tasks is None or be.kernel_tasks() == self.call.tasks

    def replay(self, p):
        roles = _roles(p)
        fresh = [np.zeros(s, d) if zero else np.empty(s, d) for s, d, zero in self.allocations]
        args = self.template.copy()
        for i, make in self.made:
            args[i] = make(roles, fresh)
        finish = self.finish
        if finish is not None:
            finish = finish._make((*finish[:-1], self.finish_out(roles, fresh)))
        self.call.run(tuple(args), finish)
        return self.results(roles, fresh)


class _Recorder:
    """The backend of a recording run: the replayed backend, noting its allocations
    and kernel calls, and whether the run asked for anything a replay would not do."""

    def __init__(self, be):
        self._be = be
        self.allocations = []  # [(array, zero)]
        self.calls = []
        self.other = False

    def __getattr__(self, name):
        if name not in _PURE:
            self.other = True
        return getattr(self._be, name)

    def empty(self, shape, dtype, like=None):
        a = self._be.empty(shape, dtype, like)
        self.allocations.append((a, False))
        return a

    def zeros(self, shape, dtype=np.float64):
        a = self._be.zeros(shape, dtype)
        self.allocations.append((a, True))
        return a

    def reshape(self, a, shape):
        v = self._be.reshape(a, shape)
        if v is not a and not np.shares_memory(v, a):  # a copy: the data, not a view
            self.other = True
        return v

    def launch(self, *args):
        call = self._be.kernel_call(*args)
        self.calls.append(call)
        call()


# What a recorded run may also ask of the backend: views, and constants made of values
# that the key holds.
_PURE = {"broadcast_to", "placeholder", "scale", "reshape_view"}


def _record(recorder, p, results):
    """The :class:`_Program` of a recording run, or ``_NOT``."""
    if recorder.other or len(recorder.calls) != 1:
        return _NOT
    (call,) = recorder.calls
    roles = _roles(p)
    made = recorder.allocations
    if call.finish is not None:  # the kernel call's own scratch: the row sums it finishes
        made = made + [(call.args[recorder._be.ROW_SUMS], False)]
    fresh = [a for a, _ in made]
    try:
        args = [_recipe(a, roles, fresh) for a in call.args]
        finish_out = None if call.finish is None else _recipe(call.finish.out, roles, fresh)[0]
        returned = [_recipe(r, roles, fresh)[0] for r in
                    (results if isinstance(results, tuple) else (results,))]
    except _Unknown:
        return _NOT
    if isinstance(results, tuple):
        def results_of(roles, fresh):
            return tuple([make(roles, fresh) for make in returned])
    else:
        results_of = returned[0]
    finish = None if call.finish is None else call.finish._replace(out=None)
    return _Program(call._replace(args=None, finish=finish),
                    [(a.shape, a.dtype, zero) for a, zero in made], args, finish_out,
                    results_of)


class _Unknown(Exception):
    """An array whose origin the recording cannot tell."""


def _recipe(a, roles, fresh):
    """``(make, constant)``: a function ``(roles, fresh) -> a`` for the recording's own
    roles and allocations, checked to give ``a`` (its memory, shape, strides and
    writeability) there, and whether it gives ``a`` itself whatever they are."""
    if type(a) is not np.ndarray:
        return (lambda roles, fresh: a), True  # a number: the key holds what made it
    for where, arrays in ((0, roles), (1, fresh)):
        for i, source in enumerate(arrays):
            if type(source) is np.ndarray and _within(a, source):
                for make in _makers(a, source, where, i):
                    try:
                        if _same(make(roles, fresh), a):
                            return make, False
                    except (TypeError, ValueError):  # no such view of this source
                        pass
                raise _Unknown
    if a.flags.writeable and a.size > 1:
        raise _Unknown  # made in the run from something else
    return (lambda roles, fresh: a), True  # a placeholder, or a number's broadcast view


def _makers(a, source, where, i):
    """The recipes tried for ``a``, a view of ``source`` (role or allocation ``i``)."""
    shape, strides, dtype, writeable = a.shape, a.strides, a.dtype, a.flags.writeable
    offset = _address(a) - _address(source)

    def strided(roles, fresh):
        v = np.ndarray(shape, dtype, (fresh if where else roles)[i], offset, strides)
        if not writeable:
            v.flags.writeable = False
        return v

    if where:
        return (lambda roles, fresh: fresh[i], lambda roles, fresh: fresh[i].reshape(shape),
                strided)
    return (lambda roles, fresh: roles[i], lambda roles, fresh: roles[i].reshape(shape),
            strided)


def _address(a):
    return a.__array_interface__["data"][0]


def _within(a, source):
    low, high = byte_bounds(a)
    s_low, s_high = byte_bounds(source)
    return a.size > 0 and source.size > 0 and s_low <= low and high <= s_high


def _same(v, a):
    return (type(v) is np.ndarray and v.dtype == a.dtype and v.shape == a.shape
            and v.strides == a.strides and _address(v) == _address(a)
            and v.flags.writeable == a.flags.writeable)
