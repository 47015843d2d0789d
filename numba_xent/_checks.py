"""Argument checks shared by the front ends: clear errors before any kernel runs."""

import math
import numbers

import numpy as np

from . import _half

LOGIT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))


def as_array(be, name, a):
    try:
        return be.asarray(a)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} cannot be read as an array: {err}") from None


def logits(be, name, a):
    """``a`` as an array of float32, float64, float16 or bfloat16 (the dtypes of the
    results; ``ml_dtypes.bfloat16`` for NumPy)."""
    a = as_array(be, name, a)
    if a.dtype not in LOGIT_DTYPES and not _half.kind(a.dtype):
        raise TypeError(f"{name} must be a float32, float64, float16 or bfloat16 array, "
                        f"got dtype {a.dtype}")
    return a


def real(be, name, a, shape=None):
    """``a`` as an array of bool, integer or float values (float16 and bfloat16
    included), of ``shape`` if given.  Kernels convert each element to the logits'
    compute dtype as they read it: nothing is copied."""
    if a is None:
        raise ValueError(f"{name} must be an array, got None")
    a = as_array(be, name, a)
    if a.dtype.kind not in "biuf" and not _half.kind(a.dtype):
        raise TypeError(
            f"{name} must be a real (bool, integer or float) array, got dtype {a.dtype}"
        )
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    return a


def choice(name, value, options):
    """``value`` if it is one of the strings ``options``, else a ValueError."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def number(name, value, expected):
    """``value`` as a finite float, else a TypeError (not a number: ``name`` must be
    ``expected``) or a ValueError (not finite)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def out(be, name, buf, shape, dtype, inputs, elementwise=False):
    """Check a caller's output buffer before anything is written to it.

    ``inputs`` maps argument names to the arrays the call reads.  A buffer that
    overlaps one of them is refused, except (``elementwise``) the very same view
    of an input of the result's dtype: each element is read before it is written.
    """
    if buf is None:
        return None
    view = be.buffer(name, buf)  # TypeError unless an array of this backend
    if view.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {view.shape}")
    if view.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {view.dtype}")
    for key, a in inputs.items():
        if a is None or isinstance(a, (int, float)) or not be.overlap(view, a):
            continue
        if not (elementwise and be.same_view(view, a)):
            raise ValueError(f"{name} overlaps the input {key!r}: pass a separate buffer")
    return buf


def broadcastable(be, name, a, shape):
    """``a`` as a real array that broadcasts to ``shape`` (NumPy rules).

    Leading axes of length 1 beyond ``shape``'s rank are dropped, so that a
    ``(1, n)`` pos_weight serves ``(n,)`` rows.
    """
    a = real(be, name, a)
    extra = a.ndim - len(shape)
    if extra > 0 and all(s == 1 for s in a.shape[:extra]):
        a = be.reshape(a, a.shape[extra:])
    if a.ndim > len(shape) or any(s not in (1, t) for s, t in zip(a.shape[::-1], shape[::-1])):
        raise ValueError(f"{name} of shape {a.shape} does not broadcast to {shape}")
    return a
