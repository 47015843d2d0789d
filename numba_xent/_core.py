"""The one fused core every front end maps onto.

:func:`evaluate` takes checked arrays, flattens them to ``(rows, n)`` views
(rows = every axis but the last) and runs one backend kernel that reads each
input once and writes whichever of these the caller passed:

* ``rows_out`` (shape ``lead``):   ``loss_scale * sum_j w_j loss(x_j, z_j)`` per row
* ``elem_out`` (shape of x):       ``loss_scale * w * loss(x, z)``
* ``grad_out`` (shape of x):       ``grad_scale * g * w * dloss/dx``, g = g_row or g_elem

with ``loss`` of :mod:`numba_xent._formulas`.  Elements whose raw target equals
``ignore_value`` give 0 loss and 0 gradient, whatever their logit (the kernels
compare in the targets' own dtype: a value no target can equal ignores nothing).  It returns
the per-row count of kept (not ignored) elements if ``count``, else None.
"""

import functools
import math
from typing import NamedTuple

import numpy as np

from ._formulas import PLAIN


class Kernel(NamedTuple):
    """The compile-time options of one kernel."""

    variant: int  # _formulas.PLAIN / LOG_D_TRICK / UNJOINED
    dtype: str  # the logits' dtype; targets and weights are converted to it
    weighted: bool  # per-element weights w (broadcast views allowed)
    pos_weight: bool  # per-column positive-class weight
    ignore: bool  # elements whose raw target equals ignore_value give 0
    smooth: bool  # z -> z (1 - s) + s / 2
    rows: bool  # write loss_scale * row sums into rows_out
    elem: bool  # write loss_scale * elementwise losses into elem_out
    grad: bool  # write grad_scale * g * dloss/dx into grad_out
    g_elem: bool  # g is per element (rows, n) rather than per row (rows, 1)
    count: bool  # write the number of kept (non-ignored) elements per row


# The logits' dtypes by name (dtype.name takes over a microsecond).
_NAMES = {np.dtype(t): np.dtype(t).name for t in (np.float32, np.float64)}


def evaluate(be, x, z, *, variant=PLAIN, weights=None, pos_weight=None, ignore_value=None,
             smoothing=0.0, g_row=None, g_elem=None, loss_scale=1.0, grad_scale=1.0,
             rows_out=None, elem_out=None, grad_out=None, count=False):
    """Run the fused kernel; see the module docstring.

    ``weights`` and ``g_elem`` broadcast to x's shape, ``pos_weight`` to its
    last axis, ``g_row`` to ``lead`` (one value per row); pass one ``g`` at
    most.  Outputs are written in place; one whose strides allow no
    ``(rows, n)`` view is computed aside and copied in.  ``loss_scale`` and
    ``grad_scale`` are numbers or 0-d arrays of the backend (a device-side
    divisor needs no trip to the host).
    """
    shape = x.shape or (1,)
    lead, n = shape[:-1], shape[-1]
    rows = math.prod(lead)
    counts = be.zeros(lead, dtype=np.int64) if count else None
    if rows * n == 0:
        if rows_out is not None:
            be.fill(rows_out, 0)  # the loss of an empty row is 0, not Caffe2's 0 / 0
        return counts

    flat = (rows, n)
    x2 = be.reshape(x, flat)
    z2 = be.reshape(z, flat)
    # Placeholders for absent inputs and outputs are typed like the real thing, never read.
    p1, p2 = be.placeholder(1), be.placeholder(2)
    w2 = p2 if weights is None else be.reshape(be.broadcast_to(weights, shape), flat)
    pw = p1 if pos_weight is None else be.broadcast_to(pos_weight, (n,))
    if g_elem is not None:
        g2 = be.reshape(be.broadcast_to(g_elem, shape), flat)
    elif g_row is None:
        g2 = p2
    elif getattr(g_row, "ndim", 0) == 0:
        g2 = be.broadcast_to(g_row, (rows, 1))  # one number for every row
    else:
        g2 = be.reshape(be.broadcast_to(g_row, lead), (rows, 1))

    writes = []
    rows2 = p1 if rows_out is None else _writable_view(be, rows_out, (rows,), writes)
    elem2 = p2 if elem_out is None else _writable_view(be, elem_out, flat, writes)
    grad2 = p2 if grad_out is None else _writable_view(be, grad_out, flat, writes)
    counts2 = be.placeholder(1, np.int64) if counts is None else be.reshape(counts, (rows,))

    if ignore_value is not None:
        ignore_value = exactly(ignore_value, z.dtype)
    key = Kernel(variant, _NAMES[x.dtype], weights is not None, pos_weight is not None,
                 ignore_value is not None, smoothing != 0, rows_out is not None,
                 elem_out is not None, grad_out is not None, g_elem is not None, bool(count))
    be.launch(key, x2, z2, w2, pw, g2, ignore_value, float(smoothing), be.scale(loss_scale),
              be.scale(grad_scale), rows2, elem2, grad2, counts2)
    for target, computed in writes:
        be.copy_into(target, computed)
    return counts


def exactly(value, dtype):
    """``value`` as a scalar of ``dtype`` if that holds it exactly, else None (no
    element of that dtype can equal it)."""
    return _exactly(float(value), np.dtype(dtype))


@functools.lru_cache(maxsize=256)
def _exactly(value, dtype):
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            held = dtype.type(value)
        return held if float(held) == value else None
    if not value.is_integer():
        return None
    if dtype.kind == "b":
        return dtype.type(value) if value in (0, 1) else None
    info = np.iinfo(dtype)
    return dtype.type(int(value)) if info.min <= value <= info.max else None


def _writable_view(be, out, shape, writes):
    view = be.reshape_view(out, shape)
    if view is None:  # computed aside, then copied in
        view = be.empty(shape, out.dtype)
        writes.append((out, view))
    return view
