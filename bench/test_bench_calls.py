"""Per-call cost: what one call costs on small inputs, where Python is most of the time.

    python -m pytest bench/test_bench_calls.py --benchmark-enable \\
        --benchmark-json=bench/results/calls.json && \\
        python bench/calls_report.py bench/results/calls.json --readme README.md

One test per (call, shape), ids ``test_call[<call>-<shape>]``, shapes 8x8 and 256x64
float32.  Each round times ``CALLS`` calls of every contender of the case, in an order
shuffled from round to round (contenders of a case: the numba_xent call and, for the
torch cases, PyTorch's own ``binary_cross_entropy_with_logits``); the result is the
median over the rounds of the time per call (``extra_info["median_us"]``).  Results are
allocated by every call (no ``out=``), as a plain call does.  Nothing here asserts a time.
"""

import time

import numpy as np
import pytest

import numba_xent as nx
from numba_xent import caffe2, tf

try:
    import torch

    import numba_xent.torch as nxt
except ImportError:  # the torch cases need the torch extra
    torch = None

SHAPES = {"8x8": (8, 8), "256x64": (256, 64)}
CALLS, ROUNDS = 200, 25


def inputs(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    z = (rng.uniform(size=shape) < 0.5).astype(np.float32)
    return x, z


def numpy_calls(shape):
    x, z = inputs(shape)
    t = z.copy()
    t[:, 0] = -1
    return {
        "caffe2 forward": {"numba_xent": lambda: caffe2.sigmoid_cross_entropy_with_logits(x, z)},
        "general and_grad mean": {
            "numba_xent": lambda: nx.sigmoid_cross_entropy_and_grad(x, z)},
        "general and_grad mean ignore_index": {
            "numba_xent": lambda: nx.sigmoid_cross_entropy_and_grad(x, t, ignore_index=-1)},
        "tf forward": {"numba_xent": lambda: tf.sigmoid_cross_entropy(z, x)},
    }


def torch_calls(shape):
    x, z = (torch.from_numpy(a) for a in inputs(shape))
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]

    def ours():
        nxt.sigmoid_cross_entropy(xs[0], z).backward()

    def theirs():
        torch.nn.functional.binary_cross_entropy_with_logits(xs[1], z).backward()

    return {"torch forward+backward": {"numba_xent": ours, "torch": theirs}}


def cases():
    out = []
    for label, shape in SHAPES.items():
        calls = numpy_calls(shape)
        if torch is not None:
            calls.update(torch_calls(shape))
        out += [pytest.param(calls[name], id=f"{name}-{label}") for name in calls]
    return out


def per_call_us(contenders, rounds=ROUNDS, calls=CALLS):
    """{name: median over rounds of the time per call, in microseconds}."""
    order = np.random.default_rng(0)
    times = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()  # compiled and warm
    for _ in range(rounds):
        for name in order.permutation(list(contenders)):
            fn = contenders[name]
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: float(np.median(t)) for name, t in times.items()}


@pytest.mark.parametrize("contenders", cases())
def test_call(benchmark, contenders):
    if torch is not None:
        torch.set_num_threads(1)  # small tensors: threads would only add their start-up
    result = benchmark.pedantic(per_call_us, args=(contenders,), rounds=1, iterations=1)
    benchmark.extra_info["median_us"] = result
    assert set(result) == set(contenders)
