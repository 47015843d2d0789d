"""Replays (numba_xent._replay): a call like earlier ones gives what the runner gives.

Each check calls a function three times on different data of one layout (the
first runs through the runner, the second is recorded, the third replayed) and
compares each bit for bit with the same call run through the runner (replays
switched off).
"""

import gc
import itertools
import weakref

import numba
import numpy as np
import pytest

import numba_xent as nx
from numba_xent import _replay, caffe2, chainer, cpu, paddle, tf
from numba_xent._plan import Divisor, Plan


@pytest.fixture
def runner_only(monkeypatch):
    """Call ``fn(*args, **kwargs)`` with replays switched off."""
    def call(fn, *args, **kwargs):
        with monkeypatch.context() as m:
            m.setattr(cpu, "replays", False)
            return fn(*args, **kwargs)
    return call


@pytest.fixture
def replays(monkeypatch):
    """The number of replays made since the last call of the returned function."""
    seen = [0]
    replay = _replay._Program.replay

    def counting(self, p):
        seen[0] += 1
        return replay(self, p)

    monkeypatch.setattr(_replay._Program, "replay", counting)
    monkeypatch.setattr(_replay, "_PROGRAMS", {})

    def since():
        n, seen[0] = seen[0], 0
        return n
    return since


def assert_identical(got, expected):
    got, expected = (v if isinstance(v, tuple) else (v,) for v in (got, expected))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert type(a) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()  # bit for bit


def data(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.normal(0, 4, shape)).astype(dtype)
    z = rng.uniform(0, 1, shape).astype(dtype)
    if x.size:
        x.flat[0], z.flat[0] = np.inf, 1  # an exact limit
        z.flat[-1] = -1  # an ignored target
    return x, z


def check(fn, make, runner_only, replays, expect_replay=True):
    """``fn(*make(seed))`` for three seeds: the third a replay (if expected), all equal
    to the runner's results."""
    _replay._PROGRAMS.clear()  # another check may have recorded an identical plan
    for seed in (1, 2, 3):
        args, kwargs = make(seed)
        got = fn(*args, **kwargs)
        assert_identical(got, runner_only(fn, *args, **kwargs))
    assert replays() == (1 if expect_replay else 0), (fn.__name__, kwargs)


GENERAL = (nx.sigmoid_cross_entropy, nx.sigmoid_cross_entropy_grad,
           nx.sigmoid_cross_entropy_and_grad)


@pytest.mark.parametrize("shape, dtype, functions", [
    ((8, 8), np.float32, GENERAL),  # the flat loop
    ((3, 4, 5), np.float64, GENERAL),
    ((2, 700), np.float32, GENERAL[2:]),  # the row loop
    ((1,), np.float32, GENERAL[2:]),
    ((), np.float64, GENERAL[2:]),
])
def test_general_api_every_reduction_and_option(shape, dtype, functions, runner_only,
                                                 replays):
    n = shape[-1] if shape else 1
    for fn, reduction, ignore, options in itertools.product(
            functions, nx.REDUCTIONS, (None, -1), (False, True)):
        if not shape and reduction.startswith("row"):
            continue

        def make(seed):
            x, z = data(shape, dtype, seed)
            kwargs = dict(reduction=reduction, ignore_index=ignore)
            if options:  # weights, pos_weight and label smoothing
                kwargs.update(weights=data(shape, dtype, seed + 9)[1], label_smoothing=0.2,
                              pos_weight=np.linspace(0.5, 2, n).astype(dtype))
            return (x, z), kwargs

        # A count or a sum the gradient needs first is a pass of its own: no replay.
        counted = ignore is not None and reduction in ("mean", "row_mean") and fn is not \
            nx.sigmoid_cross_entropy
        check(fn, make, runner_only, replays, expect_replay=not counted)


def test_every_front_end(runner_only, replays):
    shape = (6, 9)

    def inputs(seed):
        x, z = data(shape, np.float32, seed)
        t = np.where(z < 0, -1, (z > 0.5).astype(np.int32))
        return x, np.abs(z), t, np.full(shape[0], 0.5, np.float32)

    cases = [
        (caffe2.sigmoid_cross_entropy_with_logits, lambda x, z, t, g: ((x, z), {}), True),
        (caffe2.sigmoid_cross_entropy_with_logits_and_grad,
         lambda x, z, t, g: ((x, z, g), {"log_d_trick": True}), True),
        (caffe2.weighted_sigmoid_cross_entropy_with_logits_grad,
         lambda x, z, t, g: ((g, x, z, z), {}), True),
        (chainer.sigmoid_cross_entropy, lambda x, z, t, g: ((x, t), {}), True),
        (chainer.sigmoid_cross_entropy, lambda x, z, t, g: ((x, t, False, "no"), {}), True),
        (paddle.sigmoid_cross_entropy_with_logits, lambda x, z, t, g: ((x, z), {}), True),
        (paddle.sigmoid_cross_entropy_with_logits,  # normalized: a count pass first
         lambda x, z, t, g: ((x, z), {"normalize": True}), False),
        (tf.sigmoid_cross_entropy, lambda x, z, t, g: ((z > 0.5, x, 0.5, 0.1), {}), True),
        (tf.sigmoid_cross_entropy,  # the weights' sum is taken first
         lambda x, z, t, g: ((z > 0.5, x, z), {}), False),
    ]
    for fn, make, replayed in cases:
        check(fn, lambda seed, make=make: make(*inputs(seed)), runner_only, replays, replayed)


def test_values_the_runner_reads_are_part_of_the_key(runner_only, replays):
    """0-d weights, grad_output and numbers are read on the host: each value (each zero's
    sign too) is its own recording."""
    x, z = data((4, 5), np.float32, 3)
    calls = [(nx.sigmoid_cross_entropy, dict(weights=w, reduction="none"))
             for w in (np.float32(0.5), np.float32(2.0), np.float32(-0.0), np.float32(0.0))]
    calls += [(nx.sigmoid_cross_entropy_grad, dict(grad_output=np.asarray(g)))
              for g in (2.0, 3.0)]
    for _ in range(3):
        for fn, kwargs in calls:
            assert_identical(fn(x, z, **kwargs), runner_only(fn, x, z, **kwargs))
    assert replays() == len(calls) == len(_replay._PROGRAMS)


def test_inputs_passed_twice_when_recorded_are_read_apart_when_replayed(runner_only,
                                                                        replays):
    """Each kernel argument is read from its own role's array, whatever the caller
    passed twice when the call was recorded."""
    x, z = data((3, 8), np.float64, 7)
    w = np.linspace(0.5, 2, 8)
    for _ in range(2):  # recorded with weights and pos_weight one array, x and z another
        nx.sigmoid_cross_entropy_and_grad(x, x, w, pos_weight=w)
    for weights, pos_weight in [(np.ones(8), np.full(8, 3.0)), (w, w)]:
        args, kwargs = (x, z, weights), dict(pos_weight=pos_weight)
        assert_identical(nx.sigmoid_cross_entropy_and_grad(*args, **kwargs),
                         runner_only(nx.sigmoid_cross_entropy_and_grad, *args, **kwargs))
    assert replays() == 2


def test_a_new_thread_count_is_recorded_again(runner_only, replays):
    """The split of a parallel kernel's rows depends on the thread count."""
    x, z = data((64, 1024), np.float32, 4)
    before = numba.get_num_threads()
    try:
        for threads in (1, 2, 1):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            for _ in range(3):  # runner (or recorded for another count), recorded, replayed
                got = nx.sigmoid_cross_entropy_and_grad(x, z, reduction="row_sum")
                assert_identical(got, runner_only(nx.sigmoid_cross_entropy_and_grad, x, z,
                                                  reduction="row_sum"))
    finally:
        numba.set_num_threads(before)
    assert replays() == (3 if numba.config.NUMBA_NUM_THREADS > 1 else 7)


def test_buffers_copies_and_empty_inputs_are_not_replayed(runner_only, replays):
    x, z = data((5, 6), np.float32, 5)
    out = np.empty(5, np.float32)
    for _ in range(3):
        nx.sigmoid_cross_entropy(x, z, reduction="row_sum", out=out)  # a caller's buffer
        nx.sigmoid_cross_entropy(x[:, :0], z[:, :0], reduction="none")  # no kernel
    assert replays() == 0
    xf = np.asfortranarray(x)  # F order: strided rows, viewed as they are, replayed
    for _ in range(3):
        assert_identical(nx.sigmoid_cross_entropy(xf, z, reduction="none"),
                         runner_only(nx.sigmoid_cross_entropy, xf, z, reduction="none"))
    assert replays() == 1
    x3 = np.ones((2, 3, 4), np.float32).transpose(1, 0, 2)  # rows merged only by a copy
    assert_identical(nx.sigmoid_cross_entropy(x3, x3, reduction="none"),
                     runner_only(nx.sigmoid_cross_entropy, x3, x3, reduction="none"))
    for _ in range(2):
        nx.sigmoid_cross_entropy(x3, x3, reduction="none")
    assert replays() == 0
    w = np.ones((6, 2))[:, :1].reshape(6)[::2]  # non-contiguous weights, replayed
    for _ in range(3):
        assert_identical(nx.sigmoid_cross_entropy(x[:3], z[:3], w[:, None]),
                         runner_only(nx.sigmoid_cross_entropy, x[:3], z[:3], w[:, None]))
    assert replays() == 1


@pytest.mark.parametrize("reduction", ["mean", "row_sum", "none"])
def test_neither_a_recording_nor_a_replay_keeps_an_array_alive(replays, reduction):
    for call in range(3):  # through the runner, recorded, replayed
        x, z = data((8, 8), np.float32, call)
        results = nx.sigmoid_cross_entropy_and_grad(x, z, reduction=reduction)
        refs = [weakref.ref(a) for a in (x, z, *results)]
        del x, z, results
        gc.collect()
        assert all(ref() is None for ref in refs), call
    assert replays() == 1


def test_plans_that_depend_on_their_data_are_not_replayable():
    x = np.ones((2, 3))
    plain = Plan(x, x, x, {}, loss="total", loss_divisor=Divisor("div", "kept"))
    assert _replay.replayable(plain)  # the kept count comes with the kernel's sums
    assert not _replay.replayable(plain._replace(out=np.empty(())))
    assert _replay.replayable(plain._replace(g_divisor=Divisor("div", "kept")))  # no gradient
    assert not _replay.replayable(plain._replace(g=1.0, g_divisor=Divisor("div", "kept")))
    assert not _replay.replayable(plain._replace(loss_divisor=Divisor("div", "weight_sum")))
    unhashable = plain._replace(smoothing=[0.1])  # no key: through the runner
    assert _replay.run(cpu, unhashable, lambda be, p: ("runner", p)) == ("runner", unhashable)
