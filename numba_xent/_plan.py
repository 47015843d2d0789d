"""The description of one call: what a front end returns, what a runner executes.

A front end only validates and maps its arguments: its planner (``_plan`` in
each front-end module) returns a :class:`Plan` that says which arrays the
kernel reads, which options it is compiled with, which results are wanted, and
how each is divided.  The runners execute plans: :func:`numba_xent._runner.run`
on the CPU and CUDA backends, :mod:`numba_xent.dask` over row blocks.

A plan describes one loss and its gradient, whichever of them the call wants:
``loss is None`` means the gradient alone, ``g is None`` the loss alone.  So
PyTorch's autograd (:mod:`numba_xent.torch`) can take a loss function's plan
and ask for both in one pass by setting ``g = 1``.

Divisors (:class:`Divisor`) are applied in one of four places, as the
frameworks do (the roundings differ, and results stay bit-identical to theirs):

* ``loss_scale``:   in the kernel, ``loss * op(1, D)``  (Caffe2's 1/n, paddle)
* ``loss_divisor``: after the sums, ``op(sum, D)``      (means of chainer, tf, general)
* ``grad_scale``:   in the kernel, ``grad * op(1, D)``  (Caffe2, paddle, tf)
* ``g_divisor``:    before the kernel, ``g = op(g, D)`` (chainer, general)

with ``op`` one of the backends' ``binary`` operations (``div``, ``safe_div``,
``div_at_least_one``) and ``D`` one of the divisor kinds below.
"""

from typing import Any, NamedTuple

from ._formulas import PLAIN

# What the loss output is (Plan.loss).
ELEM = "elem"  # x's shape, in its dtype, written by the kernel
ROWS = "rows"  # x.shape[:-1], in x's dtype, written by the kernel (scaled by loss_scale)
ROW_SUMS = "row_sums"  # x.shape[:-1]: float64 row sums, then loss_divisor, then the cast
TOTAL = "total"  # 0-d: the float64 sum of the row sums, then loss_divisor, then the cast

# What a divisor D is (Divisor.by).
CONSTANT = "constant"  # Divisor.value itself
KEPT = "kept"  # the number of elements whose target is not ignore_value
KEPT_ROWS = "kept_rows"  # the same per row (shape x.shape[:-1])
WEIGHT_SUM = "weight_sum"  # sum(weights) * Divisor.value (each weight's repeats)
NONZERO_WEIGHTS = "nonzero_weights"  # #(weights != 0) * Divisor.value

COUNTED = (KEPT, KEPT_ROWS)  # the divisors that need a count of the kept elements


class Divisor(NamedTuple):
    """``op(a, D)`` with ``D`` given by ``by`` (see the module docstring)."""

    op: str
    by: str = CONSTANT
    value: float = 1.0


class Plan(NamedTuple):
    """One call of the fused core, arrays checked (see the module docstring).

    Array fields hold arrays of the call's backend (numbers for ``g``);
    ``names`` maps the roles ``x, z, weights, pos_weight, g, out, grad`` to the
    caller's argument names, for the runner's error messages.
    """

    like: Any  # the caller's logits: results are arrays of its kind
    x: Any
    z: Any
    names: dict
    weights: Any = None  # broadcast to x's shape
    pos_weight: Any = None  # broadcast to x's shape (per column where it can)
    variant: int = PLAIN
    smoothing: float = 0.0
    ignore_value: float | None = None
    loss: str | None = None  # ELEM, ROWS, ROW_SUMS, TOTAL or None (no loss)
    loss_scale: Divisor | None = None
    loss_divisor: Divisor | None = None
    g: Any = None  # the upstream gradient; None: no gradient wanted
    g_elem: bool = False  # g has x's shape; else one value per row (or a scalar)
    grad_scale: Divisor | None = None
    g_divisor: Divisor | None = None
    cast: bool = True  # ROW_SUMS / TOTAL: cast to x's dtype (else left float64)
    out: Any = None  # the caller's loss buffer
    grad: Any = None  # the caller's gradient buffer

    def loss_shape(self):
        x = self.x
        if self.loss == ELEM:
            return x.shape
        if self.loss == TOTAL:
            return ()
        return x.shape[:-1]
