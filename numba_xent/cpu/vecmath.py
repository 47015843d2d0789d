"""Branch-free, vectorisable ``exp`` and ``log1p`` for the kernels (CPU and CUDA).

pip's Numba ships without Intel SVML, so ``math.exp`` / ``math.log1p`` in a loop
compile to scalar libm calls and the loop does not vectorise.  The two helpers
here are plain arithmetic (range reduction + polynomial + integer exponent
tricks, with selects instead of branches), so LLVM vectorises a loop over them
(AVX-512 ``zmm`` / AVX2 ``ymm`` packed instructions) when they are inlined.

API (call from ``@njit`` code; a Python call also works, through a small
jitted wrapper, for scalars)::

    from numba_xent.cpu.vecmath import exp_nonpos, log1p_unit

    @njit(error_model="numpy")
    def kernel(x, out):
        for i in range(x.size):
            e = exp_nonpos(-abs(x[i]))     # exp(t),   t <= 0
            out[i] = log1p_unit(e)         # log1p(u), 0 <= u <= 1

* ``exp_nonpos(t)``: ``exp(t)`` for ``t <= 0`` (or NaN).  ``exp(-0.0) == 1``,
  ``exp(-inf) == 0``, NaN -> NaN.  Subnormal results are not flushed: the scale
  ``2**k`` is applied as two multiplications, by ``2**(k + 32)`` (``2**(k + 64)``
  for float64) and by a constant ``2**-32``, only the second of which rounds (into
  the subnormal grid), so they stay within 1 ulp (2**-149 / 2**-1074).  Positive
  ``t`` is outside the contract (wrong from ``t > 66``, float32).
* ``log1p_unit(u)``: ``log1p(u)`` for ``0 <= u <= 1`` (or NaN).  ``-0.0`` ->
  ``-0.0``, subnormal ``u`` -> ``u``.  Values outside ``[0, 1]`` are outside the
  contract (the polynomial holds only to about ``-1e-3`` and ``1.01``; beyond,
  wrong values, e.g. 1.144 for ``u = 2``, but never an exception).
* ``prefer_512bit_vectors()``: optional, a no-op at run time.  Called anywhere in a
  jitted function it marks *that* LLVM function ``"prefer-vector-width"="512"``,
  so on AVX-512 CPUs whose LLVM tuning prefers 256-bit vectors (Skylake-X ...
  Rocket Lake, Sapphire Rapids) its loops are vectorised with ``zmm`` (about
  1.3-1.4x the ``ymm`` throughput for these helpers on the dev machine).  Harmless
  without AVX-512.  With ``parallel=True`` call it inside the ``prange`` body (the
  body becomes a separate function).

``for_dtype(dtype)`` returns the same two as plain jitted functions for one float
dtype (``log_for_dtype`` the log): the kernels of both backends call those (an
overload compiles for the CPU target only), so a CUDA kernel computes every
element exactly as the CPU does.

Both are generic in the float type: a ``float32`` argument is computed entirely in
``float32`` arithmetic (shorter polynomials) and returns ``float32``; a
``float64`` argument computes in ``float64``.  Integer / bool arguments are
converted to ``float64``.  Both are ``@overload(..., inline='always')`` of the
Python stubs below, so they are inlined into the caller's Numba IR and take the
caller's compile flags.  (In the caller, beware that a Python float literal such as
``1.0 + e`` promotes a float32 ``e`` to float64.)

Accuracy (``bench/vecmath_accuracy.py``: every float32 of each domain, and
float64 samples against an 80-bit long double reference, worst cases re-checked
with mpmath): below 1 ulp of the correctly rounded result everywhere, in both
precisions: exp 0.97 ulp (float32) / 0.94 (float64), log1p 0.80 / 0.80.

Method
------
``exp``: for ``a = -t >= 0``, ``k = round(a / ln2)`` by the 1.5*2**p "magic shift"
``y = a/ln2 + shift`` (the integer ``k`` is read back from the bits of ``y``, so no
NaN is ever converted to an integer); Cody-Waite ``u = (a - k*ln2_hi) - k*ln2_lo``
with an ``ln2_hi`` whose product with ``k`` is exact, ``|u| <= ln2/2``;
``exp(-u) = 1 - u + u^2 P(-u)`` with a minimax ``P`` (degree 4 for float32, 9 for
float64) in one Horner chain of FMAs, its coefficients carrying the signs and a
factor ``2**-OFFSET`` (exact), so that one product with ``2**(OFFSET - k)`` (one
integer subtraction and shift of the bits of ``y``) finishes it.  Inputs below
``-104`` (float32) / ``-746`` (float64) are clamped there, where the result rounds
to exactly 0; ``-inf`` therefore gives 0.  (The first version kept the rounding
error of ``r`` and of ``1 + r`` as tails, for 0.82 ulp instead of 0.97, at twice the
operations: 28 per vector against 14 now.)

``log1p``: the domain [0, 1] is short enough for one polynomial, with no range
reduction and no division: ``log1p(u) = u + u^2 Q(u)``, ``Q`` a minimax
polynomial in ``v = u - 1`` (exact for ``u >= 1/2``; its coefficients are small
and do not alternate like the series in ``u``, whose cancellation near 1 would
cost ~0.7 ulp), degree 8 for float32 (Horner) and 19 for float64 (Estrin).
``Q(1) = log(2) - 1`` is held as ``Q0 + Q0_LO``; the sum is formed as
``w = Q(u) - Q0`` (constant term ``Q0_LO``), ``a = fma(u, Q0, u*w)`` (``u*Q0``
exact inside the FMA) and ``fma(u, a, u)``, so besides the last rounding only
that of ``a`` matters (<= 1/4 ulp of the result).  The special cases fall out
of the arithmetic: ``+-0 -> +-0``, subnormal ``u -> u``, NaN -> NaN.  (The
previous fdlibm-style version, with a range reduction and a division, ran at
half the speed.)

Multiply-adds are ``llvm.fmuladd``: fused (FMA) where the CPU has it, a separate
multiply and add otherwise (never a libm ``fma`` call).  The bounds above are
measured with FMA (every x86-64 CPU with AVX2 or AVX-512 has it); without it the
``log1p`` product ``u*Q0`` rounds separately and its bound is not measured.

Caveats
-------
* NaN in -> NaN out, but the NaN payload/sign is whatever the arithmetic
  propagates (not necessarily the input's payload).
* Do not compile callers with ``fastmath=True``: 'reassoc' lets LLVM fold the
  compensated ``log1p`` sum and the magic-shift rounding ``(x + shift) - shift``,
  and 'nnan'/'ninf' drop the NaN/inf guarantees (measured with ``fastmath=True``
  on the dev machine: float64 log1p 2.5 ulp).  ``fastmath={'contract'}`` is fine
  (same bounds).
* Relies on round-to-nearest and no flush-to-zero / DAZ (Numba's default).  Under
  FTZ the subnormal results of ``exp_nonpos`` flush to 0 (absolute error below
  2**-126 for float32, 2**-1022 for float64).
* Producing a subnormal result (``t < -87.3`` in float32, ``t < -708.4`` in
  float64) costs a microcode assist on Intel CPUs (~100 cycles per vector).
"""

import functools

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .._jit import CPU_OPTIONS

__all__ = ["exp_nonpos", "for_dtype", "log1p_unit", "log_for_dtype", "log_unit",
           "prefer_512bit_vectors"]


# --------------------------------------------------------------------------
# LLVM-level helpers (all lower to plain, vectorisable IR; no branches, no calls)
# --------------------------------------------------------------------------

# (integer type width, mantissa bits, exponent bias, bits of the 1.5*2**p shift)
_FMT = {
    32: (32, 23, 127, int(np.float32(1.5 * 2.0**23).view(np.int32))),
    64: (64, 52, 1023, int(np.float64(1.5 * 2.0**52).view(np.int64))),
}


def _float_type(t):
    return isinstance(t, types.Float) and t.bitwidth in _FMT


@intrinsic
def _madd(typingctx, a, b, c):
    """``a * b + c`` as ``llvm.fmuladd``: one FMA where the target has a fast one,
    else a multiply and an add (never a libm ``fma`` call).  All the error bounds
    here hold either way."""
    if not (_float_type(a) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        fty = args[0].type
        fnty = ir.FunctionType(fty, [fty, fty, fty])
        name = "llvm.fmuladd.f32" if sig.args[0].bitwidth == 32 else "llvm.fmuladd.f64"
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def prefer_512bit_vectors(typingctx):
    """Mark the calling LLVM function ``"prefer-vector-width"="512"`` (see module doc)."""

    def codegen(context, builder, sig, args):
        attrs = builder.function.attributes
        # llvmlite only knows keyword attributes; a string attribute is rendered
        # verbatim, so add it to the underlying set directly.
        set.add(attrs, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def _pow2_offset_minus(typingctx, y):
    """``2**(OFFSET - k)`` for the ``k`` held in the low bits of ``y = a + 1.5*2**p``.

    The shift constant's low ``exp_bits + 1`` bits are zero, so shifting
    ``bias + OFFSET - bits(y)`` left by the mantissa width keeps exactly
    ``bias + OFFSET - k`` as the exponent field (one integer subtraction, one
    shift).  Valid while that is a normal exponent: for ``k`` from
    ``OFFSET - bias + 1`` to ``OFFSET + bias - 1``.
    """
    if not _float_type(y):
        return None

    def codegen(context, builder, sig, args):
        width, mbits, bias, _ = _FMT[sig.args[0].bitwidth]
        ity = ir.IntType(width)
        yi = builder.bitcast(args[0], ity)
        e = builder.shl(builder.sub(ir.Constant(ity, bias + _OFFSET[width]), yi),
                        ir.Constant(ity, mbits))
        return builder.bitcast(e, args[0].type)

    return y(y), codegen


@intrinsic
def _split_unit(typingctx, u):
    """``(f, k)`` with ``u = f * 2**k``, ``f`` in [sqrt(1/2), sqrt(2)), ``k`` as a float, for a
    positive normal ``u``: adding ``bits(1) - bits(sqrt(1/2))`` carries the mantissas from
    sqrt(1/2) up into the next exponent, so the exponent field is ``k`` (one add, one
    shift, one mask, one add back)."""
    if not _float_type(u):
        return None

    def codegen(context, builder, sig, args):
        width, mbits, bias, _ = _FMT[sig.args[0].bitwidth]
        ity = ir.IntType(width)
        low = _SQRT_HALF_BITS[width]
        ui = builder.add(builder.bitcast(args[0], ity), ir.Constant(ity, (bias << mbits) - low))
        k = builder.sub(builder.ashr(ui, ir.Constant(ity, mbits)), ir.Constant(ity, bias))
        f = builder.add(builder.and_(ui, ir.Constant(ity, (1 << mbits) - 1)),
                        ir.Constant(ity, low))
        fty = args[0].type
        return context.make_tuple(builder, sig.return_type,
                                  [builder.bitcast(f, fty), builder.sitofp(k, fty)])

    return types.UniTuple(u, 2)(u), codegen


_SQRT_HALF_BITS = {32: int(np.float32(np.sqrt(0.5)).view(np.int32)),
                   64: int(np.float64(np.sqrt(0.5)).view(np.int64))}


# exp(-a) = 2**-k exp(-u) is computed as (2**-OFFSET exp(-u)) * 2**(OFFSET - k): the
# polynomial's coefficients carry the factor 2**-OFFSET (exactly: a power of 2, and its
# values stay normal), and 2**(OFFSET - k) is a normal number for every k the clamped
# inputs give, so only the one product rounds: subnormal results are rounded once,
# correctly.
_OFFSET = {32: 32, 64: 64}


# --------------------------------------------------------------------------
# Constants.  Minimax coefficients from a Remez fit in mpmath (60 digits),
# rounded to the target precision:
#   exp:   P(r) ~ (e^r - 1 - r) / r^2 on |r| <= ln2/2 (* (1 + 1e-4))
#          float32 degree 4: |error| 6.2e-8  -> |r^2 dP| < 2**-27
#          float64 degree 9: |error| 1.0e-16 -> |r^2 dP| < 2**-56
#   log1p: Q(u) ~ (log1p(u) - u) / u^2 on [0, 1] as a polynomial in v = u - 1,
#          minimax for the relative error of u + u^2 Q(u), Q(1) = log(2) - 1 pinned
#          (held as Q0 + Q0_LO), coefficients rounded one at a time with the
#          remaining ones refitted:
#          float32 degree 8:  relative error 5.5e-9  = 2**-27.4
#          float64 degree 19: relative error 9.9e-18 = 2**-56.5
# --------------------------------------------------------------------------

f32 = np.float32
f64 = np.float64

# exp, float32
_E32_HI = f32(104.0)                   # exp(-104) < 2**-150: rounds to 0
_E32_INV_LN2 = f32(1.4426950408889634)
_E32_SHIFT = f32(1.5 * 2.0**23)
_E32_LN2_HI = f32(0.693145751953125)   # 0x3f317200: k * ln2_hi exact for |k| < 512
_E32_LN2_LO = f32(1.428606765330187e-06)
_E32_P0 = f32(0.5)
_E32_P1 = f32(0.16666576266288757)
_E32_P2 = f32(0.04166637361049652)
_E32_P3 = f32(0.008363180793821812)
_E32_P4 = f32(0.0013941123615950346)
# exp(-u) = sum_i (-1)**i c_i u**i for c = (1, 1, P0 .. P4), times 2**-OFFSET
_E32_C = tuple(f32((-1) ** i * c * 2.0**-32) for i, c in enumerate(
    (1.0, 1.0, _E32_P0, _E32_P1, _E32_P2, _E32_P3, _E32_P4)))

# exp, float64
_E64_HI = f64(746.0)                   # exp(-746) < 2**-1075: rounds to 0
_E64_INV_LN2 = f64(1.4426950408889634)
_E64_SHIFT = f64(1.5 * 2.0**52)
_E64_LN2_HI = f64(6.93147180369123816490e-01)  # 0x3fe62e42fee00000: 21 trailing zeros
_E64_LN2_LO = f64(1.90821492927058770002e-10)
_E64_P0 = f64(0.5000000000000001)
_E64_P1 = f64(0.16666666666666674)
_E64_P2 = f64(0.04166666666662412)
_E64_P3 = f64(0.008333333333322207)
_E64_P4 = f64(0.0013888888917215386)
_E64_P5 = f64(0.00019841269886593598)
_E64_P6 = f64(2.480152129374048e-05)
_E64_P7 = f64(2.755724233407738e-06)
_E64_P8 = f64(2.7620089364974056e-07)
_E64_P9 = f64(2.511005077989078e-08)
_E64_C = tuple(f64((-1) ** i * c * 2.0**-64) for i, c in enumerate(
    (1.0, 1.0, _E64_P0, _E64_P1, _E64_P2, _E64_P3, _E64_P4, _E64_P5, _E64_P6, _E64_P7,
     _E64_P8, _E64_P9)))

# log1p, float32
_L32_ONE = f32(1.0)
_L32_Q0 = f32(-0.3068528175354004)
_L32_Q1 = f32(0.11370518058538437)
_L32_Q2 = f32(-0.04557574912905693)
_L32_Q3 = f32(0.018860744312405586)
_L32_Q4 = f32(-0.009507597424089909)
_L32_Q5 = f32(-0.0004597913066390902)
_L32_Q6 = f32(-0.008828063495457172)
_L32_Q7 = f32(-0.006133922375738621)
_L32_Q8 = f32(-0.003262860467657447)
_L32_Q0_LO = f32(-1.9046542121259336e-09)  # Q0 + Q0_LO = log(2) - 1

# log1p, float64
_L64_ONE = f64(1.0)
_L64_Q0 = f64(-0.3068528194400547)
_L64_Q1 = f64(0.11370563888011309)
_L64_Q2 = f64(-0.04555845831951563)
_L64_Q3 = f64(0.019077944466584847)
_L64_Q4 = f64(-0.008222429299251452)
_L64_Q5 = f64(0.0036169396125684673)
_L64_Q6 = f64(-0.001615288570408843)
_L64_Q7 = f64(0.0007326856822386773)
_L64_Q8 = f64(-0.00031853441576962016)
_L64_Q9 = f64(0.0002211561713563876)
_L64_Q10 = f64(0.00016522533318586393)
_L64_Q11 = f64(0.0006633261253581737)
_L64_Q12 = f64(0.0012793891735172153)
_L64_Q13 = f64(0.0020532930424859517)
_L64_Q14 = f64(0.0024633397099817758)
_L64_Q15 = f64(0.002232845711663027)
_L64_Q16 = f64(0.0014681320536896207)
_L64_Q17 = f64(0.0006671708207931959)
_L64_Q18 = f64(0.00018756420832252563)
_L64_Q19 = f64(2.51199205294349e-05)
_L64_Q0_LO = f64(2.3190468138462996e-17)  # Q0 + Q0_LO = log(2) - 1

# log of (0, 1]: log1p(m) = 2 atanh(s), s = m / (2 + m), |s| <= 3 - 2 sqrt(2), whose series
# 2 s + s w T(w), w = s**2, T(w) = sum_j 2 w**j / (2j + 3), is cut where its tail is below
# 2**-29 (float32: 5 terms, tail w**5 / 13 < 1.7e-9) and 2**-60 (float64: 11 terms).
_G32_T = tuple(f32(2.0 / (2 * j + 3)) for j in range(5))
_G64_T = tuple(f64(2.0 / (2 * j + 3)) for j in range(11))
_G32_TINY, _G32_SCALE, _G32_SCALE_K = f32(2.0**-126), f32(2.0**24), f32(24.0)
_G64_TINY, _G64_SCALE, _G64_SCALE_K = f64(2.0**-1022), f64(2.0**54), f64(54.0)


# --------------------------------------------------------------------------
# Implementations (compiled by Numba through the overloads below)
# --------------------------------------------------------------------------

def _exp32(t):
    a = -t  # exp(-a) for a >= 0: the signs fold into the constants
    # A select, not min(): NaN must pass through (the compare is False for NaN);
    # LLVM still emits it as one vminps, whose operand order keeps the NaN.
    a = _E32_HI if a > _E32_HI else a  # noqa: FURB136
    y = _madd(a, _E32_INV_LN2, _E32_SHIFT)     # k = round(a / ln2) in the low bits
    kf = y - _E32_SHIFT                        # k as a float (exact)
    u = _madd(-kf, _E32_LN2_HI, a)             # exact
    u = _madd(-kf, _E32_LN2_LO, u)
    # 2**-32 exp(-u) = 2**-32 (1 - u + u^2 P(-u)), in one Horner chain
    c = _E32_C
    q = _madd(c[6], u, c[5])
    q = _madd(q, u, c[4])
    q = _madd(q, u, c[3])
    q = _madd(q, u, c[2])
    q = _madd(q, u, c[1])
    p = _madd(q, u, c[0])
    return p * _pow2_offset_minus(y)


def _exp64(t):
    a = -t
    a = _E64_HI if a > _E64_HI else a  # noqa: FURB136
    y = _madd(a, _E64_INV_LN2, _E64_SHIFT)
    kf = y - _E64_SHIFT
    u = _madd(-kf, _E64_LN2_HI, a)
    u = _madd(-kf, _E64_LN2_LO, u)
    c = _E64_C
    q = _madd(c[11], u, c[10])
    q = _madd(q, u, c[9])
    q = _madd(q, u, c[8])
    q = _madd(q, u, c[7])
    q = _madd(q, u, c[6])
    q = _madd(q, u, c[5])
    q = _madd(q, u, c[4])
    q = _madd(q, u, c[3])
    q = _madd(q, u, c[2])
    q = _madd(q, u, c[1])
    p = _madd(q, u, c[0])
    return p * _pow2_offset_minus(y)


def _log1p32(u):
    v = u - _L32_ONE  # exact for u >= 1/2
    q = _madd(_L32_Q8, v, _L32_Q7)
    q = _madd(q, v, _L32_Q6)
    q = _madd(q, v, _L32_Q5)
    q = _madd(q, v, _L32_Q4)
    q = _madd(q, v, _L32_Q3)
    q = _madd(q, v, _L32_Q2)
    q = _madd(q, v, _L32_Q1)
    q = _madd(q, v, _L32_Q0_LO)  # = Q(u) - Q0
    a = _madd(u, _L32_Q0, u * q)  # u Q(u): u Q0 exact in the FMA, one rounding
    return _madd(u, a, u)  # u + u^2 Q(u)


def _log1p64(u):
    v = u - _L64_ONE  # exact for u >= 1/2
    v2 = v * v
    q = _madd(_L64_Q19, v, _L64_Q18)
    q = _madd(q, v2, _madd(_L64_Q17, v, _L64_Q16))
    q = _madd(q, v2, _madd(_L64_Q15, v, _L64_Q14))
    q = _madd(q, v2, _madd(_L64_Q13, v, _L64_Q12))
    q = _madd(q, v2, _madd(_L64_Q11, v, _L64_Q10))
    q = _madd(q, v2, _madd(_L64_Q9, v, _L64_Q8))
    q = _madd(q, v2, _madd(_L64_Q7, v, _L64_Q6))
    q = _madd(q, v2, _madd(_L64_Q5, v, _L64_Q4))
    q = _madd(q, v2, _madd(_L64_Q3, v, _L64_Q2))
    q = _madd(q, v2, _madd(_L64_Q1, v, _L64_Q0_LO))  # = Q(u) - Q0
    a = _madd(u, _L64_Q0, u * q)  # u Q(u): u Q0 exact in the FMA, one rounding
    return _madd(u, a, u)  # u + u^2 Q(u)


def _log_unit_of(ty, t, tiny, scale, scale_k, ln2_hi, ln2_lo, divide):
    """The ``log_unit`` arithmetic for one float type (see the module docstring), with its
    one division ``divide(a, b)`` (``a / b``, or the approximate one of a CUDA kernel)."""
    one, two, ninf, nan = ty(1.0), ty(2.0), ty(-np.inf), ty(np.nan)
    last = len(t) - 1

    def log_unit_impl(u):
        small = u < tiny  # subnormal: scaled into the normal range first, exactly
        f, kf = _split_unit(u * scale if small else u)
        kf = kf - scale_k if small else kf
        m = f - one  # exact: f in [sqrt(1/2), sqrt(2))
        s = divide(m, two + m)  # two + m in [1.7, 2.5)
        w = s * s
        r = t[last]
        for j in range(last - 1, -1, -1):  # a constant trip count: LLVM unrolls it
            r = _madd(r, w, t[j])
        lp = _madd(-s, _madd(-r, w, m), m)  # log1p(m) = m - s (m - w T(w))
        y = _madd(kf, ln2_hi, _madd(kf, ln2_lo, lp))  # k ln2_hi exact
        return y if u > 0 else (ninf if u == 0 else nan)  # NaN and u < 0 give NaN

    return log_unit_impl


true_divide = njit(inline="always")(lambda a, b: a / b)
_LOG_CONSTANTS = {
    "float32": (f32, _G32_T, _G32_TINY, _G32_SCALE, _G32_SCALE_K, _E32_LN2_HI, _E32_LN2_LO),
    "float64": (f64, _G64_T, _G64_TINY, _G64_SCALE, _G64_SCALE_K, _E64_LN2_HI, _E64_LN2_LO),
}
_log32 = _log_unit_of(*_LOG_CONSTANTS["float32"], true_divide)
_log64 = _log_unit_of(*_LOG_CONSTANTS["float64"], true_divide)


def _exp_int(t):
    return exp_nonpos(np.float64(t))


def _log1p_int(u):
    return log1p_unit(np.float64(u))


def _log_int(u):
    return log_unit(np.float64(u))


# --------------------------------------------------------------------------
# Public stubs + overloads
# --------------------------------------------------------------------------

def exp_nonpos(t):
    """``exp(t)`` for ``t <= 0`` (or NaN); float32 in -> float32 out.

    Meant for ``@njit`` code, where it is inlined (see the module docstring).
    Called from Python it runs a jitted scalar wrapper (returns a Python float).
    """
    return _exp_nonpos_py(t)


def log1p_unit(u):
    """``log1p(u)`` for ``0 <= u <= 1`` (or NaN); float32 in -> float32 out.

    Meant for ``@njit`` code, where it is inlined (see the module docstring).
    Called from Python it runs a jitted scalar wrapper (returns a Python float).
    """
    return _log1p_unit_py(u)


def log_unit(u):
    """``log(u)`` for ``0 <= u <= 1`` (or NaN); float32 in -> float32 out.

    Meant for ``@njit`` code, where it is inlined (see the module docstring).
    Called from Python it runs a jitted scalar wrapper (returns a Python float).
    """
    return _log_unit_py(u)


def _select(ty, impl32, impl64, impl_int):
    if isinstance(ty, types.Float):
        if ty.bitwidth == 32:
            return impl32
        if ty.bitwidth == 64:
            return impl64
        return None
    if isinstance(ty, (types.Integer, types.Boolean)):
        return impl_int
    return None


@overload(exp_nonpos, inline="always", target="cpu")
def _ol_exp_nonpos(t):
    return _select(t, _exp32, _exp64, _exp_int)


@overload(log1p_unit, inline="always", target="cpu")
def _ol_log1p_unit(u):
    return _select(u, _log1p32, _log1p64, _log1p_int)


@overload(log_unit, inline="always", target="cpu")
def _ol_log_unit(u):
    return _select(u, _log32, _log64, _log_int)


_PRIMITIVES = {"float32": (_exp32, _log1p32), "float64": (_exp64, _log1p64)}


def for_dtype(dtype, inline=False):
    """``(exp_nonpos, log1p_unit)`` for a float32 or float64 ``dtype``: the arithmetic of
    the overloads as plain jitted functions (see :func:`_primitive`), callable from CUDA
    kernels too (the overloads are for the CPU target only), so that both backends
    compute every element alike."""
    return _for_dtype(np.dtype(dtype).name, inline)


def log_for_dtype(dtype, divide=true_divide, inline=False):
    """``log_unit`` for a float32 or float64 ``dtype`` as :func:`for_dtype` gives the
    others, its division done by ``divide`` (a CUDA kernel's float32 one avoids ptxas's
    division subroutine)."""
    return _log_for_dtype(np.dtype(dtype).name, divide, inline)


@functools.cache
def _for_dtype(name, inline):
    return tuple(_primitive(fn, inline) for fn in _PRIMITIVES[name])


@functools.cache
def _log_for_dtype(name, divide, inline):
    return _primitive(_log_unit_of(*_LOG_CONSTANTS[name], divide), inline)


def _primitive(fn, inline):
    """``fn`` jitted for the kernels.

    ``inline``: inlined into the caller's Numba IR, as a CUDA kernel needs (a device
    function that Numba does not inline is compiled for the current GPU, which a
    compile without one does not have).  Else a function of its own, compiled once per
    process with the CPU kernels' options: LLVM inlines it into their loops, which
    vectorise as with Numba's inlining (tests/test_cpu_kernels.py reads the assembly),
    and each kernel compiles in 17% less time (measured on 10 kernels: Numba copies an
    inlined function's IR into every caller).
    """
    return njit(inline="always")(fn) if inline else njit(**CPU_OPTIONS)(fn)


@njit
def _exp_nonpos_py(t):
    return exp_nonpos(t)


@njit
def _log1p_unit_py(u):
    return log1p_unit(u)


@njit
def _log_unit_py(u):
    return log_unit(u)
