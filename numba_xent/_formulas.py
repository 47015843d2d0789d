"""Per-element math of the sigmoid cross-entropy family, written once.

Both backends call these helpers: the CPU kernels from ``@njit`` code, the CUDA
kernels as device functions.  The backend evaluates the two transcendental
primitives itself (``e = exp(-|x|)``, ``sp = log1p(e)``) with whatever is fast on
its hardware, and hands them in.

Every variant of the loss of a logit ``x`` against a target ``z`` is written
through three coefficients ``k``, ``q`` and ``p = k - q`` (``p`` is derived
analytically, never by subtraction)::

    loss(x, z) = |x| * (p if x >= 0 else q) + k * log1p(exp(-|x|))
    dloss/dx   = (p - k * t) if x >= 0 else (k * t - q),   t = sigmoid(-|x|)

=================  ===============  ========  ========
variant            k                q         p
=================  ===============  ========  ========
plain (pos wt w+)  1 + (w+ - 1) z   w+ z      1 - z
log-D trick        2z - 1           2z - 1    0
unjoined LR loss   1 - z            z         1 - 2z
=================  ===============  ========  ========

``plain`` with ``w+ = 1`` is ``softplus(x) - x z``; with ``w+`` it is PyTorch's
``binary_cross_entropy_with_logits(..., pos_weight)``.  ``log-D trick`` is
``-(2z - 1) log(sigmoid(x))`` and ``unjoined`` is Caffe2's
``-(x z + (z - 1) x [x >= 0] - (1 - z) log(1 + exp(-|x|)))``: the Caffe2 forward
values negated, as the Caffe2 operator reports them.

This form needs no ``exp`` of a positive number (nothing overflows for any
finite ``x``), takes ``sigmoid`` from the same ``e`` as the loss, and avoids the
cancellation of ``sigmoid(x) - z`` for large ``|x|``.  At ``x = +-inf`` the
product ``|x| * 0`` is taken as its limit 0, so ``x = +inf, z = 1`` gives loss 0
(Caffe2's own formula gives NaN there); a NaN in ``x`` or ``z`` still gives NaN.
"""

from numba import njit

PLAIN = 0
LOG_D_TRICK = 1
UNJOINED = 2


# Every helper takes ``one``, the number 1 in the type to compute in: a Python
# float literal would promote float32 arithmetic to float64 in Numba.


@njit(inline="always")
def coefficients(z, pos_weight, variant, one):
    """(k, q, p) of the table in the module docstring, for one target ``z``."""
    two = one + one
    if variant == LOG_D_TRICK:
        k = two * z - one
        return k, k, one - one
    if variant == UNJOINED:
        return one - z, z, one - two * z
    return one + (pos_weight - one) * z, pos_weight * z, one - z


@njit(inline="always")
def loss_and_grad(x, z, pos_weight, e, sp, variant, one):
    """Loss and its derivative w.r.t. ``x`` for ``e = exp(-|x|)``, ``sp = log1p(e)``."""
    zero = one - one
    k, q, p = coefficients(z, pos_weight, variant, one)
    nonneg = x >= zero
    c = p if nonneg else q
    linear = abs(x) * c
    # |x| * 0 is 0 in the limit x -> +-inf, not the NaN of inf * 0.
    linear = zero if c == zero else linear
    t = e / (one + e)
    grad = (p - k * t) if nonneg else (k * t - q)
    return linear + k * sp, grad
