"""Where the cycles of the CPU kernels go: the vector loops of each, instruction by kind.

    python bench/hot_loops.py

This machine's VM exposes no hardware counters (``perf stat`` says "not supported"),
and valgrind cannot run AVX-512 code, so the profile is static: each Caffe2 kernel
(forward, gradient, fused; float32 and float64; the row loop at rows of 1024 and the
flat loop at rows of 16) is recompiled uncached, and for each innermost loop of its
assembly that processes whole vectors (``zmm``) the instructions of one iteration are
counted by kind: floating-point arithmetic (on the two FMA ports), integer vector
work, loads/stores, constant-address loads (``movabsq``: Numba's code model), and the
rest.  Together with the measured rate (``--time``: one thread, 262,144 elements per
call, so the inputs sit in L2/L3 and the ~15 us of a call's Python are a few percent)
it says how far each loop is from its port limit.
"""

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numba_xent import caffe2, cpu  # noqa: E402
from numba_xent._jit import CPU_OPTIONS  # noqa: E402
from numba_xent.cpu import kernels  # noqa: E402

KINDS = {
    "fp": re.compile(r"^v(fn?m(add|sub)\w*p[sd]|(add|sub|mul|div|max|min)p[sd]|cmp\w*p[sd]|"
                     r"blendm\w*p[sd]|(and|or|xor|andn)p[sd]|cvt\w+)$"),
    "int vector": re.compile(r"^vp\w+$"),
    "load/store/broadcast": re.compile(r"^v(movu|mova|broadcast|movs)\w*$"),
    "constant address": re.compile(r"^movabsq$"),
}


def kind(mnemonic):
    return next((k for k, pattern in KINDS.items() if pattern.match(mnemonic)), "other")


def vector_loops(asm):
    """``[(label, Counter(kind), instructions)]`` of the innermost zmm loops."""
    found, label, body = [], None, []
    for line in asm.split("\n"):
        m = re.match(r"^(\.LBB\S+):", line)
        if m:
            label, body = m.group(1), []
            continue
        s = line.strip()
        if not s or s.startswith((".", "#")):
            continue
        body.append(s)
        if label and re.match(rf"^j\w+\s+{re.escape(label)}$", s):
            if any("zmm" in b for b in body):
                found.append((label, Counter(kind(b.split()[0]) for b in body), len(body)))
    return found


def kernel_for(call):
    """The launch arguments of the kernel ``call`` runs, and its assembly (recompiled
    uncached: Numba shows no assembly of cached code)."""
    got = {}
    launch = cpu.launch

    def spy(key, *args):
        got["launch"] = (key, args)
        return launch(key, *args)

    cpu.launch = spy
    before = set(kernels._KERNELS)
    try:
        call()
    finally:
        cpu.launch = launch
    new = set(kernels._KERNELS) - before
    dispatcher = kernels._KERNELS[new.pop() if new else list(kernels._KERNELS)[-1]]
    fresh = numba.njit(parallel=True, **CPU_OPTIONS)(dispatcher.py_func)
    sig = dispatcher.signatures[0]
    fresh.compile(sig)
    return got["launch"], fresh.inspect_asm(sig)


def per_core_rate(launch_args, size, reps=300):
    key, args = launch_args
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        cpu.launch(key, *args)
        best = np.inf
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(reps):
                cpu.launch(key, *args)
            best = min(best, (time.perf_counter() - t0) / reps)
    finally:
        numba.set_num_threads(threads)
    return size / best / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--time", action="store_true", help="also time each kernel on one core")
    args = ap.parse_args()
    for dtype in (np.float32, np.float64):
        for shape, loop in (((256, 1024), "row loop"), ((16384, 16), "flat loop")):
            rng = np.random.default_rng(0)
            x = rng.normal(0, 3, shape).astype(dtype)
            z = (rng.uniform(size=shape) < 0.3).astype(dtype)
            g = np.ones(shape[0], dtype)
            loss, grad = np.empty(shape[0], dtype), np.empty(shape, dtype)
            calls = {
                "forward": lambda: caffe2.sigmoid_cross_entropy_with_logits(x, z, out=loss),
                "gradient": lambda: caffe2.sigmoid_cross_entropy_with_logits_grad(
                    g, x, z, out=grad),
                "fused": lambda: caffe2.sigmoid_cross_entropy_with_logits_and_grad(
                    x, z, g, out=loss, grad=grad),
            }
            lanes = 64 // np.dtype(dtype).itemsize
            for op, call in calls.items():
                launch_args, asm = kernel_for(call)
                rate = f", {per_core_rate(launch_args, x.size):.2f} Gelem/s per core" \
                    if args.time else ""
                print(f"{np.dtype(dtype).name} {op}, {loop} {shape}{rate}:")
                for label, kinds, total in vector_loops(asm):
                    mix = ", ".join(f"{k} {kinds[k]}" for k in (*KINDS, "other") if kinds[k])
                    print(f"  loop {label:<10s} {total:3d} instructions per {lanes} elements: "
                          f"{mix}")


if __name__ == "__main__":
    main()
