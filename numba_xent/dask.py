"""numba_xent over Dask arrays: the same losses, lazily, on arrays of any size.

Every function here has the name and signature of a NumPy front end and takes
``dask.array`` arrays (NumPy arrays and array-likes are wrapped; scalars and
small arguments such as ``pos_weight`` may stay NumPy or Python values).  It
returns lazy Dask arrays; nothing runs before ``.compute()`` (or ``persist``,
``store``, ``to_zarr``), on whatever scheduler is active: threads on a laptop,
a ``dask.distributed`` cluster once a ``Client`` exists.

* :data:`caffe2`, :data:`chainer`, :data:`paddle` and :data:`tf` mirror the
  framework front ends (``numba_xent.dask.caffe2.sigmoid_cross_entropy_with_logits``
  ...), and the top level mirrors the general API (:func:`sigmoid_cross_entropy`,
  :func:`sigmoid_cross_entropy_grad`, :func:`sigmoid_cross_entropy_and_grad`).
  All are made from the table of the public functions (``numba_xent._table``):
  each calls its front end's planner on the Dask arrays themselves (only their
  shapes and dtypes are read), so the checks and error messages are the NumPy
  front end's, and executes the :class:`~numba_xent._plan.Plan` it returns.
* The logits are rechunked so that a row (the last axis) is never split: a
  last axis already in one chunk keeps the leading chunks; otherwise the first
  axis is cut so that a block holds about as many elements as the largest
  block did.  Every argument of the logits' shape (and every broadcast one
  along its non-1 axes) is rechunked like the logits.
* Each block runs the plan on the CPU runner.  Divisors of a whole array (the
  kept elements, TensorFlow's weight sums) are lazy 0-d Dask arrays, formed
  once from per-block counts and sums and handed to every block; per-row ones
  are formed inside each block.  Whole-array losses add per-block float64 sums
  and divide with the CPU backend's epilogue, so the result equals the NumPy
  front end's to float rounding (the block sums are added in another order).
* ``out=`` / ``grad=`` are refused (``TypeError``): store a result with
  ``dask.array.store`` or ``to_zarr``.
"""

import functools
import os
from typing import Any

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
except ImportError as err:  # pragma: no cover
    raise ImportError("numba_xent.dask needs Dask: pip install 'numba_xent[dask]'") from err

from . import _plan, _runner, _table
from . import cpu as _cpu
from . import general as _general
from . import tf as _tf
from ._core import exactly

REDUCTIONS = _general.REDUCTIONS

__all__ = [
    "REDUCTIONS",
    "asymmetric_loss",
    "asymmetric_loss_and_grad",
    "asymmetric_loss_grad",
    "caffe2",
    "chainer",
    "from_npy",
    "paddle",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_and_grad",
    "sigmoid_cross_entropy_grad",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_and_grad",
    "sigmoid_focal_loss_grad",
    "tf",
]


# --------------------------------------------------------------------------
# Reading inputs lazily

class _NpyFile:
    """A ``.npy`` file that each task maps and copies its block from (pickles as its path)."""

    def __init__(self, path, shape, dtype):
        self.path, self.shape, self.dtype, self.ndim = path, shape, np.dtype(dtype), len(shape)

    def __getitem__(self, index):
        return np.array(np.load(self.path, mmap_mode="r")[index])


def from_npy(path: str | os.PathLike, chunks: Any = None) -> da.Array:
    """A ``.npy`` file as a lazy Dask array, read block by block by whichever worker needs it.

    ``chunks`` (Dask's chunk spec) defaults to whole rows: the last axes in one
    chunk, the first cut to about Dask's ``array.chunk-size``.  Unlike
    ``dask.array.from_array(np.load(path, mmap_mode="r"))``, whose memory map
    would be pickled with all its data for process-based workers, the tasks
    only carry the path.
    """
    path = os.path.abspath(os.fspath(path))
    array = np.load(path, mmap_mode="r")
    if chunks is None:
        chunks = {k: -1 for k in range(1, array.ndim)}
        if array.ndim:
            chunks[0] = "auto"
    stat = os.stat(path)
    name = "from-npy-" + tokenize(path, stat.st_mtime_ns, stat.st_size, array.shape,
                                           array.dtype.str)
    return da.from_array(_NpyFile(path, array.shape, array.dtype), chunks=chunks, name=name,
                         asarray=False, fancy=False, inline_array=True,
                         meta=np.empty((0,) * array.ndim, array.dtype))


# --------------------------------------------------------------------------
# Planning: the planners see Dask arrays through this backend (shapes and dtypes only).

class _Planning:
    """The backend operations the planners call, done lazily on Dask arrays."""

    @staticmethod
    def asarray(a):
        return a if isinstance(a, da.Array) else np.asarray(a)

    @staticmethod
    def cast(a, dtype):
        return a.astype(dtype)

    @staticmethod
    def reshape(a, shape):
        return a.reshape(shape)


def _pick(**named):
    return _Planning


def _whole_rows(x):
    """``x`` with the last axis in one chunk (blocks of about the same size as before)."""
    if not isinstance(x, da.Array):
        return da.from_array(x, chunks=("auto",) * (x.ndim - 1) + (-1,) if x.ndim else ())
    if np.isnan(x.shape).any() or any(np.isnan(c).any() for c in x.chunks):
        raise ValueError("logits have unknown chunk sizes: call compute_chunk_sizes() first")
    if x.ndim == 0 or len(x.chunks[-1]) == 1:
        return x
    if x.ndim == 1:
        return x.rechunk(-1)
    block = max(1, int(np.prod([max(c) if c else 0 for c in x.chunks])))
    inner = int(np.prod([max(c) if c else 1 for c in x.chunks[1:-1]], dtype=np.int64))
    rows = max(1, block // max(1, inner * x.shape[-1]))
    return x.rechunk({0: rows, x.ndim - 1: -1})


# --------------------------------------------------------------------------
# Running a plan over the row blocks of the logits.

_GLOBAL = (_plan.KEPT, _plan.WEIGHT_SUM, _plan.NONZERO_WEIGHTS)  # divisors of the whole array
_DIVISORS = ("loss_scale", "loss_divisor", "grad_scale", "g_divisor")


class _Block:
    """The task run on every block: the plan on the CPU runner (pickles for process workers).

    ``roles`` name the plan's fields that the blocks fill (arrays and the values
    of whole-array divisors, in that order); ``part`` makes a whole-array
    loss a float64 partial sum with one element per axis.
    """

    def __init__(self, plan, roles, part):
        self.plan, self.roles, self.part = plan, tuple(roles), part

    def __call__(self, *values):
        fields = {}
        for role, value in zip(self.roles, values):
            if role in _DIVISORS:
                value = getattr(self.plan, role)._replace(by=_plan.CONSTANT, value=value)
            fields[role] = value
        p = self.plan._replace(**fields)
        result = _runner.run(_cpu, p)
        if p.loss is None:
            return result
        loss, grad = result if p.g is not None else (result, None)
        ndim = p.x.ndim
        if self.part:
            loss = np.asarray(loss, np.float64).reshape((1,) * ndim)
        elif p.loss != _plan.ELEM and ndim:
            loss = loss[..., None]  # a last axis of 1: rows keep the blocks' axes
        return loss if grad is None else (loss, grad)


def _run(plan):
    """The plan's results as lazy Dask arrays."""
    x = _whole_rows(plan.x)
    ind = tuple(f"i{k}" for k in range(x.ndim))
    args, roles = [x, ind], ["x"]

    def put(role, a, a_ind, chunks):
        """A plan field for the blocks: aligned with x's blocks (``a_ind``), or whole."""
        if a_ind is not None and not isinstance(a, da.Array):
            a = da.from_array(np.asarray(a), chunks=chunks)
        if isinstance(a, da.Array) and a.ndim:
            a = a.rechunk(chunks) if a_ind is not None else a.rechunk(-1)
            args.extend([a, a_ind if a_ind is not None else tuple(f"{role}{k}"
                                                                  for k in range(a.ndim))])
        else:
            args.extend([a, () if isinstance(a, da.Array) else None])
        roles.append(role)

    put("z", plan.z, ind, x.chunks)
    z = args[2]
    def put_broadcast(role, w):
        """An array that broadcasts to x's shape: its blocks aligned with x's rows."""
        w = w.reshape((1,) * (x.ndim - w.ndim) + w.shape) if w.ndim else w
        put(role, w, ind, tuple(c if s == t else (s,)
                                for s, t, c in zip(w.shape, x.shape, x.chunks)))

    if plan.weights is not None:
        put_broadcast("weights", plan.weights)
    pw = plan.pos_weight
    if pw is not None and all(s == 1 for s in pw.shape[:-1]):  # per column: whole
        put("pos_weight", pw, None, None)
    elif pw is not None:
        put_broadcast("pos_weight", pw)
    if plan.g is not None:
        g = plan.g
        if np.ndim(g) and plan.g_elem:
            put("g", g, ind, x.chunks)
        elif np.ndim(g):
            put("g", g, ind[:-1], x.chunks[:-1])
        else:
            put("g", g, None, None)
    wanted = _wanted(plan)
    for role in wanted:
        d = getattr(plan, role)
        if d.by in _GLOBAL:
            put(role, _global_divisor(plan, d, x, z, ind), None, None)

    total = plan.loss == _plan.TOTAL
    block = _Block(plan._replace(like=None, x=None, z=None, weights=None, pos_weight=None,
                                 g=None if plan.g is None else 1.0, loss_divisor=None
                                 if total else plan.loss_divisor,
                                 **({"cast": False} if total else {})), roles, total)
    dtype = plan.x.dtype
    meta = np.empty((0,) * x.ndim, dtype)
    if plan.loss is None:
        return da.blockwise(block, ind, *args, concatenate=True, meta=meta, align_arrays=False)
    if plan.loss == _plan.ELEM:
        adjust = None
    elif total:
        adjust = {i: 1 for i in ind}
    else:
        adjust = {ind[-1]: 1} if x.ndim else None
    if plan.g is None:
        loss = da.blockwise(block, ind, *args, concatenate=True, adjust_chunks=adjust,
                            meta=np.empty((0,) * x.ndim, np.float64 if total else dtype),
                            align_arrays=False)
        grad = None
    else:
        both = da.blockwise(block, ind, *args, concatenate=True, meta=meta, align_arrays=False)
        loss = da.blockwise(functools.partial(_item, 0), ind, both, ind, adjust_chunks=adjust,
                            meta=np.empty((0,) * x.ndim, np.float64 if total else dtype))
        grad = da.blockwise(functools.partial(_item, 1), ind, both, ind, meta=meta)
    if total:
        d = plan.loss_divisor
        divisor = None if d is None else (_global_divisor(plan, d, x, z, ind)
                                          if d.by in _GLOBAL else d.value)
        loss = _lazy(functools.partial(_epilogue, None if d is None else d.op, dtype=dtype),
                     loss.sum(dtype=np.float64), divisor, dtype=dtype)
    elif plan.loss != _plan.ELEM and x.ndim:
        loss = loss[..., 0]
    return loss if grad is None else (loss, grad)


def _wanted(plan):
    """The in-block divisors of the results the plan wants (Plan fields)."""
    roles = ["loss_scale"] + (["loss_divisor"] if plan.loss != _plan.TOTAL else [])
    roles = roles if plan.loss is not None else []
    if plan.g is not None:
        roles += ["grad_scale", "g_divisor"]
    return [r for r in roles if getattr(plan, r) is not None]


def _global_divisor(plan, d, x, z, ind):
    """A whole-array divisor as a lazy 0-d Dask array (or a number)."""
    if d.by == _plan.KEPT:
        fn = functools.partial(_count_kept, x.ndim, plan.ignore_value)
        return da.blockwise(fn, ind, z, ind, adjust_chunks={i: 1 for i in ind},
                            meta=np.empty((0,) * x.ndim, np.int64)).sum(dtype=np.int64)
    w = plan.weights
    per_weight = (w.sum(dtype=np.float64) if d.by == _plan.WEIGHT_SUM
                  else (da.count_nonzero(w) if isinstance(w, da.Array)
                        else _cpu.count_nonzero(w)))
    return _lazy(functools.partial(_cpu.binary, "mul"), per_weight, d.value)


def _count_kept(ndim, ignore_value, z):
    """The targets that differ from ``ignore_value``, compared in their dtype as the kernels
    compare (a value no target can equal ignores nothing); NumPy, so that no worker
    compiles a kernel for it."""
    value = exactly(ignore_value, z.dtype)
    kept = z.size if value is None else np.count_nonzero(z != value)
    return np.full((1,) * ndim, kept, np.int64)


def _item(i, value):
    return value[i]


def _lazy(fn, *args, dtype=np.float64):
    """``fn(*args)`` as a 0-d Dask array when an argument is one, else computed now."""
    if not any(isinstance(a, da.Array) for a in args):
        return np.asarray(fn(*args))
    pairs = []
    for a in args:
        pairs += [a, ()] if isinstance(a, da.Array) else [a, None]
    return da.blockwise(fn, (), *pairs, meta=np.empty((), dtype))


def _epilogue(op, total, divisor, dtype):
    """A whole-array loss's last step: ``cast(binary(op, total, divisor), dtype)``."""
    return _cpu.cast(total if op is None else _cpu.binary(op, total, divisor), dtype)


# --------------------------------------------------------------------------
# The functions, made from the table.

def _mirror(entry):
    signature = entry.signature
    buffers = [k for k in ("out", "grad") if k in signature.parameters]

    def fn(*args, **kwargs):
        arguments = entry.bind(args, kwargs)
        for name in buffers:
            if arguments[name] is not None:
                raise TypeError(f"{name}= is not supported for Dask arrays: the result is a "
                                "lazy dask.array; write it with dask.array.store or to_zarr")
        _, plan = entry.plan(_pick, arguments)
        return _run(plan)

    prefix = f"{entry.front}." if entry.front else ""
    fn.__name__, fn.__qualname__, fn.__module__ = entry.name, prefix + entry.name, __name__
    fn.__signature__ = signature
    fn.__doc__ = (f"Lazy ``numba_xent.{prefix}{entry.name}`` over Dask arrays (see "
                  f"numba_xent.dask).\n\n{entry.function.__doc__}")
    return fn


class _Namespace:
    """A front end's functions over Dask arrays (see :mod:`numba_xent.dask`)."""

    def __init__(self, name, doc):
        self.__name__ = f"numba_xent.dask.{name}"
        self.__doc__ = doc
        functions = {e.name: _mirror(e) for e in _table.TABLE if e.front == name}
        for key, fn in functions.items():
            setattr(self, key, fn)
        self.__all__ = sorted(functions)

    def __repr__(self):
        return f"<numba_xent.dask namespace {self.__name__!r}>"

    def __dir__(self):
        return sorted(k for k in vars(self) if not k.startswith("_"))


caffe2 = _Namespace("caffe2", "numba_xent.caffe2 over Dask arrays, one row block at a time.")
chainer = _Namespace("chainer", "numba_xent.chainer over Dask arrays.")
paddle = _Namespace("paddle", "numba_xent.paddle over Dask arrays.")
tf = _Namespace("tf", "numba_xent.tf (TensorFlow v1 losses) over Dask arrays.")
tf.Reduction = _tf.Reduction

_GENERAL = {e.name: _mirror(e) for e in _table.TABLE if e.front == ""}
sigmoid_cross_entropy = _GENERAL["sigmoid_cross_entropy"]
sigmoid_cross_entropy_grad = _GENERAL["sigmoid_cross_entropy_grad"]
sigmoid_cross_entropy_and_grad = _GENERAL["sigmoid_cross_entropy_and_grad"]
sigmoid_focal_loss = _GENERAL["sigmoid_focal_loss"]
sigmoid_focal_loss_grad = _GENERAL["sigmoid_focal_loss_grad"]
sigmoid_focal_loss_and_grad = _GENERAL["sigmoid_focal_loss_and_grad"]
asymmetric_loss = _GENERAL["asymmetric_loss"]
asymmetric_loss_grad = _GENERAL["asymmetric_loss_grad"]
asymmetric_loss_and_grad = _GENERAL["asymmetric_loss_and_grad"]
