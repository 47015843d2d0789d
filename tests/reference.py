"""Independent references, in extended precision, written from the published formulas.

These never touch numba_xent's kernels: the Caffe2 operators' formulas are
transcribed from caffe2/operators/cross_entropy_op.cc (log1p instead of
log(1 + .)) and evaluated in np.longdouble, then rounded to float64.
"""

import numpy as np

L = np.longdouble


def _caffe2_elementwise(x, z, variant):
    """Caffe2's forward value (the negated loss) and backward value per element."""
    with np.errstate(over="ignore"):  # exp(huge) = inf is part of these formulas
        return _caffe2_terms(np.asarray(x, L), np.asarray(z, L), variant)


def _caffe2_terms(x, z, variant):
    pos = (x >= 0).astype(L)
    log_term = np.log1p(np.exp(x - 2 * x * pos))  # log(1 + exp(-|x|))
    sig = 1 / (1 + np.exp(-x))
    if variant == "plain":
        fwd = x * (z - pos) - log_term
        bwd = z - sig
    elif variant == "log_d_trick":
        partition = x * pos + log_term  # log(1 + exp(x))
        fwd = (2 * z - 1) * (x - partition)
        bwd = (2 * z - 1) / (1 + np.exp(x))
    elif variant == "unjoined_lr_loss":
        fwd = x * z + (z - 1) * x * pos - (1 - z) * log_term
        bwd = z - (1 - z) / (1 + np.exp(-x))
    else:
        raise ValueError(variant)
    return fwd, bwd


def caffe2_loss(x, z, w=None, variant="plain"):
    """-(1/n) sum_j w * forward(x, z) per row, in float64."""
    fwd, _ = _caffe2_elementwise(x, z, variant)
    if w is not None:
        fwd = fwd * np.asarray(w, L)
    n = fwd.shape[-1]
    return (-fwd.sum(axis=-1) / n).astype(np.float64)


def caffe2_grad(g, x, z, w=None, variant="plain"):
    """-(g / n) * backward(x, z) * w, in float64."""
    _, bwd = _caffe2_elementwise(x, z, variant)
    if w is not None:
        bwd = bwd * np.asarray(w, L)
    n = bwd.shape[-1]
    return (-np.asarray(g, L)[..., None] / n * bwd).astype(np.float64)


def bce_with_logits(x, z, w=None, pos_weight=None):
    """PyTorch's binary_cross_entropy_with_logits, elementwise, loss and d/dx.

    ``(1 - z) x + lw softplus(-x)`` with ``lw = 1 + (pos_weight - 1) z``,
    rewritten (softplus(-x) = softplus(x) - x) where z <= 1/2 so that a small
    loss is not the difference of two large numbers; long double, to float64.
    """
    x, z = np.asarray(x, L), np.asarray(z, L)
    pw = L(1) if pos_weight is None else np.asarray(pos_weight, L)
    w = L(1) if w is None else np.asarray(w, L)
    lw = 1 + (pw - 1) * z
    with np.errstate(over="ignore"):
        softplus_pos, softplus_neg = np.logaddexp(L(0), x), np.logaddexp(L(0), -x)
        sig_pos, sig_neg = 1 / (1 + np.exp(-x)), 1 / (1 + np.exp(x))
    low = z <= 0.5
    loss = np.where(low, lw * softplus_pos - pw * z * x, (1 - z) * x + lw * softplus_neg)
    grad = np.where(low, lw * sig_pos - pw * z, (1 - z) - lw * sig_neg)
    return (w * loss).astype(np.float64), (w * grad).astype(np.float64)


# The coefficients of each variant (numba_xent/_formulas.py's table, as the issue
# that set the float32 bars writes them): loss = |x| (p if x >= 0 else q) + k sp,
# dloss/dx = p - k t (x >= 0) or k t - q, sp = log1p(exp(-|x|)), t = sigmoid(-|x|).
def coefficients(z, variant, pos_weight=1):
    if variant == "plain":
        return 1 + (pos_weight - 1) * z, pos_weight * z, 1 - z
    if variant == "log_d_trick":
        return 2 * z - 1, 2 * z - 1, 0 * z
    if variant == "unjoined_lr_loss":
        return 1 - z, z, 1 - 2 * z
    raise ValueError(variant)


def coefficient_form(x, z, variant="plain", pos_weight=1, smoothing=0.0):
    """(loss, grad, loss_terms, grad_terms) per element, in long double.

    The inputs are taken exactly as given (float32 values are exact in long
    double); smoothing moves z to z (1 - s) + s/2 first.  loss_terms is
    |x c| + |k sp| and grad_terms |k t| + max(|p|, |q|): the sizes that a
    backward-stable float32 evaluation is accurate relative to.
    """
    x, z = np.asarray(x, L), np.asarray(z, L)
    pos_weight = np.asarray(pos_weight, L)
    if smoothing:
        z = z * (1 - L(smoothing)) + L(smoothing) / 2
    k, q, p = coefficients(z, variant, pos_weight)  # exact: long double holds them
    a = np.abs(x)
    e = np.exp(-a)
    sp, t = np.log1p(e), e / (1 + e)
    c = np.where(x >= 0, p, q)
    with np.errstate(invalid="ignore"):
        linear = np.where(c == 0, L(0), a * c)  # |x| * 0 -> 0 at x = +-inf
    loss = linear + k * sp
    grad = np.where(x >= 0, p - k * t, k * t - q)
    return loss, grad, np.abs(linear) + np.abs(k * sp), np.abs(k * t) + np.maximum(np.abs(p),
                                                                                     np.abs(q))


def _bce_long(x, z, pw):
    """BCE-with-logits and its d/dx in long double (as :func:`bce_with_logits`)."""
    lw = 1 + (pw - 1) * z
    with np.errstate(over="ignore"):
        softplus_pos, softplus_neg = np.logaddexp(L(0), x), np.logaddexp(L(0), -x)
        p, q = 1 / (1 + np.exp(-x)), 1 / (1 + np.exp(x))
    low = z <= 0.5
    with np.errstate(invalid="ignore"):  # inf * 0 where the other branch is taken
        loss = np.where(low, lw * softplus_pos - pw * z * x, (1 - z) * x + lw * softplus_neg)
    grad = np.where(low, lw * p - pw * z, (1 - z) - lw * q)
    return loss, grad, p, q


def focal(x, z, alpha=0.25, gamma=2.0, pos_weight=1, smoothing=0.0):
    """torchvision's sigmoid_focal_loss elementwise and its d/dx, in long double::

        alpha_t (1 - p_t)**gamma BCE,   1 - p_t = z (1 - p) + (1 - z) p

    (the derivative by the product rule, ``d(1 - p_t)/dx = (1 - 2z) p (1 - p)``), with
    the sizes a float32 evaluation is accurate relative to: ``alpha_t (1 - p_t)**gamma``
    times the BCE's terms (:func:`coefficient_form`), plus the result times ``gamma (1 +
    |log(1 - p_t)|)`` ulps for the power, whose exponent ``gamma log(1 - p_t)`` is known
    to a few ulps of its size (an ulp of ``x`` moves it that much where ``|x|`` is large).
    """
    x, z = np.asarray(x, L), np.asarray(z, L)
    pw = np.asarray(pos_weight, L)
    if smoothing:
        z = z * (1 - L(smoothing)) + L(smoothing) / 2
    bce, dbce, p, q = _bce_long(x, z, pw)
    m = z * q + (1 - z) * p
    at = L(1) if alpha is None or alpha < 0 else alpha * z + (1 - L(alpha)) * (1 - z)
    g = L(gamma)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = np.where(m > 0, m ** g, L(0) if gamma else L(1))
        # d(m**g)/dx = g m**(g - 1) dm/dx, dm/dx = (1 - 2z) p q: 0 with m at m = 0
        df = np.where(m > 0, g * m ** (g - 1) * (1 - 2 * z) * p * q, L(0))
        dbf = np.where(df == 0, L(0), df * bce)  # its limit 0 where bce is infinite
        loss, grad = at * f * bce, at * (dbf + f * dbce)
        _, _, terms_l, terms_g = coefficient_form(x, z, "plain", pw)
        power = np.where(m > 0, g * (1 + np.abs(np.log(m))), L(0))
        ratio = np.where(m > 0, g * np.abs(1 - 2 * z) * p * q / m, L(0))
    terms_loss = np.abs(at) * f * (terms_l + np.abs(bce) * power)
    terms_grad = np.abs(at) * f * (terms_g + np.where(ratio == 0, 0, ratio * terms_l)
                                   + np.abs(dbf / np.where(f == 0, 1, f) + dbce) * power)
    return loss, grad, terms_loss, terms_grad


def asymmetric(x, z, gamma_neg=4.0, gamma_pos=1.0, clip=0.05, eps=1e-8, with_weight=False):
    """The reference AsymmetricLoss elementwise and its autograd d/dx, in long double::

        -(z log(max(p, eps)) + (1 - z) log(max(p_m, eps))) (1 - p_t)**gamma_z

    ``p_m = min(1 - p + clip, 1)``; a clamp that holds passes no gradient, and the
    focusing weight's does pass (``disable_torch_grad_focal_loss=False``).  ``1 - p``
    is ``1 / (1 + exp(x))`` and ``1 - p_m`` is ``p - clip``: no subtraction of a
    probability from 1.  ``with_weight``: the focusing weight ``(1 - p_t)**gamma_z`` too,
    last.  With the sizes a float32 evaluation is accurate relative to:
    the weight times the log terms' sizes, plus the result times ``gamma_z (1 +
    |log(1 - p_t)| + terms(1 - p_t) / (1 - p_t))`` ulps for the power (as :func:`focal`;
    ``1 - p_m = p - clip`` cancels where ``p`` is near ``clip``).
    """
    x, z = np.asarray(x, L), np.asarray(z, L)
    with np.errstate(over="ignore"):
        p, pn = 1 / (1 + np.exp(-x)), 1 / (1 + np.exp(x))
    if clip is not None and clip > 0:
        free = pn + L(clip) <= 1
        pm = np.where(free, pn + L(clip), L(1))
        rest, drest = np.where(free, p - L(clip), L(0)), np.where(free, p * pn, L(0))
        dpm = np.where(free, -p * pn, L(0))
    else:
        pm, rest, drest, dpm = pn, p, p * pn, -p * pn
    with np.errstate(divide="ignore", invalid="ignore"):
        # log p = -log(1 + exp(-x)) and log(1 - p) exactly, not the log of a p near 1
        l1 = np.maximum(-np.logaddexp(L(0), -x), np.log(L(eps)))
        l2 = np.log(np.maximum(pm, L(eps))) if clip is not None and clip > 0 else \
            np.maximum(-np.logaddexp(L(0), x), np.log(L(eps)))
        dl1 = np.where(p >= eps, pn, L(0))  # d log p / dx = 1 - p
        dl2 = np.where(pm >= eps, dpm / pm, L(0))
        a = z * l1 + (1 - z) * l2
        da = z * dl1 + (1 - z) * dl2
        base = z * pn + (1 - z) * rest
        dbase = -z * p * pn + (1 - z) * drest
        gz = gamma_pos * z + gamma_neg * (1 - z)
        w = np.where(gz == 0, L(1), np.where(base > 0, base ** gz, L(0)))
        # d(base**gz)/dx = gz base**(gz - 1) dbase, 0 where gz = 0 and (its limit) at base = 0
        dw = np.where((gz == 0) | (base == 0), L(0), gz * base ** (gz - 1) * dbase)
        adw = np.where(dw == 0, L(0), a * dw)
        loss, grad = -a * w, -(da * w + adw)
        # the power's exponent gz log(base), base a sum of terms (p - clip cancels near clip)
        base_terms = z * pn + (1 - z) * (p + (L(clip) if clip is not None and clip > 0 else 0))
        power = np.where(base > 0, gz * (1 + np.abs(np.log(base)) + base_terms / base), L(0))
        # base' = (1 - z) d(1 - p_m)/dx - z p (1 - p): two terms, of opposite signs
        ratio = np.where(base > 0, gz * (z * p * pn + (1 - z) * drest) / base, L(0))
    terms_loss = w * (z * np.abs(l1) + (1 - z) * np.abs(l2)) * (1 + power)
    terms_grad = w * (z * np.abs(dl1) + (1 - z) * np.abs(dl2)
                      + np.where(ratio == 0, 0, np.abs(a) * ratio)) + np.abs(grad) * power
    return (loss, grad, terms_loss, terms_grad) + ((w,) if with_weight else ())
