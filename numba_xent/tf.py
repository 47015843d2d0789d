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
from ._dispatch import backend
from ._plan import CONSTANT, ELEM, NONZERO_WEIGHTS, TOTAL, WEIGHT_SUM, Divisor, Plan
from ._runner import run
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
    return run(*_plan(backend, multi_class_labels, logits, weights, label_smoothing, reduction))


def sigmoid_cross_entropy_grad(
    multi_class_labels: ArrayLike,
    logits: ArrayLike,
    grad_loss: ArrayLike,
    weights: ArrayLike = 1.0,
    label_smoothing: float = 0,
    reduction: str = Reduction.SUM_BY_NONZERO_WEIGHTS,
) -> Array:
    """``d(loss)/d(logits)`` scaled by ``grad_loss`` (the loss's shape); shape of logits."""
    return run(*_plan(backend, multi_class_labels, logits, weights, label_smoothing, reduction,
                      grad_loss=grad_loss, want_loss=False))


def _plan(pick, multi_class_labels, logits, weights=1.0, label_smoothing=0,
          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS, *, grad_loss=None, want_loss=True):
    labels = multi_class_labels
    for name, value in (("multi_class_labels", labels), ("logits", logits),
                        ("weights", weights)):
        if value is None:
            raise ValueError(f"{name} must not be None")
    _checks.choice("reduction", reduction, Reduction.all())
    if not isinstance(label_smoothing, numbers.Real) or isinstance(label_smoothing, bool):
        raise TypeError(f"label_smoothing must be a number, got {label_smoothing!r}")
    more = {} if want_loss else {"grad_loss": grad_loss}
    be = pick(multi_class_labels=labels, logits=logits, weights=weights, **more)
    x = _checks.logits(be, "logits", logits)
    z = _checks.real(be, "multi_class_labels", labels, x.shape)
    w = _checks.real(be, "weights", weights)
    if w.ndim == 1 and x.ndim > 1 and w.shape[0] == x.shape[0]:
        w = be.reshape(w, w.shape + (1,) * (x.ndim - 1))  # per-sample weights
    if w.ndim and (w.ndim != x.ndim or any(a not in (1, b) for a, b in zip(w.shape, x.shape))):
        raise ValueError(
            f"weights must be a scalar, of shape [batch_size] or of the logits' rank with "
            f"each axis 1 or equal to the logits' {x.shape}, got {w.shape}")
    elementwise = reduction == Reduction.NONE
    g = None
    if not want_loss:
        g = _checks.real(be, "grad_loss", grad_loss, x.shape if elementwise else ())
    d = None if elementwise else _divisor(x, w, reduction, weights)
    return be, Plan(logits, x, z, _NAMES, weights=w,
                    smoothing=float(label_smoothing) if label_smoothing > 0 else 0.0,
                    loss=(ELEM if elementwise else TOTAL) if want_loss else None,
                    loss_divisor=d, g=g, g_elem=elementwise, grad_scale=d)


_NAMES = dict(x="logits", z="multi_class_labels", weights="weights", g="grad_loss")


def _divisor(x, w, reduction, weights):
    """What the scalar reductions divide the weighted sum by (safely); 1 for SUM.

    ``weights`` as the caller passed it: the sums of a number (or a NumPy 0-d array)
    are known on the host (no pass over the weights, no count before a replay), with
    the arithmetic of an array's."""
    if reduction == Reduction.SUM:
        return Divisor("safe_div", CONSTANT, 1.0)
    if reduction == Reduction.SUM_OVER_BATCH_SIZE:
        return Divisor("safe_div", CONSTANT, x.size)
    if isinstance(weights, numbers.Real) or type(weights) is np.ndarray and weights.ndim == 0:
        per_weight = float(weights) if reduction == Reduction.MEAN else float(weights != 0)
        return Divisor("safe_div", CONSTANT, per_weight * x.size)
    # Each weight is repeated x.size / w.size times in its broadcast to x's shape.
    repeats = x.size // w.size if w.size else 0
    return Divisor("safe_div", WEIGHT_SUM if reduction == Reduction.MEAN else NONZERO_WEIGHTS,
                   repeats)
