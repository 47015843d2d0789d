"""paddle's ``sigmoid_cross_entropy_with_logits`` and its gradient.

Elementwise, for logits ``x`` and probabilistic labels ``label`` of one shape::

    loss = max(x, 0) - x label + log1p(exp(-|x|))      (0 where label == ignore_index)
    dx   = dout * (sigmoid(x) - label)                 (0 where label == ignore_index)

``normalize=True`` divides every element by the number of labels that differ
from ``ignore_index`` in the whole tensor.

Differences from paddle, on purpose (see ../shared/DECISIONS.md):

* every label ignored with ``normalize=True`` gives 0 (paddle's GPU kernel);
  paddle's CPU kernel gives NaN;
* a label is ignored when it equals ``ignore_index`` exactly; paddle's CPU
  kernel truncates labels to int first, so it also ignores -1.5 for -1;
* the gradient at ``x = 0`` is ``dout * (0.5 - label)``; paddle 3.3's CPU
  kernel returns ``-dout * (0.5 + label)`` there;
* ``log1p`` keeps the tiny losses of confident logits (paddle's
  ``log(1 + exp(-|x|))`` loses them below 1e-7 relative).
"""

import numbers

from . import _checks
from ._core import evaluate
from ._dispatch import backend
from ._types import Array, ArrayLike


def sigmoid_cross_entropy_with_logits(
    x: ArrayLike,
    label: ArrayLike,
    ignore_index: float = -100,
    normalize: bool = False,
) -> Array:
    """The elementwise loss, shape of ``x``."""
    like = x
    be, x, label, ignore_index, normalize = _args(x, label, ignore_index, normalize)
    loss = be.empty(x.shape, x.dtype, like=like)
    evaluate(be, x, label, ignore_value=ignore_index, elem_out=loss,
             loss_scale=_scale(be, x, label, ignore_index, normalize))
    return loss


def sigmoid_cross_entropy_with_logits_grad(
    x: ArrayLike,
    label: ArrayLike,
    dout: ArrayLike,
    ignore_index: float = -100,
    normalize: bool = False,
) -> Array:
    """``dout * d(loss)/dx``, shape of ``x``."""
    like = x
    be, x, label, ignore_index, normalize = _args(x, label, ignore_index, normalize, dout=dout)
    dout = _checks.real(be, "dout", dout, x.shape, x.dtype)
    dx = be.empty(x.shape, x.dtype, like=like)
    evaluate(be, x, label, ignore_value=ignore_index, g_elem=dout, grad_out=dx,
             grad_scale=_scale(be, x, label, ignore_index, normalize))
    return dx


def _args(x, label, ignore_index, normalize, **more):
    if not isinstance(ignore_index, numbers.Real) or isinstance(ignore_index, bool):
        raise TypeError(f"ignore_index must be a number, got {ignore_index!r}")
    normalize = _checks.flag("normalize", normalize)
    be = backend(x=x, label=label, **more)
    x = _checks.logits(be, "x", x)
    label = _checks.real(be, "label", label, x.shape, x.dtype)
    return be, x, label, ignore_index, normalize


def _scale(be, x, label, ignore_index, normalize):
    if not normalize:
        return 1.0
    # Every label ignored: every element is 0 whatever the scale.
    kept = be.total(evaluate(be, x, label, ignore_value=ignore_index, count=True))
    return be.binary("safe_div", 1.0, kept)
