"""The general API: every option of the core, in PyTorch/JAX terms.

For logits ``x`` and targets ``z`` of one shape ``(..., n)``, per element::

    z' = z (1 - label_smoothing) + label_smoothing / 2
    l  = w * ((1 - z') x + (1 + (pos_weight - 1) z') log(1 + exp(-x)))
       = w * (max(x, 0) - x z' + log1p(exp(-|x|)))          when pos_weight = 1
    dl/dx = w * ((1 + (pos_weight - 1) z') sigmoid(x) - pos_weight z')

which is ``torch.nn.functional.binary_cross_entropy_with_logits(x, z', w,
pos_weight=pos_weight)`` elementwise, computed stably (no overflow, exact
limits at +-inf).  ``weights`` and ``pos_weight`` broadcast to ``x``'s shape
(NumPy rules, as in PyTorch: ``(n,)``, ``(1, n)``, ``(N, 1)``, ``(N, n)``, ...; a
broadcast is read in place, never copied).  Elements whose
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

import functools
import numbers

from . import _checks
from ._dispatch import backend
from ._formulas import PLAIN
from ._plan import CONSTANT, ELEM, KEPT, KEPT_ROWS, ROW_SUMS, TOTAL, Divisor, Plan
from ._runner import run
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
    return run(*_plan(backend, logits, targets, weights, pos_weight, label_smoothing,
                      ignore_index, reduction, out=out))


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
    return run(*_plan(backend, logits, targets, weights, pos_weight, label_smoothing,
                      ignore_index, reduction, grad_output=grad_output, grad=out,
                      want_loss=False, want_grad=True))


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
    return run(*_plan(backend, logits, targets, weights, pos_weight, label_smoothing,
                      ignore_index, reduction, grad_output=grad_output, out=out, grad=grad,
                      want_grad=True))


def _plan(pick, logits, targets, weights, pos_weight, label_smoothing, ignore_index,
          reduction, *, grad_output=None, out=None, grad=None, want_loss=True,
          want_grad=False, variant=PLAIN):
    """The plan of a general-API call; ``variant``: the loss (``_formulas``: the plain
    BCE, or a :class:`~numba_xent._formulas.Focal` or ``Asymmetric`` one)."""
    loss = _LOSSES.get(reduction) if type(reduction) is str else None
    if loss is None:
        _checks.choice("reduction", reduction, REDUCTIONS)  # raises
    if type(label_smoothing) not in (float, int) and not isinstance(label_smoothing,
                                                                      numbers.Real) or \
            not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
    if ignore_index is not None and (not isinstance(ignore_index, numbers.Real)
                                     or isinstance(ignore_index, bool)):
        raise TypeError(f"ignore_index must be a number or None, got {ignore_index!r}")
    be = pick(logits=logits, targets=targets, weights=weights, pos_weight=pos_weight,
              grad_output=grad_output, out=out, grad=grad)
    x = _checks.logits(be, "logits", logits)
    z = _checks.real(be, "targets", targets, x.shape)
    lead, n = (x.shape[:-1], x.shape[-1]) if x.ndim else ((), 1)
    w = None if weights is None else _checks.broadcastable(be, "weights", weights, x.shape)
    pw = None if pos_weight is None else _checks.broadcastable(be, "pos_weight", pos_weight,
                                                               x.shape)
    g = None
    if want_grad:
        shape = {ELEM: x.shape, ROW_SUMS: lead}.get(loss, ())
        g = 1.0 if grad_output is None else _checks.real(be, "grad_output", grad_output,
                                                          shape)
    # A mean over no element is NaN (as in PyTorch); its gradient is 0.
    divisor = g_divisor = None
    if reduction in ("mean", "row_mean"):
        if ignore_index is not None:
            by, value = KEPT if reduction == "mean" else KEPT_ROWS, 1.0
        else:
            by, value = CONSTANT, x.size if reduction == "mean" else n
        divisor, g_divisor = _means(by, value)
    return be, Plan(logits, x, z, _NAMES if want_loss else _GRAD_NAMES, weights=w,
                    variant=variant,
                    pos_weight=pw, smoothing=float(label_smoothing), ignore_value=ignore_index,
                    loss=loss if want_loss else None, loss_divisor=divisor, g=g,
                    g_elem=loss == ELEM, g_divisor=g_divisor, out=out, grad=grad)


@functools.lru_cache(maxsize=256)
def _means(by, value):
    """The divisors of a mean's loss and of its gradient (a gradient over none is 0)."""
    return Divisor("div", by, value), Divisor("div_at_least_one", by, value)


_LOSSES = {"none": ELEM, "sum": TOTAL, "mean": TOTAL, "row_sum": ROW_SUMS, "row_mean": ROW_SUMS}
_NAMES = dict(x="logits", z="targets", weights="weights", pos_weight="pos_weight",
              g="grad_output", grad="grad")
# The gradient-only function calls its gradient buffer ``out``.
_GRAD_NAMES = dict(_NAMES, grad="out")
