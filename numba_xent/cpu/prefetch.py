"""Software prefetch for the CPU kernels' streaming loops.

The kernels do ~40 vector operations per element, so the hardware prefetchers
(at least on the dev machine, a 2-core AVX-512 VM) let the loads fall behind:
at 16384 x 4096 float32 the forward kernel took as long as its math plus its
memory traffic (80 ms), not the longer of the two.  Asking for the cache lines
1 KiB ahead of the element loop overlaps them (33 ms on the same input; the
distance was measured: 256 B - 2 KiB are within 5 %, 16 KiB loses half the gain).

``prefetch(a, i, j)`` is a hint: it never faults, so addresses past the end of
an array are harmless, and it costs one load-port slot per cache line.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# How far ahead of the element being computed its row is fetched, in bytes.
DISTANCE = 1024
LINE = 64


@intrinsic
def prefetch(typingctx, a, i, j):
    """Hint the CPU to bring the cache line of ``a[i, j]`` into L1 (no bounds check)."""
    if not (isinstance(a, types.Array) and a.ndim == 2
            and isinstance(i, types.Integer) and isinstance(j, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        aty, ity, jty = sig.args
        arr = context.make_array(aty)(context, builder, args[0])
        inds = [context.cast(builder, v, t, types.intp)
                for v, t in zip(args[1:], (ity, jty))]
        ptr = cgutils.get_item_pointer2(context, builder, data=arr.data,
                                        shape=cgutils.unpack_tuple(builder, arr.shape),
                                        strides=cgutils.unpack_tuple(builder, arr.strides),
                                        layout=aty.layout, inds=inds)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        # read, keep in all cache levels, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0),
                          ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(a, i, j), codegen


@njit(inline="always")
def prefetch_ahead(a, i, j, m):
    """Prefetch row ``i`` of ``a`` from ``DISTANCE`` bytes past element ``j``, ``m`` elements' worth."""
    for k in range(0, m, LINE // a.itemsize):
        prefetch(a, i, j + k + DISTANCE // a.itemsize)
