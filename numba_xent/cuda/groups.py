"""Thread groups: how a row reduction is laid out on the GPU, and the group sum.

Every row-reducing kernel of this package walks a ``(rows, n)`` view the same
way.  A row is cut into ``nchunks`` chunks of ``chunk`` elements (one chunk,
unless the rows are too few to fill the GPU): chunk ``c`` is the grid's row
``blockIdx.y = c``.  Each (row, chunk) pair is reduced by a *group* of
``group`` consecutive threads of one block (a power of two: one thread for
rows of up to ``UNROLL`` elements, part of a warp for short rows, a whole
block for long ones).  A block of ``threads`` threads holds
``threads // group`` groups, which take consecutive rows (so short contiguous
rows are read as one contiguous span), and the grid's x axis strides over the
rows.  Within its row, the thread of lane ``l`` reads elements
``l, l + group, l + 2 group, ...`` of the chunk, ``UNROLL`` of them at a time
(all loads first, so that many are in flight): the lanes of a warp read
consecutive elements.  No index needs a division.

The group then sums its threads' float64 partial sums with a fixed tree:
pairs ``(l, l + s)`` for ``s = 16, 8, ... 1`` within each warp, then the
warps' totals likewise.  :func:`sum_shuffle` does it with warp shuffles and
:func:`sum_shared` in shared memory (the simulator has no shuffles); both add
the same pairs in the same order, so a result depends on the shape only.
Rows cut into several chunks leave one partial sum per item; the grid's last
block to finish adds them up (:func:`last_to_arrive`), with the same group
sums over the chunks, so every reduction is one launch.  Sums over the whole
array are formed the same way from one partial sum per block.
"""

import functools
from typing import NamedTuple

from numba import cuda, float64, njit

from .arrays import SIMULATOR

# Device functions are njit functions inlined into their kernels by Numba itself:
# numba-cuda compiles such kernels also without a GPU (compile_ptx), where a
# ``cuda.jit(device=True)`` callee would ask the current device for its
# architecture.  The simulator runs kernels as Python, where only its own
# device functions know ``cuda.*``.
device_function = cuda.jit(device=True) if SIMULATOR else njit(inline="always")


def jit(fn):
    """``cuda.jit``, not cached on disk: kernels are closures, whose cache entries no
    other process finds (see numba_xent._jit.cpu_jit)."""
    return cuda.jit(fn)


WARP = 32
FULL_MASK = 0xFFFFFFFF
UNROLL = 4  # elements per thread loaded before any is used
THREADS = 256  # threads per block on a GPU (and the size of the shared scratch)
SIM_THREADS = 32  # under the simulator, where every thread is a Python thread
WAVES = 8  # rows are cut into chunks until this many waves of groups are busy
MIN_STEPS = 4  # ... but a chunk gives every thread at least this many UNROLL steps
MAX_WAVES = 32  # more items than that: the grid strides over them


class Layout(NamedTuple):
    """The launch layout of a ``(rows, n)`` reduction (see the module docstring)."""

    group: int  # threads per row (and chunk), a power of two
    shift: int  # log2(group)
    chunk: int  # elements per chunk
    nchunks: int  # chunks per row: the grid's y extent
    blocks: int  # the grid's x extent
    threads: int  # threads per block

    @property
    def grid(self):
        return self.blocks, self.nchunks

    @property
    def finish_group(self):
        """Threads of the last block that add up one row's chunk partials."""
        return min(self.threads, _pow2_at_least(self.nchunks))

    @property
    def args(self):
        """What the kernels take: ``group, shift, chunk, finish_group, finish_shift``."""
        f = self.finish_group
        return self.group, self.shift, self.chunk, f, f.bit_length() - 1


def plan(rows, n, threads, resident, min_threads=WARP, unroll=UNROLL):
    """The :class:`Layout` of a ``(rows, n)`` reduction, ``n >= 1``.

    ``resident`` is how many blocks of ``threads`` the whole GPU runs at once.
    Blocks are smaller for tiny arrays, down to ``min_threads`` (a warp where
    warp shuffles need whole warps).  ``unroll``: the elements a thread loads
    per step (the kernel's, see ``numba_xent.cuda.kernels.unroll``).
    """
    group = min(threads, _pow2_at_least(_ceil_div(n, unroll)))
    per_block = threads // group
    step = group * unroll
    wanted = resident * WAVES * per_block  # groups that keep the GPU busy
    nchunks = 1
    if rows < wanted and n > step * MIN_STEPS:
        nchunks = min(_ceil_div(wanted, rows), _ceil_div(n, step * MIN_STEPS))
    chunk = _ceil_div(_ceil_div(n, nchunks), step) * step  # a multiple of step: aligned starts
    nchunks = _ceil_div(n, chunk)
    threads = min(threads, max(min_threads, _pow2_at_least(group * rows)))
    per_block = threads // group
    blocks = max(1, min(_ceil_div(rows, per_block), resident * MAX_WAVES // nchunks))
    return Layout(group, group.bit_length() - 1, chunk, nchunks, blocks, threads)


def _ceil_div(a, b):
    return -(-a // b)


def _pow2_at_least(k):
    p = 1
    while p < k:
        p *= 2
    return p


def scratch_size(shuffle):
    """Shared float64 slots a block needs for :func:`sum_shuffle` / :func:`sum_shared`."""
    return THREADS // WARP if shuffle else THREADS


# The index arithmetic of the layout, shared by the kernels and the tests that
# check what a warp reads (njit functions run both on the host and in kernels).
# Shifts and masks, no division: 64-bit divisions cost registers and time.

@njit(inline="always")
def row_of(first, tid, group, shift):
    """The row and lane of thread ``tid`` in a block whose first row is ``first``."""
    return first + (tid >> shift), tid & (group - 1)


@njit(inline="always")
def element_of(start, lane, step, u, group, unroll):
    """The element read by ``lane`` at its ``step``, slot ``u`` of ``unroll``, of a chunk at ``start``."""
    return start + lane + (step * unroll + u) * group


@device_function
def sum_shuffle(v, sh, lane, group):
    """Sum of ``v`` over each group of ``group`` threads, valid in the group's lane 0."""
    tid = cuda.threadIdx.x
    s = min(group, WARP) >> 1
    while s > 0:
        v += cuda.shfl_down_sync(FULL_MASK, v, s)
        s >>= 1
    if group > WARP:
        if tid & (WARP - 1) == 0:
            sh[tid >> 5] = v
        cuda.syncthreads()
        warps = group >> 5
        if lane < WARP:  # the group's first warp, whole
            v = sh[((tid - lane) >> 5) + lane] if lane < warps else float64(0.0)
            s = warps >> 1
            while s > 0:
                v += cuda.shfl_down_sync(FULL_MASK, v, s)
                s >>= 1
        cuda.syncthreads()
    return v


@device_function
def sum_shared(v, sh, lane, group):
    """:func:`sum_shuffle` through shared memory: the same pairs, in the same order."""
    tid = cuda.threadIdx.x
    sh[tid] = v
    cuda.syncthreads()
    width = min(group, WARP)
    s = width >> 1
    while s > 0:
        if tid & (width - 1) < s:
            sh[tid] += sh[tid + s]
        cuda.syncthreads()
        s >>= 1
    if group > WARP:
        s = group >> 6
        while s > 0:
            if lane < s * WARP and tid & (WARP - 1) == 0:
                sh[tid] += sh[tid + s * WARP]
            cuda.syncthreads()
            s >>= 1
    v = sh[tid]
    cuda.syncthreads()
    return v


@device_function
def last_to_arrive(ticket, sh):
    """Whether this block is the grid's last to finish (the same answer in all its threads).

    Every thread's global writes are made visible to the whole GPU first
    (threadfence), then thread 0 takes a ticket from ``ticket[0]``, a counter that
    is 0 between launches: the block that takes the last ticket resets it.
    """
    cuda.threadfence()
    cuda.syncthreads()
    if cuda.threadIdx.x == 0:
        last = cuda.atomic.add(ticket, 0, 1) == cuda.gridDim.x * cuda.gridDim.y - 1
        if last:
            ticket[0] = 0
        sh[0] = 1.0 if last else 0.0
    cuda.syncthreads()
    last = sh[0] != 0.0
    cuda.syncthreads()
    return last


@functools.cache
def finishing(shuffle):
    """``(block_total, column_total, chunks_total)``: the sums of a grid's last block.

    ``block_total(v, sh)``: the sum of ``v`` over the block (valid in thread 0);
    ``column_total(a, col, sh)``: ``sum_k a[k, col]`` over a's rows (thread 0);
    ``chunks_total(partial, r, lane, fgroup, sh)``: ``sum_c partial[r, c]`` over a
    group of ``fgroup`` threads (its lane 0; ``r`` past the rows reads nothing).
    All add in an order fixed by the shapes, and all threads of the block call them.
    """
    group_sum = sum_shuffle if shuffle else sum_shared

    @device_function
    def block_total(v, sh):
        return group_sum(v, sh, cuda.threadIdx.x, cuda.blockDim.x)

    @device_function
    def column_total(a, col, sh):
        v = 0.0
        k = cuda.threadIdx.x
        while k < a.shape[0]:
            v += a[k, col]
            k += cuda.blockDim.x
        return block_total(v, sh)

    @device_function
    def chunks_total(partial, r, lane, fgroup, sh):
        v = 0.0
        if r < partial.shape[0]:
            c = lane
            while c < partial.shape[1]:
                v += partial[r, c]
                c += fgroup
        return group_sum(v, sh, lane, fgroup)

    return block_total, column_total, chunks_total
