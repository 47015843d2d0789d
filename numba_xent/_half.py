"""Half precision: float16 and bfloat16 arrays, read and written in place as their bits.

Numba has no float16 on the CPU and no type for ``ml_dtypes.bfloat16`` (the NumPy
bfloat16 that JAX uses) at all, so the kernels take a half array as a ``uint16``
view of its bits and widen each element to float32 as they read it; results in
a half dtype are computed in float32 and rounded once as they are stored.  The
conversions are LLVM's: ``fpext``/``fptrunc`` of ``half``, which LLVM turns into
the F16C / AVX-512 conversion instructions (``vcvtph2ps``, ``vcvtps2ph``) in
vector loops, and shifts for bfloat16 (its bits are a float32's upper half):
all vectorise, none branches.  The same functions compile for the GPU.

Which arrays are halves is fixed when a kernel is compiled: the logits' dtype
(``Kernel.dtype``) and, for the other arrays, ``Kernel.halves``.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

FLOAT16 = "float16"
BFLOAT16 = "bfloat16"
KINDS = (FLOAT16, BFLOAT16)


def kind(dtype):
    """``"float16"`` or ``"bfloat16"`` for a half dtype, else None (by name: ml_dtypes'
    bfloat16 is recognised without importing it)."""
    return dtype.name if dtype.itemsize == 2 and dtype.name in KINDS else None


def compute_dtype(name):
    """The dtype elements of the named logits' dtype are computed in: float32 for halves."""
    return np.dtype(np.float32 if name in KINDS else name)


def bits(a):
    """A half array's ``uint16`` view (the same memory); any other array as it is."""
    dtype = a.dtype
    if dtype.itemsize == 2 and dtype.name in KINDS:
        return a.view(np.uint16)
    return a


@intrinsic
def _float16_to_float32(typingctx, u):
    if u != types.uint16:
        return None

    def codegen(context, builder, sig, args):
        return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.uint16), codegen


@intrinsic
def _float32_to_float16(typingctx, f):
    if f != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(builder.fptrunc(args[0], ir.HalfType()), ir.IntType(16))

    return types.uint16(types.float32), codegen


@intrinsic
def _bfloat16_to_float32(typingctx, u):
    if u != types.uint16:
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        wide = builder.shl(builder.zext(args[0], i32), ir.Constant(i32, 16))
        return builder.bitcast(wide, ir.FloatType())

    return types.float32(types.uint16), codegen


@intrinsic
def _float32_to_bfloat16(typingctx, f):
    if f != types.float32:
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        b = builder.bitcast(args[0], i32)
        high = builder.lshr(b, ir.Constant(i32, 16))
        odd = builder.and_(high, ir.Constant(i32, 1))
        rounded = builder.lshr(builder.add(builder.add(b, ir.Constant(i32, 0x7FFF)), odd),
                               ir.Constant(i32, 16))
        quiet = builder.or_(high, ir.Constant(i32, 0x40))
        nan = builder.fcmp_unordered("uno", args[0], args[0])
        return builder.trunc(builder.select(nan, quiet, rounded), ir.IntType(16))

    return types.uint16(types.float32), codegen


@njit(inline="always")
def from_float16(u):
    """The float32 value of float16 bits ``u`` (exact)."""
    return _float16_to_float32(u)


@njit(inline="always")
def to_float16(f):
    """The float16 bits of float32 ``f``, rounded to nearest even (IEEE's conversion)."""
    return _float32_to_float16(np.float32(f))


@njit(inline="always")
def from_bfloat16(u):
    """The float32 value of bfloat16 bits ``u`` (exact: they are its upper half)."""
    return _bfloat16_to_float32(u)


@njit(inline="always")
def to_bfloat16(f):
    """The bfloat16 bits of float32 ``f``, rounded to nearest even (32-bit integer
    arithmetic on its bits); a NaN stays a quiet NaN of its sign, where rounding its
    bits could make it an infinity."""
    return _float32_to_bfloat16(np.float32(f))


@njit(inline="always")
def _same(v):
    return v


def reader(name, ty):
    """``read(raw) -> ty``: an element of an array of the named dtype (a half kind, or
    None for any other) as the compute type ``ty``."""
    if name == FLOAT16:
        return from_float16
    if name == BFLOAT16:
        return from_bfloat16
    return njit(inline="always")(lambda raw: ty(raw))


def writer(name):
    """``write(value) -> stored``: a float32 or float64 value as an element of an
    array of the named dtype (a half kind, or None for any other: stored as it is).
    Rounded once from float32; a float64 value (a row's sum) goes through float32
    first, within 1 ulp of the half (off the correctly rounded half only where the
    float32 lands exactly on a midpoint between two halves)."""
    if name == FLOAT16:
        return to_float16
    if name == BFLOAT16:
        return to_bfloat16
    return _same
