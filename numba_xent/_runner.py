"""The runner: executes a :class:`numba_xent._plan.Plan` on a backend.

In order: the caller's buffers are checked (before anything is written), the
kept elements are counted where a divisor needs them before the kernel, the
divisors and scales are formed, results are allocated, and the fused kernel
runs once: it also counts where only the loss's divisor needs the count, and
it writes the loss's sums divided and cast (``_core.Finish``).  Divisors made
of host numbers are computed on the host; the others by the backend's
``quotient`` (on the GPU, in the kernel that reads them: no launch).
"""

import numbers

import numpy as np

from . import _checks, _replay
from ._core import Finish, evaluate, quotient
from ._plan import CONSTANT, COUNTED, ELEM, KEPT, KEPT_ROWS, ROWS, TOTAL, WEIGHT_SUM

_ROLES = ("x", "z", "weights", "pos_weight", "g")


def run(be, p):
    """The results ``p`` asks for: the loss, the gradient, or ``(loss, gradient)``.

    Where the backend's kernel calls can be replayed, a plan like an earlier one
    (the same options, dtypes, shapes and strides) replays that one's kernel call
    (``numba_xent._replay``): the same results, without the planning.
    """
    if be.replays:
        return _replay.run(be, p, _run)
    return _run(be, p)


def _run(be, p):
    x = p.x
    want_loss, want_grad = p.loss is not None, p.g is not None
    out, grad = (None, None) if p.out is None and p.grad is None else _buffers(be, p)

    counts = None
    if (want_loss and _counted(p.loss_scale)) or (
            want_grad and (_counted(p.grad_scale) or _counted(p.g_divisor))):
        counts = evaluate(be, x, p.z, ignore_value=p.ignore_value, count=True)  # needed first

    g_row = g_elem = None
    grad_scale = 1.0
    if want_grad:
        g, d = p.g, p.g_divisor
        if d is not None:
            g = quotient(be, d.op, g, _divisor(be, p, d, counts))
        # A number g (torch's unit gradient, a defaulted grad_output) is one per row: as
        # g_elem it would be a broadcast array, read element by element (4x slower).
        if p.g_elem and not isinstance(g, numbers.Real):
            g_elem = g
        else:
            g_row = g
        grad_scale = _scale(be, p, p.grad_scale, counts)
        if grad is None:
            grad = be.empty(x.shape, x.dtype, like=p.like)
    loss = finish = None
    count_now = False
    if want_loss:
        loss = out if out is not None else be.empty(
            p.loss_shape(), x.dtype if p.cast or p.loss in (ELEM, ROWS) else np.float64,
            like=p.like)
        if p.loss not in (ELEM, ROWS):
            d = p.loss_divisor
            count_now = counts is None and _counted(d)
            finish = Finish(p.loss == TOTAL, None if d is None else d.op,
                            None if d is None else KEPT if count_now else
                            _divisor(be, p, d, counts), loss)
    evaluate(
        be, x, p.z, variant=p.variant, weights=p.weights, pos_weight=p.pos_weight,
        ignore_value=p.ignore_value, smoothing=p.smoothing, g_row=g_row, g_elem=g_elem,
        loss_scale=_scale(be, p, p.loss_scale, counts) if want_loss else 1.0,
        grad_scale=grad_scale, rows_out=loss if p.loss == ROWS else None,
        elem_out=loss if p.loss == ELEM else None, grad_out=grad if want_grad else None,
        count=count_now, finish=finish)
    if not want_loss:
        return grad
    return (loss, grad) if want_grad else loss


def _buffers(be, p):
    """The caller's ``out`` / ``grad``, checked before anything is written."""
    want_loss, want_grad = p.loss is not None, p.g is not None
    names = p.names
    inputs = {names[r]: getattr(p, r) for r in _ROLES if r in names}
    out = grad = None
    if want_loss:
        out = _checks.out(be, names.get("out", "out"), p.out, p.loss_shape(), p.x.dtype, inputs,
                          elementwise=p.loss == ELEM)
    if want_grad:
        grad = _checks.out(be, names.get("grad", "grad"), p.grad, p.x.shape, p.x.dtype, inputs,
                           elementwise=True)
    if out is not None and grad is not None and be.overlap(out, grad):
        raise ValueError("out and grad overlap: pass separate buffers")
    return out, grad


def _counted(d):
    return d is not None and d.by in COUNTED


def _divisor(be, p, d, counts):
    """The value of divisor ``d``: a number, an array of the backend, or its quotient."""
    if d.by == CONSTANT:
        return d.value
    if d.by == KEPT:
        return be.total(counts)
    if d.by == KEPT_ROWS:
        return counts
    per_weight = be.total(p.weights) if d.by == WEIGHT_SUM else be.count_nonzero(p.weights)
    return quotient(be, "mul", per_weight, d.value)


def _scale(be, p, d, counts):
    """A kernel's scale ``op(1, D)`` (1 where there is no divisor)."""
    if d is None:
        return 1.0
    return quotient(be, d.op, 1.0, _divisor(be, p, d, counts))
