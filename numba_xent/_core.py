"""The one fused core every front end maps onto.

:func:`evaluate` takes checked arrays, flattens them to ``(rows, n)`` views
(rows = every axis but the last) and runs one backend kernel that reads each
input once and writes whichever of these the caller passed:

* ``rows_out`` (shape ``lead``):   ``loss_scale * sum_j w_j loss(x_j, z_j)`` per row
* ``elem_out`` (shape of x):       ``loss_scale * w * loss(x, z)``
* ``grad_out`` (shape of x):       ``grad_scale * g * w * dloss/dx``, g = g_row or g_elem
* ``finish.out`` (lead, or 0-d):   ``op(sum_j w_j loss(x_j, z_j), D)`` per row, or of the
  sum over all rows (:class:`Finish`), stored in the output's dtype

with ``loss`` of :mod:`numba_xent._formulas`.  Elements whose raw target equals
``ignore_value`` give 0 loss and 0 gradient, whatever their logit (the kernels
compare in the targets' own dtype: a value no target can equal ignores nothing).  It returns
the per-row count of kept (not ignored) elements if ``count``, else None.
"""

import functools
import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from . import _half
from ._formulas import PLAIN
from ._plan import KEPT


class Kernel(NamedTuple):
    """The compile-time options of one kernel."""

    variant: Any  # _formulas.PLAIN / LOG_D_TRICK / UNJOINED, or a Focal or Asymmetric
    dtype: str  # the logits' dtype (halves computed in float32); the rest is converted to it
    weighted: bool  # per-element weights w (broadcast views allowed)
    pos_weight: bool  # positive-class weight: per column, or per element with pw_elem
    ignore: bool  # elements whose raw target equals ignore_value give 0
    smooth: bool  # z -> z (1 - s) + s / 2
    rows: bool  # write loss_scale * row sums into rows_out
    elem: bool  # write loss_scale * elementwise losses into elem_out
    grad: bool  # write grad_scale * g * dloss/dx into grad_out
    g_elem: bool  # g is per element (rows, n) rather than per row (rows, 1)
    count: bool  # write the number of kept (non-ignored) elements per row
    # The other arrays that are halves, read and written as their bits: ((role, kind), ...)
    # of the roles "z", "weights", "pos_weight", "g", "rows" (the array the row sums are
    # stored in) and kinds of numba_xent._half.
    halves: tuple = ()
    pw_elem: bool = False  # pos_weight is per element, (rows, n) like the weights


class Finish(NamedTuple):
    """What the float64 row sums become: ``out = op(sum, D)`` (None: the sums), with
    ``sum`` each row's (``out`` of the rows' shape) or all rows' (``total``, 0-d out).

    ``divisor`` D: a number, an array of the backend (0-d, or of the rows' shape),
    what the backend's ``quotient`` returned, or ``_plan.KEPT``: the number of
    kept elements counted in the same pass (per row, or in all).
    """

    total: bool
    op: str | None
    divisor: Any
    out: Any


# The logits' dtypes by name (dtype.name takes over a microsecond).
_NAMES = {np.dtype(t): np.dtype(t).name for t in (np.float32, np.float64, np.float16)}


def evaluate(be, x, z, *, variant=PLAIN, weights=None, pos_weight=None, ignore_value=None,
             smoothing=0.0, g_row=None, g_elem=None, loss_scale=1.0, grad_scale=1.0,
             rows_out=None, elem_out=None, grad_out=None, count=False, finish=None):
    """Run the fused kernel; see the module docstring.

    ``weights``, ``pos_weight`` and ``g_elem`` broadcast to x's shape (a pos_weight
    that varies along the last axis only is read per column), ``g_row`` to
    ``lead`` (one value per row); pass one ``g`` at most.  Outputs are written in
    place; one whose strides allow no ``(rows, n)`` view is computed aside and copied
    in.  ``loss_scale`` and
    ``grad_scale`` are numbers, 0-d arrays of the backend or what its
    ``quotient`` returned (a device-side divisor needs no trip to the host).
    ``finish`` (a :class:`Finish`; ``count`` where its divisor is ``KEPT``) is
    written instead of ``rows_out``.
    """
    shape = x.shape or (1,)
    lead, n = shape[:-1], shape[-1]
    rows = math.prod(lead)
    counts = be.zeros(lead, dtype=np.int64) if count else None
    if rows * n == 0:
        if rows_out is not None:
            be.fill(rows_out, 0)  # the loss of an empty row is 0, not Caffe2's 0 / 0
        if finish is not None:
            finish_sums(be, finish, be.zeros(lead), counts)
        return counts

    flat = (rows, n)
    x2 = be.reshape(x, flat)
    z2 = be.reshape(z, flat)
    # Placeholders for absent inputs and outputs are typed like the real thing, never read.
    p1, p2 = be.placeholder(1), be.placeholder(2)
    w2 = p2 if weights is None else be.reshape(be.broadcast_to(weights, shape), flat)
    pw, pw_elem = (p1, False) if pos_weight is None else _pos_weight(be, pos_weight, shape)
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
    if finish is not None:
        d = finish.divisor
        if not finish.total and getattr(d, "ndim", 0):  # per row: flat, as the rows
            d = be.reshape(d, (rows,))
        finish = finish._replace(divisor=d, out=_writable_view(
            be, finish.out, (1,) if finish.total else (rows,), writes))

    if ignore_value is not None:
        ignore_value = exactly(ignore_value, z.dtype)
    g = g_row if g_elem is None else g_elem
    halves = tuple((role, kind) for role, a in (("z", z), ("weights", weights),
                                                ("pos_weight", pos_weight), ("g", g),
                                                ("rows", rows_out))
                   if (kind := _half.kind(getattr(a, "dtype", _NONE))))
    key = Kernel(variant, _NAMES.get(x.dtype) or x.dtype.name, weights is not None,
                 pos_weight is not None, ignore_value is not None, smoothing != 0,
                 rows_out is not None or finish is not None,
                 elem_out is not None, grad_out is not None, g_elem is not None, bool(count),
                 halves, pw_elem)
    be.launch(key, x2, z2, w2, pw, g2, ignore_value, float(smoothing), be.scale(loss_scale),
              be.scale(grad_scale), rows2, elem2, grad2, counts2, finish)
    for target, computed in writes:
        be.copy_into(target, computed)
    return counts


def _pos_weight(be, pos_weight, shape):
    """``(pw, per_element)``: a pos_weight that varies along the last axis only as the
    ``(n,)`` view the kernels read per column (PyTorch's common ``(C,)``, ``(1, C)``),
    any other as a ``(rows, n)`` view read per element, as the weights are."""
    if all(s == 1 for s in pos_weight.shape[:-1]):
        return be.broadcast_to(be.reshape(pos_weight, pos_weight.shape[-1:]), shape[-1:]), False
    return be.reshape(be.broadcast_to(pos_weight, shape), (math.prod(shape[:-1]), shape[-1])), \
        True


def finish_sums(be, finish, sums, counts):
    """Write ``finish`` from the float64 row sums ``sums`` (and the pass's ``counts``)
    with the backend's own arithmetic: what a backend whose kernel does not finish
    its sums does after it."""
    value = be.total(sums) if finish.total else sums
    if finish.op is not None:
        d = finish.divisor
        if d is KEPT:
            d = be.total(counts) if finish.total else counts
        value = quotient(be, finish.op, value, d)
    be.copy_into(finish.out, value)


def quotient(be, op, a, b):
    """``op(a, b)`` in float64 (an operation of ``be.binary``): on the host when both are
    host numbers, else the backend's ``quotient``."""
    if _host(a) and _host(b):
        return _host_binary(op, float(a), float(b))
    return be.quotient(op, a, b)


def _host_binary(op, a, b):
    """The backends' ``binary`` on two Python floats (the same IEEE float64 results)."""
    if op == "mul":
        return a * b
    if op == "div_at_least_one":
        return a / (b if b >= 1.0 or b != b else 1.0)
    if b == 0:
        if op == "safe_div":
            return 0.0
        return math.nan if a != a or a == 0 else math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _host(v):
    t = type(v)
    return t in _NUMBERS or (t is np.ndarray and v.ndim == 0) or (
        t is not np.ndarray and isinstance(v, (numbers.Number, np.generic)))


_NUMBERS = {float, int, np.float64, np.float32}


def exactly(value, dtype):
    """``value`` as a scalar of ``dtype`` if that holds it exactly, else None (no
    element of that dtype can equal it)."""
    return _exactly(float(value), np.dtype(dtype))


_NONE = np.dtype(np.void)  # what getattr(a, "dtype") stands in for a number or None


@functools.lru_cache(maxsize=256)
def _exactly(value, dtype):
    if dtype.kind == "f" or _half.kind(dtype):
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
