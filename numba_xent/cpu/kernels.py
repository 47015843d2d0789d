"""Row-parallel CPU kernels, one compiled per combination of options.

A kernel walks a ``(rows, n)`` view of the logits, a row per ``prange``
iteration, and per element evaluates :func:`numba_xent._formulas.loss_and_grad`.
Which inputs exist and which outputs are written are compile-time constants of
the closure (``numba_xent._core.Kernel``), so a kernel never branches per element on a flag and
LLVM drops the work nobody asked for (the derivative of a forward-only call).
"""

import math
import numpy as np
from numba import prange

from .._formulas import loss_and_grad
from .._jit import cpu_jit


_KERNELS = {}


def get(key):
    """The compiled kernel for ``key``, built on first use."""
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = _build(*key)
    return kernel


def _build(variant, dtype, weighted, pos_weight, ignore, smooth, rows, elem, grad, g_elem, count):
    cast = np.dtype(dtype).type

    def kernel(x, z, w, pw, g, ignore_value, smoothing, loss_scale, grad_scale,
               rows_out, elem_out, grad_out, counts):
        nrows, n = x.shape
        # Elements are computed in float64 whatever the logits' dtype: the
        # gradient sigmoid(x) - z cancels, and float32 arithmetic would lose
        # its relative accuracy where sigmoid(x) is close to z.
        for r in prange(nrows):
            acc = 0.0
            kept = 0
            g_row = grad_scale * np.float64(g[r, 0]) if grad and not g_elem else 0.0
            for j in range(n):
                x_j = np.float64(x[r, j])
                z_raw = z[r, j]
                z_j = np.float64(cast(z_raw))
                if smooth:
                    z_j = z_j * (1.0 - smoothing) + 0.5 * smoothing
                pw_j = np.float64(cast(pw[j])) if pos_weight else 1.0
                e = math.exp(-abs(x_j))
                loss, dloss = loss_and_grad(x_j, z_j, pw_j, e, math.log1p(e), variant)
                if weighted:
                    w_j = np.float64(cast(w[r, j]))
                    loss *= w_j
                    dloss *= w_j
                    if count == 2:
                        kept += w_j != 0.0
                if ignore:
                    keep = z_raw != ignore_value
                    loss = loss if keep else 0.0
                    dloss = dloss if keep else 0.0
                    if count == 1:
                        kept += keep
                acc += loss
                if elem:
                    elem_out[r, j] = loss_scale * loss
                if grad:
                    g_j = grad_scale * np.float64(g[r, j]) if g_elem else g_row
                    grad_out[r, j] = g_j * dloss
            if rows:
                rows_out[r] = loss_scale * acc
            if count:
                counts[r] = kept

    return cpu_jit(kernel, parallel=True)
