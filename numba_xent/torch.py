"""PyTorch autograd for every numba_xent loss (needs the optional ``torch``).

Every loss function of the table of public functions (``numba_xent._table``)
has a version here, with its signature less ``out``: its front end's plan runs
through one ``torch.autograd.Function`` whose forward asks the fused kernel for
the loss and, when the logits require a gradient, ``d(loss)/d(logits)`` for a
unit upstream gradient, in the same single pass; ``backward`` only scales that
by ``grad_output`` (each logit feeds exactly one loss element, whatever the
reduction) and reads no input again.
CPU tensors reach the kernels through NumPy, CUDA tensors through
``__cuda_array_interface__``; both without a copy.  Only the logits are
differentiable (as in chainer); targets and weights are treated as constants.

    import numba_xent.torch as nxt
    loss_fn = nxt.SigmoidCrossEntropyLoss(pos_weight=torch.ones(10))
    loss = loss_fn(logits, targets)      # like torch.nn.BCEWithLogitsLoss
    loss.backward()
"""


import numpy as np
import torch

from . import tf
from ._dispatch import backend
from ._runner import run
from ._table import TABLE


def _array(t):
    """A tensor as the array numba_xent's backends take, without a copy."""
    if not isinstance(t, torch.Tensor):
        return t
    t = t.detach()
    return t.numpy() if t.is_cpu else t


def _tensor(a):
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))


class _Loss(torch.autograd.Function):
    """Any loss of the table: the loss and, if wanted, its gradient in one pass."""

    @staticmethod
    def forward(ctx, logits, entry, arguments):
        be, plan = entry.plan(backend, {k: _array(v) for k, v in arguments.items()})
        if not ctx.needs_input_grad[0]:
            return _tensor(run(be, plan))
        loss, grad = run(be, plan._replace(g=1.0))
        ctx.save_for_backward(_tensor(grad))
        return _tensor(loss)

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        if grad_output.dim():  # per-row losses: one upstream value per row
            while grad_output.dim() < grad.dim():
                grad_output = grad_output.unsqueeze(-1)
        return grad * grad_output, None, None


_BUFFERS = ("out", "grad")  # the parameters the autograd versions do not have


def _autograd(front, name):
    """The autograd version of ``numba_xent.<front>.<name>`` (a loss of the table)."""
    (entry,) = [e for e in TABLE if (e.front, e.name) == (front, name) and e.is_loss]
    signature = entry.signature_less(_BUFFERS)
    logits = "logits" if "logits" in signature.parameters else "x"

    def fn(*args, **kwargs):
        arguments = entry.bind(args, kwargs, drop=_BUFFERS)
        x = arguments[logits]
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{logits} must be a torch.Tensor, got {type(x).__name__}")
        return _Loss.apply(x, entry, arguments)

    fn.__name__ = fn.__qualname__ = f"{front}_{name}" if front else name
    fn.__signature__ = signature
    fn.__doc__ = f"``numba_xent.{front + '.' if front else ''}{name}`` with autograd."
    return fn


sigmoid_cross_entropy = _autograd("", "sigmoid_cross_entropy")
caffe2_sigmoid_cross_entropy_with_logits = _autograd(
    "caffe2", "sigmoid_cross_entropy_with_logits")
caffe2_weighted_sigmoid_cross_entropy_with_logits = _autograd(
    "caffe2", "weighted_sigmoid_cross_entropy_with_logits")
chainer_sigmoid_cross_entropy = _autograd("chainer", "sigmoid_cross_entropy")
paddle_sigmoid_cross_entropy_with_logits = _autograd(
    "paddle", "sigmoid_cross_entropy_with_logits")
tf_sigmoid_cross_entropy = _autograd("tf", "sigmoid_cross_entropy")


class SigmoidCrossEntropyLoss(torch.nn.Module):
    """Like ``torch.nn.BCEWithLogitsLoss``, plus ``label_smoothing`` and ``ignore_index``."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None, label_smoothing=0.0,
                 ignore_index=None):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction, self.label_smoothing, self.ignore_index = (
            reduction, label_smoothing, ignore_index)

    def forward(self, input, target):
        return sigmoid_cross_entropy(input, target, self.weight, pos_weight=self.pos_weight,
                                     label_smoothing=self.label_smoothing,
                                     ignore_index=self.ignore_index, reduction=self.reduction)


class Caffe2SigmoidCrossEntropyWithLogits(torch.nn.Module):
    def __init__(self, log_d_trick=False, unjoined_lr_loss=False):
        super().__init__()
        self.log_d_trick, self.unjoined_lr_loss = log_d_trick, unjoined_lr_loss

    def forward(self, logits, targets):
        return caffe2_sigmoid_cross_entropy_with_logits(
            logits, targets, log_d_trick=self.log_d_trick,
            unjoined_lr_loss=self.unjoined_lr_loss)


class Caffe2WeightedSigmoidCrossEntropyWithLogits(torch.nn.Module):
    def forward(self, logits, targets, weights):
        return caffe2_weighted_sigmoid_cross_entropy_with_logits(logits, targets, weights)


class ChainerSigmoidCrossEntropy(torch.nn.Module):
    def __init__(self, normalize=True, reduce="mean"):
        super().__init__()
        self.normalize, self.reduce = normalize, reduce

    def forward(self, x, t):
        return chainer_sigmoid_cross_entropy(x, t, self.normalize, self.reduce)


class PaddleSigmoidCrossEntropyWithLogits(torch.nn.Module):
    def __init__(self, ignore_index=-100, normalize=False):
        super().__init__()
        self.ignore_index, self.normalize = ignore_index, normalize

    def forward(self, x, label):
        return paddle_sigmoid_cross_entropy_with_logits(x, label, self.ignore_index,
                                                        self.normalize)


class TFSigmoidCrossEntropy(torch.nn.Module):
    def __init__(self, label_smoothing=0, reduction=tf.Reduction.SUM_BY_NONZERO_WEIGHTS):
        super().__init__()
        self.label_smoothing, self.reduction = label_smoothing, reduction

    def forward(self, multi_class_labels, logits, weights=1.0):
        return tf_sigmoid_cross_entropy(multi_class_labels, logits, weights,
                                        self.label_smoothing, self.reduction)
