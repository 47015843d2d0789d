"""numba_xent.caffe2 against the Caffe2 operators' formulas (tests/reference.py)."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from numba_xent import caffe2
from reference import caffe2_grad, caffe2_loss

VARIANTS = {
    "plain": {},
    "log_d_trick": {"log_d_trick": True},
    "unjoined_lr_loss": {"unjoined_lr_loss": True},
}
# Relative error bars of the issue: float32 3e-6, float64 1e-12.
RTOL = {np.float32: 3e-6, np.float64: 1e-12}
SHAPES = [(1, 1), (1, 9), (9, 1), (7, 13), (3, 4, 5), (2, 1, 3, 2)]


def random_inputs(shape, dtype, seed=0, extremes=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 4, shape)
    if extremes and x.size > 4:
        flat = x.reshape(-1)
        picks = rng.choice(flat.size, size=min(flat.size // 3, 8), replace=False)
        flat[picks] = rng.choice([0.0, -0.0, 1e-3, -30.0, 30.0, 88.0, -88.0, 1e4, -1e4],
                                 size=picks.size)
    z = rng.uniform(0, 1, shape)
    z[rng.uniform(size=shape) < 0.3] = 1.0
    w = rng.uniform(0, 2, shape)
    return x.astype(dtype), z.astype(dtype), w.astype(dtype)


def assert_loss_close(got, x, z, w, variant):
    """Within RTOL of the reference, relative to the size of the row's terms.

    A term is at most 2 (|x| + 1) |w| for targets in [0, 1]; rows whose terms
    cancel (unjoined, log-D) are held to that scale, not to their small sum.
    A subnormal result is at best the nearest multiple of the smallest subnormal
    (a weight of 1e-45 gives a float32 loss of 1e-45 for the exact 9.7e-46).
    """
    ref = caffe2_loss(x, z, w, variant)
    terms = 2 * (np.abs(x.astype(np.float64)) + 1) * (1 if w is None else np.abs(w))
    np.testing.assert_allclose(got, ref, rtol=RTOL[x.dtype.type],
                               atol=RTOL[x.dtype.type] * np.max(terms.mean(axis=-1), initial=0)
                               + np.finfo(x.dtype).smallest_subnormal)


def assert_grad_close(got, g, x, z, w, variant):
    """Within RTOL of the reference, or within 4 ulps of the size of its terms.

    The gradient is a difference ``k t - q`` (or ``p - k t``) of terms at most
    ``|k| + |q| <= 3`` for targets in [0, 1] (times |g| / n and the weight): backward
    stable, it is accurate to a few ulps of those, not of their difference, which
    cancels (unjoined, x = -0.047, z = 0.328: -5.96e-5 from terms of 0.33; float32
    within 0.36 ulp of the terms, 1.8e-4 of the value).  tests/test_accuracy.py
    holds every element to the exact bar of its own terms.
    """
    ref = caffe2_grad(g, x, z, w, variant)
    scale = 3 * np.max(np.abs(g)) / x.shape[-1] * (1 if w is None else np.max(np.abs(w)))
    # A subnormal result keeps fewer bits: its spacing is the floor of any error.
    np.testing.assert_allclose(got, ref, rtol=RTOL[x.dtype.type],
                               atol=4 * np.finfo(x.dtype).eps * scale
                               + np.finfo(x.dtype).smallest_subnormal)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_gradient_and_fused_match_the_reference(shape, variant, dtype):
    x, z, _ = random_inputs(shape, dtype)
    g = np.random.default_rng(1).uniform(0.5, 1.5, shape[:-1]).astype(dtype)
    flags = VARIANTS[variant]

    loss = caffe2.sigmoid_cross_entropy_with_logits(x, z, **flags)
    grad = caffe2.sigmoid_cross_entropy_with_logits_grad(g, x, z, **flags)
    fused_loss, fused_grad = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g, **flags)

    assert loss.shape == shape[:-1] and loss.dtype == dtype
    assert grad.shape == shape and grad.dtype == dtype
    assert_loss_close(loss, x, z, None, variant)
    assert_grad_close(grad, g, x, z, None, variant)
    # The fused kernel evaluates the same expressions: bit-identical results.
    np.testing.assert_array_equal(fused_loss, loss)
    np.testing.assert_array_equal(fused_grad, grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_weighted_operator_matches_the_reference(shape, dtype):
    x, z, w = random_inputs(shape, dtype, seed=2)
    g = np.random.default_rng(3).uniform(0.5, 1.5, shape[:-1]).astype(dtype)

    loss = caffe2.weighted_sigmoid_cross_entropy_with_logits(x, z, w)
    grad = caffe2.weighted_sigmoid_cross_entropy_with_logits_grad(g, x, z, w)
    fused = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w, g)

    assert_loss_close(loss, x, z, w, "plain")
    assert_grad_close(grad, g, x, z, w, "plain")
    np.testing.assert_array_equal(fused[0], loss)
    np.testing.assert_array_equal(fused[1], grad)


def test_fused_grad_out_defaults_to_ones():
    x, z, w = random_inputs((5, 6), np.float64)
    ones = np.ones(5)
    _, grad = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z)
    np.testing.assert_array_equal(grad, caffe2.sigmoid_cross_entropy_with_logits_grad(ones, x, z))
    _, grad = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w)
    np.testing.assert_array_equal(
        grad, caffe2.weighted_sigmoid_cross_entropy_with_logits_grad(ones, x, z, w))


@pytest.mark.parametrize("variant", VARIANTS)
def test_float32_rows_of_200000_elements_stay_within_3e_6(variant):
    x, z, _ = random_inputs((3, 200_000), np.float32, seed=4, extremes=False)
    loss = caffe2.sigmoid_cross_entropy_with_logits(x, z, **VARIANTS[variant])
    assert_loss_close(loss, x, z, None, variant)


def test_seed_example_values():
    # chainer's documented elementwise losses (002_*.txt) are the plain loss of
    # its non-ignored elements: one element per row, and the first row whole.
    x = np.array([-2.0, 3.0, 0.5, 5.0, 2.0], np.float32)
    t = np.array([0, 1, 0, 1, 1], np.int32)
    documented = np.array([0.126928, 0.04858735, 0.974077, 0.00671535, 0.126928], np.float32)
    np.testing.assert_allclose(caffe2.sigmoid_cross_entropy_with_logits(x[:, None], t[:, None]),
                               documented, rtol=1e-6)
    np.testing.assert_allclose(caffe2.sigmoid_cross_entropy_with_logits(x[:3], t[:3]),
                               documented[:3].mean(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", VARIANTS)
def test_huge_finite_logits_neither_overflow_nor_nan(variant, dtype):
    big = np.finfo(dtype).max / 4
    x = np.array([[big, -big, big, -big]], dtype)
    z = np.array([[1.0, 0.0, 0.5, 0.5]], dtype)
    loss, grad = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, **VARIANTS[variant])
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    # The terms are huge: relative error only (the reference sums in long double).
    np.testing.assert_allclose(loss, caffe2_loss(x, z, None, variant), rtol=RTOL[dtype])
    np.testing.assert_allclose(grad, caffe2_grad(np.ones(1), x, z, None, variant),
                               rtol=RTOL[dtype])


# x, z -> (loss, gradient of the loss) in the limit, per variant.
INF_LIMITS = {
    "plain": [(np.inf, 1, 0, 0), (np.inf, 0, np.inf, 1), (-np.inf, 0, 0, 0),
              (-np.inf, 1, np.inf, -1), (np.inf, 0.25, np.inf, 0.75)],
    "log_d_trick": [(np.inf, 1, 0, 0), (np.inf, 0, 0, 0), (-np.inf, 1, np.inf, -1),
                    (-np.inf, 0, -np.inf, 1), (-np.inf, 0.5, 0, 0)],
    "unjoined_lr_loss": [(np.inf, 1, -np.inf, -1), (np.inf, 0, np.inf, 1),
                         (-np.inf, 0, 0, 0), (-np.inf, 1, np.inf, -1)],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", VARIANTS)
def test_infinite_logits_give_the_mathematical_limits(variant, dtype):
    cases = np.array(INF_LIMITS[variant])
    x = cases[:, :1].astype(dtype)  # one element per row
    z = cases[:, 1:2].astype(dtype)
    loss, grad = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, **VARIANTS[variant])
    np.testing.assert_array_equal(loss, cases[:, 2].astype(dtype))
    np.testing.assert_array_equal(grad[:, 0], cases[:, 3].astype(dtype))


def test_nan_poisons_only_its_own_row():
    x, z, w = random_inputs((4, 5), np.float64)
    x[1, 2] = np.nan
    z[2, 0] = np.nan
    w[3, 4] = np.nan
    for loss, grad in [caffe2.sigmoid_cross_entropy_with_logits_and_grad(x[:3], z[:3]),
                       caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w)]:
        rows = len(loss)
        np.testing.assert_array_equal(np.isnan(loss), [False, True, True, True][:rows])
        assert np.isnan(grad[1, 2]) and np.isnan(grad[2, 0])
        assert np.isnan(grad).sum() == rows - 1


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0,), (0, 0), (2, 0, 3), (3, 2, 0)])
def test_empty_inputs_give_empty_results_and_zero_for_empty_rows(shape):
    x = np.zeros(shape, np.float32)
    loss, grad = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, x)
    assert loss.shape == shape[:-1] and grad.shape == shape
    np.testing.assert_array_equal(loss, np.zeros(shape[:-1], np.float32))
    assert caffe2.sigmoid_cross_entropy_with_logits_grad(loss, x, x).shape == shape


def test_one_dimensional_input_is_one_row_and_zero_d_is_one_element():
    x = np.array([0.5, -1.0, 2.0])
    z = np.array([1.0, 0.0, 1.0])
    loss = caffe2.sigmoid_cross_entropy_with_logits(x, z)
    assert loss.shape == ()
    np.testing.assert_allclose(loss, caffe2_loss(x[None], z[None])[0], rtol=1e-12)
    loss0, grad0 = caffe2.sigmoid_cross_entropy_with_logits_and_grad(np.float64(2.0), 0.0)
    assert loss0.shape == () and grad0.shape == ()
    np.testing.assert_allclose(loss0, np.log1p(np.exp(2.0)), rtol=1e-12)
    np.testing.assert_allclose(grad0, 1 / (1 + np.exp(-2.0)), rtol=1e-12)


@pytest.mark.parametrize("target_dtype", [np.int32, np.int64, np.uint8, np.bool_, np.float16,
                                          np.float32, np.float64])
def test_targets_and_weights_of_other_real_dtypes_are_converted_to_the_logits_dtype(target_dtype):
    x, z, w = random_inputs((4, 6), np.float32)
    z = (z > 0.5).astype(target_dtype)
    w = (w * 3).astype(target_dtype)
    loss = caffe2.weighted_sigmoid_cross_entropy_with_logits(x, z, w)
    assert loss.dtype == np.float32
    expected = caffe2.weighted_sigmoid_cross_entropy_with_logits(
        x, z.astype(np.float32), w.astype(np.float32))
    np.testing.assert_array_equal(loss, expected)


@pytest.mark.parametrize("bad", [np.arange(6).reshape(2, 3), np.ones((2, 3), np.complex64),
                                 np.ones((2, 3), bool), np.ones((2, 3), object),
                                 np.array([["a", "b", "c"]] * 2), np.ones((2, 3), np.int16)])
def test_logits_of_other_dtypes_raise_type_error(bad):
    with pytest.raises(TypeError, match="logits must be a float32, float64, float16 or "
                                        "bfloat16 array"):
        caffe2.sigmoid_cross_entropy_with_logits(bad, np.zeros((2, 3)))


def test_targets_of_non_real_dtype_raise_type_error():
    with pytest.raises(TypeError, match="targets must be a real"):
        caffe2.sigmoid_cross_entropy_with_logits(np.zeros((2, 3)), np.ones((2, 3), complex))
    with pytest.raises(TypeError, match="weights must be a real"):
        caffe2.weighted_sigmoid_cross_entropy_with_logits(np.zeros(3), np.ones(3),
                                                          np.array(["a", "b", "c"]))


@pytest.mark.parametrize("fn", [caffe2.sigmoid_cross_entropy_with_logits,
                                caffe2.sigmoid_cross_entropy_with_logits_and_grad])
def test_both_variant_flags_raise_value_error(fn):
    with pytest.raises(ValueError, match="cannot both be True"):
        fn(np.zeros((2, 3)), np.zeros((2, 3)), log_d_trick=True, unjoined_lr_loss=True)
    with pytest.raises(ValueError, match="cannot both be True"):
        caffe2.sigmoid_cross_entropy_with_logits_grad(np.ones(2), np.zeros((2, 3)),
                                                      np.zeros((2, 3)), log_d_trick=True,
                                                      unjoined_lr_loss=True)


def test_shape_mismatches_raise_value_error_naming_the_argument():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 3\), got \(3, 2\)"):
        caffe2.sigmoid_cross_entropy_with_logits(x, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"weights must have shape \(2, 3\)"):
        caffe2.weighted_sigmoid_cross_entropy_with_logits(x, x, np.zeros(3))
    with pytest.raises(ValueError, match=r"grad_out must have shape \(2,\)"):
        caffe2.sigmoid_cross_entropy_with_logits_grad(np.ones(3), x, x)
    with pytest.raises(ValueError, match="weights must be an array"):
        caffe2.weighted_sigmoid_cross_entropy_with_logits(x, x, None)
    with pytest.raises(ValueError, match="grad_out must be an array"):
        caffe2.sigmoid_cross_entropy_with_logits_grad(None, x, x)


def test_out_buffers_are_written_in_place_and_returned():
    x, z, w = random_inputs((4, 6), np.float64)
    out, grad = np.empty(4), np.empty((4, 6))
    loss, g = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w, out=out,
                                                                         grad=grad)
    assert loss is out and g is grad
    np.testing.assert_array_equal(out, caffe2.weighted_sigmoid_cross_entropy_with_logits(x, z, w))
    # A non-contiguous out receives the same values.
    strided = np.zeros((4, 2))[:, 0]
    assert caffe2.sigmoid_cross_entropy_with_logits(x, z, out=strided) is strided
    np.testing.assert_array_equal(strided, caffe2.sigmoid_cross_entropy_with_logits(x, z))
    grad_f = np.zeros((6, 4)).T
    caffe2.sigmoid_cross_entropy_with_logits_grad(np.ones(4), x, z, out=grad_f)
    np.testing.assert_array_equal(grad_f,
                                  caffe2.sigmoid_cross_entropy_with_logits_grad(np.ones(4), x, z))


def test_gradient_may_overwrite_the_logits_in_place():
    x, z, _ = random_inputs((4, 6), np.float64)
    expected = caffe2.sigmoid_cross_entropy_with_logits_grad(np.ones(4), x, z)
    caffe2.sigmoid_cross_entropy_with_logits_grad(np.ones(4), x, z, out=x)
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("bad_out, error, message", [
    (np.full(5, 7.0), ValueError, r"out must have shape \(4,\)"),
    (np.full(4, 7.0, np.float32), TypeError, "out must have dtype float64"),
    ([7.0] * 4, TypeError, "out must be a NumPy array"),
])
def test_rejected_out_buffers_are_left_untouched(bad_out, error, message):
    x, z, _ = random_inputs((4, 6), np.float64)
    before = np.array(bad_out, copy=True)
    with pytest.raises(error, match=message):
        caffe2.sigmoid_cross_entropy_with_logits(x, z, out=bad_out)
    np.testing.assert_array_equal(np.asarray(bad_out), before)


def test_read_only_and_overlapping_out_buffers_are_refused():
    x, z, _ = random_inputs((4, 6), np.float64)
    read_only = np.zeros(4)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        caffe2.sigmoid_cross_entropy_with_logits(x, z, out=read_only)
    before = x.copy()
    with pytest.raises(ValueError, match="out overlaps the input 'logits'"):
        caffe2.sigmoid_cross_entropy_with_logits(x, z, out=x[:, 0])
    with pytest.raises(ValueError, match="grad overlaps the input 'targets'"):
        caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, grad=z[:, ::-1])
    buf = np.zeros((5, 6))
    with pytest.raises(ValueError, match="out and grad overlap"):
        caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, out=buf[0, :4], grad=buf[:4])
    np.testing.assert_array_equal(x, before)


def test_inputs_are_never_modified():
    x, z, w = random_inputs((5, 7), np.float32)
    g = np.ones(5, np.float32)
    copies = [a.copy() for a in (x, z, w, g)]
    for a in (x, z, w, g):
        a.flags.writeable = False  # a write would raise
    caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w, g)
    caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g, log_d_trick=True)
    for a, c in zip((x, z, w, g), copies):
        np.testing.assert_array_equal(a, c)


def test_strided_fortran_and_negative_stride_inputs_give_the_same_answer():
    x, z, w = random_inputs((6, 8), np.float64)
    g = np.linspace(0.5, 1.5, 6)
    expected = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w, g)
    views = [np.asfortranarray, lambda a: a[::-1][::-1], lambda a: np.repeat(a, 2, axis=1)[:, ::2]]
    for view in views:
        got = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(
            view(x), view(z), view(w), g[::-1].copy()[::-1])
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    # A transposed 3-D array (its rows can't be merged without a copy) still works.
    x3, z3, _ = random_inputs((3, 4, 5), np.float64)
    xt, zt = x3.transpose(1, 0, 2), z3.transpose(1, 0, 2)
    np.testing.assert_array_equal(caffe2.sigmoid_cross_entropy_with_logits(xt, zt),
                                  caffe2.sigmoid_cross_entropy_with_logits(xt.copy(), zt.copy()))


def test_lists_and_scalars_are_accepted_as_array_likes():
    loss = caffe2.sigmoid_cross_entropy_with_logits([[0.0, 1.0]], [[1, 0]])
    np.testing.assert_allclose(loss, caffe2_loss([[0.0, 1.0]], [[1.0, 0.0]]), rtol=1e-12)
    with pytest.raises(ValueError, match="targets cannot be read as an array"):
        caffe2.sigmoid_cross_entropy_with_logits([[0.0, 1.0]], [[1], [0, 1]])


def test_variant_flags_must_be_booleans():
    with pytest.raises(TypeError, match="log_d_trick must be True or False"):
        caffe2.sigmoid_cross_entropy_with_logits(np.zeros(2), np.zeros(2), log_d_trick="yes")


finite = {"allow_nan": False, "allow_infinity": False}


@st.composite
def operator_inputs(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    x = draw(hnp.arrays(dtype, shape, elements=st.floats(-1e4, 1e4, width=32, **finite)))
    z = draw(hnp.arrays(dtype, shape, elements=st.floats(0, 1, width=32)))
    w = draw(hnp.arrays(dtype, shape, elements=st.floats(0, 4, width=32)))
    g = draw(hnp.arrays(dtype, shape[:-1], elements=st.floats(-2, 2, width=32)))
    return x, z, w, g, draw(st.sampled_from(list(VARIANTS)))


@settings(max_examples=60, deadline=None)
@given(operator_inputs())
# A weight of the smallest float32 subnormal: the loss rounds up to it (found by Hypothesis).
@example((np.zeros(1, np.float32), np.zeros(1, np.float32),
          np.full(1, 1e-45, np.float32), np.zeros((), np.float32), "plain"))
def test_property_any_shape_and_values_match_the_reference(inputs):
    x, z, w, g, variant = inputs
    loss, grad = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g, **VARIANTS[variant])
    assert_loss_close(loss, x, z, None, variant)
    assert_grad_close(grad, g, x, z, None, variant)
    loss, grad = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w, g)
    assert_loss_close(loss, x, z, w, "plain")
    assert_grad_close(grad, g, x, z, w, "plain")
