"""CPU benchmark: the focal loss's fused forward+gradient against torchvision, optax and a
memory floor.

Regenerate (a few minutes on 2 cores; needs torchvision and optax beside the ``bench``
extra)::

    python -m pytest bench/test_bench_focal.py --benchmark-enable \\
        --benchmark-json=bench/results/focal.json && \\
        python bench/focal_report.py bench/results/focal.json --readme README.md

What is timed, float32, per shape: the mean focal loss (``alpha=0.25, gamma=2``) and its
gradient with respect to the logits, as a training step needs them, each contender as
its users call it; rounds interleaved as in bench/test_bench_cpu.py (median of the
second of two calls in a row, the order shuffled every round).

* ``numba_xent``: ``numba_xent.sigmoid_focal_loss_and_grad`` into ``out=``/``grad=``
  buffers made once; ``bce``: ``sigmoid_cross_entropy_and_grad`` the same way (the plain
  loss's fused kernel, whose share of the floor the focal loss's is compared with);
  ``asl``: ``asymmetric_loss_and_grad`` (its defaults) the same way.
* ``floor``: a Numba ``parallel=True`` kernel that reads x and z and writes the gradient
  and one sum, with trivial arithmetic, into a buffer made once: memory speed.
* ``torchvision``: ``torchvision.ops.sigmoid_focal_loss(reduction='mean')`` and
  ``torch.autograd.grad`` (2 threads, tensors by ``torch.from_numpy``).
* ``optax``: ``jax.jit(jax.value_and_grad(mean of optax.sigmoid_focal_loss))``,
  ``block_until_ready``, inputs ``device_put`` once.

Nothing here asserts a time; ``test_impls_agree`` checks on a small batch that every
contender computes the same loss and gradient.
"""

import numba
import numpy as np
import pytest
from test_bench_cpu import THREADS, interleaved

import numba_xent as nx

SHAPES = {"16384x4096": (16384, 4096), "1e6x16": (1_000_000, 16)}
ALPHA, GAMMA = 0.25, 2.0
ROUNDS = 7


def batch(shape, seed=0):
    """Logits ~ N(0, 3^2) and 5% positive targets (a detector's or tagger's imbalance)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= 3
    z = (rng.random(shape, dtype=np.float32) < 0.05).astype(np.float32)
    return x, z


def ours(fn):
    """``fn(x, z, out=, grad=)`` into buffers made on the first call (then reused)."""
    buffers = {}

    def call(x, z):
        if buffers.get("shape") != x.shape:
            buffers.clear()
            buffers.update(shape=x.shape, out=np.empty((), x.dtype), grad=np.empty_like(x))
        return fn(x, z, out=buffers["out"], grad=buffers["grad"])

    return call


@numba.njit(parallel=True, fastmath=True)
def _floor(x, z, grad):
    acc = 0.0
    for r in numba.prange(x.shape[0]):
        for j in range(x.shape[1]):
            s = x[r, j] + z[r, j]
            acc += s
            grad[r, j] = s
    return acc


def floor():
    buffers = {}

    def call(x, z):
        if buffers.get("shape") != x.shape:
            buffers.update(shape=x.shape, grad=np.empty_like(x))
        return _floor(x, z, buffers["grad"]), buffers["grad"]

    return call


def torchvision():
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    torch.set_num_threads(THREADS)

    def call(x, z):
        x = torch.from_numpy(x).requires_grad_()
        loss = ops.sigmoid_focal_loss(x, torch.from_numpy(z), ALPHA, GAMMA, reduction="mean")
        (grad,) = torch.autograd.grad(loss, x)
        return loss.detach().numpy(), grad.numpy()

    return call


def optax():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    step = jax.jit(jax.value_and_grad(
        lambda x, z: optax.sigmoid_focal_loss(x, z, alpha=ALPHA, gamma=GAMMA).mean()))
    put = {}

    def call(x, z):
        key = (id(x), id(z))  # the inputs on the device once, as a training loop has them
        if key not in put:
            put.clear()
            put[key] = jax.block_until_ready((jax.device_put(x), jax.device_put(z)))
        loss, grad = jax.block_until_ready(step(*put[key]))
        return np.asarray(loss), np.asarray(grad)

    return call


CONTENDERS = {
    "numba_xent": lambda: ours(nx.sigmoid_focal_loss_and_grad),
    "bce": lambda: ours(nx.sigmoid_cross_entropy_and_grad),
    "asl": lambda: ours(nx.asymmetric_loss_and_grad),
    "floor": floor,
    "torchvision": torchvision,
    "optax": optax,
}
_CALLS = {}


def contender(name):
    """The contender's callable, made once (its jit caches live in it); None if its
    library is not installed."""
    if name not in _CALLS:
        try:
            _CALLS[name] = CONTENDERS[name]()
        except pytest.skip.Exception:
            _CALLS[name] = None
    return _CALLS[name]


@pytest.mark.parametrize("shape_name", SHAPES)
def test_focal_fused(benchmark, shape_name):
    x, z = batch(SHAPES[shape_name])
    calls = {name: (contender(name), (x, z)) for name in CONTENDERS if contender(name)}
    benchmark.group = f"focal fused {shape_name} float32"
    benchmark.extra_info.update(
        shape=shape_name, dtype="float32", bytes=3 * x.nbytes,  # reads x, z; writes the grad
        median_s=interleaved(benchmark, calls, ROUNDS))


def focal_reference(x, z):
    """torchvision's formula in float64 (moderate logits: no stability needed)."""
    x, z = x.astype(np.float64), z.astype(np.float64)
    p = 1 / (1 + np.exp(-x))
    bce = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    m = z * (1 - p) + (1 - z) * p
    at = ALPHA * z + (1 - ALPHA) * (1 - z)
    dm = (1 - 2 * z) * p * (1 - p)
    loss = at * m**GAMMA * bce
    grad = at * (GAMMA * m ** (GAMMA - 1) * dm * bce + m**GAMMA * (p - z))
    return loss.mean(), grad / x.size


@pytest.mark.parametrize("name", [n for n in CONTENDERS if n not in ("bce", "asl", "floor")])
def test_impls_agree(name):
    call = contender(name)
    if call is None:
        pytest.skip(f"{name} is not installed")
    x, z = batch((37, 53), seed=1)
    loss, grad = (np.array(a, np.float64) for a in call(x, z))
    want_loss, want_grad = focal_reference(x, z)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6 * np.abs(want_grad).max())
