"""Device arrays of every kind seen as Numba device arrays, without a copy, and back.

The kinds: ``numba`` (``numba.cuda`` device arrays, the simulator's included),
``cupy``, ``torch`` (CUDA tensors) and ``other`` (anything else exposing
``__cuda_array_interface__``; results for it are Numba device arrays).

View arithmetic (reshape, broadcast, overlap) is NumPy's, done on a *shadow*:
a host ``ndarray`` with the device array's address, dtype, shape and strides,
which is never read or written.
"""

import numpy as np
from numba import cuda
from numba.cuda.cudadrv import devicearray

SIMULATOR = hasattr(devicearray, "FakeCUDAArray")
NumbaArray = devicearray.FakeCUDAArray if SIMULATOR else devicearray.DeviceNDArray
LIBRARIES = ("cupy", "torch")

if SIMULATOR:
    class View(devicearray.FakeCUDAArray):
        """The simulator's array, with a plain tuple for a shape as on a GPU (the
        simulator's own refuses negative indices, which only kernels refuse)."""

        @property
        def shape(self):
            return self._ary.shape
else:
    View = devicearray.DeviceNDArray


def kind(obj):
    if isinstance(obj, NumbaArray):
        return "numba"
    library = type(obj).__module__.partition(".")[0]
    return library if library in LIBRARIES else "other"


def view(obj):
    """``obj`` as a Numba device array over the same memory.

    Its ``stream`` is the stream the producer names in ``__cuda_array_interface__``
    (CuPy and PyTorch: their current stream), or 0.  Nothing is synchronised.
    """
    if isinstance(obj, View):
        return obj
    if SIMULATOR:
        if isinstance(obj, NumbaArray):
            return View(obj._ary, stream=obj.stream)
        raise TypeError(
            f"the CUDA simulator runs Numba device arrays only, got {type(obj).__name__}")
    if kind(obj) == "torch":
        return _torch_view(obj)
    interface = obj.__cuda_array_interface__
    v = cuda.from_cuda_array_interface(interface, owner=obj, sync=False)
    v.stream = stream_of(interface.get("stream"))
    return v


def _torch_view(t):
    """A CUDA tensor's view, on the stream torch reports as current for its device:
    torch's interface (version 2) names no stream.  A bfloat16 tensor, which has no
    interface, is seen through its int16 view as ``ml_dtypes.bfloat16``."""
    t = t.detach()  # the same memory; torch refuses the interface otherwise
    bfloat16 = str(t.dtype) == "torch.bfloat16"
    v = cuda.from_cuda_array_interface(
        (t.view(_torch().int16) if bfloat16 else t).__cuda_array_interface__, owner=t,
        sync=False)
    if bfloat16:
        v = v.view(numpy_dtype("bfloat16"))
    v.stream = torch_stream(t)
    return v


def torch_stream(t):
    """The Numba stream of ``torch.cuda.current_stream(t.device)``."""
    return stream_of(_torch().cuda.current_stream(t.device).cuda_stream)


def _torch():
    import torch

    return torch


def stream_of(handle):
    """The Numba stream for a ``__cuda_array_interface__`` stream entry or a raw stream
    handle (0 for none, or for the legacy default stream's handle 0)."""
    if not handle:
        return 0
    if handle == 1:
        return cuda.legacy_default_stream()
    if handle == 2:
        return cuda.per_thread_default_stream()
    return cuda.external_stream(handle)


def device_of(obj):
    """The ordinal of the GPU holding ``obj``, or None where it can't be told."""
    if isinstance(obj, NumbaArray):
        return 0 if SIMULATOR else obj.gpu_data.context.device.id
    device = getattr(obj, "device", None)
    if isinstance(getattr(device, "id", None), int):  # CuPy
        return device.id
    if getattr(device, "type", None) == "cuda":  # PyTorch
        return device.index
    return None if SIMULATOR else _pointer_device(obj)


def _pointer_device(obj):
    try:
        address = obj.__cuda_array_interface__["data"][0]
        from cuda.bindings import driver

        err, ordinal = driver.cuPointerGetAttribute(
            driver.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, address)
    except Exception:  # no address (empty array), no driver: unknown
        return None
    return int(ordinal) if err == driver.CUresult.CUDA_SUCCESS else None


def readonly(obj):
    interface = getattr(obj, "__cuda_array_interface__", None)
    return bool(interface and interface["data"][1])


def address(a):
    """The device address of a Numba array's first element."""
    if SIMULATOR:
        return a._ary.__array_interface__["data"][0]
    return a.device_ctypes_pointer.value or 0


class _Shadow:
    def __init__(self, a):
        self.__array_interface__ = {
            "data": (address(a), False), "shape": tuple(a.shape),
            "strides": tuple(a.strides), "typestr": a.dtype.str, "version": 3,
        }


def shadow(a):
    """A host array with ``a``'s address and layout, for NumPy's view arithmetic only."""
    if SIMULATOR:
        return a._ary
    if a.size == 0:
        return np.empty(a.shape, a.dtype)
    return np.asarray(_Shadow(a))


def from_shadow(s, base):
    """The device view of ``base``'s memory that ``s``, a view of ``base``'s shadow, describes."""
    if SIMULATOR:
        return View(s, stream=base.stream)
    data = base.gpu_data
    if s.size:
        offset = s.__array_interface__["data"][0] - address(base)
        data = data.view(offset) if offset else data
    return devicearray.DeviceNDArray(s.shape, s.strides, s.dtype, stream=base.stream,
                                     gpu_data=data)


def shares_memory(a, b):
    """Whether two Numba device arrays share memory (when that is too hard to decide: yes)."""
    if a.size == 0 or b.size == 0:
        return False
    try:
        return np.shares_memory(shadow(a), shadow(b), max_work=10**6)
    except np.exceptions.TooHardError:
        return True


def same_view(a, b):
    return (a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
            and tuple(a.strides) == tuple(b.strides) and address(a) == address(b))


def allocate(kind, shape, dtype, device, stream, zero=False):
    """A new C-contiguous array of ``kind`` on ``device`` (allocated on ``stream``'s order).

    CuPy and PyTorch arrays come from their libraries' stream-ordered pools.
    """
    dtype = numpy_dtype(dtype)
    if SIMULATOR:
        return cuda.to_device(np.zeros(shape, dtype)) if zero else cuda.device_array(shape, dtype)
    if kind == "cupy":
        import cupy

        with cupy.cuda.Device(device):
            return (cupy.zeros if zero else cupy.empty)(shape, dtype)
    if kind == "torch":
        torch = _torch()
        make = torch.zeros if zero else torch.empty
        return make(shape, dtype=torch_dtype(dtype), device=torch.device("cuda", device))
    # Bound to no stream where ours is the default one (an interface can't name stream 0).
    a = cuda.device_array(shape, dtype, stream=stream if int(stream) else 0)
    if zero and a.size:
        from numba.cuda.cudadrv import driver

        driver.device_memset(a, 0, a.alloc_size, stream=stream)
    return a


def numpy_dtype(dtype):
    """A NumPy dtype for ``dtype``, a PyTorch one (``torch.float32``) included, and
    bfloat16 as ``ml_dtypes.bfloat16``."""
    name = str(dtype).rpartition(".")[2]
    if name == "bfloat16":
        import ml_dtypes  # NumPy's bfloat16: for bfloat16 arrays only

        return np.dtype(ml_dtypes.bfloat16)
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(name)


def torch_dtype(dtype):
    return getattr(_torch(), np.dtype(dtype).name)


def to_kind(a, kind, like):
    """The Numba array ``a`` as an array of ``kind`` (``like``'s), without a copy."""
    if SIMULATOR or kind not in LIBRARIES:
        return a
    # Exported without a stream: the consumer runs on the stream we ran on.
    a = a.bind(0)
    if kind == "cupy":
        import cupy

        with cupy.cuda.Device(like.device.id):
            return cupy.asarray(a)
    torch = _torch()
    if a.dtype.name == "bfloat16":  # no interface for it in torch: its int16 view
        return torch.as_tensor(a.view(np.int16), device=like.device).view(torch.bfloat16)
    return torch.as_tensor(a, device=like.device)
