"""The front module: picks the backend from where the arrays live.

NumPy arrays and array-likes (lists, scalars) run on :mod:`numba_xent.cpu`;
objects exposing ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors,
Numba device arrays) or, under Numba's CUDA simulator, ``__cuda_ndarray__``
run on :mod:`numba_xent.cuda` (imported on first use: it needs numba-cuda,
the ``cuda`` extra).  Nothing else in the package branches on the backend.
Dask arrays are refused with a pointer to :mod:`numba_xent.dask`: converting
one would compute and gather it whole, which is what Dask is used to avoid.
"""

import numbers

import numpy as np

from . import cpu


_HOST = {np.ndarray, float, int, bool, np.float32, np.float64, np.int64, np.int32, np.bool_}


def is_device_array(a):
    # Cheap class flags first: building the interface's dictionary takes microseconds.
    if getattr(a, "__cuda_ndarray__", False) or getattr(a, "is_cuda", False) is True:
        return True  # Numba (simulator too); PyTorch, whose interface raises for grad tensors
    return hasattr(a, "__cuda_array_interface__")


def backend(**named):
    """The backend for the named arguments (None values are absent).

    Python and NumPy scalars go with either side; anything else that is not a
    device array is a host array.  Host and device arrays in one call: TypeError;
    device arrays on different GPUs: ValueError.
    """
    for v in named.values():  # the common case first: NumPy arrays and numbers
        if v is not None and type(v) not in _HOST:
            break
    else:
        return cpu
    lazy = [k for k, v in named.items() if type(v).__module__.startswith("dask.")]
    if lazy:
        raise TypeError(f"{_names(lazy)} a Dask array: use numba_xent.dask, whose functions "
                        "take Dask arrays and return lazy ones")
    device = [k for k, v in named.items() if v is not None and is_device_array(v)]
    if not device:
        return cpu
    host = [
        k
        for k, v in named.items()
        if v is not None
        and not is_device_array(v)
        and not isinstance(v, (numbers.Number, np.generic))
    ]
    if host:
        raise TypeError(
            f"{_names(device)} on the GPU but {_names(host)} on the host: "
            "pass all arrays on the same side"
        )
    from . import cuda

    return cuda.bind(named)


def _names(keys):
    return ", ".join(repr(k) for k in keys) + (" is" if len(keys) == 1 else " are")
