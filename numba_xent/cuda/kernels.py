"""CUDA kernels of the fused operation, one compiled per combination of options.

The GPU twin of :mod:`numba_xent.cpu.kernels`: the same arguments (plus the
launch layout of :mod:`numba_xent.cuda.groups`), the same per-element
expressions, evaluated by :func:`numba_xent._formulas.loss_and_grad` on
``exp``/``log1p`` of the GPU's math library.  Which inputs exist and which
outputs are written are compile-time constants of the closure
(``numba_xent._core.Kernel``): no element branches on a flag, and a kernel
reads only the inputs its outputs need (the count-only kernel reads no logits).

Precision, as on the CPU: the loss in the logits' dtype, row sums in float64,
the gradient in float64 (``sigmoid(x) - z`` cancels where sigmoid(x) is close
to z).  The fused kernel evaluates exactly the expressions of the separate
ones, and a row's sum is added in an order fixed by its shape.

Scale factors arrive as a 1-element float64 device array times a number
(``numba_xent.cuda.Scale``): a number needs no device copy, a 0-d result of a
device reduction needs no trip to the host.
"""

import math

import numpy as np
from numba import cuda, float64, types

from .._formulas import loss_and_grad
from . import groups
from .groups import UNROLL, element_of, row_of

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


def build(key, shuffle):
    """The Python function of the kernel for ``key`` (``cuda.jit`` compiles it)."""
    (variant, dtype, weighted, pos_weight, ignore, smooth, rows, elem, grad, g_elem,
     count) = key
    ty = np.dtype(dtype).type  # the loss is computed in the logits' dtype, the gradient in f64
    f64 = np.float64
    want_loss = rows or elem
    read_x = want_loss or grad
    group_sum = groups.sum_shuffle if shuffle else groups.sum_shared
    scratch = groups.scratch_size(shuffle) if rows or count else 1
    U = UNROLL
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
        gs = cuda.local.array(U, float64)
        ls = loss_scale[0] * loss_factor
        gscale = grad_scale[0] * grad_factor
        one = ty(1.0)
        zero = one - one
        keep_z, half_s = ty(1.0 - smoothing), ty(0.5 * smoothing)
        keep_z64, half_s64 = 1.0 - smoothing, 0.5 * smoothing
        first = cuda.blockIdx.x * per_block
        while first < nrows:  # the same trip count for the whole block
            r, lane = row_of(first, tid, group, shift)
            first += cuda.gridDim.x * per_block
            live = r < nrows
            acc = 0.0
            kept = 0.0
            if live:
                g_row = gscale * f64(g[r, 0]) if grad and not g_elem else 0.0
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
                                if weighted:
                                    ws[u] = ty(w[r, j])
                                if pos_weight:
                                    ps[u] = ty(pw[j])
                            if grad and g_elem:
                                gs[u] = f64(g[r, j])
                    for u in range(U):
                        j = element_of(start, lane, step, u, group, U)
                        if j < stop:
                            keep = ks[u]
                            if count and keep:
                                kept += 1.0
                            if want_loss:
                                z_j = zs[u]
                                if smooth:
                                    z_j = z_j * keep_z + half_s
                                pw_j = ps[u] if pos_weight else one
                                # ty(): the simulator's math returns Python floats
                                e = ty(math.exp(-abs(xs[u])))
                                loss = loss_and_grad(xs[u], z_j, pw_j, e, ty(math.log1p(e)),
                                                     variant, one)[0]
                                if weighted:
                                    loss *= ws[u]
                                if ignore:
                                    loss = loss if keep else zero
                                if rows:
                                    acc += loss
                                if elem:
                                    elem_out[r, j] = ls * loss
                            if grad:
                                z_j64 = f64(zs[u])
                                if smooth:
                                    z_j64 = z_j64 * keep_z64 + half_s64
                                pw_j64 = f64(ps[u]) if pos_weight else 1.0
                                x_j64 = f64(xs[u])
                                e64 = f64(math.exp(-abs(x_j64)))
                                dloss = loss_and_grad(x_j64, z_j64, pw_j64, e64, 0.0, variant,
                                                      1.0)[1]
                                if weighted:
                                    dloss *= f64(ws[u])
                                g_j = gscale * gs[u] if g_elem else g_row
                                grad_out[r, j] = g_j * dloss if keep else 0.0
                    step += 1
            if rows:
                acc = group_sum(acc, sh, lane, group)
            if count:
                kept = group_sum(kept, sh, lane, group)
            if (rows or count) and live and lane == 0:
                if cuda.gridDim.y == 1:
                    if rows:
                        rows_out[r] = ls * acc
                    if count:
                        counts[r] = np.int64(kept)
                else:  # a chunk of a row: its partial sums, added up by a second launch
                    if rows:
                        partial[r, c] = acc
                    if count:
                        kept_partial[r, c] = kept

    return kernel
