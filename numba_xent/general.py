"""The general API: every option of the core, in PyTorch/JAX terms.

For logits ``x`` and targets ``z`` of one shape ``(..., n)``, per element::

    z' = z (1 - label_smoothing) + label_smoothing / 2
    l  = w * ((1 - z') x + (1 + (pos_weight - 1) z') log(1 + exp(-x)))
       = w * (max(x, 0) - x z' + log1p(exp(-|x|)))          when pos_weight = 1
    dl/dx = w * ((1 + (pos_weight - 1) z') sigmoid(x) - pos_weight z')

which is ``torch.nn.functional.binary_cross_entropy_with_logits(x, z', w,
pos_weight=pos_weight)`` elementwise, computed stably (no overflow, exact
limits at +-inf).  ``weights`` broadcasts to ``x``'s shape (NumPy rules) and
``pos_weight`` along the last axis (a scalar or shape ``(n,)``).  Elements whose
target equals ``ignore_index`` give 0 loss and 0 gradient and are not counted.

``reduction``:

* ``'none'``: ``l``, shape of ``x``
* ``'sum'``: ``sum(l)``, 0-d
* ``'mean'``: ``sum(l) / N``, 0-d, N = the number of elements (not ignored)
* ``'row_sum'``: ``sum_j l[..., j]``, shape ``x.shape[:-1]``
* ``'row_mean'``: ``row_sum / N_row``, N_row = the row's elements (not ignored)

As in PyTorch, the mean with weights is the plain mean of the weighted losses
(not divided by the sum of the weights), and a mean over no element is NaN.
The gradient functions take ``grad_output`` (the loss's shape; None means ones)
and return ``grad_output * d(loss)/dx``, 0 for ignored elements.
"""

import numbers

import numpy as np

from . import _checks
from ._core import evaluate
from ._dispatch import backend
from ._types import Array, ArrayLike

REDUCTIONS = ("none", "sum", "mean", "row_sum", "row_mean")


def sigmoid_cross_entropy(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
    reduction: str = "mean",
    out: Array | None = None,
) -> Array:
    """The loss; its shape depends on ``reduction`` (see the module docstring)."""
    return _run(logits, targets, weights, pos_weight, label_smoothing, ignore_index,
                reduction, out=out, want_grad=False)[0]


def sigmoid_cross_entropy_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    grad_output: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
    reduction: str = "mean",
    out: Array | None = None,
) -> Array:
    """``grad_output * d(loss)/d(logits)``, shape of ``logits``."""
    return _run(logits, targets, weights, pos_weight, label_smoothing, ignore_index,
                reduction, grad_output=grad_output, grad=out, want_loss=False)[1]


def sigmoid_cross_entropy_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    grad_output: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
    reduction: str = "mean",
    out: Array | None = None,
    grad: Array | None = None,
) -> tuple[Array, Array]:
    """``(loss, grad_output * d(loss)/d(logits))``, reading each input once."""
    return _run(logits, targets, weights, pos_weight, label_smoothing, ignore_index,
                reduction, grad_output=grad_output, out=out, grad=grad)


def _run(logits, targets, weights, pos_weight, label_smoothing, ignore_index, reduction, *,
         grad_output=None, out=None, grad=None, want_loss=True, want_grad=True):
    _checks.choice("reduction", reduction, REDUCTIONS)
    if not isinstance(label_smoothing, numbers.Real) or not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    if ignore_index is not None and (not isinstance(ignore_index, numbers.Real)
                                     or isinstance(ignore_index, bool)):
        raise TypeError(f"ignore_index must be a number or None, got {ignore_index!r}")
    be = backend(logits=logits, targets=targets, weights=weights, pos_weight=pos_weight,
                 grad_output=grad_output, out=out, grad=grad)
    x = _checks.logits(be, "logits", logits)
    z = _checks.real(be, "targets", targets, x.shape, x.dtype)
    lead, n = (x.shape[:-1], x.shape[-1]) if x.ndim else ((), 1)
    w = None if weights is None else _checks.broadcastable(be, "weights", weights, x.shape, x.dtype)
    pw = None if pos_weight is None else _checks.broadcastable(be, "pos_weight", pos_weight, (n,),
                                                        x.dtype)
    loss_shape = {"none": x.shape, "row_sum": lead, "row_mean": lead}.get(reduction, ())
    g = None
    if want_grad:
        g = 1.0 if grad_output is None else _checks.real(be, "grad_output", grad_output,
                                                          loss_shape, x.dtype)
    inputs = {"logits": x, "targets": z, "weights": w, "pos_weight": pw, "grad_output": g}
    loss = _checks.out(be, "out", out, loss_shape, x.dtype, inputs,
                       elementwise=reduction == "none") if want_loss else None
    if want_grad:
        grad = _checks.out(be, "grad" if want_loss else "out", grad, x.shape, x.dtype, inputs,
                           elementwise=True)
    if loss is not None and grad is not None and be.overlap(loss, grad):
        raise ValueError("out and grad overlap: pass separate buffers")

    options = dict(weights=w, pos_weight=pw, smoothing=float(label_smoothing),
                   ignore_value=ignore_index)
    kept = _kept(be, x, z, reduction, ignore_index)
    if want_grad:
        grad = be.empty(x.shape, x.dtype, like=logits) if grad is None else grad
        if reduction == "none":
            options.update(g_elem=g)
        else:
            # A row or array whose elements are all ignored has gradient 0.
            options.update(g_row=g if kept is None else be.binary("div_at_least_one", g, kept))
        options.update(grad_out=grad)
    if not want_loss:
        evaluate(be, x, z, **options)
        return None, grad

    if reduction == "none":
        loss = be.empty(x.shape, x.dtype, like=logits) if loss is None else loss
        evaluate(be, x, z, elem_out=loss, **options)
        return loss, grad
    row_sums = be.empty(lead, np.float64)
    evaluate(be, x, z, rows_out=row_sums, **options)
    value = row_sums if reduction.startswith("row_") else be.total(row_sums)
    if kept is not None:
        value = be.binary("div", value, kept)  # a mean over no element is NaN, as in PyTorch
    if loss is None:
        return be.wrap(be.cast(value, x.dtype), logits), grad
    be.copy_into(loss, value)
    return loss, grad


def _kept(be, x, z, reduction, ignore_index):
    """What the means divide by (float64; None where nothing is divided)."""
    if reduction not in ("mean", "row_mean"):
        return None
    if ignore_index is None:
        return x.size if reduction == "mean" else x.shape[-1] if x.ndim else 1
    counts = evaluate(be, x, z, ignore_value=ignore_index, count=True)
    return be.total(counts) if reduction == "mean" else counts
