"""Concurrent calls from Python threads, other threading layers, forked children."""

import multiprocessing
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import numba_xent as nx
from numba_xent import caffe2, chainer, paddle, tf
from numba_xent import cpu
from numba_xent.cpu import threads

# Big enough for the parallel builds of the kernels (smaller inputs run serial ones).
SHAPE = (64, 640)
assert SHAPE[0] * SHAPE[1] >= cpu.PARALLEL_MIN


def workload():
    """Mixed functions and dtypes, each a zero-argument call returning arrays."""
    rng = np.random.default_rng(0)
    calls = []
    for dtype in (np.float32, np.float64):
        x = rng.normal(0, 3, SHAPE).astype(dtype)
        z = rng.uniform(0, 1, x.shape).astype(dtype)
        t = rng.integers(-1, 2, x.shape)
        g = np.ones(SHAPE[0], dtype)
        calls += [
            lambda x=x, z=z: caffe2.sigmoid_cross_entropy_with_logits(x, z),
            lambda x=x, z=z, g=g: caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g),
            lambda x=x, t=t: chainer.sigmoid_cross_entropy(x, t),
            lambda x=x, z=z: paddle.sigmoid_cross_entropy_with_logits(x, z, normalize=True),
            lambda x=x, z=z: tf.sigmoid_cross_entropy(z > 0.5, x, label_smoothing=0.1),
            lambda x=x, z=z: nx.sigmoid_cross_entropy_and_grad(x, z, reduction="row_mean"),
        ]
    return calls


def flat(result):
    return [np.asarray(a) for a in (result if isinstance(result, tuple) else (result,))]


def test_eight_threads_times_a_hundred_calls_match_serial_calls():
    calls = workload()
    expected = [flat(call()) for call in calls]
    jobs = [i % len(calls) for i in range(800)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: flat(calls[i]()), jobs))
    for i, got in zip(jobs, results):
        for a, b in zip(got, expected[i]):
            np.testing.assert_array_equal(a, b)
    assert threads.layer() in ("tbb", "omp", "workqueue")


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import numba, numpy as np
    from concurrent.futures import ThreadPoolExecutor
    from test_threads import workload, flat
    calls = workload()
    expected = [flat(c()) for c in calls]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: flat(calls[i % len(calls)]()), range(200)))
    for i, got in enumerate(results):
        for a, b in zip(got, expected[i % len(calls)]):
            assert np.array_equal(a, b, equal_nan=True)
    print("layer", numba.threading_layer(), "OK")
""")


def test_a_forced_workqueue_layer_is_serialised_instead_of_aborting():
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    script = SCRIPT.format(tests=os.path.dirname(__file__))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "layer workqueue OK" in result.stdout


def loss_in_child(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=SHAPE)
    return caffe2.sigmoid_cross_entropy_with_logits(x, x > 0)


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_a_forked_child_computes_after_the_parent_started_its_threads():
    parent = [loss_in_child(seed) for seed in range(3)]  # the parent's pool is running
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        children = pool.map_async(loss_in_child, range(3)).get(timeout=120)
    for a, b in zip(children, parent):
        np.testing.assert_array_equal(a, b)
