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

The epilogue is part of the kernel (:class:`Epilogue`, compile-time): the
loss scale, the gradient scale and the upstream gradient are each
``op(a * fa, b * fb)`` of two operands, each an array (1 element, or one per
row) times a number, so that a host number needs no device copy and a device
divisor (a count, a weight sum) no extra launch; row sums become
``loss_scale * sum`` and are stored in the output's dtype; the sum over all
rows becomes ``op(loss_scale * sum, D)``, and so does each row's sum where
there is a divisor per row.  Partial sums (rows cut into chunks, one total per
block) are added up by the grid's last block (``groups.last_to_arrive``): a call
is one launch.
"""


from typing import NamedTuple

import numpy as np
from numba import cuda, float64, njit, types

from .._formulas import element_function
from .. import _half
from .._half import compute_dtype
from ..cpu.vecmath import _madd, for_dtype, log_for_dtype, true_divide
from . import groups
from .arrays import SIMULATOR
from .epilogue import operation
from .groups import UNROLL, element_of, jit, row_of

if SIMULATOR:  # the element body runs as CPU code there, where libdevice is not
    approx_divide = njit(inline="always")(lambda a, b: a / b)
else:
    from numba.cuda import libdevice

    approx_divide = libdevice.fast_fdividef

_KERNELS = {}


class Epilogue(NamedTuple):
    """The compile-time form of a kernel's scales and finish (see the module docstring).

    Each ``*_op`` is one of ``epilogue.BINARY_OPS``, or None: the first operand alone.
    """

    loss_op: str | None = None  # loss_scale = op(la, lb)
    grad_op: str | None = None  # grad_scale = op(ga, gb)
    g_op: str | None = None  # the upstream gradient of row r: op(g[r], gd[r])
    total: bool = False  # rows_out[0] = the finish of the sum over all rows
    # The sums' finish: rows_out[r] = op(loss_scale * sum_r, D_r), or rows_out[0] of the total
    finish_op: str | None = None
    by_kept: bool = False  # D = this pass's count of kept elements (else fd[r] * fdf)


PLAIN = Epilogue()


def sums_kept(key, epi):
    """Whether the kernel for ``key`` and ``epi`` sums the kept elements over the
    blocks (the count pass's result, or a total's divisor): the launch allocates the
    block totals and ``kept_total`` for it."""
    read_x = key.rows or key.elem or key.grad
    return key.count and ((epi.total and key.rows) or not read_x)


def get(key, epilogue, shuffle):
    """The kernel for ``key`` (a ``numba_xent._core.Kernel``) and ``epilogue``, built on
    first use.  ``shuffle``: reduce with warp shuffles (a GPU) or in shared memory (the
    simulator).
    """
    kernel = _KERNELS.get((key, epilogue, shuffle))
    if kernel is None:
        kernel = _KERNELS[key, epilogue, shuffle] = jit(build(key, epilogue, shuffle))
    return kernel


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
def divide32(a, b):
    """``a / b`` for float32, ``b`` finite and positive (not subnormal), within 1 ulp.

    For the focal and asymmetric losses' ratios and ``log_unit``: with ptxas's IEEE
    division subroutine their fused float32 kernels took 66 registers.  The
    approximate reciprocal ``y`` (2 ulp), the quotient ``q = a y`` and one correction
    by its exact residual ``a - b q`` (an FMA).
    """
    y = approx_divide(_ONE32, b)
    q = a * y
    return _madd(_madd(-b, q, a), y, q)


_ONE32 = np.float32(1.0)


@njit(inline="always")
def logistic64(u, one):
    """``u / (1 + u)`` for a float64 ``u`` (an IEEE division: there is no float64
    approximate one)."""
    return u / (one + u)


def unroll(key, epi=PLAIN):
    """Elements a thread of the kernel for ``key`` and ``epi`` loads before using any
    (its UNROLL).

    UNROLL of each input in flight keep the memory busy; a kernel that streams
    more than six arrays per element (the fused elementwise one with weights and
    pos_weight) has enough bytes in flight with half as many, and its registers
    then stay within 64 (for float32), so that 256-thread blocks run at 50%
    occupancy or more.  A float64 division in the epilogue (the upstream
    gradient's, the total's: an IEEE division is a subroutine of ptxas) costs
    about as many registers as a stream: the fused kernel with weights,
    pos_weight and both divisions takes 70 at UNROLL 4, 56 at 2.  Counting the
    kept elements of the rows it sums (a second float64 accumulator, the mask,
    the chunks' kept partials) costs about three: the kernel with weights,
    pos_weight and smoothing takes 69 at UNROLL 4.  A per-element pos_weight
    counts twice (its row's address too): the fused elementwise kernel with
    weights and one took 70 at UNROLL 4.
    """
    # The focal and asymmetric losses' element bodies hold several streams' worth more
    # per element (the power, the ratio, their operands): fused, elementwise, weighted
    # and with pos_weight, float32 takes 48-55 registers at UNROLL 1; their gradient
    # alone 56-64 at UNROLL 4.  In float64 a body of four (ASL's gradient) was not
    # unrolled: its arrays stayed in local memory (an 80-byte stack frame).
    focusing = 0 if type(key.variant) is int else 3
    streams = (2 + key.weighted + key.pos_weight + key.pw_elem + (key.grad and key.g_elem)
               + key.elem + key.grad + focusing)
    divisions = (epi.g_op is not None) + (epi.finish_op is not None)
    counted_rows = key.count and key.rows
    load = streams + divisions + 3 * counted_rows
    if focusing and (load > 7 or key.dtype == "float64"):
        return UNROLL // 4
    return UNROLL if load <= 6 else UNROLL // 2


def _pos_weight_reader(key, pw_of):
    """``pw_at(pw, r, j)``: element ``(r, j)``'s pos_weight, per element or per column
    (chosen here: each reads an array of its own rank)."""
    if key.pw_elem:
        return groups.device_function(lambda pw, r, j: pw_of(pw[r, j]))
    return groups.device_function(lambda pw, r, j: pw_of(pw[j]))


def build(key, epi, shuffle):
    """The Python function of the kernel for ``key`` and ``epi`` (``cuda.jit`` compiles it)."""
    (variant, dtype, weighted, pos_weight, ignore, smooth, rows, elem, grad, g_elem,
     count) = key[:11]
    ty = compute_dtype(dtype).type  # halves: read and stored as their bits (_half)
    halves = dict(key.halves)
    x_of, z_of, w_of, pw_of, g_of = (_half.reader(k, ty) for k in (
        dtype, halves.get("z"), halves.get("weights"), halves.get("pos_weight"),
        halves.get("g")))
    g_row_of = _half.reader(halves.get("g"), np.float64)
    z_half = "z" in halves  # compared as the float32 it widens to, not as its bits
    pw_at = _pos_weight_reader(key, pw_of)
    store, row_store = _half.writer(dtype), _half.writer(halves.get("rows"))
    exp, log1p = for_dtype(ty, inline=True)
    logistic, divide = (logistic64, true_divide) if ty is np.float64 else (logistic32, divide32)
    element = element_function(key, log1p, logistic, exp,
                               log_for_dtype(ty, divide, inline=True), divide)
    f64 = np.float64
    read_x = rows or elem or grad
    group_sum = groups.sum_shuffle if shuffle else groups.sum_shared
    block_total, column_total, chunks_total = groups.finishing(shuffle)
    last_to_arrive = groups.last_to_arrive
    sums = rows or count  # the kernel reduces rows
    scratch = groups.scratch_size(shuffle) if sums else 1
    U = unroll(key, epi)
    boolean = types.boolean
    total = epi.total and rows
    per_row = rows and not epi.total
    sum_kept = sums_kept(key, epi)
    loss_op, grad_op, g_op = (operation(o) for o in (epi.loss_op, epi.grad_op, epi.g_op))
    finish_op = operation(epi.finish_op)
    g_divided, divided, by_kept = epi.g_op is not None, epi.finish_op is not None, epi.by_kept

    @groups.device_function
    def finished(value, kept, fd, fdf, i):
        """What the sum ``value`` of row ``i`` (of all rows: ``i = 0``), whose kept
        elements are ``kept``, is stored as."""
        if not divided:
            return value
        return finish_op(value, kept if by_kept else f64(fd[i]) * fdf)

    def kernel(x, z, w, pw, g, gfa, gd, gfb, ignore_value, smoothing, la, lfa, lb, lfb,
               ga, gsfa, gb, gsfb, fd, fdf, rows_out, elem_out, grad_out, counts, kept_total,
               partial, kept_partial, totals, ticket, group, shift, chunk, fgroup, fshift):
        nrows, n = z.shape
        c = cuda.blockIdx.y  # the chunk of every row this block reads
        start = c * chunk
        stop = min(n, start + chunk)
        tid = cuda.threadIdx.x
        per_block = cuda.blockDim.x >> shift
        chunked = cuda.gridDim.y > 1
        sh = cuda.shared.array(scratch, float64)
        xs = cuda.local.array(U, ty)
        zs = cuda.local.array(U, ty)
        ks = cuda.local.array(U, boolean)
        ws = cuda.local.array(U, ty)
        ps = cuda.local.array(U, ty)
        gs = cuda.local.array(U, ty)
        loss_scale = loss_op(la[0] * lfa, lb[0] * lfb)
        grad_scale = grad_op(ga[0] * gsfa, gb[0] * gsfb)
        ls = ty(loss_scale)
        g_scale = ty(grad_scale)
        one = ty(1.0)
        s = ty(smoothing)
        s_keep = one - s
        block_acc = 0.0
        block_kept = 0.0
        first = cuda.blockIdx.x * per_block
        while first < nrows:  # the same trip count for the whole block
            r, lane = row_of(first, tid, group, shift)
            first += cuda.gridDim.x * per_block
            live = r < nrows
            acc = 0.0
            kept = 0.0
            if live:
                g_row = 0.0
                if grad and not g_elem:
                    g_row = g_row_of(g[r, 0]) * gfa
                    if g_divided:
                        g_row = g_op(g_row, f64(gd[r, 0]) * gfb)
                    g_row *= grad_scale
                step = 0
                while element_of(start, lane, step, 0, group, U) < stop:
                    for u in range(U):  # loads first: UNROLL of each input in flight
                        j = element_of(start, lane, step, u, group, U)
                        if j < stop:
                            z_raw = z[r, j]
                            z_u = z_of(z_raw)
                            ks[u] = (z_u if z_half else z_raw) != ignore_value if ignore \
                                else True
                            zs[u] = z_u
                            if read_x:
                                xs[u] = x_of(x[r, j])
                                ws[u] = w_of(w[r, j]) if weighted else one
                                ps[u] = pw_at(pw, r, j) if pos_weight else one
                            if grad and g_elem:
                                gs[u] = g_of(g[r, j])
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
                                    elem_out[r, j] = store(ls * value)
                                if grad:
                                    grad_out[r, j] = store(dgrad)
                    step += 1
            if rows:
                acc = group_sum(acc, sh, lane, group)
            if count:
                kept = group_sum(kept, sh, lane, group)
            if sums and live and lane == 0:
                if total:
                    block_acc += acc
                if sum_kept:
                    block_kept += kept
                if chunked:  # a chunk of a row: added up by the last block
                    if per_row:
                        partial[r, c] = acc
                    if count:
                        kept_partial[r, c] = kept
                else:
                    if per_row:
                        rows_out[r] = row_store(finished(loss_scale * acc, kept, fd, fdf, r))
                    if count:
                        counts[r] = np.int64(kept)
        if sums and (total or sum_kept or chunked):
            # The block's totals (of the whole array: the loss's when it is summed, the
            # kept count's when counted), then the last block adds up what the others left.
            if total:
                block_acc = block_total(block_acc, sh)
            if sum_kept:
                block_kept = block_total(block_kept, sh)
            if tid == 0:
                b = cuda.blockIdx.y * cuda.gridDim.x + cuda.blockIdx.x
                totals[b, 0] = block_acc
                totals[b, 1] = block_kept
            if last_to_arrive(ticket, sh):
                if chunked and (per_row or count):
                    r0 = 0
                    while r0 < nrows:  # the same trip count for the whole block
                        r, lane = row_of(r0, tid, fgroup, fshift)
                        r0 += cuda.blockDim.x >> fshift
                        acc = chunks_total(partial, r, lane, fgroup, sh) if per_row else 0.0
                        kept = chunks_total(kept_partial, r, lane, fgroup, sh) if count else 0.0
                        if r < nrows and lane == 0:
                            if per_row:
                                rows_out[r] = row_store(
                                    finished(loss_scale * acc, kept, fd, fdf, r))
                            if count:
                                counts[r] = np.int64(kept)
                acc = column_total(totals, 0, sh) if total else 0.0
                kept = column_total(totals, 1, sh) if sum_kept else 0.0
                if tid == 0:
                    if total:
                        rows_out[0] = row_store(finished(loss_scale * acc, kept, fd, fdf, 0))
                    if sum_kept:
                        kept_total[0] = kept

    return kernel
