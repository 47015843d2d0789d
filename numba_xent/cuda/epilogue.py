"""The small kernels of the front ends' epilogues: sums, counts, arithmetic, copies.

They work on the 0-d and per-row arrays that follow a loss kernel (row sums,
counts, divisors), so that a mean or a normalisation never leaves the device.
Row sums use the layout and the fixed-order group sum of
:mod:`numba_xent.cuda.groups`, like the loss kernels.
"""

import math

import numpy as np
from numba import cuda, float64, njit

from . import groups
from .groups import row_of
from .kernels import jit

_KERNELS = {}

SUM = "sum"
NONZERO = "nonzero"  # count the non-zero elements
BINARY_OPS = ("div", "safe_div", "div_at_least_one", "mul")


def _cached(key, build):
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = jit(build(*key[1:]))
    return kernel


def row_sums(op, shuffle):
    """``out[r] = scale[0] * factor * sum_j f(a[r, j])``, f = float64 (SUM) or != 0 (NONZERO).

    Rows cut into several chunks write the chunks' sums to ``partial[r, c]``
    (unscaled).  ``shuffle`` as in :func:`numba_xent.cuda.kernels.get`.
    """
    return _cached(("row_sums", op, shuffle), build_row_sums)


def build_row_sums(op, shuffle):
    nonzero = op == NONZERO
    group_sum = groups.sum_shuffle if shuffle else groups.sum_shared
    scratch = groups.scratch_size(shuffle)

    def kernel(a, scale, factor, out, partial, group, shift, chunk):
        nrows, n = a.shape
        c = cuda.blockIdx.y
        stop = min(n, c * chunk + chunk)
        tid = cuda.threadIdx.x
        per_block = cuda.blockDim.x >> shift
        sh = cuda.shared.array(scratch, float64)
        first = cuda.blockIdx.x * per_block
        while first < nrows:  # the same trip count for the whole block
            r, lane = row_of(first, tid, group, shift)
            first += cuda.gridDim.x * per_block
            live = r < nrows
            acc = 0.0
            if live:
                j = c * chunk + lane
                while j < stop:
                    if nonzero:
                        acc += 1.0 if a[r, j] != 0 else 0.0
                    else:
                        acc += np.float64(a[r, j])
                    j += group
            acc = group_sum(acc, sh, lane, group)
            if live and lane == 0:
                if cuda.gridDim.y == 1:
                    out[r] = scale[0] * factor * acc
                else:
                    partial[r, c] = acc

    return kernel


def binary(op):
    """``out[i] = op(a[i] * a_factor, b[i] * b_factor)`` in float64 (size-1 a or b broadcast).

    ``div``: IEEE division; ``safe_div``: 0 where the divisor is 0;
    ``div_at_least_one``: divided by max(b, 1); ``mul``: the product.
    """
    if op not in BINARY_OPS:
        raise ValueError(f"unknown operation {op!r}")
    return _cached(("binary", op), build_binary)


def build_binary(op):
    div, safe_div, at_least_one = op == "div", op == "safe_div", op == "div_at_least_one"

    def kernel(a, a_factor, b, b_factor, out):
        n = out.shape[0]
        a_step = 1 if a.shape[0] == n else 0
        b_step = 1 if b.shape[0] == n else 0
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            av = np.float64(a[i * a_step]) * a_factor
            bv = np.float64(b[i * b_step]) * b_factor
            if div:
                out[i] = _divide(av, bv)
            elif safe_div:
                out[i] = 0.0 if bv == 0 else av / bv
            elif at_least_one:
                out[i] = av / max(bv, 1.0)
            else:
                out[i] = av * bv

    return kernel


@njit(inline="always")
def _divide(a, b):
    """``a / b``, IEEE also for ``b == 0`` (where the simulator's NumPy would warn)."""
    if b == 0:
        if a != a or a == 0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def copy():
    """``dst[r, j] = src[r, j]`` for two ``(rows, n)`` views, converting the dtype."""
    return _cached(("copy",), build_copy)


def build_copy():
    def kernel(dst, src):
        nrows, n = dst.shape
        for k in range(cuda.grid(1), nrows * n, cuda.gridsize(1)):
            r = k // n
            dst[r, k - r * n] = src[r, k - r * n]

    return kernel


def fill():
    """``out[i] = value`` for a 1-D ``out``: a number becomes a device array without a copy."""
    return _cached(("fill",), build_fill)


def build_fill():
    def kernel(out, value):
        for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
            out[i] = value

    return kernel
