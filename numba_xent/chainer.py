"""chainer's ``F.sigmoid_cross_entropy`` and its gradient.

For logits ``x`` and integer labels ``t`` of the same shape (any rank), with
``t == -1`` marking an ignored element::

    l = max(x, 0) - x t + log1p(exp(-|x|))      (0 where t == -1)

* ``reduce='no'``: ``l`` itself, shape of ``x``.
* ``reduce='mean'``: ``sum(l) / D`` as a 0-d array, ``D = max(1, #{t != -1})``
  with ``normalize=True``, else ``D = max(1, len(x))`` (the batch size).

The gradient ``gx = gy * (sigmoid(x) - t) / D`` (elementwise ``gy`` of ``x``'s
shape for ``'no'``, a scalar for ``'mean'``) is 0 where ``t == -1``.

Labels other than -1, 0 and 1 are not rejected: they enter the formula as they
are (chainer does the same), e.g. ``t = 2`` gives ``softplus(x) - 2x``.
"""

import numpy as np

from . import _checks
from ._core import evaluate
from ._dispatch import backend
from ._types import Array, ArrayLike

IGNORE = -1


def sigmoid_cross_entropy(
    x: ArrayLike,
    t: ArrayLike,
    normalize: bool = True,
    reduce: str = "mean",
) -> Array:
    """The loss: 0-d array for ``reduce='mean'``, shape of ``x`` for ``'no'``."""
    like = x
    be, x, t, normalize = _args(x, t, normalize, reduce)
    if reduce == "no":
        loss = be.empty(x.shape, x.dtype, like=like)
        evaluate(be, x, t, ignore_value=IGNORE, elem_out=loss)
        return loss
    row_sums = be.empty(x.shape[:-1], np.float64)
    counts = evaluate(be, x, t, ignore_value=IGNORE, rows_out=row_sums, count=normalize)
    mean = be.binary("div_at_least_one", be.total(row_sums), _divisor(be, x, counts))
    return be.wrap(be.cast(mean, x.dtype), like)


def sigmoid_cross_entropy_grad(
    x: ArrayLike,
    t: ArrayLike,
    gy: ArrayLike,
    normalize: bool = True,
    reduce: str = "mean",
) -> Array:
    """``d(loss)/dx`` scaled by ``gy`` (the loss's shape); shape of ``x``."""
    like = x
    be, x, t, normalize = _args(x, t, normalize, reduce, gy=gy)
    shape = x.shape if reduce == "no" else ()
    gy = _checks.real(be, "gy", gy, shape, x.dtype)
    gx = be.empty(x.shape, x.dtype, like=like)
    if reduce == "no":
        evaluate(be, x, t, ignore_value=IGNORE, g_elem=gy, grad_out=gx)
        return gx
    counts = evaluate(be, x, t, ignore_value=IGNORE, count=True) if normalize else None
    g_row = be.binary("div_at_least_one", gy, _divisor(be, x, counts))
    evaluate(be, x, t, ignore_value=IGNORE, g_row=g_row, grad_out=gx)
    return gx


def _args(x, t, normalize, reduce, **more):
    _checks.choice("reduce", reduce, ("mean", "no"))
    normalize = _checks.flag("normalize", normalize)
    be = backend(x=x, t=t, **more)
    x = _checks.logits(be, "x", x)
    t = _checks.real(be, "t", t, x.shape)
    if t.dtype.kind not in "biu":
        raise TypeError(f"t must be an integer array of labels -1, 0 or 1, got dtype {t.dtype}")
    return be, x, t, normalize


def _divisor(be, x, counts):
    """The number of kept elements, or the batch size (the caller takes it at least 1)."""
    if counts is not None:
        return be.total(counts)
    return x.shape[0] if x.ndim else 1
