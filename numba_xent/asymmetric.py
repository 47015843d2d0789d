"""The asymmetric loss (ASL, Ridnik et al. 2021) on the fused core, the paper's semantics.

For logits ``x`` and targets ``z`` in [0, 1] of one shape ``(..., n)``, per element::

    p = sigmoid(x),   p_m = min(1 - p + clip, 1)            (1 - p where clip is 0 or None)
    l = -w * (z log(max(p, eps)) + (1 - z) log(max(p_m, eps))) * (1 - p_t)**gamma_z
    1 - p_t = z (1 - p) + (1 - z)(1 - p_m),   gamma_z = gamma_pos z + gamma_neg (1 - z)

which is the reference ``AsymmetricLoss`` (and ``AsymmetricLossOptimized``) elementwise,
with its ``reduction`` (the reference returns ``-sum``: ``reduction="sum"``) and its
gradient as its autograd takes it with ``disable_torch_grad_focal_loss=False``:
through the focusing weight, zero where a clamp holds.  ``log p`` and ``log(1 - p)``
are ``-softplus(-x)`` and ``-softplus(x)``, not logs of rounded probabilities, and
``1 - p`` is never formed by a subtraction: the loss keeps its digits where the
reference's float32 ``p`` rounds to 1 (``x`` beyond about 17), and the gradient is finite
where the reference's is NaN (``(1 - p_t)**gamma_z`` at ``1 - p_t = 0`` with
``gamma_z < 1``).  Each ``(gamma_neg, gamma_pos, clip, eps)`` compiles a kernel of its own
the first time it is used.  ``reduction``, ``weights``, ``grad_output`` and the shapes
are those of :mod:`numba_xent.general`.
"""

from . import _checks, general
from ._dispatch import backend
from ._formulas import Asymmetric
from ._runner import run
from ._types import Array, ArrayLike


def asymmetric_loss(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    clip: float | None = 0.05,
    eps: float = 1e-8,
    reduction: str = "mean",
    out: Array | None = None,
) -> Array:
    """The asymmetric loss; its shape depends on ``reduction`` (see
    :mod:`numba_xent.general`)."""
    return run(*_plan(backend, logits, targets, weights, gamma_neg, gamma_pos, clip, eps,
                      reduction, out=out))


def asymmetric_loss_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    grad_output: ArrayLike | None = None,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    clip: float | None = 0.05,
    eps: float = 1e-8,
    reduction: str = "mean",
    out: Array | None = None,
) -> Array:
    """``grad_output * d(loss)/d(logits)``, shape of ``logits``."""
    return run(*_plan(backend, logits, targets, weights, gamma_neg, gamma_pos, clip, eps,
                      reduction, grad_output=grad_output, grad=out, want_loss=False,
                      want_grad=True))


def asymmetric_loss_and_grad(
    logits: ArrayLike,
    targets: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    grad_output: ArrayLike | None = None,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    clip: float | None = 0.05,
    eps: float = 1e-8,
    reduction: str = "mean",
    out: Array | None = None,
    grad: Array | None = None,
) -> tuple[Array, Array]:
    """``(loss, grad_output * d(loss)/d(logits))``, reading each input once."""
    return run(*_plan(backend, logits, targets, weights, gamma_neg, gamma_pos, clip, eps,
                      reduction, grad_output=grad_output, out=out, grad=grad,
                      want_grad=True))


def _plan(pick, logits, targets, weights, gamma_neg, gamma_pos, clip, eps, reduction,
          **kwargs):
    gammas = [_checks.number(name, value, "a number") for name, value in
              (("gamma_neg", gamma_neg), ("gamma_pos", gamma_pos))]
    for name, value in zip(("gamma_neg", "gamma_pos"), gammas):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    clip = 0.0 if clip is None else _checks.number("clip", clip, "a number or None")
    eps = _checks.number("eps", eps, "a number")
    if not 0 <= eps < 1:
        raise ValueError(f"eps must be in [0, 1), got {eps!r}")
    variant = Asymmetric(*gammas, max(clip, 0.0), eps)  # the reference: no clip unless > 0
    return general._plan(pick, logits, targets, weights, None, 0.0, None, reduction,
                         variant=variant, **kwargs)
