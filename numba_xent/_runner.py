"""The runner: executes a :class:`numba_xent._plan.Plan` on a backend.

In order: the caller's buffers are checked (before anything is written), the
kept elements are counted where a divisor needs them before the kernel, the
divisors and scales are formed, results are allocated, the fused kernel runs
once (counting there too when only the loss's divisor needs the count), and
the loss's sums are divided and cast.  Divisors made of host numbers are
computed on the host (no device launch); the others where the arrays live.
"""

import math
import numbers

import numpy as np

from . import _checks
from ._core import evaluate
from ._plan import CONSTANT, COUNTED, ELEM, KEPT, KEPT_ROWS, ROW_SUMS, ROWS, WEIGHT_SUM

_ROLES = ("x", "z", "weights", "pos_weight", "g")


def run(be, p):
    """The results ``p`` asks for: the loss, the gradient, or ``(loss, gradient)``."""
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
            g = _apply(be, d.op, g, _divisor(be, p, d, counts))
        if p.g_elem:
            g_elem = g
        else:
            g_row = g
        grad_scale = _scale(be, p, p.grad_scale, counts)
        if grad is None:
            grad = be.empty(x.shape, x.dtype, like=p.like)
    loss = row_sums = None
    if want_loss:
        if p.loss in (ELEM, ROWS):
            loss = be.empty(p.loss_shape(), x.dtype, like=p.like) if out is None else out
        else:
            row_sums = be.empty(x.shape[:-1], np.float64)
    kept = evaluate(
        be, x, p.z, variant=p.variant, weights=p.weights, pos_weight=p.pos_weight,
        ignore_value=p.ignore_value, smoothing=p.smoothing, g_row=g_row, g_elem=g_elem,
        loss_scale=_scale(be, p, p.loss_scale, counts) if want_loss else 1.0,
        grad_scale=grad_scale, rows_out=loss if p.loss == ROWS else row_sums,
        elem_out=loss if p.loss == ELEM else None, grad_out=grad if want_grad else None,
        count=row_sums is not None and counts is None and _counted(p.loss_divisor))
    if row_sums is not None:
        loss = _finish(be, p, row_sums, counts if kept is None else kept, out)
    if not want_loss:
        return grad
    return (loss, grad) if want_grad else loss


def _finish(be, p, row_sums, counts, out):
    """A ROW_SUMS / TOTAL loss from the float64 row sums: divided, cast (or written to out)."""
    value = row_sums if p.loss == ROW_SUMS else be.total(row_sums)
    if p.loss_divisor is not None:
        value = _apply(be, p.loss_divisor.op, value, _divisor(be, p, p.loss_divisor, counts))
    if not p.cast:
        return value
    if out is None:
        return be.wrap(be.cast(value, p.x.dtype), p.like)
    be.copy_into(out, value)
    return out


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
    """The value of divisor ``d``: a number, or an array of the backend."""
    if d.by == CONSTANT:
        return d.value
    if d.by == KEPT:
        return be.total(counts)
    if d.by == KEPT_ROWS:
        return counts
    per_weight = be.total(p.weights) if d.by == WEIGHT_SUM else be.count_nonzero(p.weights)
    return _apply(be, "mul", per_weight, d.value)


def _scale(be, p, d, counts):
    """A kernel's scale ``op(1, D)`` (1 where there is no divisor)."""
    if d is None:
        return 1.0
    if d.by == CONSTANT and type(d.value) in (int, float):
        return _host_binary(d.op, 1.0, float(d.value))
    return _apply(be, d.op, 1.0, _divisor(be, p, d, counts))


def _apply(be, op, a, b):
    """``op(a, b)`` in float64: on the host when both are host numbers."""
    if _host(a) and _host(b):
        return _host_binary(op, float(a), float(b))
    return be.binary(op, a, b)


def _host_binary(op, a, b):
    """The backends' ``binary`` on two Python floats (the same IEEE float64 results)."""
    if op == "mul":
        return a * b
    if op == "div_at_least_one":
        return a / (b if b >= 1.0 or b != b else 1.0)
    if b == 0:
        if op == "safe_div":
            return 0.0
        return math.nan if a != a or a == 0 else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _host(v):
    t = type(v)
    return t in _NUMBERS or (t is np.ndarray and v.ndim == 0) or (
        t is not np.ndarray and isinstance(v, (numbers.Number, np.generic)))


_NUMBERS = {float, int, np.float64, np.float32}
