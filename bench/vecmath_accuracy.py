"""Accuracy and throughput of ``numba_xent.cpu.vecmath`` (exp_nonpos, log1p_unit, log_unit).

    python bench/vecmath_accuracy.py            # everything (~1-2 min on 2 cores)
    python bench/vecmath_accuracy.py --quick    # float32 strided (every 97th), smaller samples

Accuracy is reported in ulps of the correctly rounded result:

* float32, EXHAUSTIVE: every float32 ``t`` in [-104, 0] for ``exp_nonpos``, every
  float32 ``u`` in [0, 1] for ``log1p_unit`` (plus -0) and in (0, 1] for ``log_unit``.
  Reference: glibc ``exp``/``log1p``/``log`` in float64 (error ~2**-52 relative, i.e.
  ~2**-29 float32 ulp),
  ulp = ulp of ``float32(reference)`` (2**-149 at zero/subnormals).
* float64, sampled: uniform, log-uniform and boundary-focused samples.  Reference:
  NumPy ``longdouble`` (x87 80-bit, 64-bit mantissa: glibc ``expl``/``log1pl``),
  ulp = ``np.spacing(float64(reference))`` (2**-1074 at zero/subnormals).  If
  ``mpmath`` is importable, the worst cases are re-checked at 50 digits.

Throughput: single-threaded loops over 4M elements (best of several runs), in
Gelem/s, against ``np.exp`` / ``np.log1p`` and a ``math.exp`` / ``math.log1p``
Numba loop (which compiles to scalar libm calls).
"""

import argparse
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

try:
    from numba_xent.cpu.vecmath import exp_nonpos, log1p_unit, log_unit, prefer_512bit_vectors
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from numba_xent.cpu.vecmath import exp_nonpos, log1p_unit, log_unit, prefer_512bit_vectors


# ----------------------------------------------------------------- kernels

@njit(error_model="numpy")
def vm_exp(a, out):
    for i in range(a.size):
        out[i] = exp_nonpos(a[i])


@njit(error_model="numpy")
def vm_log1p(a, out):
    for i in range(a.size):
        out[i] = log1p_unit(a[i])


@njit(error_model="numpy")
def vm_log(a, out):
    for i in range(a.size):
        out[i] = log_unit(a[i])


@njit(error_model="numpy")
def vm_softplus(a, out):
    one = a.dtype.type(1)  # a literal 1 / 1.0 would promote float32 to float64
    for i in range(a.size):
        e = exp_nonpos(-abs(a[i]))
        out[i] = log1p_unit(e) + e / (one + e)


@njit(error_model="numpy")
def vm_exp_512(a, out):
    prefer_512bit_vectors()
    for i in range(a.size):
        out[i] = exp_nonpos(a[i])


@njit(error_model="numpy")
def vm_log1p_512(a, out):
    prefer_512bit_vectors()
    for i in range(a.size):
        out[i] = log1p_unit(a[i])


@njit(error_model="numpy")
def vm_softplus_512(a, out):
    prefer_512bit_vectors()
    one = a.dtype.type(1)
    for i in range(a.size):
        e = exp_nonpos(-abs(a[i]))
        out[i] = log1p_unit(e) + e / (one + e)


@njit(error_model="numpy")
def libm_exp(a, out):
    for i in range(a.size):
        out[i] = math.exp(a[i])


@njit(error_model="numpy")
def libm_log1p(a, out):
    for i in range(a.size):
        out[i] = math.log1p(a[i])


@njit(error_model="numpy")
def libm_softplus(a, out):
    for i in range(a.size):
        e = math.exp(-abs(a[i]))
        out[i] = math.log1p(e) + e / (1 + e)


def np_softplus(a, out):
    e = np.exp(-np.abs(a))
    np.add(np.log1p(e), e / (1 + e), out=out)


# ------------------------------------------------------- float32 exhaustive

@njit
def _ulp32(y):
    """ulp of the float32 value y (a float64 holding a float32)."""
    y = abs(y)
    if y < 2.0**-126:
        return 2.0**-149
    _, e = math.frexp(y)
    return math.ldexp(1.0, e - 24)


@njit
def _check32(bits, which):
    """max ulp error over float32 bit patterns ``bits``; which 0 = exp, 1 = log1p, 2 = log."""
    x = bits.view(np.float32)
    out = np.empty_like(x)
    if which == 0:
        for i in range(x.size):
            out[i] = exp_nonpos(x[i])
    elif which == 1:
        for i in range(x.size):
            out[i] = log1p_unit(x[i])
    else:
        for i in range(x.size):
            out[i] = log_unit(x[i])
    worst = -1.0
    where = 0
    n_half = 0  # not correctly rounded (> 0.5 ulp)
    n_one = 0   # > 1 ulp
    for i in range(x.size):
        xd = np.float64(x[i])
        ref = math.exp(xd) if which == 0 else math.log1p(xd) if which == 1 else math.log(xd)
        ulp = _ulp32(np.float64(np.float32(ref)))
        err = abs(np.float64(out[i]) - ref) / ulp
        if math.isnan(err):
            err = np.inf
        if err > 0.5:
            n_half += 1
        if err > 1.0:
            n_one += 1
        if err > worst:
            worst = err
            where = i
    return worst, x[where], out[where], n_half, n_one


def sweep32(name, which, lo_bits, hi_bits, step=1, chunk=1 << 24):
    t0 = time.perf_counter()
    worst, wx, wy, n_half, n_one, n = -1.0, None, None, 0, 0, 0
    for start in range(lo_bits, hi_bits + 1, chunk * step):
        stop = min(start + chunk * step, hi_bits + 1)
        bits = np.arange(start, stop, step, dtype=np.uint64).astype(np.uint32)
        w, x, y, h, o = _check32(bits, which)
        n += bits.size
        n_half += h
        n_one += o
        if w > worst:
            worst, wx, wy = w, x, y
    ref = (math.exp, math.log1p, math.log)[which](float(wx))
    print(f"  {name:<26s} n={n:>11,d}  max {worst:.4f} ulp at x={float(wx)!r} "
          f"(got {float(wy)!r}, ref {ref!r});  >0.5ulp: {n_half / n:.3%}, >1ulp: {n_one}"
          f"   [{time.perf_counter() - t0:.1f}s]")
    return worst


def f32bits(v):
    return int(np.float32(v).view(np.uint32))


# ------------------------------------------------------------ float64 sampled

def ulp_err64(x, fn_ld, kernel):
    out = np.empty_like(x)
    kernel(x, out)
    ref = fn_ld(x.astype(np.longdouble))
    ulp = np.spacing(np.abs(ref.astype(np.float64))).astype(np.longdouble)
    err = (np.abs(out.astype(np.longdouble) - ref) / ulp).astype(np.float64)
    return err, out


def mp_recheck(xs, outs, which):
    try:
        import mpmath as mp
    except ImportError:
        return None
    mp.mp.dps = 50
    worst = 0.0
    for x, y in zip(xs, outs):
        ref = (mp.exp, mp.log1p, mp.log)[which](mp.mpf(float(x)))
        cr = float(ref)
        ulp = float(np.spacing(abs(cr))) if cr != 0 else 2.0**-1074
        worst = max(worst, float(abs(mp.mpf(float(y)) - ref) / ulp))
    return worst


def sample64(name, x, which):
    fn_ld = (np.exp, np.log1p, np.log)[which]
    kernel = (vm_exp, vm_log1p, vm_log)[which]
    err, out = ulp_err64(x, fn_ld, kernel)
    i = int(np.argmax(err))
    top = np.argsort(err)[-200:]
    mp_worst = mp_recheck(x[top], out[top], which)
    mp_txt = f"; mpmath re-check of worst 200: {mp_worst:.4f}" if mp_worst is not None else ""
    print(f"  {name:<34s} n={x.size:>10,d}  max {err[i]:.4f} ulp at x={x[i]!r} "
          f"(got {out[i]!r});  >0.5ulp: {np.mean(err > 0.5):.3%}, "
          f">1ulp: {int(np.sum(err > 1))}{mp_txt}")
    return float(err[i])


def float64_samples(n, rng):
    log_unif = lambda lo, hi, k: np.exp(rng.uniform(np.log(lo), np.log(hi), k))
    exp_sets = {
        "exp uniform [-746, 0]": -rng.uniform(0, 746, n),
        "exp log-uniform |t| in [1e-300, 746]": -log_unif(1e-300, 746, n),
        "exp subnormal range [-745.2, -708]": -rng.uniform(708, 745.2, n // 4),
        "exp near 0 [-1, 0]": -rng.uniform(0, 1, n // 4),
    }
    th = np.sqrt(2) - 1
    log_sets = {
        "log1p uniform [0, 1]": rng.uniform(0, 1, n),
        "log1p log-uniform [1e-320, 1]": log_unif(1e-320, 1.0, n),
        "log1p near sqrt2-1 (+-1e-6)": th + rng.uniform(-1e-6, 1e-6, n // 4),
        "log1p near 1 [0.999, 1]": rng.uniform(0.999, 1.0, n // 4),
        "log1p tiny [0, 1e-8]": rng.uniform(0, 1e-8, n // 4),
    }
    unit_sets = {
        "log uniform (0, 1]": 1 - rng.uniform(0, 1, n),
        "log log-uniform [1e-320, 1]": log_unif(1e-320, 1.0, n),
        "log near sqrt(1/2) (+-1e-6)": np.sqrt(0.5) + rng.uniform(-1e-6, 1e-6, n // 4),
        "log near 1 [0.999, 1]": rng.uniform(0.999, 1.0, n // 4),
    }
    return exp_sets, log_sets, unit_sets


# -------------------------------------------------------------- throughput

def bench(fn, a, out, reps):
    fn(a, out)
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(a, out)
        best = min(best, time.perf_counter() - t0)
    return a.size / best / 1e9


def throughput(sizes=(1 << 22, 1 << 14)):
    rng = np.random.default_rng(1)
    print("\nThroughput, single thread, Gelem/s (best of several runs); 4M elements "
          "(arrays in DRAM) and 16K (in L1/L2):")
    cols = [(n, dt) for n in sizes for dt in (np.float32, np.float64)]
    print("  " + " " * 31 + "".join(f"{dt.__name__ + ' ' + ('4M' if n == 1 << 22 else '16K'):>14s}"
                                    for n, dt in cols))
    names, vals = [], {}
    for n, dt in cols:
        reps = 15 if n >= 1 << 20 else 400
        t = -rng.uniform(0, 30, n).astype(dt)   # exp input (results stay normal)
        u = rng.uniform(0, 1, n).astype(dt)     # log1p input
        x = rng.normal(0, 5, n).astype(dt)      # logits
        out = np.empty(n, dt)
        cases = [
            ("exp_nonpos loop", vm_exp, t),
            ("  same, prefer_512bit_vectors", vm_exp_512, t),
            ("  np.exp", lambda a, o: np.exp(a, out=o), t),
            ("  math.exp loop", libm_exp, t),
            ("log1p_unit loop", vm_log1p, u),
            ("  same, prefer_512bit_vectors", vm_log1p_512, u),
            ("  np.log1p", lambda a, o: np.log1p(a, out=o), u),
            ("  math.log1p loop", libm_log1p, u),
            ("log_unit loop", vm_log, u),
            ("  np.log", lambda a, o: np.log(a, out=o), u),
            ("softplus-ish loop", vm_softplus, x),
            ("  same, prefer_512bit_vectors", vm_softplus_512, x),
            ("  numpy equivalent", np_softplus, x),
            ("  math.* loop", libm_softplus, x),
        ]
        names = [c[0] for c in cases]
        for j, (name, fn, a) in enumerate(cases):
            vals.setdefault(j, []).append(bench(fn, a, out, reps))
    for j, name in enumerate(names):
        print(f"  {name:<31s}" + "".join(f"{v:>14.3f}" for v in vals[j]))
    print("  (softplus-ish: e = exp(-|x|); log1p(e) + e/(1+e), x ~ N(0, 5))")


# ---------------------------------------------------------------------- asm

LIBM = re.compile(r"[\$\s](exp|expf|log1p|log1pf|log|logf|__exp\w*|__log\w*)\b")


def asm_report():
    print("\nAssembly of the loops (packed-FP instruction counts by register width):")
    for dt in (np.float32, np.float64):
        a = np.zeros(4, dt)
        for k in (vm_exp, vm_log1p, vm_log, vm_softplus, vm_exp_512, vm_log1p_512,
                  vm_softplus_512):
            k(a, a.copy())
            sig = next(s for s in k.signatures if str(s[0].dtype) == dt.__name__)
            asm = k.inspect_asm(sig)
            counts = {w: len(re.findall(rf"\b\w+p[sd]\s[^\n]*%{w}mm", asm))
                      for w in ("z", "y", "x")}
            libm = sorted(set(LIBM.findall(asm)))
            print(f"  {dt.__name__:<8s}{k.__name__:<16s} zmm {counts['z']:>3d}  "
                  f"ymm {counts['y']:>3d}  "
                  f"xmm {counts['x']:>3d}  libm calls: {libm or 'none'}")
    a = np.zeros(4)
    libm_exp(a, a.copy())
    asm = libm_exp.inspect_asm(libm_exp.signatures[0])
    print(f"  (control) math.exp loop float64: libm calls: {sorted(set(LIBM.findall(asm)))}")


# --------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true",
                    help="strided float32 sweep, fewer float64 samples")
    ap.add_argument("--n64", type=int, default=4_000_000,
                    help="float64 samples per large set (small sets get a quarter)")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    step = 97 if args.quick else 1
    n64 = args.n64 // 10 if args.quick else args.n64

    print(f"float32 {'exhaustive' if step == 1 else f'every {step}th bit pattern'} "
          "(reference: glibc float64 exp/log1p):")
    sweep32("exp_nonpos, t in [-104, 0]", 0, f32bits(-0.0), f32bits(-104.0), step)
    sweep32("log1p_unit, u in [0, 1]", 1, f32bits(0.0), f32bits(1.0), step)
    sweep32("log1p_unit, u = -0.0", 1, f32bits(-0.0), f32bits(-0.0))
    sweep32("log_unit, u in (0, 1]", 2, 1, f32bits(1.0), step)

    print("\nfloat64 sampled (reference: np.longdouble, 80-bit x87):")
    rng = np.random.default_rng(12345)
    exp_sets, log_sets, unit_sets = float64_samples(n64, rng)
    for name, x in exp_sets.items():
        sample64(name, x, 0)
    for name, x in log_sets.items():
        sample64(name, x, 1)
    for name, x in unit_sets.items():
        sample64(name, x, 2)

    asm_report()
    if not args.skip_throughput:
        throughput()


if __name__ == "__main__":
    main()
