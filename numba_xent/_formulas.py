"""Per-element math of the sigmoid cross-entropy family, written once.

Both backends call these helpers: the CPU kernels from ``@njit`` code, the CUDA
kernels as device functions.  The backend evaluates the transcendental
primitives itself, with whatever is fast on its hardware, and hands them in:
``e = exp(-|x|)``, ``sp = log1p(e)`` for the loss and ``t = e / (1 + e) =
sigmoid(-|x|)`` for the gradient (one ``e`` serves both; see
:func:`element_function`, the one element body of every kernel).

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

with ``k = p + q`` for the plain variant (a sum of non-negative terms for
targets in [0, 1] and ``w+ >= 0``, where ``1 + (w+ - 1) z`` would cancel for
``w+ < 1``).  Label smoothing moves ``z`` to ``z (1 - s) + s / 2``; every
coefficient is affine in ``z``, so each is smoothed on its own, ``c (1 - s) +
c(1/2) s``: a ``1 - z`` formed from a smoothed ``z`` near 1 would cancel to a
few correct bits, this way each stays accurate relative to itself.

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

Precision: every helper computes in the type of its arguments (float32 data in
float32 arithmetic).  That is backward stable: for targets in [0, 1] and
``w+ >= 0`` the two terms of the loss have one sign, so its rounding errors are
relative to the loss itself, and the gradient is a difference of the operands
``k t`` and ``p`` (or ``q``), each correct to a few ulps: its error is a few
ulps of ``|k t| + max(|p|, |q|)``, which is what float32 targets carry anyway.
"""

import numpy as np
from numba import njit

from ._half import compute_dtype

PLAIN = 0
LOG_D_TRICK = 1
UNJOINED = 2


# Every helper takes ``one``, the number 1 in the type to compute in: a Python
# float literal would promote float32 arithmetic to float64 in Numba.


@njit(inline="always")
def coefficients(z, pos_weight, variant, one):
    """(k, q, p) of the table in the module docstring, for one target ``z``.

    ``pos_weight=None`` (a compile-time None) means ``w+ = 1``: then ``k`` is
    exactly 1 and costs nothing.
    """
    two = one + one
    if variant == LOG_D_TRICK:
        k = two * z - one
        return k, k, one - one
    if variant == UNJOINED:
        return one - z, z, one - two * z
    if pos_weight is None:
        return one, z, one - z
    q = pos_weight * z
    p = one - z
    return p + q, q, p


@njit(inline="always")
def smoothed_coefficients(z, pos_weight, variant, one, keep, s):
    """(k, q, p) for the label-smoothed target ``z (1 - s) + s / 2``, given ``keep = 1 - s``."""
    k, q, p = coefficients(z, pos_weight, variant, one)
    k_half, q_half, p_half = coefficients(one / (one + one), pos_weight, variant, one)
    if not (variant == PLAIN and pos_weight is None):  # there k = 1 whatever z is
        k = k * keep + k_half * s
    return k, q * keep + q_half * s, p * keep + p_half * s


@njit(inline="always")
def loss(x, k, q, p, sp, one):
    """The loss for the coefficients of ``z`` and ``sp = log1p(exp(-|x|))``."""
    zero = one - one
    c = p if x >= zero else q
    linear = abs(x) * c
    # |x| * 0 is 0 in the limit x -> +-inf, not the NaN of inf * 0.
    linear = zero if c == zero else linear
    return linear + k * sp


@njit(inline="always")
def grad(x, k, q, p, t, one):
    """dloss/dx for the coefficients of ``z`` and ``t = sigmoid(-|x|)``."""
    return (p - k * t) if x >= one - one else (k * t - q)


def element_function(key, log1p, logistic):
    """The element body of every kernel for ``key`` (a ``numba_xent._core.Kernel``)::

        value, dgrad = element(x, e, z, kept, w, pw, g, keep, s, gs)

    ``e = exp(-|x|)`` comes from the backend (once per element), and so do the
    primitives ``log1p(u)`` and ``logistic(u, one) = u / (1 + u)`` for ``u`` in
    [0, 1] (``one``: 1 in u's type).  The other arguments: one element's logit
    ``x`` and weights ``w``, ``pw`` as read (the number 1 where the key has none),
    its target ``z`` converted to the logits' dtype, ``kept`` (False for an
    ignored element), the smoothing ``keep = 1 - s`` and ``s``, and
    ``g``: the element's incoming gradient (``g_elem``; then times the number
    ``gs``) or its row's float64 scale ``grad_scale * g_row`` (then times the
    weight in float64 and rounded once, so that a huge scale and a tiny weight
    neither overflow nor underflow).  Returns the weighted loss and the scaled
    gradient ``m * dloss/dx``, both 0 for an ignored element; a kernel stores
    what it needs and the compiler drops the rest.
    """
    variant, dtype, weighted, pos_weight, _, smooth = key[:6]
    g_elem = key.g_elem
    ty = compute_dtype(dtype).type
    f64 = np.float64

    @njit(inline="always")
    def element(x_raw, e, z, kept, w_raw, pw_raw, g_raw, keep, s, gs):
        one = ty(1.0)
        zero = one - one
        pw = ty(pw_raw) if pos_weight else None
        if smooth:
            k, q, p = smoothed_coefficients(z, pw, variant, one, keep, s)
        else:
            k, q, p = coefficients(z, pw, variant, one)
        x = ty(x_raw)
        w = ty(w_raw)
        value = loss(x, k, q, p, log1p(e), one)
        if weighted:
            value *= w
        dloss = grad(x, k, q, p, logistic(e, one), one)
        if g_elem:
            m = gs * ty(g_raw)
            if weighted:
                m *= w
        elif weighted:
            m = ty(g_raw * f64(w_raw))
        else:
            m = ty(g_raw)
        if not kept:
            return zero, zero
        return value, m * dloss

    return element
