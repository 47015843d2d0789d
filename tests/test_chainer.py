"""numba_xent.chainer: chainer.functions.sigmoid_cross_entropy semantics."""

import numpy as np
import pytest

from numba_xent import chainer
from reference import bce_with_logits

X = np.array([[-2.0, 3.0, 0.5], [5.0, 2.0, -0.5]], np.float32)
T = np.array([[0, 1, 0], [1, 1, -1]], np.int32)


def test_the_documented_example():
    np.testing.assert_allclose(chainer.sigmoid_cross_entropy(X, T), 0.25664714, rtol=1e-7)
    np.testing.assert_allclose(chainer.sigmoid_cross_entropy(X, T, normalize=False),
                               0.64161783, rtol=1e-7)
    y = chainer.sigmoid_cross_entropy(X, T, reduce="no")
    assert y.shape == (2, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.126928, 0.04858735, 0.974077],
                                   [0.00671535, 0.126928, 0.0]], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (5, 6), (3, 4, 5)])
@pytest.mark.parametrize("normalize", [True, False])
def test_mean_and_gradient_against_the_reference(shape, normalize, dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 4, shape).astype(dtype)
    t = rng.integers(-1, 2, shape).astype(np.int32)
    loss_el, grad_el = bce_with_logits(x, np.maximum(t, 0))
    kept = t != -1
    divisor = max(1, kept.sum()) if normalize else max(1, shape[0])
    rtol = 3e-6 if dtype == np.float32 else 1e-12

    loss = chainer.sigmoid_cross_entropy(x, t, normalize=normalize)
    assert loss.shape == () and loss.dtype == dtype
    np.testing.assert_allclose(loss, (loss_el * kept).sum() / divisor, rtol=rtol)
    gx = chainer.sigmoid_cross_entropy_grad(x, t, np.array(0.75, dtype), normalize=normalize)
    np.testing.assert_allclose(gx, 0.75 * grad_el * kept / divisor, rtol=rtol, atol=1e-15)
    gy = rng.uniform(0.5, 1.5, shape).astype(dtype)
    gx = chainer.sigmoid_cross_entropy_grad(x, t, gy, normalize=normalize, reduce="no")
    np.testing.assert_allclose(gx, gy * grad_el * kept, rtol=rtol, atol=1e-15)


def test_everything_ignored_gives_zero_not_nan():
    t = np.full((2, 3), -1, np.int32)
    for normalize in (True, False):
        assert chainer.sigmoid_cross_entropy(X, t, normalize=normalize) == 0
        np.testing.assert_array_equal(chainer.sigmoid_cross_entropy_grad(X, t, np.float32(1)), 0)


def test_ignored_elements_give_zero_even_with_nan_or_inf_logits():
    x = np.array([[np.nan, np.inf, 1.0]])
    t = np.array([[-1, -1, 0]])
    np.testing.assert_allclose(chainer.sigmoid_cross_entropy(x, t, reduce="no"),
                               [[0, 0, np.log1p(np.e)]])


def test_zero_rows():
    x, t = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    assert chainer.sigmoid_cross_entropy(x, t) == 0
    assert chainer.sigmoid_cross_entropy(x, t, reduce="no").shape == (0, 3)
    assert chainer.sigmoid_cross_entropy_grad(x, t, np.float32(1)).shape == (0, 3)


def test_labels_beyond_minus_one_zero_one_enter_the_formula_as_they_are():
    x, t = np.array([[0.5]]), np.array([[2]])
    np.testing.assert_allclose(chainer.sigmoid_cross_entropy(x, t), np.log1p(np.exp(0.5)) - 1.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"reduce must be one of \('mean', 'no'\), got 'sum'"):
        chainer.sigmoid_cross_entropy(X, T, reduce="sum")
    with pytest.raises(TypeError, match="t must be an integer array"):
        chainer.sigmoid_cross_entropy(X, T.astype(np.float32))
    with pytest.raises(ValueError, match=r"t must have shape \(2, 3\)"):
        chainer.sigmoid_cross_entropy(X, T[0])
    with pytest.raises(ValueError, match=r"gy must have shape \(\)"):
        chainer.sigmoid_cross_entropy_grad(X, T, np.ones((2, 3)))
    with pytest.raises(TypeError, match="normalize must be True or False"):
        chainer.sigmoid_cross_entropy(X, T, normalize=None)
