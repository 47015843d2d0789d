"""The general API (numba_xent top level), PyTorch's BCE-with-logits semantics."""

import numpy as np
import pytest

import numba_xent as nx
from reference import bce_with_logits

rng = np.random.default_rng(3)
X = rng.normal(0, 4, (5, 6))
Z = rng.uniform(0, 1, (5, 6))
W = rng.uniform(0, 2, (5, 6))
PW = rng.uniform(0.5, 3, 6)


def reduce(values, reduction, count=None):
    count = values.size if count is None else count
    return {
        "none": values,
        "sum": values.sum(),
        "mean": values.sum() / count,
        "row_sum": values.sum(-1),
        "row_mean": values.mean(-1),
    }[reduction]


@pytest.mark.parametrize("reduction", nx.REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weight", [None, "vector", "scalar"])
def test_every_reduction_matches_the_reference(reduction, weighted, pos_weight):
    w = W if weighted else None
    pw = {"vector": PW, "scalar": np.float64(2.0), None: None}[pos_weight]
    loss_el, grad_el = bce_with_logits(X, Z, w, pw)
    shape = {"none": X.shape, "row_sum": (5,), "row_mean": (5,)}.get(reduction, ())
    g = rng.uniform(0.5, 1.5, shape)
    scale = {"mean": 1 / X.size, "row_mean": 1 / X.shape[-1]}.get(reduction, 1.0)
    g_el = g if reduction == "none" else (g[..., None] if shape else g)

    loss, grad = nx.sigmoid_cross_entropy_and_grad(X, Z, w, pos_weight=pw, reduction=reduction,
                                                   grad_output=g)
    np.testing.assert_allclose(loss, reduce(loss_el, reduction), rtol=1e-12)
    np.testing.assert_allclose(grad, g_el * scale * grad_el, rtol=1e-12, atol=1e-16)
    np.testing.assert_array_equal(loss, nx.sigmoid_cross_entropy(X, Z, w, pos_weight=pw,
                                                                 reduction=reduction))
    np.testing.assert_array_equal(grad, nx.sigmoid_cross_entropy_grad(
        X, Z, w, pos_weight=pw, reduction=reduction, grad_output=g))


def test_grad_output_defaults_to_ones():
    np.testing.assert_array_equal(nx.sigmoid_cross_entropy_grad(X, Z),
                                  nx.sigmoid_cross_entropy_grad(X, Z, grad_output=1.0))


def test_label_smoothing_moves_targets_towards_one_half():
    smoothed = Z * 0.8 + 0.1
    np.testing.assert_array_equal(nx.sigmoid_cross_entropy(X, Z, label_smoothing=0.2),
                                  nx.sigmoid_cross_entropy(X, smoothed))


def test_ignore_index_drops_elements_from_losses_gradients_and_counts():
    z = Z.copy()
    z[0, :3] = z[2, :] = -1
    kept = z != -1
    loss_el, grad_el = bce_with_logits(X, np.where(kept, z, 0))
    loss_el, grad_el = loss_el * kept, grad_el * kept
    np.testing.assert_allclose(nx.sigmoid_cross_entropy(X, z, ignore_index=-1),
                               loss_el.sum() / kept.sum(), rtol=1e-12)
    with np.errstate(invalid="ignore"):
        row_mean = loss_el.sum(-1) / kept.sum(-1)  # the all-ignored row: NaN, as torch's mean
    np.testing.assert_allclose(
        nx.sigmoid_cross_entropy(X, z, ignore_index=-1, reduction="row_mean"), row_mean,
        rtol=1e-12)
    grad = nx.sigmoid_cross_entropy_grad(X, z, ignore_index=-1, reduction="row_mean")
    np.testing.assert_allclose(grad, grad_el / np.maximum(kept.sum(-1), 1)[:, None], rtol=1e-12,
                               atol=1e-16)
    assert not np.isnan(grad).any()


def test_mean_over_no_element_is_nan_as_in_torch():
    empty = np.zeros((0, 4))
    assert np.isnan(nx.sigmoid_cross_entropy(empty, empty))
    assert nx.sigmoid_cross_entropy(empty, empty, reduction="sum") == 0
    assert nx.sigmoid_cross_entropy_grad(empty, empty).shape == (0, 4)


PW_SHAPES = {"column": lambda s: s[-1:], "1 x column": lambda s: (1, s[-1]),
             "row": lambda s: s[:-1] + (1,), "element": lambda s: s, "number": lambda s: (),
             "1 x element": lambda s: (1,) + s}


@pytest.mark.parametrize("pw_shape", PW_SHAPES)
@pytest.mark.parametrize("shape", [(5, 6), (3, 5, 6), (5, 600)])  # flat loop; row loop
def test_pos_weight_broadcasts_to_the_logits_as_in_pytorch(shape, pw_shape):
    """Any pos_weight that broadcasts to the logits (BCEWithLogitsLoss's rule), read in
    place, per column where it varies along the last axis only, else per element."""
    x, z = rng.normal(0, 4, shape), rng.uniform(0, 1, shape)
    pw = rng.uniform(0.5, 3, PW_SHAPES[pw_shape](shape))
    loss, grad = nx.sigmoid_cross_entropy_and_grad(x, z, pos_weight=pw, reduction="none")
    lost = max(0, pw.ndim - len(shape))  # leading axes of 1 beyond the logits' rank
    expected_loss, expected_grad = bce_with_logits(
        x, z, None, np.broadcast_to(pw.reshape(pw.shape[lost:]), shape))
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-13, atol=1e-15)
    row = nx.sigmoid_cross_entropy(x, z, pos_weight=pw, reduction="row_sum")
    np.testing.assert_allclose(row, expected_loss.sum(-1), rtol=1e-13)
    loss32 = nx.sigmoid_cross_entropy(x.astype(np.float32), z.astype(np.float32),
                                      pos_weight=pw.astype(np.float32), reduction="none")
    np.testing.assert_allclose(loss32, expected_loss, rtol=1e-5, atol=1e-6)


def test_a_pos_weight_per_element_is_read_in_place(monkeypatch):
    from numba_xent import cpu

    seen = []
    kernel_call = cpu.kernel_call
    monkeypatch.setattr(cpu, "kernel_call", lambda *a: seen.append(a) or kernel_call(*a))
    monkeypatch.setattr(cpu, "replays", False)
    pw = rng.uniform(0.5, 3, (5, 1))
    nx.sigmoid_cross_entropy(X, Z, pos_weight=pw)
    ((key, *args),) = seen
    assert key.pos_weight and key.pw_elem and np.shares_memory(args[3], pw)


def test_pos_weight_and_weights_that_do_not_broadcast_are_refused():
    with pytest.raises(ValueError, match=r"pos_weight of shape \(5,\) does not broadcast "
                                         r"to \(5, 6\)"):
        nx.sigmoid_cross_entropy(X, Z, pos_weight=np.ones(5))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2, 6\) does not broadcast"):
        nx.sigmoid_cross_entropy(X, Z, pos_weight=np.ones((2, 6)))
    with pytest.raises(ValueError, match=r"weights of shape \(6, 5\) does not broadcast"):
        nx.sigmoid_cross_entropy(X, Z, np.ones((6, 5)))


def test_out_buffers():
    out, grad = np.empty(()), np.empty(X.shape)
    loss, g = nx.sigmoid_cross_entropy_and_grad(X, Z, out=out, grad=grad)
    assert loss is out and g is grad
    rows = np.empty(5)
    assert nx.sigmoid_cross_entropy(X, Z, reduction="row_sum", out=rows) is rows
    with pytest.raises(ValueError, match=r"out must have shape \(5,\)"):
        nx.sigmoid_cross_entropy(X, Z, reduction="row_sum", out=np.empty(6))


def test_bad_arguments():
    with pytest.raises(ValueError, match="reduction must be one of"):
        nx.sigmoid_cross_entropy(X, Z, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        nx.sigmoid_cross_entropy(X, Z, label_smoothing=1.5)
    with pytest.raises(TypeError, match="ignore_index must be a number or None"):
        nx.sigmoid_cross_entropy(X, Z, ignore_index="none")
    with pytest.raises(ValueError, match=r"grad_output must have shape \(\)"):
        nx.sigmoid_cross_entropy_grad(X, Z, grad_output=np.ones(5))
