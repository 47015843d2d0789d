"""Type names of the public signatures."""

from typing import Any

from numpy.typing import ArrayLike

#: A result: a NumPy array, or on the GPU an array of the logits' kind
#: (CuPy, PyTorch or Numba device array).
Array = Any

__all__ = ["Array", "ArrayLike"]
