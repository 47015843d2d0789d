"""numba_xent.dask: every mirrored function against its NumPy front end, on local Dask clusters.

A thread-based ``LocalCluster`` (2 workers) runs the comparisons over several
chunkings, uneven ones and rows split across chunks included; a process-based
one (2 workers of 400 MB each) proves that the tasks pickle and that a
computation over more data than the workers' memory streams through them.
"""

import inspect
import os

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")

import numba_xent as nx
import numba_xent.dask as nxd
from numba_xent import caffe2, chainer, paddle, tf

R = tf.Reduction

# name: (shape, chunks of the logits); targets get other chunks where they can.
LAYOUTS = {
    "2d-one-block": ((37, 11), (37, 11)),
    "2d-rows": ((37, 11), (10, 11)),
    "2d-uneven": ((37, 11), ((5, 20, 12), (11,))),
    "2d-split-rows": ((37, 11), ((3, 30, 4), (4, 4, 3))),
    "3d": ((4, 6, 7), ((2, 2), (2, 4), 7)),
    "1d": ((13,), (5,)),
    "0d": ((), ()),
}
RTOL = {np.float32: 1e-6, np.float64: 1e-12}


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def process_client():
    # No pausing and no spilling (a paused worker whose unmanaged memory stays high
    # would wait forever): the only memory rule left is the nanny's, which kills a
    # worker past 95% of its limit; test_more_data_than_the_workers_memory checks
    # that none was.
    memory = {f"distributed.worker.memory.{k}": False for k in ("target", "spill", "pause")}
    with dask.config.set(memory), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     memory_limit="400MB", dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def dask_like(a, chunks):
    """``a`` as a Dask array: ``chunks`` where they fit its shape, else a split of its own."""
    a = np.asarray(a)
    if a.ndim == 0:
        return da.from_array(a, chunks=())
    if isinstance(chunks, tuple) and len(chunks) == a.ndim:
        try:
            return da.from_array(a, chunks=chunks)
        except ValueError:
            pass
    return da.from_array(a, chunks=tuple(max(1, s // 2) for s in a.shape))


def other_chunks(shape):
    """Chunks unlike the logits' (the targets must be aligned with them)."""
    return tuple(max(1, s // 3) for s in shape)


def inputs(layout, dtype, seed=0):
    shape, chunks = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * 4).astype(dtype)
    if x.size > 3:
        x.flat[:3] = [np.inf, -np.inf, 40]
    z = (rng.uniform(size=shape) < 0.4).astype(dtype)
    return shape, chunks, rng, x, z


def compare(cases, dtype):
    """``cases``: (label, lazy Dask result, NumPy result); computed in one go, then compared."""
    for label, lazy, _ in cases:
        assert isinstance(lazy, da.Array), label
    results = dask.compute(*[lazy for _, lazy, _ in cases])
    for (label, lazy, expected), got in zip(cases, results, strict=True):
        got = np.asarray(got)
        assert got.shape == np.shape(expected) == lazy.shape, label
        assert got.dtype == np.asarray(expected).dtype == lazy.dtype, label
        np.testing.assert_allclose(got, expected, rtol=RTOL[dtype], atol=0, err_msg=label)


def weight_variants(shape, rng, chunks, dtype):
    """Weights of every broadcasting kind: (label, NumPy value, the value the Dask call gets)."""
    full = (rng.uniform(0, 2, size=shape) * (rng.uniform(size=shape) > 0.2)).astype(dtype)
    out = [("scalar", 0.5, 0.5), ("full", full, dask_like(full, other_chunks(shape)))]
    if len(shape) >= 1:
        last = rng.uniform(0.5, 2, size=shape[-1:]).astype(dtype)
        out.append(("last-axis", last, last))
    if len(shape) >= 2:
        per_row = rng.uniform(0, 2, size=shape[:-1] + (1,)).astype(dtype)
        out.append(("per-row", per_row, dask_like(per_row, chunks)))
    return out


LAYOUT_PARAMS = pytest.mark.parametrize("layout", list(LAYOUTS))
DTYPE_PARAMS = pytest.mark.parametrize("dtype", [np.float32, np.float64])


@LAYOUT_PARAMS
@DTYPE_PARAMS
def test_caffe2(client, layout, dtype):
    shape, chunks, rng, x, z = inputs(layout, dtype)
    X, Z = dask_like(x, chunks), dask_like(z, other_chunks(shape))
    w = rng.uniform(0, 2, size=shape).astype(dtype)
    W = dask_like(w, other_chunks(shape))
    g = rng.normal(size=shape[:-1]).astype(dtype)
    G = dask_like(g, chunks[:-1] if isinstance(chunks, tuple) else ())
    cases = []
    for variant in ({}, {"log_d_trick": True}, {"unjoined_lr_loss": True}):
        cases += [
            (f"loss {variant}", nxd.caffe2.sigmoid_cross_entropy_with_logits(X, Z, **variant),
             caffe2.sigmoid_cross_entropy_with_logits(x, z, **variant)),
            (f"grad {variant}",
             nxd.caffe2.sigmoid_cross_entropy_with_logits_grad(G, X, Z, **variant),
             caffe2.sigmoid_cross_entropy_with_logits_grad(g, x, z, **variant)),
        ]
        for gd, gn in ((None, None), (G, g)):
            lazy = nxd.caffe2.sigmoid_cross_entropy_with_logits_and_grad(X, Z, gd, **variant)
            both = caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, gn, **variant)
            cases += [(f"and_grad[{i}] {variant} g={gn is not None}", lazy[i], both[i])
                      for i in range(2)]
    lazy = nxd.caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(X, Z, W, G)
    both = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w, g)
    cases += [
        ("weighted loss", nxd.caffe2.weighted_sigmoid_cross_entropy_with_logits(X, Z, W),
         caffe2.weighted_sigmoid_cross_entropy_with_logits(x, z, w)),
        ("weighted grad", nxd.caffe2.weighted_sigmoid_cross_entropy_with_logits_grad(G, X, Z, W),
         caffe2.weighted_sigmoid_cross_entropy_with_logits_grad(g, x, z, w)),
        ("weighted and_grad[0]", lazy[0], both[0]),
        ("weighted and_grad[1]", lazy[1], both[1]),
    ]
    compare(cases, dtype)


@LAYOUT_PARAMS
@DTYPE_PARAMS
def test_chainer(client, layout, dtype):
    shape, chunks, rng, x, _ = inputs(layout, dtype)
    t = rng.integers(-1, 2, size=shape).astype(np.int32)
    T = dask_like(t, other_chunks(shape))
    X = dask_like(x, chunks)
    gy = rng.normal(size=shape).astype(dtype)
    cases = [
        ("no", nxd.chainer.sigmoid_cross_entropy(X, T, reduce="no"),
         chainer.sigmoid_cross_entropy(x, t, reduce="no")),
        ("grad no", nxd.chainer.sigmoid_cross_entropy_grad(X, T, dask_like(gy, chunks),
                                                           reduce="no"),
         chainer.sigmoid_cross_entropy_grad(x, t, gy, reduce="no")),
    ]
    for normalize in (True, False):
        cases += [
            (f"mean {normalize}", nxd.chainer.sigmoid_cross_entropy(X, T, normalize),
             chainer.sigmoid_cross_entropy(x, t, normalize)),
            (f"grad mean {normalize}",
             nxd.chainer.sigmoid_cross_entropy_grad(X, T, dtype(1.5), normalize),
             chainer.sigmoid_cross_entropy_grad(x, t, dtype(1.5), normalize)),
            (f"grad mean {normalize} dask gy",
             nxd.chainer.sigmoid_cross_entropy_grad(X, T, da.from_array(np.array(2.0, dtype)),
                                                    normalize),
             chainer.sigmoid_cross_entropy_grad(x, t, np.array(2.0, dtype), normalize)),
        ]
    compare(cases, dtype)


@LAYOUT_PARAMS
@DTYPE_PARAMS
def test_paddle(client, layout, dtype):
    shape, chunks, rng, x, _ = inputs(layout, dtype)
    label = np.where(rng.uniform(size=shape) < 0.2, dtype(-1), rng.uniform(size=shape))
    label = label.astype(dtype)
    L = dask_like(label, other_chunks(shape))
    X = dask_like(x, chunks)
    dout = rng.normal(size=shape).astype(dtype)
    D = dask_like(dout, chunks)
    cases = []
    for ignore_index in (-100, -1):
        for normalize in (False, True):
            key = f"ignore={ignore_index} normalize={normalize}"
            cases += [
                (key, nxd.paddle.sigmoid_cross_entropy_with_logits(X, L, ignore_index, normalize),
                 paddle.sigmoid_cross_entropy_with_logits(x, label, ignore_index, normalize)),
                ("grad " + key,
                 nxd.paddle.sigmoid_cross_entropy_with_logits_grad(X, L, D, ignore_index,
                                                                   normalize),
                 paddle.sigmoid_cross_entropy_with_logits_grad(x, label, dout, ignore_index,
                                                               normalize)),
            ]
    compare(cases, dtype)


@LAYOUT_PARAMS
@DTYPE_PARAMS
def test_tf(client, layout, dtype):
    shape, chunks, rng, x, z = inputs(layout, dtype)
    X, Z = dask_like(x, chunks), dask_like(z, other_chunks(shape))
    weights = weight_variants(shape, rng, chunks, dtype)
    weights = [(k, wn, wd) for k, wn, wd in weights if k != "last-axis" or len(shape) == 1]
    if len(shape) == 2:
        zeros = np.zeros(shape, dtype)
        weights.append(("zeros", zeros, dask_like(zeros, chunks)))
    if len(shape) >= 2:
        per_sample = rng.uniform(0, 2, size=shape[:1]).astype(dtype)
        weights.append(("per-sample", per_sample, dask_like(per_sample, (3,))))
    gl = rng.normal(size=shape).astype(dtype)
    cases = []
    for reduction in R.all():
        for wkey, wn, wd in weights:
            smoothings = {"full": (0.2, 1.5), "scalar": (0, -0.3)}.get(wkey, (0,))
            for smoothing in smoothings:
                key = f"{reduction} w={wkey} s={smoothing}"
                if reduction == R.NONE:
                    gn, gd = gl, dask_like(gl, chunks)
                elif wkey == "full":
                    gn, gd = np.array(0.7, dtype), da.from_array(np.array(0.7, dtype))
                else:
                    gn = gd = 0.7
                cases += [
                    (key, nxd.tf.sigmoid_cross_entropy(Z, X, wd, smoothing, reduction),
                     tf.sigmoid_cross_entropy(z, x, wn, smoothing, reduction)),
                    ("grad " + key,
                     nxd.tf.sigmoid_cross_entropy_grad(Z, X, gd, wd, smoothing, reduction),
                     tf.sigmoid_cross_entropy_grad(z, x, gn, wn, smoothing, reduction)),
                ]
    compare(cases, dtype)


@LAYOUT_PARAMS
@DTYPE_PARAMS
def test_general(client, layout, dtype):
    shape, chunks, rng, x, z = inputs(layout, dtype)
    X, Z = dask_like(x, chunks), dask_like(z, other_chunks(shape))
    z_ignored = np.where(rng.uniform(size=shape) < 0.3, dtype(-1), z)
    Z_ignored = dask_like(z_ignored, chunks)
    n = shape[-1] if shape else 1
    pos_weight = rng.uniform(0.5, 3, size=n).astype(dtype)
    pos_weight_dask = da.from_array(pos_weight, chunks=max(1, n // 2))
    weights = {k: (wn, wd) for k, wn, wd in weight_variants(shape, rng, chunks, dtype)}
    full_n, full_d = weights["full"]
    bcast_n, bcast_d = weights.get("per-row", weights["scalar"])
    last_n, last_d = weights.get("last-axis", weights["scalar"])
    # One option at a time (each combination would compile a kernel of its own).
    options = [  # (label, targets NumPy, targets Dask, NumPy options, Dask options)
        ("plain", z, Z, {}, {}),
        ("full weights", z, Z, {"weights": full_n}, {"weights": full_d}),
        ("per-row weights", z, Z, {"weights": bcast_n}, {"weights": bcast_d}),
        ("last-axis weights", z, Z, {"weights": last_n}, {"weights": last_d}),
        ("pos_weight", z, Z, {"pos_weight": pos_weight}, {"pos_weight": pos_weight_dask}),
        ("per-element pos_weight", z, Z, {"pos_weight": full_n}, {"pos_weight": full_d}),
        ("per-row pos_weight", z, Z, {"pos_weight": bcast_n}, {"pos_weight": bcast_d}),
        ("smoothing", z, Z, {"label_smoothing": 0.1}, {"label_smoothing": 0.1}),
        ("ignore", z_ignored, Z_ignored, {"ignore_index": -1}, {"ignore_index": -1}),
    ]
    cases = []
    for reduction in nx.REDUCTIONS:
        loss_shape = {"none": shape, "row_sum": shape[:-1], "row_mean": shape[:-1]}.get(
            reduction, ())
        gn = rng.normal(size=loss_shape).astype(dtype)
        gd = dask_like(gn, chunks if reduction == "none"
                       else chunks[:-1] if isinstance(chunks, tuple) else ())
        for key, zn, zd, kn, kd in options:
            key = f"{reduction} {key}"
            cases.append((key, nxd.sigmoid_cross_entropy(X, zd, reduction=reduction, **kd),
                          nx.sigmoid_cross_entropy(x, zn, reduction=reduction, **kn)))
            # grad_output=None (ones) with the plain options, an array with the others
            g = {} if key.endswith("plain") else {"grad_output": gn}
            gdask = {} if key.endswith("plain") else {"grad_output": gd}
            cases.append((
                "grad " + key,
                nxd.sigmoid_cross_entropy_grad(X, zd, reduction=reduction, **gdask, **kd),
                nx.sigmoid_cross_entropy_grad(x, zn, reduction=reduction, **g, **kn)))
            lazy = nxd.sigmoid_cross_entropy_and_grad(X, zd, reduction=reduction, **gdask, **kd)
            both = nx.sigmoid_cross_entropy_and_grad(x, zn, reduction=reduction, **g, **kn)
            cases += [(f"and_grad[{i}] {key}", lazy[i], both[i]) for i in range(2)]
    compare(cases, dtype)


def test_edge_cases(client):
    """Nothing kept, zero weights, zero rows and empty rows divide as the NumPy front ends do."""
    x = np.random.default_rng(3).normal(size=(8, 5)).astype(np.float32)
    X = da.from_array(x, chunks=(3, 5))
    ignored = np.full(x.shape, -1.0, np.float32)
    t_ignored = np.full(x.shape, -1, np.int8)
    zeros = np.zeros(x.shape)
    cases = [
        ("general mean, all ignored: NaN",
         nxd.sigmoid_cross_entropy(X, ignored, ignore_index=-1),
         nx.sigmoid_cross_entropy(x, ignored, ignore_index=-1)),
        ("general grad mean, all ignored: 0",
         nxd.sigmoid_cross_entropy_grad(X, ignored, ignore_index=-1),
         nx.sigmoid_cross_entropy_grad(x, ignored, ignore_index=-1)),
        ("general row_mean, all ignored",
         nxd.sigmoid_cross_entropy(X, ignored, ignore_index=-1, reduction="row_mean"),
         nx.sigmoid_cross_entropy(x, ignored, ignore_index=-1, reduction="row_mean")),
        ("chainer mean, all ignored: 0", nxd.chainer.sigmoid_cross_entropy(X, t_ignored),
         chainer.sigmoid_cross_entropy(x, t_ignored)),
        ("chainer grad, all ignored",
         nxd.chainer.sigmoid_cross_entropy_grad(X, t_ignored, np.float32(1)),
         chainer.sigmoid_cross_entropy_grad(x, t_ignored, np.float32(1))),
        ("paddle normalize, all ignored",
         nxd.paddle.sigmoid_cross_entropy_with_logits(X, ignored, -1, True),
         paddle.sigmoid_cross_entropy_with_logits(x, ignored, -1, True)),
    ]
    for reduction in (R.MEAN, R.SUM_BY_NONZERO_WEIGHTS):
        cases += [
            (f"tf {reduction} zero weights", nxd.tf.sigmoid_cross_entropy(ignored, X, zeros,
                                                                          reduction=reduction),
             tf.sigmoid_cross_entropy(ignored, x, zeros, reduction=reduction)),
            (f"tf grad {reduction} zero weights",
             nxd.tf.sigmoid_cross_entropy_grad(ignored, X, 1.0, zeros, reduction=reduction),
             tf.sigmoid_cross_entropy_grad(ignored, x, 1.0, zeros, reduction=reduction)),
        ]
    for shape in ((0, 5), (4, 0)):
        e = np.zeros(shape, np.float32)
        E = da.from_array(e)
        cases += [
            (f"caffe2 {shape}", nxd.caffe2.sigmoid_cross_entropy_with_logits(E, E),
             caffe2.sigmoid_cross_entropy_with_logits(e, e)),
            (f"general mean {shape}", nxd.sigmoid_cross_entropy(E, E),
             nx.sigmoid_cross_entropy(e, e)),
            (f"chainer {shape}", nxd.chainer.sigmoid_cross_entropy(E, e.astype(np.int32)),
             chainer.sigmoid_cross_entropy(e, e.astype(np.int32))),
        ]
    # NumPy inputs and array-likes are accepted and give lazy results.
    cases.append(("numpy inputs", nxd.sigmoid_cross_entropy(x, x > 0, reduction="row_sum"),
                  nx.sigmoid_cross_entropy(x, x > 0, reduction="row_sum")))
    with np.errstate(invalid="ignore"):
        compare(cases, np.float32)


def test_rows_are_never_split():
    x = da.zeros((1000, 100), np.float32, chunks=(100, 10))
    per_row = nxd.caffe2.sigmoid_cross_entropy_with_logits(x, x)
    assert per_row.chunks == ((10,) * 100,)  # blocks of 100 x 10 elements -> 10 rows of 100
    kept = da.zeros((1000, 100), np.float32, chunks=((300, 700), (100,)))
    assert nxd.sigmoid_cross_entropy(kept, kept, reduction="row_sum").chunks == ((300, 700),)


def test_calls_are_lazy():
    def boom(block):
        raise RuntimeError("computed")

    x = da.zeros((6, 4), np.float32, chunks=(2, 4)).map_blocks(boom, dtype=np.float32)
    z = da.zeros((6, 4), np.float32, chunks=3)
    results = [
        nxd.caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z)[1],
        nxd.chainer.sigmoid_cross_entropy_grad(x, z.astype(np.int32), 1.0),
        nxd.paddle.sigmoid_cross_entropy_with_logits(x, z, normalize=True),
        nxd.tf.sigmoid_cross_entropy_grad(z, x, 1.0, z),
        nxd.sigmoid_cross_entropy_and_grad(x, z, ignore_index=0)[0],
    ]
    for r in results:
        assert isinstance(r, da.Array)
        with pytest.raises(RuntimeError, match="computed"):
            r.compute(scheduler="sync")


def test_signatures_match_the_numpy_front_ends():
    pairs = [(getattr(nxd.caffe2, k), getattr(caffe2, k)) for k in nxd.caffe2.__all__]
    pairs += [(getattr(nxd.chainer, k), getattr(chainer, k)) for k in nxd.chainer.__all__]
    pairs += [(getattr(nxd.paddle, k), getattr(paddle, k)) for k in nxd.paddle.__all__]
    pairs += [(getattr(nxd.tf, k), getattr(tf, k)) for k in nxd.tf.__all__]
    pairs += [(getattr(nxd, k), getattr(nx, k)) for k in
              ("sigmoid_cross_entropy", "sigmoid_cross_entropy_grad",
               "sigmoid_cross_entropy_and_grad")]
    assert len(pairs) == 15

    def plain(fn):  # names, kinds and defaults (the annotations name other array types)
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    for mine, theirs in pairs:
        assert plain(mine) == plain(theirs), theirs.__name__
        assert mine.__name__ == theirs.__name__


def error_of(fn, *args, **kwargs):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **kwargs)
    return info.type, str(info.value)


@pytest.mark.parametrize("call", [
    lambda m, x, z: m.sigmoid_cross_entropy(x.astype(np.int32), z),
    lambda m, x, z: m.sigmoid_cross_entropy(x, z[:, :3]),
    lambda m, x, z: m.sigmoid_cross_entropy(x, z, reduction="median"),
    lambda m, x, z: m.sigmoid_cross_entropy(x, z, label_smoothing=2),
    lambda m, x, z: m.sigmoid_cross_entropy(x, z, weights=z[:, :2]),
    lambda m, x, z: m.sigmoid_cross_entropy(x, z, pos_weight=z[0, :3]),
    lambda m, x, z: m.sigmoid_cross_entropy_grad(x, z, grad_output=z, reduction="mean"),
    lambda m, x, z: m.chainer.sigmoid_cross_entropy(x, z),
    lambda m, x, z: m.chainer.sigmoid_cross_entropy(x, z.astype(int), normalize=1),
    lambda m, x, z: m.caffe2.sigmoid_cross_entropy_with_logits_grad(None, x, z),
    lambda m, x, z: m.caffe2.sigmoid_cross_entropy_with_logits_grad(z, x, z),
    lambda m, x, z: m.caffe2.sigmoid_cross_entropy_with_logits(x, z, log_d_trick=True,
                                                               unjoined_lr_loss=True),
    lambda m, x, z: m.caffe2.weighted_sigmoid_cross_entropy_with_logits(x, z, None),
    lambda m, x, z: m.paddle.sigmoid_cross_entropy_with_logits(x, z, ignore_index="a"),
    lambda m, x, z: m.tf.sigmoid_cross_entropy(z, x, weights=z[0]),
    lambda m, x, z: m.tf.sigmoid_cross_entropy(z, x, reduction="mean"),
    lambda m, x, z: m.tf.sigmoid_cross_entropy_grad(z, x, z, reduction=tf.Reduction.SUM),
], ids=lambda c: "")
def test_errors_are_the_numpy_front_ends(call):
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    z = (x > 0).astype(np.float32)
    numpy_side = error_of(call, nx, x, z)
    dask_side = error_of(call, nxd, da.from_array(x, chunks=(4, 2)),
                         da.from_array(z, chunks=3))
    assert dask_side == numpy_side


def test_out_is_refused():
    x = da.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match="out= is not supported"):
        nxd.caffe2.sigmoid_cross_entropy_with_logits(x, x, out=np.empty(4, np.float32))
    with pytest.raises(TypeError, match="grad= is not supported"):
        nxd.sigmoid_cross_entropy_and_grad(x, x, grad=np.empty((4, 3), np.float32))


def test_worker_processes(process_client):
    """The tasks pickle: process-based workers give the NumPy front ends' results."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 17)).astype(np.float32)
    z = (rng.uniform(size=x.shape) < 0.5).astype(np.float32)
    t = rng.integers(-1, 2, size=x.shape).astype(np.int8)
    w = rng.uniform(size=(300, 1)).astype(np.float32)
    pw = rng.uniform(1, 2, size=17).astype(np.float32)
    X, Z = da.from_array(x, chunks=(70, 5)), da.from_array(z, chunks=40)
    W, PW = da.from_array(w, chunks=50), da.from_array(pw, chunks=9)
    c2 = nxd.caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(X, Z, X)
    gen = nxd.sigmoid_cross_entropy_and_grad(X, Z, W, pos_weight=PW, ignore_index=1)
    compare([
        ("caffe2 loss", c2[0], caffe2.weighted_sigmoid_cross_entropy_with_logits(x, z, x)),
        ("caffe2 grad", c2[1], caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(
            x, z, x)[1]),
        ("chainer grad", nxd.chainer.sigmoid_cross_entropy_grad(X, t, da.from_array(
            np.array(3.0, np.float32))), chainer.sigmoid_cross_entropy_grad(x, t, np.float32(3))),
        ("paddle", nxd.paddle.sigmoid_cross_entropy_with_logits(X, Z, 0, True),
         paddle.sigmoid_cross_entropy_with_logits(x, z, 0, True)),
        ("tf", nxd.tf.sigmoid_cross_entropy_grad(Z, X, 2.0, W, 0.1, R.MEAN),
         tf.sigmoid_cross_entropy_grad(z, x, 2.0, w, 0.1, R.MEAN)),
        ("general loss", gen[0], nx.sigmoid_cross_entropy(x, z, w, pos_weight=pw,
                                                          ignore_index=1)),
        ("general grad", gen[1], nx.sigmoid_cross_entropy_grad(x, z, w, pos_weight=pw,
                                                               ignore_index=1)),
    ], np.float32)


def write_npy(path, shape, fill, step=10_000):
    """A .npy file written slice by slice (never whole in memory)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    rng = np.random.default_rng(11)
    for i in range(0, shape[0], step):
        out[i:i + step] = fill(rng, (min(step, shape[0] - i),) + shape[1:])
    out.flush()
    del out


def test_more_data_than_the_workers_memory(process_client, tmp_path):
    """1.6 GB of logits and targets on disk through 2 workers limited to 400 MB each."""
    shape = (200_000, 1000)  # 800 MB per float32 array
    xp, zp = os.fspath(tmp_path / "logits.npy"), os.fspath(tmp_path / "targets.npy")
    write_npy(xp, shape, lambda rng, s: rng.standard_normal(s, np.float32) * 3)
    write_npy(zp, shape, lambda rng, s: rng.random(s, np.float32) < 0.3)
    limits = [w["memory_limit"] for w in process_client.scheduler_info()["workers"].values()]
    assert len(limits) == 2
    assert os.path.getsize(xp) + os.path.getsize(zp) >= 2 * sum(limits)
    pids = process_client.run(os.getpid)

    X = nxd.from_npy(xp, chunks=(2000, -1))  # 8 MB blocks, read by the workers
    Z = nxd.from_npy(zp, chunks=(2000, -1))
    per_row, mean, row_mean = dask.compute(
        nxd.caffe2.sigmoid_cross_entropy_with_logits(X, Z),
        nxd.sigmoid_cross_entropy(X, Z, ignore_index=1.0),
        nxd.sigmoid_cross_entropy(X, Z, reduction="row_mean").sum(dtype=np.float64))
    assert process_client.run(os.getpid) == pids  # no worker was killed (and restarted)

    # The single-machine results, over the same files memory-mapped.
    x, z = np.load(xp, mmap_mode="r"), np.load(zp, mmap_mode="r")
    np.testing.assert_array_equal(per_row, caffe2.sigmoid_cross_entropy_with_logits(x, z))
    np.testing.assert_allclose(mean, nx.sigmoid_cross_entropy(x, z, ignore_index=1.0),
                               rtol=1e-6)
    np.testing.assert_allclose(row_mean, per_row.sum(dtype=np.float64), rtol=1e-6)


@pytest.mark.parametrize("call", [
    lambda x: caffe2.sigmoid_cross_entropy_with_logits(x, np.zeros((4, 3))),
    lambda x: chainer.sigmoid_cross_entropy(np.zeros((4, 3)), x),
    lambda x: nx.sigmoid_cross_entropy(np.zeros((4, 3)), np.zeros((4, 3)), weights=x),
])
def test_the_numpy_front_ends_refuse_dask_arrays_instead_of_gathering_them(call):
    x = da.zeros((4, 3), chunks=2)
    with pytest.raises(TypeError, match="Dask array: use numba_xent.dask"):
        call(x)
