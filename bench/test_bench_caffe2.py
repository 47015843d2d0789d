"""Caffe2 operators vs NumPy (and PyTorch where installed), 4096 x 1024 float32.

    python -m pytest bench/test_bench_caffe2.py --benchmark-enable

Benchmarks only: nothing here asserts a time.  Compare the medians within one run.
"""

import numpy as np
import pytest

from numba_xent import caffe2

SHAPE = (4096, 1024)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, SHAPE).astype(np.float32)
    z = (rng.random(SHAPE) < 0.05).astype(np.float32)
    return x, z, np.ones(SHAPE[0], np.float32)


def numpy_forward(x, z):
    return (np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))).mean(axis=-1)


def numpy_grad(g, x, z):
    return g[:, None] / x.shape[-1] * (1 / (1 + np.exp(-x)) - z)


OPS = {
    "forward": {
        "numba_xent": lambda x, z, g: caffe2.sigmoid_cross_entropy_with_logits(x, z),
        "numpy": lambda x, z, g: numpy_forward(x, z),
    },
    "gradient": {
        "numba_xent": lambda x, z, g: caffe2.sigmoid_cross_entropy_with_logits_grad(g, x, z),
        "numpy": lambda x, z, g: numpy_grad(g, x, z),
    },
    "fused": {
        "numba_xent": lambda x, z, g: caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g),
        "numpy": lambda x, z, g: (numpy_forward(x, z), numpy_grad(g, x, z)),
    },
}


def torch_ops():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    def forward(x, z, g):
        return F.binary_cross_entropy_with_logits(x, z, reduction="none").mean(-1)

    def fused(x, z, g):
        x = x.detach().requires_grad_()
        loss = forward(x, z, g)
        loss.backward(g)
        return loss, x.grad

    def gradient(x, z, g):
        return fused(x, z, g)[1]

    return torch, {"forward": forward, "gradient": gradient, "fused": fused}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("impl", ["numba_xent", "numpy", "torch"])
def test_caffe2(benchmark, batch, op, impl):
    benchmark.group = f"caffe2 {op} {SHAPE[0]}x{SHAPE[1]} float32"
    if impl == "torch":
        torch, ops = torch_ops()
        args = [torch.from_numpy(a) for a in batch]
        fn = ops[op]
    else:
        args, fn = batch, OPS[op][impl]
    fn(*args)  # compile outside the timing
    benchmark(fn, *args)
