"""CPU benchmark: the Caffe2 operator vs NumPy, PyTorch, JAX, TensorFlow and a memory floor.

Regenerate everything (about 10-15 minutes on 2 cores; needs the ``bench`` extra)::

    python -m pytest bench/test_bench_cpu.py --benchmark-enable \\
        --benchmark-json=bench/results/cpu.json && \\
        python bench/report.py bench/results/cpu.json --readme README.md

``--benchmark-enable`` is needed because pyproject's addopts say ``--benchmark-disable``
(without it every case runs one untimed round: a smoke test).  One test per case, ids
``test_cpu[<op>-<shape>-<dtype>]``; subsets with ``-k``, e.g.
``-k "forward and 4096x1024 and float32"`` or ``-k "not 16384x4096"``; ``BENCH_IMPLS=
numba_xent,floor,jax`` limits the contenders.  ``BENCH_ROUNDS=N`` in the environment sets
every case's timed rounds (default: 20 for shapes up to 8M elements, 7 above).

Every round runs each contender twice in a row, in an order shuffled from round to round,
and times the second call: a slow spell of this shared machine falls on all of them alike,
and no contender is timed cold after another's (the peers' thread pools spin for a while
after their work, and their temporaries evict the caches).  The report gives each
contender's median over the rounds (``extra_info["median_s"]``; pytest-benchmark's own
statistics are those of whole rounds).

What is timed, per (op, shape, dtype), every implementation in the inputs' dtype:

* ``forward``: the per-row mean loss ``mean_j softplus(x) - x z``.
* ``gradient``: ``grad_out[:, None] / n * (sigmoid(x) - z)``.  The autograd peers (torch,
  jax, tf) can only get it by running the forward too; NumPy and numba_xent do not.
* ``fused``: both, numba_xent in one pass (``..._and_grad``).

Implementations:

* ``numba_xent``: ``numba_xent.caffe2.sigmoid_cross_entropy_with_logits[_grad|_and_grad]``
  writing into ``out=``/``grad=`` buffers made once per case (what a training loop
  does); ``numba_xent_alloc``: the same calls allocating their results.
* ``numpy``: the straightforward formula (``fused`` = forward + gradient, nothing shared).
* ``torch``: ``F.binary_cross_entropy_with_logits(reduction='none').mean(-1)``, gradient by
  ``torch.autograd.grad`` with ``grad_out``; 2 threads; tensors by ``torch.from_numpy``.
* ``jax``: ``jax.jit`` of the stable formula, ``jax.vjp`` for the gradient,
  ``block_until_ready``; x64 enabled for float64; inputs ``device_put`` once.
* ``tf``: ``tf.nn.sigmoid_cross_entropy_with_logits`` + ``reduce_mean`` in a ``tf.function``,
  ``GradientTape`` with ``output_gradients=grad_out``; TensorFlow's defaults (oneDNN on).
  Its cases run after all the others: its allocator never frees (whole run: ~13 GB peak RSS,
  nearly all of it TensorFlow's; `-k "not tf"` avoids it).
* ``floor``: a Numba ``parallel=True`` kernel that reads and writes exactly the bytes the op
  does (forward: reads x, z, writes a value per row; gradient: reads x, z, grad_out, writes
  the gradient; fused: both writes) with trivial arithmetic, so it runs at memory speed,
  into buffers made once per case like ``numba_xent``'s; ``floor_alloc`` allocates its
  outputs on every call like ``numba_xent_alloc`` (fresh pages of a large ``np.empty`` are
  faulted in by the write, erratically on this VM).  Each kernel is compared with the
  floor measured the same way.

Peers are optional: with only numpy and numba_xent installed the file times numba_xent,
numpy and the floors.  Nothing here asserts a time;
``test_impls_agree`` checks on a small batch that every implementation computes the same
thing, so the timings compare like with like.
"""

import gc
import os
import time

import numpy as np
import pytest

import numba
from numba_xent import caffe2
from ops import bce_row_mean_ops, bytes_moved

SHAPES = {
    "4096x1024": (4096, 1024),
    "16384x4096": (16384, 4096),
    "1e6x16": (1_000_000, 16),
    "64x1e6": (64, 1_000_000),
}
DTYPES = ("float32", "float64")
# Half precision at one shape: numba_xent against PyTorch and JAX on the same dtype and a
# floor that moves half the bytes (NumPy computes halves in software, TensorFlow's
# allocator already holds the whole run's peak: both sit these out).
HALF_SHAPE, HALF_DTYPES = "16384x4096", ("float16", "bfloat16")
HALF_IMPLS = ("numba_xent", "floor", "numba_xent_alloc", "floor_alloc", "torch", "jax")
OPS = ("forward", "gradient", "fused")
IMPLS = ("numba_xent", "floor", "numba_xent_alloc", "floor_alloc", "numpy", "torch", "jax",
         "tf")
SMALL_ELEMENTS = 8 * 2**20
THREADS = 2

# Outer loops first: each (shape, dtype) batch is built once and dropped before the next,
# the largest first: TensorFlow's oneDNN allocator keeps a pool of what it ever allocated
# and never gives it back (~11 GB at the 64M-element float64 batches), and sizing the pool
# on the largest batch first lets the smaller ones reuse it.
_BIGGEST_FIRST = sorted(((s, d) for s in SHAPES for d in DTYPES),
                        key=lambda sd: -np.prod(SHAPES[sd[0]]) * np.dtype(sd[1]).itemsize)
CASES = [pytest.param(op, shape, dtype, id=f"{op}-{shape}-{dtype}")
         for shape, dtype in [*_BIGGEST_FIRST, *((HALF_SHAPE, d) for d in HALF_DTYPES)]
         for op in OPS]


def rounds_for(shape):
    env = os.environ.get("BENCH_ROUNDS")
    if env:
        return max(1, int(env))
    return 20 if np.prod(shape) <= SMALL_ELEMENTS else 7


def impls_wanted(dtype):
    env = os.environ.get("BENCH_IMPLS")
    impls = tuple(env.split(",")) if env else IMPLS
    return impls if dtype in DTYPES else tuple(i for i in impls if i in HALF_IMPLS)


def numpy_dtype(name):
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


# --------------------------------------------------------------------------- inputs


class Batch:
    """One (shape, dtype) batch in NumPy, with each peer's copy built on first use."""

    def __init__(self, shape, dtype):
        rng = np.random.default_rng(0)
        dt = numpy_dtype(dtype)
        wide = dt if dt.itemsize > 2 else np.dtype(np.float32)  # halves: drawn in float32
        self.shape, self.dtype = shape, dt
        x = rng.standard_normal(shape, dtype=wide)
        x *= 3
        self.x = x.astype(dt, copy=False)
        del x
        self.z = (rng.random(shape, dtype=wide) < 0.05).astype(dt)
        self.g = (rng.random(shape[0], dtype=wide) + 0.5).astype(dt)
        self._peer = {}

    def arrays(self, impl):
        if impl not in self._peer:
            self._peer[impl] = PEERS[impl]().convert(self.x, self.z, self.g)
        return self._peer[impl]


@pytest.fixture(scope="module")
def batches():
    """Keeps only the current batch: at most one (shape, dtype) in memory at a time."""
    cache = {}

    def get(shape_name, dtype):
        key = (shape_name, dtype)
        if key not in cache:
            cache.clear()
            gc.collect()
            cache[key] = Batch(SHAPES[shape_name], dtype)
        return cache[key]

    yield get
    cache.clear()
    gc.collect()


# --------------------------------------------------------------------------- numba_xent, numpy


class Reused:
    """Output buffers made once per (shape, dtype), for the contenders that reuse them."""

    def __init__(self):
        self._key, self._bufs = None, None

    def __call__(self, x):
        key = (x.shape, x.dtype)
        if self._key != key:
            self._key, self._bufs = None, None  # drop the last case's buffers first
            self._bufs = np.empty(x.shape[0], x.dtype), np.empty(x.shape, x.dtype)
            self._key = key
        return self._bufs


class NumbaXentAlloc:
    def convert(self, x, z, g):
        return x, z, g

    def ops(self):
        return {
            "forward": lambda x, z, g: caffe2.sigmoid_cross_entropy_with_logits(x, z),
            "gradient": lambda x, z, g: caffe2.sigmoid_cross_entropy_with_logits_grad(g, x, z),
            "fused": lambda x, z, g: caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g),
        }


class NumbaXent(NumbaXentAlloc):
    def ops(self):
        out = Reused()

        def forward(x, z, g):
            return caffe2.sigmoid_cross_entropy_with_logits(x, z, out=out(x)[0])

        def gradient(x, z, g):
            return caffe2.sigmoid_cross_entropy_with_logits_grad(g, x, z, out=out(x)[1])

        def fused(x, z, g):
            loss, grad = out(x)
            return caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g, out=loss,
                                                                     grad=grad)

        return {"forward": forward, "gradient": gradient, "fused": fused}


def numpy_forward(x, z):
    return (np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))).mean(axis=-1)


def numpy_gradient(g, x, z):
    return g[:, None] / x.shape[-1] * (1 / (1 + np.exp(-x)) - z)


class Numpy(NumbaXentAlloc):
    def ops(self):
        return {
            "forward": lambda x, z, g: numpy_forward(x, z),
            "gradient": lambda x, z, g: numpy_gradient(g, x, z),
            "fused": lambda x, z, g: (numpy_forward(x, z), numpy_gradient(g, x, z)),
        }


# --------------------------------------------------------------------------- floor


@numba.njit(parallel=True, fastmath=True)
def _floor_rows(x, z, zero, loss):
    for r in numba.prange(x.shape[0]):
        acc = zero
        for j in range(x.shape[1]):
            acc += x[r, j] + z[r, j]
        loss[r] = acc


@numba.njit(parallel=True, fastmath=True)
def _floor_grad(x, z, g, grad):
    for r in numba.prange(x.shape[0]):
        gr = g[r]
        for j in range(x.shape[1]):
            grad[r, j] = (x[r, j] + z[r, j]) * gr


@numba.njit(parallel=True, fastmath=True)
def _floor_both(x, z, g, zero, loss, grad):
    for r in numba.prange(x.shape[0]):
        gr = g[r]
        acc = zero
        for j in range(x.shape[1]):
            s = x[r, j] + z[r, j]
            acc += s
            grad[r, j] = s * gr
        loss[r] = acc


class FloorAlloc(NumbaXentAlloc):
    """Same bytes in and out as the op, trivial arithmetic: the memory-bandwidth floor."""

    def convert(self, x, z, g):  # halves as their bits: the same bytes, integer adds
        return tuple(a.view(np.uint16) if a.itemsize == 2 else a for a in (x, z, g))

    def buffers(self, x):
        return np.empty(x.shape[0], x.dtype), np.empty(x.shape, x.dtype)

    def ops(self):
        def forward(x, z, g):
            loss = self.buffers(x)[0]
            _floor_rows(x, z, x.dtype.type(0), loss)
            return loss

        def gradient(x, z, g):
            grad = self.buffers(x)[1]
            _floor_grad(x, z, g, grad)
            return grad

        def fused(x, z, g):
            loss, grad = self.buffers(x)
            _floor_both(x, z, g, x.dtype.type(0), loss, grad)
            return loss, grad

        return {"forward": forward, "gradient": gradient, "fused": fused}


class Floor(FloorAlloc):
    """The floor into buffers made once per case."""

    def __init__(self):
        self.buffers = Reused()


# --------------------------------------------------------------------------- peers


class Torch:
    def __init__(self):
        self.torch = torch = pytest.importorskip("torch")
        torch.set_num_threads(THREADS)

    def convert(self, x, z, g):  # zero-copy (bfloat16: through its int16 view)
        torch = self.torch
        return tuple(torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
                     if a.dtype.name == "bfloat16" else torch.from_numpy(a) for a in (x, z, g))

    def ops(self):
        return bce_row_mean_ops(self.torch)


class Jax:
    def __init__(self):
        self.jax = jax = pytest.importorskip("jax")
        jax.config.update("jax_enable_x64", True)  # float32 inputs stay float32
        self.jnp = jax.numpy

    def convert(self, x, z, g):
        out = tuple(self.jax.device_put(a) for a in (x, z, g))  # may alias on the CPU
        self.jax.block_until_ready(out)
        return out

    def ops(self):
        jax, jnp = self.jax, self.jnp

        def loss_fn(x, z):  # softplus(x) - x z, the stable form
            return jnp.mean(jnp.maximum(x, 0) - x * z + jnp.log1p(jnp.exp(-jnp.abs(x))), axis=-1)

        def both(x, z, g):
            loss, vjp = jax.vjp(lambda x: loss_fn(x, z), x)
            return loss, vjp(g)[0]

        forward = jax.jit(lambda x, z, g: loss_fn(x, z))
        gradient = jax.jit(lambda x, z, g: both(x, z, g)[1])
        fused = jax.jit(both)
        return {
            name: (lambda f: lambda x, z, g: jax.block_until_ready(f(x, z, g)))(f)
            for name, f in (("forward", forward), ("gradient", gradient), ("fused", fused))
        }


class TF:
    _configured = False

    def __init__(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.tf = tf = pytest.importorskip("tensorflow")
        if not TF._configured:
            TF._configured = True
            try:
                tf.config.threading.set_intra_op_parallelism_threads(THREADS)
                tf.config.threading.set_inter_op_parallelism_threads(THREADS)
            except RuntimeError:  # TF already initialised in this process
                pass

    def convert(self, x, z, g):
        return tuple(self.tf.constant(a) for a in (x, z, g))

    def ops(self):
        tf = self.tf

        def loss_fn(x, z):
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x), -1)

        def both(x, z, g):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_fn(x, z)
            return loss, tape.gradient(loss, x, output_gradients=g)

        forward = tf.function(lambda x, z, g: loss_fn(x, z))
        gradient = tf.function(lambda x, z, g: both(x, z, g)[1])
        fused = tf.function(both)
        return {"forward": forward, "gradient": gradient, "fused": fused}


PEERS = {"numba_xent": NumbaXent, "floor": Floor, "numba_xent_alloc": NumbaXentAlloc,
         "floor_alloc": FloorAlloc, "numpy": Numpy, "torch": Torch, "jax": Jax, "tf": TF}
_OPS_CACHE = {}


def ops_for(impl):
    """The impl's three callables, built once per process (jit caches live in them)."""
    if impl not in _OPS_CACHE:
        _OPS_CACHE[impl] = PEERS[impl]().ops()
    return _OPS_CACHE[impl]


def available(impl):
    try:
        ops_for(impl)
    except pytest.skip.Exception:  # the peer is not installed
        return False
    return True


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("op, shape_name, dtype", CASES)
def test_cpu(benchmark, batches, op, shape_name, dtype):
    impls = [i for i in impls_wanted(dtype) if available(i)]
    batch = batches(shape_name, dtype)
    calls = {i: (ops_for(i)[op], batch.arrays(i)) for i in impls}
    shape = batch.shape
    benchmark.group = f"{op} {shape_name} {dtype}"
    benchmark.extra_info.update(
        op=op, shape=shape_name, rows=shape[0], cols=shape[1], dtype=dtype,
        bytes=bytes_moved(op, shape, batch.dtype.itemsize),
        median_s=interleaved(benchmark, calls, rounds_for(shape)))


def interleaved(benchmark, calls, rounds):
    """``{impl: median seconds}`` of ``calls`` (``{impl: (fn, args)}``) over ``rounds``
    rounds, each of which runs every contender twice in a row, in an order shuffled from
    round to round, and times the second call (see the module docstring)."""
    for fn, args in calls.values():  # compiles / traces (numba_xent, floor, jax, tf)
        fn(*args)
    times = {i: [] for i in calls}
    order = np.random.default_rng(0)

    def one_round():
        for i in order.permutation(list(calls)):
            fn, args = calls[i]
            fn(*args)  # untimed: its threads awake, its working set where its last call left it
            t0 = time.perf_counter()
            fn(*args)
            times[i].append(time.perf_counter() - t0)

    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)
    return {i: float(np.median(t)) for i, t in times.items()}


def _as_numpy(a):
    """A copy (numba_xent's results live in buffers the next call reuses)."""
    if type(a).__module__.startswith("torch") and str(a.dtype) == "torch.bfloat16":
        import torch  # NumPy has no bfloat16 of its own: ml_dtypes' over the same bits

        return np.array(a.view(torch.int16).numpy().view(numpy_dtype("bfloat16")))
    return np.array(a.numpy() if hasattr(a, "numpy") else a)


RTOL = {"float32": 1e-4, "float64": 1e-10, "float16": 4e-3, "bfloat16": 3e-2}


@pytest.mark.parametrize("dtype", DTYPES + HALF_DTYPES)
@pytest.mark.parametrize("impl", [i for i in IMPLS if not i.startswith("floor")])
def test_impls_agree(impl, dtype):
    """Each implementation computes the Caffe2 op in the inputs' dtype (a small batch)."""
    if impl not in impls_wanted(dtype):
        pytest.skip(f"{impl} is not timed on {dtype}")
    ops = ops_for(impl)
    b = Batch((37, 53), dtype)
    x, z, g = b.arrays(impl)
    x64, z64, g64 = (a.astype(np.float64) for a in (b.x, b.z, b.g))
    want_loss, want_grad = numpy_forward(x64, z64), numpy_gradient(g64, x64, z64)
    rtol = RTOL[dtype]
    loss = _as_numpy(ops["forward"](x, z, g))
    grad = _as_numpy(ops["gradient"](x, z, g))
    fused_loss, fused_grad = (_as_numpy(a) for a in ops["fused"](x, z, g))
    for got, want in ((loss, want_loss), (fused_loss, want_loss), (grad, want_grad),
                      (fused_grad, want_grad)):
        assert got.dtype == numpy_dtype(dtype)
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=rtol, atol=rtol * 1e-2)
