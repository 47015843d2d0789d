"""Row-parallel CPU kernels, one compiled per combination of options.

A kernel walks a ``(rows, n)`` view of the logits and per element evaluates
:func:`numba_xent._formulas.loss_and_grad` on the vectorisable ``exp``/``log1p``
of :mod:`numba_xent.cpu.vecmath`.  Which inputs exist and which outputs are
written are compile-time constants of the closure (``numba_xent._core.Kernel``),
so no element branches on a flag and LLVM drops the work nobody asked for.

Work split: the rows are cut into ``chunk``-long pieces (a whole row when rows
are many; a few pieces per row when they are few and long) and ``ntasks``
threads take contiguous runs of pieces.  Each piece's sum is kept apart and the
pieces of a row are added in order afterwards, so a result depends on the
input and the thread count only, never on scheduling.

Memory: before each block the kernel asks for its inputs' cache lines 1 KiB
ahead (:mod:`numba_xent.cpu.prefetch`), so the loads overlap the math.

Precision: row sums accumulate in float64.  The loss is computed in the
logits' dtype (its terms do not cancel inside an element beyond a few ulps),
the gradient in float64, because ``sigmoid(x) - z`` cancels where sigmoid(x)
is close to z and float32 would lose its relative accuracy there.  The fused
kernel evaluates both exactly as the separate ones do: its loss and gradient
are bit-identical to theirs.
"""

import numpy as np
from numba import njit, prange

from .._formulas import loss_and_grad
from .._jit import CPU_OPTIONS, cpu_jit
from .prefetch import prefetch_ahead
from .vecmath import exp_nonpos, log1p_unit, prefer_512bit_vectors

# Element losses are buffered this many at a time, then summed: the loop that
# computes them carries no float dependency and vectorises; the sum vectorises
# on its own (reassociation is harmless in a plain sum of a buffer).
BLOCK = 512

_KERNELS = {}


def get(key, parallel=True):
    """The compiled kernel for ``key`` (a ``numba_xent._core.Kernel``), built on first use.

    ``parallel=False`` is the serial build: for small inputs and for forked
    children (see ``launch`` in ``__init__.py`` and threads.py).
    """
    kernel = _KERNELS.get((key, parallel))
    if kernel is None:
        kernel = _KERNELS[key, parallel] = _build(*key, parallel=parallel)
    return kernel


@njit(fastmath={"reassoc"}, **CPU_OPTIONS)
def _block_sum(buf, m):
    total = 0.0
    for i in range(m):
        total += buf[i]
    return total


def _build(variant, dtype, weighted, pos_weight, ignore, smooth, rows, elem, grad, g_elem, count,
           parallel):
    ty = np.dtype(dtype).type  # the loss is computed in the logits' dtype, the gradient in f64
    f64 = np.float64
    want_loss = rows or elem
    # A float64 kernel evaluates exp once for both (two inlined copies of the
    # same exp would also trip a Numba SSA check).
    share_exp = want_loss and grad and ty is np.float64

    def kernel(x, z, w, pw, g, ignore_value, smoothing, loss_scale, grad_scale,
               rows_out, elem_out, grad_out, counts, ntasks, chunk):
        nrows, n = x.shape
        nchunks = (n + chunk - 1) // chunk
        items = nrows * nchunks
        partial = np.zeros((nrows if rows else 0, nchunks))
        kept_partial = np.zeros((nrows if count else 0, nchunks), np.int64)
        loss_scale = loss_scale[0]
        grad_scale = grad_scale[0]
        one = ty(1.0)
        keep_z, half_s = ty(1.0 - smoothing), ty(0.5 * smoothing)
        keep_z64, half_s64 = 1.0 - smoothing, 0.5 * smoothing
        for task in prange(ntasks):
            prefer_512bit_vectors()
            buf = np.empty(BLOCK if rows else 0, ty)
            for item in range(task * items // ntasks, (task + 1) * items // ntasks):
                r = np.uint64(item // nchunks)
                c = item - (item // nchunks) * nchunks
                j1 = min(n, (c + 1) * chunk)
                g_row = grad_scale * f64(g[r, 0]) if grad and not g_elem else 0.0
                acc = 0.0
                kept = 0
                for b0 in range(c * chunk, j1, BLOCK):
                    m = min(BLOCK, j1 - b0)
                    prefetch_ahead(x, r, b0, m)
                    prefetch_ahead(z, r, b0, m)
                    if weighted:
                        prefetch_ahead(w, r, b0, m)
                    if grad and g_elem:
                        prefetch_ahead(g, r, b0, m)
                    for i in range(m):
                        # Unsigned indices: Numba then emits no negative-index
                        # wraparound, and LLVM sees contiguous loads, not gathers.
                        j = np.uint64(b0 + i)
                        z_raw = z[r, j]
                        keep = z_raw != ignore_value if ignore else True
                        if count:
                            kept += keep
                        if want_loss:
                            z_j = ty(z_raw)
                            if smooth:
                                z_j = z_j * keep_z + half_s
                            pw_j = ty(pw[j]) if pos_weight else one
                            x_j = ty(x[r, j])
                            e = exp_nonpos(-abs(x_j))
                            loss = loss_and_grad(x_j, z_j, pw_j, e, log1p_unit(e), variant,
                                                 one)[0]
                            if weighted:
                                loss *= ty(w[r, j])
                            if ignore:
                                loss = loss if keep else one - one
                            if rows:
                                buf[i] = loss
                            if elem:
                                elem_out[r, j] = loss_scale * loss
                        if grad:
                            z_j64 = f64(ty(z_raw))
                            if smooth:
                                z_j64 = z_j64 * keep_z64 + half_s64
                            pw_j64 = f64(ty(pw[j])) if pos_weight else 1.0
                            x_j64 = f64(x[r, j])
                            if share_exp:
                                e64 = e
                            else:
                                e64 = exp_nonpos(-abs(x_j64))
                            dloss = loss_and_grad(x_j64, z_j64, pw_j64, e64, 0.0, variant,
                                                  1.0)[1]
                            if weighted:
                                dloss *= f64(ty(w[r, j]))
                            g_j = grad_scale * f64(g[r, j]) if g_elem else g_row
                            grad_out[r, j] = g_j * dloss if keep else 0.0
                    if rows:
                        acc += _block_sum(buf, m)
                if rows:
                    partial[r, c] = acc
                if count:
                    kept_partial[r, c] = kept
        if rows or count:
            for r in prange(nrows):
                if rows:
                    acc = 0.0
                    for c in range(nchunks):
                        acc += partial[r, c]
                    rows_out[r] = loss_scale * acc
                if count:
                    counts[r] = kept_partial[r].sum()

    if not parallel:
        # Numba's cache key ignores ``parallel``: the serial build gets its own files.
        kernel.__qualname__ += "_serial"
    return cpu_jit(kernel, parallel=parallel)
