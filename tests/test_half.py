"""Half precision on the CPU: float16 and bfloat16 (ml_dtypes) arrays read in place.

Arithmetic is float32 (with float64 sums); results come back in the logits' dtype,
rounded once (a sum: through float32).  Each half result is held within 1 ulp of
its own dtype of the float64 reference computed from the same half inputs.
"""

import pathlib

import ml_dtypes
import numpy as np
import pytest
from numba import njit
import reference
from reference import bce_with_logits

import numba_xent as nx
from numba_xent import _half, caffe2, chainer, cpu, paddle, tf
from numba_xent.cpu import kernels

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
HALVES = [F16, BF16]


def as64(a):
    return np.asarray(a).astype(np.float64)


def ulps(got, expected, dtype):
    """|got - expected| in units of the spacing of ``dtype`` at ``expected`` (rounded to
    it): the spacing of its bit patterns, found by stepping them."""
    rounded = np.asarray(expected, np.float64).astype(dtype)
    bits = rounded.view(np.uint16).astype(np.int32)
    magnitude = bits & 0x7FFF
    up = ((bits & 0x8000) | np.minimum(magnitude + 1, 0x7FFF)).astype(np.uint16).view(dtype)
    spacing = np.abs(as64(up) - as64(rounded))
    spacing = np.where(spacing > 0, spacing, np.inf)
    return np.abs(as64(got) - np.asarray(expected, np.float64)) / spacing


def assert_within_one_ulp(got, expected, dtype):
    assert got.dtype == dtype
    got, expected = np.broadcast_arrays(as64(got), np.asarray(expected, np.float64))
    same_special = (np.isnan(got) & np.isnan(expected)) | (got == expected)
    worst = np.max(np.where(same_special, 0, ulps(got, expected, dtype)), initial=0)
    assert worst <= 1, worst


# -- the conversions ---------------------------------------------------------------

@njit
def _widen(bits, kind_is_bf16, out):
    for i in range(bits.size):
        out[i] = _half.from_bfloat16(bits[i]) if kind_is_bf16 else _half.from_float16(bits[i])


@njit
def _narrow(values, kind_is_bf16, out):
    for i in range(values.size):
        out[i] = _half.to_bfloat16(values[i]) if kind_is_bf16 else _half.to_float16(values[i])


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_every_half_widens_exactly(dtype):
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    got = np.empty(bits.size, np.float32)
    _widen(bits, dtype == BF16, got)
    expected = bits.view(dtype).astype(np.float32)
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.uint32), expected[~nan].view(np.uint32))


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_float32_rounds_to_nearest_even_half(dtype):
    rng = np.random.default_rng(1)
    values = rng.integers(0, 1 << 32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    values = values.view(np.float32)
    # halfway cases and the edges: ties, the largest finite, overflow, subnormals
    ties = (np.arange(1 << 16, dtype=np.uint32) << 16 | 0x8000).view(np.float32)
    f16_ties = np.arange(-65520, 65520, 0.5, dtype=np.float32)
    edges = np.array([0, -0.0, np.inf, -np.inf, np.nan, 65504, 65519.99, 65520, 3.4e38,
                      -3.4e38, 5.96e-8, 2.98e-8, 1e-45, -1e-40], np.float32)
    values = np.concatenate([values, ties, f16_ties, edges])
    got = np.empty(values.size, np.uint16)
    _narrow(values, dtype == BF16, got)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = values.astype(dtype)
    nan = np.isnan(values)
    np.testing.assert_array_equal(np.isnan(got.view(dtype)), nan)
    np.testing.assert_array_equal(got[~nan], expected[~nan].view(np.uint16))


# -- the front ends --------------------------------------------------------------------

def inputs(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 4, shape).astype(dtype)
    z = rng.uniform(0, 1, shape).astype(dtype)
    w = rng.uniform(0, 2, shape).astype(dtype)
    pw = rng.uniform(0.5, 2, shape[-1:]).astype(dtype)
    x.flat[:3] = [np.inf, -np.inf, 30000]
    z.flat[:3] = [1, 0, 1]  # exact limits: loss and gradient 0
    return x, z, w, pw


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("shape", [(6, 37), (3, 700), (4, 2, 9)])  # flat loop, row loop, N-D
def test_general_api_within_one_ulp_of_the_float64_reference(dtype, shape):
    x, z, w, pw = inputs(shape, dtype)
    with np.errstate(invalid="ignore"):  # the reference's inf * 0 at the exact limits
        loss_el, grad_el = bce_with_logits(as64(x), as64(z), as64(w), as64(pw))
    loss_el.flat[:2] = grad_el.flat[:2] = 0  # x = +inf, z = 1 and x = -inf, z = 0
    loss, grad = nx.sigmoid_cross_entropy_and_grad(x, z, w, pos_weight=pw, reduction="none")
    assert_within_one_ulp(loss, loss_el, dtype)
    assert_within_one_ulp(grad, grad_el, dtype)
    assert loss.flat[0] == 0 and grad.flat[0] == 0 and loss.flat[1] == 0
    for reduction, expected in [("sum", loss_el.sum()), ("mean", loss_el.mean()),
                                ("row_sum", loss_el.sum(-1)), ("row_mean", loss_el.mean(-1))]:
        got = nx.sigmoid_cross_entropy(x, z, w, pos_weight=pw, reduction=reduction)
        assert_within_one_ulp(got, expected, dtype)
    mean_grad = nx.sigmoid_cross_entropy_grad(x, z, w, pos_weight=pw)
    assert_within_one_ulp(mean_grad, grad_el / x.size, dtype)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_focal_and_asymmetric_losses_within_one_ulp_of_the_float64_reference(dtype):
    x, z, w, pw = inputs((6, 37), dtype, seed=6)
    x64, z64 = as64(x), as64(z)
    for fn, options, (ref_l, ref_g, *_) in [
            (nx.sigmoid_focal_loss_and_grad, dict(gamma=2.5, pos_weight=pw),
             reference.focal(x64, z64, 0.25, 2.5, as64(pw))),
            (nx.sigmoid_focal_loss_and_grad, dict(gamma=2.0, label_smoothing=0.1),
             reference.focal(x64, z64, 0.25, 2.0, smoothing=0.1)),
            (nx.asymmetric_loss_and_grad, {}, reference.asymmetric(x64, z64))]:
        ref_l, ref_g = as64(ref_l), as64(ref_g)
        if "label_smoothing" not in options:  # the exact limits (the reference's NaN)
            ref_l.flat[:2] = ref_g.flat[:2] = 0
        loss, grad = fn(x, z, reduction="none", **options)
        assert_within_one_ulp(loss, ref_l, dtype)
        assert_within_one_ulp(grad, ref_g, dtype)
        finite = np.isfinite(ref_l)
        mean, mean_grad = fn(x[finite.all(-1)], z[finite.all(-1)], **options)
        assert_within_one_ulp(mean, ref_l[finite.all(-1)].mean(), dtype)
        assert_within_one_ulp(mean_grad, ref_g[finite.all(-1)] / mean_grad.size, dtype)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_half_targets_weights_and_gradients_with_other_logits(dtype):
    """Any input may be half whatever the logits are; targets compare to ignore_index as
    their values."""
    x32, z, w, pw = inputs((5, 11), dtype, seed=3)
    x32 = x32.astype(np.float32)
    z.flat[5:9] = -1
    g = np.linspace(0.5, 2, 55).reshape(5, 11).astype(dtype)
    got = nx.sigmoid_cross_entropy_grad(x32, z, w, grad_output=g, pos_weight=pw,
                                        ignore_index=-1, reduction="none")
    expected = nx.sigmoid_cross_entropy_grad(x32, as64(z), as64(w), grad_output=as64(g),
                                             pos_weight=as64(pw), ignore_index=-1,
                                             reduction="none")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)  # every half is a float32 exactly
    assert not got.flat[5:9].any()


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_every_front_end_takes_and_returns_halves(dtype):
    x, z, w, _ = inputs((4, 6), dtype, seed=4)
    t = (as64(z) > 0.5).astype(np.int32)
    g = np.ones(4, dtype)
    x64, z64, w64 = as64(x), as64(z), as64(w)
    cases = [
        (caffe2.sigmoid_cross_entropy_with_logits(x, z),
         caffe2.sigmoid_cross_entropy_with_logits(x64, z64)),
        (caffe2.weighted_sigmoid_cross_entropy_with_logits_grad(g, x, z, w),
         caffe2.weighted_sigmoid_cross_entropy_with_logits_grad(as64(g), x64, z64, w64)),
        (chainer.sigmoid_cross_entropy(x, t), chainer.sigmoid_cross_entropy(x64, t)),
        (chainer.sigmoid_cross_entropy_grad(x, t, np.ones((), dtype)),
         chainer.sigmoid_cross_entropy_grad(x64, t, np.ones(()))),
        (paddle.sigmoid_cross_entropy_with_logits(x, z, normalize=True),
         paddle.sigmoid_cross_entropy_with_logits(x64, z64, normalize=True)),
        (tf.sigmoid_cross_entropy(t, x, w, 0.1), tf.sigmoid_cross_entropy(t, x64, w64, 0.1)),
        (tf.sigmoid_cross_entropy_grad(t, x, np.ones((), dtype), w),
         tf.sigmoid_cross_entropy_grad(t, x64, 1.0, w64)),
    ]
    for got, expected in cases:
        assert_within_one_ulp(got, expected, dtype)


def test_inputs_are_read_in_place(monkeypatch):
    """The kernel gets views of the caller's half arrays, not converted copies."""
    x, z, w, pw = inputs((8, 8), F16)
    zb = z.astype(BF16)
    seen = []
    kernel_call = cpu.kernel_call
    monkeypatch.setattr(cpu, "kernel_call", lambda *a: seen.append(a) or kernel_call(*a))
    monkeypatch.setattr(cpu, "replays", False)
    nx.sigmoid_cross_entropy_and_grad(x, zb, w, pos_weight=pw)
    (args,) = seen
    for view, caller in zip(args[1:5], (x, zb, w, pw)):
        assert np.shares_memory(view, caller)


def test_the_conversions_vectorise():
    """float16 logits: the kernel widens and narrows with the F16C / AVX-512 conversions
    (where this CPU has them), in vector loops."""
    x, z, _, _ = inputs((64, 64), F16)
    nx.sigmoid_cross_entropy_and_grad(x, z, reduction="none")
    compiled = [k for (key, parallel, flat), k in kernels._KERNELS.items()
                if key.dtype == "float16" and key.elem and key.grad and not parallel and flat]
    assert compiled
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if " f16c" not in (cpuinfo.read_text() if cpuinfo.exists() else ""):
        pytest.skip("no F16C on this CPU (or no /proc/cpuinfo to tell)")
    asm = "\n".join(k.inspect_asm(sig) for k in compiled for sig in k.signatures)
    assert "vcvtph2ps" in asm and "vcvtps2ph" in asm


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean", "row_mean"])
def test_dask_gives_the_numpy_front_ends_halves(dtype, reduction):
    da = pytest.importorskip("dask.array")
    nxd = pytest.importorskip("numba_xent.dask")
    x, z, w, pw = inputs((40, 9), dtype, seed=5)
    got = nxd.sigmoid_cross_entropy(da.from_array(x, chunks=(16, 9)), z, w, pos_weight=pw,
                                    reduction=reduction).compute(scheduler="sync")
    expected = nx.sigmoid_cross_entropy(x, z, w, pos_weight=pw, reduction=reduction)
    assert got.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(np.asarray(got).view(np.uint16), expected.view(np.uint16))
