"""TensorFlow v1's ``tf.compat.v1.losses.sigmoid_cross_entropy`` and its gradient.

For labels ``z`` (cast to the logits' dtype and smoothed towards 1/2,
``z (1 - label_smoothing) + label_smoothing / 2`` when ``label_smoothing > 0``)
and logits ``x`` of one shape, the weighted elementwise loss is::

    L = w * (max(x, 0) - x z + log1p(exp(-|x|)))

``reduction`` (a :class:`Reduction` value) turns it into what TensorFlow's
``compute_weighted_loss`` returns, dividing with its safe division (0 when the
divisor is 0):

* ``NONE``: ``L``, shape of ``x``
* ``SUM``: ``sum(L)``
* ``MEAN``: ``sum(L) / sum(w broadcast to x's shape)``
* ``SUM_OVER_BATCH_SIZE``: ``sum(L) / x.size``
* ``SUM_BY_NONZERO_WEIGHTS``: ``sum(L) / #(w broadcast to x's shape != 0)``

Scalar reductions are 0-d arrays.  ``weights`` is a scalar, or an array of the
logits' rank whose every axis is 1 or the logits' length; beyond TensorFlow, and
as its documentation promises, a rank-1 ``weights`` of length ``batch_size``
(``x.shape[0]``) weighs each sample (TensorFlow 2 raises there).

Precision: TensorFlow casts to float32 inside ``compute_weighted_loss``, even
for float64 inputs; here float64 stays float64 throughout.
"""

import numbers

import numpy as np

from . import _checks
from ._core import evaluate
from ._dispatch import backend
from ._types import Array, ArrayLike


class Reduction:
    """The reduction names of ``tf.compat.v1.losses.Reduction``."""

    NONE = "none"
    SUM = "weighted_sum"
    MEAN = "weighted_mean"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE,
                cls.SUM_BY_NONZERO_WEIGHTS)


def sigmoid_cross_entropy(
    multi_class_labels: ArrayLike,
    logits: ArrayLike,
    weights: ArrayLike = 1.0,
    label_smoothing: float = 0,
    reduction: str = Reduction.SUM_BY_NONZERO_WEIGHTS,
) -> Array:
    """The weighted, reduced loss: shape of ``logits`` for ``NONE``, else 0-d."""
    be, x, z, w, smoothing = _args(multi_class_labels, logits, weights, label_smoothing,
                                   reduction)
    if reduction == Reduction.NONE:
        loss = be.empty(x.shape, x.dtype, like=logits)
        evaluate(be, x, z, weights=w, smoothing=smoothing, elem_out=loss)
        return loss
    row_sums = be.empty(x.shape[:-1], np.float64)
    evaluate(be, x, z, weights=w, smoothing=smoothing, rows_out=row_sums)
    loss = be.binary("safe_div", be.total(row_sums), _divisor(be, x, w, reduction))
    return be.wrap(be.cast(loss, x.dtype), logits)


def sigmoid_cross_entropy_grad(
    multi_class_labels: ArrayLike,
    logits: ArrayLike,
    grad_loss: ArrayLike,
    weights: ArrayLike = 1.0,
    label_smoothing: float = 0,
    reduction: str = Reduction.SUM_BY_NONZERO_WEIGHTS,
) -> Array:
    """``d(loss)/d(logits)`` scaled by ``grad_loss`` (the loss's shape); shape of logits."""
    be, x, z, w, smoothing = _args(multi_class_labels, logits, weights, label_smoothing,
                                   reduction, grad_loss=grad_loss)
    elementwise = reduction == Reduction.NONE
    g = _checks.real(be, "grad_loss", grad_loss, x.shape if elementwise else (), x.dtype)
    grad = be.empty(x.shape, x.dtype, like=logits)
    if elementwise:
        evaluate(be, x, z, weights=w, smoothing=smoothing, g_elem=g, grad_out=grad)
    else:
        evaluate(be, x, z, weights=w, smoothing=smoothing, g_row=g, grad_out=grad,
                 grad_scale=be.binary("safe_div", 1.0, _divisor(be, x, w, reduction)))
    return grad


def _args(labels, logits, weights, label_smoothing, reduction, **more):
    for name, value in (("multi_class_labels", labels), ("logits", logits),
                        ("weights", weights)):
        if value is None:
            raise ValueError(f"{name} must not be None")
    _checks.choice("reduction", reduction, Reduction.all())
    if not isinstance(label_smoothing, numbers.Real) or isinstance(label_smoothing, bool):
        raise TypeError(f"label_smoothing must be a number, got {label_smoothing!r}")
    be = backend(multi_class_labels=labels, logits=logits, weights=weights, **more)
    x = _checks.logits(be, "logits", logits)
    z = _checks.real(be, "multi_class_labels", labels, x.shape)
    w = _checks.real(be, "weights", weights, None, x.dtype)
    if w.ndim == 1 and x.ndim > 1 and w.shape[0] == x.shape[0]:
        w = be.reshape(w, w.shape + (1,) * (x.ndim - 1))  # per-sample weights
    if w.ndim and (w.ndim != x.ndim or any(a not in (1, b) for a, b in zip(w.shape, x.shape))):
        raise ValueError(
            f"weights must be a scalar, of shape [batch_size] or of the logits' rank with "
            f"each axis 1 or equal to the logits' {x.shape}, got {w.shape}")
    return be, x, z, w, float(label_smoothing) if label_smoothing > 0 else 0.0


def _divisor(be, x, w, reduction):
    """What the scalar reductions divide the weighted sum by; 1 for SUM."""
    if reduction == Reduction.SUM:
        return 1.0
    if reduction == Reduction.SUM_OVER_BATCH_SIZE:
        return x.size
    # Each weight is repeated x.size / w.size times in its broadcast to x's shape.
    repeats = x.size // w.size if w.size else 0
    per_weight = be.total(w) if reduction == Reduction.MEAN else be.count_nonzero(w)
    return be.binary("mul", per_weight, repeats)
