"""The sigmoid focal loss and the asymmetric loss, against long-double references.

``tests/reference.py`` writes both from their published formulas (torchvision's
``sigmoid_focal_loss``, the ASL paper's ``AsymmetricLoss`` with the gradient its
autograd takes).  The bars are those of the plain loss (tests/test_accuracy.py):
within 8 ulps of the sizes of the terms the result is made of, where a power
``(1 - p_t)**gamma`` counts its exponent ``gamma log(1 - p_t)`` as a term, known to a
few ulps of its size.  Where an intermediate is subnormal (a weight, or
``sigmoid(-|x|)`` beyond |x| = 87 in float32) it carries the spacing of the
subnormals, times what multiplies it.
"""

import math

import numpy as np
import pytest

import numba_xent as nx
from reference import asymmetric, focal
from test_accuracy import logits, targets

ULPS = 8


def assert_within(got, ref, terms, dtype, factor=0.0):
    """Each element within ULPS of its terms (``factor``: what multiplies an
    intermediate that may be subnormal)."""
    fi = np.finfo(dtype)
    ref = np.asarray(ref, np.longdouble)
    err = np.abs(got.astype(np.longdouble) - ref)
    bar = ULPS * fi.eps * terms + 2 * fi.smallest_subnormal * (1 + factor)
    worst = np.nanargmax(np.where(np.isnan(ref), 0, err / bar))
    assert np.all((err <= bar) | (np.isinf(ref) & (got == ref))), (
        f"element {worst}: got {got.flat[worst]!r}, reference {float(ref.flat[worst])!r}, "
        f"terms {float(terms.flat[worst])!r}")


def inputs(dtype, shape, seed=1):
    x = logits(dtype, math.prod(shape), seed).reshape(shape)
    return x, targets(dtype, x.size, seed + 1).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 10.0])  # no power, exp and log, products
@pytest.mark.parametrize("alpha", [0.25, None])
def test_focal_loss_and_gradient_of_every_element_are_within_the_bars(alpha, gamma, dtype):
    x, z = inputs(dtype, (1000, 12))
    loss, grad = nx.sigmoid_focal_loss_and_grad(x, z, alpha=alpha, gamma=gamma,
                                                reduction="none")
    ref_l, ref_g, terms_l, terms_g = focal(x, z, alpha, gamma)
    assert_within(loss, ref_l, terms_l, dtype)
    assert_within(grad, ref_g, terms_g, dtype)
    finite = np.isfinite(x)
    assert np.all(np.isfinite(loss[finite] if dtype == np.float64 else loss[np.abs(x) < 1e30]))
    assert np.all(np.isfinite(grad[finite]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_focal_with_pos_weight_smoothing_and_weights(dtype):
    rng = np.random.default_rng(3)
    x, z = inputs(dtype, (300, 7))
    w = rng.uniform(0, 2, x.shape).astype(dtype)
    pw = rng.uniform(0.1, 5, 7).astype(dtype)
    g = rng.uniform(-2, 2, x.shape).astype(dtype)
    loss, grad = nx.sigmoid_focal_loss_and_grad(x, z, w, alpha=0.6, gamma=1.5, pos_weight=pw,
                                                label_smoothing=0.1, grad_output=g,
                                                reduction="none")
    ref_l, ref_g, terms_l, terms_g = focal(x, z, 0.6, 1.5, pw, 0.1)
    assert_within(loss, w * ref_l, w * terms_l, dtype)
    assert_within(grad, g * w * ref_g, np.abs(g * w) * terms_g, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"clip": 0, "gamma_neg": 10.0, "gamma_pos": 0.5},
                                     {"clip": 0.2, "eps": 0.0, "gamma_neg": 2.5,
                                      "gamma_pos": 0.0},
                                     {"clip": None, "gamma_neg": 0.0, "gamma_pos": 0.0}])
def test_asymmetric_loss_and_gradient_of_every_element_are_within_the_bars(options, dtype):
    x, z = inputs(dtype, (1000, 12))
    loss, grad = nx.asymmetric_loss_and_grad(x, z, reduction="none", **options)
    assert_asymmetric_within(loss, grad, x, z, dtype, **options)
    assert np.all(np.isfinite(loss[~np.isnan(x)])) and np.all(np.isfinite(grad[~np.isnan(x)]))


def assert_asymmetric_within(loss, grad, x, z, dtype, **options):
    """The asymmetric loss and its gradient within the bars of the reference's."""
    ref_l, ref_g, terms_l, terms_g, w = asymmetric(x, z, **options, with_weight=True)
    assert_within(loss, ref_l, terms_l, dtype)
    # The gradient's terms are multiples of the focusing weight and of sigmoid(-|x|), each
    # of which may be subnormal (in float32 from |x| > 87).
    with np.errstate(over="ignore"):
        small = np.minimum(w, 1 / (1 + np.exp(np.abs(x.astype(np.longdouble)))))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.nan_to_num(terms_g / small, nan=0.0, posinf=0.0)
    assert_within(grad, ref_g, terms_g, dtype, factor)


def test_gamma_0_without_alpha_is_exactly_the_plain_loss():
    x, z = inputs(np.float32, (40, 9))
    for reduction in nx.REDUCTIONS:
        for plain, focal_ in ((nx.sigmoid_cross_entropy, nx.sigmoid_focal_loss),
                              (nx.sigmoid_cross_entropy_and_grad,
                               nx.sigmoid_focal_loss_and_grad)):
            expected = plain(x, z, reduction=reduction, label_smoothing=0.1)
            got = focal_(x, z, alpha=None, gamma=0, reduction=reduction, label_smoothing=0.1)
            for a, b in zip(*(r if isinstance(r, tuple) else (r,) for r in (got, expected))):
                np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(nx.sigmoid_focal_loss(x, z, alpha=-1, gamma=0.0),
                                  nx.sigmoid_cross_entropy(x, z))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_limits_at_infinity(dtype):
    x = np.array([np.inf, -np.inf, np.inf, -np.inf], dtype)
    z = np.array([1, 0, 0, 1], dtype)
    loss, grad = nx.sigmoid_focal_loss_and_grad(x, z, reduction="none")
    np.testing.assert_array_equal(loss, [0, 0, np.inf, np.inf])
    np.testing.assert_array_equal(grad, [0, 0, 0.75, -0.25])  # alpha_t * dBCE/dx
    loss, grad = nx.asymmetric_loss_and_grad(x, z, reduction="none")
    assert loss[0] == loss[1] == 0 and grad[0] == grad[1] == 0
    np.testing.assert_allclose(loss[2:], [-math.log(0.05) * 0.95 ** 4, -math.log(1e-8)],
                               rtol=1e-6)
    np.testing.assert_array_equal(grad[2:], [0, 0])


def test_reductions_weights_and_ignored_targets_as_in_the_plain_loss():
    x, z = inputs(np.float64, (20, 6))
    z[0, :3] = -1
    elementwise = nx.sigmoid_focal_loss(x, np.where(z < 0, 0, z), reduction="none")
    kept = z >= 0
    mean = nx.sigmoid_focal_loss(x, z, ignore_index=-1)
    assert mean == pytest.approx(elementwise[kept].sum() / kept.sum(), rel=1e-14)
    row_mean = nx.sigmoid_focal_loss(x, z, ignore_index=-1, reduction="row_mean")
    np.testing.assert_allclose(row_mean, np.where(kept, elementwise, 0).sum(-1) / kept.sum(-1),
                               rtol=1e-14)
    grad = nx.sigmoid_focal_loss_grad(x, z, ignore_index=-1, reduction="sum")
    assert np.all(grad[~kept] == 0)
    assert nx.asymmetric_loss(x[1:], z[1:], reduction="sum") == pytest.approx(
        nx.asymmetric_loss(x[1:], z[1:], reduction="none").sum(), rel=1e-14)


@pytest.mark.parametrize("fn", [nx.sigmoid_focal_loss, nx.sigmoid_focal_loss_grad,
                                nx.sigmoid_focal_loss_and_grad])
def test_focal_arguments_are_checked(fn):
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        fn(x, x, gamma=-0.5)
    with pytest.raises(TypeError, match="gamma must be a number"):
        fn(x, x, gamma="2")
    with pytest.raises(ValueError, match="gamma must be finite"):
        fn(x, x, gamma=math.inf)
    with pytest.raises(TypeError, match="alpha must be a number or None"):
        fn(x, x, alpha=[0.25])


@pytest.mark.parametrize("fn", [nx.asymmetric_loss, nx.asymmetric_loss_grad,
                                nx.asymmetric_loss_and_grad])
def test_asymmetric_arguments_are_checked(fn):
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="gamma_neg must be >= 0"):
        fn(x, x, gamma_neg=-1)
    with pytest.raises(TypeError, match="gamma_pos must be a number"):
        fn(x, x, gamma_pos=None)
    with pytest.raises(ValueError, match=r"eps must be in \[0, 1\)"):
        fn(x, x, eps=2.0)
    with pytest.raises(TypeError, match="clip must be a number or None"):
        fn(x, x, clip="0.05")
