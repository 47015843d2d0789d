"""GPU benchmark: the CUDA kernels against the device's copy bandwidth, PyTorch and CuPy.

Run on a machine with a CUDA GPU (``bench/gpu.sh`` runs this and the CUDA tests)::

    python -m pytest bench/test_bench_gpu.py --benchmark-enable \\
        --benchmark-json=bench/results/gpu.json -s

Without a GPU every case skips.  ``--benchmark-enable`` is needed (pyproject's addopts
say ``--benchmark-disable``: then every case runs once, untimed, a smoke test).
``BENCH_ROUNDS=N`` sets the timed rounds (default 20); ``BENCH_OUT=DIR`` where the
Markdown report goes (default ``bench/results``).

Per (op, shape, dtype), ops as in bench/test_bench_cpu.py (the Caffe2 operator:
``forward`` the per-row mean loss, ``gradient``, ``fused`` both in one pass):

* ``numba_xent``: ``numba_xent.caffe2`` on Numba device arrays (results allocated by
  Numba's memory manager on every call);
* ``numba_xent_torch`` / ``numba_xent_cupy``: the same functions on PyTorch tensors /
  CuPy arrays (zero-copy views; results from those libraries' pools), where installed;
* ``torch``: ``F.binary_cross_entropy_with_logits(x, z, reduction='none').mean(-1)``,
  the gradient by ``torch.autograd.grad`` (forward included: autograd needs it);
* ``cupy``: ``cupy.ElementwiseKernel`` for the elementwise loss then ``.mean(-1)``, and
  one for the gradient (``fused`` = both);
* ``copy``: a device-to-device copy of 1 GiB, once: the bandwidth every op is held to
  (counting bytes read plus bytes written, like the ops).

Timing: a round runs ``calls`` calls back to back, each on the next of several input
sets (together at least 4x the L2 cache, so that L2 is not what is measured), then
synchronises the device; a call's time is the round's median over ``calls``.  GB/s =
bytes the op must move (inputs read once, outputs written once) / that time.  The
report (``gpu.md``, printed too) gives each op's GB/s as a percentage of the copy's,
and the ratio of PyTorch's and CuPy's times to numba_xent's (on the same kind of
arrays: ``numba_xent_torch`` for PyTorch where it ran).  Nothing asserts a time.
"""

import math
import os
import pathlib

import numpy as np
import pytest

from numba_xent import caffe2
from ops import bce_row_mean_ops, bytes_moved

SHAPES = {"16384x4096": (16384, 4096), "1e6x16": (1_000_000, 16), "64x1e6": (64, 1_000_000)}
DTYPES = ("float32", "float64")
OPS = ("forward", "gradient", "fused")
IMPLS = ("numba_xent", "numba_xent_torch", "numba_xent_cupy", "torch", "cupy")
TARGET = ("16384x4096", "float32")  # >= 85% of copy for forward and fused, fused >= 2x torch
COPY_BYTES = 2**30
RESULTS = {}  # (op, shape, dtype, impl) -> seconds per call; "copy" -> seconds per copy


def gpu():
    """numba.cuda where it runs on a real GPU, else None."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return None
    try:
        from numba import cuda
    except ImportError:
        return None
    return cuda if cuda.is_available() else None


CUDA = gpu()
pytestmark = pytest.mark.skipif(CUDA is None, reason="needs a CUDA GPU (numba-cuda)")


def rounds():
    return max(1, int(os.environ.get("BENCH_ROUNDS", "20")))


def calls_for(nbytes):
    """Calls per round: about 20 ms of work at 3 TB/s, from 1 to 50."""
    return max(1, min(50, math.ceil(0.02 * 3e12 / nbytes)))


def sets_for(nbytes):
    """Input sets to rotate through: together at least 4x the L2 cache."""
    l2 = CUDA.get_current_device().L2_CACHE_SIZE
    return max(2, math.ceil(4 * l2 / nbytes))


def host_batch(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    x = rng.standard_normal(shape, dtype=dt) * 3
    z = (rng.random(shape, dtype=dt) < 0.05).astype(dt)
    g = (rng.random(shape[0], dtype=dt) + 0.5).astype(dt)
    return x.astype(dt), z, g


# --------------------------------------------------------------------------- implementations


class NumbaXent:
    """numba_xent.caffe2 on Numba device arrays."""

    def convert(self, x, z, g):
        return tuple(CUDA.to_device(a) for a in (x, z, g))

    def ops(self):
        return {
            "forward": lambda x, z, g: caffe2.sigmoid_cross_entropy_with_logits(x, z),
            "gradient": lambda x, z, g: caffe2.sigmoid_cross_entropy_with_logits_grad(g, x, z),
            "fused": lambda x, z, g: caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g),
        }


class NumbaXentTorch(NumbaXent):
    def __init__(self):
        self.torch = pytest.importorskip("torch")

    def convert(self, x, z, g):
        return tuple(self.torch.as_tensor(a, device="cuda") for a in (x, z, g))


class NumbaXentCupy(NumbaXent):
    def __init__(self):
        self.cupy = pytest.importorskip("cupy")

    def convert(self, x, z, g):
        return tuple(self.cupy.asarray(a) for a in (x, z, g))


class Torch(NumbaXentTorch):
    def ops(self):
        return bce_row_mean_ops(self.torch)


class Cupy(NumbaXentCupy):
    def ops(self):
        cp = self.cupy
        loss_el = cp.ElementwiseKernel(
            "T x, T z", "T l", "l = max(x, (T)0) - x * z + log1p(exp(-abs(x)))", "nx_bce_loss")
        grad_el = cp.ElementwiseKernel(
            "T x, T z, T g, T inv_n", "T d", "d = g * inv_n * (1 / (1 + exp(-x)) - z)",
            "nx_bce_grad")

        def forward(x, z, g):
            return loss_el(x, z).mean(-1)

        def gradient(x, z, g):
            return grad_el(x, z, g[:, None], x.dtype.type(1 / x.shape[-1]))

        return {"forward": forward, "gradient": gradient,
                "fused": lambda x, z, g: (forward(x, z, g), gradient(x, z, g))}


PEERS = {"numba_xent": NumbaXent, "numba_xent_torch": NumbaXentTorch,
         "numba_xent_cupy": NumbaXentCupy, "torch": Torch, "cupy": Cupy}
_IMPLS = {}


def impl_for(name):
    """The implementation ``name``, built once (skips where its library is missing)."""
    if name not in _IMPLS:
        impl = PEERS[name]()
        _IMPLS[name] = impl, impl.ops()
    return _IMPLS[name]


@pytest.fixture(scope="module")
def batches():
    """The current (shape, dtype): its host arrays and each implementation's input sets."""
    cache = {}

    def get(shape_name, dtype, impl, op):
        key = (shape_name, dtype)
        if key not in cache:
            cache.clear()
            cache[key] = {"host": host_batch(SHAPES[shape_name], dtype)}
        batch = cache[key]
        if impl not in batch:
            host = batch["host"]
            nbytes = bytes_moved("fused", SHAPES[shape_name], np.dtype(dtype).itemsize)
            convert = impl_for(impl)[0].convert
            batch[impl] = [convert(*host) for _ in range(sets_for(nbytes))]
        return batch[impl]

    yield get
    cache.clear()


# --------------------------------------------------------------------------- benchmarks


def timed(benchmark, run, calls):
    def round_():
        for i in range(calls):
            run(i)
        CUDA.synchronize()

    benchmark.pedantic(round_, rounds=rounds(), iterations=1, warmup_rounds=1)
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else stats.stats.median / calls


def test_copy_bandwidth(benchmark):
    """A device-to-device copy: the bandwidth the ops are held to."""
    from numba.cuda.cudadrv import driver

    src = CUDA.device_array(COPY_BYTES // 4, np.float32)
    dst = CUDA.device_array_like(src)
    stream = CUDA.default_stream()
    benchmark.extra_info.update(op="copy", bytes=2 * COPY_BYTES * 10, calls=10)
    median = timed(benchmark, lambda i: driver.device_to_device(dst, src, COPY_BYTES, stream),
                   10)
    if median:
        RESULTS["copy"] = median


CASES = [pytest.param(op, shape, dtype, impl, id=f"{op}-{shape}-{dtype}-{impl}")
         for shape in SHAPES for dtype in DTYPES for op in OPS for impl in IMPLS]


@pytest.mark.parametrize("op, shape_name, dtype, impl", CASES)
def test_gpu(benchmark, batches, op, shape_name, dtype, impl):
    _, ops = impl_for(impl)
    sets = batches(shape_name, dtype, impl, op)
    fn = ops[op]
    shape = SHAPES[shape_name]
    nbytes = bytes_moved(op, shape, np.dtype(dtype).itemsize)
    calls = calls_for(nbytes)
    benchmark.group = f"{op} {shape_name} {dtype}"
    benchmark.extra_info.update(op=op, shape=shape_name, dtype=dtype, impl=impl,
                                bytes=nbytes * calls, calls=calls, sets=len(sets))
    median = timed(benchmark, lambda i: fn(*sets[i % len(sets)]), calls)
    if median:
        RESULTS[op, shape_name, dtype, impl] = median


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", IMPLS)
def test_impls_agree(impl, dtype):
    """Every implementation computes the same operator (a small batch, against NumPy)."""
    _, ops = impl_for(impl)
    x, z, g = host_batch((37, 53), dtype, seed=1)
    dx, dz, dg = impl_for(impl)[0].convert(x, z, g)
    x64, z64, g64 = (a.astype(np.float64) for a in (x, z, g))
    loss = (np.maximum(x64, 0) - x64 * z64 + np.log1p(np.exp(-np.abs(x64)))).mean(-1)
    grad = g64[:, None] / x.shape[-1] * (1 / (1 + np.exp(-x64)) - z64)
    rtol = 1e-4 if dtype == "float32" else 1e-10
    fused = ops["fused"](dx, dz, dg)
    for got, want in ((ops["forward"](dx, dz, dg), loss), (ops["gradient"](dx, dz, dg), grad),
                      (fused[0], loss), (fused[1], grad)):
        got = as_host(got)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2)


def as_host(a):
    if hasattr(a, "copy_to_host"):
        return a.copy_to_host()
    if hasattr(a, "get"):
        return a.get()
    return a.detach().cpu().numpy()


# --------------------------------------------------------------------------- report


def report():
    """The Markdown table of the results (GB/s, % of copy, ratios to the peers)."""
    copy = RESULTS.get("copy")
    copy_gbs = 2 * COPY_BYTES / copy / 1e9 if copy else None
    device = CUDA.get_current_device()
    lines = [f"GPU: {device.name.decode() if isinstance(device.name, bytes) else device.name}"
             f", copy bandwidth {copy_gbs:.0f} GB/s (read + write)" if copy_gbs else "GPU",
             "",
             ("| op | shape | dtype | numba_xent ms | GB/s | % of copy | on torch ms |"
              " torch / numba_xent | on cupy ms | cupy / numba_xent |"),
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    verdicts = []
    for shape in SHAPES:
        for dtype in DTYPES:
            for op in OPS:
                own = {impl: RESULTS.get((op, shape, dtype, impl)) for impl in IMPLS}
                if not any(own.values()):
                    continue
                best = own["numba_xent_torch"] or own["numba_xent"]
                nbytes = bytes_moved(op, SHAPES[shape], np.dtype(dtype).itemsize)
                gbs = nbytes / best / 1e9 if best else None
                pct = 100 * gbs / copy_gbs if gbs and copy_gbs else None
                torch_ratio = _ratio(own["torch"], own["numba_xent_torch"])
                cupy_ratio = _ratio(own["cupy"], own["numba_xent_cupy"])
                lines.append(
                    f"| {op} | {shape} | {dtype} | {_ms(own['numba_xent'])} | {_num(gbs)} | "
                    f"{_num(pct)} | {_ms(own['numba_xent_torch'])} | {_x(torch_ratio)} | "
                    f"{_ms(own['numba_xent_cupy'])} | {_x(cupy_ratio)} |")
                if (shape, dtype) == TARGET and op in ("forward", "fused") and pct:
                    verdicts.append(f"{op} at {pct:.0f}% of copy (target 85%)")
                if (shape, dtype) == TARGET and op == "fused" and torch_ratio:
                    verdicts.append(f"fused {torch_ratio:.2f}x faster than torch (target 2x)")
    if verdicts:
        lines += ["", f"Targets at {' '.join(TARGET)}: " + "; ".join(verdicts) + "."]
    return "\n".join(lines) + "\n"


def _ratio(a, b):
    return a / b if a and b else None


def _ms(s):
    return "—" if not s else f"{s * 1e3:.3f}"


def _num(v):
    return "—" if v is None else f"{v:.0f}"


def _x(r):
    return "—" if r is None else f"{r:.2f}x"


def test_zz_report(capsys):
    """Print the table and write it beside the JSON (after every benchmark ran)."""
    if not RESULTS:
        pytest.skip("no timings (run with --benchmark-enable)")
    text = report()
    out = pathlib.Path(os.environ.get("BENCH_OUT", pathlib.Path(__file__).parent / "results"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.md").write_text(text)
    with capsys.disabled():
        print("\n" + text)
