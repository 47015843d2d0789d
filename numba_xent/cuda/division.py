"""float64 division for the kernels' epilogues, in multiplies and FMAs.

ptxas compiles an IEEE float64 division (``div.rn.f64``) to a fast path and a
slow subroutine whose registers count against the whole kernel: one division
per row took the float32 loss kernels from 64 to 72 registers (fewer blocks per
SM).  :func:`divide` gets the same quotient from FMAs alone: both operands are
split into a significand in [0.5, 1) and a power of two (``frexp``); Newton's
iteration refines a linear guess of the divisor's reciprocal to float64
precision; the quotient of the significands is corrected once with its exact
remainder (Markstein's step); ``ldexp`` puts the exponent back.  The quotient is
IEEE's wherever it is a normal number (tests/test_division.py compares millions of
random pairs bit for bit), within 1 ulp where it is subnormal (``ldexp`` rounds a
second time there), and IEEE's in the special cases: x / 0, 0 / 0, inf / inf, NaN
and signed zeros.

The functions are plain Numba (``njit``) code: the CUDA kernels inline them, and
the simulator and the tests run them on the CPU, with the same FMAs.
"""

import math

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# The reciprocal's guess on [0.5, 1]: the line of least relative error (1/17),
# so that four Newton steps (4.1, 8.2, 16.3, 32.7, 65 bits) pass float64 precision.
_GUESS_A = 48.0 / 17.0
_GUESS_B = -32.0 / 17.0
_STEPS = 4


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma``: an FMA instruction on a GPU and on
    the CPUs Numba targets)."""
    if not (a == b == c == types.float64):
        return None

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.DoubleType(), [ir.DoubleType()] * 3)
        return builder.call(cgutils.get_or_insert_function(builder.module, fnty,
                                                           "llvm.fma.f64"), args)

    return types.float64(types.float64, types.float64, types.float64), codegen


@njit(inline="always")
def _reciprocal(m):
    """``1 / m`` for ``m`` in [0.5, 1), within an ulp."""
    y = _GUESS_A + _GUESS_B * m
    for _ in range(_STEPS):
        y = fma(y, fma(-m, y, 1.0), y)
    return y


@njit(inline="always")
def divide(a, b):
    """``a / b`` for float64 ``a``, ``b`` (see the module docstring)."""
    a = float(a)
    b = float(b)
    finite = abs(a) < math.inf and abs(b) < math.inf
    if finite and a != 0.0 and b != 0.0:
        ma, ka = math.frexp(a)
        mb, kb = math.frexp(abs(b))
        y = _reciprocal(mb)
        q = ma * y
        q = fma(fma(-q, mb, ma), y, q)  # the exact remainder, once through the reciprocal
        return math.ldexp(-q if b < 0.0 else q, ka - kb)
    # 0, inf or NaN: what a times IEEE's 1 / b gives, where only b's sign matters else.
    if b == 0.0:
        s = math.copysign(math.inf, b)
    elif abs(b) == math.inf:
        s = math.copysign(0.0, b)
    elif b != b:
        s = b
    else:
        s = math.copysign(1.0, b)
    return a * s
