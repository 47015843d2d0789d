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
from ._dispatch import backend
from ._plan import ELEM, KEPT, Divisor, Plan
from ._runner import run
from ._types import Array, ArrayLike


def sigmoid_cross_entropy_with_logits(
    x: ArrayLike,
    label: ArrayLike,
    ignore_index: float = -100,
    normalize: bool = False,
) -> Array:
    """The elementwise loss, shape of ``x``."""
    return run(*_plan(backend, x, label, ignore_index, normalize))


def sigmoid_cross_entropy_with_logits_grad(
    x: ArrayLike,
    label: ArrayLike,
    dout: ArrayLike,
    ignore_index: float = -100,
    normalize: bool = False,
) -> Array:
    """``dout * d(loss)/dx``, shape of ``x``."""
    return run(*_plan(backend, x, label, ignore_index, normalize, dout=dout, want_loss=False))


def _plan(pick, x, label, ignore_index, normalize, *, dout=None, want_loss=True):
    if not isinstance(ignore_index, numbers.Real) or isinstance(ignore_index, bool):
        raise TypeError(f"ignore_index must be a number, got {ignore_index!r}")
    normalize = _checks.flag("normalize", normalize)
    be = pick(x=x, label=label) if want_loss else pick(x=x, label=label, dout=dout)
    like = x
    x = _checks.logits(be, "x", x)
    label = _checks.real(be, "label", label, x.shape)
    if not want_loss:
        dout = _checks.real(be, "dout", dout, x.shape)
    # Every label ignored: every element is 0 whatever the scale.
    scale = Divisor("safe_div", KEPT) if normalize else None
    return be, Plan(like, x, label, dict(x="x", z="label", g="dout"), ignore_value=ignore_index,
                    loss=ELEM if want_loss else None, loss_scale=scale, g=dout, g_elem=True,
                    grad_scale=scale)
