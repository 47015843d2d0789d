"""The CPU backend: NumPy arrays in, NumPy arrays out, row-parallel Numba kernels.

This module implements the backend interface, ``numba_xent._backend.Backend``.
"""

import functools
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import numba
import numpy as np

from .. import _core, _half
from . import kernels, threads


# The runner may replay this backend's kernel calls (numba_xent._replay): they are
# values (kernel_call), made again on other arrays.
replays = True


def asarray(a):
    """``a`` as a NumPy array (numbers become 0-d arrays)."""
    return np.asarray(a)


def zeros(shape, dtype=np.float64):
    return np.zeros(shape, dtype)


def buffer(name, buf):
    """A caller's output buffer, checked to be a writeable NumPy array."""
    if not isinstance(buf, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(buf).__name__}")
    if not buf.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return buf


def overlap(a, b):
    """Whether two arrays share memory (when that is too hard to decide: yes)."""
    try:
        return np.shares_memory(a, b, max_work=10**6)
    except np.exceptions.TooHardError:
        return True


def same_view(a, b):
    """Whether two arrays are the same elements in the same layout."""
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def empty(shape, dtype, like=None):
    """A new array; ``like`` (the caller's logits) picks the array kind on devices."""
    return np.empty(shape, dtype)


def wrap(a, like):
    """A result computed here, as the kind of array ``like`` is (NumPy already)."""
    return a


def reshape_view(a, shape):
    """``a`` reshaped without a copy, or None where its strides don't allow it."""
    if a.shape == shape:
        return a
    try:
        return a.reshape(shape, copy=False)
    except ValueError:
        return None


def reshape(a, shape):
    """``a`` reshaped, copied only where its strides don't allow a view."""
    return a if a.shape == shape else a.reshape(shape)


def broadcast_to(a, shape):
    """A read-only broadcast view of ``a`` (an array or a number)."""
    if type(a) is not float:
        if not (type(a) is np.ndarray and a.ndim == 0 and a.dtype.char in "fd"):
            return np.broadcast_to(a, shape)
        a = float(a)  # a float32 or float64 value, exactly, read as float64
    # What np.broadcast_to makes of a number, in a tenth of its time: shared by every
    # call with this number and shape (never written), except for zeros, whose sign
    # the cache's equality would not tell apart.
    return _number_view(a, shape) if a else _new_number_view(a, shape)


def _new_number_view(value, shape):
    view = np.ndarray(shape, np.float64, np.array([value]), 0, (0,) * len(shape))
    view.flags.writeable = False
    return view


_number_view = functools.lru_cache(maxsize=256)(_new_number_view)


def placeholder(ndim, dtype=np.float64):
    """A stand-in for an absent kernel argument: typed like one, never read."""
    return _PLACEHOLDERS[ndim, dtype]


_PLACEHOLDERS = {(d, t): np.zeros((1,) * d, t) for d in (1, 2) for t in (np.float64, np.int64)}


def scale(value):
    """A kernel's scale factor (a number or a 0-d array) as the float64 the kernels take."""
    return float(value)


def fill(a, value):
    a[...] = value


def copy_into(target, computed):
    if type(computed) is not float and computed.shape != target.shape:
        computed = np.reshape(computed, target.shape)
    target[...] = computed  # a float: rounded once to target's dtype, as its 0-d array is


# Below this many elements a call runs the serial build of its kernel: starting
# the threads would cost more than the work (~1 ns an element), and a serial
# build compiles in a third of the time of a parallel one (1.0 s vs 3.2 s here).
PARALLEL_MIN = 1 << 15


def launch(key, x, z, w, pw, g, ignore_value, smoothing, loss_scale, grad_scale,
           rows_out, elem_out, grad_out, counts, finish):
    """Run the kernel for ``key`` over the ``(rows, n)`` view ``x`` (see _core.evaluate):
    the :class:`KernelCall` of :func:`kernel_call`."""
    call = kernel_call(key, x, z, w, pw, g, ignore_value, smoothing, loss_scale, grad_scale,
                       rows_out, elem_out, grad_out, counts, finish)
    call.run(call.args, call.finish)


class KernelCall(NamedTuple):
    """One call of a compiled kernel, decided (``numba_xent._replay`` makes it again).

    ``args`` are the kernel's; ``finish`` (or None) is done after the kernel on the
    float64 row sums it leaves in ``args[ROW_SUMS]``; ``tasks`` is the number of tasks
    the split was made for where it depends on the thread count (else None).
    """

    kernel: Callable
    args: tuple
    finish: Any
    tasks: int | None

    def run(self, args, finish):
        """The call, on ``args`` and finished with ``finish`` (its own, or a replay's)."""
        self.kernel(*args)
        if finish is not None:
            _core.finish_sums(_SELF, finish, args[ROW_SUMS], args[COUNTS])


ROW_SUMS, COUNTS = 9, 12  # where the kernels take rows_out and counts


def kernel_call(key, x, z, w, pw, g, ignore_value, smoothing, loss_scale, grad_scale,
                rows_out, elem_out, grad_out, counts, finish):
    """The :class:`KernelCall` that runs the kernel for ``key`` (see :func:`launch`).

    Rows shorter than a block whose element-indexed arrays are contiguous run
    the flat loop (see kernels.py), the others the row loop.  The row loop's
    split depends on the thread count only, not on the build, so both builds
    give bit-identical results; the flat loop's tasks take whole rows, so its
    results do not depend on the split at all (a serial call runs one task).
    A ``finish`` is done after the kernel, on the float64 row sums it leaves.
    """
    rows, n = x.shape
    if finish is not None:
        rows_out = np.empty(rows)
    serial = rows * n < PARALLEL_MIN
    block = kernels.block_size(key.dtype)
    # g with one value per row is read per row, as it is.
    flat = _flat_views(x, z, w, g if key.g_elem else None, elem_out, grad_out,
                       pw if key.pw_elem else None) if n < block else None
    tasks = None
    if flat is not None:
        x, z, w, g_flat, elem_out, grad_out, pw_flat = flat
        g = g if g_flat is None else g_flat
        pw = pw if pw_flat is None else pw_flat
        if not serial:
            tasks = kernel_tasks()
        split = (1 if serial else min(tasks, rows), n)
    else:
        tasks = kernel_tasks()
        pieces = -(-tasks // rows)  # few long rows: cut each into pieces
        chunk = max(block, -(-n // pieces))
        pieces = -(-n // chunk)
        split = (min(tasks, rows * pieces), chunk)
    if key.halves or key.dtype in _half.KINDS:  # half arrays: their bits (_half)
        x, z, w, pw, g, rows_out, elem_out, grad_out = (
            _half.bits(a) for a in (x, z, w, pw, g, rows_out, elem_out, grad_out))
    args = (x, z, w, pw, g, _ignored(ignore_value), smoothing, loss_scale, grad_scale,
            rows_out, elem_out, grad_out, counts, *split)
    is_flat = flat is not None
    kernel = kernels.get(key, False, is_flat) if serial else _parallel(key, is_flat)
    return KernelCall(kernel, args, finish, tasks)


@functools.lru_cache(maxsize=256)
def _parallel(key, flat):
    """The parallel kernel for ``key``, launched the safe way (threads.py)."""
    return functools.partial(threads.launch, lambda parallel: kernels.get(key, parallel, flat))


@functools.lru_cache(maxsize=64, typed=True)
def _ignored(value):
    """The kernels' ``ignored``: a 1-element array of the targets' value that is
    ignored (read only where the kernel ignores one; an array is faster for
    Numba's dispatcher to type than a NumPy scalar).  Half targets are compared as
    the float32 they widen to (exactly: every half is a float32)."""
    if value is None:
        return _PLACEHOLDERS[1, np.float64]
    if _half.kind(np.asarray(value).dtype):
        value = np.float32(value)
    return np.full(1, value)


def kernel_tasks():
    """The tasks a parallel kernel's rows are split into: a few per thread, for balance."""
    return 8 * numba.get_num_threads()


def _flat_views(*arrays):
    """``(1, rows * n)`` views of the ``(rows, n)`` arrays (a placeholder or None stays
    as it is), or None if one of them has no such view."""
    views = []
    for a in arrays:
        if a is not None and (size := a.size) > 1:
            # A contiguous array's reshape is a view, and 3x faster than asking for one.
            a = a.reshape(1, size) if a.flags.c_contiguous else reshape_view(a, (1, size))
            if a is None:
                return None
        views.append(a)
    return views


# The epilogues of the front ends: small arithmetic on 0-d or per-row arrays,
# done where the arrays live.

def total(a):
    """The sum of all elements, as a 0-d float64 array."""
    return np.asarray(np.add.reduce(a, None, np.float64))  # a.sum's, with less Python


def count_nonzero(a):
    """The number of non-zero elements, as a 0-d float64 array."""
    return np.asarray(np.count_nonzero(a), np.float64)


def binary(op, a, b):
    """Elementwise float64 ``op`` of a and b (arrays or numbers), broadcast.

    ``div``: a / b (IEEE: x/0 is inf, 0/0 NaN); ``safe_div``: 0 where b == 0;
    ``div_at_least_one``: a / max(b, 1); ``mul``: a * b.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if op == "div":
            return a / b
        if op == "safe_div":
            return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))
        if op == "div_at_least_one":
            return a / np.maximum(b, 1.0)
        if op == "mul":
            return a * b
    raise ValueError(op)


def quotient(op, a, b):
    """``op(a, b)``, computed now (:func:`binary`)."""
    return binary(op, a, b)


def cast(a, dtype):
    return np.asarray(a, dtype)


_SELF = sys.modules[__name__]  # this backend, for _core.finish_sums
