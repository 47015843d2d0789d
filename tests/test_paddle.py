"""numba_xent.paddle: paddle's sigmoid_cross_entropy_with_logits semantics."""

import numpy as np
import pytest

from numba_xent import paddle
from reference import bce_with_logits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("ignore_index", [-100, -1])
def test_loss_and_gradient_against_the_reference(ignore_index, normalize, dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 4, (6, 7)).astype(dtype)
    label = rng.uniform(0, 1, (6, 7)).astype(dtype)
    label[rng.uniform(size=label.shape) < 0.25] = ignore_index
    dout = rng.uniform(0.5, 1.5, x.shape).astype(dtype)
    kept = label != ignore_index
    divisor = kept.sum() if normalize else 1
    loss_el, grad_el = bce_with_logits(x, np.where(kept, label, 0))
    rtol = 3e-6 if dtype == np.float32 else 1e-12

    loss = paddle.sigmoid_cross_entropy_with_logits(x, label, ignore_index, normalize)
    np.testing.assert_allclose(loss, loss_el * kept / divisor, rtol=rtol)
    dx = paddle.sigmoid_cross_entropy_with_logits_grad(x, label, dout, ignore_index, normalize)
    np.testing.assert_allclose(dx, dout * grad_el * kept / divisor, rtol=rtol, atol=1e-15)


def test_everything_ignored_with_normalize_gives_zero():
    # paddle's GPU kernel gives 0, its CPU kernel NaN: ../shared/DECISIONS.md.
    x, label = np.ones((2, 2)), np.full((2, 2), -100.0)
    np.testing.assert_array_equal(paddle.sigmoid_cross_entropy_with_logits(x, label,
                                                                           normalize=True), 0)
    np.testing.assert_array_equal(
        paddle.sigmoid_cross_entropy_with_logits_grad(x, label, x, normalize=True), 0)


def test_a_label_is_ignored_only_when_equal_to_ignore_index():
    x = np.array([1.0, 1.0])
    label = np.array([-1.5, -1.0])  # paddle's CPU kernel would truncate -1.5 to -1
    loss = paddle.sigmoid_cross_entropy_with_logits(x, label, ignore_index=-1)
    assert loss[0] == pytest.approx(np.log1p(np.exp(1.0)) + 1.5) and loss[1] == 0


def test_gradient_at_zero_is_the_derivative():
    # paddle 3.3's CPU kernel returns -(0.5 + label) dout at x == 0.
    dx = paddle.sigmoid_cross_entropy_with_logits_grad(np.zeros(2), np.array([0.0, 0.25]),
                                                       np.array([2.0, 2.0]))
    np.testing.assert_allclose(dx, [1.0, 0.5])


def test_bad_arguments():
    with pytest.raises(TypeError, match="ignore_index must be a number"):
        paddle.sigmoid_cross_entropy_with_logits(np.ones(2), np.ones(2), ignore_index="x")
    with pytest.raises(ValueError, match=r"label must have shape \(2,\)"):
        paddle.sigmoid_cross_entropy_with_logits(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match=r"dout must have shape \(2,\)"):
        paddle.sigmoid_cross_entropy_with_logits_grad(np.ones(2), np.ones(2), np.ones(1))
