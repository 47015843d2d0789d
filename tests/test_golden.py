"""Every front end against the real framework's stored outputs (tests/golden/).

The golden files were written by tests/golden/generate.py with the frameworks
themselves (versions in the JSON); no framework is needed to run these tests.
Tolerances: float32 2e-5 relative, float64 1e-10 relative (TensorFlow float64
at the float32 bar: it reduces in float32), plus an absolute term of a few
ulps of the element's own scale, because the frameworks' formulas lose the
relative accuracy of tiny values to cancellation (see tests/golden/README.md).
"""

import json
import pathlib

import numpy as np
import pytest

import numba_xent
import reference
from numba_xent import chainer, paddle, tf

GOLDEN = pathlib.Path(__file__).parent / "golden"
RTOL = {"float32": 2e-5, "float64": 1e-10}
WORST = {}  # framework -> largest relative error seen, for the record


def cases(framework):
    spec = json.loads((GOLDEN / f"{framework}.json").read_text())
    arrays = np.load(GOLDEN / f"{framework}.npz")
    result = []
    for case in spec["cases"]:
        params = dict(case["params"])
        dtype = params.pop("dtype")
        inputs = {k: arrays[v] for k, v in case["inputs"].items()}
        outputs = {k: arrays[v] for k, v in case["outputs"].items()}
        tags = case.get("tags", {})
        result.append(pytest.param(params, dtype, inputs, outputs, tags, id=case["name"]))
    return result


def assert_matches(framework, got, expected, dtype, scale):
    """|got - expected| <= rtol |expected| + 8 eps * scale, elementwise.

    ``scale`` has the shape of ``got``; for a reduced (0-d) result, its largest
    element's scale stands for it.
    """
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape
    if np.ndim(scale) and np.shape(scale) != got.shape:
        scale = np.max(scale, initial=0.0)
    rtol = RTOL["float32" if framework in ("tf", "asl") else dtype]
    atol = 8 * np.finfo(dtype).eps * np.asarray(scale, np.float64)
    error = np.abs(got - expected)
    assert np.all(error <= rtol * np.abs(expected) + atol), (
        f"max error {error.max():.3g} at {np.unravel_index(error.argmax(), error.shape)}")
    # For the record: the relative error where the value dwarfs the absolute term.
    meaningful = np.abs(expected) > 1000 * atol
    relative = error[meaningful] / np.abs(expected[meaningful])
    WORST[framework] = max(WORST.get(framework, 0.0), float(np.max(relative, initial=0.0)))


def element_scale(x, *factors):
    """The size of an element's terms: (|x| + 1) times the factors' sizes."""
    scale = np.abs(x.astype(np.float64)) + 1
    for f in factors:
        scale = scale * np.abs(np.asarray(f, np.float64))
    return scale


def grad_scale(*factors):
    """An element's gradient is at most |g| |w| max(pos_weight, 1)."""
    return np.prod([np.max(np.abs(f), initial=0.0) for f in factors])


@pytest.mark.parametrize("params, dtype, inputs, outputs, tags", cases("chainer"))
def test_chainer(params, dtype, inputs, outputs, tags):
    x, t, gy = inputs["x"], inputs["t"], inputs["gy"]
    loss = chainer.sigmoid_cross_entropy(x, t, **params)
    gx = chainer.sigmoid_cross_entropy_grad(x, t, gy, **params)
    assert loss.dtype == gx.dtype == x.dtype
    scale = element_scale(x)
    assert_matches("chainer", loss, outputs["loss"], dtype, scale)
    assert_matches("chainer", gx, outputs["grad"], dtype, grad_scale(gy))


@pytest.mark.parametrize("params, dtype, inputs, outputs, tags", cases("paddle"))
def test_paddle(params, dtype, inputs, outputs, tags):
    x, label, dout = inputs["x"], inputs["label"], inputs["dout"]
    loss = paddle.sigmoid_cross_entropy_with_logits(x, label, **params)
    dx = paddle.sigmoid_cross_entropy_with_logits_grad(x, label, dout, **params)
    if "nonfinite_outputs" in tags:
        # Every label ignored with normalize=True: paddle's CPU kernel gives NaN,
        # its GPU kernel and numba_xent give 0 (../shared/DECISIONS.md).
        assert np.isnan(outputs["loss"]).all()
        np.testing.assert_array_equal(loss, 0)
        np.testing.assert_array_equal(dx, 0)
        return
    assert_matches("paddle", loss, outputs["loss"], dtype, element_scale(x))
    # paddle's CPU gradient at x == 0 exactly is -(0.5 + label) dout, a bug; ours
    # is the derivative (0.5 - label) dout, checked on its own.
    at_zero = (x == 0) & (label != params["ignore_index"])
    expected = np.where(at_zero, -outputs["grad"], outputs["grad"])
    kept = np.count_nonzero(label != params["ignore_index"]) if params["normalize"] else 1
    expected = np.where(at_zero, (0.5 - label) * dout / kept, expected)
    assert_matches("paddle", dx, expected, dtype, grad_scale(dout))
    if at_zero.any():
        assert not np.allclose(outputs["grad"][at_zero], dx[at_zero])  # the bug is real


@pytest.mark.parametrize("params, dtype, inputs, outputs, tags", cases("tf"))
def test_tf(params, dtype, inputs, outputs, tags):
    labels, logits = inputs["multi_class_labels"], inputs["logits"]
    weights, grad_loss = inputs["weights"], inputs["grad_loss"]
    loss = tf.sigmoid_cross_entropy(labels, logits, weights, **params)
    grad = tf.sigmoid_cross_entropy_grad(labels, logits, grad_loss, weights, **params)
    assert loss.dtype == grad.dtype == logits.dtype
    if "loss" in tags.get("nonfinite_outputs", []):
        # TensorFlow overflows float64 losses near the float64 maximum because it
        # reduces in float32; numba_xent keeps float64.
        assert np.isinf(outputs["loss"]).any() and np.isfinite(loss).all()
    else:
        scale = element_scale(logits, np.broadcast_to(weights, logits.shape))
        assert_matches("tf", loss, outputs["loss"], dtype, scale)
    assert_matches("tf", grad, outputs["grad"], dtype, grad_scale(grad_loss, weights))


@pytest.mark.parametrize("params, dtype, inputs, outputs, tags", cases("torch"))
def test_general_api_against_torch(params, dtype, inputs, outputs, tags):
    x, target, g = inputs["input"], inputs["target"], inputs["grad_output"]
    options = dict(weights=inputs.get("weight"), pos_weight=inputs.get("pos_weight"),
                   reduction=params["reduction"])
    loss, grad = numba_xent.sigmoid_cross_entropy_and_grad(x, target, grad_output=g, **options)
    np.testing.assert_array_equal(loss, numba_xent.sigmoid_cross_entropy(x, target, **options))
    np.testing.assert_array_equal(
        grad, numba_xent.sigmoid_cross_entropy_grad(x, target, grad_output=g, **options))
    w = 1.0 if options["weights"] is None else np.broadcast_to(options["weights"], x.shape)
    pw = 1.0 if options["pos_weight"] is None else options["pos_weight"]
    scale = element_scale(x, w, np.maximum(pw, 1))
    assert_matches("torch", loss, outputs["loss"], dtype, scale)
    assert_matches("torch", grad, outputs["grad"], dtype, grad_scale(g, w, np.maximum(pw, 1)))


@pytest.mark.parametrize("params, dtype, inputs, outputs, tags", cases("focal"))
def test_focal_loss_against_torchvision(params, dtype, inputs, outputs, tags):
    """torchvision's sigmoid_focal_loss and its autograd gradient.  Where torchvision's
    gradient is NaN or inf (a power gamma < 1 of 1 - p_t = 0: p rounded to 1), ours is
    finite: its limit."""
    x, t, g = inputs["inputs"], inputs["targets"], inputs["grad_output"]
    loss, grad = numba_xent.sigmoid_focal_loss_and_grad(x, t, grad_output=g, **params)
    assert loss.dtype == grad.dtype == x.dtype
    assert_matches("focal", loss, outputs["loss"], dtype, element_scale(x))
    theirs = outputs["grad"]
    finite = np.isfinite(theirs)
    assert np.all(np.isfinite(grad)) and (finite.all() or "grad" in tags["nonfinite_outputs"])
    scale = grad_scale(g) * (1 + params["gamma"] * element_scale(x))
    assert_matches("focal", grad[finite], theirs[finite], dtype, scale[finite])


@pytest.mark.parametrize("params, dtype, inputs, outputs, tags", cases("asl"))
def test_asymmetric_loss_against_the_reference(params, dtype, inputs, outputs, tags):
    """The ASL reference (timm's AsymmetricLossMultiLabel, the gradient through the
    focusing weight), summed.  It computes in float32 whatever the input, so float64
    is held to the float32 bar.  Where it gives NaN or inf (eps = 0: the log of a
    sigmoid rounded to 0; a power gamma < 1 of 0), ours is finite; there its gradient
    (0 where its float32 sigmoid is 0 or 1 and eps = 0: the log's derivative at a
    rounded probability) is not the loss's, and ours is held to the long-double
    reference of tests/reference.py instead."""
    x, y, g = inputs["x"], inputs["y"], inputs["grad_output"]
    loss, grad = numba_xent.asymmetric_loss_and_grad(x, y, grad_output=g, **params)
    assert loss.dtype == grad.dtype == x.dtype
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    gamma = max(params["gamma_neg"], params["gamma_pos"])
    scale = (element_scale(x) + 20) * (1 + gamma)  # |log| <= |x| + |log eps|, and the power
    with np.errstate(over="ignore"):
        p32 = 1 / (1 + np.exp(-x.astype(np.float32)))
    rounded = (params["eps"] == 0) & ((p32 == 0) | (p32 == 1))
    _, exact, _, _ = reference.asymmetric(x, y, **{k: v for k, v in params.items()
                                                    if k != "reduction"})
    theirs_grad = np.where(rounded, g * exact, outputs["grad"])
    for got, theirs, s in ((loss, outputs["loss"], scale), (grad, theirs_grad, g * scale)):
        finite = np.isfinite(theirs)
        assert finite.all() or tags["nonfinite_outputs"]
        assert_matches("asl", np.asarray(got, np.float64)[finite], theirs[finite], "float32",
                       np.asarray(s)[finite] if np.ndim(got) else s)


def half_cases():
    """torch_half's cases, its arrays (stored as their bits) in their half dtype."""
    import ml_dtypes

    dtypes = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}
    result = []
    for case in cases("torch_half"):
        params, dtype, inputs, outputs, tags = case.values
        as_half = {k: v.view(dtypes[dtype]) for k, v in {**inputs, **outputs}.items()}
        result.append(pytest.param(
            params, dtype, {k: as_half[k] for k in inputs}, {k: as_half[k] for k in outputs},
            tags, id=case.id))
    return result


@pytest.mark.parametrize("params, dtype, inputs, outputs, tags", half_cases())
def test_general_api_against_torch_on_halves(params, dtype, inputs, outputs, tags):
    """PyTorch's float16/bfloat16 BCE-with-logits, which rounds each of its steps to the
    half: within 4 of the half's eps of the element's terms (we round once)."""
    x, target, g = inputs["input"], inputs["target"], inputs["grad_output"]
    loss, grad = numba_xent.sigmoid_cross_entropy_and_grad(
        x, target, inputs.get("weight"), pos_weight=inputs.get("pos_weight"), grad_output=g,
        reduction=params["reduction"])
    assert loss.dtype == grad.dtype == x.dtype
    w = np.broadcast_to(inputs.get("weight", np.float64(1)).astype(np.float64), x.shape)
    pw = np.maximum(inputs.get("pos_weight", np.float64(1)).astype(np.float64), 1)
    eps = 2.0 ** (-10 if dtype == "float16" else -7)
    for got, expected, scale in [(loss, outputs["loss"], element_scale(x, w, pw)),
                                 (grad, outputs["grad"], grad_scale(g, w, pw))]:
        got, expected = got.astype(np.float64), expected.astype(np.float64)
        scale = np.max(scale, initial=0.0) if got.ndim == 0 else scale
        error = np.abs(got - expected) / (eps * scale)
        assert np.all(error <= 4), error.max()
        WORST["torch_half"] = max(WORST.get("torch_half", 0.0), float(error.max()))


def test_zz_report_the_largest_errors(capsys):
    with capsys.disabled():
        print("\nlargest error vs the frameworks (torch_half: in eps of the terms):",
              ", ".join(f"{k} {v:.2e}" for k, v in sorted(WORST.items())))
    assert set(WORST) == {"asl", "chainer", "focal", "paddle", "tf", "torch", "torch_half"}
