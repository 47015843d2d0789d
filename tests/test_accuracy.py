"""The accuracy bars of the kernels, per element, against long-double references.

float32 inputs are computed in float32 arithmetic, which is backward stable:

* loss: within 4 ulp(1) (4 * 2**-23) of the reference, relative to the sum of
  the absolute values of its terms (``|x c| + |k sp|``, see tests/reference.py);
* gradient: ``|g - g_ref| <= 4 ulp(1) * |w| * (|k t| + max(|p|, |q|))``, a few
  ulps of the operands whose difference it is;

(plus the spacing of the subnormals, where the result is one).  float64 inputs
keep the float64 bars of the other tests, here 4 ulp(1) of float64 too.
Elements come one per row (``(N, 1)`` inputs: the loss of a row is the loss of
its element) and many per row (the row loop and the flat loop of the CPU
kernels), with |x| up to 1e4 and to the dtype's max / 4, zeros, subnormals and
the exact targets 0, 1/2 and 1.
"""

import numpy as np
import pytest

import numba_xent as nx
from numba_xent import caffe2
from reference import coefficient_form

VARIANTS = {"plain": {}, "log_d_trick": {"log_d_trick": True},
            "unjoined_lr_loss": {"unjoined_lr_loss": True}}
ULPS = 4


def logits(dtype, size, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 6, size) * np.exp(rng.uniform(-8, 3, size))  # |x| ~ 1e-3 .. 1e3
    fi = np.finfo(dtype)
    special = [0.0, -0.0, 1e-3, -1e-3, 1.0, -1.0, 15.0, -15.0, 30.0, -30.0, 88.0, -88.0,
               104.0, -104.0, 1e4, -1e4, fi.max / 4, -fi.max / 4, fi.tiny, -fi.smallest_subnormal]
    x[:len(special)] = special
    return x.astype(dtype)


def targets(dtype, size, seed):
    rng = np.random.default_rng(seed)
    z = rng.uniform(0, 1, size)
    exact = rng.uniform(size=size) < 0.3
    z[exact] = rng.choice([0.0, 0.5, 1.0], size=exact.sum())
    return z.astype(dtype)


def assert_within_bar(got, ref, terms, dtype, scale=1.0, rounded=False):
    """Each element within the bar; ``rounded``: a float64 sum rounded to the
    dtype once more (half an ulp of the value on top).  A reference beyond the
    dtype's range must come out as the infinity of its sign."""
    eps = np.finfo(dtype).eps  # ulp(1)
    beyond = np.abs(ref) > np.finfo(dtype).max
    np.testing.assert_array_equal(got[beyond], np.copysign(np.inf, ref[beyond]).astype(dtype))
    got, ref, terms = (np.where(beyond, 0, a) for a in np.broadcast_arrays(got, ref, terms))
    scale = np.where(beyond, 0, scale)
    err = np.abs(got.astype(np.longdouble) - ref)
    bar = ULPS * eps * np.abs(scale) * terms + 2 * np.finfo(dtype).smallest_subnormal
    if rounded:
        bar = bar + eps / 2 * np.abs(ref)
    worst = np.argmax(err / bar)
    assert np.all(err <= bar), (f"element {worst}: got {got.flat[worst]!r}, reference "
                                f"{float(ref.flat[worst])!r}, terms {float(terms.flat[worst])!r}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("n", [1, 16, 700])
def test_caffe2_loss_and_gradient_of_every_element_are_within_the_bars(variant, dtype, n):
    x = logits(dtype, 6000, 1).reshape(-1, n) if n < 700 else logits(dtype, 7000, 1).reshape(-1, n)
    z = targets(dtype, x.size, 2).reshape(x.shape)
    loss, grad = caffe2.sigmoid_cross_entropy_with_logits_and_grad(
        x, z, np.ones(x.shape[0], dtype), **VARIANTS[variant])
    ref_l, ref_g, terms_l, terms_g = coefficient_form(x, z, variant)
    if n == 1:
        assert_within_bar(loss, ref_l[:, 0], terms_l[:, 0], dtype)
    else:  # the row mean: the bar of its terms' mean (the sum is float64)
        assert_within_bar(loss, ref_l.mean(-1), terms_l.mean(-1), dtype, rounded=True)
    assert_within_bar(grad, ref_g / n, terms_g, dtype, 1 / n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4000, 1), (400, 10), (10, 400)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_general_elementwise_loss_and_gradient_with_weights_and_pos_weight(shape, smoothing,
                                                                           dtype):
    rng = np.random.default_rng(3)
    x = logits(dtype, np.prod(shape), 4).reshape(shape)
    z = targets(dtype, x.size, 5).reshape(shape)
    w = rng.uniform(0, 2, shape).astype(dtype)
    pw = rng.uniform(0.1, 5, shape[-1]).astype(dtype)
    g = rng.uniform(-2, 2, shape).astype(dtype)
    loss, grad = nx.sigmoid_cross_entropy_and_grad(x, z, w, pos_weight=pw, reduction="none",
                                                   label_smoothing=smoothing, grad_output=g)
    ref_l, ref_g, terms_l, terms_g = coefficient_form(x, z, "plain", pw, smoothing)
    w_ld = w.astype(np.longdouble)
    assert_within_bar(loss, w_ld * ref_l, np.abs(w_ld) * terms_l, dtype)
    assert_within_bar(grad, g * w_ld * ref_g, np.abs(w_ld) * terms_g, dtype, g)


@pytest.mark.parametrize("shape", [(2000, 3), (50, 300)])
def test_a_huge_row_scale_times_tiny_weights_neither_overflows_nor_underflows(shape):
    """TF's MEAN divides by the sum of the weights: subnormal weights give a
    gradient scale beyond float32's range, whose product with each weight is
    ordinary.  The scale times the weight is formed in float64."""
    from numba_xent import tf

    x = logits(np.float32, np.prod(shape), 6).reshape(shape)
    z = targets(np.float32, x.size, 7).reshape(shape)
    w = np.full(shape, 1e-44, np.float32)  # sum of the weights: ~6e-41 or 1.5e-40
    grad = tf.sigmoid_cross_entropy_grad(z, x, 1.0, weights=w, reduction=tf.Reduction.MEAN)
    _, ref_g, _, terms_g = coefficient_form(x, z)
    total = w.astype(np.longdouble).sum()
    assert np.all(np.isfinite(grad))
    assert_within_bar(grad, w * ref_g / total, terms_g, np.float32, w[0, 0] / total)
