"""The CPU kernels' code generation and work split.

A small call runs the serial build of its kernel; the checks here compile the
parallel build of the same Python function, which large inputs run.
"""

import re

import numba
import numpy as np
import pytest

import numba_xent as nx
from numba_xent import caffe2, cpu, general
from numba_xent._jit import CPU_OPTIONS
from numba_xent.cpu import kernels

LIBM = re.compile(r"[$\s](exp|expf|log1p|log1pf|log|logf)\b")


def packed(asm, width):
    return re.findall(rf"\bv\w+p[sd]\s[^\n]*%{width}mm", asm)


def asm_of_kernel_for(call):
    """Run ``call`` and return the assembly of the one kernel it compiled."""
    before = set(kernels._KERNELS)
    call()
    (key,) = set(kernels._KERNELS) - before or [list(kernels._KERNELS)[-1]]
    dispatcher = kernels._KERNELS[key]
    fresh = numba.njit(parallel=True, **CPU_OPTIONS)(dispatcher.py_func)
    sig = dispatcher.signatures[0]
    fresh.compile(sig)
    return fresh.inspect_asm(sig)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["forward", "gradient", "fused"])
def test_the_element_loops_are_vectorised_prefetched_without_libm_calls(op, dtype):
    # A fresh shape/dtype/option mix each time, so that a new kernel is compiled.
    x = np.zeros((4, 700), dtype)
    z = np.zeros((4, 700), np.int16 if dtype == np.float32 else np.int8)
    g = np.ones(4, dtype)
    calls = {
        "forward": lambda: caffe2.sigmoid_cross_entropy_with_logits(x, z, log_d_trick=True),
        "gradient": lambda: caffe2.sigmoid_cross_entropy_with_logits_grad(g, x, z,
                                                                          log_d_trick=True),
        "fused": lambda: caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g,
                                                                           log_d_trick=True),
    }
    asm = asm_of_kernel_for(calls[op])
    assert not LIBM.search(asm), LIBM.search(asm).group(0)
    wide = packed(asm, "z") + packed(asm, "y")
    assert len(wide) >= 40, f"only {len(wide)} packed ymm/zmm instructions"
    # Without the software prefetch the big-input loops wait on memory (see cpu/prefetch.py).
    assert re.search(r"\bprefetcht0\b", asm)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["focal, gamma 2", "focal, gamma 2.5", "asymmetric"])
def test_the_focusing_losses_element_loops_are_vectorised_without_libm_calls(loss, dtype):
    """Their powers and logs are vecmath's exp and log_unit, inlined (no libm call), and
    the fused element loop stays vectorised."""
    x = np.zeros((4, 700), dtype)
    z = np.zeros((4, 700), np.uint8)
    calls = {
        "focal, gamma 2": lambda: nx.sigmoid_focal_loss_and_grad(x, z, gamma=2.0),
        "focal, gamma 2.5": lambda: nx.sigmoid_focal_loss_and_grad(x, z, gamma=2.5),
        "asymmetric": lambda: nx.asymmetric_loss_and_grad(x, z),
    }
    asm = asm_of_kernel_for(calls[loss])
    assert not LIBM.search(asm), LIBM.search(asm).group(0)
    wide = packed(asm, "z") + packed(asm, "y")
    assert len(wide) >= 40, f"only {len(wide)} packed ymm/zmm instructions"


@pytest.mark.parametrize("rows, n", [(1, 100_000), (3, 33_333), (17, 5000), (5000, 3)])
def test_rows_split_into_pieces_sum_like_whole_rows(rows, n):
    rng = np.random.default_rng(rows)
    x = rng.normal(0, 3, (rows, n))
    z = rng.uniform(0, 1, (rows, n))
    z[:, ::7] = -1
    loss = general.sigmoid_cross_entropy(x, z, ignore_index=-1, reduction="row_sum")
    kept = z != -1
    terms = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    np.testing.assert_allclose(loss, (terms * kept).sum(-1), rtol=1e-12)
    mean = general.sigmoid_cross_entropy(x, z, ignore_index=-1)
    np.testing.assert_allclose(mean, (terms * kept).sum() / kept.sum(), rtol=1e-12)


def test_results_are_bit_identical_run_after_run():
    rng = np.random.default_rng(7)
    x = rng.normal(0, 3, (3, 300_000)).astype(np.float32)
    z = rng.uniform(0, 1, x.shape).astype(np.float32)
    first = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z)
    for _ in range(3):
        again = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z)
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[1], first[1])


def test_one_thread_and_all_threads_agree():
    rng = np.random.default_rng(8)
    x = rng.normal(0, 3, (2, 200_000))
    z = rng.uniform(0, 1, x.shape)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = caffe2.sigmoid_cross_entropy_with_logits(x, z)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_allclose(caffe2.sigmoid_cross_entropy_with_logits(x, z), one, rtol=1e-13)


def test_the_serial_build_for_small_inputs_gives_the_parallel_builds_bits(monkeypatch):
    rng = np.random.default_rng(9)
    x = rng.normal(0, 3, (40, 1000)).astype(np.float32)
    z = rng.uniform(0, 1, x.shape).astype(np.float32)
    assert x.size >= cpu.PARALLEL_MIN
    parallel = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z)
    monkeypatch.setattr(cpu, "PARALLEL_MIN", x.size + 1)
    monkeypatch.setattr(cpu, "replays", False)  # a replay would repeat the parallel call
    serial = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def flat_launches(monkeypatch):
    """The ``flat`` argument of every kernel the CPU backend asks for, in order (every
    call through the runner: a replay asks for none)."""
    seen = []
    get = kernels.get
    monkeypatch.setattr(cpu, "replays", False)

    def spy(key, parallel=True, flat=False):
        seen.append(flat)
        return get(key, parallel, flat)

    monkeypatch.setattr(kernels, "get", spy)
    return seen


@pytest.mark.parametrize("n", [1, 3, 16, 100, "block - 1"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_short_contiguous_rows_run_the_flat_loop_with_every_option(monkeypatch, n, dtype):
    """Rows shorter than a block, contiguous: the flat loop, for every option; its
    results are the row loop's (the same element body), its row sums in another
    order (an ulp or so of float64), and fused equals separate bit for bit."""
    n = kernels.block_size(dtype) - 1 if n == "block - 1" else n
    rng = np.random.default_rng(n)
    rows = 40_000 // n + 7  # parallel build, blocks ending mid-task
    x = rng.normal(0, 4, (rows, n)).astype(dtype)
    z = rng.uniform(0, 1, (rows, n)).astype(dtype)
    z[:, ::3] = -1
    w = rng.uniform(0, 2, (rows, n)).astype(dtype)
    pw = rng.uniform(0.5, 2, n).astype(dtype)
    g = rng.uniform(0.5, 1.5, rows).astype(dtype)
    options = dict(pos_weight=pw, ignore_index=-1, label_smoothing=0.1)
    seen = flat_launches(monkeypatch)
    flat = [general.sigmoid_cross_entropy_and_grad(x, z, w, reduction=r, grad_output=go,
                                                   **options)
            for r, go in (("row_sum", g), ("none", x), ("mean", None))]
    separate = general.sigmoid_cross_entropy(x, z, w, reduction="row_sum", **options)
    separate_grad = general.sigmoid_cross_entropy_grad(x, z, w, reduction="row_sum",
                                                       grad_output=g, **options)
    assert seen and all(seen)
    np.testing.assert_array_equal(flat[0][0], separate)
    np.testing.assert_array_equal(flat[0][1], separate_grad)
    seen.clear()
    # The same values through strided views: the row loop (rows of one element
    # have a flat view whatever their stride: the flat loop, strided).
    def strided(a):  # rows one element apart: no 1-D view
        padded = np.zeros((a.shape[0], a.shape[1] + 1), a.dtype)
        padded[:, :-1] = a
        return padded[:, :-1]

    rowwise = [general.sigmoid_cross_entropy_and_grad(
        strided(x), strided(z), strided(w), reduction=r, grad_output=go, **options)
        for r, go in (("row_sum", g), ("none", x), ("mean", None))]
    assert seen and (all(seen) if n == 1 else not any(seen))
    for (loss, grad), (loss_r, grad_r) in zip(flat, rowwise):
        np.testing.assert_allclose(loss, loss_r, rtol=1e-13 if dtype == np.float64 else 1e-6)
        np.testing.assert_array_equal(grad, grad_r)


def test_the_flat_loop_counts_and_fills_like_the_row_loop(monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.normal(0, 3, (9001, 5))
    z = rng.integers(-1, 2, x.shape).astype(np.float64)
    seen = flat_launches(monkeypatch)
    mean = general.sigmoid_cross_entropy(x, z, ignore_index=-1, reduction="row_mean")
    assert seen == [True]  # the loss, counting the kept elements in the same pass
    kept = z != -1
    terms = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(mean, (terms * kept).sum(-1) / kept.sum(-1), rtol=1e-12)
    # Per-row weights broadcast along a row have no flat view: the row loop.
    seen.clear()
    per_row = rng.uniform(0, 2, (9001, 1))
    got = general.sigmoid_cross_entropy(x, z, per_row, ignore_index=-1, reduction="row_sum")
    assert seen == [False]
    np.testing.assert_allclose(got, (per_row * terms * kept).sum(-1), rtol=1e-12)
