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

from . import _checks
from ._dispatch import backend
from ._plan import ELEM, KEPT, TOTAL, Divisor, Plan
from ._runner import run
from ._types import Array, ArrayLike

IGNORE = -1


def sigmoid_cross_entropy(
    x: ArrayLike,
    t: ArrayLike,
    normalize: bool = True,
    reduce: str = "mean",
) -> Array:
    """The loss: 0-d array for ``reduce='mean'``, shape of ``x`` for ``'no'``."""
    return run(*_plan(backend, x, t, normalize, reduce))


def sigmoid_cross_entropy_grad(
    x: ArrayLike,
    t: ArrayLike,
    gy: ArrayLike,
    normalize: bool = True,
    reduce: str = "mean",
) -> Array:
    """``d(loss)/dx`` scaled by ``gy`` (the loss's shape); shape of ``x``."""
    return run(*_plan(backend, x, t, normalize, reduce, gy=gy, want_loss=False))


def _plan(pick, x, t, normalize, reduce, *, gy=None, want_loss=True):
    _checks.choice("reduce", reduce, ("mean", "no"))
    normalize = _checks.flag("normalize", normalize)
    be = pick(x=x, t=t) if want_loss else pick(x=x, t=t, gy=gy)
    like = x
    x = _checks.logits(be, "x", x)
    t = _checks.real(be, "t", t, x.shape)
    if t.dtype.kind not in "biu":
        raise TypeError(f"t must be an integer array of labels -1, 0 or 1, got dtype {t.dtype}")
    elementwise = reduce == "no"
    if not want_loss:
        gy = _checks.real(be, "gy", gy, x.shape if elementwise else ())
    plan = Plan(like, x, t, dict(x="x", z="t", g="gy"), ignore_value=IGNORE,
                loss=(ELEM if elementwise else TOTAL) if want_loss else None, g=gy,
                g_elem=elementwise)
    if elementwise:
        return be, plan
    # D = max(1, #{t != -1}) with normalize, else max(1, batch size).
    d = Divisor("div_at_least_one", KEPT) if normalize else \
        Divisor("div_at_least_one", value=x.shape[0] if x.ndim else 1)
    return be, plan._replace(loss_divisor=d, g_divisor=d)
