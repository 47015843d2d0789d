"""The CPU backend: NumPy arrays in, NumPy arrays out, row-parallel Numba kernels."""

import numba
import numpy as np

from . import kernels

asarray = np.asarray
empty = np.empty
zeros = np.zeros


def reshape_view(a, shape):
    """``a`` reshaped without a copy, or None where its strides don't allow it."""
    try:
        return np.reshape(a, shape, copy=False)
    except ValueError:
        return None


def reshape(a, shape):
    """``a`` reshaped, copied only where its strides don't allow a view."""
    return np.reshape(a, shape)


broadcast_to = np.broadcast_to


def placeholder(ndim, dtype=np.float64):
    """A stand-in for an absent kernel argument: typed like one, never read."""
    return _PLACEHOLDERS[ndim, np.dtype(dtype)]


_PLACEHOLDERS = {(d, np.dtype(t)): np.zeros((1,) * d, t)
                 for d in (1, 2) for t in (np.float64, np.int64)}


def scale(value):
    """A kernel's scale factor as a 1-element float64 array (it may be a 0-d array)."""
    return np.asarray(value, np.float64).reshape(1)


def fill(a, value):
    a[...] = value


def copy_into(target, computed):
    target[...] = computed.reshape(target.shape)


def launch(key, x, *args):
    """Run the kernel for ``key`` over the ``(rows, n)`` view ``x`` (see _core.evaluate)."""
    rows, n = x.shape
    tasks = 8 * numba.get_num_threads()  # a few per thread, for balance
    pieces = -(-tasks // rows)  # few long rows: cut each into pieces
    chunk = max(kernels.BLOCK, -(-n // pieces))
    pieces = -(-n // chunk)
    kernels.get(key)(x, *args, min(tasks, rows * pieces), chunk)
