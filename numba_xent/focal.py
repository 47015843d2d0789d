"""The sigmoid focal loss (Lin et al. 2017) on the fused core, torchvision's semantics.

For logits ``x`` and targets ``z`` in [0, 1] of one shape ``(..., n)``, per element::

    p = sigmoid(x),   1 - p_t = z (1 - p) + (1 - z) p
    alpha_t = alpha z + (1 - alpha)(1 - z)          (1 where alpha is None or negative)
    l = w * alpha_t * (1 - p_t)**gamma * BCE(x, z)

with ``BCE`` the loss of :func:`numba_xent.sigmoid_cross_entropy` (``pos_weight``
included) and ``z`` label-smoothed first (``z (1 - s) + s / 2``) where asked.  That
is ``torchvision.ops.sigmoid_focal_loss(x, z, alpha, gamma, reduction)`` elementwise,
computed stably: ``1 - p_t`` as ``sigmoid(|x|) (a + b exp(-|x|))`` (two non-negative
terms; no probability is rounded to 1 first), so the loss and its gradient are finite
for every finite ``x`` and exact at ``x = +-inf`` (``x = +inf, z = 1``: loss 0,
gradient 0), where torchvision's autograd gives NaN.  The gradient is analytic::

    dl/dx = w * alpha_t * (1 - p_t)**gamma * (BCE' + gamma * BCE * (1 - 2z) p (1 - p) / (1 - p_t))

``gamma = 0`` with ``alpha=None`` is exactly :func:`numba_xent.sigmoid_cross_entropy`.
Each ``(alpha, gamma)`` compiles a kernel of its own the first time it is used.
``reduction``, ``weights``, ``ignore_index``, ``grad_output`` and the shapes are those of
:mod:`numba_xent.general`.
"""

from . import _checks, general
from ._dispatch import backend
from ._formulas import PLAIN, Focal
from ._runner import run
from ._types import Array, ArrayLike


def sigmoid_focal_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
    reduction: str = "mean",
    out: Array | None = None,
) -> Array:
    """The focal loss; its shape depends on ``reduction`` (see :mod:`numba_xent.general`)."""
    return run(*_plan(backend, logits, targets, weights, alpha, gamma, pos_weight,
                      label_smoothing, ignore_index, reduction, out=out))


def sigmoid_focal_loss_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    grad_output: ArrayLike | None = None,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
    reduction: str = "mean",
    out: Array | None = None,
) -> Array:
    """``grad_output * d(loss)/d(logits)``, shape of ``logits``."""
    return run(*_plan(backend, logits, targets, weights, alpha, gamma, pos_weight,
                      label_smoothing, ignore_index, reduction, grad_output=grad_output,
                      grad=out, want_loss=False, want_grad=True))


def sigmoid_focal_loss_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    grad_output: ArrayLike | None = None,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
    reduction: str = "mean",
    out: Array | None = None,
    grad: Array | None = None,
) -> tuple[Array, Array]:
    """``(loss, grad_output * d(loss)/d(logits))``, reading each input once."""
    return run(*_plan(backend, logits, targets, weights, alpha, gamma, pos_weight,
                      label_smoothing, ignore_index, reduction, grad_output=grad_output,
                      out=out, grad=grad, want_grad=True))


def _plan(pick, logits, targets, weights, alpha, gamma, pos_weight, label_smoothing,
          ignore_index, reduction, **kwargs):
    alpha = None if alpha is None else _checks.number("alpha", alpha, "a number or None")
    if alpha is not None and alpha < 0:
        alpha = None  # torchvision: a negative alpha means no alpha factor
    gamma = _checks.number("gamma", gamma, "a number")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    variant = PLAIN if gamma == 0 and alpha is None else Focal(alpha, gamma)
    return general._plan(pick, logits, targets, weights, pos_weight, label_smoothing,
                         ignore_index, reduction, variant=variant, **kwargs)

