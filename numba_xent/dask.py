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
* The logits are rechunked so that a row (the last axis) is never split: a
  last axis already in one chunk keeps the leading chunks; otherwise the first
  axis is cut so that a block holds about as many elements as the largest
  block did.  Every argument of the logits' shape (and every broadcast one
  along its non-1 axes) is rechunked like the logits.
* Each block runs the NumPy front end (or the general API) of this package:
  no formula is copied.  Row-wise results map block by block.  Whole-array
  reductions (means, sums, the number of kept labels, TensorFlow's weight
  divisors) add per-block float64 partial sums and divide with the same
  epilogue (``numba_xent.cpu.binary``) the single-machine code uses, so the
  result equals the NumPy front end's to float rounding (the block sums are
  added in another order).  A gradient with a global divisor gets that
  divisor as a lazy 0-d Dask array, computed once.
* ``out=`` / ``grad=`` are refused (``TypeError``): store a result with
  ``dask.array.store`` or ``to_zarr``.  Arguments are checked when the
  function is called (the NumPy front end runs on zero-size stand-ins), with
  the NumPy front end's errors.
"""

import functools
import numbers
import os
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

try:
    import dask.array as da
    from dask.base import tokenize
except ImportError as err:  # pragma: no cover
    raise ImportError("numba_xent.dask needs Dask: pip install 'numba_xent[dask]'") from err

from . import _checks
from . import caffe2 as _caffe2
from . import chainer as _chainer
from . import cpu as _cpu
from . import general as _general
from . import paddle as _paddle
from . import tf as _tf

REDUCTIONS = _general.REDUCTIONS

#: What the functions take: Dask arrays, or NumPy arrays and scalars (wrapped).
Input = da.Array | ArrayLike

__all__ = [
    "REDUCTIONS",
    "caffe2",
    "chainer",
    "from_npy",
    "paddle",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_and_grad",
    "sigmoid_cross_entropy_grad",
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
# The machinery: one front-end call over the row blocks of the logits.

class _Ref:
    """A reference to an argument held by a :class:`_Job` as an aligned Dask array."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


class _Call:
    """The task run on every block: ``post(fn(**consts, **blocks))``.

    Module-level functions and plain values only, so that it pickles (by
    reference) for process-based workers.
    """

    def __init__(self, fn, names, consts, post=None):
        self.fn, self.names, self.consts, self.post = fn, tuple(names), dict(consts), post

    def __call__(self, *blocks):
        kwargs = dict(self.consts)
        kwargs.update(zip(self.names, blocks))
        result = self.fn(**kwargs)
        return result if self.post is None else self.post(result)


def _refuse_out(**buffers):
    for name, buf in buffers.items():
        if buf is not None:
            raise TypeError(f"{name}= is not supported for Dask arrays: the result is a lazy "
                            "dask.array; write it with dask.array.store or to_zarr")


def _arrayish(a):
    """None, a Dask array, a Python/NumPy scalar (kept as it is) or a NumPy array."""
    if a is None or isinstance(a, (da.Array, numbers.Number, np.generic)):
        return a
    try:
        return np.asarray(a)
    except (TypeError, ValueError):
        return a  # the NumPy front end names the problem


def _fake(a):
    """A stand-in of ``a``'s shape and dtype that holds no memory (for the shape checks)."""
    a = _arrayish(a)
    if a is None or not hasattr(a, "dtype"):
        return a
    # float16 would be converted (a copy of the full shape): its stand-in is float32.
    dtype = np.float32 if a.dtype == np.float16 else a.dtype
    return np.broadcast_to(np.zeros((), dtype), a.shape)


def _shrunk(a, ref):
    """A zero-size stand-in for ``a``: each axis equal to ``ref``'s (right-aligned) becomes 0."""
    a = _arrayish(a)
    if a is None or not hasattr(a, "dtype"):
        return a
    shape = list(a.shape)
    for k in range(1, min(len(shape), len(ref)) + 1):
        if shape[-k] == ref[-k]:
            shape[-k] = 0
    if isinstance(a, da.Array):
        return np.zeros(shape, a.dtype)
    if isinstance(a, np.ndarray) and a.ndim:
        return np.zeros(shape, a.dtype) if a.dtype.kind in "biuf" else a
    return a  # a scalar goes as it is


def _whole_rows(x):
    """``x`` with the last axis in one chunk (blocks of about the same size as before)."""
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


class _Job:
    """The arguments of one mirrored call, checked and aligned with the logits' row blocks.

    ``kw`` maps each front-end argument name to a :class:`_Ref` (an array
    aligned with the logits' blocks), a Dask array handed whole to every block
    (small ones: pos_weight, a scalar gradient) or a plain value (options,
    scalars, small NumPy arrays).  ``stand_in`` holds zero-size stand-ins of the
    same arguments, for :meth:`check`.
    """

    def __init__(self, logits_name, logits):
        a = logits
        if isinstance(a, (numbers.Number, np.generic)):
            a = np.asarray(a)
        a = _arrayish(a)
        self.kw, self.stand_in, self.arrays = {}, {}, {}
        if not isinstance(a, da.Array):
            if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
                # Not an array of numbers: check() runs the front end on it, which raises.
                self.x = None
                self.const(logits_name, a)
                return
            a = da.from_array(a, chunks=("auto",) * (a.ndim - 1) + (-1,) if a.ndim else ())
        self.x = _whole_rows(a)
        self.ind = tuple(f"i{k}" for k in range(self.x.ndim))
        self.arrays[logits_name] = (self.x, self.ind)
        self.kw[logits_name] = _Ref(logits_name)
        self.stand_in[logits_name] = np.zeros((0,) * a.ndim, a.dtype)

    @property
    def shape(self):
        return self.x.shape

    @property
    def lead(self):
        return self.x.shape[:-1]

    def _ref(self, shape):
        """What the stand-ins shrink (nothing for 0-d logits, whose stand-in is 0-d)."""
        return shape if self.x.ndim else ()

    def const(self, name, value, stand_in=None):
        self.kw[name] = value
        if stand_in is None:
            # The NumPy front ends refuse Dask arrays: check a memory-free stand-in.
            stand_in = _fake(value) if isinstance(value, da.Array) else value
        self.stand_in[name] = stand_in

    def _put(self, name, a, ind, chunks, ref):
        if not isinstance(a, (da.Array, np.ndarray)) or a.dtype.kind not in "biuf":
            return self.const(name, a)  # a scalar, or something the front end rejects
        self.stand_in[name] = _shrunk(a, self._ref(ref))
        dask_a = a if isinstance(a, da.Array) else da.from_array(a, chunks=chunks)
        self.arrays[name] = (dask_a.rechunk(chunks), ind)
        self.kw[name] = _Ref(name)

    def full(self, name, a):
        """An argument of the logits' shape (targets, labels, elementwise gradients)."""
        a = _arrayish(a)
        if self.x is None or a is None:
            return self.const(name, a)
        _checks.real(_cpu, name, _fake(a), self.shape)
        self._put(name, a, self.ind, self.x.chunks, self.shape)

    def lead_arg(self, name, a):
        """An argument of the loss's per-row shape ``logits.shape[:-1]`` (None allowed)."""
        a = _arrayish(a)
        if self.x is None or a is None:
            return self.const(name, a)
        _checks.real(_cpu, name, _fake(a), self.lead)
        self._put(name, a, self.ind[:-1], self.x.chunks[:-1], self.lead)

    def broadcast(self, name, a, shape):
        """An argument that broadcasts to the logits (checked), reshaped to ``shape`` (their rank)."""
        a = _arrayish(a)
        if self.x is None or not isinstance(a, (da.Array, np.ndarray)) or a.ndim == 0:
            return self.const(name, a)
        if a.shape != shape:
            a = a.reshape(shape)
        chunks = tuple(c if s == t else (s,) for s, t, c in zip(shape, self.shape, self.x.chunks))
        self._put(name, a, self.ind, chunks, self.shape)

    def small(self, name, a, ref=()):
        """An argument handed whole to every block (pos_weight, scalar gradients)."""
        a = _arrayish(a)
        shrunk = _shrunk(a, self._ref(ref)) if self.x is not None else a
        self.const(name, a, shrunk)

    def check(self, fn, **changes):
        """Run the NumPy front end on the zero-size stand-ins: its errors, its result types."""
        kwargs = dict(self.stand_in)
        kwargs.update(changes)
        return fn(**kwargs)

    def map(self, fn, out, meta, kw=None, post=None):
        """A lazy array of ``post(fn(**kw))`` per block (``kw``: by default the call's own).

        ``out``: ``'elem'`` (the logits' blocks), ``'rows'`` (their leading
        axes), ``'part'`` (one element per block) or ``'tuple'`` (whatever
        ``fn`` returns, for :func:`_pick`).  Dask arrays among ``kw``'s values
        (lazy scalars, pos_weight) go whole to every block.
        """
        names, pairs, consts = [], [], {}
        for key, value in (self.kw if kw is None else kw).items():
            if isinstance(value, _Ref):
                array, ind = self.arrays[value.name]
            elif isinstance(value, da.Array):
                array = value.rechunk(-1) if value.ndim else value
                ind = tuple(f"{key}{k}" for k in range(value.ndim))  # concatenated: whole
            else:
                consts[key] = value
                continue
            names.append(key)
            pairs += [array, ind]
        call = _Call(fn, names, consts, post)
        adjust = None
        if out == "rows":
            out_ind = self.ind[:-1]
        elif out == "part":
            out_ind, adjust = self.ind, {i: 1 for i in self.ind}
        else:
            out_ind = self.ind
        return da.blockwise(call, out_ind, *pairs, concatenate=True, adjust_chunks=adjust,
                            meta=meta, align_arrays=False)

    def total(self, fn, kw):
        """The float64 sum over the blocks of ``fn(**kw)`` (0-d Dask array)."""
        post = functools.partial(_as_part, self.x.ndim)
        return self.map(fn, "part", np.empty((0,) * self.x.ndim), kw, post).sum(
            dtype=np.float64)

    def count_kept(self, name, ignore):
        """The number of elements of argument ``name`` that differ from ``ignore`` (0-d)."""
        value = self.kw[name]
        if not isinstance(value, _Ref):  # a 0-d logits' 0-d targets
            return np.count_nonzero(np.not_equal(value, np.float64(ignore)))
        array, ind = self.arrays[value.name]
        fn = functools.partial(_count_kept, len(ind), float(ignore))
        return da.blockwise(fn, ind, array, ind, adjust_chunks={i: 1 for i in ind},
                            meta=np.empty((0,) * len(ind), np.int64)).sum(dtype=np.int64)


def _as_part(ndim, value):
    """A block's sum as a float64 array with one element per axis: ``(1,) * ndim``."""
    return np.asarray(np.sum(value, dtype=np.float64)).reshape((1,) * ndim)


def _count_kept(ndim, ignore, z):
    # The kernels compare the raw target with the float64 ignore value.
    return np.full((1,) * ndim, np.count_nonzero(np.not_equal(z, np.float64(ignore))),
                   np.int64)


def _lazy(fn, *args, dtype=np.float64):
    """``fn(*args)`` as a 0-d Dask array when an argument is one, else computed now."""
    if not any(isinstance(a, da.Array) for a in args):
        return fn(*args)
    pairs = []
    for a in args:
        pairs += [a, ()] if isinstance(a, da.Array) else [a, None]
    return da.blockwise(fn, (), *pairs, meta=np.empty((), dtype))


def _epilogue(op, a, b, dtype):
    """The front ends' last step: ``cast(binary(op, a, b), dtype)`` (op None: ``cast(a)``)."""
    return _cpu.cast(a if op is None else _cpu.binary(op, a, b), dtype)


def _scalar_result(op, total, divisor, dtype):
    """A whole-array reduction's result: 0-d Dask array of the logits' dtype."""
    return _lazy(functools.partial(_epilogue, op, dtype=dtype), total, divisor, dtype=dtype)


def _keep_rows(ndim, result):
    """``(rows, grad)`` with the rows given a last axis of 1, so both keep the blocks' axes."""
    rows, grad = result
    return (rows[..., None] if ndim else rows), grad


def _part_and_grad(ndim, result):
    rows, grad = result
    return _as_part(ndim, rows), grad


def _item(i, value):
    return value[i]


def _pick(job, tup, i, out, meta):
    """Element ``i`` of a ``'tuple'`` map: ``'elem'``, ``'rows'`` (kept axis) or ``'part'``."""
    adjust = None
    if out == "rows" and job.x.ndim:
        adjust = {job.ind[-1]: 1}
    elif out == "part":
        adjust = {i_: 1 for i_ in job.ind}
    picked = da.blockwise(functools.partial(_item, i), job.ind, tup, job.ind,
                          adjust_chunks=adjust, meta=meta)
    return picked[..., 0] if out == "rows" and job.x.ndim else picked


def _like_x(job, value):
    return np.empty((0,) * job.x.ndim, np.asarray(value).dtype)


def _like_rows(job, value):
    return np.empty((0,) * max(job.x.ndim - 1, 0), np.asarray(value).dtype)


# --------------------------------------------------------------------------
# Caffe2

def _caffe2_job(logits, targets, weights=None, grad_out=None, *, weighted=False,
                lead_grad=False):
    job = _Job("logits", logits)
    job.full("targets", targets)
    if weighted:
        job.full("weights", weights)  # None: the front end's check raises
    if lead_grad:
        job.lead_arg("grad_out", grad_out)
    return job


def _caffe2_rows(fn, job, **options):
    for k, v in options.items():
        job.const(k, v)
    meta = job.check(fn)
    return job.map(fn, "rows", _like_rows(job, meta))


def _caffe2_grad(fn, job, **options):
    for k, v in options.items():
        job.const(k, v)
    meta = job.check(fn)
    return job.map(fn, "elem", _like_x(job, meta))


def _caffe2_both(fn, job, **options):
    for k, v in options.items():
        job.const(k, v)
    loss_meta, grad_meta = job.check(fn)
    tup = job.map(fn, "tuple", _like_x(job, grad_meta),
                  post=functools.partial(_keep_rows, job.x.ndim))
    return (_pick(job, tup, 0, "rows", _like_x(job, loss_meta)),
            _pick(job, tup, 1, "elem", _like_x(job, grad_meta)))


def _c2_loss(logits: Input, targets: Input, *, log_d_trick: bool = False,
             unjoined_lr_loss: bool = False, out: None = None) -> da.Array:
    _refuse_out(out=out)
    return _caffe2_rows(_caffe2.sigmoid_cross_entropy_with_logits, _caffe2_job(logits, targets),
                        log_d_trick=log_d_trick, unjoined_lr_loss=unjoined_lr_loss)


def _c2_grad(grad_out: Input, logits: Input, targets: Input, *, log_d_trick: bool = False,
             unjoined_lr_loss: bool = False, out: None = None) -> da.Array:
    _refuse_out(out=out)
    if grad_out is None:
        raise ValueError("grad_out must be an array of the loss's shape, got None")
    return _caffe2_grad(_caffe2.sigmoid_cross_entropy_with_logits_grad,
                        _caffe2_job(logits, targets, grad_out=grad_out, lead_grad=True),
                        log_d_trick=log_d_trick, unjoined_lr_loss=unjoined_lr_loss)


def _c2_both(logits: Input, targets: Input, grad_out: Input | None = None, *,
             log_d_trick: bool = False, unjoined_lr_loss: bool = False, out: None = None,
             grad: None = None) -> tuple[da.Array, da.Array]:
    _refuse_out(out=out, grad=grad)
    return _caffe2_both(_caffe2.sigmoid_cross_entropy_with_logits_and_grad,
                        _caffe2_job(logits, targets, grad_out=grad_out, lead_grad=True),
                        log_d_trick=log_d_trick, unjoined_lr_loss=unjoined_lr_loss)


def _c2_wloss(logits: Input, targets: Input, weights: Input, *,
              out: None = None) -> da.Array:
    _refuse_out(out=out)
    return _caffe2_rows(_caffe2.weighted_sigmoid_cross_entropy_with_logits,
                        _caffe2_job(logits, targets, weights, weighted=True))


def _c2_wgrad(grad_out: Input, logits: Input, targets: Input, weights: Input, *,
              out: None = None) -> da.Array:
    _refuse_out(out=out)
    if grad_out is None:
        raise ValueError("grad_out must be an array of the loss's shape, got None")
    return _caffe2_grad(_caffe2.weighted_sigmoid_cross_entropy_with_logits_grad,
                        _caffe2_job(logits, targets, weights, grad_out, weighted=True,
                                    lead_grad=True))


def _c2_wboth(logits: Input, targets: Input, weights: Input, grad_out: Input | None = None,
              *, out: None = None, grad: None = None) -> tuple[da.Array, da.Array]:
    _refuse_out(out=out, grad=grad)
    return _caffe2_both(_caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad,
                        _caffe2_job(logits, targets, weights, grad_out, weighted=True,
                                    lead_grad=True))


class _Namespace:
    """A front end's functions over Dask arrays (see :mod:`numba_xent.dask`)."""

    def __init__(self, name, doc, **functions):
        self.__name__ = f"numba_xent.dask.{name}"
        self.__doc__ = doc
        front = {"caffe2": _caffe2, "chainer": _chainer, "paddle": _paddle, "tf": _tf}[name]
        for key, fn in functions.items():
            # Pickles by reference as numba_xent.dask.<name>.<key>.
            fn.__name__, fn.__qualname__ = key, f"{name}.{key}"
            fn.__module__ = __name__
            fn.__doc__ = (f"Lazy ``numba_xent.{name}.{key}`` over Dask arrays (see "
                          f"numba_xent.dask).\n\n{getattr(front, key).__doc__}")
            setattr(self, key, fn)
        self.__all__ = sorted(functions)

    def __repr__(self):
        return f"<numba_xent.dask namespace {self.__name__!r}>"

    def __dir__(self):
        return sorted(k for k in vars(self) if not k.startswith("_"))


caffe2 = _Namespace(
    "caffe2", "numba_xent.caffe2 over Dask arrays, one row block at a time.",
    sigmoid_cross_entropy_with_logits=_c2_loss,
    sigmoid_cross_entropy_with_logits_grad=_c2_grad,
    sigmoid_cross_entropy_with_logits_and_grad=_c2_both,
    weighted_sigmoid_cross_entropy_with_logits=_c2_wloss,
    weighted_sigmoid_cross_entropy_with_logits_grad=_c2_wgrad,
    weighted_sigmoid_cross_entropy_with_logits_and_grad=_c2_wboth,
)


# --------------------------------------------------------------------------
# chainer

def _chainer_job(x, t, normalize, reduce, gy=None, grad=False):
    job = _Job("x", x)
    job.full("t", t)
    if grad:
        if reduce == "no":
            job.full("gy", gy)
        else:
            job.small("gy", gy)
    job.const("normalize", normalize)
    job.const("reduce", reduce)
    return job


def _chainer_divisor(job, normalize):
    """chainer's D before ``max(1, D)``: the kept labels or the batch size."""
    if normalize:
        return job.count_kept("t", _chainer.IGNORE)
    return job.shape[0] if job.x.ndim else 1


def _ch_loss(x: Input, t: Input, normalize: bool = True, reduce: str = "mean") -> da.Array:
    job = _chainer_job(x, t, normalize, reduce)
    meta = job.check(_chainer.sigmoid_cross_entropy)
    if reduce == "no":
        return job.map(_chainer.sigmoid_cross_entropy, "elem", _like_x(job, meta))
    # sum(l) block by block: the general API's row sums (the kernel options chainer uses).
    total = job.total(_general.sigmoid_cross_entropy,
                      {"logits": job.kw["x"], "targets": job.kw["t"],
                       "ignore_index": _chainer.IGNORE, "reduction": "row_sum"})
    return _scalar_result("div_at_least_one", total, _chainer_divisor(job, bool(normalize)),
                          meta.dtype)


def _ch_grad(x: Input, t: Input, gy: Input, normalize: bool = True,
             reduce: str = "mean") -> da.Array:
    job = _chainer_job(x, t, normalize, reduce, gy=gy, grad=True)
    meta = job.check(_chainer.sigmoid_cross_entropy_grad)
    like = _like_x(job, meta)
    if reduce == "no":
        return job.map(_chainer.sigmoid_cross_entropy_grad, "elem", like)
    g = _lazy(functools.partial(_cpu.binary, "div_at_least_one"), job.kw["gy"],
              _chainer_divisor(job, bool(normalize)))
    return job.map(_general.sigmoid_cross_entropy_grad, "elem", like,
                   {"logits": job.kw["x"], "targets": job.kw["t"], "grad_output": g,
                    "ignore_index": _chainer.IGNORE, "reduction": "sum"})


chainer = _Namespace(
    "chainer", "numba_xent.chainer over Dask arrays.",
    sigmoid_cross_entropy=_ch_loss,
    sigmoid_cross_entropy_grad=_ch_grad,
)


# --------------------------------------------------------------------------
# paddle

def _paddle_job(x, label, ignore_index, normalize, dout=None, grad=False):
    job = _Job("x", x)
    job.full("label", label)
    if grad:
        job.full("dout", dout)
    job.const("ignore_index", ignore_index)
    job.const("normalize", normalize)
    return job


def _paddle_scaled_loss(x, label, ignore_index, scale):
    loss = _paddle.sigmoid_cross_entropy_with_logits(x, label, ignore_index, False)
    # The kernel's loss_scale * loss: a float64 product rounded once to the logits' dtype.
    np.multiply(loss, scale, out=loss, casting="unsafe")
    return loss


def _paddle_scaled_grad(x, label, dout, ignore_index, scale):
    # The kernel's grad_scale * f64(dout), formed here (the same float64 product).
    dout = np.multiply(scale, np.asarray(dout), dtype=np.float64)
    return _paddle.sigmoid_cross_entropy_with_logits_grad(x, label, dout, ignore_index, False)


def _paddle_scale(job, ignore_index):
    """paddle's normalize factor: ``safe_div(1, kept labels)`` (lazy)."""
    kept = job.count_kept("label", ignore_index)
    return _lazy(functools.partial(_cpu.binary, "safe_div", 1.0), kept)


def _pd_loss(x: Input, label: Input, ignore_index: float = -100,
             normalize: bool = False) -> da.Array:
    job = _paddle_job(x, label, ignore_index, normalize)
    meta = job.check(_paddle.sigmoid_cross_entropy_with_logits)
    like = _like_x(job, meta)
    if not normalize:
        return job.map(_paddle.sigmoid_cross_entropy_with_logits, "elem", like)
    return job.map(_paddle_scaled_loss, "elem", like,
                   {"x": job.kw["x"], "label": job.kw["label"], "ignore_index": ignore_index,
                    "scale": _paddle_scale(job, ignore_index)})


def _pd_grad(x: Input, label: Input, dout: Input, ignore_index: float = -100,
             normalize: bool = False) -> da.Array:
    job = _paddle_job(x, label, ignore_index, normalize, dout=dout, grad=True)
    meta = job.check(_paddle.sigmoid_cross_entropy_with_logits_grad)
    like = _like_x(job, meta)
    if not normalize:
        return job.map(_paddle.sigmoid_cross_entropy_with_logits_grad, "elem", like)
    return job.map(_paddle_scaled_grad, "elem", like,
                   {"x": job.kw["x"], "label": job.kw["label"], "dout": job.kw["dout"],
                    "ignore_index": ignore_index, "scale": _paddle_scale(job, ignore_index)})


paddle = _Namespace(
    "paddle", "numba_xent.paddle over Dask arrays.",
    sigmoid_cross_entropy_with_logits=_pd_loss,
    sigmoid_cross_entropy_with_logits_grad=_pd_grad,
)


# --------------------------------------------------------------------------
# TensorFlow v1

def _tf_weights_shape(weights, x_shape):
    """tf's rule for ``weights``: its shape at the logits' rank (per-sample: ``(batch, 1...)``)."""
    shape = tuple(_arrayish(weights).shape)
    if len(shape) == 1 and len(x_shape) > 1 and shape[0] == x_shape[0]:
        shape = shape + (1,) * (len(x_shape) - 1)  # per-sample weights
    if shape and (len(shape) != len(x_shape)
                  or any(a not in (1, b) for a, b in zip(shape, x_shape))):
        raise ValueError(
            f"weights must be a scalar, of shape [batch_size] or of the logits' rank with "
            f"each axis 1 or equal to the logits' {x_shape}, got {_arrayish(weights).shape}")
    return shape


def _tf_job(labels, logits, weights, label_smoothing, reduction, grad_loss=None, grad=False):
    job = _Job("logits", logits)
    job.full("multi_class_labels", labels)
    shape = None
    w = _arrayish(weights)
    if job.x is not None and isinstance(w, (da.Array, np.ndarray)) and w.dtype.kind in "biuf":
        shape = _tf_weights_shape(w, job.shape)
        job.broadcast("weights", w, shape)
    else:
        job.const("weights", weights)
    if grad:
        if reduction == _tf.Reduction.NONE:
            job.full("grad_loss", grad_loss)
        else:
            job.small("grad_loss", grad_loss)
    job.const("label_smoothing", label_smoothing)
    job.const("reduction", reduction)
    return job, shape


def _tf_divisor(job, weights, shape, reduction):
    """What tf divides the weighted sum by (``_divisor`` of numba_xent.tf), lazily."""
    R = _tf.Reduction
    if reduction == R.SUM:
        return 1.0
    if reduction == R.SUM_OVER_BATCH_SIZE:
        return job.x.size
    w = _arrayish(weights)
    if not isinstance(w, da.Array):
        w = np.asarray(w)
    if w.dtype == np.float16:
        w = w.astype(job.x.dtype)  # as tf's checks convert it
    if shape is not None and w.shape != shape:
        w = w.reshape(shape)
    size = int(np.prod(np.shape(w), dtype=np.int64))
    repeats = job.x.size // size if size else 0
    if isinstance(w, da.Array):
        per_weight = (w.sum(dtype=np.float64) if reduction == R.MEAN
                      else da.count_nonzero(w))
    else:
        per_weight = _cpu.total(w) if reduction == R.MEAN else _cpu.count_nonzero(w)
    return _lazy(functools.partial(_cpu.binary, "mul"), per_weight, repeats)


def _tf_total(job, label_smoothing):
    """The weighted loss summed block by block, as float64 (0-d Dask array)."""
    smoothing = float(label_smoothing) if label_smoothing > 0 else 0.0  # as tf reads it
    if smoothing > 1:  # beyond the general API: tf's own SUM per block (rounded per block)
        return job.total(_tf.sigmoid_cross_entropy, dict(job.kw, reduction=_tf.Reduction.SUM))
    # The general API's row sums run the kernel tf runs (weights, smoothing).
    return job.total(_general.sigmoid_cross_entropy,
                     {"logits": job.kw["logits"], "targets": job.kw["multi_class_labels"],
                      "weights": job.kw["weights"], "label_smoothing": smoothing,
                      "reduction": "row_sum"})


def _tf_grad_scale(g, divisor):
    # The kernel's grad_scale * g, with grad_scale = safe_div(1, divisor): one float64 product.
    return _cpu.binary("mul", g, _cpu.binary("safe_div", 1.0, divisor))


def _tf_loss(multi_class_labels: Input, logits: Input, weights: Input = 1.0,
             label_smoothing: float = 0,
             reduction: str = _tf.Reduction.SUM_BY_NONZERO_WEIGHTS) -> da.Array:
    job, shape = _tf_job(multi_class_labels, logits, weights, label_smoothing, reduction)
    meta = job.check(_tf.sigmoid_cross_entropy)
    if reduction == _tf.Reduction.NONE:
        return job.map(_tf.sigmoid_cross_entropy, "elem", _like_x(job, meta))
    total = _tf_total(job, label_smoothing)
    return _scalar_result("safe_div", total, _tf_divisor(job, weights, shape, reduction),
                          meta.dtype)


def _tf_grad(multi_class_labels: Input, logits: Input, grad_loss: Input, weights: Input = 1.0,
             label_smoothing: float = 0,
             reduction: str = _tf.Reduction.SUM_BY_NONZERO_WEIGHTS) -> da.Array:
    job, shape = _tf_job(multi_class_labels, logits, weights, label_smoothing, reduction,
                         grad_loss=grad_loss, grad=True)
    meta = job.check(_tf.sigmoid_cross_entropy_grad)
    like = _like_x(job, meta)
    if reduction == _tf.Reduction.NONE:
        return job.map(_tf.sigmoid_cross_entropy_grad, "elem", like)
    g = _lazy(_tf_grad_scale, job.kw["grad_loss"],
              _tf_divisor(job, weights, shape, reduction))
    return job.map(_tf.sigmoid_cross_entropy_grad, "elem", like,
                   dict(job.kw, grad_loss=g, reduction=_tf.Reduction.SUM))


tf = _Namespace(
    "tf", "numba_xent.tf (TensorFlow v1 losses) over Dask arrays.",
    sigmoid_cross_entropy=_tf_loss,
    sigmoid_cross_entropy_grad=_tf_grad,
)
tf.Reduction = _tf.Reduction


# --------------------------------------------------------------------------
# The general API

def _general_job(logits, targets, weights, pos_weight, label_smoothing, ignore_index,
                 reduction, grad_output=None, grad=False):
    job = _Job("logits", logits)
    job.full("targets", targets)
    w = _arrayish(weights)
    if job.x is not None and isinstance(w, (da.Array, np.ndarray)) and w.dtype.kind in "biuf":
        checked = _checks.broadcastable(_cpu, "weights", _fake(w), job.shape, np.float64)
        if checked.shape != w.shape:
            w = w.reshape(checked.shape)  # leading axes of 1 beyond the logits' rank
        job.broadcast("weights", w, (1,) * (job.x.ndim - w.ndim) + w.shape)
    else:
        job.const("weights", weights)
    pw = _arrayish(pos_weight)
    if job.x is not None and isinstance(pw, (da.Array, np.ndarray)) and pw.dtype.kind in "biuf":
        n = job.shape[-1] if job.x.ndim else 1
        _checks.broadcastable(_cpu, "pos_weight", _fake(pw), (n,), np.float64)
        job.small("pos_weight", pw, (n,))
    else:
        job.const("pos_weight", pos_weight)
    if grad:
        if reduction == "none":
            job.full("grad_output", grad_output)
        elif reduction in ("row_sum", "row_mean"):
            job.lead_arg("grad_output", grad_output)
        else:
            job.small("grad_output", grad_output)
    job.const("label_smoothing", label_smoothing)
    job.const("ignore_index", ignore_index)
    job.const("reduction", reduction)
    return job


def _general_kept(job, ignore_index):
    """What 'mean' divides by: the elements, or those not ignored."""
    if ignore_index is None:
        return job.x.size
    return job.count_kept("targets", ignore_index)


def _rows_and_grad(g, **kw):
    """The general API's ``(row sums, gradient)`` of a block, for a 0-d gradient ``g``."""
    lead = np.shape(kw["logits"])[:-1]
    return _general.sigmoid_cross_entropy_and_grad(
        **kw, grad_output=np.broadcast_to(1.0 if g is None else g, lead), reduction="row_sum")


def sigmoid_cross_entropy(
    logits: Input,
    targets: Input,
    weights: Input | None = None,
    *,
    pos_weight: Input | None = None,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
    reduction: str = "mean",
    out: None = None,
) -> da.Array:
    """:func:`numba_xent.sigmoid_cross_entropy` over Dask arrays (lazy)."""
    _refuse_out(out=out)
    job = _general_job(logits, targets, weights, pos_weight, label_smoothing, ignore_index,
                       reduction)
    meta = job.check(_general.sigmoid_cross_entropy)
    fn = _general.sigmoid_cross_entropy
    if reduction == "none":
        return job.map(fn, "elem", _like_x(job, meta))
    if reduction in ("row_sum", "row_mean"):
        return job.map(fn, "rows", _like_rows(job, meta))
    total = job.total(fn, dict(job.kw, reduction="row_sum"))
    if reduction == "sum":
        return _scalar_result(None, total, None, meta.dtype)
    return _scalar_result("div", total, _general_kept(job, ignore_index), meta.dtype)


def sigmoid_cross_entropy_grad(
    logits: Input,
    targets: Input,
    weights: Input | None = None,
    *,
    grad_output: Input | None = None,
    pos_weight: Input | None = None,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
    reduction: str = "mean",
    out: None = None,
) -> da.Array:
    """:func:`numba_xent.sigmoid_cross_entropy_grad` over Dask arrays (lazy)."""
    _refuse_out(out=out)
    job = _general_job(logits, targets, weights, pos_weight, label_smoothing, ignore_index,
                       reduction, grad_output, grad=True)
    meta = job.check(_general.sigmoid_cross_entropy_grad)
    fn = _general.sigmoid_cross_entropy_grad
    like = _like_x(job, meta)
    if reduction not in ("sum", "mean"):
        return job.map(fn, "elem", like)
    g = job.kw["grad_output"]
    if reduction == "mean":
        g = _lazy(functools.partial(_cpu.binary, "div_at_least_one"), 1.0 if g is None else g,
                  _general_kept(job, ignore_index))
    return job.map(fn, "elem", like, dict(job.kw, grad_output=g, reduction="sum"))


def sigmoid_cross_entropy_and_grad(
    logits: Input,
    targets: Input,
    weights: Input | None = None,
    *,
    grad_output: Input | None = None,
    pos_weight: Input | None = None,
    label_smoothing: float = 0.0,
    ignore_index: float | None = None,
    reduction: str = "mean",
    out: None = None,
    grad: None = None,
) -> tuple[da.Array, da.Array]:
    """:func:`numba_xent.sigmoid_cross_entropy_and_grad` over Dask arrays (lazy)."""
    _refuse_out(out=out, grad=grad)
    job = _general_job(logits, targets, weights, pos_weight, label_smoothing, ignore_index,
                       reduction, grad_output, grad=True)
    loss_meta, grad_meta = job.check(_general.sigmoid_cross_entropy_and_grad)
    fn = _general.sigmoid_cross_entropy_and_grad
    loss_like, grad_like = _like_x(job, loss_meta), _like_x(job, grad_meta)
    if reduction == "none":
        tup = job.map(fn, "tuple", grad_like)
        return _pick(job, tup, 0, "elem", loss_like), _pick(job, tup, 1, "elem", grad_like)
    if reduction in ("row_sum", "row_mean"):
        tup = job.map(fn, "tuple", grad_like, post=functools.partial(_keep_rows, job.x.ndim))
        return _pick(job, tup, 0, "rows", loss_like), _pick(job, tup, 1, "elem", grad_like)
    kw = dict(job.kw)
    g = kw.pop("grad_output")
    kw.pop("reduction")
    if reduction == "mean":
        kept = _general_kept(job, ignore_index)
        g = _lazy(functools.partial(_cpu.binary, "div_at_least_one"), 1.0 if g is None else g,
                  kept)
    kw["g"] = g
    tup = job.map(_rows_and_grad, "tuple", grad_like, kw,
                  post=functools.partial(_part_and_grad, job.x.ndim))
    total = _pick(job, tup, 0, "part", np.empty((0,) * job.x.ndim)).sum(dtype=np.float64)
    loss = (_scalar_result(None, total, None, loss_meta.dtype) if reduction == "sum"
            else _scalar_result("div", total, kept, loss_meta.dtype))
    return loss, _pick(job, tup, 1, "elem", grad_like)
