"""The backend interface: what the runner, the core and the checks call on a backend.

Two implementations agree on it: the module :mod:`numba_xent.cpu` (NumPy
arrays) and :class:`numba_xent.cuda.Backend` (device arrays, one object per
call).  ``tests/test_backend.py`` runs one battery on both.  "An array" below
is an array of the backend: a NumPy array, or on the GPU a device array (or
the Numba view the backend made of one); numbers are accepted where said.
"""

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Backend(Protocol):
    replays: bool
    """Whether the runner may replay this backend's kernel calls
    (``numba_xent._replay``); such a backend also has ``kernel_call`` (``launch``'s
    call as a value: a NamedTuple ``kernel, args, finish, tasks`` with a method
    ``run(args, finish)``, whose ``args`` begin with the views of x, z, w, pw and g),
    ``kernel_tasks`` and ``ROW_SUMS``."""

    # -- arrays -----------------------------------------------------------------

    def asarray(self, a) -> Any:
        """``a`` as an array of this backend (numbers become 0-d arrays); TypeError or
        ValueError when it cannot be one."""

    def buffer(self, name: str, buf) -> Any:
        """A caller's output buffer, checked: TypeError naming ``name`` unless it is a
        writeable array of this backend (ValueError if read-only)."""

    def overlap(self, a, b) -> bool:
        """Whether two arrays may share memory (True when that is too hard to decide)."""

    def same_view(self, a, b) -> bool:
        """Whether two arrays are the same elements in the same layout and dtype."""

    def empty(self, shape, dtype, like=None) -> Any:
        """A new uninitialised array; ``like`` (the caller's logits) picks its kind
        (CuPy, PyTorch, Numba on the GPU), else a scratch array."""

    def zeros(self, shape, dtype=...) -> Any:
        """A new scratch array of zeros (float64 by default)."""

    def wrap(self, a, like) -> Any:
        """A result computed here, as the kind of array ``like`` is, without a copy."""

    def reshape_view(self, a, shape) -> Any:
        """``a`` reshaped without a copy, or None where its strides do not allow it."""

    def reshape(self, a, shape) -> Any:
        """``a`` reshaped, copied only where its strides do not allow a view."""

    def broadcast_to(self, a, shape) -> Any:
        """A read-only broadcast view of ``a`` (an array or a number)."""

    def placeholder(self, ndim: int, dtype=...) -> Any:
        """A stand-in for an absent kernel argument: typed like one, never read."""

    def scale(self, value) -> Any:
        """A kernel's scale factor (a number or a 0-d array) in the form :meth:`launch`
        takes; nothing else reads it."""

    def fill(self, a, value) -> None:
        """``a[...] = value`` (a number)."""

    def copy_into(self, target, computed) -> None:
        """``target[...] = computed`` reshaped to ``target``'s shape, converting the dtype."""

    def cast(self, a, dtype) -> Any:
        """``a`` (an array or a number) converted to ``dtype``."""

    # -- the kernel -----------------------------------------------------------------

    def launch(self, key, x, z, w, pw, g, ignore_value, smoothing, loss_scale, grad_scale,
               rows_out, elem_out, grad_out, counts, finish) -> None:
        """Run the fused kernel compiled for ``key`` (a ``numba_xent._core.Kernel``) over
        the ``(rows, n)`` views, as :func:`numba_xent._core.evaluate` describes.

        ``ignore_value`` is None (nothing ignored) or a scalar of ``z``'s dtype;
        ``loss_scale`` and ``grad_scale`` are what :meth:`scale` returned; ``g`` may
        be what :meth:`quotient` returned; absent arrays are placeholders
        (:meth:`placeholder`).  ``finish`` (a ``numba_xent._core.Finish`` or None):
        the row sums' divided, cast result is written to ``finish.out`` (the CPU
        does it after its kernel, the GPU in it)."""

    # -- the epilogues: float64 arithmetic on 0-d and per-row arrays, where they live --

    def total(self, a) -> Any:
        """The float64 sum of all elements of ``a``, as a 0-d array."""

    def count_nonzero(self, a) -> Any:
        """The number of non-zero elements of ``a``, as a 0-d float64 array."""

    def binary(self, op: str, a, b) -> Any:
        """Elementwise float64 ``op`` of ``a`` and ``b`` (arrays or numbers), broadcast:
        ``div`` (IEEE: x/0 is inf, 0/0 NaN), ``safe_div`` (0 where b == 0),
        ``div_at_least_one`` (a / max(b, 1)) or ``mul``."""

    def quotient(self, op: str, a, b) -> Any:
        """``binary(op, a, b)`` where a kernel will read it (a scale, ``g``, a divisor):
        the array on the CPU; on the GPU a deferred value that the kernel computes
        (no launch), which :meth:`broadcast_to`, :meth:`reshape` and
        :meth:`copy_into` also take."""
