"""numba_xent: fused Numba kernels for the sigmoid cross-entropy family of losses.

The top level holds the general API (:mod:`numba_xent.general`); the framework
front ends are the submodules ``caffe2``, ``chainer``, ``paddle`` and ``tf``.
"""

__version__ = "0.1.0"

from . import caffe2, chainer, paddle, tf  # noqa: E402
from .general import (  # noqa: E402
    REDUCTIONS,
    sigmoid_cross_entropy,
    sigmoid_cross_entropy_and_grad,
    sigmoid_cross_entropy_grad,
)

__all__ = [
    "REDUCTIONS",
    "caffe2",
    "chainer",
    "paddle",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_and_grad",
    "sigmoid_cross_entropy_grad",
    "tf",
]
