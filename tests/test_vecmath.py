"""The vectorisable exp / log1p helpers of the CPU kernels (numba_xent.cpu.vecmath).

The exhaustive float32 sweep and the throughput figures live in
bench/vecmath_accuracy.py; here: special values, a strided float32 subsample,
float64 samples against a long double reference, dtype handling and the
vectorisation of a loop over them (checked on the assembly).
"""

import math
import re

import numpy as np
import pytest
from numba import config, njit, types

from numba_xent.cpu.vecmath import exp_nonpos, log1p_unit, prefer_512bit_vectors

ULP_BOUND = 1.0  # measured worst case ~0.83 ulp (the target is 2)
LONGDOUBLE_OK = np.finfo(np.longdouble).nmant >= 63


# ------------------------------------------------------------------ kernels

@njit(error_model="numpy")
def k_exp(a, out):
    for i in range(a.size):
        out[i] = exp_nonpos(a[i])


@njit(error_model="numpy")
def k_log1p(a, out):
    for i in range(a.size):
        out[i] = log1p_unit(a[i])


@njit(error_model="numpy")
def k_softplus(a, out):
    one = a.dtype.type(1)
    for i in range(a.size):
        e = exp_nonpos(-abs(a[i]))
        out[i] = log1p_unit(e) + e / (one + e)


@njit  # default error_model='python': the helpers must not add a ZeroDivisionError check
def k_log1p_pyerr(a, out):
    for i in range(a.size):
        out[i] = log1p_unit(a[i])


@njit(error_model="numpy", fastmath={"contract"})
def k_both_contract(a, out_exp, out_log):
    for i in range(a.size):
        out_exp[i] = exp_nonpos(a[i])
        out_log[i] = log1p_unit(-a[i] * a.dtype.type(0.01))


@njit(error_model="numpy")
def k_exp_512(a, out):
    prefer_512bit_vectors()
    for i in range(a.size):
        out[i] = exp_nonpos(a[i])


@njit
def scalar_types(x):
    return exp_nonpos(x), log1p_unit(-x)


def run(kernel, x):
    out = np.empty_like(x)
    kernel(x, out)
    return out


# ------------------------------------------------------------------ helpers

def ulp_err32(x, got, ref_fn):
    """|got - ref| in ulps of float32(ref), the reference in float64."""
    ref = ref_fn(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref.astype(np.float32))).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / ulp


def ulp_err64(x, got, ref_fn):
    ref = ref_fn(x.astype(np.longdouble))
    ulp = np.spacing(np.abs(ref.astype(np.float64))).astype(np.longdouble)
    return (np.abs(got.astype(np.longdouble) - ref) / ulp).astype(np.float64)


def f32_range(lo, hi, step):
    """Every ``step``-th float32 between lo and hi (same sign), by bit pattern."""
    a, b = sorted(int(np.float32(v).view(np.uint32)) for v in (lo, hi))
    return np.arange(a, b + 1, step, dtype=np.uint64).astype(np.uint32).view(np.float32)


def same(a, b):
    """Equal including the sign of zero, NaN equal to NaN."""
    a, b = np.asarray(a), np.asarray(b)
    return bool(np.all((a == b) & (np.signbit(a) == np.signbit(b)) | (np.isnan(a) & np.isnan(b))))


DTYPES = [np.float32, np.float64]


# ----------------------------------------------------------- special values

@pytest.mark.parametrize("dt", DTYPES)
def test_exp_special_values(dt):
    t = np.array([0.0, -0.0, -np.inf, np.nan, -1.0, -1e-30, -2000.0, -1e30], dt)
    got = run(k_exp, t)
    assert same(got, np.array([1, 1, 0, np.nan, math.exp(-1), 1, 0, 0], dt))
    assert got.dtype == dt


@pytest.mark.parametrize("dt", DTYPES)
def test_exp_underflow_and_subnormal_results(dt):
    fi = np.finfo(dt)
    tiny = float(fi.smallest_subnormal)
    # the float nearest the threshold where exp rounds to 0 (half the smallest
    # subnormal), and a dense sweep through the whole subnormal-result range
    t0 = math.log(tiny) - math.log(2)
    lo_normal = math.log(float(fi.smallest_normal))
    t = np.concatenate([np.linspace(t0 - 1, lo_normal + 1, 20001).astype(dt),
                        [dt(t0 - 1e-3), dt(t0 + 1e-3 * abs(t0))]])
    got = run(k_exp, t)
    if dt is np.float32:
        err = ulp_err32(t, got, np.exp)
    elif LONGDOUBLE_OK:
        err = ulp_err64(t, got, np.exp)
    else:
        err = np.zeros(1)
    assert err.max() <= ULP_BOUND, t[np.argmax(err)]
    assert got[-2] == 0 and got[-1] == dt(tiny)
    assert np.all(got[t < t0 - 1e-3] == 0)
    # not flushed: the subnormal results are there
    assert np.count_nonzero((got > 0) & (got < fi.smallest_normal)) > 1000


@pytest.mark.parametrize("dt", DTYPES)
def test_log1p_special_values(dt):
    fi = np.finfo(dt)
    u = np.array([0.0, -0.0, np.nan, 1.0, fi.smallest_subnormal, fi.smallest_normal,
                  fi.eps / 4, 2.0**-30], dt)
    got = run(k_log1p, u)
    want = np.array([0.0, -0.0, np.nan, np.log1p(1.0), fi.smallest_subnormal,
                     fi.smallest_normal, fi.eps / 4, np.log1p(2.0**-30)], dt)
    assert same(got[:6], want[:6])
    assert got.dtype == dt
    # tiny u: log1p(u) = u - u^2/2 rounds to u (or its predecessor)
    assert np.all(np.abs(got[6:] - want[6:]) <= np.spacing(want[6:]))


@pytest.mark.parametrize("dt", DTYPES)
def test_log1p_around_the_reduction_switch(dt):
    th = math.sqrt(2) - 1
    u = np.linspace(th * (1 - 1e-4), th * (1 + 1e-4), 20001).astype(dt)
    itype = np.uint32 if dt is np.float32 else np.uint64
    bits = (int(dt(th).view(itype)) + np.arange(-100, 101)).astype(itype)
    u = np.concatenate([u, bits.view(dt)])
    got = run(k_log1p, u)
    if dt is np.float32:
        err = ulp_err32(u, got, np.log1p)
    elif LONGDOUBLE_OK:
        err = ulp_err64(u, got, np.log1p)
    else:
        pytest.skip("np.longdouble has no extra precision here")
    assert err.max() <= ULP_BOUND


# -------------------------------------------------------- float32 subsample

def test_exp_float32_every_97th():
    t = f32_range(-0.0, -104.0, 97)
    got = run(k_exp, t)
    err = ulp_err32(t, got, np.exp)
    assert err.max() <= ULP_BOUND, (t[np.argmax(err)], err.max())


def test_log1p_float32_every_97th():
    u = f32_range(0.0, 1.0, 97)
    got = run(k_log1p, u)
    err = ulp_err32(u, got, np.log1p)
    assert err.max() <= ULP_BOUND, (u[np.argmax(err)], err.max())


# ----------------------------------------------------------- float64 sample

@pytest.mark.skipif(not LONGDOUBLE_OK, reason="np.longdouble has no extra precision here")
def test_exp_float64_random():
    rng = np.random.default_rng(7)
    t = np.concatenate([-rng.uniform(0, 746, 100_000),
                        -np.exp(rng.uniform(np.log(1e-300), np.log(746), 100_000)),
                        -rng.uniform(0, 1, 20_000)])
    err = ulp_err64(t, run(k_exp, t), np.exp)
    assert err.max() <= ULP_BOUND, (t[np.argmax(err)], err.max())


@pytest.mark.skipif(not LONGDOUBLE_OK, reason="np.longdouble has no extra precision here")
def test_log1p_float64_random():
    rng = np.random.default_rng(8)
    u = np.concatenate([rng.uniform(0, 1, 100_000),
                        np.exp(rng.uniform(np.log(1e-320), 0, 100_000)),
                        rng.uniform(0.999, 1, 20_000)])
    err = ulp_err64(u, run(k_log1p, u), np.log1p)
    assert err.max() <= ULP_BOUND, (u[np.argmax(err)], err.max())


# ------------------------------------------- dtypes, callers, Python calls

@pytest.mark.parametrize("ty", [types.float32, types.float64])
def test_float32_stays_float32(ty):
    scalar_types.compile((ty,))
    assert scalar_types.overloads[(ty,)].signature.return_type == types.UniTuple(ty, 2)


def test_python_level_calls_and_int_arguments():
    assert exp_nonpos(0) == 1.0
    assert exp_nonpos(-1.0) == pytest.approx(math.exp(-1.0), rel=1e-15)
    assert log1p_unit(1) == pytest.approx(math.log(2.0), rel=1e-15)
    # float32 in: the float32 computation, returned as a Python float
    assert exp_nonpos(np.float32(-1.0)) == np.float32(math.exp(-1.0))


@pytest.mark.parametrize("dt", DTYPES)
def test_python_error_model_and_fma_contracting_callers(dt):
    u = np.linspace(0, 1, 10001).astype(dt)
    assert same(run(k_log1p_pyerr, u), run(k_log1p, u))
    t = -np.linspace(0, 100, 10001).astype(dt)
    oe, ol = np.empty_like(t), np.empty_like(t)
    k_both_contract(t, oe, ol)
    err_fn = ulp_err32 if dt is np.float32 else (ulp_err64 if LONGDOUBLE_OK else None)
    if err_fn is not None:
        assert err_fn(t, oe, np.exp).max() <= ULP_BOUND
        ul = -t * dt(0.01)
        assert err_fn(ul, ol, np.log1p).max() <= ULP_BOUND


# ------------------------------------------------------------ vectorisation

LIBM = re.compile(r"[$\s](exp|expf|log1p|log1pf|log|logf|fma|fmaf|__\w*(exp|log)\w*)\b")


def host_features():
    if config.CPU_NAME or config.CPU_FEATURES:
        return None  # overridden target: no expectation on the vector width
    import llvmlite.binding as ll

    feats = ll.get_host_cpu_features()
    return {k for k, v in feats.items() if v}


def packed(asm, width):
    return re.findall(rf"\b\w+p[sd]\s[^\n]*%{width}mm", asm)


def asm_of(kernel, dt):
    x = np.zeros(4, dt)
    kernel(x, np.empty_like(x))
    sig = next(s for s in kernel.signatures if str(s[0].dtype) == np.dtype(dt).name)
    return kernel.inspect_asm(sig)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("kernel", [k_exp, k_log1p, k_softplus, k_log1p_pyerr],
                         ids=lambda k: k.__name__)
def test_loops_vectorise_without_libm_calls(kernel, dt):
    asm = asm_of(kernel, dt)
    assert not LIBM.search(asm), LIBM.search(asm).group(0)
    feats = host_features()
    if feats is None or "avx" in feats:
        wide = packed(asm, "z") + packed(asm, "y")
        if feats is None:
            wide += packed(asm, "x")
        assert len(wide) >= 15, "loop not vectorised"
    else:  # SSE only
        assert len(packed(asm, "x")) >= 15
    if dt is np.float32:  # nothing promoted to float64
        assert "cvtss2sd" not in asm and "cvtps2pd" not in asm


def test_the_control_loop_calls_libm():
    @njit(error_model="numpy")
    def k(a, out):
        for i in range(a.size):
            out[i] = math.exp(a[i])

    assert LIBM.search(asm_of(k, np.float64))


def test_prefer_512bit_vectors():
    feats = host_features()
    asm = asm_of(k_exp_512, np.float64)
    if feats is not None and "avx512f" in feats:
        assert len(packed(asm, "z")) >= 15
    x = -np.linspace(0, 50, 1001)
    assert same(run(k_exp_512, x), run(k_exp, x))
