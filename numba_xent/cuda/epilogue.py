"""The small kernels of the front ends' epilogues: sums, counts, arithmetic, copies.

They work on the 0-d and per-row arrays that follow a loss kernel (row sums,
counts, divisors), so that a mean or a normalisation never leaves the device.
Row sums use the layout and the fixed-order group sum of
:mod:`numba_xent.cuda.groups`, like the loss kernels.
"""

import numpy as np
from numba import cuda, float64, njit

from . import groups
from .division import divide
from .groups import jit, row_of

_KERNELS = {}

SUM = "sum"
NONZERO = "nonzero"  # count the non-zero elements
BINARY_OPS = ("div", "safe_div", "div_at_least_one", "mul")


def _cached(key, build):
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = jit(build(*key[1:]))
    return kernel


def reduce_all(op, shuffle):
    """``out[0] = sum_{r, j} f(a[r, j])`` in one launch, f = float64 (SUM) or != 0 (NONZERO).

    Each block leaves its total in ``totals[block, 0]``; the grid's last block adds
    them up.  ``shuffle`` as in :func:`numba_xent.cuda.kernels.get`.
    """
    return _cached(("reduce_all", op, shuffle), build_reduce_all)


def build_reduce_all(op, shuffle):
    nonzero = op == NONZERO
    group_sum = groups.sum_shuffle if shuffle else groups.sum_shared
    block_total, column_total, _ = groups.finishing(shuffle)
    last_to_arrive = groups.last_to_arrive
    scratch = groups.scratch_size(shuffle)

    def kernel(a, out, totals, ticket, group, shift, chunk, fgroup, fshift):
        nrows, n = a.shape
        c = cuda.blockIdx.y
        stop = min(n, c * chunk + chunk)
        tid = cuda.threadIdx.x
        per_block = cuda.blockDim.x >> shift
        sh = cuda.shared.array(scratch, float64)
        block_acc = 0.0
        first = cuda.blockIdx.x * per_block
        while first < nrows:  # the same trip count for the whole block
            r, lane = row_of(first, tid, group, shift)
            first += cuda.gridDim.x * per_block
            acc = 0.0
            if r < nrows:
                j = c * chunk + lane
                while j < stop:
                    if nonzero:
                        acc += 1.0 if a[r, j] != 0 else 0.0
                    else:
                        acc += np.float64(a[r, j])
                    j += group
            acc = group_sum(acc, sh, lane, group)
            if lane == 0:
                block_acc += acc
        block_acc = block_total(block_acc, sh)
        if tid == 0:
            totals[cuda.blockIdx.y * cuda.gridDim.x + cuda.blockIdx.x, 0] = block_acc
        if last_to_arrive(ticket, sh):
            acc = column_total(totals, 0, sh)
            if tid == 0:
                out[0] = acc

    return kernel


def operation(op):
    """The float64 ``op(a, b)`` of a kernel's epilogue (None: ``a``), as a device function.

    ``div``: division (``division.divide``: IEEE's quotient, without ptxas's
    division subroutine); ``safe_div``: 0 where the divisor is 0;
    ``div_at_least_one``: divided by max(b, 1); ``mul``: the product.
    """
    if op is not None and op not in BINARY_OPS:
        raise ValueError(f"unknown operation {op!r}")
    return _OPERATIONS[op]


def binary(op):
    """``out[i] = op(a[i] * a_factor, b[i] * b_factor)`` in float64 (size-1 a or b
    broadcast), ``op`` as in :func:`operation`."""
    operation(op)
    return _cached(("binary", op), build_binary)


def build_binary(op):
    apply = operation(op)

    def kernel(a, a_factor, b, b_factor, out):
        n = out.shape[0]
        a_step = 1 if a.shape[0] == n else 0
        b_step = 1 if b.shape[0] == n else 0
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            out[i] = apply(np.float64(a[i * a_step]) * a_factor,
                           np.float64(b[i * b_step]) * b_factor)

    return kernel


_OPERATIONS = {
    None: njit(inline="always")(lambda a, b: a),
    "div": divide,
    "safe_div": njit(inline="always")(lambda a, b: 0.0 if b == 0 else divide(a, b)),
    "div_at_least_one": njit(inline="always")(lambda a, b: divide(a, max(b, 1.0))),
    "mul": njit(inline="always")(lambda a, b: a * b),
}


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
