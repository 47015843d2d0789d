"""Caffe2 / Arhat ``SigmoidCrossEntropyWithLogits`` and
``WeightedSigmoidCrossEntropyWithLogits`` with their Gradient operators.

Rows are the last axis.  For logits ``x`` and targets ``z`` of shape
``(..., n)`` the loss has shape ``x.shape[:-1]``::

    loss[r] = (1/n) sum_j w[r, j] * l(x[r, j], z[r, j])

with ``w = 1`` for the unweighted operator and, per variant,

* default:            ``l = softplus(x) - x z = max(x, 0) - x z + log1p(exp(-|x|))``
* ``log_d_trick``:    ``l = -(2z - 1) log(sigmoid(x))`` (Goodfellow et al. 2014)
* ``unjoined_lr_loss``: ``l = -(x z + (z - 1) x [x >= 0] - (1 - z) log1p(exp(-|x|)))``

which are Caffe2's ``-sum(forward) / n``.  The gradient operators return, for
``grad_out`` of the loss's shape::

    grad_logits[r, j] = grad_out[r] / n * w[r, j] * dl/dx(x[r, j], z[r, j])

(``sigmoid(x) - z`` by default).  The ``_and_grad`` functions compute both in
one pass over the inputs; ``grad_out=None`` there means ones.

Differences from Caffe2, on purpose: ``+-inf`` logits give the mathematical
limits (``x = +inf, z = 1`` gives 0) where Caffe2's formula gives NaN; a row of
length 0 has loss 0 where Caffe2 divides 0 by 0; a 1-D input is one row (0-d
loss) and a 0-d input is a row of one element.  Logits must be float32 or
float64; targets and weights of any real dtype are converted to the logits'
dtype element by element (no copy is made, except of float16 arrays,
which Numba cannot read).  ``out`` / ``grad`` are written in
place and returned; they are checked before anything is written.
"""

import functools

from . import _checks
from ._dispatch import backend
from ._formulas import LOG_D_TRICK, PLAIN, UNJOINED
from ._plan import CONSTANT, ROWS, Divisor, Plan
from ._runner import run
from ._types import Array, ArrayLike


def sigmoid_cross_entropy_with_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    log_d_trick: bool = False,
    unjoined_lr_loss: bool = False,
    out: Array | None = None,
) -> Array:
    """Per-row mean sigmoid cross-entropy; shape ``logits.shape[:-1]``."""
    return run(*_plan(backend, logits, targets, log_d_trick=log_d_trick,
                      unjoined_lr_loss=unjoined_lr_loss, out=out))


def sigmoid_cross_entropy_with_logits_grad(
    grad_out: ArrayLike,
    logits: ArrayLike,
    targets: ArrayLike,
    *,
    log_d_trick: bool = False,
    unjoined_lr_loss: bool = False,
    out: Array | None = None,
) -> Array:
    """Gradient w.r.t. the logits for ``grad_out`` of the loss's shape; shape of logits."""
    return run(*_plan(backend, logits, targets, grad_out=grad_out, log_d_trick=log_d_trick,
                      unjoined_lr_loss=unjoined_lr_loss, grad=out, want_loss=False))


def sigmoid_cross_entropy_with_logits_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    grad_out: ArrayLike | None = None,
    *,
    log_d_trick: bool = False,
    unjoined_lr_loss: bool = False,
    out: Array | None = None,
    grad: Array | None = None,
) -> tuple[Array, Array]:
    """``(loss, grad_logits)`` in one pass; ``grad_out=None`` means ones."""
    return run(*_plan(backend, logits, targets, grad_out=grad_out, log_d_trick=log_d_trick,
                      unjoined_lr_loss=unjoined_lr_loss, out=out, grad=grad, want_grad=True))


def weighted_sigmoid_cross_entropy_with_logits(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike,
    *,
    out: Array | None = None,
) -> Array:
    """Per-row mean of ``weights * (softplus(x) - x z)``; shape ``logits.shape[:-1]``."""
    return run(*_plan(backend, logits, targets, weights, weighted=True, out=out))


def weighted_sigmoid_cross_entropy_with_logits_grad(
    grad_out: ArrayLike,
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike,
    *,
    out: Array | None = None,
) -> Array:
    """``grad_out[r] / n * weights * (sigmoid(x) - z)``; shape of logits."""
    return run(*_plan(backend, logits, targets, weights, grad_out, weighted=True, grad=out,
                      want_loss=False))


def weighted_sigmoid_cross_entropy_with_logits_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike,
    grad_out: ArrayLike | None = None,
    *,
    out: Array | None = None,
    grad: Array | None = None,
) -> tuple[Array, Array]:
    """``(loss, grad_logits)`` of the weighted operator in one pass."""
    return run(*_plan(backend, logits, targets, weights, grad_out, weighted=True, out=out,
                      grad=grad, want_grad=True))


_NAMES = dict(x="logits", z="targets", weights="weights", g="grad_out", grad="grad")
# The gradient-only operators call their gradient buffer ``out``.
_GRAD_NAMES = dict(_NAMES, grad="out")


def _variant(log_d_trick, unjoined_lr_loss):
    if log_d_trick is False and unjoined_lr_loss is False:
        return PLAIN  # the common case, checked
    log_d_trick = _checks.flag("log_d_trick", log_d_trick)
    unjoined_lr_loss = _checks.flag("unjoined_lr_loss", unjoined_lr_loss)
    if log_d_trick and unjoined_lr_loss:
        raise ValueError("log_d_trick and unjoined_lr_loss cannot both be True")
    return LOG_D_TRICK if log_d_trick else UNJOINED if unjoined_lr_loss else PLAIN


@functools.lru_cache(maxsize=256)
def _mean(n):
    return Divisor("safe_div", CONSTANT, n)


def _plan(pick, logits, targets, weights=None, grad_out=None, log_d_trick=False,
          unjoined_lr_loss=False, *, out=None, grad=None, weighted=False, want_loss=True,
          want_grad=None):
    """``(backend, Plan)``; ``want_grad`` None: when ``grad_out`` is given."""
    if not want_loss and grad_out is None:
        raise ValueError("grad_out must be an array of the loss's shape, got None")
    if weighted and weights is None:
        raise ValueError("weights must be an array of the logits' shape, got None")
    variant = _variant(log_d_trick, unjoined_lr_loss)
    want_grad = grad_out is not None if want_grad is None else want_grad
    be = pick(logits=logits, targets=targets, weights=weights, grad_out=grad_out,
              out=out, grad=grad)
    x = _checks.logits(be, "logits", logits)
    z = _checks.real(be, "targets", targets, x.shape)
    w = None if weights is None else _checks.real(be, "weights", weights, x.shape)
    g = None
    if want_grad:
        g = 1.0 if grad_out is None else _checks.real(be, "grad_out", grad_out, x.shape[:-1])
    n = _mean(x.shape[-1] if x.ndim else 1)  # loss[r] = sum_j l / n
    return be, Plan(logits, x, z, _NAMES if want_loss else _GRAD_NAMES, weights=w,
                    variant=variant,
                    loss=ROWS if want_loss else None, loss_scale=n, g=g, grad_scale=n,
                    out=out, grad=grad)
