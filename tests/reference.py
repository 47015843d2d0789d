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
