"""Row-parallel CPU kernels, one compiled per combination of options.

A kernel walks a ``(rows, n)`` view of the logits and per element evaluates
the element body of :func:`numba_xent._formulas.element_function` (the one
element body of every kernel, CPU and CUDA) on the vectorisable ``exp``/``log1p``
of :mod:`numba_xent.cpu.vecmath`.  Which inputs exist and which outputs are written are
compile-time constants of the closure (``numba_xent._core.Kernel``), so no
element branches on a flag and LLVM drops the work nobody asked for.

Two loops share that element body:

* rows (:func:`_rows_kernel`): the rows are cut into ``chunk``-long pieces (a whole
  row when rows are many; a few pieces per row when they are few and long) and
  ``ntasks`` threads take contiguous runs of pieces.  Each piece's sum is kept
  apart and the pieces of a row are added in order afterwards.
* flat (:func:`_flat_kernel`), for rows shorter than a block whose element-indexed
  arrays are contiguous: the element loop runs over the flat elements of whole
  rows, ``block // n`` rows at a time, with no per-row setup (a loop of 16
  elements would not enter LLVM's vector loop at all); per-row values (the
  gradient's scale) are spread over a block buffer before it, and the row sums
  are formed from the block's losses after it (a segmented sum).

Either way a result depends on the input and the thread count only, never on
scheduling.

Memory: before each block the kernel asks for its inputs' cache lines 1 KiB
ahead (:mod:`numba_xent.cpu.prefetch`), so the loads overlap the math.

Precision: everything per element is computed in the logits' dtype (float32
data in float32 arithmetic, which is backward stable: see ``_formulas``); row
sums accumulate in float64, and a gradient's per-row scale (``grad_scale *
g_row``, times the weight) is formed in float64 and rounded once, so that a
huge scale times a tiny weight neither overflows nor underflows.  The fused
kernel evaluates exactly the expressions of the separate ones: its loss and
gradient are bit-identical to theirs.
"""

import numpy as np
from numba import njit, prange

from .. import _half
from .._formulas import element_function
from .._half import compute_dtype
from .._jit import CPU_OPTIONS, cpu_jit
from .prefetch import prefetch_ahead
from .vecmath import for_dtype, log_for_dtype, prefer_512bit_vectors, true_divide

# Elements are processed a block of this many bytes of logits at a time: their
# exponentials, then the element loop, then the sum of their losses; the loops
# carry no float dependency and vectorise, and the sum vectorises on its own
# (reassociation is harmless in a plain sum of a buffer).  Measured, one core:
# 2 KiB blocks beat 1, 4 and 8 KiB (float64 gradient 0.82 Gelem/s against 0.69
# for 4 KiB, float32 forward within noise of 4 KiB; 8 KiB lost 15-30%).
BLOCK_BYTES = 2048


def block_size(dtype):
    """Elements of logits of the named dtype per block (a dictionary lookup): 2 KiB of
    their compute dtype (halves are computed in float32)."""
    size = _BLOCK_SIZES.get(dtype)
    return BLOCK_BYTES // compute_dtype(dtype).itemsize if size is None else size


_BLOCK_SIZES = {t: BLOCK_BYTES // compute_dtype(t).itemsize
                for t in ("float32", "float64", *_half.KINDS)}

_KERNELS = {}


def get(key, parallel=True, flat=False):
    """The compiled kernel for ``key`` (a ``numba_xent._core.Kernel``), built on first use.

    ``parallel=False`` is the serial build: for small inputs and for forked
    children (see ``launch`` in ``__init__.py`` and threads.py).  ``flat`` is
    the loop for short contiguous rows (see the module docstring).
    """
    kernel = _KERNELS.get((key, parallel, flat))
    if kernel is None:
        build = _flat_kernel if flat else _rows_kernel
        kernel = _KERNELS[key, parallel, flat] = cpu_jit(build(key), (key, parallel, flat),
                                                         parallel=parallel)
    return kernel


@njit(inline="always")
def logistic(u, one):
    """``u / (1 + u)``: one division (vdivps is faster here than a reciprocal's Newton steps)."""
    return u / (one + u)


def _block(key, flat):
    """The work on one block of a kernel for ``key``, shared by both loops::

        block(x, z, w, pw, g, scale, r, b0, m, ignore_value, ls, gs, s_keep, s,
              e, losses, kept, elem_out, grad_out)

    Elements ``b0 .. b0 + m`` of row ``r`` (of the ``(1, rows * n)`` view in the
    flat loop): their inputs are prefetched, their exponentials computed in a
    loop of their own, then the element loop writes ``losses[i]`` and ``kept[i]``
    (what the kernel sums) and the elementwise outputs.  The row's gradient
    scale ``scale`` is a number (row loop) or the block's per-element array
    (``flat``, and then so is ``pw``: the block's pos_weight, ``pw[i]``); the
    other numbers are what :func:`_constants` returns.

    The exponentials have their own loop: in one loop with the rest, the
    polynomials' coefficients did not fit in the registers (float64: 35 of
    them) and LLVM reloaded them from memory on every iteration (measured: the
    float64 forward 1.25x slower).
    """
    dtype, weighted, pos_weight, ignore = key.dtype, key.weighted, key.pos_weight, key.ignore
    rows, elem, grad, g_elem, count = key.rows, key.elem, key.grad, key.g_elem, key.count
    ty = compute_dtype(dtype).type
    exp, log1p = for_dtype(ty)
    element = element_function(key, log1p, logistic, exp, log_for_dtype(ty), true_divide)
    read_x = rows or elem or grad
    halves = dict(key.halves)
    x_of, z_of, w_of, pw_of, g_of = (_half.reader(k, ty) for k in (
        dtype, halves.get("z"), halves.get("weights"), halves.get("pos_weight"),
        halves.get("g")))
    z_half = "z" in halves  # compared as the float32 it widens to, not as its bits
    store = _half.writer(dtype)
    pw_at = _pos_weight_reader(key, pw_of, flat)

    @njit(inline="always")
    def block(x, z, w, pw, g, scale, r, b0, m, ignore_value, ls, gs, s_keep, s, e,
              losses, kept, elem_out, grad_out):
        one = ty(1.0)
        if read_x:
            prefetch_ahead(x, r, b0, m)
        prefetch_ahead(z, r, b0, m)
        if weighted:
            prefetch_ahead(w, r, b0, m)
        if grad and g_elem:
            prefetch_ahead(g, r, b0, m)
        for i in range(m if read_x else 0):
            e[i] = exp(-abs(x_of(x[r, np.uint64(b0 + i)])))
        for i in range(m):
            # Unsigned indices: Numba then emits no negative-index wraparound,
            # and LLVM sees contiguous loads, not gathers.
            j = np.uint64(b0 + i)
            z_raw = z[r, j]
            z_i = z_of(z_raw)
            keep = (z_i if z_half else z_raw) != ignore_value if ignore else True
            pw_i = pw_at(pw, r, j, i) if pos_weight else one
            if flat:
                g_i = g_of(g[r, j]) if g_elem else (scale[i] if grad else 0.0)
            else:
                g_i = g_of(g[r, j]) if g_elem else scale
            value, dgrad = element(
                x_of(x[r, j]) if read_x else one, e[i] if read_x else one, z_i, keep,
                w_of(w[r, j]) if weighted else one, pw_i, g_i, s_keep, s, gs)
            if count:
                kept[i] = keep
            if rows:
                losses[i] = value
            if elem:
                elem_out[r, j] = store(ls * value)
            if grad:
                grad_out[r, j] = store(dgrad)

    return block


def _pos_weight_reader(key, pw_of, flat):
    """``pw_at(pw, r, j, i)``: element ``(r, j)``'s pos_weight (``i`` within its block):
    ``pw[r, j]`` per element, else the column's, from the block's spread copy in the flat
    loop (chosen here: each reads an array of its own rank)."""
    if key.pw_elem:
        return njit(inline="always")(lambda pw, r, j, i: pw_of(pw[r, j]))
    if flat:
        return njit(inline="always")(lambda pw, r, j, i: pw[i])
    return njit(inline="always")(lambda pw, r, j, i: pw_of(pw[j]))


def _constants(key):
    """``ls, gs, s_keep, s = constants(smoothing, loss_scale, grad_scale)``: the
    numbers a block takes, in the logits' compute dtype (``s_keep = 1 - s``)."""
    ty = compute_dtype(key.dtype).type

    @njit(inline="always")
    def constants(smoothing, loss_scale, grad_scale):
        s = ty(smoothing)
        return ty(loss_scale), ty(grad_scale), ty(1.0) - s, s

    return constants


def _buffers(key, flat):
    """``buffers(size)``: the per-task block buffers: e, losses, kept and, for the
    flat loop, the rows' gradient scales and pos_weight spread over a block."""
    ty = compute_dtype(key.dtype).type
    read_x = key.rows or key.elem or key.grad
    rows, count = key.rows, key.count
    row_scales = flat and key.grad and not key.g_elem
    pos_weight = flat and key.pos_weight and not key.pw_elem
    scale_ty = _scale_type(key)

    @njit(inline="always")
    def buffers(size):
        return (np.empty(size if read_x else 0, ty), np.empty(size if rows else 0, ty),
                np.empty(size if count else 0), np.empty(size if row_scales else 0, scale_ty),
                np.empty(size if pos_weight else 0, ty))

    return buffers


def _scale_type(key):
    """The type of a row's gradient scale: float64 where a weight multiplies it
    (see _formulas.element_function), else rounded to the compute dtype once."""
    return np.float64 if key.weighted else compute_dtype(key.dtype).type


@njit(fastmath={"reassoc"}, **CPU_OPTIONS)
def _block_sum(buf, lo, hi):
    total = 0.0
    for i in range(np.uint64(lo), np.uint64(hi)):  # unsigned: contiguous loads, no gathers
        total += buf[i]
    return total


def _row_io(key):
    """``(g_of, row_store)``: a row's upstream gradient read as a number, and a row's
    loss as an element of ``rows_out``."""
    halves = dict(key.halves)
    return _half.reader(halves.get("g"), np.float64), _half.writer(halves.get("rows"))


def _rows_kernel(key):
    """The Python function of the row-loop kernel (see the module docstring)."""
    rows, grad, g_elem, count = key.rows, key.grad, key.g_elem, key.count
    block, constants, buffers = _block(key, False), _constants(key), _buffers(key, False)
    scale_ty = _scale_type(key)
    block_elements = block_size(key.dtype)
    g_of, row_store = _row_io(key)

    def kernel(x, z, w, pw, g, ignored, smoothing, loss_scale, grad_scale,
               rows_out, elem_out, grad_out, counts, ntasks, chunk):
        nrows, n = x.shape
        nchunks = (n + chunk - 1) // chunk
        items = nrows * nchunks
        partial = np.zeros((nrows if rows else 0, nchunks))
        kept_partial = np.zeros((nrows if count else 0, nchunks))
        ignore_value = ignored[0]
        ls, gs, s_keep, s = constants(smoothing, loss_scale, grad_scale)
        for task in prange(ntasks):
            prefer_512bit_vectors()
            e, losses, kept, _, _ = buffers(block_elements)
            for item in range(task * items // ntasks, (task + 1) * items // ntasks):
                r = np.uint64(item // nchunks)
                c = item - (item // nchunks) * nchunks
                j1 = min(n, (c + 1) * chunk)
                scale = scale_ty(grad_scale * np.float64(g_of(g[r, 0])) if grad and not g_elem
                                 else 0.0)
                acc = 0.0
                kept_acc = 0.0
                for b0 in range(c * chunk, j1, block_elements):
                    m = min(block_elements, j1 - b0)
                    block(x, z, w, pw, g, scale, r, b0, m, ignore_value, ls, gs, s_keep,
                          s, e, losses, kept, elem_out, grad_out)
                    if rows:
                        acc += _block_sum(losses, 0, m)
                    if count:
                        kept_acc += _block_sum(kept, 0, m)
                if rows:
                    partial[r, c] = acc
                if count:
                    kept_partial[r, c] = kept_acc
        if rows or count:
            for r in prange(nrows):
                if rows:
                    acc = 0.0
                    for c in range(nchunks):
                        acc += partial[r, c]
                    rows_out[r] = row_store(loss_scale * acc)
                if count:
                    counts[r] = np.int64(kept_partial[r].sum())

    return kernel


def _flat_kernel(key):
    """The Python function of the flat-loop kernel (see the module docstring).

    It takes the arguments of the row loop, but the element-indexed arrays (x,
    z, w, a per-element pos_weight, an elementwise g, elem_out, grad_out) as
    ``(1, rows * n)`` views, and
    ``n`` where the row loop takes ``chunk``.  Rows are never cut: ``ntasks``
    threads take contiguous runs of whole rows.
    """
    dtype, pos_weight, rows, grad, g_elem, count = (key.dtype, key.pos_weight, key.rows,
                                                    key.grad, key.g_elem, key.count)
    block, constants, buffers = _block(key, True), _constants(key), _buffers(key, True)
    ty = compute_dtype(dtype).type
    scale_ty = _scale_type(key)
    block_elements = block_size(dtype)
    pw_of = _half.reader(dict(key.halves).get("pos_weight"), ty)
    g_of, row_store = _row_io(key)

    if key.pw_elem:
        @njit(inline="always")
        def spread(pw, pw_block, span, n):
            return pw  # read per element, a (1, rows * n) view like x
    else:
        @njit(inline="always")
        def spread(pw, pw_block, span, n):
            for i in range(span if pos_weight else 0):  # blocks start at a row
                pw_block[i] = pw_of(pw[i % n])
            return pw_block

    def kernel(x, z, w, pw, g, ignored, smoothing, loss_scale, grad_scale,
               rows_out, elem_out, grad_out, counts, ntasks, n):
        nrows = z.shape[1] // n
        per_block = block_elements // n
        span = per_block * n
        ignore_value = ignored[0]
        ls, gs, s_keep, s = constants(smoothing, loss_scale, grad_scale)
        for task in prange(ntasks):
            prefer_512bit_vectors()
            e, losses, kept, row_scale, pw_block = buffers(span)
            pw_block = spread(pw, pw_block, span, n)
            r_end = (task + 1) * nrows // ntasks
            for r0 in range(task * nrows // ntasks, r_end, per_block):
                block_rows = min(per_block, r_end - r0)
                for rr in range(block_rows if grad and not g_elem else 0):
                    scale = scale_ty(grad_scale * np.float64(g_of(g[r0 + rr, 0])))
                    for i in range(np.uint64(rr * n), np.uint64(rr * n + n)):
                        row_scale[i] = scale
                block(x, z, w, pw_block, g, row_scale, 0, r0 * n, block_rows * n, ignore_value,
                      ls, gs, s_keep, s, e, losses, kept, elem_out, grad_out)
                for rr in range(block_rows if rows or count else 0):
                    if rows:
                        rows_out[r0 + rr] = row_store(
                            loss_scale * _block_sum(losses, rr * n, rr * n + n))
                    if count:
                        counts[r0 + rr] = np.int64(_block_sum(kept, rr * n, rr * n + n))

    return kernel
