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

from typing import NamedTuple

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


class Focal(NamedTuple):
    """The variant of the focal loss (Lin et al. 2017, torchvision's ``sigmoid_focal_loss``)::

        loss = alpha_t (1 - p_t)**gamma BCE(x, z),   p = sigmoid(x)
        1 - p_t = z sigmoid(-x) + (1 - z) sigmoid(x),   alpha_t = alpha z + (1 - alpha)(1 - z)

    with BCE the plain variant (pos_weight and smoothing apply to it and to ``z``), and
    ``alpha=None`` meaning ``alpha_t = 1``.  ``gamma > 0``: ``gamma = 0`` is the plain
    variant times ``alpha_t``, which the front end asks for as ``Focal(alpha, 0.0)``.
    """

    alpha: float | None
    gamma: float


class Asymmetric(NamedTuple):
    """The variant of the asymmetric loss (Ridnik et al. 2021, the paper's reference)::

        loss = -(z log(max(p, eps)) + (1 - z) log(max(p_m, eps))) (1 - p_t)**gamma_z
        p_m = min(1 - p + clip, 1) (1 - p without clip),   p_t = p z + p_m (1 - z)
        gamma_z = gamma_pos z + gamma_neg (1 - z)

    and its gradient as the reference's autograd takes it: through the focusing
    weight, zero where a clamp holds (``max(p, eps)`` at ``p < eps``, ``min(., 1)``).
    """

    gamma_neg: float
    gamma_pos: float
    clip: float
    eps: float


def element_function(key, log1p, logistic, exp, log, divide):
    """The element body of every kernel for ``key`` (a ``numba_xent._core.Kernel``)::

        value, dgrad = element(x, e, z, kept, w, pw, g, keep, s, gs)

    ``e = exp(-|x|)`` comes from the backend (once per element), and so do the
    primitives ``log1p(u)``, ``logistic(u, one) = u / (1 + u)`` for ``u`` in [0, 1]
    (``one``: 1 in u's type), ``exp(t)`` for ``t <= 0``, ``log(u)`` for ``u`` in
    [0, 1] and ``divide(a, b)`` for a finite ``b > 0`` (the last three for the focal and
    asymmetric variants only).  The other
    arguments: one element's logit
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
    dtype, weighted, g_elem = key.dtype, key.weighted, key.g_elem
    ty = compute_dtype(dtype).type
    f64 = np.float64
    terms = _terms(key, ty, log1p, logistic, exp, log, divide)

    @njit(inline="always")
    def element(x_raw, e, z, kept, w_raw, pw_raw, g_raw, keep, s, gs):
        one = ty(1.0)
        zero = one - one
        w = ty(w_raw)
        value, dloss = terms(ty(x_raw), e, z, pw_raw, keep, s, one)
        if weighted:
            value *= w
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


def _terms(key, ty, log1p, logistic, exp, log, divide):
    """``value, dloss = terms(x, e, z, pw, keep, s, one)``: one element's loss and
    dloss/dx for the key's variant, unweighted."""
    variant, pos_weight, smooth = key.variant, key.pos_weight, key.smooth
    plain = variant if type(variant) is int else PLAIN

    @njit(inline="always")
    def bce(x, e, z, pw_raw, keep, s, one):
        pw = ty(pw_raw) if pos_weight else None
        if smooth:
            k, q, p = smoothed_coefficients(z, pw, plain, one, keep, s)
        else:
            k, q, p = coefficients(z, pw, plain, one)
        return loss(x, k, q, p, log1p(e), one), grad(x, k, q, p, logistic(e, one), one)

    if type(variant) is Focal:
        return _focal_terms(variant, smooth, ty, bce, log1p, logistic, exp, log, divide)
    if type(variant) is Asymmetric:
        return _asymmetric_terms(variant, ty, log1p, logistic, exp, log, divide)
    return bce


def _focal_terms(variant, smooth, ty, bce, log1p, logistic, exp, log, divide):
    """The focal loss's terms (see :class:`Focal`), from the BCE's ``B`` and ``B'``::

        m = 1 - p_t = sigmoid(|x|) (a + b e),   (a, b) = (1 - z, z) if x >= 0 else (z, 1 - z)
        loss = alpha_t m**gamma B
        dloss/dx = alpha_t m**gamma (B' + gamma B m'/m),   m'/m = (1 - 2z) t / (a + b e)

    with ``e = exp(-|x|)``, ``t = sigmoid(-|x|)``: ``a`` and ``b e`` are non-negative, so
    ``m`` is formed without cancellation at any ``x``.  ``m**gamma`` is ``m * m ...`` for
    gamma 1 to 4, else ``exp(gamma (log(a + b e) - log1p(e)))`` (its exponent <= 0).  At
    ``a + b e = 0`` (``x = +-inf`` against its own target) ``m'/m`` is taken as 0 and so is
    ``B m'/m`` where ``m'/m`` is 0 (its limit, where ``B`` is infinite).
    """
    alpha, gamma = variant
    powered = gamma != 0
    times = int(gamma) if gamma in (1.0, 2.0, 3.0, 4.0) else 0
    g = ty(gamma)
    a1, a0 = (ty(alpha), ty(1.0 - alpha)) if alpha is not None else (ty(1.0), ty(0.0))
    weighted_by_alpha = alpha is not None

    @njit(inline="always")
    def power(v, e, t, one):
        """m**gamma, m = (1 - t) v."""
        if times == 0:
            return exp(g * (log(v) - log1p(e)))
        m = (one - t) * v
        if times == 1:
            return m
        if times == 2:
            return m * m
        if times == 3:
            return m * m * m
        m2 = m * m
        return m2 * m2

    @njit(inline="always")
    def terms(x, e, z, pw_raw, keep, s, one):
        value, dloss = bce(x, e, z, pw_raw, keep, s, one)
        zero = one - one
        if smooth:
            half = s / (one + one)
            zs, zc = z * keep + half, (one - z) * keep + half
        else:
            zs, zc = z, one - z
        if powered:
            t = logistic(e, one)
            a, b = (zc, zs) if x >= zero else (zs, zc)
            v = a + b * e
            f = power(v, e, t, one)
            ratio = divide((zc - zs) * t, v) if v > zero else zero
            rb = zero if ratio == zero else ratio * value
            dloss = f * (dloss + g * rb)
            value = f * value
        if weighted_by_alpha:
            at = a1 * zs + a0 * zc
            value, dloss = at * value, at * dloss
        return value, dloss

    return terms


def _asymmetric_terms(variant, ty, log1p, logistic, exp, log, divide):
    """The asymmetric loss's terms (see :class:`Asymmetric`), with ``P = sigmoid(x)`` and
    ``Q = sigmoid(-x)`` each from ``t = sigmoid(-|x|)`` and ``1 - t`` (no ``1 - P``)::

        A = z l1 + (1 - z) l2,   l1 = log(max(P, eps)),   l2 = log(max(p_m, eps))
        base = 1 - p_t = z Q + (1 - z)(1 - p_m),   1 - p_m = P - clip (0 where clamped)
        loss = -A W,   W = base**gamma_z = exp(gamma_z log(base))
        dloss/dx = -W (A' + gamma_z A base'/base)

    ``log P = -softplus(-x)`` and ``log Q = -softplus(x)`` exactly, not the log of a
    rounded probability; ``base'/base`` is taken as 0 where ``base = 0`` (there ``W = 0``
    or ``gamma_z = 0``), and so is ``A base'/base`` where ``base'/base`` is 0.
    """
    gamma_neg, gamma_pos, clip, eps = variant
    clipped = clip > 0
    gn, gp, c, ep = ty(gamma_neg), ty(gamma_pos), ty(clip), ty(eps)
    log_eps = ty(np.log(np.float64(ty(eps)))) if eps > 0 else ty(-np.inf)

    @njit(inline="always")
    def terms(x, e, z, pw_raw, keep, s, one):
        zero = one - one
        t = logistic(e, one)
        sp = log1p(e)
        nonneg = x >= zero
        p, q = (one - t, t) if nonneg else (t, one - t)
        log_big, log_small = -sp, -(abs(x) + sp)  # -softplus(-|x|), -softplus(|x|)
        log_p, log_q = (log_big, log_small) if nonneg else (log_small, log_big)
        zc = one - z
        kept1 = p >= ep
        l1 = log_p if kept1 else log_eps
        dl1 = q if kept1 else zero
        pq = p * q
        if clipped:
            raw = q + c
            free = raw <= one
            pm = raw if free else one
            kept2 = pm >= ep
            l2 = log(pm) if kept2 else log_eps
            dl2 = -divide(pq, pm) if kept2 and free else zero
            rest = p - c if free else zero
            drest = pq if free else zero
        else:
            kept2 = q >= ep
            l2 = log_q if kept2 else log_eps
            dl2 = -p if kept2 else zero
            rest, drest = p, pq
        a = z * l1 + zc * l2
        da = z * dl1 + zc * dl2
        base = z * q + zc * rest
        dbase = zc * drest - z * pq
        gz = gp * z + gn * zc
        w = one if gz == zero else exp(gz * log(base))
        ratio = divide(dbase, base) if base > zero else zero
        ar = zero if ratio == zero else a * ratio
        return zero - a * w, zero - w * (da + gz * ar)

    return terms
