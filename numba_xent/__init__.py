"""numba_xent: fused Numba kernels for the sigmoid cross-entropy family of losses.

The top level holds the general API (:mod:`numba_xent.general`, and the focal and
asymmetric losses of :mod:`numba_xent.focal` and :mod:`numba_xent.asymmetric`); the
framework front ends are the submodules ``caffe2``, ``chainer``, ``paddle`` and ``tf``.
"""

__version__ = "0.1.0"

from . import caffe2, chainer, paddle, tf  # noqa: E402
from .asymmetric import (  # noqa: E402
    asymmetric_loss,
    asymmetric_loss_and_grad,
    asymmetric_loss_grad,
)
from .focal import (  # noqa: E402
    sigmoid_focal_loss,
    sigmoid_focal_loss_and_grad,
    sigmoid_focal_loss_grad,
)
from .general import (  # noqa: E402
    REDUCTIONS,
    sigmoid_cross_entropy,
    sigmoid_cross_entropy_and_grad,
    sigmoid_cross_entropy_grad,
)

__all__ = [
    "REDUCTIONS",
    "asymmetric_loss",
    "asymmetric_loss_and_grad",
    "asymmetric_loss_grad",
    "caffe2",
    "chainer",
    "paddle",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_and_grad",
    "sigmoid_cross_entropy_grad",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_and_grad",
    "sigmoid_focal_loss_grad",
    "tf",
]
