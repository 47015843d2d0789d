"""numba_xent on device arrays: every front end against the CPU backend and the references.

Without a GPU (CI) these tests run the CUDA kernels in Numba's simulator: the
module switches it on before ``numba.cuda`` is first imported (which takes the
simulator or the real driver for the rest of the process), unless a GPU
answers.  The CPU tests of the same run are untouched: they never import
``numba.cuda``, the only reader of ``NUMBA_ENABLE_CUDASIM``.  On a GPU the same
tests run the real kernels, and also take CuPy arrays and PyTorch tensors where
those are installed.  Shapes are small: every simulated thread is a Python thread.
"""

import ctypes
import importlib
import itertools
import os
import subprocess
import sys


def gpu_present(library="nvcuda.dll" if os.name == "nt" else "libcuda.so.1"):
    """Whether a CUDA driver answers with a GPU, asked without importing numba.cuda."""
    try:
        driver = ctypes.CDLL(library)
    except OSError:
        return False
    count = ctypes.c_int(0)
    return (driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0
            and count.value > 0)


STARTED_SIMULATOR = ("numba.cuda" not in sys.modules
                     and os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0")
                     and not gpu_present())
if STARTED_SIMULATOR:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if "numba.core.config" in sys.modules:  # read when numba was imported: read it again
        sys.modules["numba.core.config"].reload_config()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

try:
    from numba import cuda  # noqa: E402
except ImportError:  # no numba.cuda at all: the skip below says why
    cuda = None

import numba_xent as nx  # noqa: E402
from numba_xent import _dispatch, caffe2, chainer, paddle, tf  # noqa: E402
import reference  # noqa: E402
import test_focal  # noqa: E402
from reference import bce_with_logits  # noqa: E402
from test_caffe2 import (  # noqa: E402
    RTOL,
    VARIANTS,
    assert_grad_close,
    assert_loss_close,
    random_inputs,
)

try:
    from numba_xent import cuda as backend
    from numba_xent.cuda import arrays, groups
except ImportError as err:  # numba.cuda imported for a GPU that is not there
    backend = None
    REASON = str(err)
else:
    REASON = "numba.cuda was imported for a GPU before these tests, and there is none"

SIMULATOR = backend is not None and backend.SIMULATOR
USABLE = SIMULATOR or (backend is not None and cuda is not None and cuda.is_available())
pytestmark = pytest.mark.skipif(not USABLE, reason=REASON)


def library(name):
    """The module ``name`` if it is installed and can make device arrays here, else None."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    try:
        if name == "cupy":
            return module if module.cuda.runtime.getDeviceCount() > 0 else None
        if name == "torch":
            return module if module.cuda.is_available() else None
    except Exception:  # a library without a working CUDA runtime
        return None
    return module


# The simulator runs Numba device arrays only; a GPU runs CuPy and PyTorch arrays too.
KINDS = ["numba"] + ([] if SIMULATOR else [k for k in ("cupy", "torch") if library(k)])


def test_gpu_probe_can_answer_both_ways():
    assert gpu_present("libno-such-cuda-driver.so") is False
    if STARTED_SIMULATOR:
        assert gpu_present() is False
    if USABLE and not SIMULATOR:
        assert gpu_present() is True


def test_library_guard_can_answer_both_ways():
    assert library("numba_xent_no_such_module") is None
    assert library("numpy") is np
    assert set(KINDS) <= {"numba", "cupy", "torch"} and KINDS[0] == "numba"


def dev(a, kind="numba"):
    """A host array as a device array of ``kind`` (anything else as it is)."""
    if not isinstance(a, np.ndarray):
        return a
    if kind == "cupy":
        return library("cupy").asarray(a)
    if kind == "torch":
        return library("torch").as_tensor(a, device="cuda")
    return cuda.to_device(np.ascontiguousarray(a) if a.ndim else a)


def host(d):
    """A device result back on the host (for checking only)."""
    if isinstance(d, tuple):
        return tuple(host(v) for v in d)
    if hasattr(d, "copy_to_host"):
        return d.copy_to_host()
    if type(d).__module__.startswith("cupy"):
        return library("cupy").asnumpy(d)
    return d.detach().cpu().numpy()


def both(fn, *args, kind="numba", **kwargs):
    """``fn`` on host arrays and on device copies: (CPU result, device result on the host).

    Every device result is of the logits' kind and never a Numba view of ours.
    """
    return fn(*args, **kwargs), on_device(fn, *args, kind=kind, **kwargs)


def on_device(fn, *args, kind="numba", **kwargs):
    """``fn`` on device copies of host arrays: its result on the host (checked, as for
    :func:`both`, to come back as arrays of ``kind``)."""
    got = fn(*[dev(a, kind) for a in args], **{k: dev(v, kind) for k, v in kwargs.items()})
    for g in got if isinstance(got, tuple) else (got,):
        assert arrays.kind(g) == kind and not isinstance(g, arrays.View) or SIMULATOR and \
            type(g).__name__ == "FakeCUDAArray", type(g)
    return host(got)


def assert_same(got, expected, dtype=None, rtol=None, atol=0.0):
    """A device result within the CPU tests' tolerance of the CPU backend's."""
    expected = np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    rtol = RTOL[(dtype or expected.dtype).type] if rtol is None else rtol
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


# -- Caffe2 -------------------------------------------------------------------------

# (rows, n): one thread per row (n <= 4), groups of 2-32 threads, 3-D inputs.
SHAPES = [(9, 1), (7, 13), (3, 4, 5), (2, 40), (1, 130)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_caffe2_forward_gradient_and_fused(shape, variant, dtype, kind):
    x, z, _ = random_inputs(shape, dtype)
    g = np.random.default_rng(1).uniform(0.5, 1.5, shape[:-1]).astype(dtype)
    flags = VARIANTS[variant]
    cpu_loss, loss = both(caffe2.sigmoid_cross_entropy_with_logits, x, z, kind=kind, **flags)
    cpu_grad, grad = both(caffe2.sigmoid_cross_entropy_with_logits_grad, g, x, z, kind=kind,
                          **flags)
    _, (fused_loss, fused_grad) = both(caffe2.sigmoid_cross_entropy_with_logits_and_grad,
                                       x, z, g, kind=kind, **flags)
    assert_loss_close(loss, x, z, None, variant)
    assert_grad_close(grad, g, x, z, None, variant)
    assert_same(loss, cpu_loss)
    assert_same(grad, cpu_grad, atol=RTOL[dtype] * 3 * g.max() / shape[-1] * 1e-3)
    # The fused kernel evaluates the same expressions: bit-identical results.
    np.testing.assert_array_equal(fused_loss, loss)
    np.testing.assert_array_equal(fused_grad, grad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_caffe2_weighted_operator(dtype):
    x, z, w = random_inputs((6, 11), dtype, seed=2)
    g = np.random.default_rng(3).uniform(0.5, 1.5, 6).astype(dtype)
    _, loss = both(caffe2.weighted_sigmoid_cross_entropy_with_logits, x, z, w)
    _, grad = both(caffe2.weighted_sigmoid_cross_entropy_with_logits_grad, g, x, z, w)
    _, fused = both(caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad, x, z, w, g)
    assert_loss_close(loss, x, z, w, "plain")
    assert_grad_close(grad, g, x, z, w, "plain")
    np.testing.assert_array_equal(fused[0], loss)
    np.testing.assert_array_equal(fused[1], grad)
    _, (_, default) = both(caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad, x, z, w)
    ones = caffe2.weighted_sigmoid_cross_entropy_with_logits_grad(
        dev(np.ones(6, dtype)), dev(x), dev(z), dev(w))
    np.testing.assert_array_equal(default, host(ones))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_infinite_huge_and_nan_logits(dtype):
    big = np.finfo(dtype).max / 4
    x = np.array([[np.inf, -np.inf, big, -big, 0.0], [1.0, np.nan, 2.0, 3.0, 4.0]], dtype)
    z = np.array([[1.0, 0.0, 1.0, 0.5, 0.25], [0.0, 1.0, 1.0, 0.0, 1.0]], dtype)
    expected, got = both(caffe2.sigmoid_cross_entropy_with_logits_and_grad, x, z)
    np.testing.assert_array_equal(np.isnan(got[0]), [False, True])
    np.testing.assert_allclose(got[0][0], expected[0][0], rtol=RTOL[dtype])
    np.testing.assert_array_equal(np.isnan(got[1]), np.isnan(expected[1]))
    np.testing.assert_allclose(got[1], expected[1], rtol=RTOL[dtype])


# -- Row layouts: long rows cut into chunks, groups wider than a warp ----------------

@pytest.fixture
def geometry(monkeypatch):
    """Set ``(threads per block, resident blocks)`` of the GPU for one test."""
    def set_geometry(threads, resident):
        monkeypatch.setitem(backend._GEOMETRY, 0 if SIMULATOR else cuda.get_current_device().id,
                            (threads, resident))
    return set_geometry


def test_long_rows_are_cut_into_chunks_and_summed_in_order(geometry):
    geometry(32, 1)
    assert groups.plan(2, 1000, 32, 1).nchunks == 2  # what this test exercises
    x, z, _ = random_inputs((2, 1000), np.float64, seed=5)
    z[0, ::7] = -1
    expected, got = both(nx.sigmoid_cross_entropy, x, z, ignore_index=-1, reduction="row_mean")
    assert_same(got, expected)
    expected, got = both(caffe2.sigmoid_cross_entropy_with_logits, x[:1], z[:1])
    assert_same(got, expected)


def test_groups_wider_than_a_warp(geometry):
    geometry(64, 1)
    assert groups.plan(3, 300, 64, 1).group == 64
    x, z, _ = random_inputs((3, 300), np.float64, seed=6)
    z[1, :50] = -1
    expected, got = both(nx.sigmoid_cross_entropy, x, z, ignore_index=-1, reduction="row_mean")
    assert_same(got, expected)
    expected, got = both(nx.sigmoid_cross_entropy_grad, x, z, ignore_index=-1,
                         reduction="row_mean")
    assert_same(got, expected, atol=1e-16)


def test_whole_array_sums_of_many_rows(geometry):
    geometry(32, 1)
    x, z, _ = random_inputs((70, 3), np.float64, seed=7)  # 70 row sums -> 2 chunks -> 1
    expected, got = both(nx.sigmoid_cross_entropy, x, z, reduction="sum")
    assert got.shape == () and np.isclose(got, expected, rtol=1e-12, atol=0)


def test_a_warp_reads_contiguous_memory_for_the_benchmark_shapes():
    """Coalescing, from the kernels' own index functions, for contiguous rows.

    A warp's UNROLL loads of one step read runs of consecutive elements: one
    warp-wide run per load for long rows (a group of 32 threads or more), whole
    consecutive rows for short ones.
    """
    for rows, n in [(16384, 4096), (10**6, 16), (64, 10**6), (5, 1), (100, 37), (9, 3)]:
        layout = groups.plan(rows, n, groups.THREADS, 132 * 8)
        per_block = layout.threads // layout.group
        for block, c in [(0, 0), (layout.blocks - 1, layout.nchunks - 1)]:
            first = block * per_block
            for warp in range(layout.threads // groups.WARP):
                flat = []
                for u in range(groups.UNROLL):
                    for tid in range(warp * groups.WARP, (warp + 1) * groups.WARP):
                        r, lane = groups.row_of(first, tid, layout.group, layout.shift)
                        j = groups.element_of(c * layout.chunk, lane, 0, u, layout.group,
                                              groups.UNROLL)
                        if r < rows and j < min(n, (c + 1) * layout.chunk):
                            flat.append(r * n + j)
                runs = np.split(np.sort(flat), np.flatnonzero(np.diff(np.sort(flat)) != 1) + 1)
                assert len(runs) == 1 or min(map(len, runs)) >= groups.WARP, (rows, n)


# -- chainer, paddle, TensorFlow, the general API ------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chainer(dtype, kind):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 4, (5, 6)).astype(dtype)
    t = rng.integers(-1, 2, (5, 6)).astype(np.int32)
    gy = rng.uniform(0.5, 1.5, (5, 6)).astype(dtype)
    for normalize in (True, False):
        expected, got = both(chainer.sigmoid_cross_entropy, x, t, normalize, kind=kind)
        assert_same(got, expected)
        expected, got = both(chainer.sigmoid_cross_entropy_grad, x, t, np.array(0.75, dtype),
                             normalize, kind=kind)
        assert_same(got, expected, atol=1e-15)
    expected, got = both(chainer.sigmoid_cross_entropy, x, t, reduce="no", kind=kind)
    assert_same(got, expected)
    expected, got = both(chainer.sigmoid_cross_entropy_grad, x, t, gy, reduce="no", kind=kind)
    assert_same(got, expected, atol=1e-15)
    np.testing.assert_allclose(got, bce_with_logits(x, np.maximum(t, 0))[1] * gy * (t != -1),
                               rtol=RTOL[dtype], atol=1e-15)
    expected, got = both(chainer.sigmoid_cross_entropy, x, np.full_like(t, -1), kind=kind)
    assert got == 0 == expected


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_paddle(dtype, kind):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 4, (6, 7)).astype(dtype)
    label = rng.uniform(0, 1, (6, 7)).astype(dtype)
    label[rng.uniform(size=label.shape) < 0.25] = -1
    dout = rng.uniform(0.5, 1.5, x.shape).astype(dtype)
    kept = label != -1
    for normalize in (True, False):
        loss_el, _ = bce_with_logits(x, np.where(kept, label, 0))
        divisor = kept.sum() if normalize else 1
        expected, got = both(paddle.sigmoid_cross_entropy_with_logits, x, label, -1, normalize,
                             kind=kind)
        assert_same(got, expected)
        np.testing.assert_allclose(got, loss_el * kept / divisor, rtol=RTOL[dtype])
        expected, got = both(paddle.sigmoid_cross_entropy_with_logits_grad, x, label, dout, -1,
                             normalize, kind=kind)
        assert_same(got, expected, atol=1e-15)
    _, got = both(paddle.sigmoid_cross_entropy_with_logits, x, np.full_like(label, -100),
                  normalize=True, kind=kind)
    np.testing.assert_array_equal(got, 0)


TF_WEIGHTS = {
    "default": 1.0,
    "scalar": np.float64(2.5),
    "full": np.where(np.random.default_rng(2).uniform(size=(4, 5)) < 0.3, 0.0, 1.5),
    "per_sample": np.array([1.0, 0.0, 2.0, 3.0]),
    "row": np.array([[0.0, 1.0, 2.0, 0.5, 1.5]]),
}


@pytest.mark.parametrize("reduction", tf.Reduction.all())
def test_tf_every_reduction_and_weights_kind(reduction):
    from test_tf import expected as tf_reference

    rng = np.random.default_rng(2)
    logits = rng.normal(0, 4, (4, 5))
    labels = rng.integers(0, 2, (4, 5)).astype(np.int32)
    grad_loss = np.full((4, 5), 0.75) if reduction == tf.Reduction.NONE else np.float64(0.75)
    for name, w in TF_WEIGHTS.items():
        smoothing = 0.1 if name == "full" else 0
        expected, got = both(tf.sigmoid_cross_entropy, labels, logits, w, smoothing, reduction)
        assert_same(got, expected, atol=1e-300)
        expected, grad = both(tf.sigmoid_cross_entropy_grad, labels, logits, grad_loss, w,
                              smoothing, reduction)
        assert_same(grad, expected, atol=1e-16)
        w_ref = w[:, None] if name == "per_sample" else w
        ref_loss, ref_grad = tf_reference(labels, logits, w_ref, smoothing, reduction)
        np.testing.assert_allclose(got, ref_loss, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(grad, 0.75 * ref_grad, rtol=1e-12, atol=1e-16)
    _, got = both(tf.sigmoid_cross_entropy, labels.astype(bool), logits.astype(np.float32),
                  reduction=reduction)
    assert got.dtype == np.float32


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", nx.REDUCTIONS)
def test_general_api_every_reduction(reduction, kind):
    from test_general import PW, W, X, Z

    shape = {"none": X.shape, "row_sum": (5,), "row_mean": (5,)}.get(reduction, ())
    g = np.random.default_rng(3).uniform(0.5, 1.5, shape)
    for w, pw in [(None, None), (W, PW)]:
        expected, got = both(nx.sigmoid_cross_entropy_and_grad, X, Z, w, pos_weight=pw,
                             reduction=reduction, grad_output=g, kind=kind)
        assert_same(got[0], expected[0])
        assert_same(got[1], expected[1], atol=1e-16)
        _, grad_el = bce_with_logits(X, Z, w, pw)
        scale = {"mean": 1 / X.size, "row_mean": 1 / 6}.get(reduction, 1.0)
        g_el = g if reduction == "none" else (g[..., None] if shape else g)
        np.testing.assert_allclose(got[1], g_el * scale * grad_el, rtol=1e-12, atol=1e-16)
        _, alone = both(nx.sigmoid_cross_entropy, X, Z, w, pos_weight=pw, reduction=reduction,
                        kind=kind)
        np.testing.assert_array_equal(alone, got[0])
        _, alone = both(nx.sigmoid_cross_entropy_grad, X, Z, w, pos_weight=pw,
                        reduction=reduction, grad_output=g, kind=kind)
        np.testing.assert_array_equal(alone, got[1])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_focal_and_asymmetric_losses(dtype, kind):
    """Every element within the bars of tests/test_focal.py (a GPU's float32 kernels
    divide approximately), powers by products and by exp and log, weighted; the means
    the elements' (the loss summed in float64)."""
    x, z, w = random_inputs((5, 37), dtype)
    pw = np.linspace(0.5, 2, 37).astype(dtype)
    tiny = np.finfo(dtype).smallest_subnormal
    for fn, weights, options in [
            (nx.sigmoid_focal_loss_and_grad, w, dict(gamma=2.0, pos_weight=pw)),
            (nx.sigmoid_focal_loss_and_grad, w, dict(alpha=None, gamma=2.5,
                                                     label_smoothing=0.1)),
            (nx.asymmetric_loss_and_grad, None, {}),
            (nx.asymmetric_loss_and_grad, None, dict(clip=0, gamma_neg=2.5))]:
        loss, grad = on_device(fn, x, z, weights, reduction="none", kind=kind, **options)
        if fn is nx.asymmetric_loss_and_grad:
            test_focal.assert_asymmetric_within(loss, grad, x, z, dtype, **options)
        else:
            ref_l, ref_g, terms_l, terms_g = reference.focal(
                x, z, options.get("alpha", 0.25), options["gamma"],
                options.get("pos_weight", 1), options.get("label_smoothing", 0.0))
            test_focal.assert_within(loss, w * ref_l, w * terms_l, dtype)
            test_focal.assert_within(grad, w * ref_g, w * terms_g, dtype)
        mean, mean_grad = on_device(fn, x, z, weights, reduction="mean", kind=kind, **options)
        assert_same(mean, dtype(loss.sum(dtype=np.float64) / x.size))
        assert_same(mean_grad, grad / dtype(x.size), atol=tiny)


def test_general_api_ignore_index_and_means_over_nothing():
    from test_general import X, Z

    z = Z.copy()
    z[0, :3] = z[2, :] = -1
    for reduction in ("mean", "row_mean"):
        expected, got = both(nx.sigmoid_cross_entropy, X, z, ignore_index=-1,
                             reduction=reduction)
        assert_same(got, expected)
        expected, got = both(nx.sigmoid_cross_entropy_grad, X, z, ignore_index=-1,
                             reduction=reduction)
        assert_same(got, expected, atol=1e-16)
    assert np.isnan(got[2]).sum() == 0 and np.all(got[2] == 0)  # the all-ignored row
    empty = np.zeros((0, 4))
    _, got = both(nx.sigmoid_cross_entropy, empty, empty)
    assert got.shape == () and np.isnan(got)
    _, got = both(nx.sigmoid_cross_entropy, empty, empty, reduction="sum")
    assert got == 0


# -- Arrays: results, buffers, layouts, dtypes ---------------------------------------

@pytest.fixture
def launches(monkeypatch):
    """The number of kernel launches since the last call of the returned function."""
    return launch_counter(monkeypatch, run=True)


@pytest.fixture
def launches_not_simulated(monkeypatch):
    """``launches``, but under the simulator the kernels are counted and not run (their
    results are garbage): for the tests of the launches themselves, whose kernels the
    other tests check, and which the simulator would spend minutes running."""
    return launch_counter(monkeypatch, run=not SIMULATOR)


def launch_counter(monkeypatch, run):
    if SIMULATOR:
        from numba.cuda.simulator import kernel as simulated

        cls, attribute = simulated.FakeCUDAKernel, "__call__"

        def counts(self):  # device functions and calls inside a kernel are no launches
            return not (self._device or simulated._kernel_context)
    else:
        from numba.cuda import dispatcher

        cls, attribute = dispatcher._LaunchConfiguration, "__call__"

        def counts(self):
            return True
    seen = [0]
    original = getattr(cls, attribute)

    def counting(self, *args, **kwargs):
        launch = counts(self)
        seen[0] += launch
        if launch and not run:
            return None
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, attribute, counting)

    def since():
        n, seen[0] = seen[0], 0
        return n
    return since


def test_every_call_is_one_launch_and_one_more_for_a_divisor_the_gradient_needs_first(
        launches_not_simulated, geometry):
    """Each call's epilogue (scales, divisors, means, the casts, chunked rows and the
    whole-array sums) runs in its loss kernel, so a call is one launch; a count
    (ignore_index, normalize) or a sum of TF's array weights that a divisor needs
    before the kernel reads the first element is one launch more."""
    launches = launches_not_simulated
    geometry(32, 1)
    for shape in [(4, 6), (2, 1000), (70, 3)]:  # one row block; rows in chunks; many blocks
        x, z, w = random_inputs(shape, np.float32, seed=8)
        z[0, 0] = -1
        t = z.astype(np.int32)
        dx, dz, dw, dt = dev(x), dev(z), dev(w), dev(t)
        for reduction, ignore in itertools.product(nx.REDUCTIONS, (None, -1)):
            options = dict(reduction=reduction, ignore_index=ignore)
            nx.sigmoid_cross_entropy(dx, dz, dw, **options)
            assert launches() == 1, (shape, options)
            counted = ignore is not None and reduction in ("mean", "row_mean")
            nx.sigmoid_cross_entropy_grad(dx, dz, dw, **options)
            assert launches() == 1 + counted, (shape, options)
            nx.sigmoid_cross_entropy_and_grad(dx, dz, dw, **options)
            assert launches() == 1 + counted, (shape, options)
        caffe2.sigmoid_cross_entropy_with_logits_and_grad(dx, dz, dev(np.ones(shape[0],
                                                                               np.float32)))
        assert launches() == 1
        for normalize, reduce in itertools.product((True, False), ("mean", "no")):
            chainer.sigmoid_cross_entropy(dx, dt, normalize, reduce)
            assert launches() == 1
            gy = dev(np.full(shape if reduce == "no" else (), 0.5, np.float32))
            chainer.sigmoid_cross_entropy_grad(dx, dt, gy, normalize, reduce)
            assert launches() == 1 + (normalize and reduce == "mean")
        for normalize in (True, False):
            paddle.sigmoid_cross_entropy_with_logits(dx, dz, -1, normalize)
            assert launches() == 1 + normalize
        labels = dev(t.clip(0))
        for reduction in tf.Reduction.all():
            by_weights = reduction in (tf.Reduction.MEAN, tf.Reduction.SUM_BY_NONZERO_WEIGHTS)
            tf.sigmoid_cross_entropy(labels, dx, dw, 0.1, reduction)
            assert launches() == 1 + by_weights, reduction
            tf.sigmoid_cross_entropy(labels, dx, 0.5, 0.1, reduction)  # a number's sum: host
            assert launches() == 1, reduction
            tf.sigmoid_cross_entropy_grad(labels, dx, dev(np.ones(shape)) if reduction == "none"
                                          else 1.0, 2.0, 0.1, reduction)
            assert launches() == 1, reduction


def test_results_are_device_arrays_made_without_a_host_round_trip(monkeypatch):
    x, z, _ = random_inputs((5, 6), np.float32)
    dx, dz, dt = dev(x), dev(z), dev((z > 0.5).astype(np.int32))
    cls = type(dx)

    def refuse(*args, **kwargs):
        raise AssertionError("a device array was copied to the host, or the host waited")

    monkeypatch.setattr(cls, "copy_to_host", refuse)
    monkeypatch.setattr(cls, "__array__", refuse, raising=False)
    if not SIMULATOR:  # nor waits for the device
        from numba.cuda.cudadrv import driver

        monkeypatch.setattr(driver.Stream, "synchronize", refuse)
        monkeypatch.setattr(driver.Context, "synchronize", refuse)
    scalars = [nx.sigmoid_cross_entropy(dx, dz), chainer.sigmoid_cross_entropy(dx, dt),
               tf.sigmoid_cross_entropy(dz, dx)]
    arrays_ = [nx.sigmoid_cross_entropy(dx, dz, reduction="row_mean"),
               paddle.sigmoid_cross_entropy_with_logits(dx, dz, normalize=True),
               nx.sigmoid_cross_entropy_grad(dx, dz)]
    monkeypatch.undo()
    for r in scalars + arrays_:
        assert type(r) is cls
    assert all(r.shape == () for r in scalars)
    assert np.isclose(host(scalars[0]), nx.sigmoid_cross_entropy(x, z), rtol=3e-6)


def device_view(d, fn):
    """``fn`` (a NumPy view operation) applied to a Numba device array, without a copy."""
    d = arrays.view(d)
    return arrays.from_shadow(fn(arrays.shadow(d)), d)


def test_out_buffers_are_written_in_place():
    x, z, w = random_inputs((4, 6), np.float64)
    out, grad = dev(np.zeros(4)), dev(np.zeros((4, 6)))
    loss, g = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(
        dev(x), dev(z), dev(w), out=out, grad=grad)
    assert loss is out and g is grad
    expected = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w)
    assert_same(host(out), expected[0])
    assert_same(host(grad), expected[1], atol=1e-16)
    # Buffers whose strides allow no (rows, n) view get the values copied in.
    out_t = device_view(dev(np.zeros((2, 3))), np.transpose)
    x3, z3, _ = random_inputs((3, 2, 5), np.float64)
    caffe2.sigmoid_cross_entropy_with_logits(dev(x3), dev(z3), out=out_t)
    assert_same(host(out_t), caffe2.sigmoid_cross_entropy_with_logits(x3, z3))
    rows = dev(np.zeros(4))
    assert nx.sigmoid_cross_entropy(dev(x), dev(z), reduction="row_sum", out=rows) is rows
    scalar = dev(np.zeros(()))
    assert nx.sigmoid_cross_entropy(dev(x), dev(z), out=scalar) is scalar
    assert np.isclose(host(scalar), nx.sigmoid_cross_entropy(x, z), rtol=1e-12)


def test_gradient_may_overwrite_the_logits_in_place():
    x, z, _ = random_inputs((4, 6), np.float64)
    dx = dev(x)
    caffe2.sigmoid_cross_entropy_with_logits_grad(dev(np.ones(4)), dx, dev(z), out=dx)
    assert_same(host(dx), caffe2.sigmoid_cross_entropy_with_logits_grad(np.ones(4), x, z),
                atol=1e-16)


def test_bad_buffers_and_mixed_inputs_are_refused():
    x, z, _ = random_inputs((4, 6), np.float64)
    dx, dz = dev(x), dev(z)
    with pytest.raises(ValueError, match="out overlaps the input 'logits'"):
        caffe2.sigmoid_cross_entropy_with_logits(dx, dz, out=dx[:, 0])
    with pytest.raises(ValueError, match=r"out must have shape \(4,\)"):
        caffe2.sigmoid_cross_entropy_with_logits(dx, dz, out=dev(np.zeros(5)))
    with pytest.raises(TypeError, match="out must have dtype float64"):
        caffe2.sigmoid_cross_entropy_with_logits(dx, dz, out=dev(np.zeros(4, np.float32)))
    with pytest.raises(TypeError, match="'logits' is on the GPU but 'targets' is on the host"):
        caffe2.sigmoid_cross_entropy_with_logits(dx, z)
    with pytest.raises(TypeError, match="'out' is on the GPU but 'logits', 'targets' are"):
        caffe2.sigmoid_cross_entropy_with_logits(x, z, out=dev(np.zeros(4)))
    with pytest.raises(TypeError, match="x must be a float32, float64, float16 or bfloat16 array"):
        chainer.sigmoid_cross_entropy(dev(x.astype(np.int32)), dev(z))
    np.testing.assert_array_equal(host(dx), x)


def test_strided_fortran_and_reversed_device_arrays():
    x, z, w = random_inputs((6, 8), np.float64)
    g = np.linspace(0.5, 1.5, 6)
    expected = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w, g)
    wide = [dev(np.repeat(a, 2, axis=1))[:, ::2] for a in (x, z, w)]
    fortran = [dev(np.asfortranarray(a)) for a in (x, z, w)]
    reversed_ = [dev(a[::-1].copy())[::-1] for a in (x, z, w)]
    for views in (wide, fortran, reversed_):
        got = host(caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(*views, dev(g)))
        assert_same(got[0], expected[0])
        assert_same(got[1], expected[1], atol=1e-16)
    # A transposed 3-D array (its rows can't be merged without a copy) is copied on the device.
    x3, z3, _ = random_inputs((3, 4, 5), np.float64)
    xt, zt = x3.transpose(1, 0, 2), z3.transpose(1, 0, 2)
    got = host(caffe2.sigmoid_cross_entropy_with_logits(
        device_view(dev(x3), lambda a: a.transpose(1, 0, 2)),
        device_view(dev(z3), lambda a: a.transpose(1, 0, 2))))
    assert_same(got, caffe2.sigmoid_cross_entropy_with_logits(xt, zt))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, bool, np.float16, np.float64])
def test_targets_and_weights_of_other_real_dtypes(dtype):
    x, z, w = random_inputs((4, 6), np.float32)
    expected, got = both(caffe2.weighted_sigmoid_cross_entropy_with_logits, x,
                         (z > 0.5).astype(dtype), (w * 3).astype(dtype))
    assert_same(got, expected)


def _half_dtypes():
    import ml_dtypes  # the test extra's NumPy bfloat16

    return [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)]


@pytest.mark.parametrize("dtype", _half_dtypes(), ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean", "row_mean"])
def test_half_logits_targets_and_weights(dtype, reduction):
    """float16 and bfloat16 device arrays, read as their bits as on the CPU: results of
    the logits' dtype within one of its ulps of the CPU backend's, and half inputs of
    float32 logits within the float32 tolerance."""
    x, z, w = (a.astype(dtype) for a in random_inputs((5, 37), np.float32))
    pw = np.linspace(0.5, 2, 37).astype(dtype)
    z[0, :3] = -1
    tiny, eps = (float(v) for v in (np.finfo(np.float16).tiny, np.finfo(np.float16).eps)) \
        if dtype == np.float16 else (2.0 ** -126, 2.0 ** -7)
    for logits, (rtol, atol) in [(x, (eps, tiny * eps)), (x.astype(np.float32), (3e-6, 1e-9))]:
        expected, got = both(nx.sigmoid_cross_entropy_and_grad, logits, z, w, pos_weight=pw,
                             ignore_index=-1, reduction=reduction)
        for e, g in zip(expected, got, strict=True):
            assert g.dtype == e.dtype == logits.dtype and g.shape == e.shape
            np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64),
                                       rtol=rtol, atol=atol)
    expected, got = both(caffe2.sigmoid_cross_entropy_with_logits, x, z)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64),
                               rtol=eps, atol=tiny * eps)


@pytest.mark.parametrize("dtype", _half_dtypes(), ids=str)
def test_half_focal_and_asymmetric_losses(dtype):
    """Half device arrays through both focusing losses: within one ulp of their dtype of
    the CPU backend's results from the same halves."""
    x, z, w = (a.astype(dtype) for a in random_inputs((5, 37), np.float32))
    tiny, eps = (float(v) for v in (np.finfo(np.float16).tiny, np.finfo(np.float16).eps)) \
        if dtype == np.float16 else (2.0 ** -126, 2.0 ** -7)
    for fn, options in [(nx.sigmoid_focal_loss_and_grad, dict(gamma=2.5)),
                        (nx.asymmetric_loss_and_grad, {})]:
        expected, got = both(fn, x, z, w, reduction="none", **options)
        for e, g in zip(expected, got, strict=True):
            assert g.dtype == e.dtype == dtype
            np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64),
                                       rtol=eps, atol=tiny * eps)


def test_inputs_are_never_modified_and_results_are_deterministic():
    x, z, w = random_inputs((5, 7), np.float32)
    dx, dz, dw = dev(x), dev(z), dev(w)
    first = host(nx.sigmoid_cross_entropy_and_grad(dx, dz, dw, reduction="sum"))
    again = host(nx.sigmoid_cross_entropy_and_grad(dx, dz, dw, reduction="sum"))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    for d, a in ((dx, x), (dz, z), (dw, w)):
        np.testing.assert_array_equal(host(d), a)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0,), (2, 0, 3)])
def test_empty_inputs(shape):
    x = np.zeros(shape, np.float32)
    expected, got = both(caffe2.sigmoid_cross_entropy_with_logits_and_grad, x, x)
    assert got[0].shape == shape[:-1] and got[1].shape == shape
    np.testing.assert_array_equal(got[0], expected[0])


def test_importing_the_package_needs_no_gpu_nor_numba_cuda():
    code = ("import sys, numpy, numba_xent; numba_xent.sigmoid_cross_entropy(numpy.ones(2), "
            "numpy.ones(2)); print(sorted(m for m in sys.modules if m.startswith("
            "('numba.cuda', 'numba_cuda', 'numba_xent.cuda'))))")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_device_arrays_route_to_the_cuda_backend():
    be = _dispatch.backend(logits=dev(np.zeros((2, 3))), weights=1.0, g=np.float32(2))
    assert isinstance(be, backend.Backend)
    assert _dispatch.backend(logits=np.zeros(3)) is nx.cpu


# -- CuPy and PyTorch specifics (a GPU only: the simulator runs Numba arrays alone) ----

needs_torch = pytest.mark.skipif("torch" not in KINDS, reason="PyTorch with CUDA not available")
needs_cupy = pytest.mark.skipif("cupy" not in KINDS, reason="CuPy with a GPU not available")


@needs_torch
def test_torch_tensors_that_require_grad_and_torch_streams():
    torch = library("torch")
    x, z, _ = random_inputs((6, 9), np.float32)
    tx = torch.as_tensor(x, device="cuda").requires_grad_()
    tz = torch.as_tensor(z, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        be = _dispatch.backend(logits=tx, targets=tz)
        assert int(be.stream) == stream.cuda_stream
        loss, grad = caffe2.sigmoid_cross_entropy_with_logits_and_grad(tx, tz)
        mean = nx.sigmoid_cross_entropy(tx, tz)
    stream.synchronize()
    assert isinstance(loss, torch.Tensor) and loss.device == tx.device and mean.shape == ()
    expected = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z)
    assert_same(host(loss), expected[0])
    assert_same(host(grad), expected[1], atol=1e-9)


@pytest.mark.parametrize("pw_shape", ["1 x column", "row", "element"])
@pytest.mark.parametrize("shape", [(5, 37), (5, 2000)])  # rows in one block; in chunks
def test_pos_weight_per_element(shape, pw_shape):
    x, z, w = random_inputs(shape, np.float32)
    pw_shape = {"1 x column": (1, shape[1]), "row": (shape[0], 1), "element": shape}[pw_shape]
    pw = np.random.default_rng(7).uniform(0.5, 2, pw_shape).astype(np.float32)
    for reduction in ("none", "row_mean"):
        expected, got = both(nx.sigmoid_cross_entropy_and_grad, x, z, w, pos_weight=pw,
                             reduction=reduction)
        assert_same(got[0], expected[0])
        # a few float32 ulps of the gradient's terms, w (lw sigmoid(x) + pw z) <= 8 here
        assert_same(got[1], expected[1], atol=8 * 4 * 2.0 ** -23)


def test_torch_tensors_run_on_the_stream_torch_reports(monkeypatch):
    """PyTorch's interface (version 2) names no stream: a tensor's stream is
    ``torch.cuda.current_stream(tensor.device)`` (a stand-in torch here, so that the
    simulator checks the choice too; the test above checks it on a GPU)."""
    asked, made = [], []
    stream = type("Stream", (), {"cuda_stream": 0x5150})()
    torch = type(sys)("torch")
    torch.cuda = type(sys)("torch.cuda")
    torch.cuda.current_stream = lambda device: asked.append(device) or stream
    monkeypatch.setattr(arrays, "_torch", lambda: torch)
    monkeypatch.setattr(arrays, "stream_of", lambda handle: made.append(handle) or "ours")
    assert arrays.torch_stream(type("Tensor", (), {"device": "cuda:1"})()) == "ours"
    assert asked == ["cuda:1"] and made == [0x5150]


def test_a_stream_handle_of_0_is_the_default_stream():
    assert arrays.stream_of(0) == arrays.stream_of(None) == 0


@needs_torch
def test_torch_half_tensors_on_the_device():
    """float16 tensors through their interface; bfloat16 ones, which have none, through
    their int16 view: results are tensors of the logits' dtype on the device."""
    import ml_dtypes

    torch = library("torch")
    x, z, _ = random_inputs((6, 9), np.float32)
    for dtype, np_dtype in [(torch.float16, np.float16), (torch.bfloat16, ml_dtypes.bfloat16)]:
        tx = torch.as_tensor(x, device="cuda").to(dtype)
        tz = torch.as_tensor(z, device="cuda").to(dtype)
        for reduction in ("none", "mean"):
            loss, grad = nx.sigmoid_cross_entropy_and_grad(tx, tz, reduction=reduction)
            assert loss.dtype == grad.dtype == dtype and loss.device == tx.device
            expected = nx.sigmoid_cross_entropy_and_grad(
                x.astype(np_dtype), z.astype(np_dtype), reduction=reduction)
            eps = float(torch.finfo(dtype).eps)
            for g, e in zip((loss, grad), expected, strict=True):
                np.testing.assert_allclose(g.float().cpu().numpy(), e.astype(np.float32),
                                           rtol=eps, atol=1e-6)


@needs_cupy
def test_cupy_arrays_on_a_cupy_stream():
    cp = library("cupy")
    x, z, _ = random_inputs((6, 9), np.float64)
    with cp.cuda.Stream(non_blocking=True) as stream:
        cx, cz = cp.asarray(x), cp.asarray(z)
        be = _dispatch.backend(logits=cx, targets=cz)
        assert int(be.stream) == stream.ptr
        loss = nx.sigmoid_cross_entropy(cx, cz, reduction="row_mean")
        total = tf.sigmoid_cross_entropy(cz, cx)
    stream.synchronize()
    assert isinstance(loss, cp.ndarray) and isinstance(total, cp.ndarray) and total.shape == ()
    assert_same(host(loss), nx.sigmoid_cross_entropy(x, z, reduction="row_mean"))
    assert_same(host(total), tf.sigmoid_cross_entropy(z, x))
