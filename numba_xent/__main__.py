"""``python -m numba_xent``: a demo on a realistic batch, checked and timed against NumPy."""


import argparse
import time

import numpy as np

from . import caffe2

COMMANDS = """\
commands:
  python -m numba_xent                     this demo (4096 x 1024 float32)
  python -m pytest                         the tests (pip install ".[test]")
  python -m pytest bench/test_bench_cpu.py --benchmark-enable \\
      --benchmark-json=bench/results/cpu.json && python bench/report.py bench/results/cpu.json
                                           CPU benchmarks vs NumPy/PyTorch/JAX/TF and the
                                           memory floor (pip install ".[bench]")
  bash bench/gpu.sh                        GPU tests and benchmarks (needs a CUDA device)
  python scripts/memory.py                 peak memory of every function
  python scripts/huge.py                   64-bit indexing on 2**31 + 7 elements (~10 GB)
"""


def numpy_loss(x, z, w):
    """The textbook formula in float64 NumPy: mean_j w (max(x,0) - x z + log1p(exp(-|x|)))."""
    x, z, w = (a.astype(np.float64) for a in (x, z, w))
    return (w * (np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x))))).mean(axis=-1)


def numpy_grad(x, z, w):
    x, z, w = (a.astype(np.float64) for a in (x, z, w))
    return w * (1 / (1 + np.exp(-x)) - z) / x.shape[-1]


def median_time(fn, repeat):
    fn()  # compile and warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m numba_xent", description=__doc__,
                                     epilog=COMMANDS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4096, help="batch size (default 4096)")
    parser.add_argument("--cols", type=int, default=1024, help="classes per row (default 1024)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per entry (default 5)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    shape = (args.rows, args.cols)
    x = rng.normal(0, 3, shape).astype(np.float32)
    z = (rng.random(shape) < 0.05).astype(np.float32)  # sparse multi-label targets
    w = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    ones = np.ones(args.rows, np.float32)
    print(f"weighted sigmoid cross-entropy, {args.rows} x {args.cols} float32, "
          f"{args.repeat} timed calls each (median)")

    loss, grad = caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w)
    ref_loss, ref_grad = numpy_loss(x, z, w), numpy_grad(x, z, w)
    loss_err = np.max(np.abs(loss - ref_loss) / np.abs(ref_loss))
    grad_err = np.max(np.abs(grad - ref_grad)) / np.max(np.abs(ref_grad))
    print(f"max relative error vs float64 NumPy: loss {loss_err:.1e}, gradient {grad_err:.1e}")

    entries = [
        ("forward", lambda: caffe2.weighted_sigmoid_cross_entropy_with_logits(x, z, w),
         lambda: numpy_loss(x, z, w)),
        ("gradient", lambda: caffe2.weighted_sigmoid_cross_entropy_with_logits_grad(ones, x, z, w),
         lambda: numpy_grad(x, z, w)),
        ("forward+gradient",
         lambda: caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w),
         lambda: (numpy_loss(x, z, w), numpy_grad(x, z, w))),
    ]
    print(f"{'op':<18}{'numba_xent':>12}{'NumPy':>12}{'speed-up':>10}")
    for name, ours, theirs in entries:
        t_ours, t_theirs = median_time(ours, args.repeat), median_time(theirs, args.repeat)
        speed_up = t_theirs / t_ours
        print(f"{name:<18}{t_ours * 1e3:>10.2f}ms{t_theirs * 1e3:>10.2f}ms{speed_up:>9.1f}x")
    ok = loss_err < 3e-6 and grad_err < 3e-6
    print("check against NumPy:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
