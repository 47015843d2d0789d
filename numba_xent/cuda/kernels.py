"""CUDA kernels of the fused operation, one compiled per combination of options.

The GPU twin of :mod:`numba_xent.cpu.kernels`: the same arguments (plus the
launch layout of :mod:`numba_xent.cuda.groups`), the same per-element
element body, :func:`numba_xent._formulas.element_function`, evaluated on the
``exp``/``log1p`` of :mod:`numba_xent.cpu.vecmath` (``exp`` once per element):
plain arithmetic, so both backends compute every element alike, to the
accuracy measured there.  Which inputs exist and which
outputs are written are compile-time constants of the closure
(``numba_xent._core.Kernel``): no element branches on a flag, and a kernel
reads only the inputs its outputs need (the count-only kernel reads no logits).

Precision, as on the CPU: every element in the logits' dtype (float32 data in
float32 arithmetic: no float64 instruction but the row sums' accumulators, the
conversions into them, and the per-row scales), row sums in float64.  The
fused kernel evaluates exactly the expressions of the separate ones, and a
row's sum is added in an order fixed by its shape.

Scale factors arrive as a 1-element float64 device array times a number
(``numba_xent.cuda.Scale``): a number needs no device copy, a 0-d result of a
device reduction needs no trip to the host.
"""


import numpy as np
from numba import cuda, float64, njit, types

from .._formulas import element_function
from ..cpu.vecmath import for_dtype
from . import groups
from .arrays import SIMULATOR
from .groups import UNROLL, element_of, row_of

if SIMULATOR:  # the element body runs as CPU code there, where libdevice is not
    approx_divide = njit(inline="always")(lambda a, b: a / b)
else:
    from numba.cuda import libdevice

    approx_divide = libdevice.fast_fdividef

_KERNELS = {}


def get(key, shuffle):
    """The kernel for ``key`` (a ``numba_xent._core.Kernel``), built on first use.

    ``shuffle``: reduce with warp shuffles (a GPU) or in shared memory (the simulator).
    """
    kernel = _KERNELS.get((key, shuffle))
    if kernel is None:
        kernel = _KERNELS[key, shuffle] = jit(build(key, shuffle))
    return kernel


def jit(fn):
    """``cuda.jit`` with on-disk caching where a cache folder is writable."""
    try:
        return cuda.jit(cache=True)(fn)
    except RuntimeError:  # a read-only install without NUMBA_CACHE_DIR
        return cuda.jit(fn)


@njit(inline="always")
def logistic32(u, one):
    """``u / (1 + u)`` for a float32 ``u`` in [0, 1], within 2 ulp.

    An IEEE division is a subroutine of ptxas that costs the fused kernel 17
    registers; the approximate reciprocal (2 ulp on [1, 2]) with one Newton step
    is four instructions.
    """
    d = one + u
    y = approx_divide(one, d)
    return u * (y + y * (one - d * y))


@njit(inline="always")
def logistic64(u, one):
    """``u / (1 + u)`` for a float64 ``u`` (an IEEE division: there is no float64
    approximate one)."""
    return u / (one + u)


def unroll(key):
    """Elements a thread of ``key``'s kernel loads before using any (its UNROLL).

    UNROLL of each input in flight keep the memory busy; a kernel that streams
    more than six arrays per element (the fused elementwise one with weights and
    pos_weight) has enough bytes in flight with half as many, and its registers
    then stay within 64 (for float32), so that 256-thread blocks run at 50%
    occupancy or more.
    """
    streams = (2 + key.weighted + key.pos_weight + (key.grad and key.g_elem)
               + key.elem + key.grad)
    return UNROLL if streams <= 6 else UNROLL // 2


def build(key, shuffle):
    """The Python function of the kernel for ``key`` (``cuda.jit`` compiles it)."""
    (variant, dtype, weighted, pos_weight, ignore, smooth, rows, elem, grad, g_elem,
     count) = key
    exp, log1p = for_dtype(dtype)
    element = element_function(key, log1p, logistic64 if dtype == "float64" else logistic32)
    ty = np.dtype(dtype).type
    f64 = np.float64
    read_x = rows or elem or grad
    group_sum = groups.sum_shuffle if shuffle else groups.sum_shared
    scratch = groups.scratch_size(shuffle) if rows or count else 1
    U = unroll(key)
    boolean = types.boolean

    def kernel(x, z, w, pw, g, ignore_value, smoothing, loss_scale, loss_factor, grad_scale,
               grad_factor, rows_out, elem_out, grad_out, counts, partial, kept_partial,
               group, shift, chunk):
        nrows, n = z.shape
        c = cuda.blockIdx.y  # the chunk of every row this block reads
        start = c * chunk
        stop = min(n, start + chunk)
        tid = cuda.threadIdx.x
        per_block = cuda.blockDim.x >> shift
        sh = cuda.shared.array(scratch, float64)
        xs = cuda.local.array(U, ty)
        zs = cuda.local.array(U, ty)
        ks = cuda.local.array(U, boolean)
        ws = cuda.local.array(U, ty)
        ps = cuda.local.array(U, ty)
        gs = cuda.local.array(U, ty)
        loss_scale = loss_scale[0] * loss_factor
        grad_scale = grad_scale[0] * grad_factor
        ls = ty(loss_scale)
        g_scale = ty(grad_scale)
        one = ty(1.0)
        s = ty(smoothing)
        s_keep = one - s
        first = cuda.blockIdx.x * per_block
        while first < nrows:  # the same trip count for the whole block
            r, lane = row_of(first, tid, group, shift)
            first += cuda.gridDim.x * per_block
            live = r < nrows
            acc = 0.0
            kept = 0.0
            if live:
                g_row = grad_scale * f64(g[r, 0]) if grad and not g_elem else 0.0
                step = 0
                while element_of(start, lane, step, 0, group, U) < stop:
                    for u in range(U):  # loads first: UNROLL of each input in flight
                        j = element_of(start, lane, step, u, group, U)
                        if j < stop:
                            z_raw = z[r, j]
                            ks[u] = z_raw != ignore_value if ignore else True
                            zs[u] = ty(z_raw)
                            if read_x:
                                xs[u] = x[r, j]
                                ws[u] = w[r, j] if weighted else one
                                ps[u] = pw[j] if pos_weight else one
                            if grad and g_elem:
                                gs[u] = g[r, j]
                    for u in range(U):
                        j = element_of(start, lane, step, u, group, U)
                        if j < stop:
                            if count and ks[u]:
                                kept += 1.0
                            if read_x:
                                # ty(): values that cross into the simulator's Python are floats
                                value, dgrad = element(xs[u], ty(exp(-abs(xs[u]))), zs[u], ks[u],
                                                       ws[u], ps[u],
                                                       gs[u] if g_elem else g_row,
                                                       s_keep, s, g_scale)
                                if rows:
                                    acc += value
                                if elem:
                                    elem_out[r, j] = ls * value
                                if grad:
                                    grad_out[r, j] = dgrad
                    step += 1
            if rows:
                acc = group_sum(acc, sh, lane, group)
            if count:
                kept = group_sum(kept, sh, lane, group)
            if (rows or count) and live and lane == 0:
                if cuda.gridDim.y == 1:
                    if rows:
                        rows_out[r] = loss_scale * acc
                    if count:
                        counts[r] = np.int64(kept)
                else:  # a chunk of a row: its partial sums, added up by a second launch
                    if rows:
                        partial[r, c] = acc
                    if count:
                        kept_partial[r, c] = kept

    return kernel
