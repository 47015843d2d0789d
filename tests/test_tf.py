"""numba_xent.tf: tf.compat.v1.losses.sigmoid_cross_entropy semantics."""

import numpy as np
import pytest

from numba_xent import tf
from numba_xent.tf import Reduction
from reference import bce_with_logits

rng = np.random.default_rng(2)
LOGITS = rng.normal(0, 4, (4, 5))
LABELS = rng.integers(0, 2, (4, 5)).astype(np.int32)
WEIGHTS = {
    "scalar": np.float64(2.5),
    "full": np.where(rng.uniform(size=(4, 5)) < 0.3, 0.0, rng.uniform(0, 2, (4, 5))),
    "column": rng.uniform(0, 2, (4, 1)),
    "row": np.array([[0.0, 1.0, 2.0, 0.5, 1.5]]),
}


def expected(labels, logits, weights, smoothing, reduction):
    z = labels * (1 - smoothing) + 0.5 * smoothing
    w = np.broadcast_to(weights, logits.shape)
    loss, grad = bce_with_logits(logits, z, w)
    divisor = {
        Reduction.NONE: 1.0,
        Reduction.SUM: 1.0,
        Reduction.MEAN: w.sum(),
        Reduction.SUM_OVER_BATCH_SIZE: logits.size,
        Reduction.SUM_BY_NONZERO_WEIGHTS: np.count_nonzero(w),
    }[reduction]
    if reduction == Reduction.NONE:
        return loss, grad
    return (loss.sum() / divisor if divisor else 0.0), (grad / divisor if divisor else 0 * grad)


@pytest.mark.parametrize("reduction", Reduction.all())
@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("smoothing", [0, 0.1])
def test_every_reduction_and_weights_kind_in_float64(smoothing, weights, reduction):
    w = WEIGHTS[weights]
    loss = tf.sigmoid_cross_entropy(LABELS, LOGITS, w, smoothing, reduction)
    grad_loss = np.full(LOGITS.shape, 0.75) if reduction == Reduction.NONE else np.float64(0.75)
    grad = tf.sigmoid_cross_entropy_grad(LABELS, LOGITS, grad_loss, w, smoothing, reduction)
    ref_loss, ref_grad = expected(LABELS, LOGITS, w, smoothing, reduction)
    # Full float64 precision, where TensorFlow itself reduces in float32.
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(grad, 0.75 * ref_grad, rtol=1e-12, atol=1e-16)
    assert loss.shape == (LOGITS.shape if reduction == Reduction.NONE else ())


def test_all_zero_weights_divide_safely_to_zero():
    for reduction in (Reduction.MEAN, Reduction.SUM_BY_NONZERO_WEIGHTS):
        assert tf.sigmoid_cross_entropy(LABELS, LOGITS, 0.0, reduction=reduction) == 0
        np.testing.assert_array_equal(
            tf.sigmoid_cross_entropy_grad(LABELS, LOGITS, 1.0, 0.0, reduction=reduction), 0)


def test_rank_one_weights_of_batch_length_weigh_each_sample():
    per_sample = np.array([1.0, 0.0, 2.0, 3.0])
    np.testing.assert_array_equal(
        tf.sigmoid_cross_entropy(LABELS, LOGITS, per_sample),
        tf.sigmoid_cross_entropy(LABELS, LOGITS, per_sample[:, None]))


def test_float32_labels_of_any_real_dtype_and_the_default_reduction():
    logits = LOGITS.astype(np.float32)
    loss = tf.sigmoid_cross_entropy(LABELS.astype(bool), logits)
    assert loss.dtype == np.float32
    ref, _ = expected(LABELS, logits.astype(np.float64), 1.0, 0, Reduction.SUM_BY_NONZERO_WEIGHTS)
    np.testing.assert_allclose(loss, ref, rtol=3e-6)
    assert Reduction.SUM_OVER_NONZERO_WEIGHTS == Reduction.SUM_BY_NONZERO_WEIGHTS


def test_the_documented_errors_are_value_errors():
    with pytest.raises(ValueError, match="multi_class_labels must not be None"):
        tf.sigmoid_cross_entropy(None, LOGITS)
    with pytest.raises(ValueError, match="logits must not be None"):
        tf.sigmoid_cross_entropy(LABELS, None)
    with pytest.raises(ValueError, match="weights must not be None"):
        tf.sigmoid_cross_entropy(LABELS, LOGITS, weights=None)
    with pytest.raises(ValueError, match=r"multi_class_labels must have shape \(4, 5\)"):
        tf.sigmoid_cross_entropy(LABELS.T, LOGITS)
    with pytest.raises(ValueError, match="weights must be a scalar, of shape"):
        tf.sigmoid_cross_entropy(LABELS, LOGITS, weights=np.ones(5))
    with pytest.raises(ValueError, match="weights must be a scalar, of shape"):
        tf.sigmoid_cross_entropy(LABELS, LOGITS, weights=np.ones((2, 5)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        tf.sigmoid_cross_entropy(LABELS, LOGITS, reduction="mean")
    with pytest.raises(ValueError, match=r"grad_loss must have shape \(\)"):
        tf.sigmoid_cross_entropy_grad(LABELS, LOGITS, np.ones((4, 5)))
