"""The CUDA backend: device arrays in, device arrays of the same kind out.

:func:`bind` gives the backend of one call: a :class:`Backend` bound to the GPU
that holds the call's arrays and to the stream it runs on.  Its methods are
the backend interface of :mod:`numba_xent.cpu` (the front ends and
``numba_xent._core`` call them alike).  CuPy arrays, PyTorch CUDA tensors,
Numba device arrays (and anything else exposing ``__cuda_array_interface__``)
are read and written in place through Numba views, never copied to the host;
results are allocated by the logits' library (CuPy in, CuPy out; PyTorch in,
PyTorch out; Numba or anything else in, Numba out), and the scalar results of
whole-array reductions are 0-d device arrays, produced without a synchronisation.

Streams: everything runs on the first stream that the device arguments name in
their ``__cuda_array_interface__``.  CuPy and PyTorch name their *current*
stream (``cupy.cuda.get_current_stream()``, ``torch.cuda.current_stream()``), so
the caller's stream is respected: call inside ``with cupy.cuda.Stream():`` or
``with torch.cuda.stream(s):``.  A Numba device array names the stream it is
bound to (``DeviceNDArray.bind(stream)``, or the ``stream=`` it was made with),
or none: then Numba's default stream.  An argument that names another stream
is waited for with an event (the device waits, the host does not).

Memory: results and scratch arrays come from the logits' library (CuPy's and
PyTorch's stream-ordered pools); with Numba arrays, from Numba's memory manager
(``NUMBA_CUDA_MEMORY_MANAGER`` can point it to a pool such as RMM's).  Arrays
on another GPU than the current one run there (its context is made current).

Inputs whose leading axes cannot be merged into one without a copy (a
transposed 3-D array, say) are copied once on the device, as on the CPU.
"""

try:
    import numba_cuda  # noqa: F401  (the `cuda` extra: numba.cuda is this package)
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError(
        "device arrays need the CUDA backend's dependency numba-cuda: "
        "pip install 'numba_xent[cuda]'") from err

import contextlib
import functools
import math
import numbers
import threading
from typing import Any, NamedTuple

import numpy as np
from numba import cuda

from .. import _half
from .._dispatch import is_device_array
from .._plan import KEPT
from . import arrays, epilogue, groups, kernels
from .arrays import SIMULATOR, NumbaArray
from .epilogue import NONZERO, SUM

__all__ = ["Backend", "Quotient", "Scale", "bind", "geometry"]


class Quotient(NamedTuple):
    """``op(a, b)`` of :meth:`Backend.quotient`, deferred: the kernel that reads it
    computes it (``a``, ``b``: numbers, device arrays or quotients, broadcast)."""

    op: str
    a: Any
    b: Any

    @property
    def ndim(self):
        return max(getattr(v, "ndim", 0) for v in (self.a, self.b))

    def map(self, fn, shape):
        """The quotient of ``fn(operand, shape)`` of the operands (numbers stay numbers)."""
        return Quotient(self.op, *(v if _number(v) else fn(v, shape) for v in (self.a, self.b)))


class Scale(NamedTuple):
    """A kernel's scale factor ``op(a[0] * fa, b[0] * fb)`` (None: ``a[0] * fa``), with
    ``a``, ``b`` 1-element device arrays (see ``kernels.Epilogue``)."""

    op: str | None
    a: object
    fa: float
    b: object
    fb: float


def bind(named):
    """The backend for the named arguments of one call (None values are absent).

    Device arrays on different GPUs: ValueError naming them.
    """
    present = {k: v for k, v in named.items() if v is not None and is_device_array(v)}
    devices = {k: arrays.device_of(v) for k, v in present.items()}
    known = {k: d for k, d in devices.items() if d is not None}
    if len(set(known.values())) > 1:
        by_device = {}
        for k, d in known.items():
            by_device.setdefault(d, []).append(k)
        (d0, k0), (d1, k1) = list(by_device.items())[:2]
        raise ValueError(f"{_names(k0)} on GPU {d0} but {_names(k1)} on GPU {d1}: "
                         "pass all arrays on the same device")
    current = 0 if SIMULATOR else cuda.get_current_device().id
    device = next(iter(known.values()), current)
    activate = None if device == current else cuda.gpus[device]
    with activate or contextlib.nullcontext():
        views = {id(v): (v, arrays.view(v)) for v in present.values()}
        streams = [s for _, a in views.values() if (s := a.stream)]
        stream = streams[0] if streams else cuda.default_stream()
        if not SIMULATOR:
            for other in {int(s): s for s in streams[1:]}.values():
                if int(other) != int(stream):
                    event = cuda.event(timing=False)  # the stream waits, the host doesn't
                    event.record(other)
                    event.wait(stream)
    kinds = [arrays.kind(v) for v in present.values()]
    kind = next((k for k in kinds if k in arrays.LIBRARIES), "numba")
    return Backend(device, stream, kind, views, activate)


def _names(keys):
    return ", ".join(repr(k) for k in keys) + (" is" if len(keys) == 1 else " are")


_GEOMETRY = {}


def geometry(device):
    """``(threads per block, blocks the GPU runs at once)`` for ``device``."""
    shape = _GEOMETRY.get(device)
    if shape is None:
        if SIMULATOR:
            shape = groups.SIM_THREADS, 1
        else:
            gpu = cuda.get_current_device()
            per_sm = gpu.MAX_THREADS_PER_MULTI_PROCESSOR // groups.THREADS
            shape = groups.THREADS, gpu.MULTIPROCESSOR_COUNT * max(per_sm, 1)
        _GEOMETRY[device] = shape
    return shape


# Constant device arrays (placeholders, the ones that scale numbers), made once per GPU.
_CONSTANTS = {}
# The last-block counters (groups.last_to_arrive), one per GPU, stream and host thread:
# kernels that share one run one after the other.
_TICKETS = {}


def _on_device(method):
    """Run ``method`` with the backend's GPU current (where it is not already)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self._activate is None:
            return method(self, *args, **kwargs)
        with self._activate:
            return method(self, *args, **kwargs)
    return wrapper


def _per_operand(method):
    """``method(self, a, shape)`` for a device array ``a`` (a number is made one first),
    and for a quotient the quotient of its operands through ``method``."""
    @functools.wraps(method)
    def wrapper(self, a, shape):
        if isinstance(a, Quotient):
            return a.map(functools.partial(wrapper, self), shape)
        return method(self, self.asarray(a), shape)
    return wrapper


class Backend:
    """The CUDA backend for the arrays of one call; see the module docstring."""

    replays = False  # a call's views, stream and scratch are its own (numba_xent._replay)

    def __init__(self, device, stream, kind, views, activate=None):
        self.device = device
        self.stream = stream
        self.kind = kind  # the library that allocates scratch arrays
        self._views = views  # id(obj) -> (obj, Numba view)
        self._activate = activate
        self._shuffle = not SIMULATOR
        self._counted = {}  # (address, size) of a count pass's counts -> their 0-d total

    # -- arrays -----------------------------------------------------------------

    def _view(self, a):
        if isinstance(a, arrays.View):
            return a
        hit = self._views.get(id(a))
        if hit is not None and hit[0] is a:
            return hit[1]
        if not is_device_array(a):
            raise TypeError(f"expected a device array, got {type(a).__name__}")
        v = arrays.view(a)
        self._views[id(a)] = (a, v)
        return v

    @_on_device
    def asarray(self, a):
        """A device argument as a Numba view; a number as a 0-d device array."""
        if isinstance(a, arrays.View) or is_device_array(a):
            return self._view(a)
        if isinstance(a, (numbers.Number, np.generic)):
            return self._scalar(a)
        raise TypeError(f"expected a device array or a number, got {type(a).__name__}")

    def _scalar(self, value):
        host = np.asarray(value)
        if host.dtype.kind not in "biuf":
            raise TypeError(f"expected a real number, got {value!r}")
        if host == 0 or host == 1:
            return self._constant(host)
        out = self._alloc((1,), host.dtype)
        if SIMULATOR:
            out._ary[0] = host
        else:
            epilogue.fill()[1, 1, self.stream](out, host[()])
        return self._reshape_view(out, ())

    def _constant(self, host, shape=()):
        """A cached, never written device array of ``shape`` filled with ``host``."""
        key = (self.device, host.dtype.str, host.tobytes(), shape)
        a = _CONSTANTS.get(key)
        if a is None:
            a = _CONSTANTS[key] = cuda.to_device(np.full(shape, host))  # once, synchronously
        return a

    @property
    def _ones(self):
        return self._constant(np.float64(1.0), (1,))

    @property
    def _ticket(self):
        key = (self.device, 0 if SIMULATOR else int(self.stream), threading.get_ident())
        t = _TICKETS.get(key)
        if t is None:
            t = _TICKETS[key] = cuda.to_device(np.zeros(1, np.int32))  # once, synchronously
        return t

    def _alloc(self, shape, dtype, zero=False):
        """A scratch array: a Numba view of memory allocated by ``self.kind``'s library."""
        raw = arrays.allocate(self.kind, shape, dtype, self.device, self.stream, zero)
        v = arrays.view(raw)
        v._nx_owner = raw
        return v

    @_on_device
    def zeros(self, shape, dtype=np.float64):
        return self._alloc(tuple(shape), dtype, zero=True)

    @_on_device
    def empty(self, shape, dtype, like=None):
        """A new array: of ``like``'s kind (the caller's logits) if given, else scratch."""
        if like is None:
            return self._alloc(tuple(shape), dtype)
        return arrays.allocate(arrays.kind(like), tuple(shape), dtype, self.device, self.stream)

    @_on_device
    def wrap(self, a, like):
        """A result computed here, as the kind of array ``like`` is, without a copy."""
        if not isinstance(a, NumbaArray):
            return a
        kind = arrays.kind(like)
        owner = getattr(a, "_nx_owner", None)
        if owner is not None and arrays.kind(owner) == kind and tuple(owner.shape) == a.shape:
            return owner
        return arrays.to_kind(a, kind, like)

    @_on_device
    def buffer(self, name, buf):
        """A caller's output buffer, checked to be a writeable device array."""
        if not is_device_array(buf):
            raise TypeError(f"{name} must be a device array (CuPy, PyTorch CUDA or Numba) "
                            f"like the inputs, got {type(buf).__name__}")
        if arrays.readonly(buf):
            raise ValueError(f"{name} is read-only")
        return self._view(buf)

    @_on_device
    def overlap(self, a, b):
        """Whether two arrays share memory (when that is too hard to decide: yes)."""
        if not (is_device_array(a) and is_device_array(b)):
            return False
        return arrays.shares_memory(self._view(a), self._view(b))

    @_on_device
    def same_view(self, a, b):
        return arrays.same_view(self._view(a), self._view(b))

    @_on_device
    def reshape_view(self, a, shape):
        """``a`` reshaped without a copy, or None where its strides don't allow it."""
        return self._reshape_view(self._view(a), shape)

    def _reshape_view(self, a, shape):
        if tuple(a.shape) == tuple(shape):
            return a
        try:
            s = np.reshape(arrays.shadow(a), shape, copy=False)
        except ValueError:
            return None
        return arrays.from_shadow(s, a)

    @_on_device
    @_per_operand
    def reshape(self, a, shape):
        """``a`` reshaped, copied (on the device) only where its strides don't allow a view
        (a quotient stays one, of reshaped operands)."""
        v = self._reshape_view(a, shape)
        if v is None:
            copy = self._alloc(a.shape, a.dtype)
            self._copy(copy, a)
            v = self._reshape_view(copy, shape)
        return v

    @_on_device
    @_per_operand
    def broadcast_to(self, a, shape):
        """A read-only broadcast view (zero strides) of ``a``; numbers become device arrays
        (a quotient stays one, of broadcast operands)."""
        if tuple(a.shape) == tuple(shape):
            return a
        return arrays.from_shadow(np.broadcast_to(arrays.shadow(a), shape), a)

    @_on_device
    def placeholder(self, ndim, dtype=np.float64):
        """A stand-in for an absent kernel argument: typed like one, never read."""
        return self._constant(np.zeros((), dtype), (1,) * ndim)

    @_on_device
    def scale(self, value):
        """A kernel's scale factor (a number, a 0-d device array or a quotient of them)
        as a :class:`Scale`."""
        if isinstance(value, Quotient):
            return Scale(value.op, *self._operand(value.a, (1,)), *self._operand(value.b, (1,)))
        return Scale(None, *self._operand(value, (1,)), self._ones, 1.0)

    def _operand(self, v, shape):
        """``(array of shape, factor)`` whose product is ``v`` (a number, a device array
        broadcast to ``shape``, or a product of the two)."""
        if _number(v):
            return self.broadcast_to(self._constant(np.float64(1.0), (1,) * len(shape)),
                                     shape), float(v)
        if isinstance(v, Quotient):
            if v.op == "mul" and _number(v.b) and not isinstance(v.a, Quotient):
                return self._operand(v.a, shape)[0], float(v.b)
            v = self._materialize(v)
        v = self._view(v)
        if v.size == 1 and tuple(v.shape) != tuple(shape):
            v = self._reshape_view(v, (1,) * len(shape))
        return self.broadcast_to(v, shape), 1.0

    def _materialize(self, v):
        """A quotient as the device array it stands for (a launch)."""
        if not isinstance(v, Quotient):
            return v
        return self.binary(v.op, self._materialize(v.a), self._materialize(v.b))

    def quotient(self, op, a, b):
        """``op(a, b)``, deferred (a :class:`Quotient`): the kernel that reads it computes it."""
        return Quotient(op, a, b)

    @_on_device
    def fill(self, a, value):
        a = self._view(a)
        self._copy(a, self.broadcast_to(value, a.shape))

    @_on_device
    def copy_into(self, target, computed):
        target = self._view(target)
        computed = self._materialize(computed)
        if _number(computed):
            computed = self.asarray(computed)
        self._copy(target, self.reshape(computed, target.shape))

    def _copy(self, dst, src):
        """``dst[...] = src`` for Numba arrays of one shape, on the device."""
        if dst.size == 0:
            return
        d2, s2 = self._rows(dst), self._rows(src)
        if d2 is not None and s2 is not None:
            blocks, threads = self._elementwise(dst.size)
            epilogue.copy()[blocks, threads, self.stream](d2, s2)
        elif SIMULATOR:
            dst._ary[...] = src._ary
        else:  # no 2-D view (transposed N-D): Numba's N-D assignment kernel
            dst.setitem(Ellipsis, src, stream=self.stream)

    def _rows(self, a):
        """A ``(rows, n)`` view of ``a`` (rows = every axis but the last), or None."""
        shape = tuple(a.shape) or (1,)
        return self._reshape_view(a, (math.prod(shape[:-1]), shape[-1]))

    # -- kernels ----------------------------------------------------------------

    def _plan(self, rows, n, unroll=groups.UNROLL):
        threads, resident = geometry(self.device)
        return groups.plan(rows, n, threads, resident, groups.WARP if self._shuffle else 1,
                           unroll)

    def _elementwise(self, size):
        """``(blocks, threads)`` for an elementwise kernel over ``size`` elements."""
        threads, resident = geometry(self.device)
        threads = min(threads, max(groups.WARP, size) if self._shuffle else size)
        return max(1, min(-(-size // threads), resident * groups.MAX_WAVES)), threads

    @_on_device
    def launch(self, key, x, z, w, pw, g, ignore_value, smoothing, loss_scale, grad_scale,
               rows_out, elem_out, grad_out, counts, finish):
        """Run the kernel for ``key`` over the ``(rows, n)`` views (see _core.evaluate):
        one launch, its epilogue included (``kernels.Epilogue``)."""
        nrows, n = z.shape
        total = finish is not None and finish.total
        p1, p2 = self.placeholder(1), self.placeholder(2)
        g_op, (g, gfa), (gd, gfb) = None, (g, 1.0), (p2, 1.0)
        if isinstance(g, Quotient):
            g_op, (g, gfa), (gd, gfb) = g.op, *(self._operand(v, (nrows, 1)) for v in g[1:])
        finish_op, by_kept, (fd, fdf) = None, False, (p1, 1.0)
        if finish is not None:
            rows_out, finish_op = finish.out, finish.op
            by_kept = finish.divisor is KEPT
            if finish_op is not None and not by_kept:
                fd, fdf = self._operand(finish.divisor, (1,) if total else (nrows,))
        if (kind := _half.kind(rows_out.dtype)) and finish is not None:
            key = key._replace(halves=(*key.halves, ("rows", kind)))  # the kernel finishes
        if key.halves or key.dtype in _half.KINDS:  # half arrays: their bits (_half)
            x, z, w, pw, g, rows_out, elem_out, grad_out = (
                _half.bits(a) for a in (x, z, w, pw, g, rows_out, elem_out, grad_out))
            if ignore_value is not None and _half.kind(np.asarray(ignore_value).dtype):
                ignore_value = np.float32(ignore_value)  # compared with the widened targets
        epi = kernels.Epilogue(loss_scale.op, grad_scale.op, g_op, total, finish_op, by_kept)
        layout = self._plan(nrows, n, kernels.unroll(key, epi))
        chunked = layout.nchunks > 1
        counted = kernels.sums_kept(key, epi)
        partial = kept_partial = totals = p2
        if chunked and key.rows and not total:
            partial = self._alloc((nrows, layout.nchunks), np.float64)
        if chunked and key.count:
            kept_partial = self._alloc((nrows, layout.nchunks), np.float64)
        if total or counted or (chunked and (key.rows or key.count)):
            totals = self._alloc((layout.blocks * layout.nchunks, 2), np.float64)
        kept_total = self._alloc((1,), np.float64) if counted else p1
        kernels.get(key, epi, self._shuffle)[layout.grid, layout.threads, self.stream](
            x, z, w, pw, g, gfa, gd, gfb,
            z.dtype.type(0) if ignore_value is None else ignore_value, float(smoothing),
            *loss_scale[1:], *grad_scale[1:], fd, fdf, rows_out, elem_out, grad_out, counts,
            kept_total, partial, kept_partial, totals, self._ticket, *layout.args)
        if counted:
            self._counted[arrays.address(counts), counts.size] = self._reshape_view(kept_total, ())

    # The epilogues of the front ends: small arithmetic on 0-d or per-row arrays,
    # done where the arrays live (0-d results: no synchronisation).

    @_on_device
    def total(self, a):
        """The sum of all elements, as a 0-d float64 device array (for the counts of a
        count pass, the total it left: no launch)."""
        a = self.asarray(a)
        counted = self._counted.get((arrays.address(a), a.size)) if a.dtype == np.int64 \
            else None
        return self._reduce_all(SUM, a) if counted is None else counted

    @_on_device
    def count_nonzero(self, a):
        """The number of non-zero elements, as a 0-d float64 device array."""
        return self._reduce_all(NONZERO, self.asarray(a))

    def _reduce_all(self, op, a):
        out = self._alloc((), np.float64)
        out1 = self._reshape_view(out, (1,))
        if a.size == 0:
            self._copy(out1, self._constant(np.float64(0.0), (1,)))
            return out
        a2 = self._rows(a)
        if a2 is None:
            a2 = self._rows(self.reshape(a, (a.size,)))
        layout = self._plan(*a2.shape)
        totals = self._alloc((layout.blocks * layout.nchunks, 2), np.float64)
        epilogue.reduce_all(op, self._shuffle)[layout.grid, layout.threads, self.stream](
            a2, out1, totals, self._ticket, *layout.args)
        return out

    @_on_device
    def binary(self, op, a, b):
        """Elementwise float64 ``op`` of a and b (device arrays or numbers), broadcast.

        ``div``: a / b (IEEE: x/0 is inf, 0/0 NaN); ``safe_div``: 0 where b == 0;
        ``div_at_least_one``: a / max(b, 1); ``mul``: a * b.
        """
        kernel = epilogue.binary(op)
        operands = [self._binary_operand(v) for v in (a, b)]
        shape = np.broadcast_shapes(*(o[2] for o in operands))
        out = self._alloc(shape, np.float64)
        size = math.prod(shape)
        if size:
            (a1, fa, _), (b1, fb, _) = [(self._flat(v, s, shape), f, s) for v, f, s in operands]
            blocks, threads = self._elementwise(size)
            kernel[blocks, threads, self.stream](a1, fa, b1, fb, self._reshape_view(out, (size,)))
        return out

    def _binary_operand(self, v):
        if is_device_array(v):
            v = self._view(v)
            return v, 1.0, tuple(v.shape)
        return self._ones, float(v), ()

    def _flat(self, v, shape, target):
        if math.prod(shape) == 1:
            return self._reshape_view(v, (1,))
        if shape != target:
            v = self.broadcast_to(v, target)
        return self.reshape(v, (math.prod(target),))

    @_on_device
    def cast(self, a, dtype):
        """``a`` converted to ``dtype`` (a new device array)."""
        a = self.asarray(a)
        out = self._alloc(tuple(a.shape), dtype)
        self._copy(out, a)
        return out


def _number(v):
    return isinstance(v, (numbers.Number, np.generic))
