"""Hostile input to every public function: a right answer or a clear error, nothing else.

Hypothesis replaces some arguments of a valid call with hostile values (None,
strings, ragged lists, complex/object/bool/int arrays, wrong shapes, 0-d
arrays, NaN/inf, negative strides, read-only arrays, foreign out buffers,
unknown keyword values).  Every call must either return or raise a TypeError
or ValueError whose message names one of the function's arguments; no input
and no rejected ``out`` may change.  The CI budget is fixed (max_examples);
``HYPOTHESIS_PROFILE=long`` runs the long fuzz (see README).
"""

import inspect
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numba_xent as nx
from numba_xent import caffe2, chainer, paddle, tf

settings.register_profile("ci", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

SHAPE = (3, 4)
rng = np.random.default_rng(0)
X = rng.normal(0, 3, SHAPE)
Z = rng.uniform(0, 1, SHAPE)

# Valid keyword arguments for each public function.
VALID = {
    caffe2.sigmoid_cross_entropy_with_logits: dict(logits=X, targets=Z),
    caffe2.sigmoid_cross_entropy_with_logits_grad: dict(grad_out=np.ones(3), logits=X, targets=Z),
    caffe2.sigmoid_cross_entropy_with_logits_and_grad: dict(logits=X, targets=Z,
                                                            grad_out=np.ones(3)),
    caffe2.weighted_sigmoid_cross_entropy_with_logits: dict(logits=X, targets=Z, weights=Z),
    caffe2.weighted_sigmoid_cross_entropy_with_logits_grad: dict(grad_out=np.ones(3), logits=X,
                                                                 targets=Z, weights=Z),
    caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad: dict(logits=X, targets=Z,
                                                                     weights=Z),
    chainer.sigmoid_cross_entropy: dict(x=X, t=(Z > 0.5).astype(np.int32)),
    chainer.sigmoid_cross_entropy_grad: dict(x=X, t=(Z > 0.5).astype(np.int32), gy=np.ones(())),
    paddle.sigmoid_cross_entropy_with_logits: dict(x=X, label=Z),
    paddle.sigmoid_cross_entropy_with_logits_grad: dict(x=X, label=Z, dout=np.ones(SHAPE)),
    tf.sigmoid_cross_entropy: dict(multi_class_labels=Z > 0.5, logits=X),
    tf.sigmoid_cross_entropy_grad: dict(multi_class_labels=Z > 0.5, logits=X,
                                        grad_loss=np.ones(())),
    nx.sigmoid_cross_entropy: dict(logits=X, targets=Z),
    nx.sigmoid_cross_entropy_grad: dict(logits=X, targets=Z),
    nx.sigmoid_cross_entropy_and_grad: dict(logits=X, targets=Z),
}


def read_only(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


# Factories, so that every draw is a fresh object (one array drawn for two
# arguments would alias them, and a written ``out`` would change the pool).
HOSTILE = st.sampled_from([
    lambda: None, lambda: 0, lambda: -1, lambda: 1.5, lambda: np.nan, lambda: np.inf,
    lambda: True, lambda: "abc", lambda: "mean", lambda: "none", lambda: b"x", lambda: [],
    lambda: [[1.0, 2.0], [3.0]], lambda: [[0.5] * 4] * 3, lambda: (1, 2), lambda: {"a": 1},
    lambda: object(), lambda: 1 + 2j, lambda: np.array("abc"),
    lambda: np.array(["a", "b", "c", "d"] * 3).reshape(SHAPE),
    lambda: np.ones(SHAPE, complex), lambda: np.ones(SHAPE, object),
    lambda: np.ones(SHAPE, bool), lambda: np.arange(12).reshape(SHAPE),
    lambda: np.ones(SHAPE, np.float16), lambda: np.ones(SHAPE, np.float32),
    lambda: np.ones((4, 3)), lambda: np.ones(3), lambda: np.ones(4), lambda: np.ones(()),
    lambda: np.ones((1, 4)), lambda: np.ones((3, 1)), lambda: np.ones((2, 3, 4)),
    lambda: np.zeros((0, 4)), lambda: np.full(SHAPE, np.nan), lambda: np.full(SHAPE, np.inf),
    lambda: np.full(SHAPE, -np.inf), lambda: np.full(SHAPE, 1e308), lambda: np.full(SHAPE, -1.0),
    lambda: X.copy()[::-1, ::-1], lambda: np.asfortranarray(X), lambda: read_only(X),
    lambda: read_only(np.ones(3)), lambda: np.ones(SHAPE, np.int8)[:, ::-1],
    lambda: np.ones(SHAPE, np.uint64),
])


@st.composite
def hostile_calls(draw):
    fn = draw(st.sampled_from(list(VALID)))
    params = list(inspect.signature(fn).parameters)
    kwargs = dict(VALID[fn])
    for name in draw(st.lists(st.sampled_from(params), min_size=1, max_size=3, unique=True)):
        kwargs[name] = draw(HOSTILE)()
    return fn, kwargs


def snapshot(kwargs):
    return {k: np.array(v, copy=True) for k, v in kwargs.items() if isinstance(v, np.ndarray)}


def modified(before, kwargs):
    """The array arguments whose bytes changed (NaN-safe, any dtype)."""
    return {k for k, a in before.items() if a.tobytes() != np.ascontiguousarray(kwargs[k]).tobytes()}


@settings(settings.get_profile(PROFILE))
@given(hostile_calls())
def test_hostile_arguments_give_a_result_or_a_clear_error(call):
    fn, kwargs = call
    before = snapshot(kwargs)
    params = list(inspect.signature(fn).parameters)
    writable_outputs = {"out", "grad"}
    try:
        result = fn(**kwargs)
    except (TypeError, ValueError) as err:
        message = str(err)
        assert any(p in message for p in params), f"{fn.__name__}: {message!r}"
        changed = modified(before, kwargs)
        assert not changed, f"{fn.__name__} raised {message!r} but modified {changed}"
        return
    for a in result if isinstance(result, tuple) else (result,):
        assert isinstance(a, np.ndarray)
    changed = modified(before, kwargs)
    assert changed <= writable_outputs, f"{fn.__name__} modified inputs {changed}"


@pytest.mark.parametrize("fn", list(VALID), ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_every_public_function_takes_its_valid_call(fn):
    result = fn(**VALID[fn])
    for a in result if isinstance(result, tuple) else (result,):
        assert np.all(np.isfinite(a))
